"""DRRs of a real chest CT (LIDC-IDRI-0001): anatomy lands where the conventions say, mirror
views agree, material-selective images are right, and plastimatch agrees when installed."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from medsynth.drr import prepare, project
from medsynth.geometry import CArm
from medsynth.volume import Volume


@pytest.fixture(scope="module")
def prepared(lidc_ct):
    return prepare(lidc_ct)


def chest_carm(ct: Volume, size: int = 96, **changes) -> CArm:
    """A C-arm looking at the CT's centre with a 400 mm detector (240 mm at the isocenter)."""
    return CArm(sid=1020.0, sod=612.0, detector_rows=size, detector_columns=size, pixel_spacing=400.0 / size,
                isocenter=tuple(ct.center_ras)).replace(**changes)


def centroid(labels, pattern: str) -> np.ndarray:
    import fnmatch

    values = [v for v, n in labels.table.names.items() if fnmatch.fnmatch(n, pattern)]
    k, j, i = np.nonzero(np.isin(labels.array, values))
    return labels.ijk_to_ras_points(np.array([i.mean(), j.mean(), k.mean()]))


def around(image: np.ndarray, col_row: np.ndarray, half: int = 1) -> float:
    col, row = np.rint(col_row).astype(int)
    return float(image[row - half:row + half + 1, col - half:col + half + 1].mean())


def test_ap_view_anatomy_orientation_spine_and_lungs(lidc_ct, lidc_labels, prepared):
    carm = chest_carm(lidc_ct)
    view = project(prepared, carm, outputs=("log", "materials"))[0]
    cols = carm.detector_columns
    # the spine is in the middle column band: the bone column profile peaks there
    bone = view.material_area_density("bone")
    profile = bone[20:76].mean(axis=0)
    assert 0.4 * cols <= int(np.argmax(profile)) <= 0.6 * cols
    spine = carm.project_points([centroid(lidc_labels, "vertebrae_T*")])[0]
    assert 0.4 * cols <= spine[0] <= 0.6 * cols
    # documented orientation: patient left on the image's right, head at the top
    left_lung, right_lung = carm.project_points(
        [centroid(lidc_labels, "lung_*_left"), centroid(lidc_labels, "lung_*_right")]
    )
    assert left_lung[0] > cols / 2 > right_lung[0]
    liver, upper_lobe = carm.project_points([centroid(lidc_labels, "liver"), centroid(lidc_labels, "lung_upper_lobe_*")])
    assert liver[1] > upper_lobe[1] and liver[0] < cols / 2  # liver: lower, and on the patient's right
    # lungs attenuate less than the mediastinum on the same image row
    log = view.log_image
    for lung in (left_lung, right_lung):
        mediastinum = np.array([spine[0], lung[1]])
        assert around(log, lung) < around(log, mediastinum) - 0.5


def test_lao90_and_rao90_are_mirror_images(lidc_ct, prepared):
    # near-parallel beam (long SID): the two views are exact mirrors up to sampling
    far = chest_carm(lidc_ct, 64, sid=1.0e6, sod=1.0e6 - 600.0, pixel_spacing=3.6)
    lao, rao = project(prepared, [far.replace(primary_angle=90.0), far.replace(primary_angle=-90.0)])
    a, b = lao.log_image, rao.log_image[:, ::-1]
    assert np.abs(a - b).max() < 0.02 * a.max()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9999
    assert np.corrcoef(a.ravel(), rao.log_image.ravel())[0, 1] < 0.9  # not symmetric without the flip
    # the clinical cone beam magnifies each side differently, so the mirror is approximate
    cone = chest_carm(lidc_ct, 64)
    lao, rao = project(prepared, [cone.replace(primary_angle=90.0), cone.replace(primary_angle=-90.0)])
    mirrored = np.corrcoef(lao.log_image.ravel(), rao.log_image[:, ::-1].ravel())[0, 1]
    assert mirrored > 0.9 and mirrored > np.corrcoef(lao.log_image.ravel(), rao.log_image.ravel())[0, 1] + 0.2


def test_bone_only_image_is_zero_where_rays_cross_no_bone(lidc_ct, prepared):
    from scipy.ndimage import binary_dilation, map_coordinates

    carm = chest_carm(lidc_ct, 40, primary_angle=30.0, secondary_angle=20.0)
    view = project(prepared, carm, outputs=("log", "materials"))[0]
    bone_image = view.images["bone_log"]
    # an independent check: sample a dilated bone mask (HU > 350, a one-voxel margin in every direction for interpolation)
    mask = binary_dilation(lidc_ct.array > 350.0, structure=np.ones((3, 3, 3), bool)).astype(np.float32)
    source = carm.source_position()
    crosses = np.zeros(bone_image.shape, bool)
    steps = np.arange(0.0, carm.sid, 0.3)
    for row in range(carm.detector_rows):
        ends = carm.pixel_to_ras(np.arange(carm.detector_columns), np.full(carm.detector_columns, row))
        directions = (ends - source) / np.linalg.norm(ends - source, axis=1, keepdims=True)
        points = source + steps[None, :, None] * directions[:, None, :]
        ijk = lidc_ct.ras_to_ijk_points(points.reshape(-1, 3))
        # voxels on the border extend half a voxel, as in the projector
        inside = np.all((ijk >= -0.5) & (ijk <= np.array(lidc_ct.shape_ijk) - 0.5), axis=1)
        hits = map_coordinates(mask, [ijk[:, 2], ijk[:, 1], ijk[:, 0]], order=0, mode="nearest") * inside
        crosses[row] = hits.reshape(len(ends), -1).max(axis=1) > 0
    assert (~crosses).sum() > 20 and crosses.sum() > 20
    assert np.all(bone_image[~crosses] == 0.0)
    assert np.all(view.material_area_density("bone")[~crosses] == 0.0)
    assert np.median(bone_image[crosses]) > 0.1


