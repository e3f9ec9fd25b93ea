"""Draw the extension and hub-module icons (128x128 PNG) with PIL; run once, outputs are committed."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]


def medsynth_icon() -> Image.Image:
    """A radiograph-like disc under an X-ray cone: MedSynth's mark."""
    size = 128
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([2, 2, size - 3, size - 3], radius=22, fill=(24, 38, 64, 255))
    draw.polygon([(64, 10), (22, 96), (106, 96)], fill=(120, 190, 255, 90))  # X-ray cone
    draw.ellipse([58, 4, 70, 16], fill=(255, 220, 90, 255))  # source
    draw.rectangle([16, 96, 112, 106], fill=(200, 210, 225, 255))  # detector
    glow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(glow).ellipse([44, 48, 84, 84], fill=(255, 120, 90, 230))  # lesion
    image.alpha_composite(glow.filter(ImageFilter.GaussianBlur(3)))
    draw.text((30, 108), "MedSynth", fill=(255, 255, 255, 255))
    return image


if __name__ == "__main__":
    icon = medsynth_icon()
    for path in [ROOT / "Resources" / "MedSynth.png", ROOT / "MedSynth" / "Resources" / "Icons" / "MedSynth.png"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        icon.save(path)
        print(path)
