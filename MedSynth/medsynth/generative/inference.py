"""Run the registered models: label map -> CT volume (slice by slice), radiograph -> bone image.

``generate`` works on the label map's own grid: the label map is permuted into the display
orientation (exact), each axial slice resampled onto the model's pixel grid (nearest neighbour),
generated, mapped back to HU with the model's window and resampled back onto the slice's own
pixels (linear). The noise of neighbouring slices is kept consistent: independent Gaussian noise
is drawn at anchor planes every ``noise_correlation_mm`` along the patient axis and blended
between anchors with cos/sin weights, which keeps its variance at exactly 1 while varying
smoothly, so the volume does not flicker from slice to slice, yet distant slices are independent.
Different samples use different seeds: K different images of the same anatomy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from medsynth.errors import InputError
from medsynth.generative.class_mapping import ClassMapping, map_classes, named_labels
from medsynth.generative.slice_grid import SliceGrid, grid_for_volume, to_display_orientation
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report
from medsynth.volume import LabelMap, Volume, VolumeMetadata, reorient_like

_MODELS: dict = {}
BODY_CLASS = "soft_tissue"
#: 2.5D models learnt neighbours 2-3 mm away (the training CTs' slice spacing): pick those at about this distance.
CONTEXT_SPACING_MM = 2.5


def load(model_id: str, device: str = "cpu"):
    """(registry entry, model) for ``model_id``, kept in memory for the next call."""
    from medsynth.generative.registry import get_model, load_registered_model

    entry = get_model(model_id)
    key = (model_id, entry.sha256, device)
    if key not in _MODELS:
        _MODELS.clear()  # keep one model in memory
        _MODELS[key] = load_registered_model(model_id, device)
    return _MODELS[key]


# --- slices and classes ---------------------------------------------------------------------------
def parse_slices(slices, count: int) -> list[int]:
    """'all', 'i..j' (inclusive), 'i', a range or a list of indices -> sorted valid indices."""
    if slices is None or (isinstance(slices, str) and slices.strip().lower() == "all"):
        return list(range(count))
    if isinstance(slices, str):
        text = slices.strip()
        try:
            if ".." in text:
                start, stop = (int(part) for part in text.split("..", 1))
                indices = list(range(start, stop + 1))
            else:
                indices = [int(part) for part in text.split(",")]
        except ValueError:
            raise InputError(f"Slices {slices!r}: use 'all', 'i..j' (inclusive) or 'i,j,k'.") from None
    elif isinstance(slices, int):
        indices = [slices]
    else:
        indices = [int(index) for index in slices]
    if not indices:
        raise InputError(f"Slices {slices!r} select no slice.")
    bad = [index for index in indices if index < 0 or index >= count]
    if bad:
        raise InputError(f"Slice indices {bad[:5]} are outside the label map's 0..{count - 1} axial slices.")
    return sorted(set(indices))


def body_from_labels(classes: np.ndarray, spacing_rc: tuple[float, float], margin_mm: float = 10.0) -> np.ndarray:
    """Estimate the body outline of each axial slice [K, rows, cols] from its labelled structures.

    The models learnt "soft tissue" for body voxels outside any structure; a label map without a
    body segment gets the structures' outline closed over 2 x ``margin_mm`` gaps, filled and
    grown by ``margin_mm`` (fat, skin). Distance transforms keep it fast on 512 x 512 slices.
    """
    body = np.zeros(classes.shape, bool)
    sampling = tuple(float(s) for s in spacing_rc)
    for index, plane in enumerate(classes > 0):
        if not plane.any():
            continue
        grown = ndimage.distance_transform_edt(~plane, sampling=sampling) <= 2 * margin_mm
        filled = ndimage.binary_fill_holes(grown)
        closed = ndimage.distance_transform_edt(filled, sampling=sampling) > 2 * margin_mm
        core = ndimage.binary_fill_holes(closed | plane)
        body[index] = ndimage.distance_transform_edt(~core, sampling=sampling) <= margin_mm
    return body


# --- noise consistent between slices --------------------------------------------------------------
def slice_noise(shape_one: tuple[int, ...], positions_mm: np.ndarray, correlation_mm: float, seed: int):
    """Unit-variance noise per slice position, smooth along the patient axis (a torch tensor).

    Anchors of independent noise sit every ``correlation_mm``; a slice between anchors a and b at
    fraction w gets cos(pi w / 2) n_a + sin(pi w / 2) n_b. Anchors are numbered from position 0,
    so a slice's noise does not depend on which other slices are generated.
    """
    import torch

    if correlation_mm <= 0:
        raise InputError(f"The noise correlation length must be positive (mm), got {correlation_mm}.")
    coordinate = np.asarray(positions_mm, dtype=np.float64) / correlation_mm
    if coordinate.min() < 0:
        raise InputError("Slice positions must be non-negative (mm from the first slice).")
    count = int(math.floor(coordinate.max())) + 2  # anchors 0..count-1, whatever slices are asked for
    # one generator per anchor: torch's CPU randn draws differently for different tensor sizes
    anchors = torch.stack([
        torch.randn(tuple(shape_one[1:]), generator=torch.Generator().manual_seed(sample_seed(seed, anchor)),
                    dtype=torch.float32)
        for anchor in range(count)])
    index = np.floor(coordinate).astype(int)
    weight = torch.from_numpy((coordinate - np.floor(coordinate)).astype(np.float32))
    shape = (-1,) + (1,) * (len(shape_one) - 1)
    cos = torch.cos(weight * math.pi / 2).reshape(shape)
    sin = torch.sin(weight * math.pi / 2).reshape(shape)
    return cos * anchors[index] + sin * anchors[index + 1]


def sample_seed(seed: int, sample: int) -> int:
    """Seed of sample ``sample`` (distinct, reproducible)."""
    return int(np.random.SeedSequence([int(seed), int(sample)]).generate_state(1)[0])


# --- label map -> CT ------------------------------------------------------------------------------
@dataclass
class GenerationPlan:
    """What ``generate`` will do; built first so errors come before any slow work."""

    mapping: ClassMapping
    oriented: Volume  # class indices in display orientation
    oriented_slices: list[int]
    input_axis: int  # IJK axis of the label map along which slices are counted
    input_slices: list[int]
    grid: SliceGrid
    context: list[list[int]] | None = None  # per generated slice, its label slices (neighbours; centre in the middle)


def _superior_axis(volume: Volume) -> int:
    return int(np.argmax(np.abs(volume.directions[2, :])))


def plan_generation(labels: LabelMap, model, slices="all", class_mapping: Mapping[str, str] | None = None,
                    unknown: str = "error", body: str | np.ndarray = "auto") -> GenerationPlan:
    """Check the inputs and work out the class map, orientation, slices and model grid."""
    if not isinstance(labels, LabelMap):
        raise InputError("generate needs a LabelMap (integer labels with names). Read it with medsynth.io.read_labelmap.")
    mapping = map_classes(named_labels(labels), model.class_names, class_mapping, unknown)
    classes = mapping.apply(labels.array).astype(np.int16)
    body_index = next((i for i, n in enumerate(model.class_names) if n.lower() == BODY_CLASS), None)
    oriented = to_display_orientation(Volume(classes, labels.ijk_to_ras))
    si, sj, _ = oriented.spacing
    axis = _superior_axis(labels)
    input_slices = parse_slices(slices, labels.shape_ijk[axis])
    voxel = np.zeros((len(input_slices), 3))
    voxel[:, axis] = input_slices
    oriented_k = np.rint(oriented.ras_to_ijk_points(labels.ijk_to_ras_points(voxel))[:, 2]).astype(int).tolist()
    # one grid for the whole volume's structures (not the chosen slices, not the body outline):
    # a slice comes out the same whatever else is asked for
    structures = oriented.array
    context = context_slices(oriented_k, oriented.array.shape[0], float(oriented.spacing[2]),
                             int(getattr(model, "context_slices", 0) or 0))
    needed = sorted({k for row in context for k in row}) if context else oriented_k
    if isinstance(body, np.ndarray):
        if body.shape != labels.array.shape:
            raise InputError(f"The body mask's shape {body.shape} differs from the label map's {labels.array.shape}.")
        mask = to_display_orientation(Volume(body.astype(np.uint8), labels.ijk_to_ras)).array[needed] > 0
    elif body == "auto":
        mask = body_from_labels(oriented.array[needed], (sj, si))
    elif body == "none":
        mask = None
    else:
        raise InputError(f"body must be 'auto', 'none' or a mask array, got {body!r}.")
    if mask is not None and body_index is not None:
        array = oriented.array.copy()
        chosen = array[needed]
        chosen[(chosen == 0) & mask] = body_index
        array[needed] = chosen
        oriented = oriented.with_array(array)
    size = int(model.image_size)
    pixel = model.pixel_spacing_mm
    rows, cols = oriented.array.shape[1:]
    if pixel is None:  # trained on whole fields of view
        pixel = max(rows * sj, cols * si) / size
    grid = grid_for_volume(structures, (sj, si), (size, size), (pixel, pixel))
    return GenerationPlan(mapping, oriented, oriented_k, axis, input_slices, grid, context)


def context_slices(slices: Sequence[int], count: int, spacing_mm: float, per_side: int) -> list[list[int]] | None:
    """For each slice k, the label slices a 2.5D model sees: k - n d .. k + n d (clamped), d ~ 2.5 mm / spacing.

    None for a model without context (one label slice per image).
    """
    if per_side <= 0:
        return None
    stride = max(1, int(round(CONTEXT_SPACING_MM / max(spacing_mm, 1e-6))))
    offsets = np.arange(-per_side, per_side + 1) * stride
    return [np.clip(int(k) + offsets, 0, count - 1).tolist() for k in slices]


def generate(
    labels: LabelMap,
    model_id: str,
    slices="all",
    samples: int = 1,
    seed: int = 0,
    steps: int | None = None,
    guidance: float | None = None,
    class_mapping: Mapping[str, str] | None = None,
    unknown: str = "error",
    body: str | np.ndarray = "auto",
    noise_correlation_mm: float = 40.0,
    batch_size: int = 8,
    device: str = "cpu",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    first_sample: int = 0,
    maisi_bundle: str | None = None,
    maisi_preset: str = "16g_256x256x128",
) -> list[Volume]:
    """Generate ``samples`` CT volumes (HU) from a label map with a registered model.

    Returns one Volume per sample on the label map's grid, cropped to the selected slices along
    its superior-inferior axis (``slices``: "all", "i..j" inclusive, or indices); voxels the
    model's field of view does not reach hold -1024 HU. ``class_mapping`` (segment name -> model
    class) overrides name matching; ``unknown`` is "error" or a class to paint unknown labels as;
    ``body`` is "auto" (outline estimated from the structures), "none" or a body mask on the
    label map's grid (e.g. the CT above -500 HU). ``first_sample`` skips ahead: samples k..k+n-1
    of a seed are the same whether made in one call or several (batches make one per item).
    MAISI (``maisi-ct``) generates whole volumes from the user's bundle (``maisi_bundle``, default
    $MEDSYNTH_MAISI_BUNDLE) at a memory preset (``maisi_preset``, see maisi.presets).
    """
    import torch

    from medsynth.generative.registry import get_model

    if int(samples) < 1:
        raise InputError(f"samples must be at least 1, got {samples}.")
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    if get_model(model_id).family == "maisi":
        return _generate_maisi(labels, slices, samples, seed, steps, class_mapping, unknown, device, progress, cancel,
                               first_sample, maisi_bundle, maisi_preset)
    report(progress, 0.0, f"loading {model_id}")
    entry, model = load(model_id, device)
    if not hasattr(model, "generate") or not getattr(model, "class_names", None):
        raise InputError(f"{model_id!r} is a {entry.family} model ({entry.task}), not a label-map model. "
                         "Use translate() for image-to-image models.")
    plan = plan_generation(labels, model, slices, class_mapping, unknown, body)
    check_cancel(cancel)
    model_labels = plan.grid.to_model(plan.oriented.array[plan.oriented_slices], order=0, fill=0).astype(np.int64)
    if plan.context is not None:  # [N, S, H, W]: each slice with its neighbours
        flat = [k for row in plan.context for k in row]
        stacked = plan.grid.to_model(plan.oriented.array[flat], order=0, fill=0).astype(np.int64)
        model_labels = stacked.reshape(len(plan.context), len(plan.context[0]), *stacked.shape[1:])
    positions = np.asarray(plan.oriented_slices, float) * plan.oriented.spacing[2]
    size = model_labels.shape[-2:]
    air = float(max(model.window.low, -1024.0))
    total = int(samples) * len(plan.oriented_slices)
    done = 0
    outputs = []
    for sample in range(int(first_sample), int(first_sample) + int(samples)):
        sample_key = sample_seed(seed, sample)
        noise = slice_noise(model.noise_shape(1, *size), positions, noise_correlation_mm, sample_key)
        images = np.empty((len(plan.oriented_slices), *size), np.float32)
        for start in range(0, len(plan.oriented_slices), int(batch_size)):
            check_cancel(cancel)
            stop = min(start + int(batch_size), len(plan.oriented_slices))
            generator = torch.Generator(device=model.device).manual_seed(sample_key + start)
            with torch.no_grad():
                out = model.generate(torch.from_numpy(model_labels[start:stop]), generator=generator,
                                     noise=noise[start:stop], steps=steps, guidance=guidance)
            images[start:stop] = model.window.from_unit(out[:, 0].float().cpu()).numpy()
            done += stop - start
            report(progress, 0.05 + 0.9 * done / total, f"sample {sample + 1}: slice {stop}/{len(images)}")
        outputs.append(_assemble(images, plan, labels, air, entry, sample, sample_key))
    report(progress, 1.0, "done")
    return outputs


def _generate_maisi(labels, slices, samples, seed, steps, class_mapping, unknown, device, progress, cancel,
                    first_sample, bundle, preset) -> list[Volume]:
    """MAISI's whole volumes, one per sample (seeded like the 2D models' samples)."""
    from medsynth.generative.maisi.bundle import load_bundle
    from medsynth.generative.maisi.labels import map_to_maisi
    from medsynth.generative.maisi.pipeline import generate_maisi
    from medsynth.jobs.progress import sub_progress

    if not (slices is None or (isinstance(slices, str) and slices.strip().lower() == "all")):
        raise InputError("MAISI generates whole volumes: use slices='all' (crop the label map first for a smaller one).")
    if not isinstance(labels, LabelMap):
        raise InputError("generate needs a LabelMap (integer labels with names). Read it with medsynth.io.read_labelmap.")
    map_to_maisi(named_labels(labels), class_mapping, unknown)  # name errors before the bundle loads
    networks = load_bundle(bundle, "cpu")
    outputs = []
    for number, sample in enumerate(range(int(first_sample), int(first_sample) + int(samples))):
        part = sub_progress(progress, number / int(samples), (number + 1) / int(samples))
        volume = generate_maisi(labels, networks, preset or "16g_256x256x128", steps=int(steps or 30),
                                seed=sample_seed(seed, sample), device=device, class_mapping=class_mapping,
                                unknown=unknown, progress=part, cancel=cancel)
        volume.metadata.extra["sample"] = sample
        outputs.append(volume)
    return outputs


def _assemble(images: np.ndarray, plan: GenerationPlan, labels: LabelMap, air: float, entry, sample: int,
              sample_key: int) -> Volume:
    """Generated model images -> a HU volume on the label map's grid, cropped to the slice range."""
    back = plan.grid.from_model(images, order=1, fill=air)
    full = np.full(plan.oriented.array.shape, air, np.float32)
    full[plan.oriented_slices] = back
    on_input = reorient_like(plan.oriented.with_array(full), Volume(labels.array, labels.ijk_to_ras))
    first, last = plan.input_slices[0], plan.input_slices[-1]
    index = [slice(None)] * 3
    index[2 - plan.input_axis] = slice(first, last + 1)
    array = np.ascontiguousarray(on_input.array[tuple(index)])
    ijk_to_ras = labels.ijk_to_ras.copy()
    ijk_to_ras[:3, 3] = labels.ijk_to_ras_points(np.eye(3)[plan.input_axis] * first)
    metadata = VolumeMetadata(
        modality="CT", units=entry.window.get("units", "HU"), source=f"generated by {entry.id}",
        extra={"model": entry.id, "family": entry.family, "sample": sample, "seed": int(sample_key),
               "slices": plan.input_slices, "slice_axis": plan.input_axis,
               "class_mapping": plan.mapping.summary(), "unknown": dict(plan.mapping.unknown),
               "coverage": plan.grid.coverage(), "synthetic": True},
    )
    return Volume(array, ijk_to_ras, metadata)


