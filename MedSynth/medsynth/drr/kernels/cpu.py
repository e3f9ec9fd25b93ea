"""The CPU ray marcher (numba, parallel, cached on disk so later runs do not recompile).

Ray order follows memory: the caller picks which detector axis is the inner loop so that
consecutive rays move along the volume's fastest (I) axis and share cache lines. Sixteen such
neighbouring rays march together, one SIMD lane each (gathers with 32-bit offsets, see
``intrinsics``): at every voxel plane their samples lie a few voxels apart, so the gathers read
one or two cache lines.
"""

from __future__ import annotations

import math

import numpy as np
from numba import carray, njit, prange

from medsynth.drr.kernels.intrinsics import LANES, as_float32, lane_scratch, load, load_pair, madd, prefetch
from medsynth.drr.kernels.packing import MATERIAL_BITS, UNIFORM_BIT

#: Voxel planes ahead of the march whose cache lines a group prefetches.
AHEAD = 4
LOW_HALF = np.uint64(0xFFFFFFFF)
HIGH_SHIFT = np.uint64(32)


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
    to its own material. Branch-free, so the loop over lanes vectorizes. ``s0`` is the sum over
    all materials (the caller subtracts the others); material 3 is summed only when ``four``, so
    three-material CTs skip its compares."""
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
def _below(n):
    """A float32 just below the integer ``n`` (a few units in the last place)."""
    return np.float32(n) - np.float32(n) * np.float32(2.0**-22)


@njit(fastmath=True, inline="always")
def _corners(vol_u, base, sb, sc, pairs):
    """The four bilinear corners at ``base``: two 8-byte reads when axis b is the fastest in
    memory (``pairs``, a compile-time constant), else four reads."""
    if pairs:
        top = load_pair(vol_u, base)
        bottom = load_pair(vol_u, madd(sc, np.int32(1), base))
        return (np.uint32(top & LOW_HALF), np.uint32(top >> HIGH_SHIFT),
                np.uint32(bottom & LOW_HALF), np.uint32(bottom >> HIGH_SHIFT))
    return (load(vol_u, base), load(vol_u, madd(sb, np.int32(1), base)), load(vol_u, madd(sc, np.int32(1), base)),
            load(vol_u, madd(np.int32(sb + sc), np.int32(1), base)))


@njit(fastmath=True, inline="always")
def _plane(vol_u, p, start, last, lanes, sums, sa, sb, sc, top_b, top_c, four, pairs):
    """Add plane ``p`` of every ray in the group, one SIMD lane per ray, to ``sums``.

    ``lanes`` rows: b and c at plane ``start``, their slopes and the lane's weight (0 for a ray
    outside its span, fixed at the volume's corner). ``top_b``, ``top_c`` clamp b and c just
    below the last voxel, against float rounding at a ray's last interior plane.

    The group's two outer rays also prefetch their rows AHEAD planes on (at this plane's b and c,
    which move by a fraction of a voxel per plane): the gathers then find their lines in L1."""
    a0, a1, a2, a3 = sums
    step = np.float32(p - start)
    plane = np.int32(p) * sa
    if p + AHEAD <= last:
        ahead = np.int32(p + AHEAD) * sa
        for g in (0, LANES - 1):
            cb = min(lanes[0, g] + step * lanes[2, g], top_b)
            cc = min(lanes[1, g] + step * lanes[3, g], top_c)
            corner = madd(np.int32(cc), sc, madd(np.int32(cb), sb, ahead))
            prefetch(vol_u, corner)
            prefetch(vol_u, madd(sc, np.int32(1), corner))
    for g in range(LANES):
        cb = min(lanes[0, g] + step * lanes[2, g], top_b)
        cc = min(lanes[1, g] + step * lanes[3, g], top_c)
        ib = np.int32(cb)
        ic = np.int32(cc)
        base = madd(ic, sc, madd(ib, sb, plane))
        u00, u01, u10, u11 = _corners(vol_u, base, sb, sc, pairs)
        s0, s1, s2, s3 = _split(u00, u01, u10, u11, cb - np.float32(ib), cc - np.float32(ic), lanes[4, g], four)
        a0[g] += s0
        a1[g] += s1
        a2[g] += s2
        a3[g] += s3


@njit(fastmath=True, inline="always")
def _segments(first, last, rays, cuts):
    """Sorted plane numbers where the set of rays inside their spans changes, from ``first`` to
    ``last + 1`` (the union of the spans); returns how many of ``cuts`` are used."""
    cuts[0] = first
    cuts[1] = last + 1
    count = 2
    for g in range(LANES):
        if rays[4, g] <= rays[5, g]:
            cuts[count] = np.int64(rays[4, g])
            cuts[count + 1] = np.int64(rays[5, g]) + 1
            count += 2
    for i in range(1, count):  # insertion sort: at most 2 * LANES + 2 numbers
        value = cuts[i]
        j = i - 1
        while j >= 0 and cuts[j] > value:
            cuts[j + 1] = cuts[j]
            j -= 1
        cuts[j + 1] = value
    return count


@njit(fastmath=True, inline="always")
def _segment_lanes(rays, lanes, start, stop):
    """Lanes for planes ``start..stop - 1``: a ray inside its span there gets weight 1 and its b, c
    at ``start``; any other lane weight 0 at the volume's corner."""
    for g in range(LANES):
        inside = rays[4, g] <= start and stop - 1 <= rays[5, g]
        lanes[0, g] = rays[0, g] + (start - rays[4, g]) * rays[2, g] if inside else 0.0
        lanes[1, g] = rays[1, g] + (start - rays[4, g]) * rays[3, g] if inside else 0.0
        lanes[2, g] = rays[2, g] if inside else 0.0
        lanes[3, g] = rays[3, g] if inside else 0.0
        lanes[4, g] = 1.0 if inside else 0.0


