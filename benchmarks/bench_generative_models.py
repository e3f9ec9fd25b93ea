"""Benchmark of the label-map-to-image and image-to-image models (issue 6).

Measures, on this machine's CPU:
- inference time per 256x256 slice of the SPADE GAN, and per DDIM sample of the semantic diffusion
  model at 10 and 50 steps, with our guided DDIM loop side by side with MONAI's DiffusionInferer
  (the peer; it cannot apply classifier-free guidance with a label map, so it is compared unguided);
- training steps per second of every family at the demo recipes (64 px, batch 4, 1 thread);
- the shipped demo models on held-out real slices (a patient never trained on) next to the baseline
  that paints each class with its mean training intensity plus noise, with PSNR/SSIM/MAE and the
  per-class intensity error (FID and segmentation consistency are in the evaluation section);
- pix2pix on held-out C-arm poses: PSNR and SSIM against the physically computed bone image, next to
  the identity baseline (the single-energy image itself).
Writes docs/benchmarks/generative_models.md and pictures to bench_output/generative_models/.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import write_section

ROOT = Path(__file__).resolve().parents[1]
SECTION = ROOT / "docs" / "benchmarks" / "generative_models.md"
PICTURES = ROOT / "bench_output" / "generative_models"
WORK = Path(os.environ.get("MEDSYNTH_BENCH_WORK", "/tmp/medsynth_bench_generative"))


def timed(function, repeats: int = 3, warmup: bool = True) -> float:
    """Median wall time of ``function()`` over ``repeats`` runs (after one warm-up run unless ``warmup`` is False)."""
    if warmup:
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def demo_model(name: str, family: str):
    """The shipped demo model, or (when not trained yet) the same architecture untrained."""
    from medsynth.generative.checkpoint import demo_weights, load_model
    from medsynth.generative.networks import build_model

    sys.path.insert(0, str(ROOT / "scripts"))
    from train_demo_models import CT_CLASSES, DEMOS

    try:
        return load_model(demo_weights(name), expected_family=family), True
    except Exception:  # noqa: BLE001 - fall back to the untrained architecture for timings only
        meta = {"image_size": 64, "window": {"low": -1000, "high": 1000}, "class_names": CT_CLASSES}
        return build_model(family, DEMOS[name]["model"], meta).eval(), False


def synthetic_256_labels(classes: int):
    """A 256x256 label map cut from a real slice of the held-out patient (nearest up-sampling)."""
    import torch

    labels = held_out_slices()["labels"]
    pick = labels[len(labels) // 2]
    big = np.kron(pick, np.ones((4, 4), np.int64))
    return torch.from_numpy(np.clip(big, 0, classes - 1)[None].astype(np.int64))


_HELD_OUT = {}


def held_out_slices() -> dict:
    if not _HELD_OUT:
        sys.path.insert(0, str(ROOT / "scripts"))
        from train_demo_models import build_ct_slices

        from medsynth.generative.datasets import load_split

        _HELD_OUT.update(load_split(build_ct_slices(WORK), "val"))
        _HELD_OUT["train"] = load_split(build_ct_slices(WORK), "train")
    return _HELD_OUT


def inference_rows(threads: int) -> list[str]:
    import torch
    from monai.inferers import DiffusionInferer
    from monai.networks.schedulers import DDIMScheduler

    torch.set_num_threads(threads)
    gan, gan_trained = demo_model("spade_ct", "spade_gan")
    diffusion, diffusion_trained = demo_model("diffusion_ct", "semantic_diffusion")
    labels = synthetic_256_labels(gan.num_classes)
    generator = torch.Generator().manual_seed(0)
    rows = []
    gan_s = timed(lambda: gan.generate(labels, generator))
    rows.append(f"| SPADE GAN, one 256x256 slice | {threads} | {gan_s * 1000:.0f} ms | - |")
    one_hot = diffusion.one_hot(labels.to(diffusion.device))

    def monai_sample(steps: int):
        prediction = {"epsilon": "epsilon", "v": "v_prediction", "sample": "sample"}[diffusion.hparams["prediction"]]
        scheduler = DDIMScheduler(num_train_timesteps=diffusion.train_timesteps, schedule=diffusion.hparams["beta_schedule"],
                                  clip_sample=True, prediction_type=prediction)
        scheduler.set_timesteps(steps)
        noise = torch.randn((1, 1, 256, 256), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            return DiffusionInferer(scheduler).sample(noise, diffusion.unet, scheduler, verbose=False, seg=one_hot)

    for steps in (10, 50):
        repeats, warm = (2, True) if steps == 10 else (1, False)  # the 10-step runs warm everything up
        ours_1 = timed(lambda: diffusion.generate(labels, generator, steps=steps, guidance=1.0), repeats, warm)
        ours_cfg = timed(lambda: diffusion.generate(labels, generator, steps=steps, guidance=1.5), repeats, warm)
        peer = timed(lambda: monai_sample(steps), repeats, warm)
        rows.append(f"| DDIM {steps} steps, 256x256, no guidance (ours / MONAI DiffusionInferer) | {threads} | "
                    f"{ours_1:.2f} s / {peer:.2f} s | {peer / ours_1:.2f}x |")
        rows.append(f"| DDIM {steps} steps, 256x256, guidance 1.5 (ours; MONAI cannot) | {threads} | {ours_cfg:.2f} s | "
                    f"{ours_cfg / ours_1:.2f}x the unguided time |")
    trained = "trained demo weights" if gan_trained and diffusion_trained else "untrained demo architectures"
    return rows, trained


def training_rows() -> list[str]:
    import torch

    sys.path.insert(0, str(ROOT / "scripts"))
    from train_demo_models import DEMOS, build_ct_slices

    from medsynth.generative.config import normalize_config
    from medsynth.generative.networks import build_model
    from medsynth.generative.training import trainer_class
    from medsynth.generative.training_data import load_data

    torch.set_num_threads(1)
    rows = []
    datasets = {"ct_slices": build_ct_slices(WORK)}
    pairs = pairs_dataset()
    if pairs is not None:
        datasets["drr_pairs"] = pairs
    for name, recipe in DEMOS.items():
        families = [recipe["family"]] + (["cyclegan"] if recipe["family"] == "pix2pix" else [])
        for family in families:
            dataset = datasets.get(recipe["data"]["dataset"])
            if dataset is None:
                rows.append(f"| {family} | - | - | no dataset (DRR engine unavailable) |")
                continue
            if family == "cyclegan":
                dataset = unpaired_dataset(dataset)
                config = normalize_config({"family": "cyclegan", "data": {"dataset": str(dataset)}, "output": "/tmp/unused",
                                           "model": {"channels": recipe["model"]["channels"]}, "train": {"batch_size": 4}})
            else:
                config = normalize_config({**{k: v for k, v in recipe.items() if k != "description"},
                                           "data": {**recipe["data"], "dataset": str(dataset)}, "output": "/tmp/unused"})
            data = load_data(config)
            model = build_model(family, config["model"], data.meta)
            trainer = trainer_class(family)(model, config, data, torch.device("cpu"))
            generator = torch.Generator().manual_seed(0)
            trainer.train_step(trainer.sample_batch(generator), generator)
            steps = 10
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(trainer.sample_batch(generator), generator)
            rate = steps / (time.perf_counter() - start)
            parameters = sum(p.numel() for p in model.parameters()) / 1e6
            rows.append(f"| {family} | {parameters:.2f} M | {rate:.2f} | batch {config['train']['batch_size']}, "
                        f"{data.meta['image_size']} px |")
    return rows


def pairs_dataset():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from train_demo_models import build_drr_pairs

        return build_drr_pairs(WORK)
    except Exception as error:  # noqa: BLE001 - the DRR engine may be missing in this checkout
        print(f"dual-energy pairs unavailable: {error}", file=sys.stderr)
        return None


def unpaired_dataset(pairs: Path) -> Path:
    """DRR single-energy images (A) vs bone images (B) as an unpaired set: for timing CycleGAN."""
    from medsynth.generative.datasets import load_split
    from medsynth.generative.datasets.unpaired import build_unpaired_set

    out = WORK / "unpaired_timing"
    if not (out / "manifest.json").exists():
        arrays = load_split(pairs, "train", "medsynth-pairs")
        half = len(arrays["source"]) // 2
        build_unpaired_set(list(arrays["source"][:half]), list(arrays["bone"][half:]), out)
    return out


def quality_rows() -> tuple[list[str], list]:
    import torch

    from medsynth.generative.intensity import IntensityWindow
    from medsynth.generative.pictures import label_picture, unit_to_uint8
    from medsynth.generative.trainer import class_mean_error, image_metrics

    torch.set_num_threads(2)
    data = held_out_slices()
    window = IntensityWindow(-1000.0, 1000.0, "HU")
    labels = torch.from_numpy(data["labels"].astype(np.int64))
    real = window.to_unit(torch.from_numpy(data["images"]))[:, None]
    train = data["train"]
    rng = np.random.default_rng(0)
    # baseline: each class painted with its mean training HU plus noise of that class's spread
    means = {c: float(train["images"][train["labels"] == c].mean()) for c in np.unique(train["labels"])}
    spreads = {c: float(train["images"][train["labels"] == c].std()) for c in np.unique(train["labels"])}
    baseline = np.zeros(data["images"].shape, np.float32)
    for c in np.unique(data["labels"]):
        mask = data["labels"] == c
        baseline[mask] = means.get(int(c), 0.0) + rng.normal(0, spreads.get(int(c), 0.0) * 0.5, int(mask.sum()))
    outputs = {"mean intensity + noise (baseline)": window.to_unit(torch.from_numpy(baseline))[:, None]}
    rows = []
    gan, gan_trained = demo_model("spade_ct", "spade_gan")
    diffusion, diffusion_trained = demo_model("diffusion_ct", "semantic_diffusion")
    if gan_trained:
        outputs["SPADE GAN demo (spade_ct)"] = torch.cat([gan.generate(labels[i:i + 8], torch.Generator().manual_seed(i))
                                                     for i in range(0, len(labels), 8)])
    if diffusion_trained:
        outputs["semantic diffusion demo (diffusion_ct), DDIM 50, guidance 1.5"] = torch.cat(
            [diffusion.generate(labels[i:i + 8], torch.Generator().manual_seed(i), steps=50, guidance=1.5)
             for i in range(0, len(labels), 8)])
    for name, fake in outputs.items():
        metrics = image_metrics(fake, real, window)
        error = class_mean_error(fake, real, labels, window)
        rows.append(f"| {name} | {metrics['psnr']:.2f} | {metrics['ssim']:.3f} | {metrics['mae']:.1f} | {error:.1f} |")
    picks = np.linspace(0, len(labels) - 1, 4).round().astype(int)
    pictures = [[label_picture(data["labels"][i])] + [unit_to_uint8(fake[i, 0], window) for fake in outputs.values()]
                + [unit_to_uint8(real[i, 0], window)] for i in picks]
    titles = ["label map"] + [n.split(" (")[0].split(" demo")[0] for n in outputs] + ["real"]
    return rows, (pictures, titles)


def pix2pix_rows() -> list[str]:
    import torch

    from medsynth.generative.checkpoint import demo_weights, load_model
    from medsynth.generative.datasets import load_split
    from medsynth.generative.intensity import IntensityWindow
    from medsynth.generative.trainer import image_metrics

    pairs = pairs_dataset()
    if pairs is None:
        return ["| pix2pix | - | - | no dual-energy pairs (DRR engine unavailable) |"]
    try:
        model = load_model(demo_weights("pix2pix_bone"), expected_family="pix2pix")
    except Exception as error:  # noqa: BLE001
        return [f"| pix2pix | - | - | demo weights unavailable: {error} |"]
    import json

    manifest = json.loads((pairs / "manifest.json").read_text())
    val = load_split(pairs, "val", "medsynth-pairs")
    source = IntensityWindow.from_dict(manifest["source_window"]).to_unit(torch.from_numpy(val["source"]))[:, None]
    target = IntensityWindow.from_dict(manifest["target_windows"]["bone"]).to_unit(torch.from_numpy(val["bone"]))[:, None]
    rows = []
    identity = image_metrics(source, target, model.window)
    predicted = image_metrics(model.translate(source), target, model.window)
    rows.append(f"| identity (single-energy image as the bone image) | {identity['psnr']:.2f} | {identity['ssim']:.3f} | {len(val['source'])} held-out poses |")
    rows.append(f"| pix2pix demo (pix2pix_bone) | {predicted['psnr']:.2f} | {predicted['ssim']:.3f} | {len(val['source'])} held-out poses |")
    return rows


def main() -> int:
    import torch

    from medsynth.generative.pictures import save_rows

    PICTURES.mkdir(parents=True, exist_ok=True)
    lines = ["## Generative models (issue 6)", "",
             f"Machine: {os.cpu_count()}-core CPU shared with other work, torch {torch.__version__}, no GPU. "
             "Demo models run at 64x64 (5.5 mm pixels) but are fully convolutional; timings below feed them 256x256 "
             "label maps (a real held-out slice up-sampled).", ""]
    threads = int(os.environ.get("MEDSYNTH_BENCH_THREADS", "1"))
    print("timing inference ...", file=sys.stderr, flush=True)
    rows, trained = inference_rows(threads)
    lines += [f"### Inference on CPU ({trained})", "",
              "| what | threads | time | ratio (MONAI / ours) |", "|---|---|---|---|"]
    lines += rows
    lines += ["", "### Training throughput (demo recipes, 1 thread)", "",
              "| family | parameters | steps/s | notes |", "|---|---|---|---|"]
    print("timing training steps ...", file=sys.stderr, flush=True)
    lines += training_rows()
    print("scoring the demo models on held-out slices ...", file=sys.stderr, flush=True)
    rows, (pictures, titles) = quality_rows()
    lines += ["", "### Demo models on held-out real slices (TotalSegmentator small abdomen CT, never trained on)", "",
              "| images | PSNR (dB) | SSIM | MAE (HU) | per-class mean error (HU) |", "|---|---|---|---|---|"]
    lines += rows
    save_rows(pictures, titles, PICTURES / "held_out_samples.png", scale=3)
    lines += ["", "Pictures: bench_output/generative_models/held_out_samples.png. FID (ImageNet Inception) and the "
              "segmentation-consistency score of the same models are in the evaluation section.", "",
              "### pix2pix single-energy -> bone on held-out C-arm poses", "",
              "| model | PSNR (dB) | SSIM | notes |", "|---|---|---|---|"]
    print("scoring pix2pix on held-out poses ...", file=sys.stderr, flush=True)
    lines += pix2pix_rows()
    write_section(SECTION, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