# --- radiograph -> bone ---------------------------------------------------------------------------
def translate(image: Volume, model_id: str, device: str = "cpu", progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> Volume:
    """Translate a 2D image (a single-energy DRR) with an image-to-image model (e.g. -> bone image).

    The image is resampled onto the model's grid (its pixel spacing, or its whole field of view
    when the model was trained that way), translated and resampled back onto its own pixels.
    """
    import torch

    report(progress, 0.0, f"loading {model_id}")
    entry, model = load(model_id, device)
    if not hasattr(model, "translate"):
        raise InputError(f"{model_id!r} is a {entry.family} model ({entry.task}); translate needs an "
                         "image-to-image model (pix2pix or CycleGAN).")
    array = np.asarray(image.array, np.float32)
    if array.shape[0] != 1:
        raise InputError(f"translate takes one 2D image (shape [1, rows, cols]); got {array.shape[0]} slices.")
    if not np.isfinite(array).all():
        raise InputError("The image holds NaN or infinite values; fix it first.")
    check_cancel(cancel)
    meta = getattr(model, "checkpoint_meta", {}) or {}
    from medsynth.generative.intensity import IntensityWindow

    in_window = IntensityWindow.from_dict(meta["input_window"]) if "input_window" in meta else model.window
    out_window = IntensityWindow.from_dict(meta["output_window"]) if "output_window" in meta else model.window
    spacing_rc = (float(image.spacing[1]), float(image.spacing[0]))
    size = int(model.image_size)
    pixel = model.pixel_spacing_mm or max(array.shape[1] * spacing_rc[0], array.shape[2] * spacing_rc[1]) / size
    grid = SliceGrid.centred(array.shape[1:], spacing_rc, (size, size), (pixel, pixel))
    if in_window.units == "normalized":  # CycleGAN: each image by its own percentiles, as its training set was
        low, high = (float(v) for v in np.percentile(array, (0.5, 99.5)))
        in_window = IntensityWindow(low, max(high, low + 1e-6), image.metadata.units or "image")
        out_window = in_window
    background = float(in_window.low)
    model_input = grid.to_model(array, order=1, fill=background)
    with torch.no_grad():
        x = in_window.to_unit(torch.from_numpy(model_input)[:, None])
        out = model.translate(x)
    translated = out_window.from_unit(out[:, 0].float().cpu()).numpy()
    report(progress, 0.9, "resampling back")
    back = grid.from_model(translated, order=1, fill=float(out_window.low))
    metadata = VolumeMetadata(modality=image.metadata.modality, units=out_window.units,
                              source=f"translated by {entry.id}",
                              extra={"model": entry.id, "task": entry.task, "synthetic": True})
    report(progress, 1.0, "done")
    return Volume(back.astype(np.float32), image.ijk_to_ras.copy(), metadata)
