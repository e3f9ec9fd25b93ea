"""Named label maps from files: a label volume + table, a Slicer colour table, or a .seg.nrrd.

Models match classes by name, so every front door (CLI, batch script, dataset recipe) reads
label maps through these readers and gets the same names and the same errors.
"""

from __future__ import annotations

from pathlib import Path

from medsynth.errors import InputError


def read_labels(path: str | Path, table: str | Path | None = None):
    """A named label map from a label volume + table, or from a Slicer .seg.nrrd (names in its header)."""
    from medsynth.io import read_labelmap
    from medsynth.volume import LabelTable

    path = Path(path)
    if path.name.lower().endswith(".seg.nrrd") and table is None:
        return read_seg_nrrd(path)
    if table is not None and Path(table).suffix.lower() in (".txt", ".ctbl"):
        labels = read_labelmap(path)
        labels.table = read_color_table(table)
        return labels
    labels = read_labelmap(path, table)
    if not labels.table.names:
        raise InputError(
            f"{path.name} has no label names, and classes are matched to the model by name. Give --table "
            "(TotalSegmentator's structures.csv or a Slicer color table), or a .seg.nrrd with named segments."
        )
    return labels


def read_color_table(path: str | Path):
    """A Slicer/ITK-SNAP style colour table: lines 'value name r g b a' ('#' comments)."""
    from medsynth.volume import LabelTable

    names = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            names[int(parts[0])] = parts[1]
        except (ValueError, IndexError):
            raise InputError(f"{path}: line {line!r} is not 'value name r g b a'.") from None
    names.pop(0, None)
    return LabelTable(names)


def read_seg_nrrd(path: str | Path):
    """A single-layer Slicer .seg.nrrd as a LabelMap named by its segments."""
    import SimpleITK as sitk

    from medsynth.io import read_labelmap
    from medsynth.volume import LabelTable

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    if reader.GetNumberOfComponents() > 1:
        raise InputError(f"{path} stores overlapping segments in several layers; export it as a label map in Slicer.")
    keys = set(reader.GetMetaDataKeys())
    names = {}
    index = 0
    while f"Segment{index}_Name" in keys:
        value = int(reader.GetMetaData(f"Segment{index}_LabelValue")) if f"Segment{index}_LabelValue" in keys else index + 1
        names[value] = reader.GetMetaData(f"Segment{index}_Name")
        index += 1
    labels = read_labelmap(path)
    labels.table = LabelTable(names)
    return labels
