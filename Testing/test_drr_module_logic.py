"""DRRProjection's MRML logic on real MRML (slicer-core) with LIDC-IDRI-0001.

The module's parameter node (its ``drr`` pack is the library's DRRParameters) -> DRR node equal
to the library's projection; C-arm transform <-> pose round trip; "aim here"; projected markups on
the fiducial's pixel; sweeps; bad input raises the library's clear errors and leaves the scene
unchanged.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import numpy as np
import pytest

from medsynth.drr.parameters import CArmPose, DRRParameters
from medsynth.drr.poses import sweep_angles
from medsynth.errors import CancelledError, GeometryError, InputError, NotHUError
from medsynth.jobs import CancelToken
from medsynth.parameters import updated
from medsynth.volume import Volume, VolumeMetadata

slicer = pytest.importorskip("slicer")

from medsynth import drr  # noqa: E402
from medsynth.module_logic import carm_models  # noqa: E402
from medsynth.module_logic.drr import DRRLogic  # noqa: E402
from medsynth.mrml import markups_from_points, node_to_volume, volume_to_node  # noqa: E402
from medsynth.mrml.parameter_packs import store_parameters, to_parameters  # noqa: E402
from medsynth.mrml.volumes import numpy_matrix, vtk_matrix  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_ct(lidc_ct) -> Volume:
    """LIDC-IDRI-0001 at half the in-plane resolution (1.4 mm): the real scan, quicker to march."""
    matrix = lidc_ct.ijk_to_ras.copy()
    matrix[:3, :2] *= 2.0
    return Volume(np.ascontiguousarray(lidc_ct.array[:, ::2, ::2]), matrix, VolumeMetadata(modality="CT", units="HU"))


@pytest.fixture(scope="module")
def ct_node(mrml_scene, small_ct):
    return volume_to_node(small_ct, name="LIDC-IDRI-0001")


@pytest.fixture(scope="module")
def logic(mrml_scene):
    return DRRLogic()


def small_parameters(ct: Volume, **changes) -> DRRParameters:
    """A small detector aimed at the CT's centre, LAO 20 CAUD 10; ``changes`` by dotted name."""
    r, a, s = (float(v) for v in ct.center_ras)
    parameters = DRRParameters(pose=CArmPose(primary_angle=20.0, secondary_angle=-10.0, isocenter_r=r,
                                             isocenter_a=a, isocenter_s=s),
                               detector_rows=64, detector_columns=72, pixel_spacing=4.5, device="cpu")
    return updated(parameters, changes)


def node_count(scene) -> int:
    return scene.GetNumberOfNodes()


# --- the module's parameter node -> DRR node ---------------------------------------------------------
def test_parameter_node_drr_equals_the_librarys_projection(mrml_scene, logic, ct_node, small_ct):
    from slicer_modules import load_module_file

    module = load_module_file("DRRProjection")
    parameter_node = module.DRRProjectionLogic().getParameterNode()
    parameters = small_parameters(small_ct, output_kind="radiograph")
    parameter_node.ctVolume = ct_node
    store_parameters(parameter_node.drr, parameters)
    assert to_parameters(parameter_node.drr) == parameters  # stored as strings in the node, read back exactly
    assert parameter_node.parameterNode.GetParameter("drr.pose.primary_angle") == "20.0"

    outputs = logic.process(parameter_node.ctVolume, to_parameters(parameter_node.drr), parameter_node.segmentation,
                            parameter_node.outputVolume)
    assert len(outputs) == 1
    expected = drr.project(small_ct, parameters.carm(), spectrum="90kV", device="cpu")[0].as_volume("intensity")
    got = node_to_volume(outputs[0])
    assert got.array.shape == (1, 64, 72)
    np.testing.assert_allclose(got.array, expected.array, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.ijk_to_ras, expected.ijk_to_ras, atol=1e-6)
    # the detector's spacing, on the detector plane at SID from the source
    np.testing.assert_allclose(got.spacing[:2], [4.5, 4.5], atol=1e-9)
    carm = parameters.carm()
    np.testing.assert_allclose(got.ijk_to_ras_points([35.5, 31.5, 0.0]), carm.detector_center(), atol=1e-6)

    # a second run writes into the same output node; another pose gives another image
    parameter_node.outputVolume = outputs[0]
    parameter_node.drr.pose.primary_angle = -40.0
    again = logic.process(ct_node, to_parameters(parameter_node.drr), None, parameter_node.outputVolume)
    assert again[0] is outputs[0]
    assert np.abs(node_to_volume(again[0]).array - expected.array).max() > 0.01


