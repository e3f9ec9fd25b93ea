"""A tqdm progress bar as a MedSynth progress callback."""

from __future__ import annotations

import contextlib
from typing import Iterator

from tqdm import tqdm

from medsynth.jobs.progress import ProgressCallback


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[ProgressCallback]:
    """Yield a callback drawing a 0-100 % bar on stderr (silent when ``enabled`` is False)."""
    bar = tqdm(total=100, desc=description, unit="%", disable=not enabled, leave=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def update(fraction: float, message: str = "") -> None:
        bar.n = round(100 * fraction, 1)
        if message:
            bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
