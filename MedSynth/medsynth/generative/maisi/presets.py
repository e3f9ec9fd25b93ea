"""MAISI's documented inference presets: output size, spacing and the VAE decoder's memory settings.

The numbers are those of MONAI's MAISI tutorial configs (``config_infer_<GPU memory>_<size>.json``):
the GPU memory each preset was measured to need, and the sliding-window size / overlap and
tensor-parallel splits of the autoencoder decode that keep it within that memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from medsynth.errors import DeviceError, InputError


@dataclass(frozen=True)
class MaisiPreset:
    name: str
    gpu_memory_gb: float  # what MAISI's documentation says the preset needs
    output_size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    decoder_window: tuple[int, int, int]  # autoencoder_sliding_window_infer_size (image voxels)
    decoder_overlap: float
    decoder_splits: int  # autoencoder_tp_num_splits

    def describe(self) -> str:
        size = "x".join(map(str, self.output_size))
        spacing = "x".join(f"{s:g}" for s in self.spacing_mm)
        return f"{self.name}: {size} voxels at {spacing} mm, needs a GPU with {self.gpu_memory_gb:g} GB"


PRESETS = {preset.name: preset for preset in (
    MaisiPreset("16g_256x256x128", 16, (256, 256, 128), (1.5, 1.5, 4.0), (96, 96, 96), 0.25, 2),
    MaisiPreset("16g_512x512x128", 16, (512, 512, 128), (0.75, 0.75, 4.0), (64, 64, 32), 0.25, 1),
    MaisiPreset("24g_512x512x512", 24, (512, 512, 512), (0.75, 0.75, 1.0), (64, 64, 48), 0.4, 2),
    MaisiPreset("80g_512x512x512", 80, (512, 512, 512), (0.75, 0.75, 1.0), (80, 80, 80), 0.25, 2),
)}


def get_preset(name: str | MaisiPreset) -> MaisiPreset:
    if isinstance(name, MaisiPreset):
        return name
    if name not in PRESETS:
        raise InputError(f"Unknown MAISI preset {name!r}. Presets: " + "; ".join(p.describe() for p in PRESETS.values()))
    return PRESETS[name]


def check_gpu_memory(preset: MaisiPreset, total_bytes: int, device_name: str = "the GPU") -> None:
    """Raise DeviceError naming a preset that fits when ``total_bytes`` of GPU memory are too few."""
    have = total_bytes / 1024 ** 3
    if have + 0.5 >= preset.gpu_memory_gb:  # cards sold as "16 GB" report a little less
        return
    fitting = [p.name for p in PRESETS.values() if p.gpu_memory_gb <= have + 0.5]
    advice = f"choose preset {fitting[-1]}" if fitting else "use a GPU with at least 16 GB, or the 2D models"
    raise DeviceError(f"MAISI preset {preset.name} needs {preset.gpu_memory_gb:g} GB of GPU memory, but {device_name} "
                      f"has {have:.1f} GB: {advice}.")
