"""Saving DRRs: NIfTI (calibrated, placed in the detector plane), PNG (explicit display window),
DICOM (a Secondary Capture marked DERIVED and synthetic) and a JSON of the geometry.

Every file is written atomically. The DICOM can never pass as a patient's radiograph: its image
type is DERIVED/SECONDARY, its conversion type SYN (synthetic image), its content qualification
RESEARCH, and the patient's name and ID say SYNTHETIC.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from medsynth import __version__
from medsynth.drr.projector import Projection
from medsynth.errors import InputError
from medsynth.geometry import CArm
from medsynth.io.atomic import atomic_output

FORMATS = ("nifti", "png", "dicom")
#: DICOM pixel value = round(line integral * DICOM_SCALE); RescaleSlope = 1 / DICOM_SCALE.
DICOM_SCALE = 1000.0


def view_name(view: "Projection | CArm", index: int) -> str:
    """A folder name like "view_003_LAO30_CRAN20" for a projection or a pose."""
    carm = view.carm if isinstance(view, Projection) else view
    return f"view_{index:03d}_{angle_label(carm.primary_angle, 'LAO', 'RAO')}_{angle_label(carm.secondary_angle, 'CRAN', 'CAUD')}"


def angle_label(value: float, plus: str, minus: str) -> str:
    text = f"{abs(value):g}".replace(".", "p")
    return f"{plus if value >= 0 else minus}{text}"


def write_view(
    projection: Projection,
    folder: str | Path,
    formats: Sequence[str] = FORMATS,
    kinds: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
    uid_key: str | None = None,
) -> dict:
    """Write one projection's files into ``folder``; return the JSON description written as view.json.

    ``uid_key``: the DICOM's UIDs derive from it (see ``write_dicom``), so a rerun writes the same file.
    """
    from medsynth.io import write_volume
    from medsynth.pictures import save_picture

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise InputError(f"Unknown output formats {sorted(unknown)}; choose from {', '.join(FORMATS)}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kinds = list(kinds) if kinds is not None else list(projection.images)
    files: dict[str, str] = {}
    if "nifti" in formats:
        for kind in kinds:
            files[kind] = write_volume(projection.as_volume(kind), folder / f"{kind}.nii.gz").name
        for name in projection.material_names:
            key = f"area_density:{name}"
            files[key] = write_volume(projection.as_volume(key), folder / f"area_density_{name}.nii.gz").name
    description = {
        "medsynth": __version__,
        "synthetic": True,
        "geometry": projection.carm.to_dict(),
        "materials": projection.material_names,
        "spectrum": {"name": projection.spectrum.name, "mean_energy_keV": projection.spectrum.mean_energy_keV},
        "settings": projection.settings,
        "units": {"log": "-ln(I/I0), dimensionless", "intensity": "I/I0 (transmitted energy fraction)",
                  "area_density": "g/cm^2"},
        "image_orientation": "row 0 at the top, column 0 at the left; see medsynth.geometry.carm",
    }
    if "png" in formats:
        from PIL import Image

        pixels, used = projection.display("log", window=window)
        save_picture(Image.fromarray(pixels), folder / "drr.png")
        files["png"] = "drr.png"
        description["png_window"] = {"image": "log", "low": used[0], "high": used[1],
                                     "mapping": "linear, clipped; higher line integral = brighter"}
    if "dicom" in formats:
        write_dicom(projection, folder / "drr.dcm", uid_key=uid_key)
        files["dicom"] = "drr.dcm"
    description["files"] = files
    with atomic_output(folder / "view.json") as temp:
        temp.write_text(json.dumps(description, indent=2))
    return description


def write_dicom(projection: Projection, path: str | Path, kind: str = "log", *, uid_key: str | None = None,
                identifiers: dict | None = None, dates: bool = True) -> Path:
    """A DICOM Secondary Capture of ``kind`` (default the line-integral image), marked synthetic.

    ``uid_key``: derive the new UIDs from this text (a dataset item's name and seed), so a rerun
    writes the same file; default: random UIDs. ``dates``: stamp today's date (False: leave the
    dates empty, as a de-identified dataset wants). ``identifiers``: patient and study attributes
    to copy from the source (an explicit opt-in); without them nothing identifies a patient.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if kind != "log":
        raise InputError("DICOM output holds the line-integral ('log') image.")
    image = projection.as_volume(kind).array[0].astype(np.float64)
    stored = np.clip(np.round(image * DICOM_SCALE), 0, 65535).astype(np.uint16)
    carm = projection.carm
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    def new_uid(role: str) -> str:
        return generate_uid(entropy_srcs=[uid_key, role]) if uid_key is not None else generate_uid()

    meta.MediaStorageSOPInstanceUID = new_uid("instance")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    now = datetime.datetime.now()
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = new_uid("study")
    ds.SeriesInstanceUID = new_uid("series")
    day, time = (now.strftime("%Y%m%d"), now.strftime("%H%M%S")) if dates else ("", "")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = day
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
    ds.Modality = "OT"
    ds.ConversionType = "SYN"  # synthetic image
    ds.ImageType = ["DERIVED", "SECONDARY", "SYNTHETIC", "DRR"]
    ds.ContentQualification = "RESEARCH"
    ds.BurnedInAnnotation = "NO"
    ds.PatientName = "SYNTHETIC^DRR"
    ds.PatientID = "MEDSYNTH-SYNTHETIC"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "MedSynth synthetic image: no identifier of the source CT copied"
    ds.Manufacturer = "MedSynth (synthetic image generator)"
    ds.SoftwareVersions = __version__
    ds.SeriesDescription = "MedSynth synthetic DRR - NOT a real radiograph"
    ds.DerivationDescription = (
        f"Digitally reconstructed radiograph computed by MedSynth {__version__} from a CT; "
        f"spectrum {projection.spectrum.name}; pixel = -ln(I/I0) x {DICOM_SCALE:g}."
    )
    ds.ImageComments = "SYNTHETIC IMAGE: simulated from a CT, not acquired from a patient."
    ds.SeriesNumber = 9001
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = f"{1.0 / DICOM_SCALE:g}"
    ds.RescaleIntercept = "0"
    ds.RescaleType = "US"
    row_spacing, col_spacing = carm.spacing_rc
    ds.PixelSpacing = [f"{row_spacing:.6g}", f"{col_spacing:.6g}"]
    ds.ImagerPixelSpacing = [f"{row_spacing:.6g}", f"{col_spacing:.6g}"]
    ds.DistanceSourceToDetector = f"{carm.sid:.6g}"
    ds.DistanceSourceToPatient = f"{carm.sod:.6g}"
    ds.PositionerPrimaryAngle = f"{carm.primary_angle:.6g}"
    ds.PositionerSecondaryAngle = f"{carm.secondary_angle:.6g}"
    if len(projection.spectrum.energies_keV) > 1:  # a tube spectrum (1 keV bins up to the kVp)
        ds.KVP = f"{float(projection.spectrum.energies_keV.max() + 0.5):.6g}"
    ds.PatientPosition = carm.patient_position
    ds.WindowCenter = f"{float(np.percentile(image, 50)):.4g}"
    ds.WindowWidth = f"{float(np.ptp(np.percentile(image, [0.5, 99.5]))) + 1e-3:.4g}"
    ds.PixelData = stored.tobytes()
    if identifiers:
        for keyword, value in identifiers.items():
            setattr(ds, keyword, value)
        ds.PatientIdentityRemoved = "NO"
        del ds.DeidentificationMethod
    with atomic_output(path) as temp:
        pydicom.dcmwrite(temp, ds, enforce_file_format=True)
    return Path(path)


def write_index(out_dir: str | Path, views: list[dict]) -> Path:
    """``views.json``: every view's geometry and projection matrix, in sweep order."""
    path = Path(out_dir) / "views.json"
    with atomic_output(path) as temp:
        temp.write_text(json.dumps({"synthetic": True, "views": views}, indent=2))
    return path
