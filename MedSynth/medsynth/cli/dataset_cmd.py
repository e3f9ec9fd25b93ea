"""``medsynth dataset run|schema|slices|lidc-nodules|dual-energy|unpaired``.

``run RECIPE --out DIR``: CTs -> labelled radiographs from a YAML recipe (medsynth.dataset), in
this process, on a Dask LocalCluster (``--workers N``), an existing scheduler (``--scheduler``)
or the recipe's SLURM/PBS/LSF cluster (``--cluster``). The other actions build training data for
the generative models.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dataset", help="labelled radiograph datasets from a recipe; generative training sets")
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)

    run = actions.add_parser(
        "run", help="CTs -> radiographs + projected masks + manifest, from a YAML recipe (resumable)",
        description="Run a dataset recipe (see docs/dataset.md). Finished images are kept: running the same "
                    "command again, even after kill -9, makes only what is missing.")
    run.add_argument("recipe", help="YAML recipe")
    run.add_argument("--out", required=False, help="output folder")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="run on a Dask LocalCluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="join a running Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--cluster", action="store_true", help="start the recipe's SLURM/PBS/LSF cluster (dask-jobqueue)")
    run.add_argument("--print-job-script", action="store_true",
                     help="print the batch script of the recipe's cluster section and exit")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=run_recipe)

    schema = actions.add_parser("schema", help="print the recipe's JSON schema")
    schema.set_defaults(func=print_schema)

    slices = actions.add_parser(
        "slices", help="CT + label map -> 2D slice dataset (classes by name, split by patient)",
        description="Cut CTs and their label maps into 2D slices. Give cases with --case or a YAML spec "
                    "(cases: [{patient, ct, labels, table, split}], plus any SliceDatasetSpec field).")
    slices.add_argument("out", help="output dataset folder (written atomically)")
    slices.add_argument("--spec", help="YAML file with 'cases' and dataset settings")
    slices.add_argument("--case", action="append", default=[], metavar="PATIENT=CT,LABELS[,TABLE]",
                        help="one patient's CT and label map (repeatable)")
    slices.add_argument("--classes", help="comma-separated model classes, starting with background")
    slices.add_argument("--map", action="append", default=[], metavar="NAME=CLASS", help="explicit class mapping")
    slices.add_argument("--unknown", help="'error' (default) or the class unknown structures are painted as")
    slices.add_argument("--axis", choices=["axial", "coronal", "sagittal"])
    slices.add_argument("--size", type=int)
    slices.add_argument("--pixel-spacing", type=float, help="mm per output pixel (default: whole field of view)")
    slices.add_argument("--keep-background", action="store_true", help="keep the CT table and equipment")
    slices.add_argument("--seed", type=int)
    slices.set_defaults(func=run_slices)

    nodules = actions.add_parser("lidc-nodules", help="LIDC reading-session XML -> consensus nodule label map merged with organ labels")
    nodules.add_argument("xml", help="LIDC XML file (069.xml in the series folder)")
    nodules.add_argument("--ct", required=True, help="the CT (DICOM folder or NIfTI) of the annotated series")
    nodules.add_argument("--labels", required=True, help="organ label map on the CT grid")
    nodules.add_argument("--table", help="label table (TotalSegmentator structures.csv)")
    nodules.add_argument("--dicom", help="DICOM series folder (default: the XML's folder)")
    nodules.add_argument("--level", type=float, default=0.5, help="reader agreement needed (default 0.5 = 50 %%)")
    nodules.add_argument("--out", required=True, help="merged label map (.nii.gz, .nrrd)")
    nodules.set_defaults(func=run_nodules)

    dual = actions.add_parser("dual-energy", help="CT -> single-energy / bone / soft-tissue DRR pairs at many poses (pix2pix)")
    dual.add_argument("ct", help="CT (DICOM folder, NIfTI, NRRD)")
    dual.add_argument("out", help="output dataset folder")
    dual.add_argument("--poses", type=int, default=96)
    dual.add_argument("--size", type=int, default=64)
    dual.add_argument("--seed", type=int, default=0)
    dual.add_argument("--patient", default=None)
    dual.set_defaults(func=run_dual_energy)

    unpaired = actions.add_parser("unpaired", help="simulated + real radiograph folders -> unpaired set (CycleGAN)")
    unpaired.add_argument("--simulated", required=True, help="folder of simulated radiographs (DICOM/PNG/npy)")
    unpaired.add_argument("--real", required=True, help="folder of real radiographs (DICOM/PNG)")
    unpaired.add_argument("--size", type=int, default=64)
    unpaired.add_argument("out", help="output dataset folder")
    unpaired.set_defaults(func=run_unpaired)


def run_recipe(args: argparse.Namespace) -> int:
    from medsynth.dataset import load_recipe
    from medsynth.dataset.runner import raise_failures, run_local
    from medsynth.errors import InputError
    from medsynth.jobs.progress_bar import progress_bar

    recipe = load_recipe(args.recipe)
    if args.print_job_script:
        from medsynth.dataset.distributed import job_script

        if recipe.cluster is None:
            raise InputError(f"{args.recipe} has no 'cluster:' section; add one (kind: slurm, pbs or lsf).")
        print(job_script(recipe.cluster))
        return 0
    if not args.out:
        raise InputError("Give the output folder with --out DIR.")
    with progress_bar("dataset", enabled=not args.quiet) as progress:
        if args.workers or args.scheduler or args.cluster:
            from medsynth.dataset.distributed import run_dask

            def show(link: str) -> None:
                if not args.quiet:
                    print(f"Dask dashboard: {link}", flush=True)

            summary = run_dask(recipe, args.out, workers=args.workers, scheduler=args.scheduler,
                               use_cluster=args.cluster, progress=progress, on_dashboard=show)
        else:
            summary = run_local(recipe, args.out, progress=progress)
    print(summary.line())
    raise_failures(summary)
    return 0


def print_schema(args: argparse.Namespace) -> int:
    import json

    from medsynth.dataset import recipe_schema

    print(json.dumps(recipe_schema(), indent=1))
    return 0


def _parse_case(text: str):
    from medsynth.errors import InputError
    from medsynth.generative.datasets import SliceCase

    if "=" not in text:
        raise InputError(f"--case {text!r} must look like PATIENT=CT,LABELS[,TABLE].")
    patient, paths = text.split("=", 1)
    parts = [p.strip() for p in paths.split(",")]
    if len(parts) not in (2, 3):
        raise InputError(f"--case {text!r} must look like PATIENT=CT,LABELS[,TABLE].")
    return SliceCase(patient.strip(), parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def run_slices(args: argparse.Namespace) -> int:
    import dataclasses

    import yaml

    from medsynth.jobs.progress_bar import progress_bar
    from medsynth.errors import InputError
    from medsynth.generative.class_mapping import parse_mapping
    from medsynth.generative.datasets import SliceCase, SliceDatasetSpec, build_slice_dataset

    settings, cases = {}, [_parse_case(c) for c in args.case]
    if args.spec:
        raw = yaml.safe_load(Path(args.spec).read_text()) or {}
        base = Path(args.spec).parent
        for row in raw.pop("cases", []):
            resolved = {k: (str(base / v) if k in ("ct", "labels", "table") and v and not Path(v).is_absolute() else v)
                        for k, v in row.items()}
            cases.append(SliceCase(**resolved))
        settings.update(raw)
    known = {f.name for f in dataclasses.fields(SliceDatasetSpec)}
    if set(settings) - known:
        raise InputError(f"Unknown dataset setting(s) {sorted(set(settings) - known)}; allowed: {sorted(known)}.")
    overrides = {"classes": args.classes.split(",") if args.classes else None, "unknown": args.unknown,
                 "axis": args.axis, "size": args.size, "pixel_spacing_mm": args.pixel_spacing, "seed": args.seed,
                 "class_mapping": parse_mapping(args.map) or None,
                 "remove_background": False if args.keep_background else None}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    with progress_bar("slices") as progress:
        out = build_slice_dataset(cases, args.out, SliceDatasetSpec(**settings), progress=progress)
    print(f"Slice dataset written to {out} (manifest.json, preview.png)")
    return 0


def run_nodules(args: argparse.Namespace) -> int:
    from medsynth.generative.datasets.lidc import lidc_lesion_labelmap
    from medsynth.io import read_labelmap, read_volume, write_volume

    ct = read_volume(args.ct, modality="CT")
    labels = read_labelmap(args.labels, args.table)
    merged = lidc_lesion_labelmap(ct, labels, args.xml, args.dicom, args.level)
    write_volume(merged, args.out)
    value = max(merged.table.names)
    print(f"{int((merged.array == value).sum())} nodule voxels (label {value} = {merged.table.names[value]}) -> {args.out}")
    return 0


def run_dual_energy(args: argparse.Namespace) -> int:
    from medsynth.jobs.progress_bar import progress_bar
    from medsynth.generative.datasets.dual_energy import DualEnergySpec, build_dual_energy_pairs
    from medsynth.io import read_volume

    ct = read_volume(args.ct, modality="CT")
    with progress_bar("dual-energy pairs") as progress:
        out = build_dual_energy_pairs(ct, args.out, DualEnergySpec(poses=args.poses, size=args.size, seed=args.seed),
                                      patient=args.patient or Path(args.ct).name, progress=progress)
    print(f"Dual-energy pairs written to {out}")
    return 0


def run_unpaired(args: argparse.Namespace) -> int:
    from medsynth.jobs.progress_bar import progress_bar
    from medsynth.generative.datasets.unpaired import UnpairedSpec, build_unpaired_set

    with progress_bar("unpaired set") as progress:
        out = build_unpaired_set(args.simulated, args.real, args.out, UnpairedSpec(size=args.size), progress=progress)
    print(f"Unpaired set written to {out}")
    return 0
