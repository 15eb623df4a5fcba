"""Scoring labelled films with a .tflite model through the device's own path."""

from __future__ import annotations

import numpy as np

from ..classifier import Classifier
from ..errors import FilmError
from .listing import LabelledFilm


def score_labelled(classifier: Classifier, films: list[LabelledFilm], scope: list | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Labels, probabilities, and (path, error) for films that could not be scored.

    ``scope``, if given, receives each scored film's scope decision (a classifier
    that allows out-of-scope films then scores every film and marks it).
    """
    labels, scores, errors = [], [], []
    for film in films:
        try:
            prediction = classifier.predict(film.path)
        except FilmError as exc:
            errors.append((str(film.path), f"{exc.code}: {exc}"))
            continue
        labels.append(film.label)
        scores.append(prediction.probability)
        if scope is not None:
            scope.append(prediction.scope)
    return np.array(labels, dtype=np.int64), np.array(scores, dtype=np.float64), errors
