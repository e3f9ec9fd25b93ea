"""``medsynth web [CT ...] [--labels L] [--sample lidc]``: MedSynth in the browser (trame-slicer)."""

from __future__ import annotations

import argparse
import importlib.util

from medsynth.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    from medsynth.module_logic.cases import SAMPLE_CASES

    parser = subparsers.add_parser("web", help="open the web app: DRR, tumor and semantic panels on Slicer's views")
    parser.add_argument("ct", nargs="*", help="CTs to open (DICOM folder, NIfTI, NRRD); the first is shown")
    parser.add_argument("--labels", help="label map of the first CT (segments for tumors and models)")
    parser.add_argument("--sample", choices=sorted(SAMPLE_CASES), help="open a fetched sample scan")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument("--out", default="medsynth_web_output", help="folder for exported DRRs")
    parser.add_argument("--open-browser", action="store_true", help="open the page in the default browser")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("trame_slicer") is None:
        raise InputError("The web app needs trame-slicer: pip install 'medsynth[web]' (slicer-core, vtk, trame).")
    from medsynth.web.app import serve

    serve(args.ct, labels_path=args.labels, sample=args.sample, host=args.host, port=args.port,
          output_dir=args.out, open_browser=args.open_browser)
    return 0
