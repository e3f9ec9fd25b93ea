"""The reader study end to end in headless Chromium: two readers answer, one resumes after the
browser closed and the server restarted, and the analysis matches the answers they gave.

Set MEDSYNTH_SCREENSHOTS=DIR to keep the screenshots (the README's come from this test).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from medsynth.cli.main import main
from medsynth.study import Study, make_server
from medsynth.study.statistics import fleiss_kappa
from study_images import make_real, make_synthetic

pytest.importorskip("playwright")


class RunningServer:
    def __init__(self, folder: Path) -> None:
        self.server = make_server(folder, port=0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def current_image(page) -> str:
    return page.locator("#canvas").get_attribute("data-image")


def answer(page, choose, given: dict, count: int) -> None:
    """Answer ``count`` images with ``choose(image_id) -> (answer, reasons, comment)``, as a reader would."""
    for _ in range(count):
        image_id = current_image(page)
        choice, reasons, comment = choose(image_id)
        page.click(f"#answer-{choice}")
        if choice != "real":
            for box in page.locator("#reason-boxes input").all():
                box.set_checked(box.get_attribute("value") in reasons)
            page.fill("#comment", comment)
            page.click("#submit")
        given[image_id] = (choice, sorted(reasons), comment)
        page.wait_for_function(
            "old => document.getElementById('canvas').dataset.image !== old"
            " || !document.getElementById('done-screen').classList.contains('hidden')", arg=image_id)


def centre_grey(page) -> int:
    return page.evaluate("() => { const c = document.getElementById('canvas');"
                         " return c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data[0]; }")


@pytest.mark.slow
def test_two_readers_one_resumes_and_the_analysis_matches(browser, tmp_path, lidc_dir, lidc_dicom_dir, pydicom_dir):
    real = make_real(tmp_path / "real", lidc_dicom_dir, pydicom_dir)
    synthetic = make_synthetic(tmp_path / "synthetic", lidc_dir)
    folder = tmp_path / "study"
    assert main(["study", "create", "--real", str(real), "--synthetic", str(synthetic), "--out", str(folder),
                 "--size", "384", "--seed", "11", "--window", "soft_tissue", "--quiet"]) == 0
    study = Study.load(folder)
    truth = {i: study.key[i]["truth"] for i in study.image_ids}
    shots = Path(os.environ.get("MEDSYNTH_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    given: dict[str, dict] = {"alice": {}, "bob": {}}
    fooled = next(i for i in study.order("alice") if truth[i] == "synthetic")
    doubted = next(i for i in study.order("alice") if truth[i] == "real")

    def alice(image_id):
        if image_id == fooled:
            return "real", [], ""
        if image_id == doubted:
            return "uncertain", ["noise"], "too smooth"
        return ("fake", ["anatomy", "edges"], "") if truth[image_id] == "synthetic" else ("real", [], "")

    def bob(image_id):
        return "fake", ["artefacts"], ""

    server = RunningServer(folder)
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    page = context.new_page()
    page.goto(server.url)
    page.fill("#reader", "alice")
    page.click("#start")
    page.wait_for_selector("#canvas[data-image]")
    assert current_image(page) == study.order("alice")[0]
    # zoom and window/level change what is shown, not the image: Fit and Reset bring it back
    shown = centre_grey(page)
    page.click("#zoom-in")
    page.click("#zoom-in")
    assert page.inner_text("#zoom-label") == "156 %"
    page.click("#zoom-fit")
    assert page.inner_text("#zoom-label") == "100 %" and centre_grey(page) == shown
    page.locator("#level").fill("40")
    page.locator("#width").fill("40")
    assert centre_grey(page) != shown
    page.click("#wl-reset")
    assert centre_grey(page) == shown
    page.click("#zoom-in")
    page.locator("#level").fill("110")
    page.locator("#width").fill("190")
    page.click("#answer-uncertain")
    page.check("#reason-boxes input[value=noise]")
    page.fill("#comment", "texture too even")
    page.screenshot(path=str(shots / "study_reader.png"))
    page.click("#zoom-fit")
    answer(page, alice, given["alice"], len(study.image_ids))
    assert page.is_visible("#done-screen")
    context.close()

    context = browser.new_context(viewport={"width": 1200, "height": 820})
    page = context.new_page()
    page.goto(server.url)
    page.fill("#reader", "bob")
    page.click("#start")
    page.wait_for_selector("#canvas[data-image]")
    answer(page, bob, given["bob"], 3)
    context.close()  # Bob closes his browser ...
    server.stop()  # ... and the server stops: his three answers are on disk
    assert set(json.loads((folder / "answers" / "bob.json").read_text())["answers"]) == set(given["bob"])

    server = RunningServer(folder)
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    page = context.new_page()
    page.goto(server.url)
    page.fill("#reader", "bob")
    page.click("#start")
    page.wait_for_selector("#canvas[data-image]")
    assert page.inner_text("#progress") == f"3 of {len(study.image_ids)} answered"
    assert current_image(page) == study.order("bob")[3]
    answer(page, bob, given["bob"], len(study.image_ids) - 3)
    assert page.is_visible("#done-screen")
    context.close()
    server.stop()

    assert main(["study", "analyse", str(folder)]) == 0
    results = json.loads((folder / "report" / "results.json").read_text())
    for reader, answers in given.items():
        calls = [(truth[i], a[0]) for i, a in answers.items()]
        expected = {
            "accuracy": (sum(c in (("real", "real"), ("synthetic", "fake")) for c in calls), len(calls)),
            "sensitivity": (sum(c == ("synthetic", "fake") for c in calls), sum(t == "synthetic" for t, _ in calls)),
            "specificity": (sum(c == ("real", "real") for c in calls), sum(t == "real" for t, _ in calls)),
        }
        for metric, (successes, trials) in expected.items():
            got = results["readers"][reader][metric]
            assert (got["successes"], got["trials"]) == (successes, trials), (reader, metric)
            assert got["ci_low"] <= successes / trials <= got["ci_high"]
    assert results["readers"]["alice"]["accuracy"]["successes"] == len(study.image_ids) - 2
    assert results["readers"]["bob"]["sensitivity"]["value"] == 1.0
    assert results["readers"]["bob"]["specificity"]["value"] == 0.0
    table = np.array([[sum(given[r][i][0] == a for r in given) for a in ("real", "fake", "uncertain")]
                      for i in study.image_ids])
    assert results["fleiss_kappa"] == pytest.approx(fleiss_kappa(table))
    assert results["reasons"]["artefacts"] == {"real": 4, "synthetic": 3}
    assert results["reasons"]["noise"] == {"real": 1, "synthetic": 0}
    assert results["reasons"]["anatomy"] == {"real": 0, "synthetic": 2}
    assert [c["comment"] for c in results["comments"]] == ["too smooth"]
    hardest = results["images"][0]  # the real image Alice doubted and Bob called fake
    assert hardest["id"] == doubted and hardest["correct"] == 0 and hardest["answers"]["uncertain"] == 1
    by_id = {item["id"]: item for item in results["images"]}
    assert by_id[fooled]["correct"] == 1 and by_id[fooled]["answers"] == {"real": 1, "fake": 1, "uncertain": 0}
    report = (folder / "report" / "report.md").read_text()
    assert "Fleiss' kappa" in report and "too smooth" in report
    for picture in ("metrics.png", "difficulty.png", "reasons.png", "hardest.png"):
        assert (folder / "report" / picture).stat().st_size > 5000
    shutil.copy(folder / "report" / "metrics.png", shots / "study_report.png")
    shutil.copy(folder / "report" / "hardest.png", shots / "study_hardest.png")
