"""Benchmark of the DRR engine (issue 3) on LIDC-IDRI-0001 (512 x 512 x 133, 0.7 x 0.7 x 2.5 mm).

Side by side in one run, same CT, same geometry (SID 1020 mm, SOD 612 mm, a 400 mm detector at
256^2 and 512^2; poses AP, lateral = LAO 90, oblique = LAO 30 / CRAN 20):
- MedSynth: the full 3-material polychromatic DRR (90 kV, 1 keV bins), the monochromatic
  plastimatch-model DRR, the live preview, the per-view peak memory beyond the volume;
- plastimatch 1.9.4 ``drr`` (exact), monochromatic: per-view time = time with the detector minus
  the same run with an 8 x 8 detector (loading), and the correlation of its image with ours;
  timed in the same rounds as MedSynth's runs of the view, so both see the same machine load;
- DiffDRR 0.6.1 (trilinear renderer, 500 samples per ray, torch CPU) in its own virtual
  environment (.venv-bench-diffdrr): time per view after warm-up and peak memory.
Peers that cannot be installed are reported as such. Times are wall-clock medians after warm-up.
Writes docs/benchmarks/drr.md and pictures to bench_output/drr/.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SECTION = ROOT / "docs" / "benchmarks" / "drr.md"
PICTURES = ROOT / "bench_output" / "drr"
DIFFDRR_VENV = ROOT / ".venv-bench-diffdrr"
SID, SOD, DETECTOR_MM = 1020.0, 612.0, 400.0
POSES = {"AP": (0.0, 0.0), "lateral": (90.0, 0.0), "oblique": (30.0, 20.0)}
SIZES = (256, 512)
REPEATS = 3  # DiffDRR's (15-20 s per view at 512^2)
ROUNDS = 7  # per view: MedSynth's full, march and mono, then plastimatch with the detector and with 8 x 8

DIFFDRR_WORKER = r"""
import json, sys, time, resource
import torch
torch.set_num_threads(int(sys.argv[3]))
from diffdrr.data import read
from diffdrr.drr import DRR

def peak_kb():
    return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])

def reset_peak():
    with open('/proc/self/clear_refs', 'w') as handle:
        handle.write('5')

path, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(',')]
subject = read(path, orientation="AP")
poses = {"AP": (0.0, 0.0), "lateral": (90.0, 0.0), "oblique": (30.0, 20.0)}
out = {"torch": torch.__version__}
for size in sizes:
    drr = DRR(subject, sdd=1020.0, height=size, delx=400.0 / size, renderer="trilinear")
    for name, (a, b) in poses.items():
        rot = torch.tensor([[a, b, 0.0]])
        xyz = torch.tensor([[0.0, 612.0, 0.0]])
        times = []
        with torch.no_grad():
            drr(rot, xyz, parameterization="euler_angles", convention="ZXY", degrees=True)  # warm-up
            rss = int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])
            reset_peak()
            for _ in range(int(sys.argv[4])):
                start = time.perf_counter()
                drr(rot, xyz, parameterization="euler_angles", convention="ZXY", degrees=True)
                times.append(time.perf_counter() - start)
        out[f"{name}_{size}"] = {"seconds": sorted(times)[len(times) // 2], "peak_extra_mb": (peak_kb() - rss) / 1024}
print("RESULT " + json.dumps(out))
"""


def median_time(function, repeat: int = REPEATS) -> tuple[object, float]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times))


def peak_beyond(function) -> tuple[object, float]:
    """Run ``function``; return its result and the peak memory it allocated, in MB.

    numpy reports every array allocation to tracemalloc, so this is the projection's own peak
    beyond the volume already in memory (resident-set growth hides it: freed buffers are reused).
    """
    import tracemalloc

    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        result = function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / 2**20


def machine() -> str:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores"


def read_pfm(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        handle.readline()
        cols, rows = map(int, handle.readline().split())
        scale = float(handle.readline())
        data = np.frombuffer(handle.read(), dtype="<f4" if scale < 0 else ">f4")
    return data.reshape(rows, cols)


COLD_START = "from medsynth import drr; print('RESULT', drr.warm_up())"


def cold_start_seconds() -> float:
    """First DRR in a fresh process with an empty numba cache: what the first use after an install costs."""
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", COLD_START], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, NUMBA_CACHE_DIR=cache))
    line = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    return float(line[-1].split()[1]) if done.returncode == 0 and line else float("nan")


def ensure_plastimatch() -> str | None:
    if shutil.which("plastimatch"):
        return None
    try:
        subprocess.run(["apt-get", "install", "-y", "plastimatch"], check=True, capture_output=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as error:
        return f"plastimatch could not be installed ({error.__class__.__name__}); run `apt-get install plastimatch`"
    return None if shutil.which("plastimatch") else "plastimatch is not on PATH after apt-get"


def ensure_diffdrr() -> str | None:
    python = DIFFDRR_VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(DIFFDRR_VENV)], check=True, timeout=300)
        check = subprocess.run([str(python), "-c", "import diffdrr, torch"], capture_output=True, timeout=300)
        if check.returncode != 0:
            subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0", "diffdrr==0.6.1"],
                           check=True, capture_output=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as error:
        return f"DiffDRR 0.6.1 could not be installed in {DIFFDRR_VENV.name} ({error.__class__.__name__})"
    return None


def plastimatch_drr(ct_mha: Path, carm, pixels: int, prefix: Path) -> None:
    """One plastimatch ``drr`` run (exact, monochromatic) of ``carm``'s view at ``pixels``^2."""
    iso_lps = np.asarray(carm.isocenter) * [-1, -1, 1]
    normal = (-carm.beam_direction()) * [-1, -1, 1]
    up = (-carm.rotation()[:, 1]) * [-1, -1, 1]
    command = ["plastimatch", "drr", "-t", "pfm", "-r", f"{pixels} {pixels}", "-z", f"{DETECTOR_MM} {DETECTOR_MM}",
               "--sad", f"{SOD}", "--sid", f"{SID}", "-o", " ".join(f"{v:.4f}" for v in iso_lps),
               "--nrm", " ".join(f"{v:.6f}" for v in normal), "--vup", " ".join(f"{v:.6f}" for v in up),
               "-i", "exact", "-O", str(prefix), str(ct_mha)]
    env = dict(os.environ, OMP_NUM_THREADS=str(os.cpu_count()))
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=600)


def interleaved(functions: dict, rounds: int) -> dict[str, tuple[object, float]]:
    """(last result, median seconds) of each function, all timed once per round in turn, so that a
    burst of load from elsewhere on the machine slows every column of a row alike."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    results: dict[str, object] = {}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            results[name] = function()
            times[name].append(time.perf_counter() - start)
    return {name: (results[name], float(np.median(times[name]))) for name in functions}


def main() -> int:
    from PIL import Image

    from medsynth import drr
    from medsynth.data import fetch
    from medsynth.drr.display import to_uint8
    from medsynth.geometry import CArm
    from medsynth.io import read_volume
    from medsynth.io.sitk_bridge import volume_to_sitk
    from medsynth.pictures import montage, save_picture

    PICTURES.mkdir(parents=True, exist_ok=True)
    SECTION.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    ct_path = fetch("lidc") / "ct.nii.gz"
    ct = read_volume(ct_path, modality="CT")

    first_call = drr.warm_up()  # numba loads the kernels from its disk cache (or compiles them)
    prepared, prepare_s = median_time(lambda: drr.prepare(ct), repeat=2)
    mono_prepared = drr.prepare(ct, "plastimatch")
    start = time.perf_counter()
    prepared.march_buffer(along_rows=True)  # the J-fastest copy that lateral rays read, made once
    rows_copy_s = time.perf_counter() - start
    rows_copy_mb = prepared._along_rows.base.nbytes / 2**20 if prepared._along_rows is not None else 0.0
    volume_mb = (prepared.packed.base if prepared.packed.base is not None else prepared.packed).nbytes / 2**20

    def carm(pose: str, size: int) -> CArm:
        a, b = POSES[pose]
        return CArm(a, b, sid=SID, sod=SOD, detector_rows=size, detector_columns=size,
                    pixel_spacing=DETECTOR_MM / size, isocenter=tuple(ct.center_ras))

    # plastimatch is timed in the same rounds as MedSynth, view by view
    plastimatch_note = ensure_plastimatch()
    theirs: dict[str, tuple[float, float]] = {}
    work_dir = tempfile.TemporaryDirectory()
    work = Path(work_dir.name)
    if plastimatch_note is None:
        import SimpleITK as sitk

        image = sitk.DICOMOrient(volume_to_sitk(ct.with_array(np.maximum(ct.array, -1000.0).astype(np.float32))), "LPS")
        sitk.WriteImage(image, str(work / "ct.mha"))
        version = subprocess.run(["plastimatch", "--version"], capture_output=True, text=True).stdout.strip()
        plastimatch_note = f"plastimatch {version or '1.9.4'} (Debian package), exact algorithm"

    ours: dict[str, dict] = {}
    pictures = []
    for size in SIZES:
        for pose in POSES:
            geometry = carm(pose, size)
            functions = {
                "full": lambda: drr.project(prepared, geometry, device="cpu"),
                "march": lambda: drr.projector.march(prepared, geometry),
                "mono": lambda: drr.project(mono_prepared, geometry, spectrum="60keV", device="cpu"),
            }
            if (work / "ct.mha").exists():  # plastimatch's time per view: with the detector minus with 8 x 8 pixels
                functions["plastimatch"] = lambda: plastimatch_drr(work / "ct.mha", geometry, size, work / "view_")
                functions["plastimatch_loading"] = lambda: plastimatch_drr(work / "ct.mha", geometry, 8, work / "tiny_")
            for function in functions.values():
                function()  # warm-up
            timed = interleaved(functions, ROUNDS)
            (mono,), mono_s = timed["mono"]
            _, extra_mb = peak_beyond(lambda: drr.project(prepared, geometry, device="cpu"))
            ours[f"{pose}_{size}"] = dict(full=timed["full"][1], march=timed["march"][1], mono=mono_s, extra_mb=extra_mb)
            if "plastimatch" in timed:
                picture = read_pfm(next(work.glob("view_*.pfm")))[:, ::-1]  # plastimatch views from the source
                correlation = float(np.corrcoef(picture.ravel(), mono.log_image.ravel())[0, 1])
                seconds = max(0.0, timed["plastimatch"][1] - timed["plastimatch_loading"][1])
                theirs[f"{pose}_{size}"] = (seconds, correlation)
            if size == 512:
                dual = drr.project(prepared, geometry, outputs=("log", "dual_energy", "materials"), device="cpu")[0]
                for kind in ("log", "bone_log", "soft_tissue_log", "low_log", "high_log"):
                    pixels, _ = to_uint8(dual.images[kind])
                    pictures.append((Image.fromarray(pixels).resize((256, 256)), f"{pose} {kind}"))
    work_dir.cleanup()
    # live preview: the 512^2 geometry read out at 256^2 from the half-resolution grid
    preview_times = []
    for primary in np.linspace(-60, 60, 9):
        geometry = carm("AP", 512).replace(primary_angle=float(primary))
        drr.project(prepared, geometry, preview=256, device="cpu")
        preview_times.append(median_time(lambda g=geometry: drr.project(prepared, g, preview=256, device="cpu"), 1)[1])
    preview_s = float(np.median(preview_times))
    cold_s = cold_start_seconds()

    # DiffDRR
    diffdrr_note = ensure_diffdrr()
    diffdrr: dict = {}
    if diffdrr_note is None:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
            handle.write(DIFFDRR_WORKER)
        try:
            done = subprocess.run([str(DIFFDRR_VENV / "bin" / "python"), handle.name, str(ct_path),
                                   ",".join(map(str, SIZES)), str(os.cpu_count()), str(REPEATS)],
                                  capture_output=True, text=True, timeout=3600)
            line = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
            if done.returncode == 0 and line:
                diffdrr = json.loads(line[-1][len("RESULT "):])
                diffdrr_note = f"DiffDRR 0.6.1 trilinear (500 samples per ray), torch {diffdrr.pop('torch')} CPU"
            else:
                diffdrr_note = "DiffDRR failed to run: " + (done.stderr.strip().splitlines() or ["?"])[-1][:200]
        finally:
            os.unlink(handle.name)

    save_picture(montage([p for p, _ in pictures], [t for _, t in pictures], columns=5), PICTURES / "drr_views.png")
    load_after = os.getloadavg()[0]

    lines = [
        "## DRR engine (issue 3)",
        "",
        f"LIDC-IDRI-0001 (512 x 512 x 133 voxels of 0.70 x 0.70 x 2.5 mm), SID {SID:g} mm, SOD {SOD:g} mm, "
        f"a {DETECTOR_MM:g} mm detector; machine: {machine()}, Python {platform.python_version()}; "
        f"1-minute load average {load_before:.1f} when the run started and {load_after:.1f} at its end (the "
        "benchmark's own processes count in the latter; other work on the machine slows every column alike, "
        "so compare ratios within one run). "
        f"Times are wall-clock medians per view after warm-up, over {ROUNDS} rounds in which MedSynth's three "
        "columns and plastimatch run in turn.",
        "",
        f"- MedSynth: full = 3-material (air, soft tissue, bone) march + polychromatic 90 kV Beer-Lambert "
        f"({len(prepared.materials)} materials, {len(drr.spectrum('90kV').energies_keV)} energy bins) + -log; "
        "march = per-material area densities only; mono = plastimatch's mu model.",
        f"- Peers: {plastimatch_note}; {diffdrr_note}.",
        f"- First call in this process: {first_call:.1f} s (numba loads its on-disk cache); the first use after an "
        f"install (empty numba cache: the kernels compile, once per machine): {cold_s:.1f} s; preparing the "
        f"packed volume: {prepare_s:.2f} s; packed volume {volume_mb:.0f} MB (the CT as float32, rows and "
        f"slices padded to odd numbers of cache lines); rays along the CT's rows (the lateral view) read a second "
        f"copy with J fastest, made once on first use ({rows_copy_s:.2f} s, {rows_copy_mb:.0f} MB) and kept, so it "
        "is not in the per-view peak below.",
        "",
        "| view | size | MedSynth full (s) | MedSynth march (s) | MedSynth mono (s) | plastimatch (s) | full / plastimatch | "
        "DiffDRR (s) | DiffDRR / full | corr. with plastimatch | MedSynth peak beyond the volume (MB) | DiffDRR peak beyond the volume (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        for pose in POSES:
            key = f"{pose}_{size}"
            row = ours[key]
            pm_s, corr = theirs.get(key, (float("nan"), float("nan")))
            dd = diffdrr.get(key, {})
            dd_s = dd.get("seconds", float("nan"))
            lines.append(
                f"| {pose} | {size}^2 | {row['full']:.3f} | {row['march']:.3f} | {row['mono']:.3f} | {pm_s:.3f} | "
                f"{row['full'] / pm_s if pm_s else float('nan'):.2f}x | {dd_s:.2f} | {dd_s / row['full']:.1f}x | "
                f"{corr:.4f} | {row['extra_mb']:.1f} | {dd.get('peak_extra_mb', float('nan')):.0f} |"
            )
    full512 = [ours[f"{p}_512"]["full"] for p in POSES]
    pm512 = [theirs.get(f"{p}_512", (float("nan"),))[0] for p in POSES]
    dd512 = [diffdrr.get(f"{p}_512", {}).get("seconds", float("nan")) for p in POSES]
    lines += [
        "",
        f"- Targets at 512^2 (mean over the three views): full polychromatic DRR / plastimatch mono = "
        f"{np.mean(full512) / np.mean(pm512):.2f}x (target <= 0.5x); DiffDRR / MedSynth full = "
        f"{np.mean(dd512) / np.mean(full512):.1f}x (target >= 20x).",
        f"- Live preview (512^2 geometry read out at 256^2 from the half-resolution grid, AP sweep "
        f"-60..60 deg): {preview_s * 1000:.0f} ms per frame = {1 / preview_s:.1f} frames per second.",
        "- Pictures: bench_output/drr/drr_views.png (each view's -log image, bone only, soft tissue only, "
        "60 kV and 120 kV, all from one march per view).",
        "",
    ]
    SECTION.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
