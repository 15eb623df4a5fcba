"""A quality gate: refuse, with a reason, a film unlikely to be a chest radiograph.

What it catches: colour photographs (colour that varies across the picture; a
grey film saved as RGB passes, and so does one photographed under a colour
cast), blank or near-uniform images, images smaller than the model's input
on their short side, and extreme aspect ratios (a strip, a screenshot of a form).
What it cannot catch: a grey image that is not a chest film (a hand, a knee, a
page of text), a lateral view, an adult film, a film photographed at a steep
angle or under glare. Those are scored as if they were pediatric frontal films.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import FilmError
from .films import Film

# films.colour_spread (0..255), measured: training JPEGs and full-size PNGs 0 (< 1e-12);
# full-size films JPEG'd under a warm cast or with chroma noise <= 1.1; a colour Doppler
# ultrasound (pydicom's examples_rgb_color.dcm) 28; hue sweeps 9.8 at saturation 0.1, 20 at 0.2.
MAX_COLOUR_SPREAD = 8.0
MIN_CONTRAST = 8.0  # standard deviation of grey levels (0..255)
MAX_ASPECT = 2.5  # long side / short side


def check_film(film: Film, model_side: int, *, pixels: np.ndarray | None = None) -> None:
    """Raise :class:`FilmError` (code ``quality_*``) when the film fails the gate.

    ``pixels``: the film already resized to the model's input (uint8, before any
    normalisation), on which the contrast is then measured at no cost; without
    them, on a box-reduced copy of the film.
    """
    check_shape_and_colour(film, model_side)
    check_contrast(_reduced(film.image) if pixels is None else pixels)


def check_shape_and_colour(film: Film, model_side: int) -> None:
    """The gate's checks that need no pixels: size, aspect ratio and the reader's colour spread."""
    width, height = film.original_size
    if min(width, height) < model_side:
        raise FilmError(f"too small: {width} x {height}, the short side is under the model's "
                        f"{model_side} px input", code="quality_too_small")
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise FilmError(f"extreme aspect ratio {aspect:.1f}:1 ({width} x {height}); a chest film is "
                        f"at most {MAX_ASPECT}:1", code="quality_aspect")
    if film.colour_spread > MAX_COLOUR_SPREAD:
        raise FilmError(f"looks like a colour photograph (colour spread {film.colour_spread:.1f} > "
                        f"{MAX_COLOUR_SPREAD}); a radiograph is grey", code="quality_colour")


def check_contrast(pixels: np.ndarray) -> None:
    """Refuse a near-uniform film from a small grey copy of it (the model's input, or a reduction)."""
    contrast = grey_spread(np.asarray(pixels))
    if contrast < MIN_CONTRAST:
        raise FilmError(f"near-uniform or blank (grey-level spread {contrast:.1f} < {MIN_CONTRAST})",
                        code="quality_blank")


def grey_spread(pixels: np.ndarray) -> float:
    """The standard deviation of grey levels. For uint8 pixels it comes from two exact integer
    sums (the squares fit 16 bits), in half the time of numpy's float std and without its
    rounding."""
    if pixels.dtype != np.uint8:
        return float(np.asarray(pixels, dtype=np.float32).std())
    count = pixels.size
    total = int(pixels.sum(dtype=np.uint64))
    squares = np.square(pixels, dtype=np.uint16).sum(dtype=np.uint64)
    return math.sqrt(max(count * int(squares) - total * total, 0)) / count


def _reduced(image):
    """A whole-factor box reduction of a grey film to a short side of 128 px or more."""
    factor = min(image.size) // 128
    return image.reduce(factor) if factor >= 2 else image
