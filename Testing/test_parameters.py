"""The one parameter object per job: limits, parsing with errors naming the key, schema, copies."""

from __future__ import annotations

import jsonschema
import pytest

from medsynth import parameters as P
from medsynth.drr.parameters import CArmPose, DRRParameters
from medsynth.errors import InputError
from medsynth.generative.parameters import SemanticParameters
from medsynth.geometry import load_preset
from medsynth.tumor.parameters import TumorParameters

JOBS = [DRRParameters, TumorParameters, SemanticParameters]


@pytest.mark.parametrize("cls", JOBS, ids=lambda c: c.__name__)
def test_defaults_are_valid_and_round_trip(cls):
    parameters = cls()
    P.validate(parameters)
    data = P.to_dict(parameters)
    assert P.from_dict(cls, data) == parameters
    jsonschema.validate(data, P.json_schema(cls))


@pytest.mark.parametrize("cls", JOBS, ids=lambda c: c.__name__)
def test_every_field_is_a_type_a_parameter_node_stores(cls):
    for info in P.describe_fields(cls):
        assert info.type in (bool, int, float, str), info
        if info.range is not None:
            assert info.range.minimum <= info.default <= info.range.maximum, info


def test_drr_defaults_come_from_the_mobile_preset():
    mobile = load_preset("mobile")
    parameters = DRRParameters()
    assert (parameters.pose.sid, parameters.pose.sod) == (mobile.sid, mobile.sod)
    assert parameters.carm().detector_size_mm == pytest.approx(mobile.detector_size_mm, rel=1e-6)


def test_errors_name_the_key_and_the_fix():
    with pytest.raises(InputError, match=r"recipe drr: unknown parameter 'kvp'\. Known parameters: pose"):
        P.from_dict(DRRParameters, {"kvp": 90}, "recipe drr")
    with pytest.raises(InputError, match=r"recipe drr\.pose: primary_angle is 300; use a value from -190 to 190"):
        P.from_dict(DRRParameters, {"pose": {"primary_angle": 300}}, "recipe drr")
    with pytest.raises(InputError, match=r"organ is 'lung'; choose one of: liver"):
        P.from_dict(TumorParameters, {"organ": "lung"})
    with pytest.raises(InputError, match=r"count must be a whole number"):
        P.from_dict(TumorParameters, {"count": 2.5})
    with pytest.raises(InputError, match=r"add_noise must be true or false"):
        P.from_dict(DRRParameters, {"add_noise": "maybe"})


def test_text_values_parse_as_their_field_types():
    parameters = P.from_dict(DRRParameters, {"kv": "120", "add_noise": "true", "detector_rows": "256"})
    assert (parameters.kv, parameters.add_noise, parameters.detector_rows) == (120.0, True, 256)


def test_updated_changes_dotted_fields_and_checks_them():
    parameters = P.updated(DRRParameters(), {"pose.sid": 900, "kv": 60})
    assert parameters.pose.sid == 900 and parameters.kv == 60
    with pytest.raises(InputError, match="sid is 5000"):
        P.updated(parameters, {"pose.sid": 5000})


def test_assign_and_from_object_copy_between_look_alike_objects():
    class Holder:  # e.g. a Slicer parameterPack with the same fields
        pass

    target = Holder()
    target.pose = Holder()
    for info in P.describe_fields(DRRParameters):
        owner = target.pose if info.name.startswith("pose.") else target
        setattr(owner, info.name.split(".")[-1], None)
    source = DRRParameters(pose=CArmPose(primary_angle=30.0, isocenter_s=-180.0), kv=120.0)
    P.assign(target, source)
    assert P.from_object(DRRParameters, target) == source


def test_presets_set_distances_and_field_of_view():
    angio = DRRParameters(pose=CArmPose(primary_angle=20.0)).with_preset("angio")
    preset = load_preset("angio")
    assert (angio.pose.sid, angio.pose.sod, angio.pose.primary_angle) == (preset.sid, preset.sod, 20.0)
    assert angio.detector_rows == 384
    assert angio.carm().detector_size_mm[0] == pytest.approx(preset.detector_size_mm[0])


def test_spectrum_and_outputs_follow_the_parameters():
    assert DRRParameters().spectrum().name == "90kV"
    assert DRRParameters(added_al_mm=1.0).spectrum().name != "90kV"
    assert "dual_energy" in DRRParameters(dual_energy=True).outputs()
    with pytest.raises(InputError, match="low voltage"):
        DRRParameters(low_kv=120.0, high_kv=60.0).dual_energy_spectra()


def test_tumor_parameters_give_the_engine_spec():
    spec = TumorParameters(tumor_type="custom", diameter_mm=25.0, count=2, capsule=True).to_spec()
    assert (spec.diameter_mm, spec.count, spec.appearance.capsule) == (25.0, 2, True)
    assert TumorParameters(tumor_type="small").to_spec().count is None