def test_render_key_ignores_output_references_and_follows_the_pose(mrml_scene, logic, ct_node, small_ct):
    """A changed output reference must not start a preview that overwrites the user's DRR (issue item 7)."""
    parameters = small_parameters(small_ct)
    key = logic.render_key(ct_node, None, parameters)
    assert logic.render_key(ct_node, None, small_parameters(small_ct)) == key
    assert logic.render_key(ct_node, None, updated(parameters, {"pose.primary_angle": 21.0})) != key


def test_first_ct_node_skips_label_maps_drrs_and_mr(mrml_scene, logic, ct_node, small_ct):
    from medsynth.module_logic.drr import first_ct_node, looks_like_ct
    from medsynth.mrml import labelmap_to_node
    from medsynth.volume import LabelMap, LabelTable

    scene = slicer.vtkMRMLScene()
    logic_scene = DRRLogic(scene)
    assert first_ct_node(scene) is None
    labels = LabelMap(np.ones((4, 4, 4), np.uint8), table=LabelTable({1: "liver"}))
    label_node = labelmap_to_node(labels, name="labels")
    assert not looks_like_ct(label_node)
    drr_node = logic.process(ct_node, small_parameters(small_ct, detector_rows=16, detector_columns=16,
                                                       pixel_spacing=18.0))[0]
    assert not looks_like_ct(drr_node) and looks_like_ct(ct_node)
    mr = volume_to_node(Volume(np.full((4, 4, 4), 300.0, np.float32)), name="MR-like")
    assert not looks_like_ct(mr)
    assert first_ct_node(mrml_scene) is not None and looks_like_ct(first_ct_node(mrml_scene))
    with pytest.raises(InputError, match="is a DRR"):
        logic_scene.ct_volume(drr_node)


# --- the C-arm in 3D -----------------------------------------------------------------------------
def test_carm_transform_round_trip_and_models_follow_the_pose(mrml_scene, logic, small_ct):
    carm = small_parameters(small_ct).carm()
    nodes = logic.show_carm(carm)
    transform = nodes.transform
    assert set(nodes.models) == set(carm_models.PART_STYLES)
    for model in nodes.models.values():
        assert model.GetTransformNodeID() == transform.GetID() and model.GetPolyData().GetNumberOfPoints() > 0
    matrix = numpy_matrix(transform.GetMatrixTransformToParent())
    np.testing.assert_allclose(matrix, carm.pose_matrix(), atol=1e-12)
    back = logic.carm_from_transform(transform)
    assert back.primary_angle == pytest.approx(20.0) and back.secondary_angle == pytest.approx(-10.0)
    np.testing.assert_allclose(back.isocenter, carm.isocenter)

    # the central ray model, placed by the transform, runs from the source to the detector centre
    ray = nodes.models["central ray"].GetPolyData()
    ends = np.array([ray.GetPoint(0), ray.GetPoint(1)])
    world = np.column_stack([ends, np.ones(2)]) @ matrix.T
    np.testing.assert_allclose(world[0, :3], carm.source_position(), atol=1e-6)
    np.testing.assert_allclose(world[1, :3], carm.detector_center(), atol=1e-6)

    # dragging the transform (handles) to another pose: the logic reads that pose back
    target = carm.replace(primary_angle=-55.0, secondary_angle=25.0, isocenter=(5.0, -12.0, -150.0))
    transform.SetMatrixTransformToParent(vtk_matrix(target.pose_matrix()))
    moved = logic.carm_from_transform(transform)
    assert (moved.primary_angle, moved.secondary_angle) == pytest.approx((-55.0, 25.0))
    np.testing.assert_allclose(moved.isocenter, target.isocenter, atol=1e-9)

    # a roll about the beam cannot be made by a C-arm: snapped to the same beam, or refused
    roll = np.eye(4)
    roll[:3, :3] = [[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1]]
    transform.SetMatrixTransformToParent(vtk_matrix(target.pose_matrix() @ roll))
    snapped = logic.carm_from_transform(transform)
    np.testing.assert_allclose(snapped.beam_direction(), target.beam_direction(), atol=1e-9)
    with pytest.raises(GeometryError, match="roll"):
        logic.carm_from_transform(transform, snap=False)

    # the same nodes follow a new pose; the meshes are rebuilt only when the geometry changes
    detector_before = nodes.models["detector"].GetPolyData()
    again = logic.show_carm(target, transform)
    assert again.transform is transform and again.models["detector"].GetPolyData() is detector_before
    bigger = logic.show_carm(target.replace(detector_rows=128, detector_columns=144), transform)
    assert bigger.models["detector"].GetPolyData() is not detector_before
    bounds = bigger.models["detector"].GetPolyData().GetBounds()
    assert bounds[1] - bounds[0] == pytest.approx(144 * 4.5 + 2 * carm_models.DETECTOR_BORDER_MM)
    carm_models.remove_carm(transform)


