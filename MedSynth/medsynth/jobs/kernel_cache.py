"""Make every process run MedSynth's numba kernels from numba's disk cache.

numba's freshly compiled machine code and the same kernels loaded from its cache can differ in
the last bits of float results (the kernels use fastmath; measured here: up to 7e-5 g/cm^2 in a
DRR's area density). A dataset run that compiled its kernels and a resumed run that loaded them
would then write different bytes. So before a run, a child process compiles (or just loads) the
kernels and fills the cache; this process and every worker started after it load the same code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import medsynth

#: What the child runs: one tiny DRR and one tiny tumor, which touch every kernel a dataset uses.
_WARM_UP = """
import numpy as np
from medsynth.drr.projector import warm_up
from medsynth.phantoms import abdomen_phantom
from medsynth.tumor import TumorSpec, synthesize
warm_up()
ct, liver = abdomen_phantom()
synthesize(ct, liver, TumorSpec(), np.random.default_rng(0))
"""

_warmed = False


def warm_kernels_in_child(timeout_s: float = 1800.0) -> bool:
    """Fill numba's cache from a child process (once per process); True when the child succeeded.

    Call it before this process runs any kernel: code this process already compiled stays in use.
    A failure here is not an error (the run then compiles in process, as before).
    """
    global _warmed
    if _warmed:
        return True
    package_root = str(Path(medsynth.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    try:
        result = subprocess.run([sys.executable, "-c", _WARM_UP], env=env, capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return False
    _warmed = result.returncode == 0
    return _warmed
