"""Pancreas and kidney tumors on the real LIDC-IDRI-0001 CT and its TotalSegmentator organs.

The pancreas (about 60 ml here) is thin: tumors must stay inside it in one piece. Kidney cysts
sit near water HU, renal cell carcinomas are heterogeneous, and the contrast phase changes the
tumor-to-parenchyma difference.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from medsynth.errors import InputError
from medsynth.tumor import Appearance, OrganContext, TumorSpec, synthesize
from medsynth.tumor.realism import sphericity
from medsynth.volume import LabelMap, LabelTable

PANCREAS, KIDNEYS = 7, (2, 3)


@pytest.fixture(scope="module")
def pancreas(lidc_ct, lidc_labels):
    return OrganContext(lidc_ct, lidc_labels, organ="pancreas")


@pytest.fixture(scope="module")
def kidneys(lidc_ct, lidc_labels):
    return OrganContext(lidc_ct, lidc_labels, organ="kidney")


def deepest_point(context, ct):
    depth, starts, strides = context.depth_map()
    cell = np.array(np.unravel_index(np.argmax(depth), depth.shape))
    return ct.ijk_to_ras_points((starts + cell * strides)[::-1].astype(float))


def assert_inside_in_one_piece(result, organ_mask):
    assert result.tumors
    for patch, tumor in zip(result.patches, result.tumors):
        label = patch.label
        outside = np.count_nonzero(label & ~organ_mask[patch.box_global])
        assert outside <= 0.02 * label.sum()  # the target: at most 2 % outside; by construction none
        assert ndimage.label(label)[1] == 1 and tumor.realism["components"] == 1


def test_organs_resolve_from_totalsegmentator_names(pancreas, kidneys, lidc_labels):
    assert pancreas.values == (PANCREAS,)
    assert sorted(kidneys.values) == sorted(KIDNEYS)
    whole = kidneys.mask((slice(None),) * 3)
    assert np.array_equal(whole, np.isin(lidc_labels.array, KIDNEYS))


def test_pancreas_tumors_stay_inside_the_thin_gland_in_one_piece(lidc_ct, lidc_labels, pancreas):
    result = synthesize(lidc_ct, None, TumorSpec(kind="small", count=3, organ="pancreas"), np.random.default_rng(2),
                        context=pancreas)
    assert len(result.tumors) == 3
    organ = np.asarray(lidc_labels.array == PANCREAS)
    assert_inside_in_one_piece(result, organ)
    changed = result.ct.array != lidc_ct.array
    assert not np.any(changed & ~organ)  # nothing outside the pancreas changes
    for tumor in result.tumors:
        assert tumor.look["organ"] == "pancreas" and tumor.look["lesion"] == "adenocarcinoma"
        assert -55 <= tumor.look["contrast_hu"] <= -20  # hypoattenuating in the portal venous phase
        assert tumor.realism["core_mean_hu"] < tumor.parenchyma_hu - 15
        assert tumor.scaled_to_fit < 1.0  # "small" semi-axes (6-10 mm) shrink to fit this gland
    # measured against the shell around each tumor (this gland holds fat lobules: a noisy reference)
    assert np.mean([t.realism["contrast_hu"] for t in result.tumors]) < -10
    assert set(np.unique(result.labels.array)) == {0, 1, 2}
    assert result.labels.table.names[2] == "pancreas tumor"


def test_clicked_pancreas_tumor_is_inside_and_undo_is_exact(lidc_ct, lidc_labels, pancreas):
    point = deepest_point(pancreas, lidc_ct)
    work = lidc_ct.with_array(lidc_ct.array.copy())
    result = synthesize(work, None, TumorSpec(kind="tiny", organ="pancreas"), np.random.default_rng(5),
                        point_ras=point, context=OrganContext(work, lidc_labels, organ="pancreas"), in_place=True)
    assert_inside_in_one_piece(result, lidc_labels.array == PANCREAS)
    result.undo(work.array)
    assert np.array_equal(work.array, lidc_ct.array)


def test_contrast_phase_changes_the_tumor_to_parenchyma_difference(lidc_ct, pancreas):
    contrasts = {}
    for phase in ("arterial", "portal_venous", "non_contrast"):
        result = synthesize(lidc_ct, None, TumorSpec(kind="small", count=2, organ="pancreas", contrast_phase=phase),
                            np.random.default_rng(8), context=pancreas, output_labels="none")
        contrasts[phase] = np.mean([t.look["contrast_hu"] for t in result.tumors])
        assert all(t.look["phase"] == phase for t in result.tumors)
    # most conspicuous in the pancreatic (late arterial) phase, faint without contrast
    assert contrasts["arterial"] < contrasts["portal_venous"] < contrasts["non_contrast"] < 0
    assert contrasts["non_contrast"] > -20


def test_kidney_cysts_are_near_water_and_renal_cell_carcinomas_heterogeneous(lidc_ct, lidc_labels, kidneys):
    spec = TumorSpec(kind="small", count=3, organ="kidney", appearance=Appearance(lesion="cyst"))
    cysts = synthesize(lidc_ct, None, spec, np.random.default_rng(4), context=kidneys, output_labels="none")
    spec = TumorSpec(kind="small", count=3, organ="kidney", appearance=Appearance(lesion="rcc"))
    rcc = synthesize(lidc_ct, None, spec, np.random.default_rng(4), context=kidneys, output_labels="none")
    kidney_mask = np.isin(lidc_labels.array, KIDNEYS)
    assert_inside_in_one_piece(cysts, kidney_mask)
    assert_inside_in_one_piece(rcc, kidney_mask)
    for cyst in cysts.tumors:
        assert -9 <= cyst.realism["core_mean_hu"] <= 20  # Bosniak 2019 simple fluid, whatever the parenchyma
        assert cyst.parenchyma_hu > 100  # this scan's kidneys are enhanced
        assert cyst.look["texture_std_hu"] < 3 and cyst.look["edge_mm"] <= 0.5  # homogeneous, sharp wall
    cyst_sd = np.mean([t.realism["tumor_std_hu"] for t in cysts.tumors])
    rcc_sd = np.mean([t.realism["tumor_std_hu"] for t in rcc.tumors])
    assert rcc_sd > cyst_sd + 2  # heterogeneous, where a cyst carries the scan's noise alone
    assert all(t.look["texture_std_hu"] >= 14 for t in rcc.tumors)
    # solid and enhancing (well above water), below the enhanced parenchyma (nephrographic phase)
    assert all(t.realism["core_mean_hu"] > 40 for t in rcc.tumors)
    assert np.mean([t.realism["core_mean_hu"] - t.parenchyma_hu for t in rcc.tumors]) < -30


def test_duct_dilation_paints_fluid_upstream_inside_the_pancreas(lidc_ct, lidc_labels, pancreas):
    spec = TumorSpec(kind="small", count=1, organ="pancreas", appearance=Appearance(duct_dilation=True))
    work = lidc_ct.with_array(lidc_ct.array.copy())
    context = OrganContext(work, lidc_labels, organ="pancreas")
    result = synthesize(work, None, spec, np.random.default_rng(1), context=context, in_place=True)
    tumor = result.tumors[0]
    look = tumor.look
    assert 3.0 <= look["duct_diameter_mm"] <= 6.0 and look["duct_length_mm"] > 20 and look["duct_voxels"] > 50
    organ = lidc_labels.array == PANCREAS
    changed = work.array != lidc_ct.array
    assert not np.any(changed & ~organ)
    duct = changed & ~result.tumor_mask()
    k, j, i = np.nonzero(duct)
    ras = lidc_ct.ijk_to_ras_points(np.stack([i, j, k], axis=1).astype(float))
    assert np.median(ras[:, 0]) < tumor.center_ras[0]  # upstream: towards the tail, the patient's left
    assert np.median(work.array[duct]) < np.median(lidc_ct.array[duct]) - 20  # fluid replaces parenchyma
    result.undo(work.array)
    assert np.array_equal(work.array, lidc_ct.array)  # one undo removes tumor and duct


def test_error_organ_missing_from_the_label_map(lidc_ct, lidc_labels):
    names = {value: name for value, name in lidc_labels.table.names.items() if name != "pancreas"}
    no_pancreas = LabelMap(lidc_labels.array, lidc_labels.ijk_to_ras, table=LabelTable(names))
    with pytest.raises(InputError, match="no pancreas label"):
        synthesize(lidc_ct, no_pancreas, TumorSpec(organ="pancreas"), np.random.default_rng(0))
    empty = LabelMap(np.where(lidc_labels.array == PANCREAS, 0, lidc_labels.array), lidc_labels.ijk_to_ras,
                     table=lidc_labels.table)
    with pytest.raises(InputError, match="pancreas mask is empty"):
        synthesize(lidc_ct, empty, TumorSpec(organ="pancreas"), np.random.default_rng(0))


def test_error_organ_too_small_for_the_asked_size(lidc_ct, pancreas):
    with pytest.raises(InputError, match="pancreas is too small for a 40 mm tumor"):
        synthesize(lidc_ct, None, TumorSpec(diameter_mm=40, organ="pancreas"), np.random.default_rng(0),
                   context=pancreas)
    with pytest.raises(InputError, match="too large for the pancreas at this point"):
        synthesize(lidc_ct, None, TumorSpec(diameter_mm=40, organ="pancreas"), np.random.default_rng(0),
                   point_ras=deepest_point(pancreas, lidc_ct), context=pancreas)


def test_error_lesion_or_option_of_another_organ():
    with pytest.raises(InputError, match="no lesion type 'cyst'"):
        TumorSpec(organ="pancreas", appearance=Appearance(lesion="cyst")).validate()
    with pytest.raises(InputError, match="pancreas feature"):
        TumorSpec(organ="kidney", appearance=Appearance(duct_dilation=True)).validate()
    with pytest.raises(InputError, match="Unknown organ"):
        TumorSpec(organ="lung").validate()
    with pytest.raises(InputError, match="contrast phase"):
        TumorSpec(contrast_phase="delayed").validate()


def test_sphericity_of_analytic_shapes():
    k, j, i = np.mgrid[-30:31, -30:31, -30:31]
    ball = i ** 2 + j ** 2 + k ** 2 <= 25 ** 2
    assert sphericity(ball, np.ones(3)) == pytest.approx(1.0, abs=0.06)
    # prolate spheroid, semi-axes 25, 8, 8: exact sphericity 0.837 (faces of an axis-aligned one bias it up)
    spheroid = (i / 25.0) ** 2 + (j / 8.0) ** 2 + (k / 8.0) ** 2 <= 1
    assert sphericity(spheroid, np.ones(3)) == pytest.approx(0.837, abs=0.06)
    assert sphericity(spheroid, np.ones(3)) < sphericity(ball, np.ones(3)) - 0.05


def test_parameters_carry_organ_phase_lesion_and_duct():
    from medsynth.tumor.parameters import TumorParameters

    spec = TumorParameters(organ="kidney", contrast_phase="arterial", lesion="cyst").to_spec()
    assert (spec.organ, spec.contrast_phase, spec.appearance.lesion) == ("kidney", "arterial", "cyst")
    spec = TumorParameters(organ="pancreas", duct_dilation=True).to_spec()
    assert spec.appearance.duct_dilation and spec.appearance.lesion is None
    with pytest.raises(InputError):
        TumorParameters(organ="liver", lesion="cyst").to_spec()


def test_cli_kidney_cysts_and_realism_report(tmp_path, lidc_ct, lidc_labels, capsys):
    from medsynth.cli.main import main
    from medsynth.io import read_volume, write_volume
    from medsynth.volume import Volume

    kidney = np.isin(lidc_labels.array, KIDNEYS)
    box = []
    for axis in range(3):
        hits = np.flatnonzero(kidney.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(hits[0] - 4, 0), min(hits[-1] + 5, kidney.shape[axis])))
    box[1] = slice(0, kidney.shape[1])  # front to back: the air around the body keeps it a CT in HU
    matrix = lidc_ct.ijk_to_ras.copy()
    matrix[:3, 3] = lidc_ct.ijk_to_ras_points(np.array([box[2].start, box[1].start, box[0].start], float))
    write_volume(Volume(lidc_ct.array[tuple(box)].astype(np.int16), matrix, lidc_ct.metadata), tmp_path / "ct.nii.gz")
    write_volume(LabelMap(lidc_labels.array[tuple(box)], matrix), tmp_path / "labels.nii.gz")
    table = tmp_path / "structures.csv"
    table.write_text("structure,id\nkidney_right,2\nkidney_left,3\nliver,5\npancreas,7\n")
    out = tmp_path / "out"
    code = main(["tumor", str(tmp_path / "ct.nii.gz"), "--organ-mask", str(tmp_path / "labels.nii.gz"),
                 "--label-table", str(table), "--organ", "kidney", "--lesion", "cyst", "--type", "small",
                 "--count", "2", "--phase", "portal_venous", "--out", str(out), "--quiet"])
    assert code == 0
    info = json.loads((out / "variant_000" / "tumors.json").read_text())
    assert info["spec"]["organ"] == "kidney" and len(info["tumors"]) == 2
    labels = read_volume(out / "variant_000" / "labels.nii.gz")
    assert set(np.unique(labels.array)) == {0, 1, 2}
    capsys.readouterr()
    assert main(["tumor", "realism", str(out), "--json", str(tmp_path / "checks.json")]) == 0
    printed = capsys.readouterr().out
    assert "kidney/cyst/portal_venous" in printed and "core_mean_hu" in printed
    checks = json.loads((tmp_path / "checks.json").read_text())
    means = [c for c in checks if c["statistic"] == "core_mean_hu"]
    assert len(means) == 2 and all(c["inside"] for c in means)
    assert (out / "realism.png").stat().st_size > 2000
    # bad input: an organ the label map does not hold, one line naming the fix
    table.write_text("structure,id\nkidney_right,2\nkidney_left,3\nliver,5\n")
    code = main(["tumor", str(tmp_path / "ct.nii.gz"), "--organ-mask", str(tmp_path / "labels.nii.gz"),
                 "--label-table", str(table), "--organ", "pancreas", "--out", str(tmp_path / "p"), "--quiet"])
    assert code == 2 and "no pancreas label" in capsys.readouterr().err
    assert main(["tumor", "realism", str(tmp_path / "nothing")]) == 2


def test_liver_phase_scales_hypo_and_hyper_lesions(lidc_ct, lidc_labels):
    """Hypodense lesions fade without contrast; hyperdense (HCC-like) ones stand out in the arterial phase."""
    from medsynth.tumor import LiverContext

    context = LiverContext(lidc_ct, lidc_labels, 5)

    def contrast(density, phase):
        spec = TumorSpec(kind="small", count=2, contrast_phase=phase, appearance=Appearance(density=density))
        result = synthesize(lidc_ct, None, spec, np.random.default_rng(3), context=context, output_labels="none")
        return np.mean([t.look["contrast_hu"] for t in result.tumors])

    portal = contrast("hypo", "portal_venous")
    assert contrast("hypo", "non_contrast") == pytest.approx(0.35 * portal, rel=1e-3)
    assert contrast("hyper", "arterial") == pytest.approx(1.4 * contrast("hyper", "portal_venous"), rel=1e-3)
