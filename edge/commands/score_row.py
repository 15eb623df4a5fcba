"""One film's row: read (bounded), score, draw its heatmap; every failure lands on the row.

This is the whole per-film work of ``pneumo score``, independent of how films are
handed out (one process, a pool of worker processes, or another engine), so every
engine writes the same rows.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import FilmError, PneumoError
from ..heatmap import save_overlay
from ..scope import OutOfScope

DEFAULT_MAX_FILE_MB = 200


@dataclass
class Context:
    """What every film of a run is scored with (one per process: it holds the interpreter)."""

    classifier: object
    folder: Path
    heatmap: Path | None = None
    max_bytes: int = DEFAULT_MAX_FILE_MB << 20
    #: ``read(name, max_bytes, row) -> bytes`` for films named by a manifest (paths or URIs);
    #: None reads the file ``name`` under ``folder`` with :func:`read_bounded`.
    read: Callable[[str, int, dict], bytes] | None = None


def make_context(options, folder: str, heatmap: str | None = None, *, max_bytes: int,
                 read: Callable[[str, int, dict], bytes] | None = None) -> Context:
    from ..classifier import Classifier

    if not options.verbose:  # a worker process starts with Python's default warning filters
        from ..quiet import silence_library_warnings

        silence_library_warnings()

    return Context(Classifier(options), Path(folder), Path(heatmap) if heatmap else None, max_bytes, read)


def describe_context(context: Context) -> dict:
    """What a worker says it loaded: the parent checks it and prints it once."""
    classifier = context.classifier
    return {"id": classifier.id, "threshold": classifier.threshold, "backend": classifier.backend,
            "runtime": classifier.runtime.name, "runtime_version": classifier.runtime.version}


def base_row(classifier, relative: str) -> dict:
    return {"path": relative, "model": classifier.id, "threshold": classifier.threshold}


def score_one(context: Context, relative: str) -> dict:
    """The row for ``relative`` (a name under ``context.folder``); never raises for a film."""
    row = base_row(context.classifier, relative)
    started = time.perf_counter()
    try:
        if context.read is None:
            data = read_bounded(context.folder / relative, context.max_bytes, row)
        else:
            data = context.read(relative, context.max_bytes, row)
        row["sha256"] = hashlib.sha256(data).hexdigest()
        prediction = context.classifier.predict(data)
        # 8 decimals hold an int8 output (k / 256) exactly, so probability >= threshold matches the label.
        row.update(probability=f"{prediction.probability:.8f}", label=prediction.label, scope=prediction.scope.status)
        if context.heatmap is not None and prediction.cam is not None:
            row["heatmap"] = str(save_overlay(prediction.film.image, prediction.cam, context.heatmap, name=relative))
    except OutOfScope as exc:
        row.update(error=str(exc), error_code=exc.code, scope=exc.decision.status)
    except PneumoError as exc:
        row.update(error=str(exc), error_code=exc.code)
    except OSError as exc:
        code = "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io_error"
        where = "cannot write its heatmap" if "probability" in row else "cannot read the file"
        row.update(error=f"{where}: {exc.strerror or exc}", error_code=code)
    except MemoryError:
        row.update(error="out of memory while scoring this film", error_code="out_of_memory")
    except Exception as exc:  # a bug must cost one row, not the night's batch
        row.update(error=f"internal error: {type(exc).__name__}: {exc}", error_code="internal")
    row["ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
    return row


def read_bounded(path: Path, max_bytes: int, row: dict) -> bytes:
    """The file's bytes, refused by its size before reading; its size and mtime go on ``row``."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        row.update(size=info.st_size, mtime_ns=info.st_mtime_ns)
        return read_stream(handle, info.st_size, max_bytes)


def read_stream(handle, size: int, max_bytes: int) -> bytes:
    """The bytes of an open file (or object store stream) of ``size`` bytes, refused over ``max_bytes``."""
    if size > max_bytes:
        raise FilmError(f"refused unread: {size / 2**20:.1f} MB is over the --max-file-mb limit "
                        f"of {max_bytes / 2**20:g} MB", code="too_large")
    data = handle.read(max_bytes + 1)  # a file still growing stays bounded too
    if len(data) > max_bytes:
        raise FilmError(f"refused: the file grew past the --max-file-mb limit of {max_bytes / 2**20:g} MB "
                        "while being read", code="too_large")
    return data


def worker_died_row(classifier, relative: str, exitcode: int | None) -> dict:
    """The row of a film whose worker process died while scoring it."""
    if exitcode is not None and exitcode < 0:
        import signal

        how = f"was killed by {signal.Signals(-exitcode).name}"
        if exitcode == -signal.SIGKILL:
            how += " (on a small device usually the out-of-memory killer)"
    else:
        how = f"exited with code {exitcode}"
    return {**base_row(classifier, relative), "error_code": "worker_died",
            "error": f"the worker process scoring this film {how}; a rerun scores it again"}
