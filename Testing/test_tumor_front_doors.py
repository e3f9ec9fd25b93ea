"""TumorSynthesis's Logic, ``medsynth tumor`` and the tumor batch script paint the same tumors
for the same parameters (issue 14): voxel for voxel in the CT.

LIDC-IDRI-0001 cut to its TotalSegmentator liver's box (the scan's own grid and HU), three small
hypodense tumors from seed 4: the Logic's first random action and the first variant of the CLI
and of the batch script draw from the same stream (seed, 0).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
pytest.importorskip("numba")

from medsynth.io import read_volume, write_volume  # noqa: E402
from medsynth.tumor.parameters import TumorParameters  # noqa: E402
from medsynth.volume import LabelMap, LabelTable, Volume  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIVER = 5
PARAMETERS = TumorParameters(tumor_type="small", count=3, seed=4)
ARGUMENTS = ["--type", "small", "--count", "3", "--seed", "4"]


@pytest.fixture(scope="module")
def case(tmp_path_factory, lidc_ct, lidc_labels) -> Path:
    liver = lidc_labels.mask(LIVER)
    box = []
    for axis in range(3):
        hits = np.flatnonzero(liver.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(hits[0] - 8, 0), min(hits[-1] + 9, liver.shape[axis])))
    matrix = lidc_ct.ijk_to_ras.copy()
    matrix[:3, 3] = lidc_ct.ijk_to_ras_points(np.array([box[2].start, box[1].start, box[0].start], float))
    folder = tmp_path_factory.mktemp("tumor_front_doors")
    write_volume(Volume(lidc_ct.array[tuple(box)].astype(np.int16), matrix, lidc_ct.metadata), folder / "ct.nii.gz")
    mask = (lidc_labels.array[tuple(box)] == LIVER).astype(np.uint8)
    write_volume(LabelMap(mask, matrix, table=LabelTable({1: "liver"})), folder / "liver.nii.gz")
    return folder


def logic_ct(case) -> np.ndarray:
    from medsynth.io import read_labelmap
    from medsynth.module_logic.tumor import TumorLogic
    from medsynth.mrml import labelmap_to_segmentation, volume_to_node

    ct_node = volume_to_node(read_volume(case / "ct.nii.gz", modality="CT"), name="CT")
    liver = read_labelmap(case / "liver.nii.gz")
    liver.table = LabelTable({1: "liver"})  # the segment's name, as TotalSegmentator's extension gives it
    segmentation = labelmap_to_segmentation(liver, name="liver")
    logic = TumorLogic()
    logic.insert_random_tumors(ct_node, segmentation, logic.find_organ_segment(segmentation), PARAMETERS)
    try:
        return slicer.util.arrayFromVolume(ct_node).copy()
    finally:
        for node in (ct_node, segmentation):
            slicer.mrmlScene.RemoveNode(node)


def cli_ct(case, out: Path) -> np.ndarray:
    from medsynth.cli.main import main

    assert main(["tumor", str(case / "ct.nii.gz"), "--liver-mask", str(case / "liver.nii.gz"), "--liver-label", "1",
                 "--out", str(out), "--quiet", *ARGUMENTS]) == 0
    return read_volume(out / "variant_000" / "ct.nii.gz").array


def batch_ct(case, out: Path) -> np.ndarray:
    spec = importlib.util.spec_from_file_location("TumorSynthesisBatch", ROOT / "TumorSynthesis" / "Batch" / "TumorSynthesisBatch.py")
    batch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(batch)
    assert batch.main(["--ct", str(case / "ct.nii.gz"), "--liver-mask", str(case / "liver.nii.gz"), "--liver-label", "1",
                       "--out", str(out), "--quiet", *ARGUMENTS]) == 0
    return read_volume(out / "variant_000" / "ct.nii.gz").array


def test_logic_cli_and_batch_script_paint_identical_tumors(case, tmp_path):
    original = read_volume(case / "ct.nii.gz").array
    reference = logic_ct(case)
    assert (reference != original).sum() > 50  # three tumors were painted
    for name, painted in (("medsynth tumor", cli_ct(case, tmp_path / "cli")),
                          ("TumorSynthesisBatch", batch_ct(case, tmp_path / "batch"))):
        np.testing.assert_array_equal(painted, reference, err_msg=name)
