"""``medsynth tumor`` on the real LIDC-IDRI-0001 CT, cropped around its liver to keep files small."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from medsynth.cli.main import main
from medsynth.io import read_volume, write_volume
from medsynth.volume import LabelMap, Volume

LIVER = 5


@pytest.fixture(scope="module")
def cropped_case(tmp_path_factory, lidc_ct, lidc_labels):
    """The CT and labels cut to the liver's box plus 8 voxels (the grid and HU are the scan's own)."""
    liver = lidc_labels.mask(LIVER)
    box = []
    for axis in range(3):
        hits = np.flatnonzero(liver.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(hits[0] - 8, 0), min(hits[-1] + 9, liver.shape[axis])))
    start_ijk = np.array([box[2].start, box[1].start, box[0].start], float)
    matrix = lidc_ct.ijk_to_ras.copy()
    matrix[:3, 3] = lidc_ct.ijk_to_ras_points(start_ijk)
    folder = tmp_path_factory.mktemp("tumor_cli")
    ct = Volume(lidc_ct.array[tuple(box)].astype(np.int16), matrix, lidc_ct.metadata)
    write_volume(ct, folder / "ct.nii.gz")
    write_volume(LabelMap(lidc_labels.array[tuple(box)], matrix), folder / "labels.nii.gz")
    return folder


def run_cli(case, out, *extra) -> int:
    return main(["tumor", str(case / "ct.nii.gz"), "--liver-mask", str(case / "labels.nii.gz"), "--liver-label",
                 str(LIVER), "--out", str(out), "--quiet", *extra])


def test_variants_hold_ct_labels_descriptions_and_picture(cropped_case, tmp_path):
    out = tmp_path / "out"
    assert run_cli(cropped_case, out, "--type", "small", "--count", "3", "--seed", "4", "--variants", "2") == 0
    variants = sorted(p.name for p in out.iterdir())
    assert variants == ["variant_000", "variant_001"]
    source = read_volume(cropped_case / "ct.nii.gz", modality="CT")
    arrays = []
    for name in variants:
        folder = out / name
        ct = read_volume(folder / "ct.nii.gz", modality="CT")
        labels = read_volume(folder / "labels.nii.gz")
        info = json.loads((folder / "tumors.json").read_text())
        assert ct.same_grid(source) and labels.same_grid(source)
        assert set(np.unique(labels.array)) == {0, 1, 2}
        assert len(info["tumors"]) == 3 and info["seed"] == 4 and info["spec"]["kind"] == "small"
        assert (labels.array == 2).sum() == sum(t["voxels"] for t in info["tumors"])
        changed = ct.array != source.array
        assert changed.any() and np.all(labels.array[changed] > 0)  # only the liver changed
        for tumor in info["tumors"]:
            assert tumor["realism"]["components"] == 1 and tumor["realism"]["surface_share"] == 0.0
        assert (folder / "tumors.png").stat().st_size > 1000
        arrays.append(ct.array)
    assert not np.array_equal(arrays[0], arrays[1])  # variants differ


def test_interrupted_run_resumes_without_redoing_or_corrupting(cropped_case, tmp_path):
    out = tmp_path / "out"
    assert run_cli(cropped_case, out, "--type", "tiny", "--count", "2", "--variants", "3", "--seed", "9") == 0
    first = out / "variant_000" / "ct.nii.gz"
    stamp = os.stat(first).st_mtime_ns
    reference = read_volume(out / "variant_002" / "ct.nii.gz").array
    # an interruption: the last variant is gone and a half-written folder is left behind
    for path in (out / "variant_002").iterdir():
        path.unlink()
    (out / "variant_002").rmdir()
    partial = out / ".variant_002.abc.partial"
    partial.mkdir()
    (partial / "ct.nii.gz").write_bytes(b"truncated")
    assert run_cli(cropped_case, out, "--type", "tiny", "--count", "2", "--variants", "3", "--seed", "9") == 0
    assert os.stat(first).st_mtime_ns == stamp  # finished variants are not redone
    assert np.array_equal(read_volume(out / "variant_002" / "ct.nii.gz").array, reference)  # same seed, same bits


def test_bad_inputs_exit_with_a_clear_message(cropped_case, tmp_path, capsys, lidc_dir):
    assert run_cli(cropped_case, tmp_path / "a", "--liver-label", "77") == 2
    assert "liver mask is empty" in capsys.readouterr().err
    # a mask on another grid: the full-size label map against the cropped CT
    code = main(["tumor", str(cropped_case / "ct.nii.gz"), "--liver-mask", str(lidc_dir / "labels.nii.gz"),
                 "--liver-label", "5", "--out", str(tmp_path / "b"), "--quiet"])
    assert code == 2 and "Resample" in capsys.readouterr().err
    assert run_cli(cropped_case, tmp_path / "c", "--diameter-mm", "500") == 2
    assert "diameter" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_batch_script_makes_a_dataset_from_a_case_list(cropped_case, tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    cases = tmp_path / "cases.csv"
    cases.write_text(f"name,ct,liver_mask,liver_label\n"
                     f"a,{cropped_case / 'ct.nii.gz'},{cropped_case / 'labels.nii.gz'},5\n"
                     f"b,{cropped_case / 'ct.nii.gz'},{cropped_case / 'labels.nii.gz'},5\n")
    script = REPO_ROOT / "TumorSynthesis" / "Batch" / "TumorSynthesisBatch.py"
    command = [sys.executable, str(script), "--cases", str(cases), "--type", "tiny", "--count", "2",
               "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "PROGRESS 100%" in result.stdout
    for name in ("a", "b"):
        info = json.loads((tmp_path / "out" / name / "variant_000" / "tumors.json").read_text())
        assert len(info["tumors"]) == 2
    seeds = {json.loads((tmp_path / "out" / n / "variant_000" / "tumors.json").read_text())["seed"] for n in "ab"}
    assert len(seeds) == 2  # each case has its own seed
    missing = subprocess.run([sys.executable, str(script), "--cases", str(tmp_path / "none.csv"), "--out", "x"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