def test_impossible_carm_pose_leaves_no_models(mrml_scene, logic, small_ct):
    before = node_count(mrml_scene)
    with pytest.raises(GeometryError, match="SOD"):
        logic.show_carm(small_parameters(small_ct, **{"pose.sod": 1100.0}).carm())
    assert node_count(mrml_scene) == before


# --- aim here, projected markups -----------------------------------------------------------------
def test_aim_here_puts_the_point_on_the_detector_centre(mrml_scene, logic, small_ct, lidc_labels):
    liver = np.argwhere(lidc_labels.mask("liver"))  # (k, j, i)
    point = lidc_labels.ijk_to_ras_points(liver.mean(axis=0)[::-1])
    markups = markups_from_points(point[None], name="aim")
    parameters = small_parameters(small_ct)
    pose = logic.aim_at_point(parameters.pose, markups)
    np.testing.assert_allclose(pose.isocenter, point)
    for primary, secondary in ((0.0, 0.0), (35.0, -20.0), (-80.0, 30.0)):
        carm = parameters.carm(CArmPose(primary, secondary, pose.sid, pose.sod, *pose.isocenter))
        np.testing.assert_allclose(carm.project_points(point[None])[0], [(72 - 1) / 2, (64 - 1) / 2], atol=1e-9)
    empty = markups_from_points(np.zeros((0, 3)), name="empty")
    with pytest.raises(InputError, match="empty"):
        logic.aim_at_point(pose, empty)


