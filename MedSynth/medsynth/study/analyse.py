"""``analyse_study``: the readers' answers against the key, as a Markdown report with plots.

Writes report.md, results.json, metrics.png, difficulty.png, reasons.png and hardest.png.

Per reader and pooled: accuracy, sensitivity and specificity for fakes with 95 % Wilson intervals
(pooled intervals treat every read as independent, which overstates their precision when readers
share images); Fleiss' kappa over the images every reader answered; the reasons readers ticked,
split by the image's truth; and each image's difficulty (the share of readers who got it right).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.study.statistics import fleiss_kappa, reader_metrics
from medsynth.study.store import ANSWERS, TRUTHS, Study, write_json


def _correct(truth: str, answer: str) -> bool:
    return (truth, answer) in (("real", "real"), ("synthetic", "fake"))


def _metrics_dict(metrics: dict) -> dict:
    return {name: value.as_dict() if hasattr(value, "as_dict") else value for name, value in metrics.items()}


def summarise(study: Study) -> dict:
    """Every number of the report, computed from the answer files and the key."""
    answers = {reader: study.answers(reader) for reader in study.readers()}
    answers = {reader: given for reader, given in answers.items() if given}
    if not answers:
        raise InputError(f"No reader has answered yet in {study.folder / 'answers'}; "
                         "run `medsynth study serve` and let readers answer first.")
    truth = {image_id: study.key[image_id]["truth"] for image_id in study.image_ids}
    results: dict = {"readers": {}, "images": [], "reasons": {}, "comments": []}
    pooled_truths, pooled_answers = [], []
    for reader, given in answers.items():
        ids = [i for i in study.image_ids if i in given]
        truths, calls = [truth[i] for i in ids], [given[i]["answer"] for i in ids]
        results["readers"][reader] = _metrics_dict(reader_metrics(truths, calls))
        pooled_truths += truths
        pooled_answers += calls
    results["pooled"] = _metrics_dict(reader_metrics(pooled_truths, pooled_answers))

    shared = [i for i in study.image_ids if all(i in given for given in answers.values())]
    table = np.array([[sum(given[i]["answer"] == a for given in answers.values()) for a in ANSWERS] for i in shared])
    results["fleiss_kappa"] = fleiss_kappa(table) if len(answers) >= 2 and len(shared) >= 2 else None
    results["kappa_images"] = len(shared) if len(answers) >= 2 else 0

    results["reasons"] = {reason: {t: 0 for t in TRUTHS} for reason in study.reasons}
    for reader, given in answers.items():
        for image_id, entry in given.items():
            for reason in entry["reasons"]:
                results["reasons"][reason][truth[image_id]] += 1
            if entry["comment"]:
                results["comments"].append({"reader": reader, "image": image_id, "truth": truth[image_id],
                                            "answer": entry["answer"], "comment": entry["comment"]})
    for image_id in study.image_ids:
        calls = [given[image_id]["answer"] for given in answers.values() if image_id in given]
        correct = sum(_correct(truth[image_id], call) for call in calls)
        results["images"].append({
            "id": image_id, "truth": truth[image_id], "source": study.key[image_id]["source"], "reads": len(calls),
            "correct": correct, "fraction_correct": correct / len(calls) if calls else None,
            "answers": {a: calls.count(a) for a in ANSWERS}})
    results["images"].sort(key=lambda item: (item["fraction_correct"] is None, item["fraction_correct"] or 0.0,
                                             item["id"]))
    return results


def _percent(proportion: dict) -> str:
    if proportion["value"] is None:
        return "n/a"
    return (f"{100 * proportion['value']:.0f} % ({proportion['successes']}/{proportion['trials']}; "
            f"95 % CI {100 * proportion['ci_low']:.0f}-{100 * proportion['ci_high']:.0f} %)")


def markdown(study: Study, results: dict) -> str:
    lines = [f"# Reader study: {study.title}", "",
             f"{len(study.image_ids)} images ({sum(v['truth'] == 'synthetic' for v in study.key.values())} synthetic), "
             f"{len(results['readers'])} readers. Fake is the positive class; an uncertain answer counts as "
             "neither call. Intervals are 95 % Wilson score intervals.", "",
             "| reader | reads | uncertain | accuracy | sensitivity (fakes called fake) | specificity (reals called real) |",
             "|---|---|---|---|---|---|"]
    rows = list(results["readers"].items()) + [("**pooled**", results["pooled"])]
    for name, m in rows:
        lines.append(f"| {name} | {m['reads']} | {m['uncertain']} | {_percent(m['accuracy'])} | "
                     f"{_percent(m['sensitivity'])} | {_percent(m['specificity'])} |")
    kappa = results["fleiss_kappa"]
    lines += ["", f"Inter-reader agreement (Fleiss' kappa over real / fake / uncertain, "
                  f"{results['kappa_images']} images answered by every reader): "
                  + ("n/a (needs two readers and two shared images)" if kappa is None else f"{kappa:.3f}"),
              "", "![accuracy, sensitivity and specificity](metrics.png)", "", "## Reasons given for fake or uncertain", "",
              "| reason | on real images | on synthetic images |", "|---|---|---|"]
    lines += [f"| {reason} | {n['real']} | {n['synthetic']} |" for reason, n in results["reasons"].items()]
    if results["comments"]:
        lines += ["", "Comments:", ""]
        lines += [f"- {c['reader']} on {c['image']} ({c['truth']}, answered {c['answer']}): {c['comment']}"
                  for c in results["comments"]]
    lines += ["", "## Images from hardest to easiest", "", "![share of readers right per image](difficulty.png)", "",
              "![the hardest images](hardest.png)", "",
              "| image | truth | source | right | real | fake | uncertain |", "|---|---|---|---|---|---|---|"]
    for item in results["images"]:
        a = item["answers"]
        lines.append(f"| {item['id']} | {item['truth']} | {item['source']} | {item['correct']}/{item['reads']} | "
                     f"{a['real']} | {a['fake']} | {a['uncertain']} |")
    return "\n".join(lines) + "\n"


def _save(figure, path: Path) -> None:
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")


def plot(results: dict, folder: Path) -> None:
    """metrics.png (per reader and pooled, with CIs), difficulty.png and reasons.png."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise InputError("The study report's plots need matplotlib: pip install 'medsynth[study]'.") from error
    names = list(results["readers"]) + ["pooled"]
    rows = [results["readers"][n] for n in names[:-1]] + [results["pooled"]]
    figure = Figure(figsize=(1.8 + 1.3 * len(names), 3.4))
    axes = figure.add_subplot()
    for offset, metric in zip((-0.27, 0.0, 0.27), ("accuracy", "sensitivity", "specificity")):
        values = [r[metric]["value"] if r[metric]["value"] is not None else np.nan for r in rows]
        low = [v - r[metric]["ci_low"] if r[metric]["value"] is not None else 0 for v, r in zip(values, rows)]
        high = [r[metric]["ci_high"] - v if r[metric]["value"] is not None else 0 for v, r in zip(values, rows)]
        axes.bar(np.arange(len(names)) + offset, values, 0.25, yerr=[low, high], capsize=3, label=metric)
    axes.set_xticks(np.arange(len(names)), names)
    axes.set_ylim(0, 1.05)
    axes.axhline(0.5, color="grey", lw=0.8, ls="--")
    axes.set_ylabel("share (95 % Wilson CI)")
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    _save(figure, folder / "metrics.png")

    images = results["images"]
    figure = Figure(figsize=(max(4.0, 0.35 * len(images) + 1.5), 3.0))
    axes = figure.add_subplot()
    colours = ["tab:red" if i["truth"] == "synthetic" else "tab:blue" for i in images]
    axes.bar(range(len(images)), [i["fraction_correct"] or 0.0 for i in images], color=colours)
    axes.set_xticks(range(len(images)), [i["id"][:6] for i in images], rotation=90, fontsize=7)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("share of readers right")
    axes.set_title("red: synthetic, blue: real", fontsize=9)
    _save(figure, folder / "difficulty.png")

    reasons = list(results["reasons"])
    figure = Figure(figsize=(4.5, 3.0))
    axes = figure.add_subplot()
    for offset, truth in ((-0.2, "real"), (0.2, "synthetic")):
        axes.bar(np.arange(len(reasons)) + offset, [results["reasons"][r][truth] for r in reasons], 0.4,
                 label=f"on {truth} images")
    axes.set_xticks(np.arange(len(reasons)), reasons)
    axes.set_ylabel("times ticked")
    axes.legend(fontsize=8)
    _save(figure, folder / "reasons.png")


