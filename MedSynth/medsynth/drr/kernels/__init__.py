"""Ray-marching kernels: ``cpu`` (numba, parallel) and ``cuda`` (numba-cuda), same arithmetic.

Both march the *packed* volume made by ``medsynth.drr.prepare``: float32 densities whose three
lowest mantissa bits hold the voxel's material index (a relative change below 1e-6), so one memory
read gives both, and one march yields the area density of every material.
"""
