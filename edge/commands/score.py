"""``pneumo score DIR --out results.csv``: score a folder of films, resumably, in parallel."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import Counter
from pathlib import Path

from ..films import walk_films
from .options import add_model_arguments, options_from

HELP = "score a folder of films into a CSV or JSONL, resumable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="folder of films, walked recursively")
    parser.add_argument("--out", required=True, help="results file; rerunning with it scores only the films not in it")
    parser.add_argument("--format", choices=["csv", "jsonl"], default=None,
                        help="default: from --out's extension (.jsonl) else csv")
    parser.add_argument("--workers", type=int, default=1, help="processes, each with its own interpreter")
    parser.add_argument("--heatmap", metavar="DIR", default=None, help="write a heatmap overlay PNG per film here")
    add_model_arguments(parser)


def walk(folder: Path, exclude: set[Path] = frozenset()) -> list[str]:
    """Film paths under ``folder`` (:func:`~..films.walk_films`), relative and sorted, for a stable order."""
    return [path.relative_to(folder).as_posix() for path in walk_films(folder, exclude)]


# One classifier per worker process, made by the pool's initializer.
_worker: dict = {}


def _init(options, folder: str, heatmap: str | None) -> None:
    from ..classifier import Classifier

    _worker.update(classifier=Classifier(options), folder=Path(folder),
                   heatmap=Path(heatmap) if heatmap else None)


def score_one(relative: str) -> dict:
    """The row for one film; every failure lands on the row, never in the caller."""
    from ..errors import PneumoError
    from ..heatmap import save_overlay

    classifier = _worker["classifier"]
    row = {"path": relative, "model": classifier.id, "threshold": classifier.threshold}
    started = time.perf_counter()
    try:
        data = (_worker["folder"] / relative).read_bytes()
        row["sha256"] = hashlib.sha256(data).hexdigest()
        prediction = classifier.predict(data)
        row.update(probability=f"{prediction.probability:.6f}", label=prediction.label)
        if _worker["heatmap"] is not None and prediction.cam is not None:
            name = relative.replace("/", "__")
            row["heatmap"] = str(save_overlay(prediction.film.image, prediction.cam, _worker["heatmap"], name=name))
    except PneumoError as exc:
        row.update(error=str(exc), error_code=exc.code)
    except OSError as exc:
        row.update(error=f"cannot read the file: {exc.strerror or exc}", error_code="io_error")
    except Exception as exc:  # a bug must cost one row, not the night's batch
        row.update(error=f"internal error: {type(exc).__name__}: {exc}", error_code="internal")
    row["ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
    return row


def run(args: argparse.Namespace) -> int:
    from .progress import Progress
    from .results_file import ResultsFile

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"pneumo score: no folder at {folder}", file=sys.stderr)
        return 2
    out = Path(args.out)
    fmt = args.format or ("jsonl" if out.suffix.lower() == ".jsonl" else "csv")
    results = ResultsFile(out, fmt)
    films = walk(folder, exclude={out.resolve()})
    todo = [f for f in films if f not in results.done]
    print(f"{len(films)} films under {folder}; {len(films) - len(todo)} already in {out}; scoring {len(todo)} "
          f"with {args.workers} worker(s)", file=sys.stderr, flush=True)
    options = options_from(args)
    if args.workers > 1 and options.threads is None:  # share the cores, do not oversubscribe them
        options.threads = max(1, (os.cpu_count() or 1) // args.workers)
    _init(options, str(folder), args.heatmap)  # fails fast, in this process, on a bad model or backend
    classifier = _worker["classifier"]
    print(f"model {classifier.id} on {classifier.backend} ({classifier.runtime.name} {classifier.runtime.version}); "
          f"threshold {classifier.threshold:.3f} from {classifier.threshold_source}", file=sys.stderr, flush=True)
    started = time.monotonic()
    progress = Progress(len(todo))
    labels: Counter = Counter()
    errors: Counter = Counter()
    try:
        for row in _rows(todo, args.workers, options, folder=str(folder), heatmap=args.heatmap):
            results.write(row)
            if row.get("error_code"):
                errors[row["error_code"]] += 1
            else:
                labels[row["label"]] += 1
            progress.update()
    finally:
        progress.close()
        results.close()
    elapsed = time.monotonic() - started
    print(f"scored {len(todo)} films in {elapsed:.1f} s ({len(todo) / max(elapsed, 1e-9):.1f} films/s): "
          f"PNEUMONIA {labels['PNEUMONIA']}, NORMAL {labels['NORMAL']}, errors {sum(errors.values())}"
          + (f" ({', '.join(f'{k} {v}' for k, v in sorted(errors.items()))})" if errors else "")
          + f"; results in {out}", file=sys.stderr)
    return 0


def _rows(todo: list[str], workers: int, options, *, folder: str, heatmap: str | None):
    if workers <= 1 or len(todo) < 2:
        yield from map(score_one, todo)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, _init, (options, folder, heatmap)) as pool:
        yield from pool.imap(score_one, todo, chunksize=4)
