"""The one film-to-tensor function, shared by training and the device.

Training calls :func:`to_tensor` on every film, and the device calls it with the
parameters stored in the model card, so both see exactly the same pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

SCALINGS = {
    # name: (multiplier, offset) applied to 0..255 pixel values
    "unit": (1.0 / 255.0, 0.0),  # [0, 1]
    "symmetric": (1.0 / 127.5, -1.0),  # [-1, 1], MobileNet's convention
    "lite": (1.0 / 128.0, -127.0 / 128.0),  # (x - 127) / 128, EfficientNet-Lite's ImageNet convention
}


@dataclass(frozen=True)
class PreprocessSpec:
    """How a grey 8-bit film becomes the model's input tensor."""

    size: int = 224  # square side in pixels; films are stretched, as in training
    channels: int = 1  # 1 for grey, 3 for grey replicated (ImageNet weights)
    scaling: str = "symmetric"
    resample: str = "bilinear"
    normalise: str = "none"  # "percentile": stretch each film's 1st-99th percentile to 0-255

    def __post_init__(self):
        if self.scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {self.scaling!r}; expected one of {sorted(SCALINGS)}")
        if self.channels not in (1, 3):
            raise ValueError("channels must be 1 or 3")
        if self.resample not in _RESAMPLE:
            raise ValueError(f"unknown resample {self.resample!r}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"unknown normalise {self.normalise!r}; expected one of {NORMALISATIONS}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessSpec:
        return cls(**{k: data[k] for k in ("size", "channels", "scaling", "resample", "normalise") if k in data})


_RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "area": Image.BOX}
NORMALISATIONS = ("none", "percentile")


def stretch_percentiles(pixels: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map a uint8 film's low..high percentiles to 0..255 (a table lookup on the model-size image),
    so exposure and contrast differences between scanners shrink before the model sees them."""
    cumulative = np.cumsum(np.bincount(pixels.ravel(), minlength=256)) / pixels.size
    lo, hi = np.searchsorted(cumulative, [low / 100.0, high / 100.0])
    if hi - lo < 2:
        return pixels
    table = np.clip(np.rint((np.arange(256) - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
    return table[pixels]


def resize_grey(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """Resize a mode "L" film to the model's side and normalise it; return uint8 (size, size)."""
    return normalise(resize_to_side(image, spec), spec)


def resize_to_side(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """The resize alone: a mode "L" film to uint8 (size, size), before any normalisation."""
    if image.mode != "L":
        raise ValueError(f"expected a grey (mode L) film, got {image.mode}")
    if image.size != (spec.size, spec.size):
        # reducing_gap: a fast box reduction first, then the filter; near-identical
        # output to a plain resize for photographs of films, much faster on 12 MP.
        image = image.resize((spec.size, spec.size), _RESAMPLE[spec.resample], reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)


def normalise(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The spec's normalisation of resized uint8 pixels (none, or the percentile stretch)."""
    return stretch_percentiles(pixels) if spec.normalise == "percentile" else pixels


def scale_pixels(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 pixels (..., H, W) to the model's float32 input (..., H, W, C)."""
    multiplier, offset = SCALINGS[spec.scaling]
    scaled = pixels.astype(np.float32) * np.float32(multiplier) + np.float32(offset)
    scaled = scaled[..., np.newaxis]
    if spec.channels == 3:
        scaled = np.repeat(scaled, 3, axis=-1)
    return scaled


def to_tensor(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """A grey film to the model's float32 input of shape (size, size, channels)."""
    return scale_pixels(resize_grey(image, spec), spec)
