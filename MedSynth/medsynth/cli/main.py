"""Entry point of ``medsynth <command>``.

Each command lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. Library errors are printed as one clear
line and give exit code 2; a cancel (Ctrl-C) gives 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from medsynth import __version__
from medsynth.errors import CancelledError, MedSynthError

#: Command modules, in the order ``medsynth --help`` lists them.
COMMAND_MODULES = [
    "medsynth.cli.data_cmd",
    "medsynth.cli.info_cmd",
    "medsynth.cli.convert_cmd",
    "medsynth.cli.demo_cmd",
    "medsynth.cli.tumor_cmd",
    "medsynth.cli.dataset_cmd",
    "medsynth.cli.train_cmd",
    "medsynth.cli.drr_cmd",
    "medsynth.cli.generate_cmd",
    "medsynth.cli.evaluate_cmd",
    "medsynth.cli.study_cmd",
    "medsynth.cli.web_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsynth",
        description="Synthetic medical imaging: DRRs, liver tumors, label-map-to-image models.",
    )
    parser.add_argument("--version", action="version", version=f"medsynth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except CancelledError as error:
        print(f"medsynth: {error}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("medsynth: interrupted; finished outputs are kept, run the same command again to resume.", file=sys.stderr)
        return 130
    except MedSynthError as error:
        print(f"medsynth: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