def test_projected_markups_land_on_the_fiducials_pixel(mrml_scene, logic, small_ct):
    """A small dense bead inserted into the CT: its shadow is where the projected fiducial lands."""
    rng = np.random.default_rng(4)
    centre_ijk = np.array(small_ct.shape_ijk) / 2.0 + rng.uniform(-30, 30, 3) * [1, 1, 0.3]
    k, j, i = np.ogrid[: small_ct.array.shape[0], : small_ct.array.shape[1], : small_ct.array.shape[2]]
    distance_mm = np.sqrt(((i - centre_ijk[0]) * small_ct.spacing[0]) ** 2 + ((j - centre_ijk[1]) * small_ct.spacing[1]) ** 2
                          + ((k - centre_ijk[2]) * small_ct.spacing[2]) ** 2)
    with_bead = small_ct.with_array(np.where(distance_mm < 4.0, 3000, small_ct.array).astype(small_ct.array.dtype))
    bead_node = volume_to_node(with_bead, name="LIDC with bead")
    plain_node = volume_to_node(small_ct, name="LIDC plain")
    bead_ras = small_ct.ijk_to_ras_points(centre_ijk)
    request = small_parameters(small_ct, **{"pose.primary_angle": 38.0, "pose.secondary_angle": 17.0},
                               output_kind="line_integral", detector_rows=96, detector_columns=96, pixel_spacing=2.0)
    with_image = logic.process(bead_node, request)[0]
    plain_image = logic.process(plain_node, request)[0]
    shadow = (slicer.util.arrayFromVolume(with_image) - slicer.util.arrayFromVolume(plain_image))[0]
    weights = np.where(shadow > 0.5 * shadow.max(), shadow, 0.0)  # the bead's shadow, not the noise floor
    rows, cols = np.indices(shadow.shape)
    row, col = (weights * rows).sum() / weights.sum(), (weights * cols).sum() / weights.sum()

    fiducials = markups_from_points(bead_ras[None], name="bead", labels=["bead"])
    projected = logic.project_markups(fiducials, with_image)
    assert projected.GetNumberOfControlPoints() == 1 and projected.GetNthControlPointLabel(0) == "bead"
    on_plane = np.zeros(3)
    projected.GetNthControlPointPositionWorld(0, on_plane)
    pixel = node_to_volume(with_image).ras_to_ijk_points(on_plane)
    assert abs(pixel[2]) < 1e-6  # on the image plane
    assert abs(pixel[0] - col) <= 0.5 and abs(pixel[1] - row) <= 0.5  # the same pixel
    with pytest.raises(InputError, match="not a DRR"):
        logic.project_markups(fiducials, plain_node)


# --- sweeps and outputs --------------------------------------------------------------------------
def test_sweep_gives_a_sequence_or_one_node_per_view(mrml_scene, logic, ct_node, small_ct):
    request = small_parameters(small_ct, detector_rows=32, detector_columns=32, pixel_spacing=9.0)
    angles = sweep_angles(-30.0, 30.0, 30.0)
    assert angles == [-30.0, 0.0, 30.0]
    steps = []
    result = logic.sweep(ct_node, request, angles, axis="primary", as_sequence=True,
                         progress=lambda f, m="": steps.append(f))
    sequence = result["sequence"]
    assert sequence.GetNumberOfDataNodes() == 3 and steps[-1] == 1.0
    assert [sequence.GetNthIndexValue(n) for n in range(3)] == ["-30", "0", "30"]
    single = node_to_volume(logic.process(ct_node, updated(request, {"pose.primary_angle": 30.0}))[0]).array
    frame = slicer.util.arrayFromVolume(sequence.GetNthDataNode(2))
    np.testing.assert_allclose(frame, single, rtol=1e-6, atol=1e-7)
    assert result["browser"].GetNumberOfItems() == 3
    separate = logic.sweep(ct_node, request, [0.0, 15.0], axis="secondary", as_sequence=False)
    assert len(separate["nodes"]) == 2 and separate["sequence"] is None
    assert logic.carm_of_drr(separate["nodes"][1]).secondary_angle == 15.0
    with pytest.raises(InputError, match="step"):
        sweep_angles(0.0, 10.0, 0.0)


def test_dual_energy_and_material_images(mrml_scene, logic, ct_node, small_ct):
    request = small_parameters(small_ct, detector_rows=32, detector_columns=32, pixel_spacing=9.0)
    low, high = logic.process(ct_node, request.replace(output_kind="dual_energy"))
    low_image, high_image = (slicer.util.arrayFromVolume(n)[0] for n in (low, high))
    body = low_image > 0.5
    assert body.mean() > 0.2 and np.all(low_image[body] > high_image[body])  # 60 kV attenuates more
    bone = slicer.util.arrayFromVolume(logic.process(ct_node, request.replace(output_kind="bone"))[0])[0]
    soft = slicer.util.arrayFromVolume(logic.process(ct_node, request.replace(output_kind="soft_tissue"))[0])[0]
    total = slicer.util.arrayFromVolume(logic.process(ct_node, request.replace(output_kind="line_integral"))[0])[0]
    assert soft.max() > bone.max() > 0.0 and np.all(total >= np.maximum(bone, soft) - 1e-4)


