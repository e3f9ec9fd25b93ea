"""The model registry: which models a user can pick, what each does, and where its weights are.

Two JSON files follow ``registry.schema.json``: ``registry.json`` in the package lists the shipped
demo models (trained by the project; recipe, checksum and licence recorded), and a user registry
next to the user's settings lists their own checkpoints (``register_checkpoint``). Weights are
always loaded from the user's model cache after a checksum check (``model_cache``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_REGISTRY = PACKAGE_DIR / "registry.json"
SCHEMA = PACKAGE_DIR / "registry.schema.json"

TASKS = {
    "labels_to_ct_slice": "label map -> CT slice",
    "single_energy_to_bone": "single-energy radiograph -> bone image",
    "single_energy_to_soft_tissue": "single-energy radiograph -> soft-tissue image",
    "sim_to_real_radiograph": "simulated radiograph -> real-looking radiograph",
    "ct_slice_to_labels": "CT slice -> label map (evaluation segmenter)",
    "labels_to_ct_volume": "label map -> CT volume (3D)",
}
LABEL_TASKS = ("labels_to_ct_slice", "labels_to_ct_volume")
TRANSLATION_TASKS = ("single_energy_to_bone", "single_energy_to_soft_tissue", "sim_to_real_radiograph")


def user_registry_path() -> Path:
    """The user's own registry, next to the settings file (clearing the model cache keeps it)."""
    from medsynth.settings import settings_file

    return settings_file().parent / "models.json"


# --- schema validation (the subset of JSON Schema the registry schema uses) -------------------------
_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "null": type(None),
          "boolean": bool}


