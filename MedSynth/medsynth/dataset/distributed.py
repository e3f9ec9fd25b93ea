"""Running a recipe on Dask: a LocalCluster (``workers=N``), an existing scheduler, or a batch cluster.

One task per item, calling the same ``run_item`` as the local runner. A task carries the recipe
and the item (a few kB), never a CT: each worker reads a case from the shared file system once
and keeps it prepared (``job.cached_group``). Items of a (case, variant) are steered to one
worker (round-robin over the groups, others may steal them), so a CT is prepared about once per
worker that needs it. When CUDA is present the tasks ask for the Dask resource ``GPU``, so only
GPU workers run them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from medsynth.dataset.job import run_item
from medsynth.dataset.recipe import ClusterSection, Recipe
from medsynth.dataset.runner import RunSummary, finish_run, settle, start_run
from medsynth.errors import InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

#: Seconds to wait for a scheduler to answer before giving up with advice.
CONNECT_TIMEOUT_S = 10.0


def uses_gpu(recipe: Recipe) -> bool:
    """True when the views will be marched on CUDA (device 'cuda', or 'auto' with a real GPU here)."""
    device = recipe.drr.parameters.device
    if device == "cpu":
        return False
    from medsynth.drr.kernels.cuda import cuda_status, is_simulator

    usable, _ = cuda_status()
    return device == "cuda" or (usable and not is_simulator())


def worker_env(workers: int) -> dict[str, str]:
    """Threads per worker so that N single-threaded workers share the cores instead of fighting."""
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    return {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def local_cluster(workers: int, gpu: bool = False) -> Iterator[object]:
    """A Dask LocalCluster of ``workers`` processes (one thread each), removed on exit."""
    from distributed import LocalCluster

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}.")
    with tempfile.TemporaryDirectory(prefix="medsynth-dask-") as space:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               local_directory=space, env=worker_env(workers),
                               resources={"GPU": 1} if gpu else None, silence_logs=40)
        try:
            yield cluster
        finally:
            cluster.close()


def jobqueue_cluster(section: ClusterSection):
    """The dask-jobqueue cluster of a recipe's ``cluster:`` section (not started until scaled)."""
    import dask_jobqueue

    kinds = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster, "lsf": dask_jobqueue.LSFCluster}
    return kinds[section.kind](**section.jobqueue_options())


def job_script(section: ClusterSection) -> str:
    """The batch script each cluster job runs (what ``medsynth dataset run --print-job-script`` shows)."""
    cluster = jobqueue_cluster(section)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S):
    """A Client of the scheduler at ``address``, or a one-line error saying what to do."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise InputError(
            f"No Dask scheduler answers at {address} within {timeout:g} s ({type(error).__name__}); start one "
            "(dask scheduler), check the address and port, or run with --workers N for a local cluster.") from None
    except ValueError as error:
        raise InputError(f"{address!r} is not a scheduler address ({error}); write it like tcp://host:8786.") from None


def _affinity(client, groups: list[tuple]) -> dict[tuple, list[str]]:
    workers = sorted(client.scheduler_info()["workers"])
    if not workers or len(groups) < len(workers):
        return {}
    return {group: [workers[index % len(workers)]] for index, group in enumerate(groups)}


def run_on_client(recipe: Recipe, out_dir: str | Path, client, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> RunSummary:
    """Submit every item not yet done to ``client``'s cluster and gather the results as they finish."""
    from distributed import as_completed

    out_dir = Path(out_dir).resolve()
    gpu = {"GPU": 1} if uses_gpu(recipe) else None
    if gpu and not any(w.get("resources", {}).get("GPU") for w in client.scheduler_info()["workers"].values()):
        raise InputError("The recipe marches on CUDA but no Dask worker offers the resource GPU; start GPU workers "
                         "with --resources GPU=1 (the cluster section's gpus: 1 does it), or set "
                         "drr.parameters.device: cpu.")
    start = start_run(recipe, out_dir)
    total = max(1, len(start.items))
    done = len(start.items) - len(start.pending)
    report(progress, done / total, f"{done} already done")
    groups = list(dict.fromkeys(item.group for item in start.pending))
    affinity = _affinity(client, groups)
    futures = {}
    for index, item in enumerate(start.pending):
        future = client.submit(run_item, recipe, start.inputs[item.case], item, str(out_dir), key=f"medsynth-{item.key}",
                               pure=False, priority=-index, resources=gpu, workers=affinity.get(item.group),
                               allow_other_workers=True)
        futures[future] = item
    made, failed = 0, {}
    try:
        for future in as_completed(futures):
            item = futures[future]
            check_cancel(cancel)
            made += settle(future, item, failed)
            done += 1
            report(progress, done / total, item.key)
    finally:
        for future in futures:
            future.cancel()
    return finish_run(recipe, out_dir, start, made, failed)


def run_dask(recipe: Recipe, out_dir: str | Path, *, workers: int | None = None, scheduler: str | None = None,
             use_cluster: bool = False, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
             on_dashboard=None) -> RunSummary:
    """Run on a LocalCluster (``workers``), an existing scheduler (``scheduler``) or the recipe's batch cluster."""
    from distributed import Client

    if sum(bool(x) for x in (workers, scheduler, use_cluster)) != 1:
        raise InputError("Choose one of --workers N, --scheduler ADDRESS or --cluster.")
    from medsynth.jobs.kernel_cache import warm_kernels_in_child

    warm_kernels_in_child()  # workers started after this load the same cached kernels
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(connect(scheduler))
        elif workers:
            cluster = stack.enter_context(local_cluster(int(workers), gpu=uses_gpu(recipe)))
            client = stack.enter_context(Client(cluster))
        else:
            if recipe.cluster is None:
                raise InputError("--cluster needs a 'cluster:' section in the recipe (kind: slurm, pbs or lsf).")
            cluster = stack.enter_context(contextlib.closing(jobqueue_cluster(recipe.cluster)))
            cluster.scale(jobs=recipe.cluster.jobs)
            client = stack.enter_context(Client(cluster))
        if on_dashboard is not None:
            on_dashboard(client.dashboard_link)
        summary = run_on_client(recipe, out_dir, client, progress, cancel)
        summary.dashboard = client.dashboard_link
        return summary
