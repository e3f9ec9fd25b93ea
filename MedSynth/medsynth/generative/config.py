"""The training configuration (one YAML file): its schema, defaults and checks.

```yaml
family: spade_gan              # spade_gan | semantic_diffusion | pix2pix | cyclegan
output: runs/spade_ct          # checkpoints, metrics log, plots (relative to the YAML file)
data:
  dataset: datasets/ct_slices  # a folder made by `medsynth dataset ...`
  window: {low: -1000, high: 1000}   # physical units -> [-1, 1] (default: the dataset's)
model: {}                      # the family's network settings (see each model's DEFAULTS)
train:
  steps: 2000
  batch_size: 8
  seed: 0
  device: auto                 # auto | cpu | cuda | cuda:N
  threads: 1
  checkpoint_every: 200
  validate_every: 200
  val_metric: auto             # best checkpoint kept by this validation metric
```
Every key is checked: a misspelt key is an error, never silently ignored.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from medsynth.errors import InputError

FAMILIES = ("spade_gan", "semantic_diffusion", "pix2pix", "cyclegan")

#: What every family's training accepts, with defaults.
TRAIN_DEFAULTS = {
    "steps": 1000,
    "batch_size": 8,
    "lr": 2e-4,
    "lr_discriminator": None,  # None: same as lr
    "betas": [0.5, 0.999],
    "seed": 0,
    "device": "auto",
    "threads": 1,
    "deterministic": True,
    "checkpoint_every": 100,
    "keep_checkpoints": 2,
    "validate_every": 100,
    "val_metric": "auto",
    "val_samples": 16,
    "val_steps": 10,  # DDIM steps when validating a diffusion model
    "log_every": 10,
    "track_emissions": "auto",  # codecarbon: auto (when installed) | true (required) | false
    # family-specific (checked against the family below)
    "discriminator": "segmentation",  # spade_gan: segmentation (OASIS, N+1 classes) | patch
    "discriminator_channels": [16, 32, 64, 128],
    "mask_loss_weight": 0.0,  # spade_gan: extra weight of organ-boundary pixels in the generator loss
    "l1_weight": 100.0,  # pix2pix (and spade_gan's optional reconstruction term when > 0 there)
    "cycle_weight": 10.0,  # cyclegan
    "identity_weight": 5.0,  # cyclegan
    "ema_decay": 0.0,  # semantic_diffusion: exponential moving average of weights (0: off)
    "augment": {},  # label-map families: {flip: p, rotate_deg: d, intensity_jitter: j} (medsynth.generative.augment)
    "feature_matching_weight": 0.0,  # spade_gan with a patch/multiscale discriminator (pix2pixHD's loss)
    "discriminator_scales": 2,  # spade_gan multiscale discriminator: full, 1/2, ... resolution
}

FAMILY_TRAIN_KEYS = {
    "spade_gan": {"discriminator", "discriminator_channels", "mask_loss_weight", "l1_weight", "augment",
                  "feature_matching_weight", "discriminator_scales"},
    "semantic_diffusion": {"ema_decay", "val_steps", "augment"},
    "pix2pix": {"discriminator_channels", "l1_weight"},
    "cyclegan": {"discriminator_channels", "cycle_weight", "identity_weight"},
}
COMMON_TRAIN_KEYS = set(TRAIN_DEFAULTS) - set().union(*FAMILY_TRAIN_KEYS.values())

FAMILY_TRAIN_OVERRIDES = {
    "spade_gan": {"lr": 4e-4, "lr_discriminator": 4e-4, "betas": [0.0, 0.999], "l1_weight": 0.0},
    "semantic_diffusion": {"lr": 1e-4, "betas": [0.9, 0.999]},
    "pix2pix": {"discriminator_channels": 32, "l1_weight": 100.0},
    "cyclegan": {"discriminator_channels": 32},
}

DATA_DEFAULTS = {"dataset": None, "train_split": "train", "val_split": "val", "window": None}
METRIC_DIRECTIONS = {"mae": "min", "rmse": "min", "psnr": "max", "ssim": "max", "class_mean_error": "min",
                     "cycle_l1": "min", "val_loss": "min"}
DEFAULT_METRIC = {"spade_gan": "ssim", "semantic_diffusion": "ssim", "pix2pix": "psnr", "cyclegan": "cycle_l1"}


def _check_keys(section: dict, allowed: set, where: str) -> None:
    unknown = set(section) - allowed
    if unknown:
        raise InputError(f"Unknown setting(s) {sorted(unknown)} in '{where}'. Allowed: {sorted(allowed)}.")


def normalize_config(raw: dict, base_dir: str | Path | None = None) -> dict:
    """Fill defaults, check every key and value, resolve paths; return a new dict."""
    if not isinstance(raw, dict):
        raise InputError("A training config must be a YAML mapping with family, data, model, train and output.")
    _check_keys(raw, {"family", "data", "model", "train", "output", "description"}, "top level")
    family = raw.get("family")
    if family not in FAMILIES:
        raise InputError(f"'family' must be one of {', '.join(FAMILIES)}, got {family!r}.")
    config = {"family": family, "description": str(raw.get("description", ""))}
    data = {**DATA_DEFAULTS, **(raw.get("data") or {})}
    _check_keys(data, set(DATA_DEFAULTS), "data")
    if not data["dataset"]:
        raise InputError("'data.dataset' is missing: give the folder made by `medsynth dataset ...`.")
    base = Path(base_dir) if base_dir else None
    if base is not None and not Path(data["dataset"]).is_absolute():
        data["dataset"] = str((base / data["dataset"]).resolve())
    config["data"] = data
    config["model"] = dict(raw.get("model") or {})
    allowed = COMMON_TRAIN_KEYS | FAMILY_TRAIN_KEYS[family]
    train = {k: v for k, v in {**TRAIN_DEFAULTS, **FAMILY_TRAIN_OVERRIDES[family]}.items() if k in allowed}
    given = dict(raw.get("train") or {})
    _check_keys(given, allowed, f"train (family {family})")
    train.update(given)
    for key in ("steps", "batch_size", "checkpoint_every", "validate_every", "log_every", "val_samples", "val_steps",
                "keep_checkpoints"):
        if key not in train:
            continue
        value = train[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"train.{key} must be a whole number >= 1, got {value!r}.")
    for key in ("lr",):
        if not float(train[key]) > 0:
            raise InputError(f"train.{key} must be positive, got {train[key]!r}.")
    if train["threads"] is not None and (not isinstance(train["threads"], int) or train["threads"] < 1):
        raise InputError(f"train.threads must be a whole number >= 1 (or null for torch's choice), got {train['threads']!r}.")
    if train["val_metric"] == "auto":
        train["val_metric"] = DEFAULT_METRIC[family]
    if train["val_metric"] not in METRIC_DIRECTIONS:
        raise InputError(f"train.val_metric must be one of {sorted(METRIC_DIRECTIONS)} or auto, got {train['val_metric']!r}.")
    if "augment" in train:
        from medsynth.generative.augment import Augmentation

        Augmentation.from_dict(train["augment"])  # checked now, not at the first batch
    if train["track_emissions"] not in ("auto", True, False):
        raise InputError("train.track_emissions must be auto, true or false.")
    config["train"] = train
    output = raw.get("output")
    if not output:
        raise InputError("'output' is missing: give the folder for checkpoints, logs and plots.")
    if base is not None and not Path(output).is_absolute():
        output = str((base / output).resolve())
    config["output"] = str(output)
    return config


def load_config(path: str | Path) -> dict:
    """Read and check a training config YAML (relative paths are relative to the file)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Training config {path} does not exist.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"{path} is not valid YAML: {error}") from None
    return normalize_config(raw, path.parent)


def comparable(config: dict) -> dict:
    """The parts of a config that must not change when resuming (everything but the step count)."""
    frozen = copy.deepcopy(config)
    for key in ("steps", "checkpoint_every", "validate_every", "log_every", "keep_checkpoints", "device", "threads",
                "track_emissions"):
        frozen["train"].pop(key, None)
    frozen.pop("description", None)
    return frozen
