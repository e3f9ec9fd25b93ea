"""Reading and writing volumes: DICOM series, NIfTI, NRRD and NumPy.

``read_volume`` picks the reader from the path; writers are atomic (temp file + rename).
"""

from medsynth.io.atomic import atomic_output
from medsynth.io.dicom import SeriesInfo, list_dicom_series, read_dicom_series
from medsynth.io.files import read_image_file, read_labelmap, read_volume, resample_like, write_volume
from medsynth.io.memory import check_memory_for
from medsynth.io.numpy_io import read_numpy

__all__ = [
    "SeriesInfo",
    "atomic_output",
    "check_memory_for",
    "list_dicom_series",
    "read_dicom_series",
    "read_image_file",
    "read_labelmap",
    "read_numpy",
    "read_volume",
    "resample_like",
    "write_volume",
]
