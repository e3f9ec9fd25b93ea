"""Benchmark of the web app (issue 13), measured in the browser: headless Debian Chromium driven by Playwright.

The app is served from a thread of this process (Testing/web_server.py) with the LIDC-IDRI-0001
sample; every time is taken inside the page with ``performance.now()``, from the user's input
event (pointer move / up on the slider, pointer up on the slice view) to the ``load`` event of
the image that shows the result, so it includes the server work, the websocket and the decode:
- slider move -> new 256 x 256 DRR preview shown (one 5-pixel move at a time, mouse held down);
- slider release -> full 512 x 512 physics image shown;
- click in the axial view -> the painted tumor's frame of the slice view shown (then undone);
- page load: a fresh page on the running server until every view shows an image, and a click
  on "Open sample" (LIDC, 512 x 512 x 133 with its 89 segments) until the axial view shows it.
The issue gives targets, not peers: the ratios are measured / target (below 1 meets it).
Writes docs/benchmarks/web.md and screenshots to bench_output/web/.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing"))

from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from web_server import ServedApp, deepest_point  # noqa: E402

from benchmarks import write_section  # noqa: E402

SECTION = ROOT / "docs" / "benchmarks" / "web.md"
PICTURES = ROOT / "bench_output" / "web"
LOAD_AT_START = os.getloadavg()[0]
TARGETS_MS = {"preview": 100.0, "full": 500.0, "tumor": 150.0, "page": 5000.0}
ROUNDS = int(os.environ.get("MEDSYNTH_BENCH_WEB_ROUNDS", "12"))
LIVER = 5

LISTENERS = """() => {
  const w = window; w.__ms = {moves: [], ups: [], drr: [], red: [], tumor: []};
  document.addEventListener('pointermove', () => w.__ms.moves.push(performance.now()), true);
  document.addEventListener('pointerup', () => w.__ms.ups.push(performance.now()), true);
  const drr = document.querySelector('[data-image="drr"]');
  drr.addEventListener('load', () => w.__ms.drr.push({t: performance.now(), serial: +drr.dataset.serial,
                                                      full: +drr.dataset.fullSerial}));
  const red = document.querySelector('.remote-controlled-area img');
  red.addEventListener('load', () => w.__ms.red.push(performance.now()));
}"""
TUMOR_LISTENER = """() => {
  const status = document.querySelector('[data-status="tumor"]');
  new MutationObserver(() => window.__ms.tumor.push({t: performance.now(), serial: +status.dataset.serial}))
    .observe(status, {attributes: true, attributeFilter: ['data-serial']});
}"""


def marks(page) -> dict:
    return page.evaluate("() => window.__ms")


def wait_until(page, expression: str, timeout_ms: float = 60_000) -> None:
    page.wait_for_function(expression, timeout=timeout_ms)


def bench_slider(page, served) -> tuple[list[float], list[float]]:
    """Preview latencies (mouse held, one move at a time) and release -> full latencies."""
    page.click('[data-tab="drr"]')
    served.wait_idle()
    previews, fulls = [], []
    thumb = page.locator('[data-field="drr_pose_primary_angle"] .v-slider-thumb')
    direction = 1
    while len(fulls) < ROUNDS:
        box = thumb.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        for step in range(1, 4):
            before = len(marks(page)["drr"])
            page.mouse.move(x + direction * 5 * step, y)
            wait_until(page, f"window.__ms.drr.length > {before}")
            served.wait_idle()
            m = marks(page)
            previews.append(m["drr"][-1]["t"] - m["moves"][-1])
        before_full = marks(page)["drr"][-1]["full"]
        page.mouse.up()
        wait_until(page, f"window.__ms.drr.length && window.__ms.drr[window.__ms.drr.length - 1].full > {before_full}")
        m = marks(page)
        fulls.append(m["drr"][-1]["t"] - m["ups"][-1])
        served.wait_idle()
        direction = -direction
    page.screenshot(path=str(PICTURES / "drr.png"))
    return previews, fulls


def bench_tumor_click(page, served, target) -> tuple[list[float], list[float]]:
    """Click -> the slice view's frame with the tumor shown, undone after each click."""
    page.click('[data-tab="tumor"]')
    page.wait_for_selector('[data-status="tumor"]', state="attached")
    page.evaluate(TUMOR_LISTENER)

    def prepare():
        import vtk

        view = next(v for v in served.app.context.slice_views() if v.get_singleton_tag() == "Red")
        node = view.get_view_node()
        node.JumpSliceByCentering(*target)
        view.schedule_render()
        ras_to_xy = vtk.vtkMatrix4x4()
        vtk.vtkMatrix4x4.Invert(node.GetXYToRAS(), ras_to_xy)
        return (*ras_to_xy.MultiplyPoint([*target, 1.0])[:2], *view.render_window().GetSize())

    x, y, width, height = served.call(prepare)
    page.click('[data-action="tumor-click"]')
    served.wait_idle()
    area = page.locator(".remote-controlled-area").first.bounding_box()
    page_x = area["x"] + (x + 0.5) * area["width"] / width
    page_y = area["y"] + (height - y - 0.5) * area["height"] / height
    latencies, committed = [], []
    for index in range(ROUNDS):
        page.wait_for_timeout(300)
        serial = int(page.get_attribute('[data-status="tumor"]', "data-serial"))
        page.mouse.move(page_x, page_y)
        page.mouse.down()
        page.mouse.up()
        wait_until(page, f"window.__ms.tumor.some(e => e.serial > {serial})")
        changed = next(e["t"] for e in marks(page)["tumor"] if e["serial"] > serial)
        wait_until(page, f"window.__ms.red.some(t => t > {changed})")
        m = marks(page)
        latencies.append(next(t for t in m["red"] if t > changed) - m["ups"][-1])
        committed.append(changed - m["ups"][-1])
        served.wait_idle()
        if index == 0:
            page.wait_for_timeout(300)
            page.screenshot(path=str(PICTURES / "tumor.png"))
        serial = int(page.get_attribute('[data-status="tumor"]', "data-serial"))
        served.call(served.app.tumor.undo)
        wait_until(page, f"+document.querySelector('[data-status=\"tumor\"]').dataset.serial > {serial}")
    page.click('[data-action="tumor-click"]')
    return latencies, committed