@njit(fastmath=True, inline="always")
def _group_planes(vol_u, first, last, rays, lanes, cuts, acc, sa, sb, sc, top_b, top_c, four, pairs):
    """Interior planes ``first..last`` of a group of neighbouring rays, one SIMD lane per ray.

    At one plane the group's rays sample neighbouring voxels, so a gather reads one or two cache
    lines, and each lane keeps its own sums (no reduction across lanes). ``rays`` rows: b and c at
    the ray's first interior plane, slopes, first and last interior plane. Where rays start or
    end at different planes, the planes are cut into segments with a fixed set of lanes inside
    their spans, so the plane loop never tests spans."""
    sums = (carray(lane_scratch(), LANES), carray(lane_scratch(), LANES), carray(lane_scratch(), LANES),
            carray(lane_scratch(), LANES))
    for g in range(LANES):
        for m in range(4):
            sums[m][g] = 0.0
    count = _segments(first, last, rays, cuts)
    for k in range(count - 1):
        start, stop = cuts[k], cuts[k + 1]
        if start < stop:
            _segment_lanes(rays, lanes, start, stop)
            for p in range(start, stop):
                _plane(vol_u, p, start, last, lanes, sums, sa, sb, sc, top_b, top_c, four, pairs)
    a0, a1, a2, a3 = sums
    for g in range(LANES):
        acc[g, 0] += a0[g] - a1[g] - a2[g] - a3[g]  # material 0 is what the others leave
        acc[g, 1] += a1[g]
        acc[g, 2] += a2[g]
        acc[g, 3] += a3[g]


@njit(fastmath=True, nogil=True)
def _group_pairs(vol_u, first, last, rays, lanes, cuts, acc, sa, sc, top_b, top_c, four):
    _group_planes(vol_u, first, last, rays, lanes, cuts, acc, sa, np.int32(1), sc, top_b, top_c, four, True)


