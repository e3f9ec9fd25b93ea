"""``medsynth drr CT --preset mobile --lao 30 --cran 20 --out DIR``: DRRs of a CT, one view or a sweep.

Angles take one value or a range ``START:STOP`` (with ``--views N`` evenly spaced views) or
``START:STOP:STEP``: ``--lao=-90:90:30`` renders RAO 90 ... LAO 90 (write negative values with "="). Each view is a folder with NIfTI
images (placed in the detector plane), a PNG, a DICOM marked synthetic, and view.json; views.json
lists every view's geometry and projection matrix. An interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from medsynth.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drr", help="physically based DRRs (radiographs) of a CT from a virtual C-arm",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("ct", help="CT in HU: DICOM folder, NIfTI, NRRD or NumPy file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--labels", help="label map on the CT's grid, to assign materials by label")
    parser.add_argument("--table", help="label names for --labels (TotalSegmentator structures.csv)")
    parser.add_argument("--materials", help="label -> material map, e.g. 'vertebrae_*=bone,rib_*=bone,lung_*=lung', "
                        "or a JSON file holding such a dict; unmapped voxels use HU thresholds")
    parser.add_argument("--plastimatch-model", action="store_true",
                        help="monochromatic mu = 0.022 (1 + HU/1000)/mm model (plastimatch's), instead of DeepDRR's")
    parser.add_argument("--preset", default="mobile", help="C-arm preset: mobile (default), angio, preview")
    parser.add_argument("--lao", default="0", help="primary angle in degrees (LAO +, RAO -): A, START:STOP or START:STOP:STEP")
    parser.add_argument("--cran", default="0", help="secondary angle in degrees (CRAN +, CAUD -), same forms as --lao")
    parser.add_argument("--views", type=int, default=None, help="number of views across a START:STOP range")
    parser.add_argument("--sid", type=float, help="source-detector distance, mm (preset's by default)")
    parser.add_argument("--sod", type=float, help="source-isocenter distance, mm")
    parser.add_argument("--rows", type=int, help="detector rows")
    parser.add_argument("--columns", type=int, help="detector columns")
    parser.add_argument("--size", type=int, help="square detector of SIZE x SIZE pixels over the preset's field of view")
    parser.add_argument("--pixel-spacing", type=float, help="detector pixel spacing, mm")
    parser.add_argument("--isocenter", type=float, nargs=3, metavar=("R", "A", "S"),
                        help="isocenter in RAS mm (default: the CT's centre)")
    parser.add_argument("--position", default="HFS", help="patient position: HFS (default), FFS, HFP, FFP, HFDR, HFDL, ...")
    parser.add_argument("--kv", default="90", help="tube voltage in kV (40-150; named 60, 90, 120 use DeepDRR's filtration)")
    parser.add_argument("--al", type=float, help="aluminium filtration in mm (default by kV)")
    parser.add_argument("--cu", type=float, default=0.0, help="copper filtration in mm")
    parser.add_argument("--dual-energy", nargs="?", const="60,120", default=None, metavar="LOW,HIGH",
                        help="also write a dual-energy pair from the same march (default 60,120 kV)")
    parser.add_argument("--material-images", action="store_true", help="also write bone-only, soft-tissue-only, ... images")
    parser.add_argument("--photons", type=float, help="photons per pixel for Poisson noise (e.g. 10000); none by default")
    parser.add_argument("--scatter", action="store_true", help="add the approximate scatter model")
    parser.add_argument("--blur", type=float, default=0.0, help="detector blur sigma in pixels")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--formats", nargs="+", default=["nifti", "png", "dicom"], choices=["nifti", "png", "dicom"])
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def parse_angles(text: str, views: int | None, what: str) -> list[float]:
    """"30" -> [30]; "-90:90" with views N -> N values; "-90:90:30" -> -90, -60, ..., 90."""
    try:
        parts = [float(p) for p in str(text).split(":")]
    except ValueError:
        raise InputError(f"--{what} must be a number or START:STOP[:STEP] in degrees, got {text!r}.") from None
    if len(parts) == 1:
        return parts
    if len(parts) == 2:
        if not views or views < 2:
            raise InputError(f"--{what} {text} is a range: give --views N (at least 2) or a step, START:STOP:STEP.")
        return [float(v) for v in np.linspace(parts[0], parts[1], views)]
    if len(parts) == 3:
        start, stop, step = parts
        if step == 0 or (stop - start) * step < 0:
            raise InputError(f"--{what} {text}: the step must be non-zero and go from START towards STOP.")
        count = int(np.floor((stop - start) / step + 1e-9)) + 1
        return [start + i * step for i in range(count)]
    raise InputError(f"--{what} must be A, START:STOP or START:STOP:STEP, got {text!r}.")


def _materials(args: argparse.Namespace, ct):
    from medsynth.drr.materials import LabelMaterials, parse_mapping
    from medsynth.io import read_labelmap

    if args.plastimatch_model:
        if args.labels:
            raise InputError("--plastimatch-model and --labels cannot be combined: the plastimatch model has one material.")
        return "plastimatch"
    if not args.labels:
        if args.materials:
            raise InputError("--materials maps labels to materials: give the label map with --labels.")
        return None
    labels = read_labelmap(args.labels, args.table)
    ct.require_same_grid(labels, "label map")
    if not args.materials:
        raise InputError("--labels needs --materials, e.g. --materials 'vertebrae_*=bone,rib_*=bone,lung_*=lung'.")
    text = args.materials
    if Path(text).is_file():
        mapping = json.loads(Path(text).read_text())
        if not isinstance(mapping, dict):
            raise InputError(f"{text} must hold a JSON object mapping labels to materials.")
        mapping = parse_mapping(",".join(f"{k}={v}" for k, v in mapping.items()))
    else:
        mapping = parse_mapping(text)
    return LabelMaterials(labels, mapping)


def build_poses(args: argparse.Namespace, ct) -> list:
    from medsynth.geometry import load_preset

    carm = load_preset(args.preset)
    changes = {"patient_position": args.position.upper()}
    for name, value in (("sid", args.sid), ("sod", args.sod)):
        if value is not None:
            changes[name] = value
    if args.size is not None:
        height, width = carm.detector_size_mm
        changes.update(detector_rows=args.size, detector_columns=args.size,
                       pixel_spacing=(height / args.size, width / args.size))
    if args.rows is not None:
        changes["detector_rows"] = args.rows
    if args.columns is not None:
        changes["detector_columns"] = args.columns
    if args.pixel_spacing is not None:
        changes["pixel_spacing"] = args.pixel_spacing
    changes["isocenter"] = tuple(args.isocenter) if args.isocenter else tuple(ct.center_ras)
    carm = carm.replace(**changes)
    primaries = parse_angles(args.lao, args.views, "lao")
    secondaries = parse_angles(args.cran, args.views, "cran")
    poses = [carm.replace(primary_angle=a, secondary_angle=b) for b in secondaries for a in primaries]
    for pose in poses:
        pose.validate(ct)
    return poses


def run(args: argparse.Namespace) -> int:
    from medsynth.jobs.progress_bar import progress_bar
    from medsynth.drr import prepare, project, spectrum
    from medsynth.drr.writers import view_name, write_index, write_view
    from medsynth.io import read_volume
    from medsynth.jobs import BatchItem, run_batch, sub_progress

    from medsynth.geometry import load_preset

    # cheap checks first, before reading the CT or creating any output
    if args.photons is not None and not (np.isfinite(args.photons) and args.photons > 0):
        raise InputError(f"The photon count must be a positive number per pixel (e.g. 10000), got {args.photons:g}.")
    if args.blur < 0:
        raise InputError(f"--blur must be zero or a positive number of pixels, got {args.blur:g}.")
    load_preset(args.preset)
    parse_angles(args.lao, args.views, "lao")
    parse_angles(args.cran, args.views, "cran")
    spec = spectrum(float(args.kv) if args.al is not None or args.cu else f"{float(args.kv):g}kV",
                    al_mm=args.al, cu_mm=args.cu)
    ct = read_volume(args.ct, modality="CT")
    ct.require_hu()
    poses = build_poses(args, ct)
    outputs = ["intensity", "log"]
    dual = ("60kV", "120kV")
    if args.dual_energy:
        low_high = [v.strip().lower().removesuffix("kv") for v in args.dual_energy.split(",")]
        if len(low_high) != 2:
            raise InputError("--dual-energy takes two tube voltages, LOW,HIGH (e.g. 60,120).")
        dual = tuple(f"{float(v):g}kV" for v in low_high)
        outputs.append("dual_energy")
    if args.material_images:
        outputs.append("materials")
    materials = _materials(args, ct)
    out_dir = Path(args.out)
    items = [BatchItem(f"view_{i:03d}", pose) for i, pose in enumerate(poses)]
    with progress_bar("drr", enabled=not args.quiet) as progress:
        prepared = prepare(ct, materials, progress=sub_progress(progress, 0.0, 0.1))
        rng = np.random.default_rng(args.seed)

        def work(item: BatchItem, folder: Path) -> None:
            projection = project(prepared, item.payload, spectrum=spec, photons=args.photons, outputs=outputs,
                                 dual_energy=dual, scatter=args.scatter, blur_sigma=args.blur, seed=rng,
                                 device=args.device)[0]
            write_view(projection, folder, formats=args.formats)

        for index, item in enumerate(items):  # stable names that also say the angles
            item.name = view_name(item.payload, index)
        done, skipped = run_batch(items, out_dir, work, progress=sub_progress(progress, 0.1, 1.0))
    views = []
    for item in items:
        description = json.loads((out_dir / item.name / "view.json").read_text())
        description["folder"] = item.name
        views.append(description)
    index_path = write_index(out_dir, views)
    print(f"{done} view(s) written, {skipped} already present: {out_dir} (geometry: {index_path.name})")
    return 0
