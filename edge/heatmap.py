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
    """The grey film at ``side`` px with the map blended where it is strong."""
    base = film.convert("L").resize((side, side), Image.BILINEAR).convert("RGB")
    heat = normalise(cam)
    heat_img = Image.fromarray((heat * 255).astype(np.uint8), mode="L").resize((side, side), Image.BICUBIC)
    heat_big = np.asarray(heat_img, dtype=np.float32) / 255
    alpha = (opacity * heat_big)[..., None]
    blended = np.asarray(base, dtype=np.float32) * (1 - alpha) + colormap(heat_big).astype(np.float32) * alpha
    return Image.fromarray(blended.round().astype(np.uint8), mode="RGB")


def overlay_png(film: Image.Image, cam: np.ndarray, side: int = 448) -> bytes:
    buffer = io.BytesIO()
    overlay(film, cam, side).save(buffer, format="PNG", compress_level=1)  # speed over size
    return buffer.getvalue()


def save_overlay(film: Image.Image, cam: np.ndarray, folder: Path, *, name: str) -> Path:
    """Write ``<folder>/<name>.heatmap.png``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.heatmap.png"
    path.write_bytes(overlay_png(film, cam))
    return path
