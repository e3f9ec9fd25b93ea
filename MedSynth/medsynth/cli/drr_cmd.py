"""``medsynth drr CT --preset mobile --lao 30 --cran 20 --out DIR``: DRRs of a CT, one view or a sweep.

Angles take one value or a range ``START:STOP`` (with ``--views N`` evenly spaced views) or
``START:STOP:STEP``: ``--lao=-90:90:30`` renders RAO 90 ... LAO 90 (write negative values with "="), or come from
``--poses FILE`` (the pose-file format of the DRR batch script and dataset recipes). Each view is a folder with NIfTI
images (placed in the detector plane), a PNG, a DICOM marked synthetic, and view.json; views.json
lists every view's geometry and projection matrix. An interrupted sweep resumes where it stopped, with
the same noise: each view has its own seed (``drr.job.view_seeds``).
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
    parser.add_argument("--poses", help="JSON pose file (the DRR batch script's and dataset recipes' format) "
                        "instead of --lao/--cran")
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


def _materials_text(args: argparse.Namespace) -> str:
    """--materials as DRRParameters.materials text ('rib_*=bone,...'), read from a JSON file if it is one."""
    from medsynth.drr.materials import parse_mapping

    if args.plastimatch_model and args.labels:
        raise InputError("--plastimatch-model and --labels cannot be combined: the plastimatch model has one material.")
    if not args.labels:
        if args.materials:
            raise InputError("--materials maps labels to materials: give the label map with --labels.")
        return ""
    if not args.materials:
        raise InputError("--labels needs --materials, e.g. --materials 'vertebrae_*=bone,rib_*=bone,lung_*=lung'.")
    text = args.materials
    if Path(text).is_file():
        mapping = json.loads(Path(text).read_text())
        if not isinstance(mapping, dict):
            raise InputError(f"{text} must hold a JSON object mapping labels to materials.")
        text = ",".join(f"{k}={v}" for k, v in mapping.items())
    parse_mapping(text)  # checked now, before the CT is read
    return text


def build_parameters(args: argparse.Namespace):
    """The command line as the DRR job's parameters (``DRRParameters``), checked."""
    from medsynth.drr.parameters import DRRParameters
    from medsynth.drr.spectra import default_al_mm
    from medsynth.geometry import load_preset
    from medsynth.parameters import validate

    carm = load_preset(args.preset)
    kv = float(args.kv)
    changes: dict = {"patient_position": args.position.upper(), "kv": kv, "cu_mm": float(args.cu or 0.0),
                     "physics": "plastimatch" if args.plastimatch_model else "deepdrr",
                     "materials": _materials_text(args), "scatter": bool(args.scatter), "blur_sigma": float(args.blur),
                     "seed": int(args.seed), "device": args.device, "material_images": bool(args.material_images)}
    if args.al is not None:
        added = float(args.al) - default_al_mm(kv)
        if added < -1e-9:
            raise InputError(f"--al {args.al:g} mm is below the {kv:g} kV tube's own filtration ({default_al_mm(kv):g} mm "
                             "Al); give at least that, or leave --al out.")
        changes["added_al_mm"] = max(0.0, added)
    if args.photons is not None:
        changes.update(add_noise=True, photons=int(round(args.photons)))
    if args.dual_energy:
        low_high = [v.strip().lower().removesuffix("kv") for v in args.dual_energy.split(",")]
        if len(low_high) != 2:
            raise InputError("--dual-energy takes two tube voltages, LOW,HIGH (e.g. 60,120).")
        changes.update(dual_energy=True, low_kv=float(low_high[0]), high_kv=float(low_high[1]))
    parameters = DRRParameters.from_preset(args.preset, detector_pixels=None, **changes)
    height, width = carm.detector_size_mm
    if args.size is not None:
        parameters = parameters.replace(detector_rows=args.size, detector_columns=args.size, pixel_spacing=height / args.size)
    if args.rows is not None:
        parameters = parameters.replace(detector_rows=args.rows)
    if args.columns is not None:
        parameters = parameters.replace(detector_columns=args.columns)
    if args.pixel_spacing is not None:
        parameters = parameters.replace(pixel_spacing=args.pixel_spacing)
    pose = parameters.pose
    for name in ("sid", "sod"):
        if getattr(args, name) is not None:
            setattr(pose, name, float(getattr(args, name)))
    return parameters, validate


