"""DeepDRR worker: runs *inside DeepDRR's own Python environment*, driven by medsynth.drr.deepdrr_backend.

DeepDRR (GPL-3.0) is never imported by MedSynth itself. This script is started as a subprocess
with the Python of a separate environment where the user installed DeepDRR; it receives a
request JSON (and, to render, the CT as NIfTI), builds one DeepDRR ``MobileCArm`` per pose from
the parameters MedSynth computed, and writes back a result JSON and the images (.npy).

It imports only the standard library, numpy and deepdrr, so it works with DeepDRR's pinned
numpy<2 and an older Python. Usage::

    <deepdrr-python> deepdrr_worker.py request.json

Request: {"mode": "probe" | "geometry" | "render", "output_dir": str, "carms": [MobileCArm kwargs],
"volume": str (NIfTI, render only), "ijk_to_ras": 4x4, "spectrum": str, "photon_count": int,
"add_noise": bool, "step": float}. Result (output_dir/result.json): {"status": "ok" | "skipped" |
"unavailable" | "error", "reason": str, "deepdrr_version": str, "cuda": bool, "index_from_world": [3x4 per pose],
"world_from_ijk": 4x4, "images": [file names]}. Progress goes to stdout as "PROGRESS <0-1> <text>".
"""

import json
import os
import sys
import traceback
import types


def progress(fraction, message):
    print("PROGRESS %.4f %s" % (fraction, message), flush=True)


def _patch_torchvision():
    """DeepDRR 1.2 imports torchvision only for two download helpers (deepdrr.utils.data_utils).

    Where torchvision cannot be imported beside the installed torch (a common install problem),
    provide those two names so that ``import deepdrr`` works; calling them raises clearly. Nothing
    the worker uses downloads anything.
    """
    try:
        import torchvision.datasets.utils  # noqa: F401

        return False
    except Exception:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]

    def unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is not importable in this DeepDRR environment; downloads are unavailable.")

    package = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    utils = types.ModuleType("torchvision.datasets.utils")
    utils.download_url = unavailable
    utils.extract_archive = unavailable
    package.datasets = datasets
    datasets.utils = utils
    sys.modules.update({"torchvision": package, "torchvision.datasets": datasets, "torchvision.datasets.utils": utils})
    return True


def _import_deepdrr():
    patched = _patch_torchvision()
    import deepdrr  # noqa: F401  (raises ImportError with DeepDRR's own message when broken)

    version = getattr(deepdrr, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("deepdrr")
        except Exception:
            version = "unknown"
    return deepdrr, str(version), patched


def _cuda_status():
    """(usable, reason) for CUDA rendering."""
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return False, "no CUDA GPU is visible (cupy found 0 devices)"
        return True, "%d CUDA device(s)" % count
    except Exception as error:  # no driver, no GPU, wrong CUDA
        return False, "CUDA is not usable here: %s: %s" % (type(error).__name__, str(error).splitlines()[0] if str(error) else "")


def _mobile_carm(deepdrr, np, kwargs):
    from deepdrr import geo

    values = dict(kwargs)
    values["world_from_device"] = geo.FrameTransform(np.array(values["world_from_device"], dtype=float))
    return deepdrr.MobileCArm(**values)


def _matrix(transform, np):
    data = getattr(transform, "data", transform)
    return np.array(data, dtype=float).tolist()


def run(request_path):
    with open(request_path) as handle:
        request = json.load(handle)
    out_dir = request["output_dir"]
    result = {"status": "error", "reason": "", "images": []}

    def finish():
        path = os.path.join(out_dir, "result.json")
        with open(path + ".tmp", "w") as handle:
            json.dump(result, handle)
        os.replace(path + ".tmp", path)

    try:
        import numpy as np

        try:
            deepdrr, version, patched = _import_deepdrr()
        except Exception as error:
            result["status"] = "unavailable"
            result["reason"] = "DeepDRR cannot be imported in %s: %s: %s" % (sys.executable, type(error).__name__, error)
            return finish()
        result.update(deepdrr_version=version, torchvision_patched=patched, numpy_version=np.__version__)
        cuda, cuda_reason = _cuda_status()
        result.update(cuda=cuda, cuda_reason=cuda_reason)
        mode = request.get("mode", "probe")
        carms = [_mobile_carm(deepdrr, np, kwargs) for kwargs in request.get("carms", [])]
        result["index_from_world"] = [_matrix(c.get_camera_projection().index_from_world, np) for c in carms]
        if mode in ("probe", "geometry"):
            result["status"] = "ok"
            return finish()
        if mode != "render":
            result["reason"] = "unknown mode %r" % mode
            return finish()
        if not cuda:
            result["status"] = "skipped"
            result["reason"] = "DeepDRR renders only on CUDA GPUs: " + cuda_reason
            return finish()
        progress(0.05, "loading the CT into DeepDRR")
        from deepdrr import geo
        from deepdrr.projector import Projector

        volume = deepdrr.Volume.from_nifti(request["volume"], use_thresholding=True)
        # Place the volume so that DeepDRR's world is exactly MedSynth's RAS, whatever anatomical
        # convention DeepDRR read the NIfTI in.
        ijk_to_ras = np.array(request["ijk_to_ras"], dtype=float)
        anatomical_from_ijk = np.array(volume.anatomical_from_ijk.data, dtype=float)
        volume.world_from_anatomical = geo.FrameTransform(ijk_to_ras @ np.linalg.inv(anatomical_from_ijk))
        result["world_from_ijk"] = _matrix(volume.world_from_ijk, np)
        with Projector(volume, carm=carms[0], step=float(request.get("step", 0.1)),
                       spectrum=request.get("spectrum", "90KV_AL40"), add_noise=bool(request.get("add_noise", False)),
                       photon_count=int(request.get("photon_count", 10000)), neglog=False) as projector:
            for index, carm in enumerate(carms):
                image = np.asarray(projector.project(carm.get_camera_projection()), dtype=np.float32)
                name = "image_%04d.npy" % index
                np.save(os.path.join(out_dir, name), image)
                result["images"].append(name)
                progress((index + 1) / float(len(carms)), "rendered view %d of %d" % (index + 1, len(carms)))
        result["status"] = "ok"
    except Exception as error:
        result["status"] = "error"
        result["reason"] = "%s: %s" % (type(error).__name__, error)
        result["traceback"] = traceback.format_exc()
    return finish()


def main(argv):
    if len(argv) != 1:
        print("usage: deepdrr_worker.py request.json", file=sys.stderr)
        return 2
    run(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
