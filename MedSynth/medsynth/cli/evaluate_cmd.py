"""``medsynth evaluate``: metrics of a folder of generated images against a folder of real ones.

    medsynth evaluate --generated GEN/ --real REAL/ [--window -1000,1000] [--no-fid] [--out report.json]

Images pair up by file name (PNG, NIfTI, NRRD or .npy; 3D volumes count as their axial slices).
Paired metrics (PSNR, SSIM, MS-SSIM, RMSE, MAE) need both folders to hold the same names and
sizes; the ImageNet-Inception FID and the CT-feature FID need only two images per side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from medsynth.errors import InputError

IMAGE_SUFFIXES = (".png", ".nii", ".nii.gz", ".nrrd", ".mha", ".npy")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="PSNR/SSIM/MS-SSIM/RMSE/MAE/FID of generated vs real images",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", required=True, help="folder of generated images")
    parser.add_argument("--real", required=True, help="folder of real images")
    parser.add_argument("--window", help="intensity range 'low,high' in the images' units (default: real percentiles)")
    parser.add_argument("--no-fid", action="store_true", help="skip the FIDs (the Inception network is slow on CPU)")
    parser.add_argument("--out", help="write the report as JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    window = None
    if args.window:
        try:
            low, high = (float(v) for v in args.window.split(","))
        except ValueError:
            raise InputError(f"--window {args.window!r}: give 'low,high', e.g. -1000,1000.") from None
        window = (low, high)
    report = evaluate_folders(args.generated, args.real, window, fid=not args.no_fid)
    text = json.dumps(report, indent=2)
    if args.out:
        from medsynth.io.atomic import atomic_output

        with atomic_output(args.out) as temp:
            temp.write_text(text + "\n")
    print(text)
    return 0


def read_images(folder: str | Path) -> dict[str, np.ndarray]:
    """File name (without suffix) -> 2D image, or name#k -> axial slice k of a volume."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder. Give a folder of images.")
    images = {}
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        if not name.endswith(IMAGE_SUFFIXES) or name.startswith("."):
            continue
        stem = path.name.split(".")[0]
        if name.endswith(".png"):
            from PIL import Image

            images[stem] = np.asarray(Image.open(path).convert("L"), np.float32)
        elif name.endswith(".npy"):
            array = np.load(path).astype(np.float32)
            for index, plane in enumerate(array.reshape(-1, *array.shape[-2:])):
                images[stem if array.ndim == 2 else f"{stem}#{index}"] = plane
        else:
            from medsynth.io import read_volume

            volume = read_volume(path)
            for index, plane in enumerate(volume.array.astype(np.float32)):
                images[stem if volume.array.shape[0] == 1 else f"{stem}#{index}"] = plane
    if not images:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return images


def evaluate_folders(generated: str | Path, real: str | Path, window: tuple[float, float] | None = None,
                     fid: bool = True) -> dict:
    """Paired and distributional metrics of two image folders (see the module's docstring)."""
    from medsynth.generative import metrics

    fake = read_images(generated)
    true = read_images(real)
    report: dict = {"generated": str(generated), "real": str(real), "generated_images": len(fake),
                    "real_images": len(true)}
    shared = sorted(set(fake) & set(true))
    if window is None:
        window = metrics.default_range(np.concatenate([image.ravel() for image in true.values()]))
    report["window"] = list(window)
    if shared and all(fake[n].shape == true[n].shape for n in shared) and len({fake[n].shape for n in shared}) == 1:
        report["paired"] = metrics.image_metrics([fake[n] for n in shared], [true[n] for n in shared], window)
        report["paired"]["pairs"] = len(shared)
    else:
        report["paired"] = None
        report["paired_note"] = "no equally sized images with the same names in both folders: paired metrics skipped"
    if fid:
        if len(fake) < 2 or len(true) < 2:
            raise InputError("FID needs at least 2 generated and 2 real images; add images or pass --no-fid.")
        report[metrics.FID_LABEL] = metrics.frechet_distance(
            metrics.inception_features(_resized(fake.values()), window),
            metrics.inception_features(_resized(true.values()), window))
    return report


def _resized(images) -> list[np.ndarray]:
    """Images of mixed sizes -> one size (the Inception network resizes to 299 anyway)."""
    from scipy import ndimage

    images = list(images)
    size = max(max(image.shape) for image in images)
    return [image if image.shape == (size, size) else
            ndimage.zoom(image, (size / image.shape[0], size / image.shape[1]), order=1) for image in images]
