"""contact_sheet.png: a sample of the dataset's radiographs with their projected masks outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.dataset.recipe import Recipe

SHEET = "contact_sheet.png"
#: Outline colours of the projected structures, in recipe order.
COLORS = [(255, 60, 60), (80, 220, 80), (80, 160, 255), (255, 200, 40), (220, 80, 255), (40, 230, 230)]
CELL_PIXELS = 192


def _read_plane(path: Path) -> np.ndarray:
    from medsynth.io import read_volume

    return read_volume(path).array[0]


def contact_sheet(out_dir: str | Path, recipe: Recipe, rows: list[dict]) -> Path | None:
    """Tile up to ``output.contact_sheet`` evenly chosen views, each mask's outline in its colour."""
    from PIL import Image

    from medsynth.drr.display import to_uint8
    from medsynth.pictures import montage, overlay_outlines, save_picture

    count = min(recipe.output.contact_sheet, len(rows))
    if count == 0 or "nifti" not in recipe.output.formats:
        return None
    out_dir = Path(out_dir)
    chosen = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, count).round().astype(int)]
    names = list(recipe.labels.structures)
    images, titles = [], []
    for row in chosen:
        log = _read_plane(out_dir / row["file.log"])
        gray, _window = to_uint8(log)
        masks = [_read_plane(out_dir / row[f"file.mask.{name}"]) > 0 for name in names if f"file.mask.{name}" in row]
        picture = Image.fromarray(overlay_outlines(gray, masks, COLORS))
        scale = CELL_PIXELS / max(picture.size)
        images.append(picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                     Image.NEAREST))
        titles.append(f"{row['case']} {row['variant'][:11]} v{row['view']}")
    legend = ", ".join(f"{name}" for name in names)
    sheet = montage(images, titles, columns=min(6, len(images)))
    if legend:
        from PIL import ImageDraw

        canvas = Image.new("RGB", (sheet.width, sheet.height + 16))
        canvas.paste(sheet, (0, 16))
        draw = ImageDraw.Draw(canvas)
        x = 4
        for index, name in enumerate(names):
            draw.text((x, 2), name, fill=COLORS[index % len(COLORS)])
            x += 8 * len(name) + 16
        sheet = canvas
    return save_picture(sheet, out_dir / SHEET)
