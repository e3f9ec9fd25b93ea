"""LIDC-IDRI reading sessions (XML) -> a consensus nodule lesion map on the CT grid, merged with organ labels.

Each LIDC reading session is one radiologist's read: nodules >= 3 mm are outlined slice by slice
(``roi`` elements with ``edgeMap`` pixel points, ``inclusion`` FALSE marking holes); nodules < 3 mm
are single points and are skipped, as is usual. Pixel points are placed through each slice's own
DICOM geometry (found by its SOP Instance UID), so the map lands right on any grid of the same CT,
whatever its axis order. A voxel is lesion when at least ``ceil(level x readers)`` readers
outlined it (level 0.5: the customary 50 % consensus). The lesion map is the semantic diffusion
seed's input (lung nodule lesion maps), merged into an organ label map under its own label.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from medsynth.errors import InputError
from medsynth.volume import RAS_FROM_LPS, LabelMap, LabelTable, Volume

NODULE_LABEL_NAME = "lung_nodule"


@dataclass
class Roi:
    z_position: float
    sop_uid: str
    inclusion: bool
    points: list[tuple[int, int]]  # (x = column, y = row) DICOM pixel indices


@dataclass
class ReaderNodule:
    nodule_id: str
    rois: list[Roi] = field(default_factory=list)

    @property
    def outlined(self) -> bool:
        """True for nodules >= 3 mm (outlined); False for the single-point marks of small nodules."""
        return any(len(roi.points) >= 3 for roi in self.rois)


@dataclass
class ReadingSession:
    reader_id: str
    nodules: list[ReaderNodule] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element, name: str):
    return [child for child in element if _local(child.tag) == name]


def _text(element, name: str, default: str = "") -> str:
    found = _children(element, name)
    return (found[0].text or default).strip() if found else default


def read_lidc_xml(path: str | Path) -> list[ReadingSession]:
    """Parse an LIDC reading-session XML file into its readers' nodule outlines."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"LIDC annotation file {path} does not exist.")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise InputError(f"{path.name} is not valid XML ({error}); it cannot be an LIDC reading-session file.") from None
    sessions = []
    for session in _children(root, "readingSession"):
        reader = ReadingSession(_text(session, "servicingRadiologistID", f"reader{len(sessions) + 1}"))
        for nodule in _children(session, "unblindedReadNodule"):
            entry = ReaderNodule(_text(nodule, "noduleID"))
            for roi in _children(nodule, "roi"):
                points = [(int(float(_text(edge, "xCoord"))), int(float(_text(edge, "yCoord"))))
                          for edge in _children(roi, "edgeMap")]
                entry.rois.append(Roi(float(_text(roi, "imageZposition", "nan")), _text(roi, "imageSOP_UID"),
                                      _text(roi, "inclusion", "TRUE").upper() == "TRUE", points))
            reader.nodules.append(entry)
        sessions.append(reader)
    if not sessions:
        raise InputError(f"{path.name} holds no LIDC reading sessions (readingSession elements).")
    return sessions


@dataclass
class SliceGeometry:
    position_lps: np.ndarray
    row_direction: np.ndarray  # direction of increasing column index x
    column_direction: np.ndarray  # direction of increasing row index y
    spacing: tuple[float, float]  # (between rows, between columns) mm


def dicom_slice_geometry(dicom_dir: str | Path) -> dict[str, SliceGeometry]:
    """SOP Instance UID -> the slice's pixel geometry, from the series' DICOM headers."""
    import pydicom

    geometry = {}
    for file in sorted(Path(dicom_dir).iterdir()):
        if not file.is_file() or file.suffix.lower() == ".xml":
            continue
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True)
            orientation = np.array(header.ImageOrientationPatient, float)
            geometry[str(header.SOPInstanceUID)] = SliceGeometry(
                np.array(header.ImagePositionPatient, float), orientation[:3], orientation[3:],
                (float(header.PixelSpacing[0]), float(header.PixelSpacing[1])))
        except Exception:  # not a DICOM image slice (a report, a stray file): skip it
            continue
    if not geometry:
        raise InputError(f"{dicom_dir} holds no DICOM image slices to place the LIDC outlines on.")
    return geometry


