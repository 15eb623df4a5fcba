"""Class activation map overlays: where on the film the model saw pneumonia.

The converted models expose their class activation map (each 7 x 7 cell's
contribution to the pneumonia logit; their mean *is* the logit), so the map is
exact, not an approximation such as Grad-CAM. Only positive contributions are
drawn: scaled by their maximum, upsampled bilinearly to the film, coloured by a
256-entry table and blended with ``OPACITY`` times that value.

The web page draws the same overlay in the browser from :func:`browser_recipe`
(the map, the colour and weight tables), so the server only composes one when a
program asks for it; batch commands write :func:`overlay_jpeg` files. Composing
is Pillow's C code end to end on a film of ``SIDE`` px: a box reduction, a 7 x 7
bilinear upsample, the colour table as a palette, the weights as a mask, one
integer composite and a JPEG: a few milliseconds per film
(``benchmarks/heatmap_cost.py``).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image

# A perceptually ordered ramp (dark blue -> cyan -> yellow -> red), 5 anchors.
_ANCHORS = np.array([[0, 0, 130], [0, 160, 255], [120, 255, 120], [255, 220, 0], [220, 0, 0]], dtype=np.float32)
#: Long side of an overlay, px; the short side keeps the film's aspect ratio.
SIDE = 448
#: How much of the colour covers the film where the map is strongest.
OPACITY = 0.45
#: The legend's three words, left to right under the colour bar.
LEGEND = ("none", "evidence of pneumonia", "strongest")
LEGEND_HEIGHT = 30
#: Films longer than this many overlay sides are sampled before they are box-reduced.
LARGE = 4
JPEG_QUALITY = 85
SUFFIX = ".heatmap.jpg"


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) to RGB uint8 (H, W, 3)."""
    position = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (position - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).astype(np.uint8)


#: The colour of each map level 0..255.
COLOURS = colormap(np.arange(256, dtype=np.float32) / 255)
#: The blend weight of each map level, in 255ths: OPACITY * level, rounded.
WEIGHTS = np.rint(OPACITY * np.arange(256)).astype(np.uint8)
_PALETTE = COLOURS.flatten().tolist()
_WEIGHT_TABLE = WEIGHTS.tolist()


def normalise(cam: np.ndarray) -> np.ndarray:
    """Positive contributions scaled to [0, 1]; all zeros when nothing points to pneumonia."""
    positive = np.maximum(np.asarray(cam, dtype=np.float32), 0)
    peak = float(positive.max())
    return positive / peak if peak > 0 else positive


def levels(cam: np.ndarray) -> np.ndarray:
    """The normalised map as uint8 levels 0..255 (h, w)."""
    return np.rint(normalise(cam) * 255).astype(np.uint8)


def overlay_size(film_size: tuple[int, int], side: int = SIDE) -> tuple[int, int]:
    """(width, height) with the long side ``side`` at the film's aspect ratio."""
    width, height = film_size
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def grey_base(film: Image.Image, side: int = SIDE) -> Image.Image:
    """The grey (mode "L") film at overlay size: a whole-factor box reduction, then bilinear
    (``reducing_gap=1``: half the time of bilinear from the full film, the same picture at this size).

    A film over ``LARGE`` times the side (a 2500 x 2000 scan) is first sampled to twice the
    overlay's size: a box reduction of all its pixels would take most of the overlay's time
    (1.1 of 4 ms), and the 2 x 2 box after the sampling still smooths the picture shown.
    """
    size = overlay_size(film.size, side)
    grey = film if film.mode == "L" else film.convert("L")
    if grey.size == size:
        return grey
    if max(grey.size) > LARGE * side:
        grey = grey.resize((2 * size[0], 2 * size[1]), Image.NEAREST)
    return grey.resize(size, Image.BILINEAR, reducing_gap=1.0)


def overlay(film: Image.Image, cam: np.ndarray, side: int = SIDE) -> Image.Image:
    """The grey film, its long side ``side`` px at its own aspect ratio, with the map blended in:
    ``grey + (colour - grey) * WEIGHTS[level] / 255`` per channel."""
    base = grey_base(film, side)
    heat = Image.fromarray(levels(cam), mode="L").resize(base.size, Image.BILINEAR)
    mask = heat.point(_WEIGHT_TABLE)
    heat.putpalette(_PALETTE)  # the levels, read as a palette image, become the colour map
    return Image.composite(heat.convert("RGB"), base.convert("RGB"), mask)


@functools.lru_cache(maxsize=32)
def _legend_strip(width: int) -> np.ndarray:
    """The colour bar and its words for an overlay ``width`` px wide, RGB (LEGEND_HEIGHT, width, 3)."""
    from PIL import ImageDraw

    strip = Image.new("RGB", (width, LEGEND_HEIGHT), (0, 0, 0))
    strip.paste(Image.fromarray(COLOURS[np.linspace(0, 255, width).round().astype(np.uint8)][None].repeat(8, 0)),
                (0, 2))
    draw = ImageDraw.Draw(strip)
    low, middle, high = LEGEND
    draw.text((2, 12), low, fill=(255, 255, 255))
    draw.text(((width - draw.textlength(middle)) / 2, 12), middle, fill=(255, 255, 255))
    draw.text((width - draw.textlength(high) - 2, 12), high, fill=(255, 255, 255))
    return np.asarray(strip)


def with_legend(image: Image.Image) -> Image.Image:
    """``image`` above a colour bar saying what the colours mean (for overlays saved as files)."""
    return Image.fromarray(np.concatenate([np.asarray(image), _legend_strip(image.width)]), mode="RGB")


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def overlay_jpeg(film: Image.Image, cam: np.ndarray, side: int = SIDE, *, legend: bool = False) -> bytes:
    image = overlay(film, cam, side)
    return encode_jpeg(with_legend(image) if legend else image)


def browser_recipe(cam: np.ndarray) -> dict:
    """What a page needs to draw :func:`overlay` itself: the raw map and how it is coloured."""
    return {"cam": np.round(np.asarray(cam, dtype=np.float64), 5).tolist(),
            "normalise": "positive part divided by its maximum, as levels 0-255",
            "upsample": "bilinear, pixel centres aligned, edges clamped",
            "blend": "grey + (colour - grey) * weights[level] / 255, per channel",
            "colormap": COLOURS.tolist(), "weights": WEIGHTS.tolist(), "opacity": OPACITY,
            "legend": list(LEGEND)}


def save_overlay(film: Image.Image, cam: np.ndarray, folder: Path, *, name: str) -> Path:
    """Write ``<folder>/<name>.heatmap.jpg``, with a colour legend; return its path.

    ``name`` may hold ``/``: the overlay then goes in the same sub-folder under
    ``folder``, so overlays of different films (``a/b.jpeg``, ``a__b.jpeg``) never
    share a name.
    """
    path = folder / f"{name}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(overlay_jpeg(film, cam, legend=True))
    return path


def require_heatmap(classifier) -> None:
    """Refuse ``--heatmap`` with a model that has no class activation map, before any work."""
    from .errors import PneumoError

    if not classifier.has_heatmap:
        raise PneumoError(f"--heatmap: the model {classifier.id} has no class activation map output "
                          "(the MobileNet and EfficientNet models have one); drop --heatmap or choose another "
                          "--model", code="no_heatmap")
