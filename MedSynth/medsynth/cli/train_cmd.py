"""``medsynth train CONFIG.yaml [--resume]``: train a label-map or image-to-image model."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a SPADE GAN, semantic diffusion, pix2pix or CycleGAN model from a YAML config",
        description="Train a model from a YAML config (see medsynth.generative.config). Writes checkpoints, "
                    "best.pt (by the validation metric), metrics.jsonl, curves.png and sample pictures.")
    parser.add_argument("config", nargs="?", help="training config (YAML); not with --sim-to-real")
    parser.add_argument("--resume", action="store_true", help="continue exactly from the output folder's last.pt")
    parser.add_argument("--device", help="override train.device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--threads", type=int, help="override train.threads (CPU threads)")
    parser.add_argument("--steps", type=int, help="override train.steps (e.g. to extend a run with --resume)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--sim-to-real", metavar="REAL_FOLDER",
                        help="run the CycleGAN simulated -> real recipe against your folder of DICOM/PNG radiographs")
    parser.add_argument("--ct", help="--sim-to-real: the CT (file, DICOM folder or fetched dataset) the DRRs come from")
    parser.add_argument("--out", help="--sim-to-real: output folder (simulated set, unpaired set, run)")
    parser.add_argument("--register", metavar="ID", help="--sim-to-real: register the trained model under this id")
    parser.add_argument("--recipe", help="--sim-to-real: your recipe YAML (default: the shipped "
                                         "medsynth/generative/recipes/cyclegan_sim2real.yaml)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medsynth.jobs.progress_bar import progress_bar
    from medsynth.generative.config import load_config, normalize_config
    from medsynth.generative.training import train

    if args.sim_to_real:
        return _sim_to_real(args)
    if not args.config:
        from medsynth.errors import InputError

        raise InputError("Give a training config (YAML), or --sim-to-real REAL_FOLDER --out RUN for the CycleGAN recipe.")
    config = load_config(args.config)
    for key, value in (("device", args.device), ("threads", args.threads), ("steps", args.steps)):
        if value is not None:
            config["train"][key] = value
    config = normalize_config(config)
    with progress_bar(f"train {config['family']}", enabled=not args.quiet) as progress:
        result = train(config, resume=args.resume, progress=progress)
    print(f"Trained {config['family']} to step {result.steps} ({result.steps_per_second:.2f} steps/s) in {result.output}")
    if result.best:
        print(f"Best checkpoint: {result.best_path} ({json.dumps(result.best)})")
    print(f"Final checkpoint: {result.final_path}; curves: {result.output / 'curves.png'}")
    return 0


def _sim_to_real(args: argparse.Namespace) -> int:
    from medsynth.errors import InputError
    from medsynth.generative.sim2real import load_recipe, train_sim_to_real
    from medsynth.jobs.progress_bar import progress_bar

    if not args.out:
        raise InputError("--sim-to-real needs --out: the folder for the simulated set, the unpaired set and the run.")
    train = {k: v for k, v in (("device", args.device), ("threads", args.threads), ("steps", args.steps)) if v is not None}
    recipe = load_recipe(path=args.recipe)
    recipe = load_recipe({"train": {**recipe["train"], **train}, "simulated": {**recipe["simulated"],
                                                                               **({"ct": args.ct} if args.ct else {})},
                          "unpaired": recipe["unpaired"], "model": recipe["model"]})
    with progress_bar("sim-to-real CycleGAN", enabled=not args.quiet) as progress:
        summary = train_sim_to_real(args.sim_to_real, args.out, recipe, register_as=args.register, progress=progress)
    print(json.dumps(summary, indent=2))
    return 0
