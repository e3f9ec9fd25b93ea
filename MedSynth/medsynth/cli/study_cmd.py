"""``medsynth study create|serve|analyse``: a blinded "spot the fake" reader study."""

from __future__ import annotations

import argparse

from medsynth.jobs.progress_bar import progress_bar
from medsynth.parameters import from_dict
from medsynth.study import StudyParameters, analyse_study, create_study, serve_study
from medsynth.study.parameters import WINDOW_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("study", help="build, serve and analyse a real-or-synthetic reader study")
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    defaults = StudyParameters()

    create = actions.add_parser("create", help="a shuffled, blinded study from real and synthetic images")
    create.add_argument("--real", required=True, help="folder of real images (PNG, JPEG, TIFF, BMP, DICOM)")
    create.add_argument("--synthetic", required=True, help="folder of synthetic images")
    create.add_argument("--out", required=True, help="new study folder")
    create.add_argument("--seed", type=int, default=defaults.seed, help="shuffle seed (default: 0)")
    create.add_argument("--size", type=int, default=defaults.image_size,
                        help=f"longest side of every image in pixels (default: {defaults.image_size})")
    create.add_argument("--window", choices=WINDOW_CHOICES, default=defaults.window,
                        help="DICOM window: the file's own tags (dicom), percentiles (auto), a CT preset or custom")
    create.add_argument("--window-level", type=float, default=defaults.window_level, help="custom level")
    create.add_argument("--window-width", type=float, default=defaults.window_width, help="custom width")
    create.add_argument("--title", default=defaults.title, help="title shown to readers")
    create.add_argument("--quiet", action="store_true", help="no progress bar")
    create.set_defaults(func=run_create)

    serve = actions.add_parser("serve", help="serve the study as a local web page (answers saved as they come)")
    serve.add_argument("study", help="study folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.set_defaults(func=run_serve)

    analyse = actions.add_parser("analyse", help="accuracy, sensitivity, specificity, kappa, reasons -> report")
    analyse.add_argument("study", help="study folder")
    analyse.add_argument("--out", default=None, help="report folder (default: STUDY/report)")
    analyse.set_defaults(func=run_analyse)


def run_create(args: argparse.Namespace) -> int:
    parameters = from_dict(StudyParameters, {
        "seed": args.seed, "image_size": args.size, "window": args.window, "window_level": args.window_level,
        "window_width": args.window_width, "title": args.title}, "study create")
    with progress_bar("study create", enabled=not args.quiet) as progress:
        study = create_study(args.real, args.synthetic, args.out, parameters, progress=progress)
    print(f"Study of {len(study.image_ids)} images in {study.folder}; serve it with: medsynth study serve {study.folder}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    serve_study(args.study, args.host, args.port)
    return 0


def run_analyse(args: argparse.Namespace) -> int:
    print(f"Report: {analyse_study(args.study, args.out)}")
    return 0
