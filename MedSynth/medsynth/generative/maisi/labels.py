"""A Slicer/TotalSegmentator segmentation -> MAISI's label indices (the ControlNet's conditioning).

MAISI's label dictionary names structures in words ("left kidney", "vertebrae L1", "left lung
upper lobe"); TotalSegmentator writes the same structures as ``kidney_left``, ``vertebrae_L1``,
``lung_upper_lobe_left``, and Slicer users type "Left kidney". Names match when they hold the same
words (order, case and separators ignored) after a few synonyms; anything else goes through
``class_mapping.map_classes`` (user mapping first, then the coarse anatomical groups, e.g. an
unknown rib variant -> "bone"), so every label is either mapped or reported by name.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from medsynth.generative.class_mapping import ClassMapping, map_classes, normalize_name

LABELS_FILE = Path(__file__).with_name("labels.json")
#: Words that name the same thing in TotalSegmentator and in MAISI.
SYNONYMS = {"urinary": "", "vein": "vein", "veins": "vein", "lungs": "lung", "kidneys": "kidney",
            "uterus": "uterus", "vena": "vena", "ribs": "rib"}


@lru_cache(maxsize=1)
def maisi_labels() -> dict[str, int]:
    """MAISI's label dictionary: name -> index (0 background)."""
    return dict(json.loads(LABELS_FILE.read_text())["labels"])


def maisi_class_names() -> list[str]:
    """Index -> name over 0..max (indices MAISI does not use stay as placeholders, never matched)."""
    labels = maisi_labels()
    names = [f"unused_{i}" for i in range(max(labels.values()) + 1)]
    for name, index in labels.items():
        names[index] = name
    return names


def word_key(name: str) -> frozenset[str]:
    """The words of a structure name as a set: 'kidney_left' and 'Left kidney' give the same key."""
    words = [SYNONYMS.get(word, word) for word in re.split(r"[\s_\-]+", str(name).strip().lower())]
    return frozenset(word for word in words if word)


@lru_cache(maxsize=1)
def _by_words() -> dict[frozenset[str], str]:
    return {word_key(name): name for name in maisi_labels()}


def maisi_name(name: str) -> str | None:
    """The MAISI structure a source name denotes by its words, or None."""
    return _by_words().get(word_key(name))


def map_to_maisi(names: Mapping[int, str], user_mapping: Mapping[str, str] | None = None,
                 unknown: str = "error") -> ClassMapping:
    """Label value -> MAISI index for a label map whose values are named by ``names``.

    ``user_mapping`` (source name -> MAISI name) wins; ``unknown`` is "error" (the message names
    every unmatched label and how to map it) or a MAISI name to paint them as (e.g. "background").
    """
    aliases = {source: maisi_name(source) for source in names.values() if maisi_name(source)}
    aliases.update({normalize_name(k): v for k, v in (user_mapping or {}).items()})
    return map_classes(names, maisi_class_names(), aliases, unknown)
