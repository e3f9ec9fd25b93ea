"""The registry's entry for MAISI: a model MedSynth runs but never ships (the user downloads the bundle)."""

from __future__ import annotations


def maisi_entry() -> dict:
    """The entry as a registry dict (registry.ModelEntry.from_dict reads it)."""
    from medsynth.generative.maisi.bundle import BUNDLE_NAME, DOWNLOAD_HINT, SUPPORTED_MAJOR
    from medsynth.generative.maisi.labels import maisi_class_names
    from medsynth.generative.maisi.presets import PRESETS

    smallest = min(PRESETS.values(), key=lambda p: p.gpu_memory_gb)
    return dict(
        id="maisi-ct", title="MAISI (NVIDIA/MONAI 3D latent diffusion + ControlNet): label map -> CT volume, up to 512^3",
        task="labels_to_ct_volume", family="maisi", classes=maisi_class_names(),
        input_size=list(smallest.output_size[:2]), pixel_spacing_mm=smallest.spacing_mm[0],
        window={"low": -1000.0, "high": 1000.0, "units": "HU"},
        licence="NVIDIA's MAISI weights licence (non-commercial; not redistributable): download them yourself",
        recipe={"source": f"MONAI bundle {BUNDLE_NAME} (trained by NVIDIA)", "presets": sorted(PRESETS)},
        bundle={"name": BUNDLE_NAME, "versions": f"{SUPPORTED_MAJOR}.x", "how": DOWNLOAD_HINT},
        hardware="CUDA GPU: " + "; ".join(p.describe() for p in PRESETS.values()),
        defaults={"steps": 30, "preset": smallest.name},
        description="Run MAISI on your own segmentation; MedSynth maps its names to MAISI's label dictionary.",
    )
