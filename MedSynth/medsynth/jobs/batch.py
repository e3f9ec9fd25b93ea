"""Resumable batches: each item writes one output folder atomically; done items are skipped.

An interrupted run (crash, Ctrl-C, cancel) leaves only complete folders under their final
names, so running the same command again does only the missing items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

DONE_MARKER = "done.json"


@dataclass
class BatchItem:
    name: str  # output folder name, unique in the batch
    payload: object = None  # whatever the worker needs


def run_batch(
    items: Iterable[BatchItem],
    out_dir: str | Path,
    work: Callable[[BatchItem, Path], None],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[int, int]:
    """Run ``work(item, folder)`` for each item not yet done; return (done now, skipped).

    ``work`` writes its outputs into ``folder`` (a temporary), which becomes ``out_dir/item.name``
    only when ``work`` returns.
    """
    out_dir = Path(out_dir)
    items = list(items)
    done_now = skipped = 0
    for index, item in enumerate(items):
        check_cancel(cancel)
        final = out_dir / item.name
        if (final / DONE_MARKER).exists():
            skipped += 1
            report(progress, (index + 1) / len(items), f"{item.name}: already done")
            continue
        with atomic_output(final, directory=True) as folder:
            work(item, folder)
            (folder / DONE_MARKER).write_text('{"status": "done"}\n')
        done_now += 1
        report(progress, (index + 1) / len(items), f"{item.name}: done")
    return done_now, skipped
