"""A dataset recipe: one YAML file from CTs to labelled radiographs.

The recipe is validated with a JSON schema (jsonschema) before anything is read, so a typo is
reported as one line naming the key and what to write instead. Its sections reuse the jobs' own
parameter classes: ``drr.parameters`` is a ``DRRParameters``, ``tumor.parameters`` a
``TumorParameters``; a recipe adds only what a dataset needs on top (cases, view draws,
projected structures, output options, a cluster section). See docs/dataset.md for the long form.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import glob
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsynth.drr.parameters import DRRParameters
from medsynth.errors import InputError
from medsynth.geometry import load_preset
from medsynth.parameters import from_dict, json_schema, to_dict, updated
from medsynth.tumor.parameters import TUMOR_TYPE_CHOICES, TumorParameters

#: Files written per view, besides item.json.
FORMATS = ("nifti", "png", "dicom")
SAMPLINGS = ("random", "grid")
CLUSTER_KINDS = ("slurm", "pbs", "lsf")
#: Names of the tumor structure in ``labels.structures`` (the variant's synthetic tumors).
TUMOR_STRUCTURE = "tumor"


@dataclass
class Case:
    """One CT, with an optional label map (on the CT's grid) and its label table."""

    name: str
    ct: Path
    labels: Path | None = None
    table: Path | None = None


@dataclass
class TumorStage:
    """N tumor variants per case; variant v uses ``types[v % len(types)]`` when ``types`` is given."""

    variants: int = 1
    parameters: TumorParameters = field(default_factory=TumorParameters)
    types: tuple[str, ...] = ()
    keep_original: bool = False  # also project the CT without tumors

    def parameters_of(self, variant: int, seed: int) -> TumorParameters:
        changes: dict[str, Any] = {"seed": int(seed)}
        if self.types:
            changes["tumor_type"] = self.types[variant % len(self.types)]
        return dataclasses.replace(self.parameters, **changes)


@dataclass
class DRRStage:
    """K views per case or variant: angles, SID and isocenter jitter drawn within ranges, or a grid."""

    parameters: DRRParameters = field(default_factory=DRRParameters)
    views: int = 1
    sampling: str = "random"
    primary: tuple[float, float] = (0.0, 0.0)  # LAO + / RAO -, degrees
    secondary: tuple[float, float] = (0.0, 0.0)  # CRAN + / CAUD -, degrees
    sid: tuple[float, float] | None = None  # None: the parameters' SID
    isocenter_jitter_mm: float = 0.0  # each axis uniform in +- this, around the CT's centre
    poses: tuple = ()  # explicit poses instead of draws: [(name, values)] of the pose-file format (drr.poses)


@dataclass
class LabelStage:
    """Structures projected with each view's geometry: name -> label names or patterns ('rib_*')."""

    structures: dict[str, tuple[str, ...]] = field(default_factory=dict)
    area_density: bool = True  # also the structure's area-density map (g/cm^2)


@dataclass
class ModelStage:
    """Translate each view with a registered image-to-image model (``medsynth generate --list``)."""

    id: str
    image: str = "log"  # which of the view's images goes in


IMAGE_TO_IMAGE_FAMILIES = ("pix2pix", "cyclegan")


@dataclass
class OutputOptions:
    formats: tuple[str, ...] = FORMATS
    compress: bool = False  # .nii.gz instead of .nii (slower to write, smaller)
    keep_identifiers: bool = False  # copy the source DICOM's patient/study identifiers (opt-in)
    contact_sheet: int = 12  # views shown in contact_sheet.png (0: none)


@dataclass
class ClusterSection:
    """A dask-jobqueue cluster (SLURM, PBS or LSF): each batch job runs one Dask worker."""

    kind: str = "slurm"
    jobs: int = 1
    cores: int = 1
    memory: str = "8GB"
    walltime: str = "01:00:00"
    queue: str | None = None
    account: str | None = None
    gpus: int = 0  # GPUs per job: the worker gets the Dask resource GPU=gpus
    job_directives: tuple[str, ...] = ()  # extra "#SBATCH ..." lines, without the prefix
    prologue: tuple[str, ...] = ()  # shell lines run before the worker (module load, conda activate)

    def jobqueue_options(self) -> dict:
        options: dict[str, Any] = dict(cores=self.cores, processes=1, memory=self.memory, walltime=self.walltime,
                                       job_extra_directives=list(self.job_directives),
                                       job_script_prologue=list(self.prologue))
        if self.queue:
            options["queue"] = self.queue
        if self.account:
            options["account" if self.kind != "lsf" else "project"] = self.account
        if self.gpus:
            options["worker_extra_args"] = ["--resources", f"GPU={self.gpus}"]
            if self.kind == "slurm":
                options["job_extra_directives"] = options["job_extra_directives"] + [f"--gres=gpu:{self.gpus}"]
        return options


@dataclass
class Recipe:
    cases: list[Case]
    seed: int = 0
    drr: DRRStage = field(default_factory=DRRStage)
    tumor: TumorStage | None = None
    labels: LabelStage = field(default_factory=LabelStage)
    output: OutputOptions = field(default_factory=OutputOptions)
    cluster: ClusterSection | None = None
    model: ModelStage | None = None
    source: Path | None = None  # the YAML file it was read from
    raw: dict = field(default_factory=dict, repr=False)  # the validated document, paths resolved

    def digest(self) -> str:
        """SHA-256 of the resolved recipe: names a run's configuration in the manifest and in caches."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()

    def variants(self) -> list[int | None]:
        """Variant indices of every case (None: the CT as given)."""
        if self.tumor is None:
            return [None]
        return ([None] if self.tumor.keep_original else []) + list(range(self.tumor.variants))


# --- schema -----------------------------------------------------------------------------------
def _range_schema(minimum: float, maximum: float, what: str) -> dict:
    number = {"type": "number", "minimum": minimum, "maximum": maximum}
    return {"description": what, "oneOf": [number, {"type": "array", "items": number, "minItems": 2, "maxItems": 2}]}


def _strict(properties: dict, required: tuple[str, ...] = (), description: str = "") -> dict:
    return {"type": "object", "description": description, "properties": properties, "required": list(required),
            "additionalProperties": False}


def _path_list(description: str) -> dict:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def recipe_schema() -> dict:
    """The recipe's JSON schema (draft 2020-12): ``medsynth dataset schema`` prints it."""
    case = _strict({"name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
                    "ct": {"type": "string"}, "labels": {"type": "string"}, "table": {"type": "string"}},
                   required=("ct",), description="one CT, optional label map and label table")
    cases = {"oneOf": [
        {"type": "array", "items": case, "minItems": 1},
        _strict({"csv": {"type": "string", "description": "CSV with columns ct[, labels, table, name]"}},
                required=("csv",)),
        _strict({"glob": {"type": "string", "description": "CT files or DICOM folders, e.g. scans/*/ct.nii.gz"},
                 "labels": {"type": "string", "description": "label map next to each CT, e.g. labels.nii.gz"},
                 "table": {"type": "string", "description": "one label table for every case"}},
                required=("glob",)),
    ], "description": "a list of cases, {csv: FILE} or {glob: PATTERN}"}
    tumor = _strict({
        "variants": {"type": "integer", "minimum": 1, "maximum": 10000},
        "parameters": json_schema(TumorParameters),
        "types": {"type": "array", "items": {"enum": list(TUMOR_TYPE_CHOICES)}},
        "keep_original": {"type": "boolean"},
    }, description="synthetic tumor variants per case")
    drr = _strict({
        "parameters": json_schema(DRRParameters),
        "detector_pixels": {"type": "integer", "minimum": 8, "maximum": 4096,
                            "description": "square read-out of the preset's field of view"},
        "views": {"type": "integer", "minimum": 1, "maximum": 100000},
        "sampling": {"enum": list(SAMPLINGS)},
        "primary": _range_schema(-360, 360, "LAO + / RAO - angle or [low, high], degrees"),
        "secondary": _range_schema(-360, 360, "CRAN + / CAUD - angle or [low, high], degrees"),
        "sid": _range_schema(100, 3000, "SID or [low, high], mm"),
        "isocenter_jitter_mm": {"type": "number", "minimum": 0, "maximum": 500},
        "poses": {"type": ["string", "array", "object"],
                  "description": "explicit poses in the DRR batch script's pose-file format (a list, "
                                 "{defaults, poses, sweep}, or a JSON file of it) instead of views and ranges"},
    }, description="views per case or variant")
    labels = _strict({
        "structures": {"type": "object", "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
            "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]*$"}},
        "area_density": {"type": "boolean"},
    }, description="structures projected with every view's geometry")
    output = _strict({
        "formats": {"type": "array", "items": {"enum": list(FORMATS)}, "uniqueItems": True},
        "compress": {"type": "boolean"},
        "keep_identifiers": {"type": "boolean"},
        "contact_sheet": {"type": "integer", "minimum": 0, "maximum": 400},
    })
    cluster = _strict({
        "kind": {"enum": list(CLUSTER_KINDS)},
        "jobs": {"type": "integer", "minimum": 1}, "cores": {"type": "integer", "minimum": 1},
        "memory": {"type": "string"}, "walltime": {"type": "string"},
        "queue": {"type": "string"}, "account": {"type": "string"},
        "gpus": {"type": "integer", "minimum": 0},
        "job_directives": _path_list("extra batch-system directives"),
        "prologue": _path_list("shell lines run before the worker starts"),
    }, required=("kind",), description="dask-jobqueue cluster")
    model = _strict({"id": {"type": "string", "description": "registered image-to-image model, e.g. pix2pix-bone"},
                     "image": {"type": "string", "description": "the view's image it translates (default log)"}},
                    required=("id",), description="translate each view with a registered model")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MedSynth dataset recipe",
        **_strict({"seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "cases": cases, "tumor": tumor,
                   "drr": drr, "labels": labels, "output": output, "cluster": cluster, "model": model},
                  required=("cases",)),
    }


