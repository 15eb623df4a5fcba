"""The films under a folder for batch scoring, and an account of everything passed over.

Symlinked folders are followed (an archive is often assembled from links), each
real folder once: a link back to an ancestor, or a second way into a folder
already walked, is passed over and counted. Files are taken by the one rule of
:func:`~..films.folders.may_be_film` (a film's ending, or none); hidden files and
folders, files that are not regular files (a FIFO would block a reader forever),
broken links, and the locations the run writes to are passed over. Nothing is
passed over without being counted in :class:`Walk`.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..films.folders import may_be_film


@dataclass(frozen=True)
class Entry:
    """A film: its name relative to the folder (OS spelling, ``/``-separated) and its fingerprint."""

    relative: str
    size: int
    mtime_ns: int


@dataclass
class Walk:
    films: list[Entry] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> files
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (folder, why)
    repeated: list[str] = field(default_factory=list)  # folders reached a second time (links)

    def summary(self) -> str:
        parts = [f"{count} {reason}" for reason, count in sorted(self.skipped.items())]
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable folder(s): "
                         + ", ".join(f"{name} ({why})" for name, why in self.unreadable))
        if self.repeated:
            parts.append(f"{len(self.repeated)} linked folder(s) already walked: " + ", ".join(self.repeated))
        return "; ".join(parts)


def walk(folder: str | Path, exclude: tuple[str | Path, ...] = ()) -> Walk:
    """Films under ``folder`` in sorted order; ``exclude`` are files or folders never to take."""
    root = os.fspath(folder)
    excluded = {_identity(path) for path in exclude} - {None}
    result = Walk()
    seen = {_identity(root)}

    def unreadable(error: OSError) -> None:
        result.unreadable.append((_relative(root, error.filename or root) or ".", error.strerror or str(error)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        kept = []
        for name in sorted(dirnames):
            path = os.path.join(dirpath, name)
            identity = _identity(path)
            if name.startswith("."):
                result.skipped["hidden folder(s)"] += 1
            elif identity is None:
                result.skipped["broken link(s)"] += 1
            elif identity in excluded:
                continue  # where this run writes (heatmaps): not an archive folder
            elif identity in seen:
                result.repeated.append(_relative(root, path))
            else:
                seen.add(identity)
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            _take(result, os.path.join(dirpath, name), root=root, excluded=excluded)
    result.films.sort(key=lambda entry: entry.relative)
    return result


def _take(result: Walk, path: str, *, root: str, excluded: set) -> None:
    name = os.path.basename(path)
    if name.startswith("."):
        result.skipped["hidden file(s)"] += 1
        return
    try:
        info = os.stat(path)
    except FileNotFoundError:
        result.skipped["broken link(s)"] += 1
        return
    except OSError as exc:
        result.skipped[f"unreadable file(s) ({exc.strerror})"] += 1
        return
    if (info.st_dev, info.st_ino) in excluded:
        return
    if not stat.S_ISREG(info.st_mode):
        result.skipped["not regular file(s)"] += 1
    elif may_be_film(Path(name)):
        result.films.append(Entry(_relative(root, path), info.st_size, info.st_mtime_ns))
    else:
        result.skipped["file(s) not films by extension"] += 1


def _identity(path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _relative(root: str, path: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")
