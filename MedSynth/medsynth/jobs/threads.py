"""One lock for numba's parallel kernels, so that a GUI's threads never run two at once.

numba's default "workqueue" threading layer is not thread-safe: two threads running
``parallel=True`` kernels at the same time abort the whole process ("Concurrent access has been
detected"). That can happen in Slicer or the web app (the kernel warm-up thread, the main thread
preparing a CT, a worker marching a preview, a tumor painted meanwhile). Every call of a
parallel kernel in MedSynth takes this lock; which layer a platform gets then does not matter.
"""

from __future__ import annotations

import threading

#: Held around every call of a numba ``parallel=True`` kernel (re-entrant: kernels may nest calls).
PARALLEL_KERNELS = threading.RLock()
