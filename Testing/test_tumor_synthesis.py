"""Tumor synthesis on the real LIDC-IDRI-0001 CT (0.7 x 0.7 x 2.5 mm) and its TotalSegmentator liver."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medsynth.errors import CancelledError, GeometryMismatchError, InputError, NotHUError
from medsynth.jobs import CancelToken
from medsynth.tumor import MIX_COUNTS, TUMOR_TYPES, Appearance, LiverContext, TumorSpec, synthesize
from medsynth.tumor.shape import TumorShape, evaluate_shape
from medsynth.tumor.texture import smooth_noise
from medsynth.volume import LabelMap, Volume

LIVER = 5


@pytest.fixture(scope="module")
def context(lidc_ct, lidc_labels):
    return LiverContext(lidc_ct, lidc_labels, LIVER)


@pytest.fixture(scope="module")
def deep_point(context, lidc_ct):
    """The RAS point deepest inside the liver (from the coarse depth map)."""
    depth, starts, strides = context.depth_map()
    cell = np.array(np.unravel_index(np.argmax(depth), depth.shape))
    return lidc_ct.ijk_to_ras_points((starts + cell * strides)[::-1].astype(float))


@pytest.fixture(scope="module")
def clicked(lidc_ct, lidc_labels, context, deep_point):
    return synthesize(lidc_ct, lidc_labels, TumorSpec(kind="medium"), np.random.default_rng(11),
                      point_ras=deep_point, context=context)


def test_clicked_tumor_lies_in_the_liver_in_one_piece(clicked, lidc_labels, deep_point):
    assert len(clicked.tumors) == 1
    tumor = clicked.tumors[0]
    liver = lidc_labels.mask(LIVER)
    mask = clicked.tumor_mask()
    assert mask.sum() == tumor.voxels > 1000
    assert np.all(liver[mask])
    assert ndimage.label(mask)[1] == 1 and tumor.realism["components"] == 1
    assert tumor.realism["surface_share"] == 0.0
    assert np.linalg.norm(np.array(tumor.center_ras) - deep_point) < 1.0
    # sizes are millimetres on the anisotropic grid: the volume matches the drawn semi-axes
    a, b, c = tumor.semi_axes_mm
    assert 0.6 < tumor.volume_ml / (4 / 3 * np.pi * a * b * c / 1000) < 1.5
    assert all(12 <= axis <= 20 for axis in tumor.semi_axes_mm)


def test_clicked_tumor_changes_the_ct_only_in_its_box_and_only_in_the_liver(clicked, lidc_ct, lidc_labels):
    changed = clicked.ct.array != lidc_ct.array
    assert changed.any()
    box = clicked.changed_box()
    outside = changed.copy()
    outside[box] = False
    assert not outside.any()
    assert not np.any(changed & ~lidc_labels.mask(LIVER))
    box_voxels = np.prod([s.stop - s.start for s in box])
    assert box_voxels < 0.01 * lidc_ct.array.size  # cost follows the tumor, not the scan
    assert clicked.ct.array.dtype == lidc_ct.array.dtype


def test_clicked_tumor_is_hypodense_relative_to_its_own_parenchyma(clicked):
    tumor = clicked.tumors[0]
    assert 40 < tumor.parenchyma_hu < 110  # this scan's liver
    assert tumor.realism["contrast_hu"] < -10
    assert tumor.mean_hu_change < -10
    assert tumor.realism["tumor_std_hu"] > 8  # heterogeneous, not flat
    assert tumor.realism["edge_hu_per_mm"] > 0


def test_labels_are_liver_and_tumor(clicked, lidc_labels):
    labels = clicked.labels
    assert set(np.unique(labels.array)) == {0, 1, 2}
    assert np.array_equal(labels.array == 2, clicked.tumor_mask())
    assert np.array_equal(labels.array > 0, lidc_labels.mask(LIVER))
    assert labels.table.name(2) == "liver tumor"


def test_same_seed_gives_the_same_tumor_bit_for_bit(lidc_ct, lidc_labels, context, deep_point, clicked):
    again = synthesize(lidc_ct, lidc_labels, TumorSpec(kind="medium"), np.random.default_rng(11),
                       point_ras=deep_point, context=context)
    assert np.array_equal(again.ct.array, clicked.ct.array)
    assert again.tumors[0].to_dict() == clicked.tumors[0].to_dict()
    other = synthesize(lidc_ct, lidc_labels, TumorSpec(kind="medium"), np.random.default_rng(12),
                       point_ras=deep_point, context=context, output_labels="none")
    assert not np.array_equal(other.ct.array, clicked.ct.array)


def test_in_place_and_undo_restore_the_ct_exactly(lidc_ct, lidc_labels, context, deep_point):
    before = lidc_ct.array.copy()
    result = synthesize(lidc_ct, lidc_labels, TumorSpec(kind="small"), np.random.default_rng(3),
                        point_ras=deep_point, context=context, in_place=True, output_labels="none")
    assert result.ct is lidc_ct and not np.array_equal(lidc_ct.array, before)
    result.undo(lidc_ct.array)
    assert np.array_equal(lidc_ct.array, before)


def test_mix_case_follows_the_published_types_without_overlap_or_surface_cuts(lidc_ct, lidc_labels, context):
    result = synthesize(lidc_ct, lidc_labels, TumorSpec(kind="mix"), np.random.default_rng(5), context=context)
    kinds = [t.kind for t in result.tumors]
    low = sum(MIX_COUNTS[name][0] for name in MIX_COUNTS)
    high = sum(MIX_COUNTS[name][1] for name in MIX_COUNTS)
    assert low - 3 <= len(kinds) <= high  # a tumor finding no room left is skipped, never forced
    assert set(kinds) <= set(TUMOR_TYPES)
    assert {"tiny", "small", "medium"} <= set(kinds)
    liver = lidc_labels.mask(LIVER)
    tumor_labels = result.labels.array == 2
    assert tumor_labels.sum() == sum(t.voxels for t in result.tumors)  # disjoint tumors
    assert np.all(liver[tumor_labels])
    assert not np.any((result.ct.array != lidc_ct.array) & ~liver)
    for tumor in result.tumors:
        assert tumor.realism["components"] == 1
        assert tumor.realism["surface_share"] == 0.0
        if tumor.scaled_to_fit == 1.0 and tumor.kind in ("tiny", "small"):
            low_axis, high_axis = TUMOR_TYPES[tumor.kind].semi_axes_mm
            assert all(low_axis - 1e-6 <= a <= high_axis + 1e-6 for a in tumor.semi_axes_mm)


def test_free_diameter_and_count(lidc_ct, lidc_labels, context):
    result = synthesize(lidc_ct, lidc_labels, TumorSpec(diameter_mm=20.0, count=3), np.random.default_rng(2),
                        context=context, output_labels="none")
    assert len(result.tumors) == 3
    for tumor in result.tumors:
        assert tumor.kind == "custom"
        assert 15.0 < tumor.equivalent_diameter_mm < 25.0


def test_appearance_options(lidc_ct, lidc_labels, context, deep_point):
    options = Appearance(density="hyper", contrast_hu=60.0, capsule=True, necrosis=True, mass_effect=True)
    result = synthesize(lidc_ct, lidc_labels, TumorSpec(kind="medium", appearance=options), np.random.default_rng(4),
                        point_ras=deep_point, context=context)
    tumor = result.tumors[0]
    assert tumor.look["capsule_hu"] > 0 and tumor.look["necrosis_radius"] > 0 and tumor.look["mass_effect_share"] > 0
    changed = result.ct.array != lidc_ct.array
    label = result.tumor_mask()
    assert np.any(changed & ~label)  # mass effect moved parenchyma outside the tumor
    assert not np.any(changed & ~lidc_labels.mask(LIVER))  # but never outside the liver
    # necrotic core darker than the hyperdense rest of the tumor
    centre = np.rint(lidc_ct.ras_to_ijk_points(tumor.center_ras)).astype(int)
    core_value = result.ct.array[centre[2], centre[1] - 2:centre[1] + 3, centre[0] - 2:centre[0] + 3].mean()
    assert core_value < tumor.parenchyma_hu
    assert np.mean(result.ct.array[label]) > core_value


def test_contrast_follows_the_livers_own_hu(lidc_ct, lidc_labels, context, deep_point):
    """The same tumor on a liver 50 HU brighter (another contrast phase) keeps its relative look."""
    liver = lidc_labels.mask(LIVER)
    brighter = lidc_ct.with_array(np.where(liver, lidc_ct.array + 50, lidc_ct.array).astype(lidc_ct.array.dtype))
    spec = TumorSpec(kind="medium")
    plain = synthesize(lidc_ct, lidc_labels, spec, np.random.default_rng(8), point_ras=deep_point,
                       context=context, output_labels="none").tumors[0]
    bright = synthesize(brighter, lidc_labels, spec, np.random.default_rng(8), point_ras=deep_point,
                        liver_label=LIVER, output_labels="none").tumors[0]
    assert bright.parenchyma_hu == pytest.approx(plain.parenchyma_hu + 50, abs=1)
    assert bright.tumor_mean_hu > plain.tumor_mean_hu + 10
    assert bright.realism["contrast_hu"] < plain.realism["contrast_hu"]  # darker relative to a brighter liver


def test_vessels_are_hidden_unless_kept(lidc_ct, lidc_labels, context):
    spec = TumorSpec(kind="large", count=1)
    hidden = synthesize(lidc_ct, lidc_labels, spec, np.random.default_rng(1), context=context, output_labels="none")
    tumor = hidden.tumors[0]
    assert tumor.realism["vessel_overlap"] > 0  # a large tumor always covers some vessels
    kept_spec = TumorSpec(kind="large", count=1, appearance=Appearance(keep_vessels=True))
    kept = synthesize(lidc_ct, lidc_labels, kept_spec, np.random.default_rng(1), context=context, output_labels="none")
    mask = hidden.tumor_mask()
    assert np.array_equal(mask, kept.tumor_mask())
    threshold = tumor.parenchyma_hu + 60
    assert (hidden.ct.array[mask] > threshold).sum() < (kept.ct.array[mask] > threshold).sum()


def test_cancel_leaves_the_ct_unchanged(lidc_ct, lidc_labels, context):
    before = lidc_ct.array.copy()
    token = CancelToken()
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        if len(calls) == 2:
            token.cancel()

    with pytest.raises(CancelledError):
        synthesize(lidc_ct, lidc_labels, TumorSpec(kind="tiny", count=5), np.random.default_rng(0), context=context,
                   in_place=True, progress=progress, cancel=token)
    assert np.array_equal(lidc_ct.array, before)


# --- shapes and textures on analytic grids --------------------------------------------------------

def test_deformed_shapes_are_one_piece_on_anisotropic_grids():
    rng = np.random.default_rng(0)
    matrix = np.diag([0.7, 0.7, 2.5, 1.0])
    for kind in ("tiny", "small", "medium", "large"):
        for _ in range(5):
            shape = TumorShape.draw(rng, kind)
            half = np.ceil(shape.extent_mm / np.array([0.7, 0.7, 2.5])).astype(int) + 2
            field = evaluate_shape(shape, matrix, -half, tuple(int(2 * h + 1) for h in half[::-1]), np.zeros(3))
            mask = field.signed_mm <= 0
            assert ndimage.label(mask)[1] == 1
            assert not mask[0].any() and not mask[-1].any()  # inside its box: nothing cut
            volume = mask.sum() * 0.7 * 0.7 * 2.5
            expected = 4 / 3 * np.pi * np.prod(shape.semi_axes_mm)
            assert 0.6 < volume / expected < 1.6


def test_smooth_noise_has_unit_variance_and_the_asked_correlation():
    field = smooth_noise(np.random.default_rng(1), (40, 120, 120), np.array([0.7, 0.7, 2.5]), 6.0)
    assert field.dtype == np.float32
    assert 0.8 < field.std() < 1.2
    neighbour = np.corrcoef(field[:, :, :-1].ravel(), field[:, :, 1:].ravel())[0, 1]
    far = np.corrcoef(field[:, :, :-30].ravel(), field[:, :, 30:].ravel())[0, 1]  # 21 mm apart
    assert neighbour > 0.9 and abs(far) < 0.2


# --- clear errors --------------------------------------------------------------------------------

def test_error_missing_liver_mask(lidc_ct):
    with pytest.raises(InputError, match="No liver mask"):
        synthesize(lidc_ct, None, TumorSpec(), np.random.default_rng(0))


def test_error_empty_liver_mask(lidc_ct, lidc_labels):
    empty = LabelMap(np.zeros(lidc_labels.array.shape, np.uint8), lidc_labels.ijk_to_ras)
    with pytest.raises(InputError, match="liver mask is empty"):
        synthesize(lidc_ct, empty, TumorSpec(), np.random.default_rng(0))
    with pytest.raises(InputError, match="liver mask is empty"):
        synthesize(lidc_ct, lidc_labels, TumorSpec(), np.random.default_rng(0), point_ras=lidc_ct.center_ras,
                   liver_label=77)


def test_error_point_outside_the_liver(lidc_ct, context):
    with pytest.raises(InputError, match="outside the liver"):
        synthesize(lidc_ct, None, TumorSpec(kind="small"), np.random.default_rng(0),
                   point_ras=lidc_ct.center_ras, context=context)


def test_error_tumor_too_large_at_the_point(lidc_ct, context, deep_point):
    with pytest.raises(InputError, match="too large for the liver at this point"):
        synthesize(lidc_ct, None, TumorSpec(diameter_mm=120), np.random.default_rng(0), point_ras=deep_point,
                   context=context)


def test_error_ct_not_in_hu(lidc_ct, lidc_labels, pydicom_dir):
    scaled = Volume(lidc_ct.array / 4000.0 + 0.5, lidc_ct.ijk_to_ras)
    with pytest.raises(NotHUError):
        synthesize(scaled, lidc_labels, TumorSpec(), np.random.default_rng(0), liver_label=LIVER)
    from medsynth.io import list_dicom_series, read_volume

    mr_uid = next(s.uid for s in list_dicom_series(pydicom_dir) if s.modality == "MR")
    mr = read_volume(pydicom_dir, series_uid=mr_uid)
    with pytest.raises(NotHUError):
        synthesize(mr, np.ones(mr.array.shape, bool), TumorSpec(), np.random.default_rng(0))


def test_error_mask_on_another_grid(lidc_ct, lidc_labels):
    shifted = LabelMap(lidc_labels.array, lidc_labels.ijk_to_ras @ np.diag([2.0, 2.0, 1.0, 1.0]))
    with pytest.raises(GeometryMismatchError, match="Resample"):
        synthesize(lidc_ct, shifted, TumorSpec(), np.random.default_rng(0), liver_label=LIVER)
    with pytest.raises(InputError, match="shape"):
        synthesize(lidc_ct, np.ones((3, 3, 3), bool), TumorSpec(), np.random.default_rng(0))


def test_error_bad_spec_and_missing_generator(lidc_ct, lidc_labels):
    with pytest.raises(InputError, match="Unknown tumor type"):
        synthesize(lidc_ct, lidc_labels, TumorSpec(kind="huge"), np.random.default_rng(0), liver_label=LIVER)
    with pytest.raises(InputError, match="density"):
        synthesize(lidc_ct, lidc_labels, TumorSpec(appearance=Appearance(density="bright")), 0, liver_label=LIVER)
    with pytest.raises(InputError, match="diameter"):
        synthesize(lidc_ct, lidc_labels, TumorSpec(diameter_mm=0.5), 0, liver_label=LIVER)
    with pytest.raises(InputError, match="seeded generator"):
        synthesize(lidc_ct, lidc_labels, TumorSpec(), None, liver_label=LIVER)


def _phantom(directions: np.ndarray) -> tuple[Volume, np.ndarray]:
    """An analytic abdomen on an anisotropic, possibly oblique grid: 60 HU liver ellipsoid, 40 HU body, air."""
    from medsynth.volume import VolumeMetadata

    k, j, i = np.mgrid[0:40, 0:120, 0:120]
    body = (i - 60) ** 2 + (j - 60) ** 2 < 57 ** 2
    liver = ((i - 60) / 45.0) ** 2 + ((j - 60) / 40.0) ** 2 + ((k - 20) / 16.0) ** 2 < 1
    array = np.where(liver, 60.0, np.where(body, 40.0, -1000.0)) + np.random.default_rng(0).normal(0, 8, body.shape)
    ct = Volume.from_spacing(array.astype(np.float32), (0.8, 0.8, 2.0), (10.0, -20.0, 5.0), directions,
                             VolumeMetadata(modality="CT", units="HU"))
    return ct, liver


def test_oblique_grids_give_the_same_tumor_in_millimetres():
    angle = np.deg2rad(30)
    oblique = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    volumes = []
    for directions in (np.eye(3), oblique):
        ct, liver = _phantom(directions)
        result = synthesize(ct, liver, TumorSpec(diameter_mm=24.0), np.random.default_rng(9), point_ras=ct.center_ras)
        tumor = result.tumors[0]
        assert tumor.realism["components"] == 1 and np.all(liver[result.tumor_mask()])
        assert 20.0 < tumor.equivalent_diameter_mm < 28.0
        assert np.allclose(tumor.center_ras, ct.center_ras, atol=0.01)
        assert tumor.realism["contrast_hu"] < -10  # hypodense to this 60 HU liver
        volumes.append(tumor.volume_ml)
    assert volumes[1] == pytest.approx(volumes[0], rel=0.08)
