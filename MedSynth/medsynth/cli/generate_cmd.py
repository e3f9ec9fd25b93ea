"""``medsynth generate``: run a registered model on a label map (or a DRR), write NIfTI + PNG.

    medsynth generate --list
    medsynth generate --register CHECKPOINT --id my-gan
    medsynth generate --model ID --labels L.nii.gz --table structures.csv --slices 40..80 --samples 3 --out DIR
    medsynth generate --model ID --image DRR.nii.gz --out DIR        (image-to-image: DRR -> bone)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from medsynth.jobs.progress_bar import progress_bar
from medsynth.errors import InputError
from medsynth.generative.pictures import save_generated_picture
from medsynth.io.label_files import read_labels


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="generate CT from a label map, or a bone image from a DRR",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the registered models and exit")
    parser.add_argument("--register", metavar="CHECKPOINT", help="add your checkpoint (from medsynth train)")
    parser.add_argument("--id", help="model id for --register")
    parser.add_argument("--task", help="task for --register (default from the model family)")
    parser.add_argument("--licence", default="user's own", help="licence for --register")
    parser.add_argument("--model", help="registered model id (see --list)")
    parser.add_argument("--labels", help="label map (NIfTI/NRRD; .seg.nrrd with segment names)")
    parser.add_argument("--table", help="label names: TotalSegmentator structures.csv or a Slicer color table")
    parser.add_argument("--image", help="2D image to translate (image-to-image models, e.g. a DRR)")
    parser.add_argument("--slices", default="all", help="'all', 'i..j' (inclusive) or 'i,j,k' (axial indices)")
    parser.add_argument("--samples", type=int, default=1, help="how many different images to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="diffusion sampling steps (DDIM)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (diffusion)")
    parser.add_argument("--map", action="append", default=[], metavar="NAME=CLASS",
                        help="map a label name to a model class (repeatable)")
    parser.add_argument("--unknown", default="error", help="'error' or a model class to paint unknown labels as")
    parser.add_argument("--body", default="auto", help="'auto' (from the structures), 'none' or a CT to threshold")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--maisi-bundle", help="MAISI: your downloaded maisi_ct_generative folder "
                                               "(default $MEDSYNTH_MAISI_BUNDLE)")
    parser.add_argument("--maisi-preset", default="16g_256x256x128",
                        help="MAISI: size/spacing preset for your GPU (16g_256x256x128, 16g_512x512x128, 24g_512x512x512, "
                             "80g_512x512x512)")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medsynth.generative import registry

    if args.list:
        for entry in registry.list_models():
            origin = "user" if entry.user else "shipped"
            classes = ", ".join(entry.classes[:8]) + (f", ... ({len(entry.classes)})" if len(entry.classes) > 8 else "")
            print(f"{entry.id:28s} [{origin}] {registry.TASKS.get(entry.task, entry.task)} ({entry.family}); "
                  f"classes: {classes or '-'}; licence: {entry.licence}; hardware: {entry.hardware}")
        return 0
    if args.register:
        if not args.id:
            raise InputError("--register needs --id NAME for the model.")
        entry = registry.register_checkpoint(args.register, args.id, args.task, licence=args.licence)
        print(f"Registered {entry.id}: {entry.describe()}")
        return 0
    if not args.model or not args.out:
        raise InputError("Give --model ID and --out DIR (or --list / --register).")
    if bool(args.labels) == bool(args.image):
        raise InputError("Give exactly one input: --labels (label map -> image) or --image (image -> image).")
    out = Path(args.out)
    if args.image:
        return _translate(args, out)
    return _generate(args, out)


def _generate(args: argparse.Namespace, out: Path) -> int:
    from medsynth.generative.class_mapping import parse_mapping
    from medsynth.generative.inference import generate
    from medsynth.io import read_volume, write_volume

    labels = read_labels(args.labels, args.table)
    body: str | np.ndarray = args.body
    if args.body not in ("auto", "none"):
        ct = read_volume(args.body, modality="CT")
        ct.require_same_grid(labels)
        body = ct.array > -500
    with progress_bar(f"generate {args.model}", enabled=not args.quiet) as progress:
        volumes = generate(labels, args.model, slices=args.slices, samples=args.samples, seed=args.seed,
                           steps=args.steps, guidance=args.guidance, class_mapping=parse_mapping(args.map),
                           unknown=args.unknown, body=body, device=args.device, progress=progress,
                           maisi_bundle=args.maisi_bundle, maisi_preset=args.maisi_preset)
    written = []
    for index, volume in enumerate(volumes):
        path = write_volume(volume, out / f"sample_{index:02d}.nii.gz")
        written.append(path)
        written.append(save_generated_picture(volume, labels, out / f"sample_{index:02d}.png"))
    summary = {"model": args.model, "labels": str(args.labels), "slices": args.slices, "samples": args.samples,
               "seed": args.seed, "steps": args.steps, "guidance": args.guidance,
               "class_mapping": volumes[0].metadata.extra["class_mapping"],
               "unknown": volumes[0].metadata.extra["unknown"], "files": [p.name for p in written]}
    _write_json(out / "generation.json", summary)
    for path in written:
        print(path)
    return 0


def _translate(args: argparse.Namespace, out: Path) -> int:
    from medsynth.generative.inference import translate
    from medsynth.io import read_volume, write_volume
    from medsynth.pictures import montage, normalize, save_picture, slice_to_image

    image = read_volume(args.image)
    with progress_bar(f"translate {args.model}", enabled=not args.quiet) as progress:
        result = translate(image, args.model, device=args.device, progress=progress)
    path = write_volume(result, out / "translated.nii.gz")
    spacing = (float(image.spacing[1]), float(image.spacing[0]))
    picture = montage([slice_to_image(normalize(image.array[0]), spacing),
                       slice_to_image(normalize(result.array[0]), spacing)], ["input", f"{args.model}"])
    save_picture(picture, out / "translated.png")
    print(path)
    return 0


def _write_json(path: Path, data: dict) -> None:
    from medsynth.io.atomic import atomic_output

    with atomic_output(path) as temp:
        temp.write_text(json.dumps(data, indent=2, default=str) + "\n")