def test_preview_keeps_the_field_of_view_at_reduced_resolution(mrml_scene, logic, ct_node, small_ct):
    request = small_parameters(small_ct, detector_rows=128, detector_columns=128, pixel_spacing=2.25, preview_factor=4)
    preview = node_to_volume(logic.process(ct_node, request, preview=True)[0])
    full_carm = request.carm()
    assert preview.array.shape == (1, 32, 32)
    np.testing.assert_allclose(preview.spacing[:2], [9.0, 9.0], atol=1e-9)
    corner = preview.ijk_to_ras_points([-0.5, -0.5, 0.0])  # outer edge of the first pixel
    np.testing.assert_allclose(corner, full_carm.detector_corners()[0], atol=1e-6)


# --- bad input ----------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors_and_leave_the_scene_unchanged(mrml_scene, logic, ct_node, small_ct, pydicom_dir):
    from medsynth.io import list_dicom_series, read_dicom_series

    request = small_parameters(small_ct, detector_rows=16, detector_columns=16, pixel_spacing=18.0)
    before = node_count(mrml_scene)
    with pytest.raises(InputError, match="No CT volume selected"):
        logic.process(None, request)
    mr_series = next(s for s in list_dicom_series(pydicom_dir) if s.modality == "MR")
    mr = volume_to_node(read_dicom_series(pydicom_dir, mr_series.uid), name="MR")
    normalized = volume_to_node(small_ct.with_array((small_ct.array.astype(np.float32) + 1024) / 4096.0), name="scaled")
    before = node_count(mrml_scene)
    with pytest.raises(NotHUError, match="MR"):
        logic.process(mr, request)
    with pytest.raises(NotHUError, match="Hounsfield"):
        logic.process(normalized, request)
    with pytest.raises(GeometryError, match="SOD"):
        logic.process(ct_node, updated(request, {"pose.sod": 1020.0}))
    with pytest.raises(GeometryError, match="inside the volume"):
        inside = request.pose.moved_to(np.add(request.pose.isocenter, (0.0, 260.0, 0.0)))  # source within the CT
        logic.process(ct_node, request.replace(pose=CArmPose(0.0, 0.0, 1020.0, 250.0, *inside.isocenter)))
    with pytest.raises(GeometryError, match="mechanical range"):
        logic.process(ct_node, request.with_preset("angio").replace(pose=CArmPose(secondary_angle=80.0)))
    with pytest.raises(InputError, match="output_kind is 'hologram'"):
        logic.process(ct_node, request.replace(output_kind="hologram"))
    with pytest.raises(InputError, match="kv is 9000"):
        logic.process(ct_node, request.replace(kv=9000.0))
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(CancelledError):
        logic.process(ct_node, request, cancel=cancel)
    with pytest.raises(InputError, match="sweep axis"):
        logic.sweep(ct_node, request, [0.0], axis="sideways")
    assert node_count(mrml_scene) == before


def test_segmentation_materials(mrml_scene, logic, ct_node, small_ct, lidc_labels):
    from medsynth.mrml import labelmap_to_segmentation
    from medsynth.volume import LabelMap, LabelTable

    bone_names = [n for n in lidc_labels.table.names.values() if n.startswith(("vertebrae", "rib", "sternum"))]
    bone_values = [lidc_labels.table.value(n) for n in bone_names]
    labels = lidc_labels.array[:, ::2, ::2]
    materials = np.where(np.isin(labels, bone_values), 1, np.where(labels > 0, 2, 0)).astype(np.int16)
    segmentation = labelmap_to_segmentation(
        LabelMap(materials, small_ct.ijk_to_ras, table=LabelTable({1: "bone", 2: "soft tissue"})), name="materials")
    request = small_parameters(small_ct, detector_rows=32, detector_columns=32, pixel_spacing=9.0, output_kind="bone")
    from_segments = slicer.util.arrayFromVolume(logic.process(ct_node, request, segmentation_node=segmentation)[0])[0]
    from_hu = slicer.util.arrayFromVolume(logic.process(ct_node, request)[0])[0]
    assert from_segments.max() > 0 and not np.allclose(from_segments, from_hu)
    segmentation.GetSegmentation().GetNthSegment(0).SetName("unobtainium")
    before = node_count(mrml_scene)
    with pytest.raises(InputError, match="do not name a material"):
        logic.process(ct_node, request, segmentation_node=segmentation)
    assert node_count(mrml_scene) == before