def _where(path) -> str:
    return "recipe" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _schema_error(error, document: dict) -> InputError:
    """One line naming the bad key and the fix, from a jsonschema ValidationError."""
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        node = document
        for part in error.absolute_path:
            node = node[part]
        unknown = sorted(set(node) - set(known))
        bad = unknown[0] if unknown else "?"
        close = difflib.get_close_matches(bad, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return InputError(f"{where}: unknown key {bad!r}; {hint}known keys: {', '.join(known)}.")
    if error.validator == "required":
        return InputError(f"{where}: {error.message}; add it (see docs/dataset.md).")
    if error.validator == "enum":
        return InputError(f"{where} is {error.instance!r}; choose one of: {', '.join(map(str, error.validator_value))}.")
    if error.validator in ("minimum", "maximum"):
        return InputError(f"{where} is {error.instance!r}; it must be {'at least' if error.validator == 'minimum' else 'at most'} "
                          f"{error.validator_value:g}.")
    if error.validator == "type":
        return InputError(f"{where} is {error.instance!r}; it must be of type {error.validator_value}.")
    if error.validator == "oneOf" and error.context:
        best = min(error.context, key=lambda e: (len(list(e.absolute_path)), e.validator == "type"))
        return _schema_error(best, document)
    return InputError(f"{where}: {error.message}.")


def validate_document(document) -> None:
    """Raise InputError for the first schema violation, naming the key."""
    import jsonschema

    if not isinstance(document, dict):
        raise InputError("The recipe must be a YAML mapping with at least 'cases:' (see docs/dataset.md).")
    validator = jsonschema.Draft202012Validator(recipe_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise _schema_error(jsonschema.exceptions.best_match(errors), document)


# --- loading ----------------------------------------------------------------------------------
def _pair(value, what: str) -> tuple[float, float]:
    low, high = (float(value), float(value)) if not isinstance(value, (list, tuple)) else (float(value[0]), float(value[1]))
    if low > high:
        raise InputError(f"recipe.drr.{what}: the range [{low:g}, {high:g}] runs backwards; write [low, high].")
    return low, high


def _resolve(base: Path, text: str | None) -> Path | None:
    if text is None or text == "":
        return None
    path = Path(str(text)).expanduser()
    return path if path.is_absolute() else (base / path)


def _case_name(ct: Path, taken: set[str]) -> str:
    stem = ct.name.split(".")[0] if ct.suffix else ct.name
    if stem in ("ct", "image", "series") and ct.parent.name:
        stem = ct.parent.name
    name, count = stem, 1
    while name in taken:
        count += 1
        name = f"{stem}_{count}"
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in name)


def _cases(spec, base: Path) -> list[Case]:
    rows: list[dict] = []
    if isinstance(spec, list):
        rows = [dict(row) for row in spec]
    elif "csv" in spec:
        path = _resolve(base, spec["csv"])
        if not path.is_file():
            raise InputError(f"recipe.cases.csv: {path} does not exist; give the path of a CSV with a 'ct' column.")
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "ct" not in rows[0]:
            raise InputError(f"recipe.cases.csv: {path.name} needs a header with the column 'ct' "
                             "(and optionally labels, table, name).")
        unknown = set(rows[0]) - {"ct", "labels", "table", "name"}
        if unknown:
            raise InputError(f"recipe.cases.csv: unknown column {sorted(unknown)[0]!r}; use ct, labels, table, name.")
        base = path.parent
    else:
        found = sorted(glob.glob(str(_resolve(base, spec["glob"]))))
        if not found:
            raise InputError(f"recipe.cases.glob: no file or folder matches {spec['glob']!r} (from {base}); "
                             "check the pattern.")
        for ct in found:
            ct_path = Path(ct)
            row = {"ct": str(ct_path)}
            if spec.get("labels"):
                row["labels"] = str(ct_path.parent / spec["labels"])
            if spec.get("table"):
                row["table"] = str(_resolve(base, spec["table"]))
            rows.append(row)
    cases, taken = [], set()
    for index, row in enumerate(rows):
        ct = _resolve(base, row.get("ct"))
        if ct is None:
            raise InputError(f"recipe.cases[{index}]: no 'ct' given; every case needs a CT path.")
        name = str(row.get("name") or "") or _case_name(ct, taken)
        if name in taken:
            raise InputError(f"recipe.cases[{index}]: the case name {name!r} is used twice; give each case its own name.")
        taken.add(name)
        case = Case(name, ct, _resolve(base, row.get("labels")), _resolve(base, row.get("table")))
        for what in ("ct", "labels", "table"):
            path = getattr(case, what)
            if path is not None and not path.exists():
                raise InputError(f"recipe.cases[{index}] ({name}): {what} {path} does not exist; fix the path.")
        cases.append(case)
    return cases


def _drr_parameters(section: dict) -> DRRParameters:
    """DRRParameters of ``drr.parameters``: a preset's SID, SOD and field of view, then the given values."""
    given = dict(section.get("parameters") or {})
    base = DRRParameters().with_preset(given.get("preset", "mobile"), section.get("detector_pixels"))
    try:
        return updated(base, _flatten(given), where="recipe.drr.parameters")
    except InputError:
        from_dict(DRRParameters, given, where="recipe.drr.parameters")  # the clearer error
        raise


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _explicit_poses(section: dict, base: Path, parameters: DRRParameters) -> tuple:
    """``drr.poses`` in the pose-file format shared with DRRProjectionBatch, checked against the C-arm."""
    from medsynth.drr.parameters import CArmPose
    from medsynth.drr.poses import pose_entries, read_pose_file

    mixed = sorted(set(section) & {"views", "sampling", "primary", "secondary", "sid", "isocenter_jitter_mm"})
    if mixed:
        raise InputError(f"recipe.drr.poses: give either explicit poses or views drawn within ranges, not both; "
                         f"remove {', '.join(mixed)}.")
    given = section["poses"]
    try:
        entries = read_pose_file(_resolve(base, given)) if isinstance(given, str) else pose_entries(given, "recipe.drr.poses")
    except InputError as error:
        raise InputError(f"recipe.drr.poses: {error}") from None
    for name, values in entries:
        pose = CArmPose(values["primary"], values["secondary"], values.get("sid", parameters.pose.sid),
                        values.get("sod", parameters.pose.sod))
        try:
            parameters.carm(pose).validate()
        except InputError as error:
            raise InputError(f"recipe.drr.poses ({name}): {error}") from None
    return tuple(entries)


def _check_mechanical_ranges(stage: DRRStage) -> None:
    """A pose range the C-arm cannot reach fails now, before any CT is read."""
    carm = load_preset(stage.parameters.preset)
    checks = [("primary", stage.primary, carm.primary_range, "LAO/RAO"),
              ("secondary", stage.secondary, carm.secondary_range, "CRAN/CAUD")]
    if stage.sid is not None:
        checks.append(("sid", stage.sid, carm.sid_range, "SID"))
    for key, (low, high), allowed, what in checks:
        if allowed is not None and (low < allowed[0] - 1e-9 or high > allowed[1] + 1e-9):
            raise InputError(
                f"recipe.drr.{key}: [{low:g}, {high:g}] leaves the {stage.parameters.preset} C-arm's mechanical "
                f"{what} range [{allowed[0]:g}, {allowed[1]:g}]; narrow the range or choose another preset.")


def recipe_from_dict(document: dict, base: str | Path = ".", source: Path | None = None) -> Recipe:
    """A checked Recipe from a parsed YAML/JSON document; relative paths are relative to ``base``."""
    validate_document(document)
    base = Path(base)
    drr_section = document.get("drr") or {}
    parameters = _drr_parameters(drr_section)
    poses = _explicit_poses(drr_section, base, parameters) if "poses" in drr_section else ()
    stage = DRRStage(parameters=parameters, views=len(poses) or int(drr_section.get("views", 1)), poses=poses,
                     sampling=drr_section.get("sampling", "random"),
                     primary=_pair(drr_section.get("primary", parameters.pose.primary_angle), "primary"),
                     secondary=_pair(drr_section.get("secondary", parameters.pose.secondary_angle), "secondary"),
                     sid=_pair(drr_section["sid"], "sid") if "sid" in drr_section else None,
                     isocenter_jitter_mm=float(drr_section.get("isocenter_jitter_mm", 0.0)))
    _check_mechanical_ranges(stage)
    if parameters.dual_energy:
        parameters.dual_energy_spectra()  # low kV below high kV
    tumor = None
    if "tumor" in document:
        section = document["tumor"] or {}
        tumor = TumorStage(variants=int(section.get("variants", 1)),
                           parameters=from_dict(TumorParameters, section.get("parameters"), "recipe.tumor.parameters"),
                           types=tuple(section.get("types", ())), keep_original=bool(section.get("keep_original", False)))
        tumor.parameters.to_spec()
    labels_section = document.get("labels") or {}
    structures = {name: (value,) if isinstance(value, str) else tuple(value)
                  for name, value in (labels_section.get("structures") or {}).items()}
    if TUMOR_STRUCTURE in structures and tumor is None:
        raise InputError("recipe.labels.structures.tumor: projecting tumors needs a 'tumor:' stage; add one or "
                         "drop the structure.")
    cases = _cases(document["cases"], base)
    if any(structure != TUMOR_STRUCTURE for structure in structures) or tumor is not None:
        missing = [case.name for case in cases if case.labels is None]
        if missing:
            need = "tumors (their organ mask)" if tumor is not None else "projected structures"
            raise InputError(f"recipe.cases: case {missing[0]!r} has no label map, which {need} need; add "
                             "'labels:' to every case.")
    output_section = document.get("output") or {}
    output = OutputOptions(formats=tuple(output_section.get("formats", FORMATS)),
                           compress=bool(output_section.get("compress", False)),
                           keep_identifiers=bool(output_section.get("keep_identifiers", False)),
                           contact_sheet=int(output_section.get("contact_sheet", 12)))
    cluster = None
    if "cluster" in document:
        section = dict(document["cluster"])
        for key in ("job_directives", "prologue"):
            if key in section:
                section[key] = tuple(section[key])
        cluster = ClusterSection(**section)
    model = None
    if "model" in document:
        from medsynth.generative.registry import get_model

        model = ModelStage(**document["model"])
        try:
            entry = get_model(model.id)
        except InputError as error:
            raise InputError(f"recipe.model.id: {error}") from None
        if entry.family not in IMAGE_TO_IMAGE_FAMILIES:
            raise InputError(f"recipe.model.id: {model.id!r} is a {entry.family} model ({entry.task}); a view needs an "
                             f"image-to-image model ({', '.join(IMAGE_TO_IMAGE_FAMILIES)}).")
        images = {"intensity", "log"} | ({"low_log", "high_log", "low_intensity", "high_intensity"}
                                         if parameters.dual_energy else set())
        if model.image not in images and not (parameters.material_images and model.image.endswith("_log")):
            raise InputError(f"recipe.model.image: the views have no {model.image!r} image; use one of "
                             f"{', '.join(sorted(images))}.")
    raw = json.loads(json.dumps(document, default=str))
    raw["cases"] = [{"name": c.name, "ct": str(c.ct), "labels": str(c.labels or ""), "table": str(c.table or "")}
                    for c in cases]
    raw["drr"] = dict(raw.get("drr") or {}, parameters=to_dict(parameters))
    return Recipe(cases=cases, seed=int(document.get("seed", 0)), drr=stage, tumor=tumor,
                  labels=LabelStage(structures, bool(labels_section.get("area_density", True))),
                  output=output, cluster=cluster, model=model, source=source, raw=raw)


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a YAML (or JSON) recipe file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Recipe {path} does not exist; give the path of a YAML recipe (see docs/dataset.md).")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"Recipe {path.name} is not valid YAML{where}: {getattr(error, 'problem', error)}.") from None
    return recipe_from_dict(document, path.parent, source=path)
