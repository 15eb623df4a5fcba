"""Splitting labelled films for training: validation by patient, per-class samples, a count table."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from ..edge.errors import DataError
from ..edge.labelled.listing import LABELS, LabelledFilm


def split_by_patient(films: list[LabelledFilm], val_fraction: float = 0.15, seed: int = 0
                     ) -> tuple[list[LabelledFilm], list[LabelledFilm]]:
    """Carve a validation split by patient, stratified by label.

    Patients (not files) are shuffled with ``seed`` within each label, and whole
    patients go to validation until it holds ``val_fraction`` of that label's
    films, so no patient is on both sides and the class balance is kept.
    """
    if not 0 < val_fraction < 1:
        raise DataError("--val-fraction must be between 0 and 1", code="bad_option")
    by_patient: dict[str, list[LabelledFilm]] = {}
    for film in films:
        by_patient.setdefault(film.patient, []).append(film)
    rng = random.Random(seed)
    val_patients: set[str] = set()
    for label in sorted({f.label for f in films}):
        patients = sorted(p for p, fs in by_patient.items() if _majority_label(fs) == label)
        rng.shuffle(patients)
        target = val_fraction * sum(len(by_patient[p]) for p in patients)
        taken = 0
        for patient in patients:
            if taken >= target:
                break
            val_patients.add(patient)
            taken += len(by_patient[patient])
    train = [f for f in films if f.patient not in val_patients]
    val = [f for f in films if f.patient in val_patients]
    return train, val


def sample_per_class(films: list[LabelledFilm], per_class: int | None, seed: int) -> list[LabelledFilm]:
    """At most ``per_class`` films of each label, drawn at random with ``seed``, in listing order.

    ``None`` (or 0) keeps every film.
    """
    if not per_class:
        return films
    rng = np.random.default_rng(seed)
    kept = []
    for label in range(len(LABELS)):
        group = [f for f in films if f.label == label]
        kept += [group[i] for i in sorted(rng.choice(len(group), min(len(group), per_class), replace=False))]
    return kept


def _majority_label(films: list[LabelledFilm]) -> int:
    return Counter(f.label for f in films).most_common(1)[0][0]


def count_table(splits: dict[str, list[LabelledFilm]]) -> str:
    """Counts per class per split, as a small text table."""
    lines = [f"{'split':<10}" + "".join(f"{name:>11}" for name in LABELS) + f"{'total':>9}{'patients':>10}"]
    for split, films in splits.items():
        counts = Counter(f.label for f in films)
        patients = len({f.patient for f in films})
        lines.append(f"{split:<10}" + "".join(f"{counts.get(i, 0):>11}" for i in range(len(LABELS)))
                     + f"{len(films):>9}{patients:>10}")
    return "\n".join(lines)