def build_poses(args: argparse.Namespace, ct, parameters) -> list:
    """Every view's CArmPose (the isocenter defaults to the CT's centre), checked against the C-arm and the CT."""
    import dataclasses

    isocenter = tuple(args.isocenter) if args.isocenter else tuple(ct.center_ras)
    base = parameters.pose.moved_to(isocenter)
    if args.poses:
        from medsynth.drr.poses import read_pose_file

        poses = [dataclasses.replace(base.moved_to(isocenter if v["isocenter"] == "center" else v["isocenter"]),
                                     primary_angle=v["primary"], secondary_angle=v["secondary"],
                                     sid=v.get("sid", base.sid), sod=v.get("sod", base.sod))
                 for _name, v in read_pose_file(args.poses)]
    else:
        primaries = parse_angles(args.lao, args.views, "lao")
        secondaries = parse_angles(args.cran, args.views, "cran")
        poses = [dataclasses.replace(base, primary_angle=float(a), secondary_angle=float(b))
                 for b in secondaries for a in primaries]
    for pose in poses:
        parameters.carm(pose).validate(ct)
    return poses


def run(args: argparse.Namespace) -> int:
    """A thin adapter over the DRR job (``medsynth.drr.job``): parameters, one seed per view, one folder per view."""
    from medsynth.drr import prepare
    from medsynth.drr.job import job_materials, render, view_seeds
    from medsynth.drr.writers import view_name, write_index, write_view
    from medsynth.io import read_labelmap, read_volume
    from medsynth.jobs import BatchItem, run_batch, sub_progress
    from medsynth.jobs.progress_bar import progress_bar

    # cheap checks first, before reading the CT or creating any output
    if args.photons is not None and not (np.isfinite(args.photons) and args.photons > 0):
        raise InputError(f"The photon count must be a positive number per pixel (e.g. 10000), got {args.photons:g}.")
    if args.blur < 0:
        raise InputError(f"--blur must be zero or a positive number of pixels, got {args.blur:g}.")
    parameters, validate = build_parameters(args)
    parse_angles(args.lao, args.views, "lao")
    parse_angles(args.cran, args.views, "cran")
    parameters.spectrum()  # an impossible tube voltage fails here
    ct = read_volume(args.ct, modality="CT")
    ct.require_hu()
    poses = build_poses(args, ct, parameters)
    validate(parameters, "medsynth drr")
    if parameters.dual_energy:
        parameters.dual_energy_spectra()
    labels = read_labelmap(args.labels, args.table) if args.labels else None
    materials = job_materials(ct, parameters, labels)
    seeds = view_seeds(parameters, len(poses))  # one per view: a resumed sweep draws the same noise
    out_dir = Path(args.out)
    items = [BatchItem(view_name(parameters.carm(pose), i), (pose, seed)) for i, (pose, seed) in enumerate(zip(poses, seeds))]
    with progress_bar("drr", enabled=not args.quiet) as progress:
        prepared = prepare(ct, materials, progress=sub_progress(progress, 0.0, 0.1))

        def work(item: BatchItem, folder: Path) -> None:
            pose, seed = item.payload
            projection = render(prepared, parameters, [pose], seeds=[seed], validate=False)[0]
            write_view(projection, folder, formats=args.formats, uid_key=f"{seed}/{item.name}")

        done, skipped = run_batch(items, out_dir, work, progress=sub_progress(progress, 0.1, 1.0))
    views = []
    for item in items:
        description = json.loads((out_dir / item.name / "view.json").read_text())
        description["folder"] = item.name
        views.append(description)
    index_path = write_index(out_dir, views)
    print(f"{done} view(s) written, {skipped} already present: {out_dir} (geometry: {index_path.name})")
    return 0
