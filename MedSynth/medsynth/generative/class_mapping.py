"""Match the names of a label map's labels (or a segmentation's segments) to a model's classes.

A model knows a short list of classes ("lung", "liver", "bone", ...). A user's label map names
its labels the way its segmenter did: TotalSegmentator's 117 (v1) or 118 (v2) structures, or
free names typed in Slicer's Segment Editor. Each source name is resolved in this order:

1. an explicit user mapping (source name -> model class name), which always wins;
2. the same name as a model class (case, spaces, dashes and underscores ignored);
3. the TotalSegmentator group the name belongs to ("rib_left_3" -> "bone") when the model has
   that class, then the group's fallbacks ("aorta" -> "vessels" -> "soft_tissue");
4. otherwise the name is *unknown*: reported by name, never silently dropped. The caller chooses
   to fail (the default) or to paint unknown labels as an explicitly named class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from medsynth.errors import InputError

#: Coarse anatomical groups: group name -> regular expressions of the structure names in it.
#: The patterns cover TotalSegmentator v1 and v2 names.
GROUPS: dict[str, tuple[str, ...]] = {
    "lung": (r"lung(_.*)?", r"lung_(upper|middle|lower)_lobe_(left|right)", r"lung_nodules?"),
    "airway": (r"trachea", r"bronchus", r"airway"),
    "liver": (r"liver",),
    "spleen": (r"spleen",),
    "kidney": (r"kidney(_(left|right))?", r"kidney_cyst_(left|right)"),
    "heart": (r"heart(_.*)?", r"atrial_appendage_left", r"myocardium"),
    "vessels": (
        r"aorta", r"pulmonary_(vein|artery)", r"brachiocephalic_(trunk|vein_(left|right))",
        r"subclavian_artery_(left|right)", r"common_carotid_artery_(left|right)",
        r"(superior|inferior)_vena_cava", r"portal_vein_and_splenic_vein", r"iliac_(artery|vena)_(left|right)",
        r"vessels?",
    ),
    "bone": (
        r"vertebrae_[ctls]\d+", r"sacrum", r"rib_(left|right)_\d+", r"sternum", r"costal_cartilages",
        r"humerus_(left|right)", r"scapula_(left|right)", r"clavicula_(left|right)", r"femur_(left|right)",
        r"hip_(left|right)", r"skull", r"carpal", r"bones?", r"skeleton",
    ),
    "muscle": (
        r"autochthon_(left|right)", r"iliopsoas_(left|right)", r"gluteus_(maximus|medius|minimus)_(left|right)",
        r"muscles?",
    ),
    "bowel": (r"small_bowel", r"colon", r"duodenum", r"stomach", r"esophagus", r"bowel"),
    "soft_tissue": (
        r"gallbladder", r"pancreas", r"adrenal_gland_(left|right)", r"thyroid_gland", r"urinary_bladder",
        r"prostate", r"spinal_cord", r"brain", r"soft_tissue", r"body", r"organs?",
    ),
    "lesion": (r"(liver_)?tumou?rs?", r"lesions?", r"nodules?"),
}

#: Where a group goes when the model lacks it, in order of preference.
FALLBACKS: dict[str, tuple[str, ...]] = {
    "airway": ("lung",),
    "spleen": ("soft_tissue",),
    "kidney": ("soft_tissue",),
    "heart": ("vessels", "soft_tissue"),
    "vessels": ("heart", "soft_tissue"),
    "muscle": ("soft_tissue",),
    "bowel": ("soft_tissue",),
    "liver": ("soft_tissue",),
    "lesion": (),
}

BACKGROUND_NAMES = ("background", "bg", "air", "outside")


def normalize_name(name: str) -> str:
    """'Lung Upper-Lobe left' -> 'lung_upper_lobe_left' (for comparing names)."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def group_of(name: str) -> str | None:
    """The anatomical group of a structure name, or None when no group knows it."""
    key = normalize_name(name)
    for group, patterns in GROUPS.items():
        if any(re.fullmatch(pattern, key) for pattern in patterns):
            return group
    return None


@dataclass
class ClassMapping:
    """How each source label value maps to a model class index."""

    model_classes: list[str]
    source_to_class: dict[int, int] = field(default_factory=dict)  # label value -> model class index
    reasons: dict[int, str] = field(default_factory=dict)  # label value -> how it was matched
    unknown: dict[int, str] = field(default_factory=dict)  # label value -> name, not matched

    def lookup_table(self, max_value: int) -> np.ndarray:
        """An int64 array mapping every label value 0..max_value to a model class index."""
        table = np.zeros(max(max_value, max(self.source_to_class, default=0)) + 1, dtype=np.int64)
        for value, index in self.source_to_class.items():
            table[value] = index
        return table

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """Model class indices for an integer label array."""
        labels = np.asarray(labels)
        if labels.size and labels.min() < 0:
            raise InputError("The label map holds negative values; labels must be 0 (background) or positive.")
        present = set(np.unique(labels).tolist()) - {0}
        unmapped = sorted(present - set(self.source_to_class))
        if unmapped:
            raise InputError(
                f"Label values {unmapped} are present in the label map but have no class mapping. "
                "Give them names (a label table) or map them explicitly."
            )
        return self.lookup_table(int(labels.max()) if labels.size else 0)[labels]

    def summary(self) -> list[str]:
        """Human-readable lines 'source -> class (reason)'."""
        lines = [f"{value}: -> {self.model_classes[index]} ({self.reasons.get(value, '')})"
                 for value, index in sorted(self.source_to_class.items())]
        lines += [f"{value}: {name} -> UNKNOWN" for value, name in sorted(self.unknown.items())]
        return lines


