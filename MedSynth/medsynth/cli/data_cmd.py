"""``medsynth data``: the bundled sample scans (fetch, list) and public collections (tcia, zenodo, idc).

Collections are downloaded resumably with checksums and converted to NIfTI on arrival; run the
same command again to resume. Nothing here needs a desktop app, so a cluster job can run it.
"""

from __future__ import annotations

import argparse
import json

from medsynth.data import DATASETS, cache_dir, fetch
from medsynth.data.download import is_fetched
from medsynth.errors import InputError
from medsynth.jobs.progress_bar import progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch sample scans, or download public collections (TCIA, Zenodo, IDC)")
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    fetch_parser = actions.add_parser("fetch", help="download and verify sample datasets (idempotent)")
    fetch_parser.add_argument("names", nargs="*", help=f"datasets (default: all): {', '.join(DATASETS)}")
    fetch_parser.add_argument("--force", action="store_true", help="fetch again even if present")
    fetch_parser.set_defaults(func=run_fetch)
    list_parser = actions.add_parser("list", help="list datasets and whether they are fetched")
    list_parser.set_defaults(func=run_list)
    _register_tcia(actions)
    _register_zenodo(actions)
    _register_idc(actions)


def _download_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (dicom/, nifti/, manifest.json)")
    parser.add_argument("--no-nifti", action="store_true", help="keep DICOM only, no NIfTI conversion")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _series_query(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("collection", help="collection name")
    parser.add_argument("--modality", default=None, help="only this modality (CT, MR, CR, DX, ...)")
    parser.add_argument("--patient", default=None, help="only this PatientID")


def _register_tcia(actions) -> None:
    tcia = actions.add_parser("tcia", help="TCIA collections through the public NBIA REST API")
    tcia.add_argument("--url", default=None, help="NBIA API base (default: TCIA's v1 API, or $MEDSYNTH_TCIA_URL)")
    steps = tcia.add_subparsers(dest="step", metavar="<step>", required=True)
    steps.add_parser("collections", help="list public collection names").set_defaults(func=run_tcia_collections)
    listing = steps.add_parser("series", help="list a collection's series")
    _series_query(listing)
    listing.set_defaults(func=run_tcia_series)
    get = steps.add_parser("download", help="download series (by collection or UID) and convert them to NIfTI")
    which = get.add_mutually_exclusive_group(required=True)
    which.add_argument("--collection", default=None, help="every series of this collection (see --limit)")
    which.add_argument("--series", nargs="+", default=None, metavar="UID", help="SeriesInstanceUIDs")
    get.add_argument("--modality", default=None, help="with --collection: only this modality")
    get.add_argument("--patient", default=None, help="with --collection: only this PatientID")
    get.add_argument("--limit", type=int, default=None, help="with --collection: at most this many series")
    _download_options(get)
    get.set_defaults(func=run_tcia_download)


def _register_zenodo(actions) -> None:
    zenodo = actions.add_parser("zenodo", help="Zenodo records (open or restricted, with an access token)")
    zenodo.add_argument("--url", default=None, help="Zenodo API base (default: https://zenodo.org/api)")
    zenodo.add_argument("--token", default=None, help="personal access token (default: $ZENODO_TOKEN)")
    steps = zenodo.add_subparsers(dest="step", metavar="<step>", required=True)
    files = steps.add_parser("files", help="list a record's files")
    files.add_argument("record", help="record id (the number in https://zenodo.org/records/<id>)")
    files.set_defaults(func=run_zenodo_files)
    get = steps.add_parser("download", help="download a record's files and convert volumes to NIfTI")
    get.add_argument("record", help="record id")
    get.add_argument("--files", nargs="+", default=None, metavar="GLOB", help="only files matching these globs")
    get.add_argument("--spacing", nargs=3, type=float, default=None, metavar=("I", "J", "K"),
                     help="voxel spacing in mm for NumPy volumes (RAD-ChestCT: 0.8 0.8 0.8)")
    _download_options(get)
    get.set_defaults(func=run_zenodo_download)


def _register_idc(actions) -> None:
    idc = actions.add_parser("idc", help="NCI Imaging Data Commons (IDC API v2 + its public bucket)")
    idc.add_argument("--url", default=None, help="IDC API base (default: IDC's v2 API, or $MEDSYNTH_IDC_URL)")
    idc.add_argument("--bucket-url", default=None, help="bucket address template with {bucket} "
                                                        "(default: https://{bucket}.s3.amazonaws.com)")
    steps = idc.add_subparsers(dest="step", metavar="<step>", required=True)
    steps.add_parser("collections", help="list collection ids").set_defaults(func=run_idc_collections)
    listing = steps.add_parser("series", help="list a collection's series")
    _series_query(listing)
    listing.set_defaults(func=run_idc_series)
    get = steps.add_parser("download", help="download a collection's series (or given UIDs) and convert to NIfTI")
    _series_query(get)
    get.add_argument("--series", nargs="+", default=None, metavar="UID", help="only these SeriesInstanceUIDs")
    get.add_argument("--limit", type=int, default=None, help="at most this many series")
    _download_options(get)
    get.set_defaults(func=run_idc_download)


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


def _print_series(rows: list[dict]) -> None:
    for row in rows:
        count = row.get("ImageCount", row.get("instance_count", "?"))
        print(f"{row['SeriesInstanceUID']}  {row.get('Modality', '?'):4s} {row.get('PatientID', '?'):16s} "
              f"{count} images  {row.get('SeriesDescription', '')}")
    print(f"{len(rows)} series")


def _summary(results: list[dict], out) -> int:
    converted = sum(1 for r in results if r.get("nifti"))
    print(f"{len(results)} items in {out} ({converted} as NIfTI); manifest: {out}/manifest.json")
    for item in results:
        if item.get("not_converted"):
            print(f"  not converted: {item.get('series_uid') or item.get('file')}: "
                  f"{json.dumps(item['not_converted'])[:200]}")
    return 0


def run_tcia_collections(args: argparse.Namespace) -> int:
    from medsynth.data.sources import tcia

    print("\n".join(tcia.collections(args.url)))
    return 0


def run_tcia_series(args: argparse.Namespace) -> int:
    from medsynth.data.sources import tcia

    _print_series(tcia.series(args.collection, args.modality, args.patient, args.url))
    return 0


def run_tcia_download(args: argparse.Namespace) -> int:
    from medsynth.data.sources import tcia

    with progress_bar("tcia", enabled=not args.quiet) as progress:
        if args.series:
            results = tcia.download_series(args.series, args.out, not args.no_nifti, args.url, progress)
        else:
            results = tcia.download_collection(args.collection, args.out, args.modality, args.patient, args.limit,
                                               not args.no_nifti, args.url, progress)
    return _summary(results, args.out)


def run_zenodo_files(args: argparse.Namespace) -> int:
    from medsynth.data.sources import zenodo

    entries = zenodo.record_files(args.record, args.token, args.url)
    for entry in entries:
        print(f"{entry['key']}  {entry.get('size', '?')} bytes  {entry.get('checksum', '')}")
    print(f"{len(entries)} files")
    return 0


def run_zenodo_download(args: argparse.Namespace) -> int:
    from medsynth.data.sources import zenodo

    with progress_bar("zenodo", enabled=not args.quiet) as progress:
        results = zenodo.download_record(args.record, args.out, args.token, args.files, not args.no_nifti,
                                         tuple(args.spacing) if args.spacing else None, args.url, progress)
    return _summary(results, args.out)


def run_idc_collections(args: argparse.Namespace) -> int:
    from medsynth.data.sources import idc

    print("\n".join(idc.collections(args.url)))
    return 0


def run_idc_series(args: argparse.Namespace) -> int:
    from medsynth.data.sources import idc

    _print_series(idc.series(args.collection, args.modality, args.patient, args.url))
    return 0


def run_idc_download(args: argparse.Namespace) -> int:
    from medsynth.data.sources import idc

    if args.series and (args.modality or args.patient or args.limit):
        raise InputError("--series names the series itself; leave out --modality, --patient and --limit.")
    with progress_bar("idc", enabled=not args.quiet) as progress:
        if args.series:
            results = idc.download_by_uid(args.series, args.collection, args.out, not args.no_nifti, args.url,
                                          args.bucket_url, progress)
        else:
            results = idc.download_collection(args.collection, args.out, args.modality, args.patient, args.limit,
                                              not args.no_nifti, args.url, args.bucket_url, progress)
    return _summary(results, args.out)
