"""Class activation map overlays: where on the film the model saw pneumonia.

The MobileNet's converted model exposes its class activation map (each 7 x 7
cell's contribution to the pneumonia logit; their mean *is* the logit), so the
map is exact, not an approximation such as Grad-CAM. Only positive contributions
are drawn.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

# A perceptually ordered ramp (dark blue -> cyan -> yellow -> red), 5 anchors.
_ANCHORS = np.array([[0, 0, 130], [0, 160, 255], [120, 255, 120], [255, 220, 0], [220, 0, 0]], dtype=np.float32)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) to RGB uint8 (H, W, 3)."""
    position = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (position - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).astype(np.uint8)


def normalise(cam: np.ndarray) -> np.ndarray:
    """Positive contributions scaled to [0, 1]; all zeros when nothing points to pneumonia."""
    positive = np.maximum(np.asarray(cam, dtype=np.float32), 0)
    peak = float(positive.max())
    return positive / peak if peak > 0 else positive


def overlay(film: Image.Image, cam: np.ndarray, side: int = 448, *, opacity: float = 0.45) -> Image.Image:
    """The grey film, its long side ``side`` px at the film's own aspect ratio, with the map
    blended where it is strong."""
    scale = side / max(film.size)
    size = (max(1, round(film.width * scale)), max(1, round(film.height * scale)))
    base = film.convert("L").resize(size, Image.BILINEAR).convert("RGB")
    heat = normalise(cam)
    heat_img = Image.fromarray((heat * 255).astype(np.uint8), mode="L").resize(size, Image.BICUBIC)
    heat_big = np.asarray(heat_img, dtype=np.float32) / 255
    alpha = (opacity * heat_big)[..., None]
    blended = np.asarray(base, dtype=np.float32) * (1 - alpha) + colormap(heat_big).astype(np.float32) * alpha
    return Image.fromarray(blended.round().astype(np.uint8), mode="RGB")


def with_legend(image: Image.Image, height: int = 30) -> Image.Image:
    """``image`` above a colour bar saying what the colours mean (for overlays saved as files)."""
    from PIL import ImageDraw

    width = image.width
    canvas = Image.new("RGB", (width, image.height + height), (0, 0, 0))
    canvas.paste(image, (0, 0))
    bar = colormap(np.tile(np.linspace(0, 1, width, dtype=np.float32), (8, 1)))
    canvas.paste(Image.fromarray(bar, mode="RGB"), (0, image.height + 2))
    draw = ImageDraw.Draw(canvas)
    y = image.height + 12
    draw.text((2, y), "none", fill=(255, 255, 255))
    label = "evidence of pneumonia"
    draw.text(((width - draw.textlength(label)) / 2, y), label, fill=(255, 255, 255))
    draw.text((width - draw.textlength("strongest") - 2, y), "strongest", fill=(255, 255, 255))
    return canvas


def overlay_png(film: Image.Image, cam: np.ndarray, side: int = 448, *, legend: bool = False) -> bytes:
    image = overlay(film, cam, side)
    buffer = io.BytesIO()
    (with_legend(image) if legend else image).save(buffer, format="PNG", compress_level=1)  # speed over size
    return buffer.getvalue()


def save_overlay(film: Image.Image, cam: np.ndarray, folder: Path, *, name: str) -> Path:
    """Write ``<folder>/<name>.heatmap.png``, with a colour legend; return its path.

    ``name`` may hold ``/``: the overlay then goes in the same sub-folder under
    ``folder``, so overlays of different films (``a/b.jpeg``, ``a__b.jpeg``) never
    share a name.
    """
    path = folder / f"{name}.heatmap.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(overlay_png(film, cam, legend=True))
    return path


def require_heatmap(classifier) -> None:
    """Refuse ``--heatmap`` with a model that has no class activation map, before any work."""
    from .errors import PneumoError

    if not classifier.has_heatmap:
        raise PneumoError(f"--heatmap: the model {classifier.id} has no class activation map output "
                          "(the MobileNet models have one); drop --heatmap or choose another --model",
                          code="no_heatmap")
