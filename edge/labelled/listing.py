"""Labelled films: listing a data folder or CSV (training, evaluation and on-device calibration alike).

A data folder is ``ROOT/<split>/<CLASS>/*`` or ``ROOT/<CLASS>/*`` (class folder names
case-insensitive); a CSV has ``path,label`` rows (paths relative to the CSV).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..films import walk_films

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
    raise DataError(f"unknown label {name!r}; expected one of {', '.join(LABELS)}", code="bad_label")


def list_films(source: str | Path, split: str | None = None) -> list[LabelledFilm]:
    """Labelled films under a data folder (optionally one split of it) or in a CSV."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return _from_csv(source)
    if not source.is_dir():
        raise DataError(f"no data folder or CSV at {source}", code="no_data")
    root = source / split if split else source
    if split and not root.is_dir():
        raise DataError(f"no split {split!r} in {source}", code="no_data")
    class_dirs = _class_dirs(root)
    if not class_dirs and not split:
        # ROOT/<split>/<CLASS>/: default to the train split
        for name in ("train", "TRAIN", "Train"):
            if (root / name).is_dir():
                class_dirs = _class_dirs(root / name)
                break
    if not class_dirs:
        raise DataError(f"no NORMAL/PNEUMONIA class folders under {root}: not labelled films", code="unlabelled")
    films = []
    for label, folder in sorted(class_dirs.items()):
        films += [LabelledFilm(p, label) for p in walk_films(folder)]
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
            raise DataError(f"{path}: a labels CSV needs the columns path,label", code="bad_labels_csv")
        for line, row in enumerate(reader, start=2):
            try:
                label = parse_label(row["label"])
            except DataError as exc:
                raise DataError(f"{path}:{line}: {exc}", code=exc.code) from None
            film = Path(row["path"])
            films.append(LabelledFilm(film if film.is_absolute() else path.parent / film, label))
    return films
