"""The dataset manifest: one row per image, as Parquet (for pandas/pyarrow) and JSON (for anyone).

Rows are the items' own item.json files, gathered in plan order, so the manifest of a resumed or
distributed run is the one an uninterrupted local run writes. Both files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from medsynth import __version__
from medsynth.dataset.job import ITEM_FILE
from medsynth.dataset.plan import PlanItem
from medsynth.dataset.recipe import Recipe
from medsynth.io.atomic import atomic_output

PARQUET = "manifest.parquet"
JSON = "manifest.json"


def read_rows(out_dir: str | Path, items: list[PlanItem]) -> list[dict]:
    """The rows of the finished items, in plan order (unfinished items are left out)."""
    rows = []
    for item in items:
        path = Path(out_dir) / item.key / ITEM_FILE
        if path.is_file():
            rows.append(json.loads(path.read_text()))
    return rows


def write_manifest(out_dir: str | Path, recipe: Recipe, items: list[PlanItem], failures: dict[str, str] | None = None
                   ) -> tuple[Path | None, Path, int]:
    """Write manifest.json and manifest.parquet; return their paths (Parquet: None without pyarrow,
    the ``distributed`` extra) and the number of rows."""
    out_dir = Path(out_dir)
    rows = read_rows(out_dir, items)
    document = {"medsynth_version": __version__, "synthetic": True, "recipe_sha256": recipe.digest(),
                "recipe": recipe.raw, "planned": len(items), "complete": len(rows) == len(items),
                "failed": dict(sorted((failures or {}).items())), "rows": rows}
    json_path = out_dir / JSON
    with atomic_output(json_path) as temp:
        temp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # a core install: manifest.json alone (pip install "medsynth[distributed]" adds Parquet)
        return None, json_path, len(rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))  # every row's keys (tumor.* only in variants)
    table = (pa.table({key: [row.get(key) for row in rows] for key in columns}) if rows
             else pa.table({"item": pa.array([], pa.string())}))
    table = table.replace_schema_metadata({"medsynth_version": __version__, "recipe_sha256": recipe.digest()})
    parquet_path = out_dir / PARQUET
    with atomic_output(parquet_path) as temp:
        pq.write_table(table, temp)
    return parquet_path, json_path, len(rows)
