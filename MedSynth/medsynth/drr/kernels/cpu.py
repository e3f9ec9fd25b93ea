"""CPU kernels (numba, parallel, cached on disk so later runs do not recompile).

Ray order follows memory: the caller picks which detector axis is the inner loop so that
consecutive rays move along the volume's fastest (I) axis and share cache lines.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

MATERIAL_BITS = np.uint32(7)
CLEAR_BITS = np.uint32(0xFFFFFFF8)
#: Set on a voxel when the 2 x 2 x 2 cube it starts (i..i+1, j..j+1, k..k+1) holds one material,
#: so the hot loop tests one bit instead of comparing four materials.
UNIFORM_BIT = np.uint32(8)
CLEAR_ALL = np.uint32(0xFFFFFFF0)


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def pack_hu(hu, uppers, indices, labels, lut, use_labels, mode, out_f, out_m):
    """Fill the packed volume: density (mode 0: DeepDRR HU->density; 1: plastimatch mu per cm) + material bits."""
    nk, nj, ni = hu.shape
    n_bounds = uppers.shape[0]
    n_lut = lut.shape[0]
    for k in prange(nk):
        for j in range(nj):
            for i in range(ni):
                h = np.float32(hu[k, j, i])
                if mode == 0:
                    d = min(np.float32(0.001029) * h + np.float32(1.030), np.float32(0.0005886) * h + np.float32(1.03))
                    if d < 0.0:
                        d = np.float32(0.0)
                else:
                    d = np.float32(0.22) * (np.float32(1.0) + h / np.float32(1000.0)) if h > -800.0 else np.float32(0.0)
                m = -1
                if use_labels:
                    lab = labels[k, j, i]
                    if lab >= 0 and lab < n_lut:
                        m = lut[lab]
                if m < 0:
                    m = indices[n_bounds - 1]
                    for b in range(n_bounds):
                        if h <= uppers[b]:
                            m = indices[b]
                            break
                out_f[k, j, i] = d
                out_m[k, j, i] = m


@njit(parallel=True, cache=True, nogil=True)
def merge_bits(bits, materials):
    """Store each voxel's material index in the 3 lowest bits of its float32 density, and the
    uniform-cube flag in the 4th (a relative change of the density below 2e-6). Voxels of zero
    density keep all bits 0, so rays through nothing integrate to exactly 0."""
    nk, nj, ni = bits.shape
    for k in prange(nk):
        for j in range(nj):
            for i in range(ni):
                m = materials[k, j, i]
                uniform = k + 1 < nk and j + 1 < nj and i + 1 < ni
                if uniform:
                    for dk in range(2):
                        for dj in range(2):
                            for di in range(2):
                                if materials[k + dk, j + dj, i + di] != m:
                                    uniform = False
                flag = UNIFORM_BIT if uniform else np.uint32(0)
                value = bits[k, j, i] & CLEAR_ALL
                if value != 0:  # a zero density stays exactly 0.0 (it adds nothing to any material)
                    bits[k, j, i] = value | np.uint32(m) | flag
                else:
                    bits[k, j, i] = np.uint32(0)


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


@intrinsic
def _as_float32(typingctx, bits):
    """Reinterpret a uint32's bits as a float32 (one load gives density and material)."""
    signature = types.float32(types.uint32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return signature, codegen


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
    """Planes ``first..last`` where the bilinear footprint is inside the volume: the hot loop.

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
            top = _as_float32(u00) + fb * (_as_float32(u01) - _as_float32(u00))
            bottom = _as_float32(u10) + fb * (_as_float32(u11) - _as_float32(u10))
            value = top + fc * (bottom - top)
            if m != run_m:
                acc[run_m] += run
                run = np.float32(0.0)
                run_m = m
            run += value
        else:
            gb = np.float32(1.0) - fb
            gc = np.float32(1.0) - fc
            acc[m] += gc * gb * _as_float32(u00)
            acc[u01 & MATERIAL_BITS] += gc * fb * _as_float32(u01)
            acc[u10 & MATERIAL_BITS] += fc * gb * _as_float32(u10)
            acc[u11 & MATERIAL_BITS] += fc * fb * _as_float32(u11)
        pb += slope_b
        pc += slope_c
        base_p += sa
    return run_m, run


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def march(vol_u, shape, src, d0, d_outer, d_inner, n_outer, n_inner, metric, out):
    """Per-material area densities (g/cm^2) of rays from ``src`` to detector points ``d0 + o d_outer + q d_inner``.

    ``vol_u``: the packed volume flattened (uint32 bits); ``shape``: its (nk, nj, ni). Vectors are
    continuous voxel coordinates (i, j, k); ``metric`` is A^T A of the IJK->RAS matrix (lengths in mm).
    Joseph's method: each ray is sampled once per voxel plane across its dominant axis, bilinearly
    within the plane (4 reads, not a trilinear's 8); a plane stands for the slab of half a voxel on
    either side, clipped at the ray's ends, so a homogeneous box integrates exactly. Voxels at the
    border extend half a voxel (edge values).
    """
    n = (shape[2], shape[1], shape[0])  # sizes along i, j, k
    strides = (np.int64(1), np.int64(shape[2]), np.int64(shape[2] * shape[1]))
    n_mat = out.shape[2]
    for o in prange(n_outer):
        acc = np.zeros(8, dtype=np.float32)
        for q in range(n_inner):
            d = (d0[0] + o * d_outer[0] + q * d_inner[0] - src[0],
                 d0[1] + o * d_outer[1] + q * d_inner[1] - src[1],
                 d0[2] + o * d_outer[2] + q * d_inner[2] - src[2])
            t0, t1 = 0.0, 1.0
            t0, t1 = _clip(src[0], d[0], -0.5, n[0] - 0.5, t0, t1)
            t0, t1 = _clip(src[1], d[1], -0.5, n[1] - 0.5, t0, t1)
            t0, t1 = _clip(src[2], d[2], -0.5, n[2] - 0.5, t0, t1)
            if t1 <= t0:
                for m in range(n_mat):
                    out[o, q, m] = 0.0
                continue
            # dominant axis a; minor axes b, c
            if abs(d[0]) >= abs(d[1]) and abs(d[0]) >= abs(d[2]):
                a, b, c = 0, 1, 2
            elif abs(d[1]) >= abs(d[2]):
                a, b, c = 1, 0, 2
            else:
                a, b, c = 2, 0, 1
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
            top_b = n[b] - 2
            top_c = n[c] - 2
            for m in range(8):
                acc[m] = 0.0
            ub = np.uint64(sb)
            uc = np.uint64(sc)
            run_m = np.uint32(0)
            run = np.float32(0.0)
            # planes where both minor coordinates stay inside [0, n - 1) need no clamping
            inner_first, inner_last = _inside(pb, slope_b, max_b, first, last)
            inner_first2, inner_last2 = _inside(pc, slope_c, max_c, first, last)
            inner_first = max(inner_first, inner_first2, first + 1)
            inner_last = min(inner_last, inner_last2, last - 1)
            # edge planes (clamped, partial weights), then the interior planes (no clamping)
            for p in range(first, last + 1):
                if p == inner_first and inner_first <= inner_last:
                    run_m, run = _interior(vol_u, acc, run_m, run, pb, pc, slope_b, slope_c, inner_first,
                                           inner_last, sa, sb, sc)
                    count = inner_last - inner_first + 1
                    pb += slope_b * count
                    pc += slope_c * count
                    continue
                if inner_first <= p <= inner_last:
                    continue
                cb = min(max(pb, 0.0), max_b)
                cc = min(max(pc, 0.0), max_c)
                ib = min(np.int64(cb), top_b)
                ic = min(np.int64(cc), top_c)
                fb = np.float32(cb - ib)
                fc = np.float32(cc - ic)
                weight = np.float32(min(p + 0.5, hi) - max(p - 0.5, lo))
                base = np.uint64(p * sa + ib * sb + ic * sc)
                gb = np.float32(1.0) - fb
                gc = np.float32(1.0) - fc
                u00 = vol_u[base]
                u01 = vol_u[base + ub]
                u10 = vol_u[base + uc]
                u11 = vol_u[base + uc + ub]
                acc[u00 & MATERIAL_BITS] += gc * gb * weight * _as_float32(u00)
                acc[u01 & MATERIAL_BITS] += gc * fb * weight * _as_float32(u01)
                acc[u10 & MATERIAL_BITS] += fc * gb * weight * _as_float32(u10)
                acc[u11 & MATERIAL_BITS] += fc * fb * weight * _as_float32(u11)
                pb += slope_b
                pc += slope_c
            acc[run_m] += run
            length = math.sqrt(
                d[0] * (metric[0, 0] * d[0] + metric[0, 1] * d[1] + metric[0, 2] * d[2])
                + d[1] * (metric[1, 0] * d[0] + metric[1, 1] * d[1] + metric[1, 2] * d[2])
                + d[2] * (metric[2, 0] * d[0] + metric[2, 1] * d[1] + metric[2, 2] * d[2])
            )
            scale = length / abs(da) * 0.1  # per voxel along a -> cm
            for m in range(n_mat):
                out[o, q, m] = acc[m] * scale


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def polychromatic(area, mu, fluence, energies, out_energy, out_photons):
    """Per pixel: transmitted energy fraction sum S E exp(-mu A) / sum S E, and photon fraction.

    ``area``: (P, M) g/cm^2; ``mu``: (E, M) mass attenuation cm^2/g; ``fluence``, ``energies``: (E,).
    """
    n_pixels, n_mat = area.shape
    n_e = fluence.shape[0]
    total_energy = 0.0
    total_photons = 0.0
    for e in range(n_e):
        total_energy += fluence[e] * energies[e]
        total_photons += fluence[e]
    for p in prange(n_pixels):
        crossed = False
        for m in range(n_mat):
            if area[p, m] != 0.0 and mu[0, m] != 0.0:
                crossed = True
        if not crossed:  # nothing in the way: exactly 1, so material-selective images are exactly 0
            out_energy[p] = 1.0
            out_photons[p] = 1.0
            continue
        se = 0.0
        sp = 0.0
        for e in range(n_e):
            s = 0.0
            for m in range(n_mat):
                s += mu[e, m] * area[p, m]
            t = fluence[e] * math.exp(-s)
            sp += t
            se += t * energies[e]
        out_energy[p] = se / total_energy
        out_photons[p] = sp / total_photons
