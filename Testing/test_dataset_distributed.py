"""The Dask side: schedulers that do not answer, and dask-jobqueue job scripts from a recipe's cluster section."""

from __future__ import annotations

import socket

import pytest

from medsynth.errors import InputError


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_scheduler_that_does_not_answer_is_one_line_with_the_fix():
    from medsynth.dataset.distributed import connect

    address = f"tcp://127.0.0.1:{closed_port()}"
    with pytest.raises(InputError) as raised:
        connect(address, timeout=2)
    message = str(raised.value)
    assert address in message and "--workers N" in message and "\n" not in message


def test_only_one_place_to_run(tmp_path):
    from medsynth.dataset import recipe_from_dict
    from medsynth.dataset.distributed import run_dask

    (tmp_path / "ct.nii").write_bytes(b"")
    recipe = recipe_from_dict({"cases": [{"ct": "ct.nii"}]}, tmp_path)
    for places in ({}, {"workers": 2, "scheduler": "tcp://127.0.0.1:1"}):
        with pytest.raises(InputError, match="Choose one of --workers N, --scheduler ADDRESS or --cluster"):
            run_dask(recipe, tmp_path / "out", **places)
    with pytest.raises(InputError, match="--cluster needs a 'cluster:' section"):
        run_dask(recipe, tmp_path / "out", use_cluster=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind, directive, extra", [
    ("slurm", "#SBATCH", ["#SBATCH -p gpu", "#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=4", "#SBATCH -A lab"]),
    ("pbs", "#PBS", ["#PBS -q gpu", "#PBS -A lab", "ncpus=4"]),
    ("lsf", "#BSUB", ["#BSUB -q gpu", '#BSUB -P "lab"', "#BSUB -n 4"]),
])
def test_cluster_section_makes_the_job_script(tmp_path, kind, directive, extra):
    from medsynth.dataset import load_recipe
    from medsynth.dataset.distributed import job_script

    (tmp_path / "ct.nii").write_bytes(b"")
    (tmp_path / "recipe.yaml").write_text(
        "cases: [{ct: ct.nii}]\n"
        f"cluster: {{kind: {kind}, jobs: 3, cores: 4, memory: 16GB, walltime: '02:00:00', queue: gpu, "
        "account: lab, gpus: 1, prologue: ['module load cuda']}\n")
    recipe = load_recipe(tmp_path / "recipe.yaml")
    script = job_script(recipe.cluster)
    assert script.startswith("#!/usr/bin/env bash") and directive in script
    for line in extra:
        assert line in script, script
    assert "module load cuda" in script and "--resources GPU=1" in script and "dask_worker" in script
    with pytest.raises(InputError, match=r"recipe.cluster.kind is 'sge'; choose one of: slurm, pbs, lsf"):
        (tmp_path / "bad.yaml").write_text("cases: [{ct: ct.nii}]\ncluster: {kind: sge}\n")
        load_recipe(tmp_path / "bad.yaml")


def test_cuda_recipe_asks_for_gpu_workers_and_never_waits_for_none(tmp_path):
    """device: cuda -> tasks need the worker resource GPU; a cluster without one is refused at once."""
    from distributed import Client, LocalCluster

    from medsynth.dataset import recipe_from_dict
    from medsynth.dataset.distributed import run_on_client, uses_gpu

    (tmp_path / "ct.nii").write_bytes(b"")
    cuda = recipe_from_dict({"cases": [{"ct": "ct.nii"}], "drr": {"parameters": {"device": "cuda"}}}, tmp_path)
    cpu = recipe_from_dict({"cases": [{"ct": "ct.nii"}], "drr": {"parameters": {"device": "cpu"}}}, tmp_path)
    assert uses_gpu(cuda) and not uses_gpu(cpu)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with pytest.raises(InputError, match="no Dask worker offers the resource GPU.*--resources GPU=1"):
            run_on_client(cuda, tmp_path / "out", client)
    assert not (tmp_path / "out").exists()
