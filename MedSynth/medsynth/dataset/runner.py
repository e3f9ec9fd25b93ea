"""Running a recipe: locally in this process (the default) or on Dask (``medsynth.dataset.distributed``).

Both runners do the same three things: ``start_run`` (check the inputs, clean what a killed run
left half-written, checksum the inputs), the items that are not done yet, then ``finish_run``
(manifest and contact sheet from the finished items' rows). An item is done when its folder
exists, and folders appear whole (atomic rename), so a run killed at any moment, even with
kill -9, resumes without redoing a finished item and without keeping a partial one.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from medsynth.dataset.job import CaseInputs, case_inputs, check_grids, is_done
from medsynth.dataset.plan import PlanItem, plan
from medsynth.dataset.recipe import Recipe
from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

RECIPE_COPY = "recipe.json"
#: Views marched ahead of the writer in a local run.
WRITE_AHEAD = 1


@dataclass
class RunSummary:
    planned: int
    made: int
    skipped: int
    failed: dict[str, str] = field(default_factory=dict)
    manifest: Path | None = None
    contact_sheet: Path | None = None
    dashboard: str | None = None

    def line(self) -> str:
        text = f"{self.made} image(s) made, {self.skipped} already done, {len(self.failed)} failed of {self.planned}"
        return text + (f"; manifest {self.manifest}" if self.manifest else "")


#: Temporaries of ``medsynth.io.atomic`` (tempfile's 8 random characters): what a killed run leaves.
_TEMPORARY = re.compile(r"^\.[^/]+\.[a-z0-9_]{8}(\.partial|\.json|\.parquet|\.png)$")


def remove_partials(out_dir: Path) -> int:
    """Delete what a killed run left half-written: atomic writes' temporaries in the dataset's own
    folders (the root, and each case's variant folders), nothing else."""
    if not out_dir.is_dir():
        return 0
    folders = [out_dir] + [variant for case in out_dir.iterdir() if case.is_dir() and not case.name.startswith(".")
                           for variant in case.iterdir() if variant.is_dir()]
    removed = 0
    for folder in folders:
        for path in folder.iterdir():
            if _TEMPORARY.match(path.name):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                removed += 1
    return removed


@dataclass
class RunStart:
    items: list[PlanItem]
    pending: list[PlanItem]
    inputs: dict[str, CaseInputs]


def start_run(recipe: Recipe, out_dir: str | Path) -> RunStart:
    """Check every case (before any output), clean partials, checksum the inputs, record the recipe."""
    out_dir = Path(out_dir)
    for case in recipe.cases:
        check_grids(case)
    items = plan(recipe)
    copy = out_dir / RECIPE_COPY
    if out_dir.is_dir() and not copy.is_file() and any(not p.name.startswith(".") for p in out_dir.iterdir()):
        raise InputError(f"{out_dir} is not empty and holds no dataset (no {RECIPE_COPY}); give an empty or new "
                         "--out folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_partials(out_dir)
    if copy.is_file():
        previous = json.loads(copy.read_text()).get("recipe_sha256")
        if previous != recipe.digest():
            raise InputError(f"{out_dir} holds a dataset made from another recipe (recipe.json differs); give a new "
                             "--out folder, or the same recipe to resume.")
    else:
        with atomic_output(copy) as temp:
            temp.write_text(json.dumps({"recipe_sha256": recipe.digest(), "recipe": recipe.raw}, indent=1,
                                       sort_keys=True) + "\n")
    inputs = {case.name: case_inputs(case) for case in recipe.cases}
    pending = [item for item in items if not is_done(out_dir, item)]
    return RunStart(items, pending, inputs)


def finish_run(recipe: Recipe, out_dir: str | Path, start: RunStart, made: int, failed: dict[str, str]) -> RunSummary:
    from medsynth.dataset.contact_sheet import contact_sheet
    from medsynth.dataset.manifest import read_rows, write_manifest

    out_dir = Path(out_dir)
    parquet, json_path, _rows = write_manifest(out_dir, recipe, start.items, failed)
    sheet = contact_sheet(out_dir, recipe, read_rows(out_dir, start.items))
    return RunSummary(len(start.items), made, len(start.items) - len(start.pending), failed, parquet or json_path, sheet)


def raise_failures(summary: RunSummary) -> None:
    """One line for the first failed item (the others are listed in manifest.json)."""
    if summary.failed:
        key, message = next(iter(summary.failed.items()))
        more = f" ({len(summary.failed) - 1} more in manifest.json)" if len(summary.failed) > 1 else ""
        raise InputError(f"{message}{more}; the other items are done and kept." if key in message
                         else f"{key}: {message}{more}; the other items are done and kept.")


def settle(future, item: PlanItem, failed: dict[str, str]) -> int:
    """Wait for one item's future: 1 if it was made, 0 if it failed (its one-line error kept in ``failed``)."""
    try:
        future.result()
        return 1
    except InputError as error:
        failed[item.key] = str(error)
        return 0


def run_local(recipe: Recipe, out_dir: str | Path, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> RunSummary:
    """Make every item not yet done, in this process, one (case, variant) prepared at a time.

    Writing overlaps marching: one writer thread saves view i while view i + 1 is marched (the
    kernels release the GIL), at most WRITE_AHEAD views held in memory.
    """
    from concurrent.futures import ThreadPoolExecutor

    from medsynth.dataset.job import cached_group, project_item, write_projected
    from medsynth.jobs.kernel_cache import warm_kernels_in_child

    out_dir = Path(out_dir)
    start = start_run(recipe, out_dir)
    warm_kernels_in_child()  # cached kernels only: a resumed run writes the same bytes
    made, failed = 0, {}
    total = max(1, len(start.items))
    done = len(start.items) - len(start.pending)
    report(progress, done / total, f"{done} already done")
    writing: list[tuple[PlanItem, object]] = []

    def collect(keep: int) -> None:
        nonlocal made, done
        while len(writing) > keep:
            item, future = writing.pop(0)
            made += settle(future, item, failed)
            done += 1
            report(progress, done / total, item.key)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medsynth-writer") as writer:
        try:
            for item in start.pending:
                check_cancel(cancel)
                inputs = start.inputs[item.case]
                try:
                    group = cached_group(recipe, inputs, item)
                    projected = project_item(recipe, item, group)
                except InputError as error:
                    failed[item.key] = str(error)
                    done += 1
                    report(progress, done / total, item.key)
                    continue
                writing.append((item, writer.submit(write_projected, recipe, inputs, projected, group, out_dir)))
                collect(WRITE_AHEAD)
            collect(0)
        except BaseException:
            for _item, future in writing:  # finish what is being written: complete folders only
                future.cancel()
            raise
    return finish_run(recipe, out_dir, start, made, failed)
