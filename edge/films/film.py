"""The decoded film every reader returns, the size limit they share, and the grey conversion.

Its own module so that the raster and DICOM readers both build on it without
importing each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Union

import numpy as np
from PIL import Image

from ..errors import FilmError

#: Largest film accepted, in pixels (a 12 MP phone photo and a 3000 x 2500 scan
#: fit with room to spare; a decompression bomb does not).
MAX_PIXELS = 64_000_000

Source = Union[str, os.PathLike, bytes]


@dataclass
class Film:
    """A decoded film: ``image`` is mode "L"; the rest describes the original."""

    image: Image.Image
    original_size: tuple[int, int]
    original_mode: str
    format: str
    colour_spread: float = 0.0  # colour not explained by a per-channel tint; 0 for grey films
    tags: dict = field(default_factory=dict)  # what a DICOM header says (PatientAge, BodyPartExamined, ViewPosition)



def to_grey(image: Image.Image) -> tuple[Image.Image, float]:
    """Any Pillow mode to mode "L"; also return how colourful the original was."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"):
        rgb = image.convert("RGB")
        return rgb.convert("L"), colour_spread(rgb)
    if mode == "L":
        return image, 0.0
    if mode in ("LA", "La", "1"):
        return image.convert("L"), 0.0
    if mode.startswith("I") or mode == "F":
        return high_depth_to_grey(np.asarray(image)), 0.0
    raise FilmError(f"unsupported image mode {mode!r}", code="unsupported_mode")


def high_depth_to_grey(pixels: np.ndarray) -> Image.Image:
    """Stretch a 12/16-bit or float film linearly from its darkest to its brightest pixel.

    Scanners and digitisers rarely use the full 16-bit range, so a fixed divisor
    would leave most films nearly black; min-max keeps the film's own contrast.
    The arithmetic is one float32 array, in place, whatever the input's type: a
    3000 x 2500 scan then needs 30 MB of working memory, not the 180 MB of float64
    temporaries, and a float film's non-finite pixels are masked, not copied out.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    finite = None
    if pixels.dtype.kind == "f":
        finite = np.isfinite(pixels)
        if not finite.any():
            raise FilmError("the film holds no finite pixel values", code="corrupt")
        low = float(np.min(pixels, where=finite, initial=np.inf))
        high = float(np.max(pixels, where=finite, initial=-np.inf))
    else:
        low, high = float(pixels.min()), float(pixels.max())
    span = high - low if high > low else 1.0
    scaled = np.subtract(pixels, low, dtype=np.float32)
    if finite is not None and not finite.all():
        scaled[~finite] = 0.0
    scaled *= 255.0 / span
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def colour_spread(rgb: Image.Image) -> float:
    """Colour that a tint cannot explain, on a 64 px thumbnail, in grey levels (0..255).

    Each channel is fitted as gain x grey + offset (least squares); the result is
    the 95th percentile of each pixel's mean absolute residual. A grey film stored
    as RGB scores 0, and so does a film photographed on a light box under a colour
    cast, which is exactly such a per-channel gain and offset (a plain mean
    |R-G|, |G-B| puts a warm cast at 13-16). The percentile, not the mean, is what
    sees colour confined to part of the picture, such as a Doppler overlay.
    """
    thumb = rgb.copy()
    thumb.thumbnail((64, 64))
    pixels = np.asarray(thumb, dtype=np.float64).reshape(-1, 3)
    grey = pixels.mean(axis=1)
    design = np.stack([grey, np.ones_like(grey)], axis=1)
    fit = np.linalg.lstsq(design, pixels, rcond=None)[0]
    return float(np.percentile(np.abs(pixels - design @ fit).mean(axis=1), 95))
