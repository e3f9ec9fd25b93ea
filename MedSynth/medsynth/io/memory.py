"""Estimate memory before allocating, so a too-large volume fails with advice instead of a crash."""

from __future__ import annotations

import os

from medsynth.errors import MemoryBudgetError


def available_memory_bytes() -> int:
    """Memory the OS can give us now (MemAvailable on Linux; psutil elsewhere when installed)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return 1 << 62  # unknown: do not block


def check_memory_for(n_bytes: int, what: str, limit_bytes: int | None = None) -> None:
    """Raise MemoryBudgetError if ``n_bytes`` (plus a safety margin) exceed available memory.

    ``MEDSYNTH_MEMORY_LIMIT_MB`` lowers the limit (useful on shared servers and in tests).
    """
    limit = limit_bytes if limit_bytes is not None else available_memory_bytes()
    env_limit = os.environ.get("MEDSYNTH_MEMORY_LIMIT_MB")
    if env_limit:
        limit = min(limit, int(float(env_limit) * 1024 * 1024))
    needed = int(n_bytes * 1.2)  # headroom for the reader's own temporaries
    if needed > limit:
        raise MemoryBudgetError(
            f"{what} needs about {needed / 2**30:.2f} GiB but only {limit / 2**30:.2f} GiB is available. "
            "Close other programs, crop or downsample the volume first, or use a machine with more memory."
        )
