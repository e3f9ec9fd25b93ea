"""Ray-marching kernels: ``cpu`` (numba, parallel, SIMD) and ``cuda`` (numba-cuda), same arithmetic.

Both march the *packed* volume made by ``medsynth.drr.prepare`` (see ``packing``): float32
densities whose three lowest mantissa bits hold the voxel's material index (a relative change
below 1e-6), so one memory read gives both, and one march yields the area density of every
material. ``beer_lambert`` turns those area densities into images for any spectrum;
``intrinsics`` holds the LLVM helpers that let the CPU loops vectorize.
"""