def hardest_images(study: Study, results: dict, folder: Path, count: int = 8, size: int = 192) -> Path:
    """hardest.png: the images readers got wrong most often, labelled with truth and score."""
    from PIL import Image

    from medsynth.pictures import montage, save_picture

    chosen = [item for item in results["images"] if item["reads"]][:count]
    pictures, titles = [], []
    for item in chosen:
        with Image.open(study.folder / "images" / f"{item['id']}.png") as image:
            image.thumbnail((size, size))
            pictures.append(image.copy())
        titles.append(f"{item['truth']}: {item['correct']}/{item['reads']} right")
    return save_picture(montage(pictures, titles, columns=min(4, len(pictures))), folder / "hardest.png")


def analyse_study(study: Study | str | Path, out: str | Path | None = None) -> Path:
    """Write report.md, results.json and the plots into ``out`` (default STUDY/report); return report.md."""
    study = study if isinstance(study, Study) else Study.load(study)
    folder = Path(out) if out is not None else study.folder / "report"
    results = summarise(study)
    folder.mkdir(parents=True, exist_ok=True)
    plot(results, folder)
    hardest_images(study, results, folder)
    write_json(folder / "results.json", results)
    with atomic_output(folder / "report.md") as temporary:
        temporary.write_text(markdown(study, results))
    return folder / "report.md"