@njit(fastmath=True, nogil=True)
def _group_quads(vol_u, first, last, rays, lanes, cuts, acc, sa, sb, sc, top_b, top_c, four):
    _group_planes(vol_u, first, last, rays, lanes, cuts, acc, sa, sb, sc, top_b, top_c, four, False)


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
def _group_interior(vol_u, strides, rows_u, rows_strides, shape, axes, span, coef, acc, rays, lanes, cuts, pending,
                    four):
    """March the interior planes of a group's rays with ``_group_pairs``/``_group_quads``.

    Rays share one pass when they share axes and volume copy (nearly always); a group that
    straddles a change of dominant axis runs once per set of axes, other rays as empty lanes."""
    for g in range(LANES):
        pending[g] = span[g, 0] <= span[g, 1]
    for lead in range(LANES):
        if not pending[lead]:
            continue
        first = span[lead, 0]
        last = span[lead, 1]
        for g in range(LANES):
            same = pending[g]
            for x in range(4):
                same = same and axes[g, x] == axes[lead, x]
            rays[0, g] = coef[g, 0]
            rays[1, g] = coef[g, 1]
            rays[2, g] = coef[g, 2]
            rays[3, g] = coef[g, 3]
            rays[4, g] = span[g, 0] if same else 1  # an empty lane: never inside its span
            rays[5, g] = span[g, 1] if same else 0
            if same:
                pending[g] = False
                first = min(first, span[g, 0])
                last = max(last, span[g, 1])
        a, b, c = axes[lead, 0], axes[lead, 1], axes[lead, 2]
        n = (shape[2], shape[1], shape[0])
        top_b = _below(n[b] - 1)  # so that the corners ib + 1 and ic + 1 stay inside
        top_c = _below(n[c] - 1)
        ray_u, ray_strides = (rows_u, rows_strides) if axes[lead, 3] else (vol_u, strides)
        sa, sb, sc = np.int32(ray_strides[a]), np.int32(ray_strides[b]), np.int32(ray_strides[c])
        if sb == 1:
            _group_pairs(ray_u, first, last, rays, lanes, cuts, acc, sa, sc, top_b, top_c, four)
        else:
            _group_quads(ray_u, first, last, rays, lanes, cuts, acc, sa, sb, sc, top_b, top_c, four)


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def march(vol_u, strides, rows_u, rows_strides, shape, src, d0, d_outer, d_inner, o_first, n_outer, n_inner, metric,
          out):
    """Per-material area densities (g/cm^2) of rays from ``src`` to detector points ``d0 + o d_outer + q d_inner``.

    Marches the band of outer lines ``o_first <= o < o_first + n_outer`` (the caller marches a large
    detector band by band, to check for a cancel in between); ``out`` is the whole image.

    ``vol_u``: the packed volume's memory as flat uint32 bits; ``strides``: its element strides
    along (i, j, k) (rows may be padded); ``rows_u``, ``rows_strides``: the same voxels laid out
    with J fastest, read by rays that run along I (or ``vol_u`` again); ``shape``: (nk, nj, ni).
    Vectors are continuous
    voxel coordinates (i, j, k); ``metric`` is A^T A of the IJK->RAS matrix (lengths in mm).
    Joseph's method: each ray is sampled once per voxel plane across its dominant axis, bilinearly
    within the plane (4 reads, not a trilinear's 8); a plane stands for the slab of half a voxel on
    either side, clipped at the ray's ends, so a homogeneous box integrates exactly. Voxels at the
    border extend half a voxel (edge values).

    Speed: LANES neighbouring rays march their interior planes together as SIMD lanes, with up
    to four materials (see ``_group_planes``). More materials take a scalar loop per ray.
    """
    n_mat = out.shape[2]
    for band_line in prange(n_outer):
        o = o_first + band_line
        acc = np.zeros((LANES, 8), dtype=np.float32)
        axes = np.zeros((LANES, 4), dtype=np.int64)
        span = np.zeros((LANES, 2), dtype=np.int64)
        coef = np.zeros((LANES, 5), dtype=np.float64)
        rays = np.zeros((6, LANES), dtype=np.float64)
        lanes = np.zeros((5, LANES), dtype=np.float32)
        cuts = np.zeros(2 * LANES + 2, dtype=np.int64)
        pending = np.zeros(LANES, dtype=np.bool_)
        for q0 in range(0, n_inner, LANES):
            count = min(LANES, n_inner - q0)
            for g in range(LANES):
                for m in range(8):
                    acc[g, m] = 0.0
                coef[g, 4] = 0.0
                span[g, 0] = 0
                span[g, 1] = -1
            for g in range(count):
                q = q0 + g
                d = (d0[0] + o * d_outer[0] + q * d_inner[0] - src[0],
                     d0[1] + o * d_outer[1] + q * d_inner[1] - src[1],
                     d0[2] + o * d_outer[2] + q * d_inner[2] - src[2])
                _set_up_ray(vol_u, strides, rows_u, rows_strides, shape, src, d, metric, acc[g], axes[g], span[g],
                            coef[g])
            if n_mat <= 4:
                _group_interior(vol_u, strides, rows_u, rows_strides, shape, axes, span, coef, acc, rays, lanes, cuts,
                                pending, n_mat > 3)
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
