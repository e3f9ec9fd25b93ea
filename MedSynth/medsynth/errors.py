"""The library's own exceptions.

Every message names the problem and what the user can do about it, so the CLI, batch scripts
and the Slicer modules can show it as it is. Input problems also derive from ValueError, the
exception Slicer's module template uses for bad input.
"""


class MedSynthError(Exception):
    """Base class of every error MedSynth raises on purpose."""


class InputError(MedSynthError, ValueError):
    """The input cannot be used as given (wrong kind, empty, out of range)."""


class DicomError(InputError):
    """A DICOM folder, file or series cannot be read as one volume."""


class MultipleSeriesError(DicomError):
    """A folder holds several series; the caller must choose one."""

    def __init__(self, message: str, series: list) -> None:
        super().__init__(message)
        self.series = series


class NotHUError(InputError):
    """A volume is not a CT in Hounsfield units where one is required."""


class GeometryMismatchError(InputError):
    """Two volumes that must share a voxel grid do not."""


class MemoryBudgetError(MedSynthError, MemoryError):
    """An operation would need more memory than the machine has available."""


class GeometryError(InputError):
    """An impossible imaging geometry (for example a source inside the patient)."""


class DeviceError(MedSynthError, RuntimeError):
    """A compute device was asked for but is not available."""


class DataFetchError(MedSynthError, RuntimeError):
    """Sample data could not be fetched or failed its checksum."""


class CancelledError(MedSynthError):
    """The user cancelled a long operation; nothing partial was kept."""
