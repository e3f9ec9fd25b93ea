"""DRRProjection's MRML logic on real MRML (slicer-core) with LIDC-IDRI-0001.

Parameter node -> DRR node equal to the library's projection; C-arm transform <-> pose round trip;
"aim here"; projected markups on the fiducial's pixel; sweeps; bad input raises the library's
clear errors and leaves the scene unchanged.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import numpy as np
import pytest

from medsynth.errors import CancelledError, GeometryError, InputError, NotHUError
from medsynth.geometry import load_preset, preset_names
from medsynth.jobs import CancelToken
from medsynth.volume import Volume, VolumeMetadata

slicer = pytest.importorskip("slicer")

from medsynth import drr  # noqa: E402
from medsynth.mrml import markups_from_points, node_to_volume, volume_to_node  # noqa: E402
from medsynth.mrml import carm_models  # noqa: E402
from medsynth.mrml.volumes import numpy_matrix, vtk_matrix  # noqa: E402
from medsynth.mrml.drr_logic import (  # noqa: E402
    GUI_PARAMETERS,
    NODE_REFERENCES,
    OUTPUT_KINDS,
    PARAMETERS,
    DRRProjectionMRMLLogic,
    DRRRequest,
    read_parameter_node,
    write_parameter_node,
)

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
    return DRRProjectionMRMLLogic(device="cpu")


def small_request(ct: Volume, **changes) -> DRRRequest:
    request = DRRRequest(detector_rows=64, detector_columns=72, pixel_spacing=4.5, isocenter=tuple(ct.center_ras),
                         primary_angle=20.0, secondary_angle=-10.0)
    return request.replace(**changes)


def node_count(scene) -> int:
    return scene.GetNumberOfNodes()


# --- parameter node -> DRR node ------------------------------------------------------------------
def test_parameter_node_drr_equals_the_librarys_projection(mrml_scene, logic, ct_node, small_ct):
    parameter_node = mrml_scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "DRRProjection")
    request = small_request(small_ct, output_kind="radiograph")
    write_parameter_node(parameter_node, request, ctVolume=ct_node)
    read_back, nodes = read_parameter_node(parameter_node)
    assert read_back == request and nodes["ctVolume"] is ct_node and nodes["outputVolume"] is None

    outputs = logic.process_parameter_node(parameter_node)
    assert len(outputs) == 1 and parameter_node.GetNodeReference("outputVolume") is outputs[0]
    expected = drr.project(small_ct, request.carm(), spectrum="90kV", device="cpu")[0].as_volume("intensity")
    got = node_to_volume(outputs[0])
    assert got.array.shape == (1, 64, 72)
    np.testing.assert_allclose(got.array, expected.array, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.ijk_to_ras, expected.ijk_to_ras, atol=1e-6)
    # the detector's spacing, on the detector plane at SID from the source
    np.testing.assert_allclose(got.spacing[:2], [4.5, 4.5], atol=1e-9)
    carm = request.carm()
    np.testing.assert_allclose(got.ijk_to_ras_points([35.5, 31.5, 0.0]), carm.detector_center(), atol=1e-6)

    # a second run writes into the same output node; another pose gives another image
    write_parameter_node(parameter_node, request.replace(primary_angle=-40.0), ctVolume=ct_node,
                         outputVolume=outputs[0])
    again = logic.process_parameter_node(parameter_node)
    assert again[0] is outputs[0]
    assert np.abs(node_to_volume(again[0]).array - expected.array).max() > 0.01


def test_parameter_names_match_the_modules_parameter_node():
    """The module's @parameterNodeWrapper fields are exactly what the library reads and writes."""
    tree = ast.parse((ROOT / "DRRProjection" / "DRRProjection.py").read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def fields(class_name):
        result = {}
        for statement in classes[class_name].body:
            if isinstance(statement, ast.AnnAssign):
                default = ast.literal_eval(statement.value) if statement.value is not None else None
                result[statement.target.id] = default
        return result

    wrapper, pose = fields("DRRProjectionParameterNode"), fields("DRRProjectionCArmPose")
    names = {f"pose.{name}" for name in pose} | (set(wrapper) - {"pose"})
    assert names == set(PARAMETERS) | set(GUI_PARAMETERS) | set(NODE_REFERENCES)
    defaults = DRRRequest()
    flat = {**{f"pose.{k}": v for k, v in pose.items()}, **wrapper}
    for name, (attribute, _kind) in PARAMETERS.items():
        value = defaults.isocenter[int(attribute[-1])] if attribute.startswith("isocenter.") else getattr(defaults, attribute)
        assert flat[name] == value, name
    for name, (_kind, default) in GUI_PARAMETERS.items():
        assert flat[name] == default, name
    presets = next(ast.literal_eval(n.value) for n in tree.body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PRESETS")
    assert presets == list(preset_names())
    # the .ui binds every request parameter
    ui = (ROOT / "DRRProjection" / "Resources" / "UI" / "DRRProjection.ui").read_text()
    for name in list(PARAMETERS) + list(GUI_PARAMETERS) + list(NODE_REFERENCES):
        assert f"<string>{name}</string>" in ui, name


# --- the C-arm in 3D -----------------------------------------------------------------------------
def test_carm_transform_round_trip_and_models_follow_the_pose(mrml_scene, logic, small_ct):
    carm = small_request(small_ct).carm()
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
        logic.show_carm(small_request(small_ct, sod=1100.0).carm())
    assert node_count(mrml_scene) == before


# --- aim here, projected markups -----------------------------------------------------------------
def test_aim_here_puts_the_point_on_the_detector_centre(mrml_scene, logic, small_ct, lidc_labels):
    liver = np.argwhere(lidc_labels.mask("liver"))  # (k, j, i)
    point = lidc_labels.ijk_to_ras_points(liver.mean(axis=0)[::-1])
    markups = markups_from_points(point[None], name="aim")
    request = logic.aim_at_point(small_request(small_ct), markups)
    np.testing.assert_allclose(request.isocenter, point)
    for primary, secondary in ((0.0, 0.0), (35.0, -20.0), (-80.0, 30.0)):
        carm = request.replace(primary_angle=primary, secondary_angle=secondary).carm()
        np.testing.assert_allclose(carm.project_points(point[None])[0], [(72 - 1) / 2, (64 - 1) / 2], atol=1e-9)
    empty = markups_from_points(np.zeros((0, 3)), name="empty")
    with pytest.raises(InputError, match="empty"):
        logic.aim_at_point(request, empty)


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
    request = small_request(small_ct, primary_angle=38.0, secondary_angle=17.0, output_kind="line_integral",
                            detector_rows=96, detector_columns=96, pixel_spacing=2.0)
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
    request = small_request(small_ct, detector_rows=32, detector_columns=32, pixel_spacing=9.0)
    angles = logic.sweep_angles(-30.0, 30.0, 30.0)
    assert angles == [-30.0, 0.0, 30.0]
    steps = []
    result = logic.sweep(ct_node, request, angles, axis="primary", as_sequence=True,
                         progress=lambda f, m="": steps.append(f))
    sequence = result["sequence"]
    assert sequence.GetNumberOfDataNodes() == 3 and steps[-1] == 1.0
    assert [sequence.GetNthIndexValue(n) for n in range(3)] == ["-30", "0", "30"]
    single = node_to_volume(logic.process(ct_node, request.replace(primary_angle=30.0))[0]).array
    frame = slicer.util.arrayFromVolume(sequence.GetNthDataNode(2))
    np.testing.assert_allclose(frame, single, rtol=1e-6, atol=1e-7)
    assert result["browser"].GetNumberOfItems() == 3
    separate = logic.sweep(ct_node, request, [0.0, 15.0], axis="secondary", as_sequence=False)
    assert len(separate["nodes"]) == 2 and separate["sequence"] is None
    assert logic.carm_of_drr(separate["nodes"][1]).secondary_angle == 15.0
    with pytest.raises(InputError, match="step"):
        logic.sweep_angles(0.0, 10.0, 0.0)


def test_dual_energy_and_material_images(mrml_scene, logic, ct_node, small_ct):
    request = small_request(small_ct, detector_rows=32, detector_columns=32, pixel_spacing=9.0)
    low, high = logic.process(ct_node, request.replace(output_kind="dual_energy"))
    low_image, high_image = (slicer.util.arrayFromVolume(n)[0] for n in (low, high))
    body = low_image > 0.5
    assert body.mean() > 0.2 and np.all(low_image[body] > high_image[body])  # 60 kV attenuates more
    bone = slicer.util.arrayFromVolume(logic.process(ct_node, request.replace(output_kind="bone"))[0])[0]
    soft = slicer.util.arrayFromVolume(logic.process(ct_node, request.replace(output_kind="soft_tissue"))[0])[0]
    total = slicer.util.arrayFromVolume(logic.process(ct_node, request.replace(output_kind="line_integral"))[0])[0]
    assert soft.max() > bone.max() > 0.0 and np.all(total >= np.maximum(bone, soft) - 1e-4)


def test_preview_keeps_the_field_of_view_at_reduced_resolution(mrml_scene, logic, ct_node, small_ct):
    request = small_request(small_ct, detector_rows=128, detector_columns=128, pixel_spacing=2.25, preview_factor=4)
    preview = node_to_volume(logic.process(ct_node, request, preview=True)[0])
    full_carm = request.carm()
    assert preview.array.shape == (1, 32, 32)
    np.testing.assert_allclose(preview.spacing[:2], [9.0, 9.0], atol=1e-9)
    corner = preview.ijk_to_ras_points([-0.5, -0.5, 0.0])  # outer edge of the first pixel
    np.testing.assert_allclose(corner, full_carm.detector_corners()[0], atol=1e-6)


# --- bad input ----------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors_and_leave_the_scene_unchanged(mrml_scene, logic, ct_node, small_ct, pydicom_dir):
    from medsynth.io import list_dicom_series, read_dicom_series

    request = small_request(small_ct, detector_rows=16, detector_columns=16, pixel_spacing=18.0)
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
        logic.process(ct_node, request.replace(sod=1020.0))
    with pytest.raises(GeometryError, match="inside the volume"):
        logic.process(ct_node, request.replace(sod=100.0, preset="angio", sid=950.0))
    with pytest.raises(GeometryError, match="mechanical range"):
        logic.process(ct_node, request.replace(secondary_angle=120.0))
    with pytest.raises(InputError, match="Unknown output"):
        logic.process(ct_node, request.replace(output_kind="hologram"))
    with pytest.raises(InputError, match="tube voltage"):
        logic.process(ct_node, request.replace(spectrum="9000 volts"))
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
    request = small_request(small_ct, detector_rows=32, detector_columns=32, pixel_spacing=9.0, output_kind="bone")
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
    missing = sorted(name for name in called if name not in own and not hasattr(DRRProjectionMRMLLogic, name))
    assert called and not missing, f"the widget calls missing logic methods: {missing}"


def test_deepdrr_renderer_is_optional_and_says_what_is_missing(mrml_scene, logic, ct_node, small_ct, monkeypatch,
                                                               tmp_path):
    from medsynth.drr.deepdrr_backend import ENVIRONMENT_VARIABLE, DeepDRRUnavailable
    from medsynth.errors import DeviceError

    request = small_request(small_ct, detector_rows=16, detector_columns=16, pixel_spacing=18.0, backend="deepdrr")
    before = node_count(mrml_scene)
    with pytest.raises(InputError, match="MedSynth renderer"):
        logic.process(ct_node, request.replace(output_kind="bone"))
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "settings.json"))
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    with pytest.raises(DeepDRRUnavailable, match=ENVIRONMENT_VARIABLE) as raised:
        logic.process(ct_node, request)
    assert isinstance(raised.value, DeviceError)
    with pytest.raises(InputError, match="Unknown renderer"):
        logic.process(ct_node, request.replace(backend="raytracer9000"))
    assert node_count(mrml_scene) == before


def test_a_changed_ct_is_read_again(mrml_scene, logic, small_ct):
    """The live-preview caches follow the CT node: editing its voxels changes the next DRR."""
    node = volume_to_node(small_ct, name="edited")
    request = small_request(small_ct, detector_rows=16, detector_columns=16, pixel_spacing=18.0,
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
    thread = DRRProjectionMRMLLogic.warm_up_in_background()
    assert thread.daemon
    thread.join(timeout=600)
    assert not thread.is_alive()
    assert "DRR kernels ready" in caplog.text

    def broken():
        raise RuntimeError("no kernels")

    monkeypatch.setattr(drr, "warm_up", broken)
    failed = DRRProjectionMRMLLogic.warm_up_in_background()
    failed.join(timeout=60)
    assert "could not prepare the DRR kernels" in caplog.text and "no kernels" in caplog.text
