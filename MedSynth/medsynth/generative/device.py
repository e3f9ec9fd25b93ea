"""Choosing the compute device and CPU threads for training and inference."""

from __future__ import annotations

from medsynth.errors import DeviceError, InputError


def resolve_device(device: str | None = "auto"):
    """"auto" -> CUDA when available, else CPU; "cuda"/"cuda:N" must exist; returns a torch.device."""
    import torch

    name = str(device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"Device {device!r} was asked for, but this PyTorch sees no CUDA GPU "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
                "Use device: cpu (or auto), or install a CUDA build of PyTorch on a machine with a GPU."
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"{device!r}: only {torch.cuda.device_count()} CUDA device(s) exist. Choose another.")
        return torch.device(name)
    raise InputError(f"Unknown device {device!r}: use auto, cpu, cuda or cuda:N.")


def set_threads(threads: int | None) -> int:
    """Set torch's CPU threads (None: keep torch's choice) and return the number in use."""
    import torch

    if threads is not None:
        if int(threads) < 1:
            raise InputError(f"CPU threads must be >= 1, got {threads}.")
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()
