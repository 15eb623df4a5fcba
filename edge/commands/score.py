"""``pneumo score DIR --out results.csv``: keep a folder's record of scores current.

Each run brings the results file up to date with the folder: it scores the films
that have no row, that changed since their row (size or modification time; with
``--check-content`` also the sha256), and those whose error may be gone now
(:data:`~.results_file.TRANSIENT_ERRORS`; ``--retry-errors`` retries every error).
The per-film work is :func:`~.score_row.score_one`; the file's guarantees are in
:mod:`.results_file`; the walk's in :mod:`.score_walk`.
"""

from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import os
import sys
import time
from collections import Counter
from pathlib import Path

from ..errors import PneumoError
from .options import add_model_arguments, options_from, positive_int
from .score_row import DEFAULT_MAX_FILE_MB

HELP = "score a folder of films into a CSV or JSONL record, kept current by each rerun"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="folder of films, walked recursively (symlinked folders too)")
    parser.add_argument("--out", required=True,
                        help="results file: one current row per film; a rerun scores only new, changed "
                             "and transiently failed films")
    parser.add_argument("--format", choices=["csv", "jsonl"], default=None,
                        help="default: from --out's extension (.jsonl) else csv")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes, each with its own interpreter")
    parser.add_argument("--heatmap", metavar="DIR", default=None,
                        help="write a heatmap overlay JPEG (with its legend) per film here, in the films' own "
                             "sub-folders")
    parser.add_argument("--max-file-mb", type=positive_int, default=DEFAULT_MAX_FILE_MB,
                        help="refuse, unread, a file larger than this (default: %(default)s)")
    parser.add_argument("--retry-errors", action="store_true", help="score again every film whose row is an error")
    parser.add_argument("--check-content", action="store_true",
                        help="also re-read every scored film and rescore it when its sha256 differs from its row")
    parser.add_argument("--new", action="store_true",
                        help="start a new results file even if --out holds another model's rows or is not "
                             "a results file (the old file is kept beside it, renamed with the date)")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..heatmap import require_heatmap
    from .results_file import ResultsFile, check_writable, format_for
    from .score_row import make_context
    from .score_walk import walk

    folder, out = Path(args.folder), Path(args.out)
    if not folder.is_dir():
        raise PneumoError(f"no folder at {folder}", code="no_folder")
    check_writable(out)
    heatmap = _heatmap_folder(args.heatmap, folder)
    options = options_from(args)
    if args.workers > 1 and options.threads is None:  # share the cores, do not oversubscribe them
        options.threads = max(1, (os.cpu_count() or 1) // args.workers)
    make = functools.partial(make_context, options, str(folder), str(heatmap) if heatmap else None,
                             max_bytes=args.max_file_mb << 20)
    context = make()  # fails fast, in this process, on a bad model or backend
    classifier = context.classifier
    if heatmap:
        require_heatmap(classifier)
    try:
        results = ResultsFile(out, format_for(out, args.format),
                              {"model": classifier.id, "threshold": classifier.threshold}, new=args.new)
    except OSError as exc:
        raise _write_error(exc, out, 0) from None
    try:
        if results.replaced_to:
            _say(f"started a new {out}; the old file is kept as {results.replaced_to}")
        found = walk(folder, exclude=(out, heatmap) if heatmap else (out,))
        todo = [entry.relative for entry in found.films
                if _why_score(results.current.get(entry.relative), entry, args)]
        if not found.films:
            _say(f"warning: no films under {folder}" + (f" (passed over: {found.summary()})" if found.summary()
                                                          else " (is it the right folder, is the share mounted?)"))
            return 1
        _say(f"{len(found.films)} films under {folder}; {len(found.films) - len(todo)} current in {out}; "
             f"scoring {len(todo)} with {args.workers} worker(s)")
        _say(f"model {classifier.id} on {classifier.backend} ({classifier.runtime.name} {classifier.runtime.version}); "
             f"threshold {classifier.threshold:.3f} from {classifier.threshold_source}; out-of-scope check "
             f"{classifier.scope_note()}")
        tally = _score(todo, results, workers=args.workers, context=context, make=make)
    finally:
        _close(results)
    _report(tally, found, results)
    return 130 if tally["interrupted"] else 0


def _heatmap_folder(given: str | None, folder: Path) -> Path | None:
    if not given:
        return None
    heatmap = Path(given)
    if heatmap.resolve() == folder.resolve():
        raise PneumoError(f"--heatmap {heatmap} is the folder being scored; give a folder of its own",
                          code="bad_heatmap")
    try:
        heatmap.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PneumoError(f"--heatmap {heatmap}: cannot make the folder: {exc.strerror}", code="bad_heatmap") from None
    return heatmap


def _why_score(row: dict | None, entry, args) -> str | None:
    """Why the film ``entry`` needs scoring against its current ``row``, or None when the row stands."""
    from .results_file import TRANSIENT_ERRORS

    if row is None:
        return "new"
    folder, max_bytes = Path(args.folder), args.max_file_mb << 20
    if row.get("size") != str(entry.size) or row.get("mtime_ns") != str(entry.mtime_ns):
        return "changed"
    code = row.get("error_code")
    if code in TRANSIENT_ERRORS or (code and args.retry_errors):
        return "retry"
    if code == "too_large" and entry.size <= max_bytes:
        return "limit raised"
    if args.check_content and row.get("sha256") and entry.size <= max_bytes:
        try:
            with open(folder / entry.relative, "rb") as handle:
                if hashlib.sha256(handle.read(max_bytes)).hexdigest() != row["sha256"]:
                    return "content changed"
        except OSError:
            return "unreadable now"  # scoring it puts the error on its row
    return None


def _score(todo: list[str], results, *, workers: int, context, make) -> dict:
    """Score ``todo`` into ``results``; the tally of this run's rows."""
    from .progress import Progress
    from .score_pool import pool_rows
    from .score_row import score_one, worker_died_row

    if workers > 1 and len(todo) > 1:
        rows = pool_rows(todo, workers, make_context=make, score=score_one,
                         died=lambda film, code: worker_died_row(context.classifier, film, code))
    else:
        rows = (score_one(context, film) for film in todo)
    tally = {"labels": Counter(), "errors": Counter(), "count": 0, "interrupted": False,
             "started": time.monotonic(), "todo": len(todo)}
    progress = Progress(len(todo))
    try:
        for row in rows:
            try:
                results.write(row)
            except OSError as exc:
                raise _write_error(exc, results.path, tally["count"]) from None
            tally["count"] += 1
            if row.get("error_code"):
                tally["errors"][row["error_code"]] += 1
            else:
                tally["labels"][row["label"]] += 1
                tally["labels"]["out of scope"] += row.get("scope", "").startswith("out_of_scope")
            progress.update()
    except KeyboardInterrupt:
        tally["interrupted"] = True
    finally:
        rows.close()
        progress.close()
    return tally


def _write_error(exc: OSError, out: Path, count: int) -> PneumoError:
    code = "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io_error"
    return PneumoError(f"cannot write {out}: {exc.strerror or exc}; the {count} rows written before this one "
                       "are kept: make room and run the same command again to resume", code=code)


def _close(results) -> None:
    try:
        results.close()
    except OSError as exc:  # e.g. no room to compact: the file as it stands is still a valid record
        _say(f"warning: could not compact {results.path} ({exc.strerror or exc}); it stays valid: "
             "a film's last row is its current one")


def _report(tally: dict, found, results) -> None:
    """The run's line, then every film under the folder that has no score and why, then what was passed over."""
    elapsed = time.monotonic() - tally["started"]
    labels, errors = tally["labels"], tally["errors"]
    _say(f"scored {tally['count']} films in {elapsed:.1f} s ({tally['count'] / max(elapsed, 1e-9):.1f} films/s): "
         f"PNEUMONIA {labels['PNEUMONIA']}, NORMAL {labels['NORMAL']}"
         + (f" (out of scope, scored anyway: {labels['out of scope']})" if labels["out of scope"] else "")
         + f", errors {sum(errors.values())}"
         + (f" ({', '.join(f'{k} {v}' for k, v in sorted(errors.items()))})" if errors else "")
         + f"; results in {results.path}")
    if tally["interrupted"]:
        _say(f"interrupted after {tally['count']} of {tally['todo']} films; every finished row is kept: "
             "run the same command again to score the rest")
    rows = [results.current.get(entry.relative) for entry in found.films]
    failed = [row for row in rows if row and row.get("error_code")]
    missing = sum(row is None for row in rows)
    _say(f"record: {len(found.films)} films under the folder, {len(found.films) - len(failed) - missing} scored, "
         f"{len(failed)} could not be scored" + (f", {missing} not scored yet" if missing else "")
         + (":" if failed else ""))
    for row in failed:
        _say(f"  {row['path']}: {row['error_code']}: {row.get('error', '')}")
    if found.summary():
        _say(f"passed over: {found.summary()}")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