def bench_page_load(browser, served) -> list[float]:
    """A fresh page on the running server (the LIDC case open) until every view shows an image."""
    times = []
    for _ in range(5):
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        start = time.perf_counter()
        page.goto(served.url)
        wait_until(page, "[...document.querySelectorAll('.remote-controlled-area img')].length >= 4 && "
                         "[...document.querySelectorAll('.remote-controlled-area img')]"
                         ".every(img => img.src && img.complete && img.naturalWidth > 0)")
        times.append(1000 * (time.perf_counter() - start))
        page.close()
    return times


def bench_open_sample(browser, output: Path) -> tuple[float, float]:
    """A fresh server and page without a case: "Open sample" until the axial view shows the CT (and its DRR)."""
    served = ServedApp("medsynth_web_bench_open", output, sample=None)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(served.url)
        page.wait_for_selector('[data-action="open-sample"]')
        page.evaluate("""() => { const w = window; w.__open = {red: []};
            const red = document.querySelector('.remote-controlled-area img');
            red.addEventListener('load', () => w.__open.red.push(performance.now())); }""")
        start = page.evaluate("() => performance.now()")
        page.click('[data-action="open-sample"]')
        wait_until(page, "document.querySelector('[data-status=\"case\"]').innerText.includes('lidc')")
        shown = page.evaluate("() => performance.now()")
        wait_until(page, f"window.__open.red.some(t => t > {shown - 1})")
        views = max(page.evaluate("() => window.__open.red")) - start
        served.wait_idle()
        drr = page.evaluate("() => performance.now()") - start
        page.close()
        return views, drr
    finally:
        served.stop()


def server_side(served, target, rounds: int = 5) -> dict:
    """The server's own share, on its loop thread: DRR preview / full render, tumor paint + commit, one frame."""
    def measure():
        app = served.app
        drr, case = app.drr, app.context.case
        times = {"preview": [], "full": [], "tumor": [], "slice frame": [], "3D frame": []}
        parameters = drr.parameters()
        for kind in ("preview", "full"):  # the CT is packed already (a tumor would change it: measured after)
            for _ in range(rounds):
                start = time.perf_counter()
                drr.logic.render(drr.logic.prepare(case.ct_node, parameters, preview=kind == "preview"))
                times[kind].append(1000 * (time.perf_counter() - start))
        for index in range(rounds):
            tumor = app.tumor
            organ = tumor.logic.find_organ_segment(case.segmentation_node, "liver")
            start = time.perf_counter()
            job = tumor.logic.start(case.ct_node, case.segmentation_node, organ, tumor.parameters(), point_ras=target)
            tumor.logic.commit(job, tumor.logic.paint(job))
            times["tumor"].append(1000 * (time.perf_counter() - start))
            tumor.logic.undo()
            for name, views in (("slice frame", app.context.slice_views()[:1]), ("3D frame", app.context.threed_views())):
                start = time.perf_counter()
                views[0].render_window().Render()
                times[name].append(1000 * (time.perf_counter() - start))
        return {name: statistics.median(values) for name, values in times.items()}

    return served.call(measure, timeout_s=600)


