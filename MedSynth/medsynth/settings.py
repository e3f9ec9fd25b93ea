"""Settings shared by all MedSynth modules: cache folders, compute device, CPU threads.

Values come from environment variables (batch and CI use) or from a small JSON file in the
user's config folder that the MedSynth hub module edits. Nothing here imports Slicer.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda")


def _user_folder(kind: str) -> Path:
    """The per-user folder for ``kind`` ("cache" or "config"), following the XDG conventions."""
    variable = {"cache": "XDG_CACHE_HOME", "config": "XDG_CONFIG_HOME"}[kind]
    default = Path.home() / (".cache" if kind == "cache" else ".config")
    return Path(os.environ.get(variable) or default) / "medsynth"


def settings_file() -> Path:
    return Path(os.environ.get("MEDSYNTH_SETTINGS") or _user_folder("config") / "settings.json")


@dataclass
class Settings:
    """User settings; empty strings mean "use the default"."""

    cache_folder: str = ""  # root of data/ and models/ caches
    device: str = "auto"  # "auto", "cpu" or "cuda"
    cpu_threads: int = 0  # 0: let each library choose
    deepdrr_python: str = ""  # python executable of a separate DeepDRR environment (optional)
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls) -> "Settings":
        path = settings_file()
        if not path.exists():
            return cls()
        try:
            values = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self) -> Path:
        from medsynth.io.atomic import atomic_output

        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        path = settings_file()
        with atomic_output(path) as temp:
            temp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def cache_root() -> Path:
    """Root of MedSynth's caches: $MEDSYNTH_CACHE, else the settings' folder, else the user cache."""
    env = os.environ.get("MEDSYNTH_CACHE")
    if env:
        return Path(env).expanduser()
    configured = Settings.load().cache_folder
    return Path(configured).expanduser() if configured else _user_folder("cache")


def model_cache_dir() -> Path:
    """Where model weights live ($MEDSYNTH_MODELS overrides); never inside the install tree."""
    env = os.environ.get("MEDSYNTH_MODELS")
    return Path(env).expanduser() if env else cache_root() / "models"


def clear_cache(what: str = "all") -> list[Path]:
    """Delete cached data and/or models ("data", "models" or "all"); return what was removed."""
    from medsynth.data.download import cache_dir as data_cache_dir

    folders = {"data": [data_cache_dir()], "models": [model_cache_dir()]}
    targets = folders["data"] + folders["models"] if what == "all" else folders[what]
    removed = []
    for folder in targets:
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def resolve_device(requested: str | None = None) -> str:
    """'cpu' or 'cuda' for a request of 'auto', 'cpu' or 'cuda' (default: the settings' device)."""
    from medsynth.errors import DeviceError

    requested = (requested or os.environ.get("MEDSYNTH_DEVICE") or Settings.load().device or "auto").lower()
    if requested not in DEVICES:
        raise DeviceError(f"Unknown device {requested!r}: use one of {', '.join(DEVICES)}.")
    if requested == "cpu":
        return "cpu"
    available = cuda_available()
    if requested == "cuda" and not available:
        raise DeviceError(
            "CUDA was requested but no NVIDIA GPU is usable here (no driver, no GPU, or numba-cuda not "
            "installed). Choose device 'cpu' or 'auto', or install the NVIDIA driver and numba-cuda."
        )
    return "cuda" if available else "cpu"


def cuda_available() -> bool:
    """True when numba-cuda sees a real GPU (the CUDA simulator does not count)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


def compute_device_description() -> str:
    """'CPU (N cores)' or 'CUDA: <GPU name>' for display in the hub module and CLI."""
    if not cuda_available():
        return f"CPU ({os.cpu_count()} cores)"
    try:
        from numba import cuda

        name = cuda.get_current_device().name
        return f"CUDA: {name.decode() if isinstance(name, bytes) else name}"
    except Exception:
        return "CUDA"