def _roi_to_ijk(roi: Roi, geometry: dict[str, SliceGeometry], reference: Volume) -> np.ndarray:
    slice_geometry = geometry.get(roi.sop_uid)
    if slice_geometry is None:
        raise InputError(
            f"The LIDC outline refers to slice {roi.sop_uid}, which is not in the DICOM series given. "
            "Use the series the XML file belongs to (same folder in the LIDC download)."
        )
    points = np.array(roi.points, float)
    lps = (slice_geometry.position_lps + points[:, :1] * slice_geometry.spacing[1] * slice_geometry.row_direction
           + points[:, 1:2] * slice_geometry.spacing[0] * slice_geometry.column_direction)
    ras = lps * RAS_FROM_LPS[:3, :3].diagonal()
    return reference.ras_to_ijk_points(ras)


def reader_masks(sessions: list[ReadingSession], reference: Volume, dicom_dir: str | Path) -> np.ndarray:
    """One boolean mask [reader, k, j, i] per reading session: the union of its outlined nodules."""
    geometry = dicom_slice_geometry(dicom_dir)
    shape = reference.array.shape
    masks = np.zeros((len(sessions),) + shape, bool)
    for reader, session in enumerate(sessions):
        for nodule in session.nodules:
            if not nodule.outlined:
                continue
            holes = np.zeros(shape, bool)
            for roi in nodule.rois:
                if len(roi.points) < 3:
                    continue
                ijk = _roi_to_ijk(roi, geometry, reference)
                k = int(round(float(np.median(ijk[:, 2]))))
                if np.ptp(ijk[:, 2]) > 0.5:
                    raise InputError("The reference grid is not aligned with the DICOM slices; "
                                     "give the CT on its acquisition grid (the DICOM series or its NIfTI export).")
                if not 0 <= k < shape[0]:
                    continue
                canvas = Image.new("1", (shape[2], shape[1]), 0)
                ImageDraw.Draw(canvas).polygon([(float(i), float(j)) for i, j in ijk[:, :2]], fill=1, outline=1)
                filled = np.asarray(canvas, bool)
                if roi.inclusion:
                    masks[reader, k] |= filled
                else:
                    holes[k] |= filled
            masks[reader] &= ~holes
    return masks


def consensus_nodule_mask(xml_path: str | Path, reference: Volume, dicom_dir: str | Path | None = None,
                          level: float = 0.5) -> np.ndarray:
    """Boolean [k, j, i] on ``reference``'s grid: voxels outlined by >= ceil(level x readers) readers."""
    if not 0.0 < float(level) <= 1.0:
        raise InputError(f"The consensus level must be in (0, 1], got {level}.")
    sessions = read_lidc_xml(xml_path)
    masks = reader_masks(sessions, reference, dicom_dir or Path(xml_path).parent)
    needed = max(1, math.ceil(float(level) * len(sessions)))
    return masks.sum(axis=0) >= needed


def merge_lesions(labels: LabelMap, lesion: np.ndarray, name: str = NODULE_LABEL_NAME,
                  value: int | None = None, within: list[str] | None = None) -> LabelMap:
    """The organ label map with ``lesion`` voxels painted as a new label ``name``.

    ``within`` (label names, e.g. the lung lobes) keeps only lesion voxels inside those organs.
    """
    lesion = np.asarray(lesion, bool)
    if lesion.shape != labels.array.shape:
        raise InputError(f"The lesion mask {lesion.shape} and the label map {labels.array.shape} differ in shape.")
    if not lesion.any():
        raise InputError("The lesion mask is empty: no nodule reached the consensus level. Lower the level.")
    if within:
        region = np.zeros_like(lesion)
        for organ in within:
            region |= labels.mask(organ)
        lesion = lesion & region
    value = int(value if value is not None else max(list(labels.table.names) + labels.present_labels() + [0]) + 1)
    if value in labels.table.names and labels.table.names[value] != name:
        raise InputError(f"Label value {value} is already {labels.table.names[value]!r}; choose another value.")
    array = labels.array.copy()
    array[lesion] = value
    table = LabelTable({**labels.table.names, value: name})
    return LabelMap(array, labels.ijk_to_ras.copy(), labels.metadata, table)


def lidc_lesion_labelmap(ct: Volume, organ_labels: LabelMap, xml_path: str | Path, dicom_dir: str | Path | None = None,
                         level: float = 0.5) -> LabelMap:
    """Organ labels + the readers' consensus nodules (label ``lung_nodule``) on the CT's grid."""
    ct.require_same_grid(organ_labels)
    mask = consensus_nodule_mask(xml_path, ct, dicom_dir, level)
    return merge_lesions(organ_labels, mask)