def row(name: str, values: list[float], target: float, note: str) -> str:
    median = statistics.median(values)
    return (f"| {name} | {median:.0f} ms | {min(values):.0f} / {max(values):.0f} ms | {len(values)} | "
            f"{target:.0f} ms | {median / target:.2f}x | {note} |")


def main() -> int:
    from playwright.sync_api import sync_playwright

    from medsynth.data import fetch
    from medsynth.io import read_labelmap, read_volume

    PICTURES.mkdir(parents=True, exist_ok=True)
    lidc = fetch("lidc")
    ct = read_volume(lidc / "ct.nii.gz", modality="CT")
    target = deepest_point(ct, read_labelmap(lidc / "labels.nii.gz"), LIVER)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        open_views_ms, open_drr_ms = bench_open_sample(browser, PICTURES / "export")
        served = ServedApp("medsynth_web_bench", PICTURES / "export")
        try:
            served.wait_idle()
            page_ms = bench_page_load(browser, served)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(served.url)
            wait_until(page, "document.querySelector('[data-status=\"case\"]')?.innerText.includes('lidc')")
            page.click('[data-tab="drr"]')
            page.wait_for_selector('[data-image="drr"]', state="attached")
            page.evaluate(LISTENERS)
            previews, fulls = bench_slider(page, served)
            tumors, committed = bench_tumor_click(page, served, target)
            page.close()
            server = server_side(served, target)
        finally:
            served.stop()
        browser.close()
    load_end = os.getloadavg()[0]
    lines = [
        "## Web app (issue 13)",
        "",
        "`medsynth web` on trame-slicer 2.0.0 (slicer-core 5.11.0.6, VTK 9.6 through EGL with Mesa's llvmpipe), "
        "LIDC-IDRI-0001 (512 x 512 x 133, 89 TotalSegmentator segments) in the Axial Primary layout, driven by "
        "headless Debian Chromium (Playwright) on this machine's 2 shared cores. Times are taken in the page "
        "(`performance.now()`), from the input event to the `load` of the image that shows the result: server "
        "work, websocket and decoding included. The issue names targets, not peers: the ratio is median / target "
        f"(below 1 meets it). 1-minute load average {LOAD_AT_START:.1f} at the start and {load_end:.1f} at the "
        "end (other engineers' jobs share the cores; every row slows alike).",
        "",
        "| step | median | min / max | samples | target | median / target | what is shown |",
        "|---|---|---|---|---|---|---|",
        row("slider move -> DRR preview shown", previews, TARGETS_MS["preview"],
            "256 x 256 preview (512 x 512 geometry binned by 2), C-arm models moved"),
        row("slider release -> full image shown", fulls, TARGETS_MS["full"],
            "512 x 512 polychromatic physics image, DRR node and C-arm updated"),
        row("click -> painted tumor shown in the slice view", tumors, TARGETS_MS["tumor"],
            "medium liver tumor centred at the click; CT node and Tumor segment updated (undone after each)"),
        row("page load (case open) -> every view shows an image", page_ms, TARGETS_MS["page"],
            "a fresh page on the running server"),
        row("Open sample (LIDC) -> axial view shows the CT", [open_views_ms], TARGETS_MS["page"],
            "read the NIfTI CT and label map, 89 segments, show in the views"),
        "",
        f"Of the click's {statistics.median(tumors):.0f} ms, the page learnt that the tumor was committed after "
        f"{statistics.median(committed):.0f} ms (median); the rest is the axial view's new frame reaching it. "
        "Where the time goes: the server's own work for each step, measured on its loop thread in the same run "
        "(medians of 5): "
        f"DRR preview {server['preview']:.0f} ms, full 512 x 512 DRR {server['full']:.0f} ms, tumor paint + commit "
        f"{server['tumor']:.0f} ms, one axial slice view frame (89 segments) {server['slice frame']:.0f} ms, one 3D "
        f"frame {server['3D frame']:.0f} ms. Every change also re-renders and streams the views that show it "
        "(llvmpipe on the same 2 cores), and the page's next image waits behind those frames, so on a loaded "
        "machine the in-page latencies are several times the server's work.",
        "",
        f"After Open sample the first DRR (the CT packed for the projector, one 512 x 512 image) was ready "
        f"{open_drr_ms / 1000:.1f} s after the click. Screenshots: bench_output/web/drr.png, bench_output/web/tumor.png.",
        "",
    ]
    write_section(SECTION, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
