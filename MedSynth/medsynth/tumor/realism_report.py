"""``medsynth tumor realism``: each tumor's statistics against the literature's ranges for its organ.

Reads the tumors.json files a synthesis writes, looks up the reference ranges of each tumor's
organ, lesion and contrast phase (``data/reference_ranges.json``, with their sources), prints
one row per tumor and statistic, and draws one strip per statistic: the reference range as a
band, each tumor as a dot (green inside, red outside).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from medsynth.errors import InputError

RANGES_FILE = Path(__file__).resolve().parent / "data" / "reference_ranges.json"
#: Statistics reported, in order: (name, where in a tumor description, unit).
STATISTICS = (("contrast_hu", "realism", "HU"), ("core_mean_hu", "realism", "HU"), ("tumor_std_hu", "realism", "HU"),
              ("edge_hu_per_mm", "realism", "HU/mm"), ("sphericity", "realism", ""),
              ("diameter_mm", "tumor", "mm"), ("parenchyma_hu", "tumor", "HU"))


@dataclass
class Check:
    """One statistic of one tumor against its reference range."""

    source: str  # the tumors.json it came from
    tumor: int
    organ: str
    lesion: str
    phase: str
    statistic: str
    value: float | None
    low: float
    high: float
    inside: bool | None  # None: the statistic is undefined for this tumor


def load_ranges(path: Path = RANGES_FILE) -> dict[tuple[str, str, str], dict]:
    """(organ, lesion, phase) -> {"ranges": {statistic: [low, high]}, "sources": [...], "basis": ...}."""
    data = json.loads(Path(path).read_text())
    return {(e["organ"], e["lesion"], e["phase"]): e for e in data["entries"]}


def find_descriptions(inputs: Sequence[Path]) -> list[Path]:
    """tumors.json files: given directly, or found under the given folders (sorted)."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files += sorted(item.rglob("tumors.json"))
        elif item.is_file():
            files.append(item)
        else:
            raise InputError(f"{item} does not exist. Give tumors.json files or folders holding them.")
    if not files:
        raise InputError(f"No tumors.json under {', '.join(str(p) for p in inputs)}. Run 'medsynth tumor' first.")
    return files


def reference_key(tumor: dict) -> tuple[str, str, str]:
    """The tumor's (organ, lesion, phase); liver lesions are keyed by their density."""
    look = tumor.get("look", {})
    organ = look.get("organ", "liver")
    lesion = look.get("lesion", "lesion")
    if organ == "liver":
        lesion = look.get("density", "hypo")
    return organ, lesion, look.get("phase", "portal_venous")


def tumor_value(tumor: dict, statistic: str, where: str) -> float | None:
    if where == "realism":
        value = tumor.get("realism", {}).get(statistic)
    elif statistic == "diameter_mm":
        value = tumor.get("equivalent_diameter_mm")
    else:
        value = tumor.get(statistic)
    return None if value is None or not np.isfinite(value) else float(value)


def check_tumors(files: Iterable[Path], ranges: dict | None = None) -> list[Check]:
    ranges = ranges or load_ranges()
    checks = []
    for path in files:
        try:
            tumors = json.loads(Path(path).read_text())["tumors"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{path} is not a MedSynth tumors.json (no 'tumors' list).") from None
        for tumor in tumors:
            key = reference_key(tumor)
            if key not in ranges:
                raise InputError(f"No reference ranges for a {key[1]} in the {key[0]} ({key[2]}); "
                                 f"{RANGES_FILE.name} lists organ/lesion/phase entries.")
            for statistic, where, _unit in STATISTICS:
                if statistic not in ranges[key]["ranges"]:
                    continue
                low, high = ranges[key]["ranges"][statistic]
                value = tumor_value(tumor, statistic, where)
                inside = None if value is None else bool(low <= value <= high)
                checks.append(Check(str(path), int(tumor["index"]), *key, statistic, value, low, high, inside))
    return checks


def format_table(checks: Sequence[Check]) -> str:
    """A plain-text table, one row per tumor and statistic, then a summary per statistic."""
    lines = [f"{'file':<28} {'#':>3} {'organ/lesion/phase':<34} {'statistic':<15} {'value':>9} {'range':>17}  ok"]
    for c in checks:
        value = "n/a" if c.value is None else f"{c.value:9.2f}"
        ok = "-" if c.inside is None else ("yes" if c.inside else "NO")
        name = Path(c.source).parent.name or Path(c.source).name
        lines.append(f"{name[-28:]:<28} {c.tumor:>3} {c.organ + '/' + c.lesion + '/' + c.phase:<34} {c.statistic:<15} "
                     f"{value:>9} {f'[{c.low:g}, {c.high:g}]':>17}  {ok}")
    lines.append("")
    for statistic, _where, unit in STATISTICS:
        rows = [c for c in checks if c.statistic == statistic and c.inside is not None]
        if rows:
            inside = sum(c.inside for c in rows)
            lines.append(f"{statistic:<15} {inside}/{len(rows)} inside the reference range {unit}".rstrip())
    return "\n".join(lines)


def write_json(checks: Sequence[Check], path: Path) -> Path:
    from medsynth.io.atomic import atomic_output

    with atomic_output(path) as temp:
        temp.write_text(json.dumps([asdict(c) for c in checks], indent=1) + "\n")
    return path


def plot_checks(checks: Sequence[Check], path: Path) -> Path:
    """One strip per statistic and reference range: the range as a grey band, tumors as dots."""
    from PIL import Image, ImageDraw

    from medsynth.pictures import save_picture

    groups: dict[tuple, list[Check]] = {}
    for c in checks:
        groups.setdefault((c.statistic, c.organ, c.lesion, c.phase, c.low, c.high), []).append(c)
    width, row, left, right = 900, 34, 330, 30
    image = Image.new("RGB", (width, row * max(len(groups), 1) + 30), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), "tumor statistics (dots) against reference ranges (grey): green inside, red outside",
              fill=(0, 0, 0))
    for number, ((statistic, organ, lesion, phase, low, high), items) in enumerate(sorted(groups.items(),
                                                                                         key=lambda g: g[0][:4])):
        top = 30 + number * row
        values = [c.value for c in items if c.value is not None]
        lo = min([low] + values)
        hi = max([high] + values)
        pad = 0.08 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad

        def x(value: float) -> int:
            return int(left + (value - lo) / (hi - lo) * (width - left - right))

        draw.text((10, top + 10), f"{organ}/{lesion}/{phase}: {statistic}", fill=(0, 0, 0))
        draw.rectangle([x(low), top + 8, x(high), top + 26], fill=(215, 215, 215))
        draw.text((x(low), top - 2), f"{low:g}", fill=(90, 90, 90))
        draw.text((x(high) - 18, top - 2), f"{high:g}", fill=(90, 90, 90))
        for c in items:
            if c.value is None:
                continue
            colour = (30, 160, 60) if c.inside else (220, 40, 40)
            cx = x(c.value)
            draw.ellipse([cx - 4, top + 13, cx + 4, top + 21], fill=colour)
    return save_picture(image, path)