def _class_index(model_classes: Sequence[str]) -> dict[str, int]:
    return {normalize_name(name): index for index, name in enumerate(model_classes)}


def resolve_name(name: str, model_classes: Sequence[str], user_mapping: Mapping[str, str] | None = None
                 ) -> tuple[int | None, str]:
    """(model class index or None, reason) for one source name."""
    index = _class_index(model_classes)
    user = {normalize_name(k): normalize_name(v) for k, v in (user_mapping or {}).items()}
    key = normalize_name(name)
    if key in user:
        target = user[key]
        if target not in index:
            raise InputError(
                f"The class mapping sends {name!r} to {target!r}, which is not a class of this model. "
                f"Its classes are: {', '.join(model_classes)}."
            )
        return index[target], "user mapping"
    if key in index:
        return index[key], "same name"
    if key in BACKGROUND_NAMES and 0 < len(model_classes):
        background = next((index[b] for b in BACKGROUND_NAMES if b in index), None)
        if background is not None:
            return background, "background"
    group = group_of(key)
    if group is None:
        return None, "unknown name"
    for candidate in (group, *FALLBACKS.get(group, ("soft_tissue",))):
        if candidate in index:
            how = "TotalSegmentator group" if candidate == group else f"group {group} -> {candidate}"
            return index[candidate], how
    return None, f"group {group} not in the model"


def map_classes(
    names: Mapping[int, str],
    model_classes: Sequence[str],
    user_mapping: Mapping[str, str] | None = None,
    unknown: str = "error",
) -> ClassMapping:
    """Map label values named by ``names`` (value -> name) to indices into ``model_classes``.

    ``unknown`` is "error" (raise, naming every unknown label) or the name of a model class that
    unknown labels are painted as (for example "soft_tissue" or "background"); the unknown labels
    are still listed in the result.
    """
    model_classes = list(model_classes)
    if not model_classes:
        raise InputError("The model lists no classes; its checkpoint is incomplete. Re-export it with `medsynth train`.")
    mapping = ClassMapping(model_classes)
    index = _class_index(model_classes)
    fallback_index = None
    if unknown != "error":
        fallback_index = index.get(normalize_name(unknown))
        if fallback_index is None:
            raise InputError(
                f"Unknown labels were to be painted as {unknown!r}, which is not a class of this model "
                f"({', '.join(model_classes)}). Pick one of those or 'error'."
            )
    for value, name in sorted(names.items()):
        if int(value) == 0:
            continue
        class_index, reason = resolve_name(name, model_classes, user_mapping)
        if class_index is None:
            mapping.unknown[int(value)] = name
            if fallback_index is not None:
                mapping.source_to_class[int(value)] = fallback_index
                mapping.reasons[int(value)] = f"unknown ({reason}), painted as {unknown}"
            continue
        mapping.source_to_class[int(value)] = class_index
        mapping.reasons[int(value)] = f"{name}: {reason}"
    if mapping.unknown and fallback_index is None:
        listed = ", ".join(f"{n!r} (label {v})" for v, n in sorted(mapping.unknown.items()))
        raise InputError(
            f"The model does not know these classes: {listed}. Its classes are: {', '.join(model_classes)}. "
            "Rename the segments to one of those (or to TotalSegmentator structure names), give an explicit "
            "class mapping (name=class), or choose a class to paint unknown labels as."
        )
    return mapping


def parse_mapping(items: Sequence[str] | str | None) -> dict[str, str]:
    """Parse 'name=class' pairs (a list, or one comma-separated string) into a dict."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [part for part in items.split(",") if part.strip()]
    result = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"Class mapping entry {item!r} must look like 'segment name=model class'.")
        source, target = item.split("=", 1)
        result[source.strip()] = target.strip()
    return result


def named_labels(labels) -> dict[int, str]:
    """Value -> name of every label present in a LabelMap; unnamed values are reported (never dropped)."""
    present = labels.present_labels()
    if not present:
        raise InputError("The label map is empty (all background). Segment at least one structure first.")
    unnamed = [value for value in present if value not in labels.table.names]
    if unnamed:
        raise InputError(
            f"Label values {unnamed[:10]} have no names, and classes are matched to the model by name. "
            "Give the label map its label table (e.g. TotalSegmentator's structures.csv, or a segmentation "
            "with named segments)."
        )
    return {value: labels.table.names[value] for value in present}
