"""Scoring labelled films with a .tflite model through the device's own path."""

from __future__ import annotations

import numpy as np

from ..classifier import Classifier
from ..errors import FilmError
from .listing import LabelledFilm


def score_labelled(classifier: Classifier, films: list[LabelledFilm]
                   ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Labels, probabilities, and (path, error) for films that could not be scored."""
    labels, scores, errors = [], [], []
    for film in films:
        try:
            prediction = classifier.predict(film.path)
        except FilmError as exc:
            errors.append((str(film.path), f"{exc.code}: {exc}"))
            continue
        labels.append(film.label)
        scores.append(prediction.probability)
    return np.array(labels, dtype=np.int64), np.array(scores, dtype=np.float64), errors