def test_every_logic_call_of_the_widget_exists():
    """The Widget (not runnable without Slicer's GUI) only calls logic methods that exist and are tested here."""
    import re

    text = (ROOT / "DRRProjection" / "DRRProjection.py").read_text()
    called = set(re.findall(r"self\.logic\.(\w+)\(", text))
    tree = ast.parse(text)
    module_logic = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DRRProjectionLogic")
    own = {n.name for n in module_logic.body if isinstance(n, ast.FunctionDef)}
    missing = sorted(name for name in called if name not in own and not hasattr(DRRLogic, name))
    assert called and not missing, f"the widget calls missing logic methods: {missing}"


def test_deepdrr_renderer_is_optional_and_says_what_is_missing(mrml_scene, logic, ct_node, small_ct, monkeypatch,
                                                               tmp_path):
    from medsynth.drr.deepdrr_backend import ENVIRONMENT_VARIABLE, DeepDRRUnavailable
    from medsynth.errors import DeviceError

    request = small_parameters(small_ct, detector_rows=16, detector_columns=16, pixel_spacing=18.0, backend="deepdrr")
    before = node_count(mrml_scene)
    with pytest.raises(InputError, match="MedSynth renderer"):
        logic.process(ct_node, request.replace(output_kind="bone"))
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    with pytest.raises(DeepDRRUnavailable, match=ENVIRONMENT_VARIABLE) as raised:
        logic.process(ct_node, request)
    assert isinstance(raised.value, DeviceError)
    with pytest.raises(InputError, match="backend is 'raytracer9000'"):
        logic.process(ct_node, request.replace(backend="raytracer9000"))
    assert node_count(mrml_scene) == before


def test_a_changed_ct_is_read_again(mrml_scene, logic, small_ct):
    """The live-preview caches follow the CT node: editing its voxels changes the next DRR."""
    node = volume_to_node(small_ct, name="edited")
    request = small_parameters(small_ct, detector_rows=16, detector_columns=16, pixel_spacing=18.0,
                               output_kind="line_integral")
    first = node_to_volume(logic.process(node, request)[0]).array
    assert node_to_volume(logic.process(node, request)[0]).array.tolist() == first.tolist()  # cached, same
    slicer.util.updateVolumeFromArray(node, np.full(small_ct.array.shape, -1000, np.int16))  # all air now
    emptied = node_to_volume(logic.process(node, request)[0]).array
    assert emptied.max() < 0.05 * first.max()
    with pytest.raises(InputError, match="No DRR selected"):
        logic.project_markups(markups_from_points(np.zeros((1, 3)), name="p"), None)


def test_kernels_warm_up_in_the_background(monkeypatch, caplog):
    """Opening the module starts loading (or compiling) the kernels in a daemon thread; a failure is
    logged, not raised into the GUI."""
    from medsynth import drr

    caplog.set_level(logging.INFO)
    thread = DRRLogic.warm_up_in_background()
    assert thread.daemon
    thread.join(timeout=600)
    assert not thread.is_alive()
    assert "DRR kernels ready" in caplog.text

    def broken():
        raise RuntimeError("no kernels")

    monkeypatch.setattr(drr, "warm_up", broken)
    failed = DRRLogic.warm_up_in_background()
    failed.join(timeout=60)
    assert "could not prepare the DRR kernels" in caplog.text and "no kernels" in caplog.text
