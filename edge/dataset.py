"""Labelled films: listing a data folder or CSV, and the split by patient.

A data folder is ``ROOT/<split>/<CLASS>/*`` or ``ROOT/<CLASS>/*`` (class folder names
case-insensitive); a CSV has ``path,label`` rows (paths relative to the CSV).
"""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .films import FILM_SUFFIXES

LABELS = ("NORMAL", "PNEUMONIA")


@dataclass(frozen=True)
class LabelledFilm:
    path: Path
    label: int  # index into LABELS

    @property
    def patient(self) -> str:
        return patient_id(self.path.name)


_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_IM = re.compile(r"^((?:[A-Za-z0-9]+-)*IM-\d+)-\d+", re.IGNORECASE)


def patient_id(filename: str) -> str:
    """The patient a film belongs to, from the Kermany file naming.

    ``IM-0115-0001.jpeg`` -> ``IM-0115``; ``NORMAL2-IM-0427-0001.jpeg`` ->
    ``NORMAL2-IM-0427``; ``person1017_bacteria_2948.jpeg`` -> ``person1017``.
    Any other name is its own patient (its stem), which never leaks but may
    split one patient's films if a dataset names them otherwise.
    """
    for pattern in (_PERSON, _IM):
        match = pattern.match(filename)
        if match:
            return match.group(1)
    return Path(filename).stem


def parse_label(name: str) -> int:
    upper = name.strip().upper()
    if upper in LABELS:
        return LABELS.index(upper)
    if upper in ("0", "1"):
        return int(upper)
    raise ValueError(f"unknown label {name!r}; expected one of {', '.join(LABELS)}")


def list_films(source: str | Path, split: str | None = None) -> list[LabelledFilm]:
    """Labelled films under a data folder (optionally one split of it) or in a CSV."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return _from_csv(source)
    if not source.is_dir():
        raise FileNotFoundError(f"no data folder or CSV at {source}")
    root = source / split if split else source
    if split and not root.is_dir():
        raise FileNotFoundError(f"no split {split!r} in {source}")
    class_dirs = _class_dirs(root)
    if not class_dirs and not split:
        # ROOT/<split>/<CLASS>/: default to the train split
        for name in ("train", "TRAIN", "Train"):
            if (root / name).is_dir():
                class_dirs = _class_dirs(root / name)
                break
    if not class_dirs:
        raise FileNotFoundError(f"no NORMAL/PNEUMONIA class folders under {root}")
    films = []
    for label, folder in sorted(class_dirs.items()):
        films += [LabelledFilm(p, label) for p in sorted(folder.rglob("*"))
                  if p.is_file() and p.suffix.lower() in FILM_SUFFIXES]
    return films


def _class_dirs(root: Path) -> dict[int, Path]:
    found = {}
    for child in root.iterdir() if root.is_dir() else ():
        if child.is_dir() and child.name.upper() in LABELS:
            found[LABELS.index(child.name.upper())] = child
    return found


def _from_csv(path: Path) -> list[LabelledFilm]:
    films = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: a labels CSV needs the columns path,label")
        for line, row in enumerate(reader, start=2):
            try:
                label = parse_label(row["label"])
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: {exc}") from None
            film = Path(row["path"])
            films.append(LabelledFilm(film if film.is_absolute() else path.parent / film, label))
    return films


def split_by_patient(films: list[LabelledFilm], val_fraction: float = 0.15, seed: int = 0
                     ) -> tuple[list[LabelledFilm], list[LabelledFilm]]:
    """Carve a validation split by patient, stratified by label.

    Patients (not files) are shuffled with ``seed`` within each label, and whole
    patients go to validation until it holds ``val_fraction`` of that label's
    films, so no patient is on both sides and the class balance is kept.
    """
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1")
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
