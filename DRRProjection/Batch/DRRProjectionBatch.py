"""Render DRRs of a CT at many C-arm poses, without a GUI.

Works the same with plain Python and inside Slicer (the CT goes from its file to the projector, no MRML)::

    python DRRProjectionBatch.py --ct chest.nii.gz --poses poses.json --out drrs/
    Slicer --no-main-window --python-script DRRProjectionBatch.py --ct chest.nii.gz --poses poses.json --out drrs/

poses.json is a list of poses, or {"defaults": {...}, "poses": [...], "sweep": {...}}. A pose is
{"name": "LAO30", "primary": 30, "secondary": 0, "sid": 1020, "sod": 530, "isocenter": [R, A, S]
or "center"}; missing values come from "defaults", then from the preset. A sweep is
{"axis": "primary" | "secondary", "start": -90, "stop": 90, "step": 30} and adds one pose per angle.

Each pose gets a folder <out>/<name>/ with drr.nrrd (or drr_<image>.nrrd for several images),
drr.png and carm.json (the geometry, projection matrix included); folders appear atomically, so
running the same command again after an interruption renders only what is missing.

Progress goes to stdout as lines "PROGRESS <percent>% <message>". Exit codes: 0 done, 2 bad input
(arguments, files, CT, poses), 3 the computation failed, 130 interrupted.
"""

import argparse
import json
import sys
from pathlib import Path


def _import_medsynth():
    """medsynth from Slicer's module path, the installed package, or this source tree."""
    try:
        import medsynth  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "MedSynth"))
        import medsynth  # noqa: F401


_import_medsynth()
from medsynth.jobs.batch_script import (  # noqa: E402
    EXIT_FAILED,
    EXIT_OK,
    ArgumentError,
    ProgressPrinter,
    run_script,
)
from medsynth.jobs.batch_script import ScriptArgumentParser as _Parser  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="DRRProjectionBatch", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ct", help="CT in HU: a DICOM folder, NIfTI, NRRD or MHA file")
    parser.add_argument("--poses", help="JSON file of poses (see the description)")
    parser.add_argument("--out", help="output folder (one sub-folder per pose)")
    parser.add_argument("--preset", default="mobile", help="C-arm preset: mobile, angio or preview (default mobile)")
    parser.add_argument("--rows", type=int, default=384, help="detector rows; the preset's field of view is kept (384)")
    parser.add_argument("--columns", type=int, help="detector columns (default: the preset's aspect)")
    parser.add_argument("--spacing", type=float, help="pixel spacing in mm (default: preset field of view / rows)")
    parser.add_argument("--output", default="radiograph", help="radiograph, line_integral, dual_energy, bone, soft_tissue")
    parser.add_argument("--spectrum", default="90kV", help="tube voltage: 60kV, 90kV or 120kV (default 90kV)")
    parser.add_argument("--photons", type=int, help="photons per pixel: adds Poisson noise (default: no noise)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--device", help="auto, cpu or cuda (default: the MedSynth setting)")
    parser.add_argument("--format", default="nrrd", choices=["nrrd", "nii.gz"], help="image file format")
    parser.add_argument("--no-png", action="store_true", help="do not write drr.png pictures")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--self-test", action="store_true",
                        help="render an analytic water-cylinder phantom at two poses into a temporary folder")
    return parser


# --- poses ----------------------------------------------------------------------------------------
def read_poses(path):
    """[(name, {"primary", "secondary", "sid"?, "sod"?, "isocenter"?})] from a poses file (``drr.poses``)."""
    from medsynth.drr.poses import read_pose_file

    return read_pose_file(path)


# --- rendering ------------------------------------------------------------------------------------

