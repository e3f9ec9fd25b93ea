"""Model weights in the user's cache folder, always checked against their SHA-256.

Shipped weights are copied from the package into ``medsynth.settings.model_cache_dir()/<id>/``
on first use (atomically), user checkpoints are copied there when registered. Every load checks
the checksum first, so a truncated, edited or swapped file is a clear error naming the file and
the fix, never a crash inside torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.io.checksum import sha256_of
from medsynth.settings import model_cache_dir

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class ModelChecksumError(InputError):
    """A weights file is not the file its registry entry describes."""


def verify_checksum(path: str | Path, expected: str, what: str = "model") -> Path:
    """Raise ModelChecksumError unless ``path`` exists and has SHA-256 ``expected``."""
    path = Path(path)
    if not path.is_file():
        raise ModelChecksumError(f"The weights of {what} are missing: {path}. Reinstall MedSynth or register the model again.")
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ModelChecksumError(
            f"The weights of {what} at {path} are corrupted or are not the file the model registry lists "
            f"(SHA-256 {actual[:12]}..., expected {expected[:12]}...). Clear the model cache (MedSynth hub module, "
            "or delete that file) and try again; for your own checkpoint, register it again (medsynth generate "
            "--register)."
        )
    return path


def cache_folder(model_id: str) -> Path:
    return model_cache_dir() / model_id


def cached_weights(model_id: str, sha256: str, source: str | Path | None) -> Path:
    """The verified cache copy of a model's weights, copied from ``source`` when missing or damaged.

    ``source`` is the shipped file (or None for user models, whose cache copy is the only one).
    """
    folder = cache_folder(model_id)
    name = Path(source).name if source is not None else "weights.pt"
    target = folder / name
    if target.is_file():
        try:
            return verify_checksum(target, sha256, f"model {model_id!r}")
        except ModelChecksumError:
            if source is None:
                raise
            target.unlink()  # a damaged cache copy of a shipped model: copy it again below
    if source is None:
        raise ModelChecksumError(
            f"Model {model_id!r} has no weights in the model cache ({folder}): the cache was cleared. "
            "Register the checkpoint again."
        )
    source = verify_checksum(source, sha256, f"model {model_id!r} (shipped copy)")
    with atomic_output(target) as temp:
        shutil.copyfile(source, temp)
    return verify_checksum(target, sha256, f"model {model_id!r}")


def store_user_weights(model_id: str, checkpoint: str | Path) -> tuple[Path, str]:
    """Copy a user's checkpoint into the cache; return (cache path, SHA-256)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InputError(f"Checkpoint {checkpoint} does not exist. Check the path.")
    target = cache_folder(model_id) / "weights.pt"
    with atomic_output(target) as temp:
        shutil.copyfile(checkpoint, temp)
    return target, sha256_of(target)


