"""CUDA kernel (numba-cuda): the CPU marcher's arithmetic, one GPU thread per detector pixel.

Imported only when CUDA is asked for. Tested against the CPU kernel in numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) on a tiny volume, and on a real GPU when one is present.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from medsynth.errors import DeviceError


@lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """(usable, reason): whether numba-cuda is installed and sees a GPU (or the simulator is on).

    Probing the driver takes about a second, so the answer is cached for the process.
    """
    try:
        from numba import cuda
    except Exception as error:  # noqa: BLE001 - any import failure means no CUDA
        return False, f"numba-cuda cannot be imported ({error})"
    try:
        if cuda.is_available():
            return True, "simulator" if is_simulator() else "gpu"
    except Exception as error:  # noqa: BLE001
        return False, f"the CUDA driver failed: {error}"
    return False, "no NVIDIA GPU or driver was found"


def is_simulator() -> bool:
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", False))


def require_cuda() -> None:
    usable, reason = cuda_status()
    if not usable:
        raise DeviceError(
            f"CUDA was asked for, but {reason}. Use device='cpu' (or 'auto'), or install an NVIDIA driver "
            "and `pip install \"medsynth[cuda]\"` on a machine with an NVIDIA GPU."
        )


@lru_cache(maxsize=1)
def _kernel():
    # module globals (not closure variables), so that numba's CUDA simulator can swap them in
    global cuda, float32, int64
    from numba import cuda, float32, int64

    @cuda.jit
    def march_kernel(vol_f, vol_u, nk, nj, ni, src, d0, d_outer, d_inner, n_outer, n_inner, metric, out):
        q, o = cuda.grid(2)
        if o >= n_outer or q >= n_inner:
            return
        acc = cuda.local.array(8, float32)
        for m in range(8):
            acc[m] = 0.0
        n_mat = out.shape[2]
        d_0 = d0[0] + o * d_outer[0] + q * d_inner[0] - src[0]
        d_1 = d0[1] + o * d_outer[1] + q * d_inner[1] - src[1]
        d_2 = d0[2] + o * d_outer[2] + q * d_inner[2] - src[2]
        t0 = 0.0
        t1 = 1.0
        sizes = (ni, nj, nk)
        dirs = (d_0, d_1, d_2)
        for axis in range(3):
            s = src[axis]
            dv = dirs[axis]
            hi_edge = sizes[axis] - 0.5
            if abs(dv) < 1e-12:
                if s < -0.5 or s > hi_edge:
                    t1 = -1.0
            else:
                ta = (-0.5 - s) / dv
                tb = (hi_edge - s) / dv
                if ta > tb:
                    ta, tb = tb, ta
                t0 = max(t0, ta)
                t1 = min(t1, tb)
        if t1 <= t0:
            for m in range(n_mat):
                out[o, q, m] = 0.0
            return
        if abs(d_0) >= abs(d_1) and abs(d_0) >= abs(d_2):
            a, b, c = 0, 1, 2
        elif abs(d_1) >= abs(d_2):
            a, b, c = 1, 0, 2
        else:
            a, b, c = 2, 0, 1
        da = dirs[a]
        strides = (int64(1), int64(ni), int64(ni) * int64(nj))
        lo = src[a] + min(t0 * da, t1 * da)
        hi = src[a] + max(t0 * da, t1 * da)
        first = max(int(math.floor(lo + 0.5)), 0)
        last = min(int(math.floor(hi + 0.5)), sizes[a] - 1)
        slope_b = dirs[b] / da
        slope_c = dirs[c] / da
        pb = src[b] + (first - src[a]) * slope_b
        pc = src[c] + (first - src[a]) * slope_c
        max_b = sizes[b] - 1.0
        max_c = sizes[c] - 1.0
        sa = strides[a]
        sb = strides[b]
        sc = strides[c]
        for p in range(first, last + 1):
            cb = min(max(pb, 0.0), max_b)
            cc = min(max(pc, 0.0), max_c)
            ib = min(int64(cb), sizes[b] - 2)
            ic = min(int64(cc), sizes[c] - 2)
            fb = float32(cb - ib)
            fc = float32(cc - ic)
            weight = float32(min(p + 0.5, hi) - max(p - 0.5, lo))
            base = p * sa + ib * sb + ic * sc
            gb = float32(1.0) - fb
            gc = float32(1.0) - fc
            acc[vol_u[base] & 7] += gc * gb * weight * vol_f[base]
            acc[vol_u[base + sb] & 7] += gc * fb * weight * vol_f[base + sb]
            acc[vol_u[base + sc] & 7] += fc * gb * weight * vol_f[base + sc]
            acc[vol_u[base + sc + sb] & 7] += fc * fb * weight * vol_f[base + sc + sb]
            pb += slope_b
            pc += slope_c
        length = 0.0
        for r in range(3):
            row = 0.0
            for col in range(3):
                row += metric[r, col] * dirs[col]
            length += dirs[r] * row
        scale = math.sqrt(length) / abs(da) * 0.1
        for m in range(n_mat):
            out[o, q, m] = acc[m] * scale

    return march_kernel


class CudaMarcher:
    """Holds the packed volume on the GPU for many poses (one upload per prepared volume)."""

    def __init__(self, packed: np.ndarray) -> None:
        require_cuda()
        from numba import cuda

        self.shape = packed.shape
        flat = np.ascontiguousarray(packed).ravel()
        self._f = cuda.to_device(flat)
        self._u = cuda.to_device(flat.view(np.uint32)) if is_simulator() else self._f.view(np.uint32)

    def march(self, setup, n_materials: int) -> np.ndarray:
        from numba import cuda

        kernel = _kernel()
        nk, nj, ni = self.shape
        out = cuda.device_array((setup.n_outer, setup.n_inner, n_materials), dtype=np.float32)
        threads = (16, 8) if not is_simulator() else (4, 4)
        blocks = (math.ceil(setup.n_inner / threads[0]), math.ceil(setup.n_outer / threads[1]))
        kernel[blocks, threads](
            self._f, self._u, nk, nj, ni,
            cuda.to_device(np.asarray(setup.source, np.float64)), cuda.to_device(np.asarray(setup.origin, np.float64)),
            cuda.to_device(np.asarray(setup.outer, np.float64)), cuda.to_device(np.asarray(setup.inner, np.float64)),
            setup.n_outer, setup.n_inner, cuda.to_device(np.asarray(setup.metric, np.float64)), out,
        )
        return out.copy_to_host()