def run(args, progress):
    """Read the CT file, render every pose with the library's DRR job, write one folder per pose.

    The CT goes straight from its file to the projector (no MRML node in between); each pose gets
    its own noise seed (``drr.job.view_seeds``), so a resumed run draws what an uninterrupted one draws.
    """
    from medsynth.drr import prepare
    from medsynth.drr.display import to_uint8
    from medsynth.drr.job import job_materials, render, shown_images, view_seeds
    from medsynth.drr.parameters import OUTPUT_KINDS, CArmPose, DRRParameters
    from medsynth.geometry import load_preset
    from medsynth.io import write_volume
    from medsynth.jobs import BatchItem, run_batch
    from medsynth.pictures import save_picture, slice_to_image

    if args.output not in OUTPUT_KINDS:
        raise ArgumentError(f"--output must be one of {', '.join(OUTPUT_KINDS)}, not {args.output!r}")
    if args.rows is not None and args.rows < 1:
        raise ArgumentError("--rows must be at least 1")
    poses = read_poses(args.poses)
    preset = load_preset(args.preset)
    kv = float(str(args.spectrum).lower().removesuffix("kv"))
    request = DRRParameters.from_preset(args.preset, detector_pixels=args.rows, output_kind=args.output, kv=kv,
                                        add_noise=args.photons is not None, photons=args.photons or 10000,
                                        seed=args.seed, device=args.device or "auto")
    if args.columns:
        request = request.replace(detector_columns=args.columns)
    if args.spacing:
        request = request.replace(pixel_spacing=args.spacing)
    progress(0.0, f"loading {args.ct}")
    ct = _load_ct(args.ct)  # checks HU now: a bad CT fails before any output
    items = []
    for name, pose in poses:
        isocenter = tuple(ct.center_ras) if pose["isocenter"] == "center" else tuple(pose["isocenter"])
        items.append(BatchItem(name, CArmPose(pose["primary"], pose["secondary"], pose.get("sid", preset.sid),
                                              pose.get("sod", preset.sod), *isocenter)))
    for item in items:  # every pose is checked before the first render
        request.carm(item.payload).validate(ct)
    seeds = dict(zip((item.name for item in items), view_seeds(request, len(items))))
    progress(0.02, "preparing the CT")
    prepared = prepare(ct, job_materials(ct, request))
    suffix = "." + args.format

    def work(item, folder):
        projection = render(prepared, request, [item.payload], seeds=[seeds[item.name]], validate=False)[0]
        images = shown_images(projection, request)
        for kind, image in images.items():
            stem = "drr" if len(images) == 1 else f"drr_{kind}"
            write_volume(image, folder / (stem + suffix))
            if not args.no_png:
                picture, _window = to_uint8(image.array[0], invert=kind.endswith("intensity"))  # bone bright
                save_picture(slice_to_image(picture, projection.carm.spacing_rc), folder / (stem + ".png"))
        (folder / "carm.json").write_text(json.dumps(projection.carm.to_dict(), indent=1) + "\n")

    out = Path(args.out)
    done, skipped = run_batch(items, out, work, progress=lambda f, m="": progress(0.05 + 0.95 * f, m))
    progress(1.0, f"{done} DRRs rendered, {skipped} already done, in {out}")
    return EXIT_OK


def _load_ct(path):
    from medsynth.errors import InputError
    from medsynth.io import read_volume

    if not Path(path).exists():
        raise InputError(f"CT {path} does not exist.")
    ct = read_volume(path, modality="CT")  # DICOM folders, NIfTI, NRRD: MedSynth's readers
    ct.require_hu()
    return ct


def self_test(progress):
    """Analytic phantom: a water cylinder (0 HU) in air; the DRR is darker in the middle than in air."""
    import tempfile

    import numpy as np

    from medsynth.io import write_volume
    from medsynth.volume import Volume, VolumeMetadata

    k, j, i = np.mgrid[0:40, 0:64, 0:64]
    hu = np.where((i - 31.5) ** 2 + (j - 31.5) ** 2 < 24.0 ** 2, 0.0, -1000.0).astype(np.int16)
    phantom = Volume.from_spacing(hu, (2.0, 2.0, 2.0), (-63.0, -63.0, -39.0), metadata=VolumeMetadata(modality="CT", units="HU"))
    with tempfile.TemporaryDirectory(prefix="drr-batch-selftest-") as temp:
        ct_path = Path(temp) / "phantom.nrrd"
        write_volume(phantom, ct_path)
        poses_path = Path(temp) / "poses.json"
        poses_path.write_text(json.dumps([{"name": "AP", "primary": 0}, {"name": "LAO90", "primary": 90}]))
        args = build_parser().parse_args(["--ct", str(ct_path), "--poses", str(poses_path), "--out", str(Path(temp) / "out"),
                                          "--preset", "preview", "--rows", "32", "--no-png"])
        code = run(args, progress)
        from medsynth.io import read_volume

        for name in ("AP", "LAO90"):
            image = read_volume(Path(temp) / "out" / name / "drr.nrrd").array[0]
            centre, corner = float(image[16, 16]), float(image[0, 0])
            if not centre < corner:
                print(f"self-test failed: {name} centre {centre} is not darker than the edge {corner}", file=sys.stderr)
                return EXIT_FAILED
    print("self-test passed", flush=True)
    return code


def check_required(args) -> None:
    if not args.self_test and not (args.ct and args.poses and args.out):
        raise ArgumentError("--ct, --poses and --out are required")


def main(argv) -> int:
    def work(args) -> int:
        progress = ProgressPrinter(args.quiet, decimals=1)
        return self_test(progress) if args.self_test else run(args, progress)

    return run_script("DRRProjectionBatch", build_parser(), argv, work,
                      "finished poses are kept, run the same command to resume", check=check_required)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
