"""Reader study without a browser: blinding, DICOM windows, bad input, answers on disk, statistics."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pydicom
import pytest
from PIL import Image

from medsynth.display import level_width_range, to_grey
from medsynth.errors import InputError
from medsynth.study import Study, StudyParameters, create_study, make_server, summarise
from medsynth.study.images import read_study_image
from medsynth.study.statistics import fleiss_kappa, wilson
from study_images import LEAKS, make_real, make_synthetic


@pytest.fixture(scope="session")
def study_sources(tmp_path_factory, lidc_dir, lidc_dicom_dir, pydicom_dir):
    root = tmp_path_factory.mktemp("study_sources")
    return make_real(root / "real", lidc_dicom_dir, pydicom_dir), make_synthetic(root / "synthetic", lidc_dir)


@pytest.fixture()
def study(study_sources, tmp_path) -> Study:
    real, synthetic = study_sources
    return create_study(real, synthetic, tmp_path / "study", StudyParameters(seed=5, image_size=256))


def test_study_is_shuffled_blinded_and_scrubbed(study, study_sources):
    assert len(study.image_ids) == 7
    assert sorted(v["truth"] for v in study.key.values()) == ["real"] * 4 + ["synthetic"] * 3
    truths = [study.key[i]["truth"] for i in study.image_ids]
    assert truths != sorted(truths) and truths != sorted(truths, reverse=True)
    for image_id in study.image_ids:
        path = study.folder / "images" / f"{image_id}.png"
        raw = path.read_bytes()
        assert not [word for word in LEAKS if word.lower() in raw.lower()], image_id
        assert b"tEXt" not in raw and b"eXIf" not in raw and b"iTXt" not in raw and b"zTXt" not in raw
        with Image.open(path) as image:
            assert image.mode == "L" and max(image.size) == 256 and not image.getexif()
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in study.image_ids)
    served = json.dumps(json.loads((study.folder / "study.json").read_text()))
    assert "real" not in served.replace("Real or synthetic?", "") and "LIDC" not in served


def test_each_reader_has_a_fixed_order_of_their_own(study):
    assert study.order("alice") == study.order("alice")
    assert study.order("alice") != study.order("bob")
    assert sorted(study.order("bob")) == sorted(study.image_ids)


def test_dicom_window_from_tags_preset_and_custom(pydicom_dir):
    path = pydicom_dir / "CT_small.dcm"
    dataset = pydicom.dcmread(path)
    hu = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    custom = read_study_image(path, StudyParameters(window="custom", window_level=100, window_width=500))
    np.testing.assert_array_equal(custom, to_grey(hu, *level_width_range(100, 500)))
    bone = read_study_image(path, StudyParameters(window="bone"))
    np.testing.assert_array_equal(bone, to_grey(hu, *level_width_range(400, 1800)))
    tags = read_study_image(path, StudyParameters(window="dicom"))
    assert tags.dtype == np.uint8 and tags.shape == (128, 128) and 0 < tags.mean() < 255


def test_unsupported_image_names_the_file_and_the_fix(study_sources, tmp_path):
    real, synthetic = study_sources
    bad = tmp_path / "synthetic"
    bad.mkdir()
    (bad / "volume.nii.gz").write_bytes(b"\x1f\x8b not an image")
    with pytest.raises(InputError, match=r"volume\.nii\.gz is not a supported study image .*convert it to PNG"):
        create_study(real, bad, tmp_path / "study")
    assert not (tmp_path / "study").exists()


def test_overlapping_real_and_synthetic_folders_are_refused(study_sources, tmp_path):
    real, _ = study_sources
    with pytest.raises(InputError, match="overlap.*two separate folders"):
        create_study(real.parent, real, tmp_path / "study")


def test_an_existing_study_is_never_overwritten(study, study_sources):
    with pytest.raises(InputError, match="already exists"):
        create_study(*study_sources, study.folder)


def test_answers_are_checked_and_on_disk_at_once(study):
    first = study.image_ids[0]
    with pytest.raises(InputError, match="Reader name"):
        study.record("../etc", first, "real")
    with pytest.raises(InputError, match="not one of"):
        study.record("alice", first, "maybe")
    with pytest.raises(InputError, match="Unknown reason"):
        study.record("alice", first, "fake", ["colour"])
    study.record("alice", first, "fake", ["noise", "edges"], "grainy")
    on_disk = json.loads((study.folder / "answers" / "alice.json").read_text())["answers"][first]
    assert on_disk["answer"] == "fake" and on_disk["reasons"] == ["edges", "noise"] and on_disk["comment"] == "grainy"
    assert Study.load(study.folder).next_image("alice") == [i for i in study.order("alice") if i != first][0]


def test_server_serves_images_but_never_the_key(study):
    server = make_server(study, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        progress = json.load(urllib.request.urlopen(server.url + "api/next?reader=carol"))
        assert progress["answered"] == 0 and progress["total"] == 7 and set(progress["image"]) == {"id", "url"}
        assert urllib.request.urlopen(server.url + progress["image"]["url"][1:]).read().startswith(b"\x89PNG")
        for path in ("key.json", "images/../key.json", "images/%2e%2e/key.json.png", "answers/carol.json"):
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(server.url + path)
            assert error.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(server.url + "api/answer", method="POST", data=json.dumps(
                {"reader": "carol", "image": "nope", "answer": "real"}).encode()))
        assert error.value.code == 400 and "not an image of this study" in error.value.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_summary_counts_uncertain_as_neither_call(study):
    truth = {i: study.key[i]["truth"] for i in study.image_ids}
    for image_id in study.image_ids:  # alice is always right, bob always says uncertain
        study.record("alice", image_id, "fake" if truth[image_id] == "synthetic" else "real")
        study.record("bob", image_id, "uncertain", ["contrast"])
    results = summarise(study)
    alice, bob, pooled = results["readers"]["alice"], results["readers"]["bob"], results["pooled"]
    assert alice["accuracy"]["value"] == 1.0 and alice["sensitivity"]["trials"] == 3
    assert bob["accuracy"]["value"] == 0.0 and bob["uncertain"] == 7 and bob["specificity"]["successes"] == 0
    assert pooled["accuracy"]["successes"] == 7 and pooled["accuracy"]["trials"] == 14
    assert results["reasons"]["contrast"] == {"real": 4, "synthetic": 3}
    assert all(item["fraction_correct"] == 0.5 for item in results["images"])
    assert results["fleiss_kappa"] < 0  # two readers who never agree


def test_analyse_without_answers_says_what_to_do(study):
    with pytest.raises(InputError, match="No reader has answered yet.*study serve"):
        summarise(study)


def test_wilson_interval_matches_the_published_value():
    # Wilson (1927) score interval for 8/10 at 95 %: 0.490-0.943 (e.g. Newcombe 1998, method 3)
    interval = wilson(8, 10)
    assert interval.value == 0.8
    assert interval.low == pytest.approx(0.4902, abs=1e-4) and interval.high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0).low is None


def test_fleiss_kappa_of_the_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(np.array(table)) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)


def test_command_line_errors_are_one_line(study_sources, tmp_path, capsys):
    from medsynth.cli.main import main

    real, _ = study_sources
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("not an image")
    assert main(["study", "create", "--real", str(real), "--synthetic", str(bad), "--out", str(tmp_path / "s"),
                 "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "notes.txt is not a supported study image" in error
    assert main(["study", "serve", str(bad)]) == 2
    assert "is not a MedSynth study" in capsys.readouterr().err
