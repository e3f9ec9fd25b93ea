"""Dataset generation: K tumor variants of one CT, each in its own folder, resumable.

Variant ``v`` of seed ``S`` always uses the generator ``default_rng([S, v])``, so an interrupted
run that is started again makes exactly the variants it had not finished, and finished folders
are never touched (``medsynth.jobs.run_batch``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.jobs import BatchItem, CancelToken, ProgressCallback, run_batch
from medsynth.tumor.organ import OrganContext
from medsynth.tumor.outputs import write_outputs
from medsynth.tumor.spec import TumorSpec
from medsynth.tumor.engine import synthesize
from medsynth.volume import Volume


def variant_name(index: int, total: int) -> str:
    return f"variant_{index:0{max(3, len(str(total - 1)))}d}"


def generate_variants(
    ct: Volume,
    liver,
    spec: TumorSpec,
    seed: int,
    variants: int,
    out_dir: str | Path,
    liver_label: int | str | None = None,
    ct_name: str = "ct.nii.gz",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[int, int]:
    """Write ``variants`` folders under ``out_dir``; return (made now, already done).

    Each variant is painted into ``ct.array`` itself and undone right after it is written (no
    copy of the scan per variant); the CT is back to its original voxels when this returns,
    also after an error or a cancel.
    """
    spec.validate()
    if variants < 1:
        from medsynth.errors import InputError

        raise InputError(f"variants must be at least 1, not {variants}.")
    context = OrganContext(ct, liver, liver_label, organ=spec.organ)
    context.require_not_empty()
    items = [BatchItem(variant_name(v, variants), v) for v in range(variants)]

    def work(item: BatchItem, folder: Path) -> None:
        rng = np.random.default_rng([int(seed), int(item.payload)])
        result = synthesize(ct, liver, spec, rng, context=context, in_place=True)
        try:
            write_outputs(result, folder, ct_name=ct_name, seed=int(seed), variant=int(item.payload),
                          spec=spec.to_dict(), source=str(ct.metadata.source or ""))
        finally:
            result.undo(ct.array)  # the next variant starts from the original CT

    return run_batch(items, out_dir, work, progress=progress, cancel=cancel)
