"""End to end: the web app in headless Debian Chromium (Playwright), the LIDC sample CT, real clicks and drags.

The server runs in a thread of this process (Testing/web_server.py); the page is driven like a
user would (tabs, a slider dragged with the mouse, clicks on the streamed slice image) and the
outcome is asserted on the server's MRML nodes. Each panel's screenshot goes to
Resources/Screenshots/web_<panel>.png (shown in the README).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trame_slicer")
pytest.importorskip("playwright")

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "Resources" / "Screenshots"
LIVER = 5
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def served(lidc_dir, tmp_path_factory):
    from web_server import ServedApp

    app = ServedApp("medsynth_web_browser", tmp_path_factory.mktemp("web_browser"))
    app.wait_idle()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def page(served, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url)
    page.wait_for_function("document.querySelector('[data-status=\"case\"]')?.innerText.includes('lidc')")
    page.wait_for_function("[...document.querySelectorAll('.image-display-area')]"
                           ".some(img => img.src && img.naturalWidth > 0)")
    yield page
    page.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"web_{name}.png"))


def attribute(page, selector: str, name: str) -> int:
    return int(page.get_attribute(selector, name) or 0)


def wait_attribute_above(page, selector: str, name: str, value: int) -> None:
    page.wait_for_function(f"Number(document.querySelector('{selector}')?.getAttribute('{name}') || 0) > {value}")


def test_page_shows_the_sample_ct_in_the_views(page, served):
    names = served.call(lambda: (served.app.context.case.ct_node.GetName(),
                                 served.app.context.case.segmentation_node.GetSegmentation().GetNumberOfSegments()))
    assert names == ("lidc", 89)
    assert page.locator(".remote-controlled-area").count() >= 4  # Axial Primary: axial, 3D, coronal, sagittal
    screenshot(page, "data")


def test_drag_lao_slider_changes_the_drr_and_the_carm_follows(page, served):
    import vtk

    page.click('[data-tab="drr"]')
    image = '[data-image="drr"]'
    page.wait_for_selector(image)
    served.wait_idle()
    serial, full = attribute(page, image, "data-serial"), attribute(page, image, "data-full-serial")
    before_src = page.get_attribute(image, "src")

    thumb = page.locator('[data-field="drr_pose_primary_angle"] .v-slider-thumb')
    thumb.scroll_into_view_if_needed()
    page.wait_for_timeout(200)  # the panel has settled (tab transition)
    box = thumb.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(x + 5 * step, y)
        page.wait_for_timeout(40)
    wait_attribute_above(page, image, "data-serial", serial)  # a preview while the mouse is still down
    page.mouse.up()
    wait_attribute_above(page, image, "data-full-serial", full)  # the full image once it is let go
    served.wait_idle()
    assert page.get_attribute(image, "src") != before_src

    def server_side():
        app = served.app
        node = app.drr.nodes["intensity"]
        carm = app.drr.logic.carm_of_drr(node)
        matrix = vtk.vtkMatrix4x4()
        app.drr.carm_transform.GetMatrixTransformToParent(matrix)
        transform = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        import slicer

        return (app.server.state.drr_pose_primary_angle, carm, transform, node.GetAttribute("MedSynth.DRR.Preview"),
                slicer.util.arrayFromVolume(node).shape)

    angle, carm, transform, preview, shape = served.call(server_side)
    assert angle > 0 and carm.primary_angle == pytest.approx(angle)
    assert np.allclose(transform, carm.pose_matrix(), atol=1e-6)
    assert preview == "0" and shape[-2:] == (512, 512)
    screenshot(page, "drr")


def test_run_the_demo_model_and_see_its_output_node(page, served):
    page.click('[data-tab="semantic"]')
    status = '[data-status="semantic"]'
    page.wait_for_selector(status, state="attached")
    serial = attribute(page, status, "data-serial")
    page.click('[data-action="semantic-run"]')
    wait_attribute_above(page, status, "data-serial", serial)

    def output():
        app = served.app
        node = app.semantic.output_node
        view = app.slicer_app.view_manager.get_view("Generated")
        return (node.GetName(), node.GetAttribute("MedSynth.Synthetic"), view.get_background_volume_id() == node.GetID(),
                app.server.state.error_message)

    name, synthetic, shown, error = served.call(output)
    assert not error and synthetic == "1" and shown and name.startswith("SyntheticCT")
    page.wait_for_timeout(500)
    screenshot(page, "semantic")


def test_click_in_the_axial_view_paints_a_tumor_there_and_undo_is_exact(page, served, lidc_labels, lidc_ct):
    from web_server import deepest_point

    page.click('[data-tab="tumor"]')
    target = deepest_point(lidc_ct, lidc_labels, LIVER)

    def prepare():
        import slicer
        import vtk

        app = served.app
        view = next(v for v in app.context.slice_views() if v.get_singleton_tag() == "Red")
        node = view.get_view_node()
        node.JumpSliceByCentering(*target)
        view.schedule_render()
        ras_to_xy = vtk.vtkMatrix4x4()
        vtk.vtkMatrix4x4.Invert(node.GetXYToRAS(), ras_to_xy)
        x, y = ras_to_xy.MultiplyPoint([*target, 1.0])[:2]
        width, height = view.render_window().GetSize()
        return x, y, width, height, slicer.util.arrayFromVolume(app.context.case.ct_node).copy()

    x, y, width, height, original = served.call(prepare)
    status = '[data-status="tumor"]'
    serial = attribute(page, status, "data-serial")
    page.click('[data-action="tumor-click"]')
    page.wait_for_function("window.document.querySelector('[data-action=\"tumor-click\"]').innerText"
                           ".toLowerCase().includes('stop')")
    served.wait_idle()
    area = page.locator(".remote-controlled-area").first.bounding_box()
    page_x = area["x"] + (x + 0.5) * area["width"] / width
    page_y = area["y"] + (height - y - 0.5) * area["height"] / height
    page.mouse.move(page_x, page_y)
    page.mouse.down()
    page.mouse.up()
    wait_attribute_above(page, status, "data-serial", serial)
    served.wait_idle()

    def painted():
        import slicer

        from medsynth.module_logic.tumor import TUMOR_SEGMENT_NAME

        app = served.app
        case = app.context.case
        segment_id = case.segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(TUMOR_SEGMENT_NAME)
        mask = app.tumor.logic.segment_mask(case.segmentation_node, segment_id, lidc_ct)
        return (app.picker.last_ras, np.argwhere(mask).mean(axis=0)[::-1], app.server.state.error_message,
                slicer.util.arrayFromVolume(case.ct_node).copy())

    clicked, centre, error, ct_after = served.call(painted)
    assert not error, error
    assert np.linalg.norm(clicked - target) < 5.0  # the click landed where the test aimed (mm)
    assert np.all(np.abs(centre - lidc_ct.ras_to_ijk_points(clicked)) <= 2.0), (centre, clicked)
    assert not np.array_equal(ct_after, original)
    page.wait_for_timeout(500)
    screenshot(page, "tumor")

    page.click('[data-action="tumor-click"]')  # stop painting
    serial = attribute(page, status, "data-serial")
    page.click('[data-action="tumor-undo"]')
    wait_attribute_above(page, status, "data-serial", serial)
    restored = served.call(lambda: __import__("slicer").util.arrayFromVolume(
        served.app.context.case.ct_node).copy())
    assert np.array_equal(restored, original)



def test_a_bad_path_is_a_message_in_the_page(page, served, tmp_path):
    page.click('[data-tab="data"]')
    nodes = served.call(lambda: served.app.context.scene.GetNumberOfNodes())
    missing = str(tmp_path / "missing.nii.gz")
    page.fill('[data-path="ct"] input', missing)
    page.press('[data-path="ct"] input', "Tab")
    for _ in range(100):  # the field's value reaches the server's state
        if served.call(lambda: served.app.server.state.data_ct_path) == missing:
            break
        page.wait_for_timeout(50)
    page.click('[data-action="open-path"]')
    alert = page.locator('[data-status="error"]')
    alert.wait_for(state="visible")
    assert "does not exist" in alert.inner_text()
    assert served.call(lambda: served.app.context.scene.GetNumberOfNodes()) == nodes