def test_label_materials_relabel_without_changing_mass(lidc_ct, lidc_labels, prepared):
    carm = chest_carm(lidc_ct, 48)
    mapping = {"vertebrae_*": "bone", "rib_*": "bone", "lung_*": "lung", "heart": "contrast", "aorta": "contrast"}
    by_labels = project(lidc_ct, carm, materials=(lidc_labels, mapping))[0]
    by_hu = project(prepared, carm)[0]
    assert by_labels.material_names == ["air", "soft_tissue", "bone", "lung", "contrast"]
    np.testing.assert_allclose(by_labels.area_density.sum(axis=2), by_hu.area_density.sum(axis=2), rtol=1e-4, atol=1e-4)
    heart = carm.project_points([centroid(lidc_labels, "heart")])[0]
    assert around(by_labels.material_area_density("contrast"), heart) > 1.0
    assert by_labels.material_area_density("lung").max() > 0.5


def test_dual_energy_and_oriented_copy(lidc_ct, prepared):
    carm = chest_carm(lidc_ct, 48)
    view = project(prepared, carm, outputs=("log", "dual_energy"))[0]
    low, high = view.images["low_log"], view.images["high_log"]
    assert np.all(low > high)  # 60 kV is attenuated more than 120 kV
    bone = view.material_area_density("bone")
    spine = np.unravel_index(np.argmax(bone), bone.shape)
    soft = np.unravel_index(np.argmin(bone + (view.material_area_density("soft_tissue") < 5) * 1e3), bone.shape)
    assert (low[spine] - low[soft]) > (high[spine] - high[soft])  # bone contrast falls with kV
    # the same CT stored with its I axis reversed (another orientation) gives the same image
    flipped_matrix = lidc_ct.ijk_to_ras.copy()
    flipped_matrix[:3, 3] += flipped_matrix[:3, 0] * (lidc_ct.shape_ijk[0] - 1)
    flipped_matrix[:3, 0] *= -1
    flipped = Volume(np.ascontiguousarray(lidc_ct.array[:, :, ::-1]), flipped_matrix, lidc_ct.metadata)
    again = project(flipped, carm)[0]
    np.testing.assert_allclose(again.log_image, view.log_image, rtol=2e-3, atol=2e-3)


def test_preview_matches_full_resolution(lidc_ct, prepared):
    carm = chest_carm(lidc_ct, 96)
    preview = project(prepared, carm, preview=48)[0]
    assert preview.log_image.shape == (48, 48)
    assert preview.carm.detector_size_mm == pytest.approx(carm.detector_size_mm)
    full = project(prepared, chest_carm(lidc_ct, 48))[0]
    assert np.corrcoef(preview.log_image.ravel(), full.log_image.ravel())[0, 1] > 0.99
    # the half-resolution grid is cached on the prepared volume
    assert prepared.coarse() is prepared.coarse()


def read_pfm(path) -> np.ndarray:
    with open(path, "rb") as handle:
        assert handle.readline().strip() == b"Pf"
        cols, rows = map(int, handle.readline().split())
        scale = float(handle.readline())
        data = np.frombuffer(handle.read(), dtype="<f4" if scale < 0 else ">f4")
    return data.reshape(rows, cols)


@pytest.mark.skipif(shutil.which("plastimatch") is None, reason="plastimatch is not installed (apt-get install plastimatch)")
def test_monochromatic_mode_agrees_with_plastimatch(lidc_ct, tmp_path):
    import SimpleITK as sitk

    from medsynth.io.sitk_bridge import volume_to_sitk

    # plastimatch needs an LPS-oriented volume without the -2048 padding
    image = sitk.DICOMOrient(volume_to_sitk(lidc_ct.with_array(np.maximum(lidc_ct.array, -1000.0).astype(np.float32))), "LPS")
    sitk.WriteImage(image, str(tmp_path / "ct.mha"))
    iso_ras = np.asarray(lidc_ct.center_ras)
    iso_lps = iso_ras * [-1, -1, 1]
    results = {}
    for primary in (0.0, 40.0):
        carm = chest_carm(lidc_ct, 64, primary_angle=primary)
        normal_lps = (-carm.beam_direction()) * [-1, -1, 1]  # towards the source
        up_lps = (-carm.rotation()[:, 1]) * [-1, -1, 1]  # towards row 0
        subprocess.run(
            ["plastimatch", "drr", "-t", "pfm", "-r", "64 64", "-z", "400 400", "--sad", "612", "--sid", "1020",
             "-o", " ".join(f"{v:.4f}" for v in iso_lps), "--nrm", " ".join(f"{v:.6f}" for v in normal_lps),
             "--vup", " ".join(f"{v:.6f}" for v in up_lps), "-i", "exact", "-O", str(tmp_path / f"pm{primary:g}_"),
             str(tmp_path / "ct.mha")],
            check=True, capture_output=True, timeout=120,
        )
        theirs = read_pfm(next(tmp_path.glob(f"pm{primary:g}_*.pfm")))
        ours = project(lidc_ct, carm, materials="plastimatch", spectrum="60keV")[0].log_image
        # plastimatch draws the image as seen from the source: ours mirrored left-right
        mirrored = theirs[:, ::-1]
        results[primary] = np.corrcoef(mirrored.ravel(), ours.ravel())[0, 1]
        ratio = np.median(mirrored / np.maximum(ours, 1e-6))
        assert ratio == pytest.approx(0.1, rel=0.02)  # plastimatch reports the integral in its own units
    assert min(results.values()) >= 0.99, results
