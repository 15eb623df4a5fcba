"""Decode labelled films once, with the device's own preprocessing, into uint8 arrays."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..edge.errors import FilmError
from ..edge.films import read_film
from ..edge.labelled.listing import LabelledFilm
from ..edge.preprocess import PreprocessSpec, resize_grey


def _decode(args):
    path, spec = args
    try:
        return resize_grey(read_film(path, min_size=spec.size).image, spec), None
    except FilmError as exc:
        return None, f"{exc.code}: {exc}"


def load_pixels(films: list[LabelledFilm], spec: PreprocessSpec, workers: int = 2
                ) -> tuple[np.ndarray, np.ndarray, list[LabelledFilm], list[tuple[str, str]]]:
    """Pixels (N, size, size) uint8, labels (N,), the films kept, and (path, reason) skipped."""
    with ProcessPoolExecutor(workers) as pool:
        decoded = list(pool.map(_decode, [(f.path, spec) for f in films], chunksize=64))
    kept, pixels, skipped = [], [], []
    for film, (array, error) in zip(films, decoded):
        if error:
            skipped.append((str(film.path), error))
        else:
            kept.append(film)
            pixels.append(array)
    stack = np.stack(pixels) if pixels else np.zeros((0, spec.size, spec.size), np.uint8)
    return stack, np.array([f.label for f in kept], dtype=np.float32), kept, skipped
