"""Training the four families from one config: seeds, checkpoints, exact resume, best model, logs, plots.

``train(config)`` runs the loop shared by all families; a small trainer per family
(``networks/<family>_training.py``, next to its network) holds its discriminators, optimisers and
losses. Every random draw comes from two seeded torch generators (one for picking training
slices, one for the model's noise) whose states are saved in each checkpoint together with the optimisers and the metrics log, so ``resume=True`` continues
exactly where the last checkpoint left off: the same batches, noise and numbers as an
uninterrupted run.

Output folder: ``config.yaml`` (the exact config), ``last.pt`` (training state), ``best.pt`` (the
model with the best validation metric), ``final.pt``, ``checkpoints/step_*.pt``,
``metrics.jsonl``, ``curves.png``, ``samples/step_*.png`` (outputs next to their inputs) and
``summary.json``.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from medsynth.errors import InputError
from medsynth.generative.config import METRIC_DIRECTIONS, comparable, normalize_config
from medsynth.generative.pictures import plot_curves
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report


def trainer_class(family: str):
    """The trainer of ``family``, from the training module next to its network."""
    if family == "spade_gan":
        from medsynth.generative.networks.spade_gan_training import SpadeGanTrainer

        return SpadeGanTrainer
    if family == "semantic_diffusion":
        from medsynth.generative.networks.diffusion_training import SemanticDiffusionTrainer

        return SemanticDiffusionTrainer
    if family == "pix2pix":
        from medsynth.generative.networks.translation_training import Pix2PixTrainer

        return Pix2PixTrainer
    if family == "cyclegan":
        from medsynth.generative.networks.translation_training import CycleGanTrainer

        return CycleGanTrainer
    raise InputError(f"Unknown model family {family!r}.")


# ---------------------------------------------------------------------------------------------
# the loop
@dataclass
class TrainingResult:
    output: Path
    steps: int
    best_path: Path | None
    final_path: Path
    best: dict | None
    history: list = field(default_factory=list)
    seconds: float = 0.0  # this run (a resumed run adds to earlier ones: total_seconds)
    total_seconds: float = 0.0
    steps_per_second: float = 0.0


def _seed_everything(seed: int, deterministic: bool) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _is_better(value: float, best: dict | None, metric: str) -> bool:
    if value is None or not np.isfinite(value):
        return False
    if best is None:
        return True
    return value < best["value"] if METRIC_DIRECTIONS[metric] == "min" else value > best["value"]


def _emissions_tracker(setting, output: Path):
    if setting is False:
        return None
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        if setting is True:
            raise InputError("train.track_emissions is true but codecarbon is not installed: "
                             "pip install codecarbon, or set track_emissions: auto.") from None
        return None
    return OfflineEmissionsTracker(output_dir=str(output), country_iso_code="USA", log_level="error", save_to_file=True)


def train(config: dict, resume: bool = False, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None, base_dir: str | Path | None = None) -> TrainingResult:
    """Train the family a config names; with ``resume`` continue from ``output/last.pt`` exactly."""
    import torch

    from medsynth.generative.checkpoint import read_checkpoint, save_checkpoint
    from medsynth.generative.device import resolve_device, set_threads
    from medsynth.generative.networks import build_model
    from medsynth.generative.training_data import load_data

    config = normalize_config(config, base_dir)
    family, train_cfg = config["family"], config["train"]
    output = Path(config["output"])
    last_path = output / "last.pt"
    if last_path.exists() and not resume:
        raise InputError(f"{output} already holds a training run (last.pt). Pass --resume to continue it, "
                         "or choose another output folder.")
    if resume and not last_path.exists():
        raise InputError(f"Nothing to resume in {output}: no last.pt. Start the run without --resume.")
    device = resolve_device(train_cfg["device"])
    set_threads(train_cfg["threads"])
    _seed_everything(int(train_cfg["seed"]), bool(train_cfg["deterministic"]))
    data = load_data(config)
    if data.train_size == 0:
        raise InputError(f"The training split of {config['data']['dataset']} is empty.")
    model = build_model(family, config["model"], data.meta)
    trainer = trainer_class(family)(model, config, data, device)
    data_generator = torch.Generator().manual_seed(int(train_cfg["seed"]) + 1)
    noise_generator = torch.Generator().manual_seed(int(train_cfg["seed"]) + 2)
    step, best, history, earlier_seconds = 0, None, [], 0.0
    if resume:
        payload = read_checkpoint(last_path, expected_family=family)
        if comparable(payload["config"]) != comparable(config):
            raise InputError(
                f"The config differs from the one {output} was trained with (only steps, checkpoint/validation "
                "intervals, device and threads may change on --resume). Use the saved config.yaml, or a new output folder."
            )
        model.load_state_dict(payload["state"]["model"])
        state = payload["state"]["training"]
        trainer.load_training_state(state)
        data_generator.set_state(state["rng"]["data"])
        noise_generator.set_state(state["rng"]["noise"])
        step, best, history = int(state["step"]), state["best"], list(state["history"])
        earlier_seconds = float(state.get("seconds", 0.0))
        if step >= train_cfg["steps"]:
            raise InputError(f"{output} already reached step {step} of {train_cfg['steps']}: raise train.steps to continue.")
    output.mkdir(parents=True, exist_ok=True)
    with atomic_output(output / "config.yaml") as temp:
        temp.write_text(yaml.safe_dump(config, sort_keys=False))
    samples_dir = output / "samples"
    samples_dir.mkdir(exist_ok=True)
    meta = {**data.meta, **model.meta(), "recipe": {"family": family, "train": train_cfg, "model": model.hparams}}

    def save_training(current_step: int) -> None:
        state = {"model": model.state_dict(), "training": {
            **trainer.training_state(), "step": current_step, "best": best, "history": history,
            "seconds": earlier_seconds + time.perf_counter() - started,
            "rng": {"data": data_generator.get_state(), "noise": noise_generator.get_state()}}}
        checkpoints = output / "checkpoints"
        checkpoints.mkdir(exist_ok=True)
        save_checkpoint(checkpoints / f"step_{current_step:06d}.pt", family, config, state, {**meta, "step": current_step})
        save_checkpoint(last_path, family, config, state, {**meta, "step": current_step})
        for old in sorted(checkpoints.glob("step_*.pt"))[:-train_cfg["keep_checkpoints"]]:
            old.unlink()
        _write_history(output, history, train_cfg["val_metric"])

    tracker = _emissions_tracker(train_cfg["track_emissions"], output)
    if tracker is not None:
        tracker.start()
    model.train()
    started, first_step = time.perf_counter(), step
    running: dict[str, list[float]] = {}
    try:
        while step < train_cfg["steps"]:
            check_cancel(cancel)
            batch = trainer.sample_batch(data_generator)
            losses = trainer.train_step(batch, noise_generator)
            step += 1
            for name, value in losses.items():
                if not np.isfinite(value):
                    raise InputError(f"Training diverged at step {step}: {name} = {value}. Lower train.lr or check the data.")
                running.setdefault(name, []).append(value)
            if step % train_cfg["log_every"] == 0 or step == train_cfg["steps"]:
                history.append({"kind": "train", "step": step, **{k: float(np.mean(v)) for k, v in running.items()}})
                running = {}
            if step % train_cfg["validate_every"] == 0 or step == train_cfg["steps"]:
                metrics = trainer.validate(step, samples_dir)
                history.append({"kind": "val", "step": step, **metrics})
                value = metrics.get(train_cfg["val_metric"])
                if _is_better(value, best, train_cfg["val_metric"]):
                    best = {"metric": train_cfg["val_metric"], "value": float(value), "step": step}
                    save_checkpoint(output / "best.pt", family, config, {"model": trainer.export_model().state_dict()},
                                    {**meta, "step": step, "best": best, "val_metrics": metrics})
            if step % train_cfg["checkpoint_every"] == 0 or step == train_cfg["steps"]:
                save_training(step)
            loss_text = " ".join(f"{k}={v:.3g}" for k, v in losses.items() if k in ("loss", "loss_g", "loss_d"))
            report(progress, step / train_cfg["steps"], f"step {step}/{train_cfg['steps']} {loss_text}")
    finally:
        if tracker is not None:
            tracker.stop()
    seconds = time.perf_counter() - started
    final_path = save_checkpoint(output / "final.pt", family, config, {"model": trainer.export_model().state_dict()},
                                 {**meta, "step": step, "best": best})
    summary = {"family": family, "steps": step, "best": best, "seconds_this_run": round(seconds, 2),
               "seconds_all_runs": round(earlier_seconds + seconds, 2),
               "steps_per_second": round((step - first_step) / max(seconds, 1e-9), 3),
               "device": str(device), "threads": torch.get_num_threads(),
               "parameters": int(sum(p.numel() for p in model.parameters()))}
    with atomic_output(output / "summary.json") as temp:
        temp.write_text(json.dumps(summary, indent=2) + "\n")
    return TrainingResult(output, step, output / "best.pt" if best else None, final_path, best, history, seconds,
                          earlier_seconds + seconds, summary["steps_per_second"])


def _write_history(output: Path, history: list[dict], val_metric: str) -> None:
    with atomic_output(output / "metrics.jsonl") as temp:
        temp.write_text("".join(json.dumps(row) + "\n" for row in history))
    plot_curves(history, output / "curves.png", val_metric)


def export_weights(checkpoint: str | Path, destination: str | Path, half: bool = True) -> Path:
    """A shippable copy of a checkpoint: the model's weights only (float16 when ``half``), same config and meta."""
    from medsynth.generative.checkpoint import read_checkpoint, save_checkpoint

    payload = read_checkpoint(checkpoint)
    weights = {name: (tensor.half() if half and tensor.is_floating_point() else tensor)
               for name, tensor in payload["state"]["model"].items()}
    meta = {**payload["meta"], "exported_from": Path(checkpoint).name, "stored_as": "float16" if half else "float32"}
    if "source_window" in meta:  # pix2pix: inputs and outputs have their own windows
        meta.setdefault("input_window", meta["source_window"])
        meta.setdefault("output_window", meta["window"])
    return save_checkpoint(destination, payload["family"], payload["config"], {"model": weights}, meta)
