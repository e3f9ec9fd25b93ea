"""Atomic outputs: write to a temporary sibling, then rename over the target.

A crash or a cancel never leaves a half-written file or folder under the final name, so an
interrupted batch can resume by looking at which outputs exist.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _suffixes(path: Path) -> str:
    """All extensions of a file name ('.nii.gz', '.seg.nrrd'): writers infer the format from them."""
    return "".join(path.suffixes[-2:]) if path.name.endswith((".nii.gz", ".seg.nrrd")) else path.suffix


@contextlib.contextmanager
def atomic_output(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``.

    With ``directory=True`` a temporary folder is yielded and renamed as a whole.
    On any exception the temporary is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=_suffixes(target), dir=target.parent)
        os.close(handle)
        temp = Path(name)
    try:
        yield temp
        # mkstemp/mkdtemp create private (0600/0700) entries: give the output the usual permissions
        os.chmod(temp, (0o777 if directory else 0o666) & ~_current_umask())
        if directory and target.exists():
            shutil.rmtree(target)
        os.replace(temp, target)
    except BaseException:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
        raise
