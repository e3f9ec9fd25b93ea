"""The CPU ray marcher (numba, parallel, cached on disk so later runs do not recompile).

Ray order follows memory: the caller picks which detector axis is the inner loop so that
consecutive rays move along the volume's fastest (I) axis and share cache lines. Within a ray,
interior planes run as SIMD lanes (gathers with 32-bit offsets, see ``intrinsics``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from medsynth.drr.kernels.intrinsics import as_float32, load, load_pair, madd
from medsynth.drr.kernels.packing import MATERIAL_BITS, UNIFORM_BIT

LOW_HALF = np.uint64(0xFFFFFFFF)
HIGH_SHIFT = np.uint64(32)
#: Neighbouring rays marched together, and planes per chunk: a group's chunk of cache lines
#: (about 64 planes x 2 rows x 2 lines) stays in L1 while each of its rays reads it.
GROUP = 16
CHUNK = 64


@njit(fastmath=True, inline="always")
def _clip(src, direc, lo, hi, t0, t1):
    if abs(direc) < 1e-12:
        if src < lo or src > hi:
            return 1.0, 0.0
        return t0, t1
    ta = (lo - src) / direc
    tb = (hi - src) / direc
    if ta > tb:
        ta, tb = tb, ta
    return max(t0, ta), min(t1, tb)


@njit(fastmath=True, inline="always")
def _inside(start, slope, upper, first, last):
    """Planes p in [first, last] where start + (p - first) slope stays in [0, upper), shrunk by one for safety."""
    if slope == 0.0:
        if 0.0 <= start < upper:
            return first, last
        return last + 1, first - 1
    ta = (0.0 - start) / slope
    tb = (upper - start) / slope
    if ta > tb:
        ta, tb = tb, ta
    lo = first + int(math.ceil(max(ta, -1e9))) + 1
    hi = first + int(math.floor(min(tb, 1e9))) - 1
    return lo, hi


@njit(fastmath=True, inline="always")
def _interior(vol_u, acc, run_m, run, pb, pc, slope_b, slope_c, first, last, sa, sb, sc):
    """Scalar interior planes for more than four materials (the vector path keeps four sums).

    Consecutive samples mostly share one material, so they are summed in a register (``run``)
    and flushed to ``acc`` only when the material changes or the four corners differ.
    """
    ub = np.uint64(sb)
    uc = np.uint64(sc)
    base_p = np.int64(first) * sa
    for p in range(first, last + 1):
        ib = np.int64(pb)
        ic = np.int64(pc)
        fb = np.float32(pb - ib)
        fc = np.float32(pc - ic)
        base = np.uint64(base_p + ib * sb + ic * sc)
        u00 = vol_u[base]
        u01 = vol_u[base + ub]
        u10 = vol_u[base + uc]
        u11 = vol_u[base + uc + ub]
        m = u00 & MATERIAL_BITS
        if u00 & UNIFORM_BIT:
            top = as_float32(u00) + fb * (as_float32(u01) - as_float32(u00))
            bottom = as_float32(u10) + fb * (as_float32(u11) - as_float32(u10))
            value = top + fc * (bottom - top)
            if m != run_m:
                acc[run_m] += run
                run = np.float32(0.0)
                run_m = m
            run += value
        else:
            gb = np.float32(1.0) - fb
            gc = np.float32(1.0) - fc
            acc[m] += gc * gb * as_float32(u00)
            acc[u01 & MATERIAL_BITS] += gc * fb * as_float32(u01)
            acc[u10 & MATERIAL_BITS] += fc * gb * as_float32(u10)
            acc[u11 & MATERIAL_BITS] += fc * fb * as_float32(u11)
        pb += slope_b
        pc += slope_c
        base_p += sa
    return run_m, run


@njit(fastmath=True, inline="always")
def _split(u00, u01, u10, u11, fb, fc, weight, four):
    """One bilinear sample times ``weight``, split by material: each corner's weight x density goes
    to its own material. Branch-free, so the plane loop vectorizes. ``s0`` is the sum over all
    materials (the caller subtracts the others); material 3 is summed only when ``four``, a
    loop-invariant flag that LLVM hoists out of the loop, so three-material CTs skip its compares."""
    gb = np.float32(1.0) - fb
    gc = (np.float32(1.0) - fc) * weight
    fc = fc * weight
    v00 = gc * gb * as_float32(u00)
    v01 = gc * fb * as_float32(u01)
    v10 = fc * gb * as_float32(u10)
    v11 = fc * fb * as_float32(u11)
    m00 = u00 & MATERIAL_BITS
    m01 = u01 & MATERIAL_BITS
    m10 = u10 & MATERIAL_BITS
    m11 = u11 & MATERIAL_BITS
    z = np.float32(0.0)
    s0 = (v00 + v01) + (v10 + v11)  # all materials: material 0 is what the others leave
    s1 = ((v00 if m00 == 1 else z) + (v01 if m01 == 1 else z)) + ((v10 if m10 == 1 else z) + (v11 if m11 == 1 else z))
    s2 = ((v00 if m00 == 2 else z) + (v01 if m01 == 2 else z)) + ((v10 if m10 == 2 else z) + (v11 if m11 == 2 else z))
    s3 = z
    if four:
        s3 = ((v00 if m00 == 3 else z) + (v01 if m01 == 3 else z)) + ((v10 if m10 == 3 else z) + (v11 if m11 == 3 else z))
    return s0, s1, s2, s3


@njit(fastmath=True, inline="always")
def _cell(pb, pc, step, slope_b, slope_c):
    """The bilinear cell (ib, ic) and fractions (fb, fc) of a ray ``step`` planes after ``pb, pc``."""
    cb = pb + np.float32(step) * slope_b
    cc = pc + np.float32(step) * slope_c
    ib = np.int32(cb)
    ic = np.int32(cc)
    return ib, ic, cb - np.float32(ib), cc - np.float32(ic)


@njit(fastmath=True, inline="always")
def _lanes(count):
    """``count`` rounded up to whole 16-lane vectors: the extra steps repeat the last plane with
    weight 0, so no plane falls to the slow scalar remainder loop LLVM adds after a vector loop."""
    return (count + 15) // 16 * 16


@njit(fastmath=True, nogil=True)
def _planes_pairs(vol_u, first, last, pb, pc, slope_b, slope_c, sa, sc, four):
    """Per-material sums over interior planes ``first..last`` when axis b is the volume's fastest:
    the two corners along b are neighbours in memory and come in one 8-byte read."""
    a0 = np.float32(0.0)
    a1 = np.float32(0.0)
    a2 = np.float32(0.0)
    a3 = np.float32(0.0)
    count = last - first + 1
    for lane in range(_lanes(count)):
        step = min(lane, count - 1)
        ib, ic, fb, fc = _cell(pb, pc, step, slope_b, slope_c)
        base = madd(np.int32(first + step), sa, madd(ic, sc, ib))
        top = load_pair(vol_u, base)
        bottom = load_pair(vol_u, madd(sc, np.int32(1), base))
        weight = np.float32(1.0) if lane < count else np.float32(0.0)
        s0, s1, s2, s3 = _split(np.uint32(top & LOW_HALF), np.uint32(top >> HIGH_SHIFT),
                                np.uint32(bottom & LOW_HALF), np.uint32(bottom >> HIGH_SHIFT), fb, fc, weight, four)
        a0 += s0
        a1 += s1
        a2 += s2
        a3 += s3
    return a0, a1, a2, a3


@njit(fastmath=True, nogil=True)
def _planes_quads(vol_u, first, last, pb, pc, slope_b, slope_c, sa, sb, sc, four):
    """Per-material sums over interior planes ``first..last`` for any strides (four reads)."""
    a0 = np.float32(0.0)
    a1 = np.float32(0.0)
    a2 = np.float32(0.0)
    a3 = np.float32(0.0)
    sbc = np.int32(sb + sc)
    count = last - first + 1
    for lane in range(_lanes(count)):
        step = min(lane, count - 1)
        ib, ic, fb, fc = _cell(pb, pc, step, slope_b, slope_c)
        base = madd(np.int32(first + step), sa, madd(ic, sc, madd(ib, sb, np.int32(0))))
        weight = np.float32(1.0) if lane < count else np.float32(0.0)
        s0, s1, s2, s3 = _split(load(vol_u, base), load(vol_u, madd(sb, np.int32(1), base)),
                                load(vol_u, madd(sc, np.int32(1), base)), load(vol_u, madd(sbc, np.int32(1), base)),
                                fb, fc, weight, four)
        a0 += s0
        a1 += s1
        a2 += s2
        a3 += s3
    return a0, a1, a2, a3


@njit(fastmath=True, inline="always")
def _edge_planes(vol_u, acc, p_from, p_to, pb, pc, first, slope_b, slope_c, lo, hi, max_b, max_c, sa, sb, sc):
    """Planes near the volume's faces: coordinates clamped to the border voxels (which extend half
    a voxel) and each plane weighted by the part of its slab the ray really crosses."""
    for p in range(p_from, p_to + 1):
        cb = min(max(pb + (p - first) * slope_b, 0.0), max_b)
        cc = min(max(pc + (p - first) * slope_c, 0.0), max_c)
        ib = min(np.int64(cb), np.int64(max_b) - 1)
        ic = min(np.int64(cc), np.int64(max_c) - 1)
        fb = np.float32(cb - ib)
        fc = np.float32(cc - ic)
        weight = np.float32(min(p + 0.5, hi) - max(p - 0.5, lo))
        base = np.uint64(p * sa + ib * sb + ic * sc)
        gb = np.float32(1.0) - fb
        gc = np.float32(1.0) - fc
        u00 = vol_u[base]
        u01 = vol_u[base + np.uint64(sb)]
        u10 = vol_u[base + np.uint64(sc)]
        u11 = vol_u[base + np.uint64(sc + sb)]
        acc[u00 & MATERIAL_BITS] += gc * gb * weight * as_float32(u00)
        acc[u01 & MATERIAL_BITS] += gc * fb * weight * as_float32(u01)
        acc[u10 & MATERIAL_BITS] += fc * gb * weight * as_float32(u10)
        acc[u11 & MATERIAL_BITS] += fc * fb * weight * as_float32(u11)


@njit(fastmath=True, inline="always")
def _set_up_ray(vol_u, strides, rows_u, rows_strides, shape, src, d, metric, acc, axes, span, coef):
    """Clip one ray to the volume, choose its axes and copy, march its edge planes into ``acc`` and
    store what its interior planes need: ``axes`` (a, b, c, 1 for the along-rows copy), ``span``
    (first, last interior plane) and ``coef`` (b, c at the first interior plane, slopes, scale to
    g/cm^2). Returns False for a miss."""
    n = (shape[2], shape[1], shape[0])  # sizes along i, j, k
    t0, t1 = 0.0, 1.0
    t0, t1 = _clip(src[0], d[0], -0.5, n[0] - 0.5, t0, t1)
    t0, t1 = _clip(src[1], d[1], -0.5, n[1] - 0.5, t0, t1)
    t0, t1 = _clip(src[2], d[2], -0.5, n[2] - 0.5, t0, t1)
    span[0] = 0
    span[1] = -1
    if t1 <= t0:
        return False
    # dominant axis a; minor axes b, c
    if abs(d[0]) >= abs(d[1]) and abs(d[0]) >= abs(d[2]):
        a, b, c = 0, 1, 2
    elif abs(d[1]) >= abs(d[2]):
        a, b, c = 1, 0, 2
    else:
        a, b, c = 2, 0, 1
    along_rows = a == 0
    if along_rows:  # rays along I read the copy whose fastest axis is J
        vol_u, strides = rows_u, rows_strides
    if strides[c] == 1:  # the fastest minor axis goes first: its corners can be read in pairs
        b, c = c, b
    axes[0], axes[1], axes[2], axes[3] = a, b, c, 1 if along_rows else 0
    da, db, dc = d[a], d[b], d[c]
    lo = src[a] + min(t0 * da, t1 * da)
    hi = src[a] + max(t0 * da, t1 * da)
    first = max(int(math.floor(lo + 0.5)), 0)
    last = min(int(math.floor(hi + 0.5)), n[a] - 1)
    slope_b = db / da
    slope_c = dc / da
    pb = src[b] + (first - src[a]) * slope_b
    pc = src[c] + (first - src[a]) * slope_c
    max_b = n[b] - 1.0
    max_c = n[c] - 1.0
    sa, sb, sc = strides[a], strides[b], strides[c]
    # planes where both minor coordinates stay inside [0, n - 1) need no clamping
    inner_first, inner_last = _inside(pb, slope_b, max_b, first, last)
    inner_first2, inner_last2 = _inside(pc, slope_c, max_c, first, last)
    inner_first = max(inner_first, inner_first2, first + 1)
    inner_last = min(inner_last, inner_last2, last - 1)
    if inner_first <= inner_last:
        _edge_planes(vol_u, acc, first, inner_first - 1, pb, pc, first, slope_b, slope_c, lo, hi, max_b, max_c, sa, sb, sc)
        _edge_planes(vol_u, acc, inner_last + 1, last, pb, pc, first, slope_b, slope_c, lo, hi, max_b, max_c, sa, sb, sc)
        span[0] = inner_first
        span[1] = inner_last
    else:
        _edge_planes(vol_u, acc, first, last, pb, pc, first, slope_b, slope_c, lo, hi, max_b, max_c, sa, sb, sc)
    coef[0] = pb + (inner_first - first) * slope_b
    coef[1] = pc + (inner_first - first) * slope_c
    coef[2] = slope_b
    coef[3] = slope_c
    length = math.sqrt(
        d[0] * (metric[0, 0] * d[0] + metric[0, 1] * d[1] + metric[0, 2] * d[2])
        + d[1] * (metric[1, 0] * d[0] + metric[1, 1] * d[1] + metric[1, 2] * d[2])
        + d[2] * (metric[2, 0] * d[0] + metric[2, 1] * d[1] + metric[2, 2] * d[2])
    )
    coef[4] = length / abs(da) * 0.1  # per voxel along a -> cm
    return True


@njit(fastmath=True, inline="always")
def _interior_chunk(vol_u, strides, rows_u, rows_strides, axes, span, coef, start, stop, acc, four):
    """Add one ray's interior planes within ``start..stop`` to ``acc`` (four material sums)."""
    first = max(span[0], start)
    last = min(span[1], stop)
    if first > last:
        return
    if axes[3]:
        vol_u, strides = rows_u, rows_strides
    a, b, c = axes[0], axes[1], axes[2]
    pb = np.float32(coef[0] + (first - span[0]) * coef[2])
    pc = np.float32(coef[1] + (first - span[0]) * coef[3])
    slope_b = np.float32(coef[2])
    slope_c = np.float32(coef[3])
    if strides[b] == 1:
        s0, s1, s2, s3 = _planes_pairs(vol_u, first, last, pb, pc, slope_b, slope_c, np.int32(strides[a]),
                                       np.int32(strides[c]), four)
    else:
        s0, s1, s2, s3 = _planes_quads(vol_u, first, last, pb, pc, slope_b, slope_c, np.int32(strides[a]),
                                       np.int32(strides[b]), np.int32(strides[c]), four)
    acc[0] += s0 - s1 - s2 - s3
    acc[1] += s1
    acc[2] += s2
    acc[3] += s3


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def march(vol_u, strides, rows_u, rows_strides, shape, src, d0, d_outer, d_inner, n_outer, n_inner, metric, out):
    """Per-material area densities (g/cm^2) of rays from ``src`` to detector points ``d0 + o d_outer + q d_inner``.

    ``vol_u``: the packed volume's memory as flat uint32 bits; ``strides``: its element strides
    along (i, j, k) (rows may be padded); ``rows_u``, ``rows_strides``: the same voxels laid out
    with J fastest, read by rays that run along I (or ``vol_u`` again); ``shape``: (nk, nj, ni).
    Vectors are continuous
    voxel coordinates (i, j, k); ``metric`` is A^T A of the IJK->RAS matrix (lengths in mm).
    Joseph's method: each ray is sampled once per voxel plane across its dominant axis, bilinearly
    within the plane (4 reads, not a trilinear's 8); a plane stands for the slab of half a voxel on
    either side, clipped at the ray's ends, so a homogeneous box integrates exactly. Voxels at the
    border extend half a voxel (edge values).

    Speed: GROUP neighbouring rays march their interior planes CHUNK planes at a time, so the cache
    lines they share are still in L1 when the next ray reads them; within a ray the planes run as
    SIMD lanes (gathers), with up to four materials. More materials take a scalar loop.
    """
    n_mat = out.shape[2]
    for o in prange(n_outer):
        acc = np.zeros((GROUP, 8), dtype=np.float32)
        axes = np.zeros((GROUP, 4), dtype=np.int64)
        span = np.zeros((GROUP, 2), dtype=np.int64)
        coef = np.zeros((GROUP, 5), dtype=np.float64)
        for q0 in range(0, n_inner, GROUP):
            count = min(GROUP, n_inner - q0)
            lowest = shape[0] + shape[1] + shape[2]
            highest = -1
            for g in range(count):
                q = q0 + g
                d = (d0[0] + o * d_outer[0] + q * d_inner[0] - src[0],
                     d0[1] + o * d_outer[1] + q * d_inner[1] - src[1],
                     d0[2] + o * d_outer[2] + q * d_inner[2] - src[2])
                for m in range(8):
                    acc[g, m] = 0.0
                coef[g, 4] = 0.0
                if _set_up_ray(vol_u, strides, rows_u, rows_strides, shape, src, d, metric, acc[g], axes[g], span[g],
                               coef[g]):
                    if span[g, 0] <= span[g, 1]:
                        lowest = min(lowest, span[g, 0])
                        highest = max(highest, span[g, 1])
            if n_mat <= 4:
                for start in range(lowest, highest + 1, CHUNK):
                    for g in range(count):
                        _interior_chunk(vol_u, strides, rows_u, rows_strides, axes[g], span[g], coef[g], start,
                                        start + CHUNK - 1, acc[g], n_mat > 3)
            else:
                for g in range(count):
                    if span[g, 0] <= span[g, 1]:
                        a, b, c = axes[g, 0], axes[g, 1], axes[g, 2]
                        ray_u, ray_strides = (rows_u, rows_strides) if axes[g, 3] else (vol_u, strides)
                        run_m, run = _interior(ray_u, acc[g], np.uint32(0), np.float32(0.0), coef[g, 0], coef[g, 1],
                                               coef[g, 2], coef[g, 3], span[g, 0], span[g, 1], ray_strides[a],
                                               ray_strides[b], ray_strides[c])
                        acc[g, run_m] += run
            for g in range(count):
                for m in range(n_mat):
                    out[o, q0 + g, m] = acc[g, m] * coef[g, 4]
