"""Dataset builders on the real scans: slices with classes by name, LIDC nodule maps, unpaired sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medsynth.errors import GeometryMismatchError, InputError, NotHUError
from medsynth.generative.datasets import SliceCase, SliceDatasetSpec, build_slice_dataset, load_split
from medsynth.generative.datasets.slices import split_patients

CLASSES = ["background", "soft_tissue", "lung", "liver", "bone", "vessels"]


@pytest.fixture(scope="module")
def two_patient_dataset(tmp_path_factory, totalseg_dir, lidc_dir):
    table = lidc_dir / "structures.csv"
    cases = [
        SliceCase("small", totalseg_dir / "ct_sm.nii.gz", totalseg_dir / "seg_sm.nii.gz", table, split="train"),
        SliceCase("dicom", totalseg_dir / "dicom", totalseg_dir / "seg_dicom.nii.gz", table, split="val"),
    ]
    spec = SliceDatasetSpec(classes=CLASSES, unknown="soft_tissue", size=32, pixel_spacing_mm=11.0)
    return build_slice_dataset(cases, tmp_path_factory.mktemp("ds") / "slices", spec)


def test_slice_dataset_manifest_splits_and_classes(two_patient_dataset, totalseg_dir):
    manifest = json.loads((two_patient_dataset / "manifest.json").read_text())
    assert manifest["classes"] == CLASSES and manifest["image_size"] == 32
    train, val = load_split(two_patient_dataset, "train"), load_split(two_patient_dataset, "val")
    assert set(train["patient"]) == {"small"} and set(val["patient"]) == {"dicom"}  # no patient in two splits
    assert train["images"].shape[1:] == (32, 32) and train["labels"].dtype == np.uint8
    assert manifest["counts"] == {"train": len(train["images"]), "val": len(val["images"]), "test": 0}
    assert 20 <= len(train["images"]) <= 30  # the small CT has 30 slices, the lowest with little body dropped
    assert (two_patient_dataset / "preview.png").is_file()
    # liver: mapped by name, and its voxels hold liver-like HU (not air, not bone)
    liver = train["labels"] == CLASSES.index("liver")
    bone = train["labels"] == CLASSES.index("bone")
    assert liver.sum() > 100 and bone.sum() > 50
    assert 0 < np.median(train["images"][liver]) < 150
    soft = train["labels"] == CLASSES.index("soft_tissue")
    assert np.median(train["images"][bone]) > np.median(train["images"][soft]) + 80  # partial volume at 11 mm pixels
    # background removed: everything outside the body is air
    from scipy import ndimage

    outside = ndimage.binary_erosion(train["labels"] == 0, np.ones((1, 5, 5)), border_value=1)  # away from the edge blur
    assert outside.sum() > 1000 and np.all(train["images"][outside] <= -990)
    # the reading with the flipped row axis (DICOM vs its NIfTI labels) still lines up
    liver_val = val["labels"] == CLASSES.index("liver")
    assert liver_val.sum() > 100 and 0 < np.median(val["images"][liver_val]) < 200


def test_split_patients_by_fraction_keeps_val_and_test():
    patients = [f"p{i}" for i in range(10)]
    assignment = split_patients(patients, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    counts = {s: sum(1 for v in assignment.values() if v == s) for s in ("train", "val", "test")}
    assert counts == {"train": 8, "val": 1, "test": 1}
    assert split_patients(patients[:3], {"train": 0.8, "val": 0.1, "test": 0.1}, 0, {"p0": "test"})["p0"] == "test"
    assert split_patients(patients, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3) == assignment


def test_slice_dataset_errors(tmp_path, totalseg_dir, lidc_dir, lidc_ct):
    table = lidc_dir / "structures.csv"
    case = SliceCase("small", totalseg_dir / "ct_sm.nii.gz", totalseg_dir / "seg_sm.nii.gz", table)
    with pytest.raises(InputError, match="No cases"):
        build_slice_dataset([], tmp_path / "none")
    with pytest.raises(InputError, match="does not know these classes"):  # default: unknown structures are errors
        build_slice_dataset([case], tmp_path / "unknown", SliceDatasetSpec(classes=["background", "liver"], body_class=None))
    with pytest.raises(InputError, match="axis"):
        build_slice_dataset([case], tmp_path / "axis", SliceDatasetSpec(axis="oblique"))
    with pytest.raises(InputError, match="unique"):
        build_slice_dataset([case, case], tmp_path / "twice")
    with pytest.raises(GeometryMismatchError, match="Resample"):
        build_slice_dataset([SliceCase("mixed", totalseg_dir / "ct_sm.nii.gz", lidc_dir / "labels.nii.gz", table)],
                            tmp_path / "mixed")
    with pytest.raises(InputError, match="No slice kept"):
        build_slice_dataset([case], tmp_path / "empty", SliceDatasetSpec(unknown="soft_tissue", min_body_fraction=0.99))
    assert not (tmp_path / "empty").exists() and not list(tmp_path.glob(".empty*"))  # nothing half-written
    with pytest.raises(InputError, match="not a MedSynth dataset"):
        load_split(tmp_path, "test")  # not a dataset at all
    from medsynth.io import read_volume

    mr = read_volume(totalseg_dir / "ct_sm.nii.gz")
    mr.array = (mr.array + 1024) / 4.0  # normalised intensities, not HU
    mr.metadata.modality = "MR"
    with pytest.raises(NotHUError):
        build_slice_dataset([SliceCase("mr", mr, totalseg_dir / "seg_sm.nii.gz", table)], tmp_path / "mr")


def test_empty_split_is_a_clear_error(two_patient_dataset):
    with pytest.raises(InputError, match="no 'test' slices"):
        load_split(two_patient_dataset, "test")


def test_lidc_consensus_nodule_lies_in_the_left_lower_lobe(lidc_dicom_dir, lidc_ct, lidc_labels):
    from medsynth.generative.datasets.lidc import consensus_nodule_mask, lidc_lesion_labelmap, read_lidc_xml

    xml = lidc_dicom_dir / "069.xml"
    sessions = read_lidc_xml(xml)
    assert len(sessions) == 4
    assert sum(n.outlined for s in sessions for n in s.nodules) == 4  # one >= 3 mm nodule per reader
    strict = consensus_nodule_mask(xml, lidc_ct, level=1.0)
    usual = consensus_nodule_mask(xml, lidc_ct, level=0.5)
    loose = consensus_nodule_mask(xml, lidc_ct, level=0.25)
    assert 0 < strict.sum() < usual.sum() < loose.sum()
    inside = lidc_labels.array[usual]
    assert np.mean(inside == lidc_labels.table.value("lung_lower_lobe_left")) > 0.95
    volume_ml = usual.sum() * np.prod(lidc_ct.spacing) / 1000.0
    assert 2.0 < volume_ml < 20.0  # a nodule of about 2-3 cm
    # a solid nodule: far denser than the lung around it
    from scipy import ndimage

    ring = ndimage.binary_dilation(usual, iterations=3) & ~ndimage.binary_dilation(usual, iterations=1)
    assert lidc_ct.array[usual].mean() - lidc_ct.array[ring].mean() > 300
    merged = lidc_lesion_labelmap(lidc_ct, lidc_labels, xml)
    value = merged.table.value("lung_nodule")
    assert np.array_equal(merged.array == value, usual)
    assert np.array_equal(merged.array[~usual], lidc_labels.array[~usual])


def test_lidc_errors(tmp_path, lidc_dicom_dir, lidc_ct, totalseg_dir):
    from medsynth.generative.datasets.lidc import consensus_nodule_mask, read_lidc_xml

    bad = tmp_path / "bad.xml"
    bad.write_text("<LidcReadMessage><readingSession>")
    with pytest.raises(InputError, match="not valid XML"):
        read_lidc_xml(bad)
    empty = tmp_path / "empty.xml"
    empty.write_text("<LidcReadMessage/>")
    with pytest.raises(InputError, match="no LIDC reading sessions"):
        read_lidc_xml(empty)
    with pytest.raises(InputError, match="not in the DICOM series"):
        consensus_nodule_mask(lidc_dicom_dir / "069.xml", lidc_ct, dicom_dir=totalseg_dir / "dicom")
    with pytest.raises(InputError, match="consensus level"):
        consensus_nodule_mask(lidc_dicom_dir / "069.xml", lidc_ct, level=0)


def test_unpaired_set_reads_dicom_png_and_arrays(tmp_path, pydicom_dir, two_patient_dataset):
    from medsynth.generative.datasets.slices import read_manifest
    from medsynth.generative.datasets.unpaired import UNPAIRED_KIND, build_unpaired_set, read_radiograph

    real = tmp_path / "real"
    real.mkdir()
    (real / "ct.dcm").write_bytes((pydicom_dir / "CT_small.dcm").read_bytes())
    (real / "mr.dcm").write_bytes((pydicom_dir / "MR_small.dcm").read_bytes())
    images = load_split(two_patient_dataset, "train")["images"]
    for index in range(3):
        gray = np.clip((images[index * 5] + 1000) / 8, 0, 255).astype(np.uint8)
        Image.fromarray(gray).resize((40, 30)).save(real / f"slice{index}.png")
    dicom = read_radiograph(real / "ct.dcm")
    assert dicom.shape == (128, 128) and dicom.min() < -500  # rescaled to HU
    out = build_unpaired_set(list(images[:10]), real, tmp_path / "unpaired")
    manifest = read_manifest(out, UNPAIRED_KIND)
    assert manifest["counts"]["train"]["a"] + manifest["counts"]["val"]["a"] == 10
    assert manifest["counts"]["train"]["b"] + manifest["counts"]["val"]["b"] == 5
    train = load_split(out, "train", UNPAIRED_KIND)
    assert train["a"].shape[1:] == (64, 64) and train["a"].min() >= -1 and train["a"].max() <= 1
    assert train["b"].min() == -1 and train["b"].max() == 1


def test_unpaired_errors(tmp_path):
    from medsynth.generative.datasets.unpaired import build_unpaired_set, read_radiograph

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no radiographs"):
        build_unpaired_set([np.random.rand(8, 8)], tmp_path / "empty", tmp_path / "out")
    with pytest.raises(InputError, match="blank"):
        build_unpaired_set([np.zeros((8, 8))], [np.random.rand(8, 8)], tmp_path / "out")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.dcm"):
        read_radiograph(junk)
    assert not (tmp_path / "out").exists()
