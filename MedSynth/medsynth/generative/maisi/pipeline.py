"""Generate a CT volume from a label map with MAISI: map classes, resample to the preset's grid,
sample the latent with ControlNet + rectified flow, decode by sliding window, resample back.

MAISI's ControlNet sees the label map as 8 binary channels (the bits of each voxel's MAISI index);
the U-Net also receives the voxel spacing (mm x 100) and the modality (1: CT). The decoded image in
[0, 1] spans -1000..1000 HU, as MAISI was trained.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from medsynth.errors import InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report
from medsynth.volume import LabelMap, Volume, VolumeMetadata

CT_MODALITY = 1
HU_RANGE = (-1000.0, 1000.0)
LATENT_FACTOR = 4  # the MAISI autoencoder's down-sampling


def preset_grid(labels: LabelMap, preset) -> Volume:
    """An RAS-aligned grid of the preset's size and spacing, centred on the label map's labelled region."""
    size = np.array(preset.output_size)
    spacing = np.array(preset.spacing_mm, float)
    foreground = np.argwhere(labels.array > 0)
    centre_kji = (foreground.min(0) + foreground.max(0)) / 2.0 if foreground.size else (np.array(labels.array.shape) - 1) / 2
    centre = labels.ijk_to_ras_points(centre_kji[::-1][None])[0]
    matrix = np.diag([*spacing, 1.0])
    matrix[:3, 3] = centre - spacing * (size - 1) / 2.0
    return Volume(np.zeros(tuple(size[::-1]), np.uint8), matrix)


def binarize(indices, bits: int = 8):
    """[B, 1, X, Y, Z] label indices -> [B, bits, X, Y, Z] float bits (MAISI's ControlNet input)."""
    import torch

    shifts = torch.arange(bits, device=indices.device).view(1, bits, 1, 1, 1)
    return ((indices.long() >> shifts) & 1).float()


def generate_maisi(
    labels: LabelMap,
    bundle=None,
    preset="16g_256x256x128",
    steps: int = 30,
    seed: int = 0,
    device: str = "cuda",
    class_mapping: Mapping[str, str] | None = None,
    unknown: str = "error",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Volume:
    """One MAISI CT (HU) on the label map's grid; voxels outside the preset's field of view hold -1024 HU.

    ``bundle`` is the bundle folder (or already loaded ``MaisiNetworks``); ``preset`` one of
    ``presets.PRESETS`` (checked against the GPU's memory before anything heavy runs).
    """
    import torch
    from monai.inferers import SlidingWindowInferer

    from medsynth.generative.class_mapping import named_labels
    from medsynth.generative.maisi.bundle import MaisiNetworks, load_bundle
    from medsynth.generative.maisi.labels import map_to_maisi
    from medsynth.generative.maisi.presets import check_gpu_memory, get_preset
    from medsynth.io.files import resample_like

    if not isinstance(labels, LabelMap):
        raise InputError("MAISI needs a LabelMap (integer labels with names). Read it with medsynth.io.read_labelmap.")
    preset = get_preset(preset)
    if int(steps) < 1:
        raise InputError(f"MAISI steps must be at least 1, got {steps}.")
    if any(s % (LATENT_FACTOR * 4) for s in preset.output_size):
        raise InputError(f"MAISI output sizes must be multiples of {LATENT_FACTOR * 4}, got {preset.output_size}.")
    mapping = map_to_maisi(named_labels(labels), class_mapping, unknown)  # errors before loading anything
    torch_device = torch.device(device)
    if torch_device.type == "cuda":
        from medsynth.generative.device import resolve_device

        torch_device = resolve_device(device)
        check_gpu_memory(preset, torch.cuda.get_device_properties(torch_device).total_memory,
                         torch.cuda.get_device_name(torch_device))
    report(progress, 0.0, "loading the MAISI bundle")
    networks = bundle if isinstance(bundle, MaisiNetworks) else load_bundle(bundle, "cpu")
    networks.to(torch_device)
    classes = LabelMap(mapping.apply(labels.array).astype(np.int16), labels.ijk_to_ras, labels.metadata, labels.table)
    grid = preset_grid(labels, preset)
    on_grid = resample_like(classes, grid, nearest=True, default=0).array  # [k, j, i]
    indices = torch.from_numpy(np.ascontiguousarray(on_grid.transpose(2, 1, 0)).astype(np.int64))[None, None]
    cond = binarize(indices.to(torch_device))
    latent_shape = (1, networks.latent_channels, *(s // LATENT_FACTOR for s in preset.output_size))
    generator = torch.Generator().manual_seed(int(seed))
    latent = torch.randn(latent_shape, generator=generator).to(torch_device)
    scheduler = networks.scheduler
    scheduler.set_timesteps(int(steps), device=torch_device, input_img_size_numel=int(np.prod(latent_shape[2:])))
    times = [float(t) for t in scheduler.timesteps] + [0.0]
    spacing = torch.tensor([list(preset.spacing_mm)], dtype=torch.float32, device=torch_device) * 1e2
    modality = torch.full((1,), CT_MODALITY, dtype=torch.long, device=torch_device)
    with torch.no_grad():
        for index, (t, next_t) in enumerate(zip(times[:-1], times[1:])):
            check_cancel(cancel)
            timestep = torch.full((1,), t, device=torch_device)
            down, mid = networks.controlnet(latent, timestep, controlnet_cond=cond, class_labels=modality)
            velocity = networks.diffusion_unet(latent, timestep, class_labels=modality, spacing_tensor=spacing,
                                               down_block_additional_residuals=down, mid_block_additional_residual=mid)
            latent, _ = scheduler.step(velocity, t, latent, next_t)
            report(progress, 0.05 + 0.75 * (index + 1) / steps, f"MAISI step {index + 1}/{steps}")
        report(progress, 0.8, "decoding")
        window = tuple(max(1, w // LATENT_FACTOR) for w in preset.decoder_window)
        inferer = SlidingWindowInferer(roi_size=window, sw_batch_size=1, overlap=preset.decoder_overlap, mode="gaussian",
                                       sw_device=torch_device, device=torch.device("cpu"))
        image = inferer(latent / networks.scale_factor, networks.autoencoder.decode_stage_2_outputs)
    unit = image[0, 0].float().clamp(0, 1).cpu().numpy()
    hu = (HU_RANGE[0] + unit * (HU_RANGE[1] - HU_RANGE[0])).transpose(2, 1, 0).astype(np.float32)  # -> [k, j, i]
    generated = Volume(hu, grid.ijk_to_ras)
    back = resample_like(generated, Volume(labels.array.astype(np.float32), labels.ijk_to_ras), default=-1024.0)
    metadata = VolumeMetadata(modality="CT", units="HU", source=f"generated by MAISI {networks.version}",
                              extra={"model": "maisi-ct", "family": "maisi", "preset": preset.name, "steps": int(steps),
                                     "seed": int(seed), "class_mapping": mapping.summary(),
                                     "unknown": dict(mapping.unknown), "synthetic": True})
    report(progress, 1.0, "done")
    return Volume(back.array.astype(np.float32), labels.ijk_to_ras.copy(), metadata)
