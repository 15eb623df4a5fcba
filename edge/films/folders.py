"""Finding films in folders: one rule for every command (score, evaluate, train, convert, bench).

A file is taken when its ending is a film's, or when it has no ending at all:
digitisers often write DICOM without one, and :func:`~.read.read_film` recognises
DICOM by content, so such a file is scored (or reported on its own row) like any
other. Hidden files and folders (``.DS_Store``, ``._IM-0001.jpeg``) are not taken.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

RASTER_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom")
#: File endings of films; a file with no ending is taken too (see the module's docstring).
FILM_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES


def may_be_film(path: Path) -> bool:
    """Whether ``path``'s name is a film's: a film ending, or none."""
    suffix = path.suffix.lower()
    return suffix in FILM_SUFFIXES or suffix == ""


def walk_films(folder: Path, exclude: Collection[Path] = frozenset()) -> list[Path]:
    """The films under ``folder``, recursively, sorted, skipping hidden ones and the resolved ``exclude``."""
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if may_be_film(path) and path.resolve() not in exclude:
            found.append(path)
    return sorted(found)
