"""A study folder: what readers may see, the answer key they may not, and their answers.

Layout::

    STUDY/study.json        title, reasons, image ids (served to readers)
    STUDY/key.json          truth and source file of each image id (never served)
    STUDY/images/<id>.png   blinded images
    STUDY/answers/<reader>.json   one file per reader, rewritten atomically after every answer
    STUDY/report/           written by ``analyse``

Each reader sees the images in an order of their own (seeded by the study seed and the reader's
name), so an image's position says nothing about it and order effects average out over readers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.seeds import item_rng

FORMAT = "medsynth-study"
ANSWERS = ("real", "fake", "uncertain")
TRUTHS = ("real", "synthetic")
READER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def write_json(path: Path, data) -> None:
    """Write JSON atomically: a reader's answers are never half-written, even if the server dies."""
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def check_reader(reader: str) -> str:
    reader = str(reader).strip()
    if not READER_PATTERN.match(reader):
        raise InputError(f"Reader name {reader!r} is not usable: use 1-40 letters, digits, '.', '_' or '-' "
                         "(for example 'reader1' or 'j.smith').")
    return reader


@dataclass
class Study:
    folder: Path
    title: str
    reasons: tuple[str, ...]
    seed: int
    image_ids: list[str]
    key: dict[str, dict] = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, folder: str | Path) -> "Study":
        folder = Path(folder)
        manifest_path, key_path = folder / "study.json", folder / "key.json"
        if not manifest_path.is_file() or not key_path.is_file():
            raise InputError(f"{folder} is not a MedSynth study (no study.json/key.json); "
                             "make one with `medsynth study create --real DIR --synthetic DIR --out STUDY`.")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise InputError(f"{manifest_path} is not a MedSynth study manifest; recreate the study.")
        key = json.loads(key_path.read_text())
        ids = [item["id"] for item in manifest["images"]]
        missing = [i for i in ids if i not in key or not (folder / "images" / f"{i}.png").is_file()]
        if missing:
            raise InputError(f"{folder}: {len(missing)} images lack their file or answer key (e.g. {missing[0]}); "
                             "recreate the study.")
        return cls(folder, manifest["title"], tuple(manifest["reasons"]), int(manifest["seed"]), ids, key)

    def image_path(self, image_id: str) -> Path | None:
        """The blinded PNG of ``image_id``, or None when it is not an image of this study."""
        return self.folder / "images" / f"{image_id}.png" if image_id in self.key else None

    def order(self, reader: str) -> list[str]:
        """The reader's own order of the images."""
        permutation = item_rng(self.seed, "reader order", check_reader(reader)).permutation(len(self.image_ids))
        return [self.image_ids[i] for i in permutation]

    def answers_path(self, reader: str) -> Path:
        return self.folder / "answers" / f"{check_reader(reader)}.json"

    def answers(self, reader: str) -> dict[str, dict]:
        path = self.answers_path(reader)
        return json.loads(path.read_text())["answers"] if path.is_file() else {}

    def readers(self) -> list[str]:
        folder = self.folder / "answers"
        return sorted(p.stem for p in folder.glob("*.json") if READER_PATTERN.match(p.stem)) if folder.is_dir() else []

    def next_image(self, reader: str) -> str | None:
        done = self.answers(reader)
        return next((i for i in self.order(reader) if i not in done), None)

    def record(self, reader: str, image_id: str, answer: str, reasons=(), comment: str = "",
               seconds: float | None = None) -> dict:
        """Store one answer (a repeated answer replaces the earlier one) and write the reader's file."""
        reader = check_reader(reader)
        if image_id not in self.key:
            raise InputError(f"{image_id!r} is not an image of this study; reload the page.")
        if answer not in ANSWERS:
            raise InputError(f"Answer {answer!r} is not one of {', '.join(ANSWERS)}.")
        reasons = sorted({str(r) for r in reasons})
        unknown = [r for r in reasons if r not in self.reasons]
        if unknown:
            raise InputError(f"Unknown reason(s) {unknown}; tick from {', '.join(self.reasons)} or write a comment.")
        if answer == "real" and (reasons or comment.strip()):
            reasons, comment = [], ""  # reasons explain a doubt; a "real" answer has none
        entry = {"answer": answer, "reasons": reasons, "comment": str(comment).strip()[:2000],
                 "seconds": None if seconds is None else round(float(seconds), 2), "time": time.time()}
        with self._lock:
            answers = self.answers(reader)
            answers[image_id] = entry
            write_json(self.answers_path(reader), {"reader": reader, "answers": answers})
        return entry
