"""The projector against analytic answers: chord lengths through spheres, cylinders and boxes,
fiducial beads, oriented volumes, many poses per call, and its error messages."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from medsynth import Volume
from medsynth.drr import PreparedVolume, prepare, project
from medsynth.drr.kernels.packing import merge_bits
from medsynth.drr.materials import material
from medsynth.drr.prepare import PLASTIMATCH
from medsynth.drr.projector import march
from medsynth.errors import GeometryError, InputError
from medsynth.geometry import CArm
from medsynth.volume import VolumeMetadata

MU_PER_CM = 0.2  # the phantoms' attenuation


def antialiased(distance, shape: int, spacing: float) -> np.ndarray:
    """Voxel fractions of a shape from its signed distance ``distance(x, y, z)`` in mm (negative inside):
    a one-voxel linear ramp across the surface, on a grid centred on RAS 0."""
    centres = (np.arange(shape) - (shape - 1) / 2.0) * spacing
    z, y, x = np.meshgrid(centres, centres, centres, indexing="ij", sparse=True)
    return np.clip(0.5 - distance(x, y, z) / spacing, 0.0, 1.0).astype(np.float32)


def phantom(fraction: np.ndarray, spacing: float, directions: np.ndarray | None = None) -> PreparedVolume:
    """A prepared volume holding mu (1/cm) * fraction, one material with mu/rho = 1 (line integrals)."""
    n = fraction.shape[0]
    volume = Volume.from_spacing(fraction, (spacing,) * 3, directions=directions)
    centre = volume.center_ras
    volume.ijk_to_ras[:3, 3] -= centre  # centre the grid on RAS 0
    packed = np.ascontiguousarray(fraction * MU_PER_CM, dtype=np.float32)
    merge_bits(packed.view(np.uint32), np.zeros(packed.shape, np.uint8))  # one material, index 0
    assert n == packed.shape[0]
    return PreparedVolume(packed, volume.ijk_to_ras, [PLASTIMATCH], "plastimatch", volume.shape_ijk)


def chord_through_sphere(carm: CArm, radius: float, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    source = carm.source_position()
    rays = carm.pixel_grid() - source
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    to_centre = np.asarray(centre) - source
    along = rays @ to_centre
    distance2 = np.sum(to_centre**2) - along**2
    return 2.0 * np.sqrt(np.maximum(radius**2 - distance2, 0.0))


@pytest.fixture(scope="module")
def sphere():
    radius, spacing, n = 24.0, 0.375, 136  # 64 voxels per radius: the voxelised sphere is a sphere to 0.1 %
    fraction = antialiased(lambda x, y, z: np.sqrt(x**2 + y**2 + z**2) - radius, n, spacing)
    return phantom(fraction, spacing), radius


@pytest.mark.parametrize(
    "primary, secondary, size",
    [(0.0, 0.0, 48), (90.0, 0.0, 33), (30.0, 20.0, 64), (-135.0, -40.0, 40)],
)
def test_sphere_line_integrals_equal_chord_times_mu(sphere, primary, secondary, size):
    prepared, radius = sphere
    carm = CArm(primary, secondary, sid=1000.0, sod=600.0, detector_rows=size, detector_columns=size + 3,
                pixel_spacing=100.0 / size)
    line = march(prepared, carm)[..., 0]
    expected = chord_through_sphere(carm, radius) / 10.0 * MU_PER_CM
    central = expected > (1.2 * radius / 10.0 * MU_PER_CM)  # chords longer than 1.2 radii
    assert central.sum() > 50
    relative = np.abs(line[central] - expected[central]) / expected[central]
    assert relative.max() < 0.005, relative.max()
    outside = chord_through_sphere(carm, radius + 1.0) == 0  # rays missing the sphere by more than 1 mm
    assert outside.sum() > 50 and np.all(line[outside] == 0.0)


def test_cylinder_line_integrals_equal_chord_times_mu():
    radius, spacing, n = 20.0, 0.4, 128
    fraction = antialiased(lambda x, y, z: np.sqrt(x**2 + y**2) - radius + 0 * z, n, spacing)  # axis along S
    prepared = phantom(fraction, spacing)
    half_length = n * spacing / 2.0
    for primary, size in ((0.0, 40), (60.0, 52)):
        carm = CArm(primary, 0.0, sid=1200.0, sod=800.0, detector_rows=size, detector_columns=size,
                    pixel_spacing=90.0 / size)
        line = march(prepared, carm)[..., 0]
        source = carm.source_position()
        rays = carm.pixel_grid() - source
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
        # 2D chord in the axial plane, scaled by the ray's slope out of it
        planar = rays[..., :2] / np.linalg.norm(rays[..., :2], axis=-1, keepdims=True)
        along = planar @ (-source[:2])
        distance2 = np.sum(source[:2] ** 2) - along**2
        chord_2d = 2.0 * np.sqrt(np.maximum(radius**2 - distance2, 0.0))
        chord = chord_2d / np.linalg.norm(rays[..., :2], axis=-1)
        # keep rays that stay inside the cylinder's length (the grid ends at +-half_length in S)
        z_exit = np.abs(source[2] + rays[..., 2] * (along + chord_2d / 2) / np.linalg.norm(rays[..., :2], axis=-1))
        expected = chord / 10.0 * MU_PER_CM
        keep = (chord_2d > radius) & (z_exit < half_length - 2.0)
        assert keep.sum() > 100
        relative = np.abs(line[keep] - expected[keep]) / expected[keep]
        assert relative.max() < 0.005, (primary, relative.max())


def test_homogeneous_box_integrates_exactly():
    fraction = np.ones((10, 12, 14), np.float32)
    prepared = phantom(fraction[:10, :10, :10], 2.0)
    carm = CArm(0.0, 0.0, sid=1000.0, sod=500.0, detector_rows=5, detector_columns=5, pixel_spacing=0.5)
    line = march(prepared, carm)[..., 0]
    # the central ray crosses the 20 mm box along A exactly
    assert line[2, 2] == pytest.approx(2.0 * MU_PER_CM, rel=1e-5)


def test_oriented_volume_gives_the_same_projection():
    """A volume whose axes are rotated in RAS (an oblique acquisition) projects like the real object."""
    radius, spacing, n = 14.0, 0.35, 112
    centre = np.array([3.0, 0.0, -2.0])
    angle = np.radians(30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])

    def distance(x, y, z):  # the sphere seen in the rotated grid's axes: world = rotation @ local
        wx = rotation[0, 0] * x + rotation[0, 1] * y + rotation[0, 2] * z
        wy = rotation[1, 0] * x + rotation[1, 1] * y + rotation[1, 2] * z
        wz = rotation[2, 0] * x + rotation[2, 1] * y + rotation[2, 2] * z
        return np.sqrt((wx - centre[0]) ** 2 + (wy - centre[1]) ** 2 + (wz - centre[2]) ** 2) - radius

    rotated = phantom(antialiased(distance, n, spacing), spacing, directions=rotation)
    carm = CArm(20.0, 10.0, sid=1000.0, sod=600.0, detector_rows=40, detector_columns=40, pixel_spacing=1.5)
    line = march(rotated, carm)[..., 0]
    expected = chord_through_sphere(carm, radius, centre) / 10.0 * MU_PER_CM
    central = expected > 1.2 * radius / 10.0 * MU_PER_CM
    assert central.sum() > 50
    assert np.max(np.abs(line[central] - expected[central]) / expected[central]) < 0.005


def bead_ct(position_ras: np.ndarray, directions: np.ndarray | None = None) -> Volume:
    """A water cube in air with a one-voxel dense bead at ``position_ras`` (CT in HU)."""
    n, spacing = 48, 2.0
    array = np.full((n, n, n), -1000.0, np.float32)
    array[4:-4, 4:-4, 4:-4] = 0.0
    volume = Volume.from_spacing(array, (spacing,) * 3, directions=directions,
                                 metadata=VolumeMetadata(modality="CT", units="HU"))
    volume.ijk_to_ras[:3, 3] -= volume.center_ras
    i, j, k = np.rint(volume.ras_to_ijk_points(position_ras)).astype(int)
    volume.array[k, j, i] = 3000.0
    volume.metadata = VolumeMetadata(modality="CT", units="HU")
    return volume


@pytest.mark.parametrize("primary, secondary", [(0.0, 0.0), (45.0, -25.0), (-90.0, 30.0)])
def test_fiducial_bead_lands_where_the_projection_matrix_says(primary, secondary):
    angle = np.radians(20.0)
    directions = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    ct = bead_ct(np.array([12.0, -8.0, 20.0]), directions)
    bead_ijk = np.argwhere(ct.array == 3000.0)[0][::-1]
    bead_ras = ct.ijk_to_ras_points(bead_ijk)
    carm = CArm(primary, secondary, sid=1000.0, sod=600.0, detector_rows=60, detector_columns=70, pixel_spacing=2.0)
    view = project(ct, carm, device="cpu")[0]
    expected = carm.project_points([bead_ras])[0]
    # the bead is the darkest spot of the intensity image / the brightest of the bone image
    bone = view.material_area_density("bone")
    row, col = np.unravel_index(np.argmax(bone), bone.shape)
    assert abs(col - expected[0]) <= 1.0 and abs(row - expected[1]) <= 1.0
    without = ct.with_array(np.where(ct.array == 3000.0, 0.0, ct.array).astype(np.float32), modality="CT", units="HU")
    shadow = view.intensity - project(without, carm, device="cpu")[0].intensity  # the bead's shadow alone
    row2, col2 = np.unravel_index(np.argmin(shadow), shadow.shape)
    assert shadow[row2, col2] < 0
    assert abs(col2 - expected[0]) <= 1.0 and abs(row2 - expected[1]) <= 1.0


def test_many_poses_per_call_match_single_calls():
    ct = bead_ct(np.array([0.0, 0.0, 0.0]))
    carm = CArm(sid=1000.0, sod=600.0, detector_rows=24, detector_columns=24, pixel_spacing=4.0)
    poses = [carm.replace(primary_angle=a) for a in (-60.0, 0.0, 75.0)]
    prepared = prepare(ct)
    together = project(prepared, poses, device="cpu")
    assert len(together) == 3
    for pose, view in zip(poses, together):
        alone = project(prepared, pose, device="cpu")[0]
        np.testing.assert_array_equal(view.area_density, alone.area_density)
        assert view.carm == pose


def test_projector_errors_say_what_to_do():
    ct = bead_ct(np.array([0.0, 0.0, 0.0]))
    carm = CArm(sid=1000.0, sod=600.0, detector_rows=8, detector_columns=8, pixel_spacing=4.0)
    with pytest.raises(GeometryError, match="inside the volume"):
        project(ct, carm.replace(sod=40.0, sid=300.0))
    with pytest.raises(GeometryError, match="no pixels"):
        project(ct, carm.replace(detector_columns=0))
    with pytest.raises(InputError, match="No C-arm pose"):
        project(ct, [])
    with pytest.raises(InputError, match="Unknown outputs"):
        project(ct, carm, outputs=("log", "hologram"))
    with pytest.raises(InputError, match="photon count"):
        project(ct, carm, photons=-5)
    with pytest.raises(InputError, match="Unknown spectrum"):
        project(ct, carm, spectrum="ninety")
    with pytest.raises(InputError, match="outside the tables"):
        project(ct, carm, spectrum="300kV")
    with pytest.raises(InputError, match="device"):
        project(ct, carm, device="tpu")
    mr = Volume(np.random.default_rng(0).uniform(0, 500, (8, 8, 8)).astype(np.float32),
                metadata=VolumeMetadata(modality="MR"))
    with pytest.raises(InputError, match="not CT"):
        project(mr, carm)
    flat = Volume(np.zeros((1, 8, 8), np.float32) - 1000, metadata=VolumeMetadata(modality="CT", units="HU"))
    flat.array[0, 0, 0] = 0
    with pytest.raises(InputError, match="at least 2 voxels"):
        project(flat, carm)


def test_simd_and_scalar_paths_and_memory_layouts_agree(monkeypatch):
    """The SIMD march (up to four materials), the scalar one (more materials), padded or plain
    memory layouts and the J-fastest copy for rays along I give the same area densities,
    materials mixed inside bilinear cells included."""
    ct = bead_ct(np.array([4.0, 2.0, -6.0]))
    noise = np.random.default_rng(3).normal(0.0, 500.0, (32, 32, 32)).astype(np.float32)
    ct.array[8:40, 8:40, 8:40] += noise  # air, soft tissue and bone next to each other
    prepared = prepare(ct)
    plain = np.ascontiguousarray(prepared.packed)
    assert prepared.packed.strides != plain.strides  # prepare pads rows and slices
    contiguous = PreparedVolume(plain, prepared.ijk_to_ras, prepared.materials, prepared.mode)
    extra = [material("fat"), material("lung")]  # present nowhere: columns 3-4 stay 0
    scalar = PreparedVolume(prepared.packed, prepared.ijk_to_ras, prepared.materials + extra, prepared.mode)
    for primary, secondary in ((0.0, 0.0), (90.0, 0.0), (35.0, -20.0)):
        carm = CArm(primary, secondary, sid=1000.0, sod=600.0, detector_rows=30, detector_columns=34, pixel_spacing=3.0)
        simd = march(prepared, carm)
        assert simd[..., 2].max() > 1.0 and simd[..., 1].max() > 1.0  # bone and soft tissue were crossed
        np.testing.assert_array_equal(march(contiguous, carm), simd)
        five = march(scalar, carm)
        assert not five[..., 3:].any()
        np.testing.assert_allclose(five[..., :3], simd, rtol=1e-4, atol=1e-5)
    assert prepared._along_rows is not None  # the lateral view made the copy
    monkeypatch.setattr(importlib.import_module("medsynth.drr.prepare"), "ALONG_ROWS_COPY_LIMIT", -1)
    one_copy = PreparedVolume(prepared.packed, prepared.ijk_to_ras, prepared.materials, prepared.mode)
    lateral = carm.replace(primary_angle=90.0)
    np.testing.assert_array_equal(march(one_copy, lateral), march(prepared, lateral))
    assert one_copy._along_rows is None


def test_ray_groups_that_straddle_a_change_of_dominant_axis_agree_with_the_scalar_path():
    """The SIMD march takes 16 neighbouring rays as lanes; at LAO 45 some groups hold rays that run
    mostly along I and rays that run mostly along J, and a 37-column detector ends in a partial
    group. Both must match the scalar march (five materials), which takes every ray alone."""
    ct = bead_ct(np.array([0.0, 0.0, 0.0]))
    ct.array[8:40, 8:40, 8:40] += np.random.default_rng(5).normal(0.0, 500.0, (32, 32, 32)).astype(np.float32)
    prepared = prepare(ct)
    scalar = PreparedVolume(prepared.packed, prepared.ijk_to_ras, prepared.materials + [material("fat"), material("lung")],
                            prepared.mode)
    carm = CArm(45.0, 0.0, sid=1000.0, sod=600.0, detector_rows=21, detector_columns=37, pixel_spacing=2.5)
    source = np.linalg.inv(prepared.ijk_to_ras) @ np.append(carm.source_position(), 1.0)
    pixels = np.linalg.inv(prepared.ijk_to_ras)[:3, :3] @ carm.pixel_grid().reshape(-1, 3).T
    dominant = np.argmax(np.abs(pixels + np.linalg.inv(prepared.ijk_to_ras)[:3, 3:] - source[:3, None]), axis=0)
    assert {0, 1} <= set(dominant.tolist())  # both kinds of ray on one detector row
    simd = march(prepared, carm)
    assert simd[..., 2].max() > 1.0
    np.testing.assert_allclose(march(scalar, carm)[..., :3], simd, rtol=1e-4, atol=1e-5)
