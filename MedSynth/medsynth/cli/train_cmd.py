"""``medsynth train CONFIG.yaml [--resume]``: train a label-map or image-to-image model."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a SPADE GAN, semantic diffusion, pix2pix or CycleGAN model from a YAML config",
        description="Train a model from a YAML config (see medsynth.generative.config). Writes checkpoints, "
                    "best.pt (by the validation metric), metrics.jsonl, curves.png and sample pictures.")
    parser.add_argument("config", help="training config (YAML)")
    parser.add_argument("--resume", action="store_true", help="continue exactly from the output folder's last.pt")
    parser.add_argument("--device", help="override train.device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--threads", type=int, help="override train.threads (CPU threads)")
    parser.add_argument("--steps", type=int, help="override train.steps (e.g. to extend a run with --resume)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medsynth.jobs.progress_bar import progress_bar
    from medsynth.generative.config import load_config, normalize_config
    from medsynth.generative.training import train

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
