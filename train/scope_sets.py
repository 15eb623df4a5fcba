"""The films the out-of-scope check is fit with and measured on (workstation side).

In scope: the pediatric training and validation films. Out of scope, by kind:
``adult`` (the shared full-size adult films, with crops, scaling and gamma for
more), ``inverted`` and ``rotated`` (90/180/270-degree) copies of pediatric films,
and ``non_chest`` (grey images that are not chests, from scikit-image's sample data).
:func:`measure` runs films through the device's own path (``Classifier.predict_film``)
and counts what the scope check refuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..edge.errors import FilmError
from ..edge.films import Film, read_film

#: scikit-image sample images that ship with the package (no download), none a chest film.
NON_CHEST = ("camera", "astronaut", "coins", "moon", "page", "text", "clock", "brick", "grass", "gravel",
             "cell", "hubble_deep_field", "immunohistochemistry", "chelsea", "coffee", "rocket", "retina",
             "shepp_logan_phantom", "logo", "binary_blobs", "colorwheel", "horse", "checkerboard")

ROTATIONS = {"rotated_90": 1, "rotated_180": 2, "rotated_270": 3}


def grey_film(pixels: np.ndarray, fmt: str = "check set") -> Film:
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="L")
    return Film(image, image.size, "L", fmt)


def inverted(film: Film) -> Film:
    return grey_film(255 - np.asarray(film.image), "inverted copy")


def rotated(film: Film, quarter_turns: int) -> Film:
    return grey_film(np.rot90(np.asarray(film.image), quarter_turns), f"rotated copy ({90 * quarter_turns})")


def adult_films(fullres: Path) -> list[tuple[str, Film]]:
    """The shared adult films (PNG), each named by its file."""
    return [(path.name, read_film(path)) for path in sorted(Path(fullres).glob("*.png"))]


def non_chest_films() -> list[tuple[str, Film]]:
    """Grey versions of scikit-image's sample pictures, at least 256 px on the short side."""
    from skimage import data

    films = []
    for name in NON_CHEST:
        try:
            array = np.asarray(getattr(data, name)())
        except Exception:  # a sample that needs a download (pooch) in this install
            continue
        if array.dtype == bool or array.dtype.kind == "f":
            array = array.astype(np.float64)
            array = 255 * (array - array.min()) / max(float(array.max() - array.min()), 1e-9)
        if array.ndim == 3:
            array = array[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        image = Image.fromarray(np.rint(array).clip(0, 255).astype(np.uint8), mode="L")
        scale = max(1.0, 256 / min(image.size))
        if scale > 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
        films.append((name, grey_film(np.asarray(image), "non-chest")))
    return films


def augmented(film: Film, count: int, rng: np.random.Generator) -> list[Film]:
    """``count`` variants: a random crop (55-100% of each side), a random gamma (0.6-1.6)."""
    pixels = np.asarray(film.image)
    height, width = pixels.shape
    out = []
    for _ in range(count):
        h, w = (int(side * rng.uniform(0.55, 1.0)) for side in (height, width))
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        crop = pixels[top:top + h, left:left + w].astype(np.float32) / 255
        gamma = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
        out.append(grey_film(np.rint(255 * crop ** gamma), film.format))
    return out


def measure(classifier, films: Iterable[Film]) -> dict:
    """How many of ``films`` the scope check refuses, through ``classifier.predict_film``.

    The classifier must allow out-of-scope films (so each is scored and marked);
    films the quality gate refuses are counted apart, not as scope refusals.
    """
    if not classifier.options.allow_out_of_scope:
        raise ValueError("measure needs a classifier with allow_out_of_scope")
    reasons: Counter = Counter()
    checked = quality = 0
    scope_ms = []
    for film in films:
        try:
            prediction = classifier.predict_film(film)
        except FilmError:
            quality += 1
            continue
        checked += 1
        scope_ms.append(prediction.timings_ms["scope"])
        decision = prediction.scope
        if not decision.in_scope:
            reasons[decision.reason] += 1
    refused = sum(reasons.values())
    return {"films": checked, "refused": refused, "rate": refused / checked if checked else None,
            "quality_gate_refused": quality, "scope_ms_mean": round(float(np.mean(scope_ms)), 4) if scope_ms else None,
            "reasons": {reason: n for reason, n in reasons.most_common() if n}}


def check_sets(in_scope: list[Film], fullres: Path | None, *, with_non_chest: bool = True
               ) -> Iterator[tuple[str, list[Film]]]:
    """The out-of-scope check sets built from ``in_scope`` films and the named negatives."""
    yield "inverted", [inverted(f) for f in in_scope]
    for name, turns in ROTATIONS.items():
        yield name, [rotated(f, turns) for f in in_scope]
    if fullres is not None:
        yield "adult (fullres, in the fit)", [film for _, film in adult_films(fullres)]
    if with_non_chest:
        yield "non_chest (skimage, in the fit)", [film for _, film in non_chest_films()]


def format_rates(rates: dict) -> str:
    """One line per set: refused/films and the rate."""
    lines = []
    for name, r in rates.items():
        if isinstance(r, dict) and r.get("films"):
            lines.append(f"  {name:<40} refused {r['refused']:>4}/{r['films']:<4} {r['rate']:7.1%}")
    return "\n".join(lines)
