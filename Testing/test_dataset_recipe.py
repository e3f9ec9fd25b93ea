"""Recipe checking: a schema (jsonschema) with one-line errors naming the bad key and the fix."""

from __future__ import annotations

import pytest

from medsynth.dataset.recipe import load_recipe, recipe_from_dict, recipe_schema
from medsynth.errors import InputError


@pytest.fixture()
def ct_file(tmp_path):
    import numpy as np

    from medsynth.io import write_volume
    from medsynth.volume import Volume

    path = tmp_path / "chest.nii.gz"
    write_volume(Volume.from_spacing(np.full((8, 8, 8), -1000, np.int16), (1.0, 1.0, 1.0)), path)
    return path


def recipe(ct_file, **sections):
    return recipe_from_dict({"cases": [{"ct": str(ct_file)}], **sections}, ct_file.parent)


def test_minimal_recipe_gets_the_drr_defaults(ct_file):
    made = recipe(ct_file, drr={"views": 4, "detector_pixels": 64, "primary": [-20, 20]})
    assert [c.name for c in made.cases] == ["chest"]
    assert made.drr.parameters.detector_rows == 64 and made.drr.parameters.preset == "mobile"
    assert made.drr.primary == (-20.0, 20.0) and made.drr.secondary == (0.0, 0.0)
    assert made.variants() == [None]


@pytest.mark.parametrize("sections, words", [
    ({"drr": {"veiws": 3}}, ["recipe.drr", "'veiws'", "did you mean 'views'"]),
    ({"drr": {"parameters": {"kvp": 90}}}, ["recipe.drr.parameters", "'kvp'", "did you mean 'kv'"]),
    ({"tumour": {}}, ["recipe", "'tumour'", "did you mean 'tumor'"]),
    ({"drr": {"parameters": {"kv": 300}}}, ["recipe.drr.parameters.kv", "at most 150"]),
    ({"drr": {"sampling": "sobol"}}, ["recipe.drr.sampling", "random, grid"]),
    ({"tumor": {"parameters": {"tumor_type": "huge"}}}, ["recipe.tumor.parameters.tumor_type", "choose one of"]),
    ({"drr": {"primary": [-200, 30]}}, ["recipe.drr.primary", "mechanical", "[-190, 190]"]),
    ({"drr": {"secondary": [0, 60], "parameters": {"preset": "angio"}}}, ["recipe.drr.secondary", "angio", "[-45, 50]"]),
    ({"drr": {"sid": [900, 1100]}}, ["recipe.drr.sid", "mobile", "[1020, 1020]"]),
    ({"drr": {"primary": [30, -30]}}, ["runs backwards"]),
    ({"labels": {"structures": {"tumor": "tumor"}}}, ["recipe.labels.structures.tumor", "'tumor:' stage"]),
    ({"labels": {"structures": {"liver": "liver"}}}, ["case 'chest' has no label map"]),
])
def test_bad_recipes_name_the_key_and_the_fix(ct_file, sections, words):
    with pytest.raises(InputError) as raised:
        recipe(ct_file, **sections)
    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_cases_from_csv_and_glob(tmp_path, ct_file):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ct.nii.gz").write_bytes(ct_file.read_bytes())
    (tmp_path / "cases.csv").write_text("name,ct\nfirst,chest.nii.gz\nsecond,b/ct.nii.gz\n")
    from_csv = recipe_from_dict({"cases": {"csv": "cases.csv"}}, tmp_path)
    assert [(c.name, c.ct) for c in from_csv.cases] == [("first", tmp_path / "chest.nii.gz"), ("second", tmp_path / "b/ct.nii.gz")]
    from_glob = recipe_from_dict({"cases": {"glob": "*/ct.nii.gz"}}, tmp_path)
    assert [c.name for c in from_glob.cases] == ["b"]
    with pytest.raises(InputError, match="no file or folder matches"):
        recipe_from_dict({"cases": {"glob": "nothing/*.nii"}}, tmp_path)
    with pytest.raises(InputError, match=r"recipe.cases\[0\] \(x\): ct .* does not exist"):
        recipe_from_dict({"cases": [{"name": "x", "ct": "missing.nii"}]}, tmp_path)
    (tmp_path / "bad.csv").write_text("ct,mask\nchest.nii.gz,m.nii\n")
    with pytest.raises(InputError, match="unknown column 'mask'"):
        recipe_from_dict({"cases": {"csv": "bad.csv"}}, tmp_path)


def test_yaml_errors_and_schema(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_recipe(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")
    with pytest.raises(InputError, match="'cases' is a required property"):
        recipe_from_dict({"seed": 1}, tmp_path)
    schema = recipe_schema()
    assert schema["properties"]["drr"]["properties"]["parameters"]["properties"]["kv"]["maximum"] == 150.0
    assert schema["additionalProperties"] is False


def test_plan_seeds_depend_on_the_item_alone(ct_file):
    from medsynth.dataset.plan import plan

    base = recipe(ct_file, seed=5, drr={"views": 6, "primary": [-40, 40], "isocenter_jitter_mm": 10})
    more = recipe(ct_file, seed=5, drr={"views": 9, "primary": [-40, 40], "isocenter_jitter_mm": 10})
    items, longer = plan(base), plan(more)
    assert [i.seed for i in items] == [i.seed for i in longer[:6]]  # adding views leaves the first ones alone
    assert [i.pose for i in items] == [i.pose for i in longer[:6]]
    assert len({i.seed for i in longer}) == 9
    assert all(-40 <= i.pose.primary_angle <= 40 and abs(i.pose.isocenter_r) <= 10 for i in longer)
    other = plan(recipe(ct_file, seed=6, drr={"views": 6, "primary": [-40, 40]}))
    assert {i.seed for i in other}.isdisjoint({i.seed for i in items})
    grid = plan(recipe(ct_file, drr={"views": 5, "sampling": "grid", "primary": [-40, 40]}))
    assert [i.pose.primary_angle for i in grid] == [-40.0, -20.0, 0.0, 20.0, 40.0]


def test_explicit_poses_share_the_batch_scripts_format(ct_file):
    from medsynth.dataset.plan import plan

    poses = {"defaults": {"secondary": 5}, "poses": [{"name": "AP", "primary": 0, "isocenter": [1, 2, 3]}],
             "sweep": {"axis": "primary", "start": -20, "stop": 20, "step": 20}}
    items = plan(recipe(ct_file, drr={"poses": poses}))
    assert [(i.pose_name, i.pose.primary_angle, i.pose.secondary_angle) for i in items] == [
        ("AP", 0.0, 5.0), ("RAO20", -20.0, 5.0), ("LAO0", 0.0, 5.0), ("LAO20", 20.0, 5.0)]
    assert items[0].isocenter_absolute and items[0].pose.isocenter == (1.0, 2.0, 3.0)
    assert not items[1].isocenter_absolute and items[1].pose.isocenter == (0.0, 0.0, 0.0)
    with pytest.raises(InputError, match=r"recipe.drr.poses: give either explicit poses or views .* remove views"):
        recipe(ct_file, drr={"poses": poses, "views": 3})
    with pytest.raises(InputError, match=r"recipe.drr.poses \(far\): The primary angle LAO 150 is beyond angio"):
        recipe(ct_file, drr={"poses": [{"name": "far", "primary": 150}], "parameters": {"preset": "angio"}})
    with pytest.raises(InputError, match=r"recipe.drr.poses: Pose 1 has unknown keys \['lao'\]"):
        recipe(ct_file, drr={"poses": [{"lao": 10}]})
