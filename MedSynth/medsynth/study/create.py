"""``create_study``: real and synthetic images in, one shuffled, blinded study folder out."""

from __future__ import annotations

from pathlib import Path

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report
from medsynth.jobs.seeds import item_rng
from medsynth.parameters import validate
from medsynth.study.images import list_images, read_study_image, resized, write_blinded_png
from medsynth.study.parameters import REASONS, StudyParameters
from medsynth.study.store import FORMAT, Study, write_json


def create_study(real: str | Path, synthetic: str | Path, out: str | Path,
                 parameters: StudyParameters | None = None, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> Study:
    """Build a study in ``out`` (a new folder, written atomically) and return it.

    Every image is re-encoded as a bare PNG at one size under a random id, in a shuffled order;
    the truth and the source file names go to ``key.json`` only.
    """
    parameters = parameters or StudyParameters()
    validate(parameters, "study")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already exists and is not empty; choose a new --out folder "
                         "(an existing study keeps its readers' answers).")
    real_root, synthetic_root = Path(real).resolve(), Path(synthetic).resolve()
    if real_root == synthetic_root or real_root in synthetic_root.parents or synthetic_root in real_root.parents:
        raise InputError(f"--real {real} and --synthetic {synthetic} overlap, so images would be counted on both "
                         "sides; keep real and synthetic images in two separate folders.")
    sources = [(path, "real", Path(real)) for path in list_images(real)]
    sources += [(path, "synthetic", Path(synthetic)) for path in list_images(synthetic)]
    rng = item_rng(parameters.seed, "study images")
    order = rng.permutation(len(sources))
    ids: list[str] = []
    while len(set(ids)) != len(sources):
        ids = [f"{value:016x}" for value in rng.integers(0, 2**63, size=len(sources))]
    key: dict[str, dict] = {}
    with atomic_output(out, directory=True) as staging:
        for done, index in enumerate(order):
            check_cancel(cancel)
            path, truth, root = sources[index]
            image_id = ids[done]
            grey = resized(read_study_image(path, parameters), parameters.image_size)
            write_blinded_png(grey, staging / "images" / f"{image_id}.png")
            key[image_id] = {"truth": truth, "source": f"{truth}/{path.relative_to(root).as_posix()}"}
            report(progress, (done + 1) / len(sources), f"image {done + 1}/{len(sources)}")
        write_json(staging / "key.json", key)
        write_json(staging / "study.json", {"format": FORMAT, "version": 1, "title": parameters.title,
                                            "reasons": list(REASONS), "seed": parameters.seed,
                                            "images": [{"id": i} for i in ids]})
    return Study.load(out)
