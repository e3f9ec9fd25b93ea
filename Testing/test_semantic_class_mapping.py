"""Class mapping by name: TotalSegmentator structures and free segment names -> model classes."""

from __future__ import annotations

import numpy as np
import pytest

from medsynth.errors import InputError
from medsynth.generative.class_mapping import group_of, map_classes, parse_mapping

CLASSES = ["background", "soft_tissue", "lung", "liver", "bone", "vessels"]


def test_every_lidc_structure_maps_to_a_model_class(lidc_labels):
    names = {value: lidc_labels.table.name(value) for value in lidc_labels.present_labels()}
    mapping = map_classes(names, CLASSES)
    assert not mapping.unknown
    by_name = {names[v]: CLASSES[i] for v, i in mapping.source_to_class.items()}
    assert by_name["liver"] == "liver"
    assert by_name["lung_upper_lobe_left"] == "lung"
    assert by_name["vertebrae_T7"] == "bone" and by_name["rib_left_3"] == "bone" and by_name["sternum"] == "bone"
    assert by_name["aorta"] == "vessels"
    assert by_name["trachea"] == "lung"  # airway falls back to lung
    assert by_name["esophagus"] == "soft_tissue"  # bowel group falls back to soft tissue
    classes = mapping.apply(lidc_labels.array)
    assert classes.shape == lidc_labels.array.shape
    assert set(np.unique(classes).tolist()) <= set(range(len(CLASSES)))
    assert np.array_equal(classes[lidc_labels.array == 5], np.full((lidc_labels.array == 5).sum(), 3))


def test_unknown_segment_name_is_a_clear_error_naming_it():
    with pytest.raises(InputError, match=r"'my tumour blob'.*Its classes are: background, soft_tissue"):
        map_classes({1: "liver", 2: "my tumour blob"}, CLASSES)


def test_unknown_can_be_painted_as_a_named_class_and_is_still_reported():
    mapping = map_classes({1: "liver", 2: "mystery"}, CLASSES, unknown="soft_tissue")
    assert mapping.unknown == {2: "mystery"}
    assert mapping.source_to_class == {1: 3, 2: 1}
    with pytest.raises(InputError, match="not a class of this model"):
        map_classes({1: "mystery"}, CLASSES, unknown="kidney")


def test_user_mapping_wins_and_is_checked():
    mapping = map_classes({1: "Liver", 2: "blob"}, CLASSES, user_mapping={"blob": "Bone"})
    assert mapping.source_to_class == {1: 3, 2: 4}
    with pytest.raises(InputError, match="not a class of this model"):
        map_classes({1: "blob"}, CLASSES, user_mapping={"blob": "tumour"})
    assert parse_mapping("a=b, c = d") == {"a": "b", "c": "d"}
    with pytest.raises(InputError, match="name=model class|segment name=model class"):
        parse_mapping(["nonsense"])


def test_names_are_compared_loosely_and_groups_cover_v1_and_v2_names():
    assert group_of("Lung Upper-Lobe Left") == "lung"
    assert group_of("vertebrae_L5") == "bone"
    assert group_of("heart_myocardium") == "heart"
    assert group_of("iliac_artery_left") == "vessels"
    assert group_of("definitely not anatomy") is None


def test_unmapped_label_values_in_the_voxels_are_an_error():
    mapping = map_classes({1: "liver"}, CLASSES)
    with pytest.raises(InputError, match=r"Label values \[7\]"):
        mapping.apply(np.array([[0, 1, 7]]))
