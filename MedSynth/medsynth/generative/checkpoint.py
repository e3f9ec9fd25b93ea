"""Checkpoints: one file holds a model's family, format version, exact config, metadata and weights.

Written atomically (a crash never leaves half a checkpoint under the final name) and read with
``torch.load(weights_only=True)``, so a checkpoint can never run code. Everything that can go
wrong reading one (truncated, not a checkpoint, another family, a newer format) is an InputError
naming the file.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.io.checksum import sha256_of

FORMAT = "medsynth-model"
FORMAT_VERSION = 1
#: The small demo models MedSynth trains itself and ships (see scripts/train_demo_models.py).
DEMO_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def save_checkpoint(path: str | Path, family: str, config: dict, state: dict, meta: dict) -> Path:
    """Write a checkpoint atomically.

    ``config`` is the exact (YAML-able) configuration that made the model, ``state`` holds
    ``{"model": state_dict, ...}`` (training checkpoints add optimiser and RNG states under
    ``"training"``), ``meta`` the class names (channel order), image size, pixel spacing,
    intensity window and training recipe.
    """
    import torch

    from medsynth import __version__
    from medsynth.generative.networks import FAMILIES

    if family not in FAMILIES:
        raise InputError(f"Unknown model family {family!r}; MedSynth offers {', '.join(FAMILIES)}.")
    if "model" not in state:
        raise InputError("A checkpoint's state needs the model's weights under 'model'.")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": family,
        "medsynth_version": __version__,
        "config": config,
        "meta": meta,
        "state": state,
    }
    path = Path(path)
    with atomic_output(path) as temp:
        torch.save(payload, temp)
    return path


def read_checkpoint(path: str | Path, expected_family: str | None = None, device: str = "cpu") -> dict:
    """Load and validate a checkpoint's contents (tensors mapped to ``device``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model checkpoint {path} does not exist. Check the path, or train one (medsynth train).")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
            AttributeError, IndexError, KeyError, TypeError) as error:
        raise InputError(
            f"{path} is not a readable MedSynth checkpoint (corrupt, truncated or another kind of file): "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}. "
            "Copy it again, or train the model again."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(
            f"{path} is a PyTorch file but not a MedSynth model checkpoint (no '{FORMAT}' header). "
            "Use a checkpoint written by medsynth train."
        )
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(
            f"{path} has checkpoint format version {version}, but this MedSynth reads version {FORMAT_VERSION}. "
            "Update MedSynth, or retrain the model with this version."
        )
    family = payload.get("family")
    if expected_family is not None and family != expected_family:
        raise InputError(
            f"{path} holds a {family!r} model, not the {expected_family!r} model asked for. "
            f"Choose a {expected_family} checkpoint."
        )
    for key in ("config", "meta", "state"):
        if not isinstance(payload.get(key), dict):
            raise InputError(f"{path} is an incomplete MedSynth checkpoint: its '{key}' section is missing.")
    return payload


def model_from_payload(payload: dict, path: str | Path = "checkpoint", device: str = "cpu"):
    """Build the model a checkpoint describes and load its weights (strictly)."""
    from medsynth.generative.networks import build_model

    model = build_model(payload["family"], payload["config"].get("model", {}), payload["meta"])
    weights = payload["state"].get("model")
    if not isinstance(weights, dict):
        raise InputError(f"{path} holds no model weights.")
    weights = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in weights.items()}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise InputError(
            f"{path}: the weights do not fit the {payload['family']} network its config describes "
            f"({str(error).splitlines()[0]}). The file was edited or written by another version."
        ) from None
    return model.to(device).eval()


def load_model(path: str | Path, expected_family: str | None = None, device: str = "cpu"):
    """Load a model ready to generate or translate (eval mode) on ``device``.

    The returned model carries ``family``, ``image_size``, ``window``, ``pixel_spacing_mm``,
    ``class_names`` (label-map families), ``config`` (the exact training config) and
    ``checkpoint_meta``.
    """
    from medsynth.generative.device import resolve_device

    device = resolve_device(device)
    payload = read_checkpoint(path, expected_family, device="cpu")
    model = model_from_payload(payload, path, device)
    model.config = payload["config"]
    model.checkpoint_meta = payload["meta"]
    model.checkpoint_path = str(path)
    return model


def demo_weights(name: str, verify: bool = True) -> Path:
    """Path of a shipped demo model (``spade_ct``, ``diffusion_ct``, ``pix2pix_bone``), its SHA-256 checked."""
    import yaml

    path = DEMO_WEIGHTS_DIR / f"{name}.pt"
    record_path = DEMO_WEIGHTS_DIR / f"{name}.yaml"
    if not path.is_file() or not record_path.is_file():
        known = sorted(p.stem for p in DEMO_WEIGHTS_DIR.glob("*.pt"))
        raise InputError(f"No demo model named {name!r}. Shipped demo models: {', '.join(known) or 'none'}. "
                         "Train them with scripts/train_demo_models.py.")
    if verify:
        expected = yaml.safe_load(record_path.read_text()).get("sha256")
        if sha256_of(path) != expected:
            raise InputError(f"{path} does not match the SHA-256 in {record_path.name}: the file is damaged or was "
                             "replaced. Reinstall MedSynth or retrain it with scripts/train_demo_models.py.")
    return path
