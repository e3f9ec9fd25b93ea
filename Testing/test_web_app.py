"""The web app in process: trame-slicer's views offscreen, clicks sent to their VTK interactors, the LIDC CT.

State changes are asserted on the MRML nodes (CT voxels, segments, DRR nodes, the C-arm
transform), the way the browser tests assert on the server, not on pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("trame_slicer")

LIVER = 5


@pytest.fixture(scope="module")
def web(lidc_dir, tmp_path_factory):
    """The app (no server loop: tasks are delivered with runner.wait()) with the LIDC sample open."""
    from trame.app import get_server

    from medsynth.web.app import MedSynthWebApp

    server = get_server("medsynth_web_in_process", client_type="vue3")
    app = MedSynthWebApp(server, output_dir=tmp_path_factory.mktemp("web"), scheduler=lambda poll: None)
    app.data.open_sample("lidc")
    assert not server.state.error_message
    app.drr.runner.wait()
    app.drr._next()
    app.drr.runner.wait()
    yield app
    app.close()


def slicer_array(node) -> np.ndarray:
    import slicer

    return slicer.util.arrayFromVolume(node)


def red_view(app):
    return next(view for view in app.context.slice_views() if view.get_singleton_tag() == "Red")


def click(view, ras) -> tuple[int, int]:
    """Show the slice through ``ras`` in ``view`` and click there with the left button (press + release)."""
    import vtk

    view.interactor().UpdateSize(400, 400)
    slice_node = view.get_view_node()
    slice_node.JumpSliceByCentering(*ras)
    view.render()
    ras_to_xy = vtk.vtkMatrix4x4()
    vtk.vtkMatrix4x4.Invert(slice_node.GetXYToRAS(), ras_to_xy)
    x, y = (round(v) for v in ras_to_xy.MultiplyPoint([*ras, 1.0])[:2])
    interactor = view.interactor()
    interactor.SetEventPosition(x, y)
    interactor.InvokeEvent("MouseMoveEvent")
    interactor.InvokeEvent("LeftButtonPressEvent")
    interactor.InvokeEvent("LeftButtonReleaseEvent")
    return x, y


def clicked_ras(view, xy) -> np.ndarray:
    return np.array(view.get_view_node().GetXYToRAS().MultiplyPoint([xy[0], xy[1], 0.0, 1.0])[:3])


@pytest.fixture(scope="module")
def deep_liver_point(lidc_ct, lidc_labels):
    """The point deepest inside the liver (RAS), where a tumor fits centred."""
    from web_server import deepest_point

    return deepest_point(lidc_ct, lidc_labels, LIVER)


def test_sample_case_opens_in_the_views_with_its_segments(web):
    case = web.context.case
    assert case.ct_node.GetName() == "lidc"
    assert case.segmentation_node.GetSegmentation().GetNumberOfSegments() == 89
    assert red_view(web).get_background_volume_id() == case.ct_node.GetID()
    from medsynth.module_logic.tumor import TumorLogic

    assert TumorLogic.find_organ_segment(case.segmentation_node, "liver")


def test_lao_slider_gives_a_new_preview_and_moves_the_carm(web):
    import vtk

    state = web.server.state
    before_serial, before_image = state.drr_serial, state.drr_image
    node = web.drr.nodes["intensity"]
    before = slicer_array(node).copy()
    state.drr_pose_primary_angle = 35
    web.drr._on_slider()
    web.drr.runner.wait()
    assert state.drr_serial == before_serial + 1 and state.drr_image != before_image
    assert node.GetAttribute("MedSynth.DRR.Preview") == "1"
    after = slicer_array(node)
    assert after.shape[-2:] == (256, 256) and before.shape[-2:] == (512, 512)
    carm = web.drr.logic.carm_of_drr(node)
    assert carm.primary_angle == pytest.approx(35)
    matrix = vtk.vtkMatrix4x4()
    web.drr.carm_transform.GetMatrixTransformToParent(matrix)
    expected = carm.pose_matrix()
    assert np.allclose([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], expected, atol=1e-6)
    web.drr.release()
    web.drr.runner.wait()
    assert slicer_array(node).shape[-2:] == (512, 512) and node.GetAttribute("MedSynth.DRR.Preview") == "0"


def test_dual_energy_and_bone_images_show_beside_each_other(web):
    state = web.server.state
    for kind, names in (("dual_energy", ["low_log", "high_log"]), ("bone", ["bone_log"])):
        state.drr_output_kind = kind
        web.drr._on_switch()
        web.drr.runner.wait()
        assert not state.error_message, state.error_message
        assert [image["name"] for image in state.drr_images] == names
        assert all(image["src"].startswith("data:image/png;base64,") for image in state.drr_images)
        assert all(web.drr.nodes[name].GetAttribute("MedSynth.DRR.Image") == name for name in names)
    state.drr_output_kind = "radiograph"
    web.drr._on_switch()
    web.drr.runner.wait()


def test_out_of_range_slider_value_is_a_message_not_a_render(web):
    state = web.server.state
    serial = state.drr_serial
    state.drr_pose_secondary_angle = 120
    web.drr.request("full")
    assert "secondary_angle" in state.error_message and "-95" in state.error_message
    assert not web.drr.runner.busy and state.drr_serial == serial
    state.drr_pose_secondary_angle = 0


def test_demo_model_makes_an_output_node_beside_the_input(web):
    from medsynth.mrml import node_to_volume

    state = web.server.state
    state.semantic_model_id = "spade-ct"
    web.semantic.run()
    assert state.semantic_busy
    web.semantic.runner.wait()
    assert not state.error_message, state.error_message
    node = web.semantic.output_node
    assert node is not None and node.GetAttribute("MedSynth.Synthetic") == "1"
    generated = node_to_volume(node)
    assert generated.same_grid(node_to_volume(web.context.case.ct_node))
    assert (generated.array.max(axis=(1, 2)) > -1024).sum() == 1  # the one slice shown in the axial view
    view = web.slicer_app.view_manager.get_view("Generated")
    assert view.get_background_volume_id() == node.GetID()


def test_model_classes_that_do_not_match_the_segments_are_a_message(web):
    state = web.server.state
    serial = state.semantic_serial
    state.semantic_class_mapping = "liver=kidney"
    web.semantic.run()
    web.semantic.runner.wait()
    assert state.error_message and not state.semantic_busy
    assert state.semantic_serial == serial
    state.semantic_class_mapping = ""


def test_click_paints_a_tumor_centred_there_and_undo_redo_are_exact(web, deep_liver_point, lidc_ct):
    from medsynth.module_logic.tumor import TUMOR_SEGMENT_NAME

    state = web.server.state
    case = web.context.case
    original = slicer_array(case.ct_node).copy()
    state.tumor_tumor_type = "small"
    web.tumor.toggle_clicking()
    assert state.tumor_clicking and not state.error_message
    view = red_view(web)
    xy = click(view, deep_liver_point)
    web.tumor.runner.wait()
    assert not state.error_message, state.error_message
    painted = slicer_array(case.ct_node).copy()
    assert not np.array_equal(painted, original)
    segmentation = case.segmentation_node.GetSegmentation()
    segment_id = segmentation.GetSegmentIdBySegmentName(TUMOR_SEGMENT_NAME)
    mask = web.tumor.logic.segment_mask(case.segmentation_node, segment_id, lidc_ct)
    centre_voxel = np.argwhere(mask).mean(axis=0)[::-1]  # (i, j, k)
    click_voxel = lidc_ct.ras_to_ijk_points(clicked_ras(view, xy))
    assert np.all(np.abs(centre_voxel - click_voxel) <= 2.0), (centre_voxel, click_voxel)
    assert web.context.case.ct_node.GetID() == case.ct_node.GetID()
    web.tumor.toggle_clicking()
    assert not state.tumor_clicking
    web.tumor.undo()
    assert np.array_equal(slicer_array(case.ct_node), original)
    assert not segmentation.GetSegmentIdBySegmentName(TUMOR_SEGMENT_NAME)
    web.tumor.redo()
    assert np.array_equal(slicer_array(case.ct_node), painted)
    assert segmentation.GetSegmentIdBySegmentName(TUMOR_SEGMENT_NAME)
    web.tumor.undo()
    assert np.array_equal(slicer_array(case.ct_node), original)


def test_click_outside_the_liver_is_a_message_and_changes_nothing(web, lidc_ct):
    state = web.server.state
    case = web.context.case
    original = slicer_array(case.ct_node).copy()
    segments = case.segmentation_node.GetSegmentation().GetNumberOfSegments()
    outside = lidc_ct.ijk_to_ras_points(np.array([256.0, 256.0, 120.0]))  # upper chest, far above the liver
    web.tumor.paint_at(outside)
    web.tumor.runner.wait()
    assert state.error_message and "liver" in state.error_message.lower(), state.error_message
    assert np.array_equal(slicer_array(case.ct_node), original)
    assert case.segmentation_node.GetSegmentation().GetNumberOfSegments() == segments


def test_aim_here_puts_the_isocenter_on_the_clicked_point(web, deep_liver_point):
    state = web.server.state
    web.aim_here()
    assert state.drr_aiming
    view = red_view(web)
    xy = click(view, deep_liver_point)
    web.drr.runner.wait()
    assert not state.drr_aiming and not state.error_message, state.error_message
    carm = web.drr.logic.carm_of_drr(web.drr.nodes["intensity"])
    assert np.allclose(carm.isocenter, clicked_ras(view, xy), atol=1e-3)
    assert web.picker.node.GetNumberOfControlPoints() == 0


def test_bad_files_are_messages_and_the_scene_is_unchanged(web, tmp_path, pydicom_dir):
    state = web.server.state
    scene = web.context.scene
    count = scene.GetNumberOfNodes()
    case = web.context.case
    text = tmp_path / "notes.nii.gz"
    text.write_text("not a volume")
    for path in (text, pydicom_dir / "MR_small.dcm"):
        state.data_ct_path = str(path)
        web.data.open_paths()
        assert state.error_message, path
        assert scene.GetNumberOfNodes() == count and web.context.case is case
    assert "CT" in state.error_message  # the MR: "modality is MR, not CT ... Load a CT scan."
    web.data.open_uploads([])
    assert "No file received" in state.error_message


def test_uploaded_ct_opens_as_a_new_case(web, totalseg_dir):
    """A browser upload (trame's file dicts) of TotalSegmentator's small CT; then the LIDC case again."""
    state = web.server.state
    lidc = web.context.case
    upload = {"name": "ct_sm.nii.gz", "size": 0, "type": "application/gzip",
              "content": (totalseg_dir / "ct_sm.nii.gz").read_bytes()}
    upload["size"] = len(upload["content"])
    web.data.open_uploads([upload])
    assert not state.error_message, state.error_message
    case = web.context.case
    assert case is not lidc and case.ct_node.GetName() == "ct_sm" and case.segmentation_node is None
    assert red_view(web).get_background_volume_id() == case.ct_node.GetID()
    web.drr.runner.wait()
    web.data.show(lidc.ct_node, lidc.segmentation_node, lidc.labels)
    web.drr.runner.wait()
    web.drr._next()
    web.drr.runner.wait()


def test_uploaded_label_map_becomes_the_case_segmentation(web, lidc_dir, totalseg_dir):
    state = web.server.state
    case = web.context.case
    count = web.context.scene.GetNumberOfNodes()

    def upload(path):
        return [{"name": path.name, "size": path.stat().st_size, "type": "", "content": path.read_bytes()}]

    web.data.open_label_uploads(upload(totalseg_dir / "seg_sm.nii.gz"))  # another scan's grid
    assert "grid" in state.error_message.lower(), state.error_message
    assert web.context.scene.GetNumberOfNodes() == count and web.context.case is case
    web.data.open_label_uploads(upload(lidc_dir / "labels.nii.gz"))
    assert not state.error_message, state.error_message
    segmentation = web.context.case.segmentation_node
    assert segmentation is not case.segmentation_node and web.context.case.ct_node is case.ct_node
    names = {segmentation.GetSegmentation().GetNthSegment(i).GetName()
             for i in range(segmentation.GetSegmentation().GetNumberOfSegments())}
    assert len(names) == 89 and "liver" in names
    web.drr.runner.wait()


def test_export_writes_the_view_with_its_geometry(web):
    state = web.server.state
    state.drr_export_format = "png"
    web.drr.export()
    assert not state.error_message, state.error_message
    assert "drr.png" in state.drr_export_message


def test_web_command_takes_cts_labels_and_a_sample():
    from medsynth.cli.main import build_parser
    from medsynth.cli.web_cmd import run

    args = build_parser().parse_args(["web", "ct.nii.gz", "--labels", "labels.nii.gz", "--sample", "lidc",
                                      "--port", "0"])
    assert args.func is run and args.ct == ["ct.nii.gz"] and args.labels == "labels.nii.gz" and args.port == 0


def test_tumor_panel_offers_every_organs_lesions_and_reads_them_back(web):
    """The organ-specific options of the tumor engine reach the page and come back as TumorParameters."""
    state = web.server.state
    assert state.tumor_lesion == "default" and state.tumor_duct_dilation is False
    state.tumor_organ, state.tumor_lesion, state.tumor_duct_dilation = "pancreas", "adenocarcinoma", True
    try:
        parameters = web.tumor.parameters()
        assert (parameters.organ, parameters.lesion, parameters.duct_dilation) == ("pancreas", "adenocarcinoma", True)
    finally:
        state.tumor_organ, state.tumor_lesion, state.tumor_duct_dilation = "liver", "default", False