def _check(value, schema: dict, root: dict, where: str) -> list[str]:
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    problems = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        ok = any(isinstance(value, _TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                 for t in types)
        if not ok:
            return [f"{where}: expected {' or '.join(types)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} is below {schema['minimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            problems.append(f"{where}: wrong number of items ({len(value)})")
        for index, item in enumerate(value):
            if "items" in schema:
                problems += _check(item, schema["items"], root, f"{where}[{index}]")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where}: missing '{key}'")
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                problems += _check(item, properties[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: unknown field '{key}'")
    return problems


def validate_registry(data: dict, source: str = "registry") -> None:
    """Raise InputError listing every way ``data`` breaks the registry schema."""
    schema = json.loads(SCHEMA.read_text())
    problems = _check(data, schema, schema, "registry")
    ids = [model.get("id") for model in data.get("models", []) if isinstance(model, dict)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"duplicate model ids {duplicates}")
    for model in data.get("models", []):
        if isinstance(model, dict) and not ("file" in model or "path" in model or "bundle" in model):
            problems.append(f"model {model.get('id')!r}: needs 'file' (shipped), 'path' (user checkpoint) or 'bundle'")
        if isinstance(model, dict) and ("file" in model or "path" in model):
            problems += [f"model {model.get('id')!r}: missing '{key}'" for key in ("sha256", "size_bytes")
                         if key not in model]
    if problems:
        raise InputError(f"{source} is not a valid MedSynth model registry: " + "; ".join(problems[:8])
                         + ". Fix the file (schema: medsynth/generative/registry.schema.json).")


# --- entries --------------------------------------------------------------------------------------
@dataclass
class ModelEntry:
    """One registered model."""

    id: str
    title: str
    task: str
    family: str
    classes: list[str]
    input_size: list[int]
    pixel_spacing_mm: float | None
    window: dict
    licence: str
    recipe: dict
    sha256: str = ""
    size_bytes: int = 0
    file: str | None = None
    path: str | None = None
    bundle: dict = field(default_factory=dict)  # a model the user downloads (MAISI): no file of ours
    hardware: str = "CPU (a CUDA GPU is faster)"
    defaults: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    description: str = ""
    user: bool = False

    @classmethod
    def from_dict(cls, data: dict, user: bool = False) -> "ModelEntry":
        return cls(**data, user=user)

    def to_dict(self) -> dict:
        data = {key: value for key, value in self.__dict__.items() if key != "user"}
        return {key: value for key, value in data.items()
                if value not in (None, {}, "", 0) or key in ("classes", "pixel_spacing_mm")}

    @property
    def source(self) -> Path | None:
        """The shipped weights file, or None for user models (their only copy is in the cache)."""
        return PACKAGE_DIR / "weights" / self.file if self.file else None

    def describe(self) -> str:
        """Task, classes and licence in one paragraph (the module's model selector shows it)."""
        classes = ", ".join(self.classes) if self.classes else "-"
        spacing = f"{self.pixel_spacing_mm:g} mm" if self.pixel_spacing_mm else "field of view"
        if self.bundle:
            classes = f"{len(self.classes)} ({', '.join(self.classes[1:6])}, ...)"
        return (f"{self.title}\nTask: {TASKS.get(self.task, self.task)} ({self.family})\nClasses: {classes}\n"
                f"Input: {self.input_size[0]}x{self.input_size[1]} px at {spacing}; window "
                f"{self.window['low']:g}..{self.window['high']:g} {self.window['units']}\nLicence: {self.licence}\n"
                f"Hardware: {self.hardware}")

    def weights(self) -> Path:
        """The verified cached weights file (copied from the package on first use)."""
        from medsynth.generative.model_cache import cached_weights

        if self.bundle:
            raise InputError(f"{self.id!r} runs from a bundle you download ({self.bundle.get('name')}), not from "
                             f"MedSynth's weights: {self.bundle.get('how', '')}")
        return cached_weights(self.id, self.sha256, self.source)


def _read(path: Path, user: bool) -> list[ModelEntry]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path} cannot be read as JSON ({error}). Fix or delete it.") from None
    validate_registry(data, str(path))
    return [ModelEntry.from_dict(model, user=user) for model in data["models"]]


def list_models(task: str | None = None) -> list[ModelEntry]:
    """Shipped and user models (user entries may not reuse a shipped id)."""
    entries = _read(SHIPPED_REGISTRY, user=False) + _read(user_registry_path(), user=True)
    return [entry for entry in entries if task is None or entry.task == task]


def get_model(model_id: str) -> ModelEntry:
    """The registry entry of ``model_id`` (a clear error lists the ids there are)."""
    for entry in list_models():
        if entry.id == model_id:
            return entry
    known = ", ".join(entry.id for entry in list_models()) or "none"
    raise InputError(f"No model with id {model_id!r}. Registered models: {known}. "
                     "Register your own checkpoint with `medsynth generate --register CHECKPOINT`.")


def entry_from_checkpoint(checkpoint: str | Path, model_id: str, task: str | None = None, title: str | None = None,
                          licence: str = "user's own", file: str | None = None) -> ModelEntry:
    """A registry entry describing a MedSynth checkpoint (read and validated, not yet registered)."""
    from medsynth.generative.checkpoint import read_checkpoint
    from medsynth.io.checksum import sha256_of

    payload = read_checkpoint(checkpoint)
    family, meta, config = payload["family"], payload["meta"], payload["config"]
    default_task = {"spade_gan": "labels_to_ct_slice", "semantic_diffusion": "labels_to_ct_slice",
                    "pix2pix": "single_energy_to_bone", "cyclegan": "sim_to_real_radiograph"}[family]
    task = task or meta.get("task") or default_task
    if task not in TASKS:
        raise InputError(f"Unknown task {task!r}; use one of {', '.join(TASKS)}.")
    size = int(meta["image_size"])
    window = dict(meta["window"])
    window.setdefault("units", "HU")
    recipe = {"config": config, **({"recipe": meta["recipe"]} if "recipe" in meta else {})}
    return ModelEntry(
        id=model_id, title=title or f"{family} {model_id}", task=task, family=family,
        classes=list(meta.get("class_names", [])), input_size=[size, size],
        pixel_spacing_mm=meta.get("pixel_spacing_mm"), window=window, sha256=sha256_of(checkpoint),
        size_bytes=Path(checkpoint).stat().st_size, licence=licence, recipe=recipe, file=file,
    )


def register_checkpoint(checkpoint: str | Path, model_id: str, task: str | None = None, title: str | None = None,
                        licence: str = "user's own") -> ModelEntry:
    """Add a user's checkpoint (trained with ``medsynth train``) to the user registry.

    The checkpoint is validated, copied into the model cache and recorded with its checksum;
    re-registering an id replaces it. Shipped ids cannot be taken.
    """
    from medsynth.generative.model_cache import store_user_weights

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{1,63}", model_id):
        raise InputError(f"Model id {model_id!r}: use 2-64 lower-case letters, digits, '.', '_' or '-'.")
    if any(entry.id == model_id for entry in _read(SHIPPED_REGISTRY, user=False)):
        raise InputError(f"{model_id!r} is a shipped model's id; choose another id for your checkpoint.")
    entry = entry_from_checkpoint(checkpoint, model_id, task, title, licence)
    cached, digest = store_user_weights(model_id, checkpoint)
    entry.path, entry.sha256 = str(cached), digest
    path = user_registry_path()
    others = [e.to_dict() for e in _read(path, user=True) if e.id != model_id]
    data = {"version": 1, "models": others + [entry.to_dict()]}
    validate_registry(data, str(path))
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(data, indent=2) + "\n")
    entry.user = True
    return entry


def load_registered_model(model_id: str, device: str = "cpu"):
    """(entry, model in eval mode) with the weights checked against the registry's checksum."""
    from medsynth.generative.checkpoint import load_model

    entry = get_model(model_id)
    if entry.family == "segmenter":
        raise InputError(f"{model_id!r} is the evaluation segmenter, not a generative model.")
    if entry.family == "maisi":
        raise InputError(f"{model_id!r} is MAISI: it runs through medsynth.generative.maisi (generate() does this), "
                         "from your downloaded bundle.")
    model = load_model(entry.weights(), expected_family=entry.family, device=device)
    if entry.classes and list(getattr(model, "class_names", [])) != list(entry.classes):
        raise InputError(
            f"The checkpoint of {model_id!r} has classes {getattr(model, 'class_names', None)}, but the registry lists "
            f"{entry.classes}: the file belongs to another model. Register it again."
        )
    return entry, model


# --- the shipped registry (maintainers: run after adding demo weights) -----------------------------
def build_shipped_registry(write: bool = True) -> dict:
    """Rebuild ``registry.json`` from the shipped weights' recipe files (weights/*.yaml, *.json).

    ``python -m medsynth.generative.registry`` runs this; a test checks the file is up to date.
    """
    import yaml

    from medsynth.io.checksum import sha256_of

    weights = PACKAGE_DIR / "weights"
    models = []
    for recipe_file in sorted(weights.glob("*.yaml")):
        recipe = yaml.safe_load(recipe_file.read_text())
        if not isinstance(recipe, dict) or "file" not in recipe or not (weights / recipe["file"]).is_file():
            continue
        target = ((recipe.get("training_config") or {}).get("model") or {}).get("target")
        task = recipe.get("task") or {"bone": "single_energy_to_bone",
                                      "soft_tissue": "single_energy_to_soft_tissue"}.get(target)
        entry = entry_from_checkpoint(weights / recipe["file"], recipe.get("name", recipe_file.stem).replace("_", "-"),
                                      task=task, title=recipe.get("description"),
                                      licence=recipe.get("licence", "Apache-2.0 (demo weights trained by MedSynth on "
                                                                    "LIDC-IDRI, CC BY 3.0, and TotalSegmentator test scans)"),
                                      file=recipe["file"])
        entry.recipe = {"command": recipe.get("command"), "config": recipe.get("training_config"),
                        "dataset": recipe.get("dataset_recipe"), "trained_on": recipe.get("trained_on"),
                        "recipe_file": recipe_file.name}
        entry.metrics = (recipe.get("shipped_checkpoint") or {}).get("val_metrics") or {}
        if entry.family == "semantic_diffusion":
            model = (recipe.get("training_config") or {}).get("model") or {}
            entry.defaults = {"steps": 20 if model.get("default_steps", 50) > 20 else int(model["default_steps"]),
                              "guidance": float(model.get("default_guidance", 1.5))}
        models.append(entry.to_dict())
    segmenter = weights / "ct_segmenter.json"
    if segmenter.is_file():
        record = json.loads(segmenter.read_text())
        recipe = record["recipe"]
        models.append(ModelEntry(
            id="ct-segmenter", title="CT slice segmenter for evaluation (MONAI U-Net)", task="ct_slice_to_labels",
            family="segmenter", classes=list(recipe["classes"]), input_size=[recipe["size"], recipe["size"]],
            pixel_spacing_mm=recipe["pixel_spacing_mm"],
            window={"low": recipe["window"][0], "high": recipe["window"][1], "units": "HU"},
            sha256=sha256_of(weights / record["file"]), size_bytes=(weights / record["file"]).stat().st_size,
            licence=record["licence"], recipe={"command": record["command"], "config": recipe,
                                               "recipe_file": segmenter.name},
            file=record["file"], metrics={"first_loss": record["first_loss"], "final_loss": record["final_loss"]},
        ).to_dict())
    from medsynth.generative.maisi.registry_entry import maisi_entry

    models.append(ModelEntry.from_dict(maisi_entry()).to_dict())
    data = {"$schema": "./registry.schema.json", "version": 1, "models": models}
    validate_registry(data, "the shipped registry")
    if write:
        with atomic_output(SHIPPED_REGISTRY) as temp:
            temp.write_text(json.dumps(data, indent=2) + "\n")
    return data


if __name__ == "__main__":
    import sys

    built = build_shipped_registry()
    print(f"{SHIPPED_REGISTRY}: {', '.join(m['id'] for m in built['models'])}")
    sys.exit(0)
