"""``pneumo score SOURCE --out results.csv``: keep a folder's (or a manifest's) record of scores current.

Each run brings the results file up to date with the folder: it scores the films
that have no row, that changed since their row (size or modification time; with
``--check-content`` also the sha256), and those whose error may be gone now
(:data:`~.results_file.TRANSIENT_ERRORS`; ``--retry-errors`` retries every error).
The per-film work is :func:`~.score_row.score_one`; the file's guarantees are in
:mod:`.results_file`; the walk's in :mod:`.score_walk`. A manifest (the films named by a
CSV or Parquet file, paths or URIs), the Parquet results dataset (``--format parquet``)
and the Ray engine (``--engine ray``) are the archive-scale parts, in :mod:`..cluster`.
"""

from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ..errors import PneumoError
from .options import add_model_arguments, options_from, positive_int
from .score_pool import MAX_DEFAULT_WORKERS, MIB_PER_WORKER, default_workers, usable_cores
from .score_row import DEFAULT_MAX_FILE_MB

HELP = "score a folder of films into a CSV, JSONL or Parquet record, kept current by each rerun"
ENGINES = ("local", "ray")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="SOURCE",
                        help="folder of films, walked recursively (symlinked folders too); or a manifest: a .csv "
                             "or .parquet file with a path column (paths relative to its folder, or URIs such "
                             "as s3://bucket/film.png, read with pyarrow: the [cluster] extra)")
    parser.add_argument("--out", required=True,
                        help="results file (a folder with --format parquet): one current row per film; a rerun "
                             "scores only new, changed and transiently failed films")
    parser.add_argument("--format", choices=["csv", "jsonl", "parquet"], default=None,
                        help="default: parquet if --out is a Parquet results folder, jsonl for a .jsonl, else csv")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="local engine: processes, each with its own interpreter; the parent loads none "
                             f"beside them (default: one per core this process may run on, at most "
                             f"{MAX_DEFAULT_WORKERS} and one per {MIB_PER_WORKER} MiB of available memory: "
                             f"{default_workers()} here)")
    cluster = parser.add_argument_group("archive scale (the [cluster] extra; docs/scale.md)")
    cluster.add_argument("--engine", choices=ENGINES, default="local",
                         help="local: this process and --workers; ray: a Ray Data actor pool (default: local)")
    cluster.add_argument("--ray-address", default=None,
                         help="with --engine ray: join this cluster (auto, HOST:PORT or ray://HOST:10001) "
                              "instead of starting a Ray on this machine's cores")
    cluster.add_argument("--actors", type=positive_int, default=None,
                         help="with --engine ray: actors, each with its own interpreter of --threads threads "
                              "(default: the cluster's CPUs / --threads)")
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
    from ..model_info import read_model_info
    from .results_file import check_writable
    from .score_row import describe_context, make_context

    folder, out = Path(args.folder), Path(args.out)
    manifest = _check_source(folder, args)
    fmt = args.format or _format_of(out)
    if fmt != "parquet":
        check_writable(out)
    heatmap = _heatmap_folder(args.heatmap, folder)
    options = options_from(args)
    workers = 1 if args.engine == "ray" else args.workers or default_workers()
    if args.engine == "ray" and options.threads is None:  # one actor per core: each interpreter on one thread
        options.threads = 1
    if workers > 1 and options.threads is None:  # share the cores, do not oversubscribe them
        options.threads = max(1, usable_cores() // workers)
    base, read = str(folder), None
    if manifest:
        from ..cluster.location import read_location

        base = str(folder.parent.resolve())
        read = functools.partial(read_location, base)
    make = functools.partial(make_context, options, base, str(heatmap) if heatmap else None,
                             max_bytes=args.max_file_mb << 20, read=read)
    # One process (or the Ray driver) loads the model here, failing fast on a bad model or backend. A
    # pool's parent reads the card alone (a bad model or card still fails here); its workers load the model.
    context = make() if workers == 1 else None
    model = context.classifier if context else read_model_info(options)
    if heatmap:
        require_heatmap(model)
    results = _open_results(out, fmt, {"model": model.id, "threshold": model.threshold}, args.new)
    try:
        if results.replaced_to:
            _say(f"started a new {out}; the old one is kept as {results.replaced_to}")
        found = _listing(folder, manifest, exclude=(out, heatmap) if heatmap else (out,))
        todo = [entry.relative for entry in found.films
                if _why_score(results.current.get(entry.relative), entry, args)]
        where = f"in {folder}" if manifest else f"under {folder}"
        if not found.films:
            _say(f"warning: no films {where}" + (f" (passed over: {found.summary()})" if found.summary()
                                                 else " (is it the right folder, is the share mounted?)"))
            return 1
        _say(f"{len(found.films)} films {where}; {len(found.films) - len(todo)} current in {out}; "
             f"scoring {len(todo)} with " + ("the ray engine" if args.engine == "ray" else f"{workers} worker(s)"))
        if context or not todo:  # else the first worker to load the model says what it loaded
            _say(_model_line(model, describe_context(context) if context else None))
        tally = _score(todo, results, _rows(todo, args, context, make, model=model, workers=workers))
    finally:
        _close(results)
    _report(tally, found, results, where="in the manifest" if manifest else "under the folder")
    return 130 if tally["interrupted"] else 0


def _format_of(out: Path) -> str:
    """An existing Parquet results dataset (a folder with its lock file) is parquet; else by the extension."""
    from .results_file import format_for

    return "parquet" if out.is_dir() and (out / ".lock").is_file() else format_for(out, None)


def _check_source(source: Path, args) -> bool:
    """Whether ``source`` is a manifest (else a folder); one line for what cannot be used with it."""
    from ..cluster.manifest import SUFFIXES, is_manifest

    manifest = is_manifest(source)
    if not manifest and not source.is_dir():
        kind = f"a {source.suffix} file, not a manifest ({' or '.join(SUFFIXES)})" if source.is_file() else "missing"
        raise PneumoError(f"no folder or manifest at {source} ({kind})", code="no_folder")
    refusals = [(manifest and args.check_content, "--check-content needs a folder SOURCE (a manifest's films are "
                                                  "not listed with their sizes)"),
                (manifest and args.heatmap, "--heatmap needs a folder SOURCE: a manifest's names may be absolute "
                                            "paths or URIs, with no folder of their own to mirror"),
                (args.engine == "ray" and args.heatmap, "--heatmap is the local engine's: Ray actors would draw "
                                                        "the overlays on the cluster's nodes"),
                (args.engine == "ray" and (args.workers or 1) > 1, "--workers is the local engine's; with "
                                                                   "--engine ray give --actors"),
                (args.engine != "ray" and (args.actors or args.ray_address), "--actors and --ray-address need "
                                                                             "--engine ray")]
    for refused, why in refusals:
        if refused:
            raise PneumoError(why, code="bad_arguments")
    if args.engine == "ray":  # before anything is written: without the extra, one line and nothing else
        from ..cluster.ray_engine import import_ray

        import_ray()
    return manifest


def _listing(source: Path, manifest: bool, exclude: tuple):
    from .score_walk import walk

    if manifest:
        from ..cluster.manifest import read_manifest

        return read_manifest(source)
    return walk(source, exclude=exclude)


def _open_results(out: Path, fmt: str, identity: dict, new: bool):
    try:
        if fmt == "parquet":
            from ..cluster.parquet_results import ParquetResults

            return ParquetResults(out, identity, new=new)
        from .results_file import ResultsFile

        return ResultsFile(out, fmt, identity, new=new)
    except OSError as exc:
        raise _write_error(exc, out, 0) from None


def _rows(todo: list[str], args, context, make, *, model, workers: int) -> Iterator[dict]:
    """This run's rows, from the engine asked for, in the order they finish: in this process when
    ``context`` holds a loaded model, else from ``workers`` processes."""
    from .score_row import score_one

    if not todo:  # nothing to start Ray or worker processes for
        return (row for row in ())
    if args.engine == "ray":
        from ..cluster.ray_engine import ray_rows

        return ray_rows(todo, make=make, threads=context.classifier.options.threads, actors=args.actors,
                        address=args.ray_address, verbose=args.verbose, say=_say)
    if context is None:
        return _pool(todo, workers=workers, make=make, model=model)
    return (score_one(context, film) for film in todo)


def _model_line(model, loaded: dict | None) -> str:
    """The run's model, and where it runs once a process has loaded it."""
    where = f" on {loaded['backend']} ({loaded['runtime']} {loaded['runtime_version']})" if loaded else ""
    return (f"model {model.id}{where}; threshold {model.threshold:.3f} from {model.threshold_source}; "
            f"out-of-scope check {model.scope_note()}")


def _pool(todo: list[str], *, workers: int, make, model) -> Iterator[dict]:
    """Rows from worker processes; the first worker's model is checked against the card read here."""
    from .score_pool import pool_rows
    from .score_row import describe_context, score_one, worker_died_row

    def loaded(described: dict) -> None:
        if (described["id"], described["threshold"]) != (model.id, model.threshold):
            raise PneumoError(f"the workers loaded {described['id']} (threshold {described['threshold']:.3f}), "
                              f"not {model.id} (threshold {model.threshold:.3f}) that this run's results file "
                              "records; the backend may have fallen back to another model file: use --workers 1",
                              code="worker_model_differs")
        _say(_model_line(model, described))

    return pool_rows(todo, workers, make_context=make, describe=describe_context, score=score_one, ready=loaded,
                     died=lambda film, code: worker_died_row(model, film, code))


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
    listed = entry.size is not None  # a manifest's films are not stat'ed up front: a million objects would be
    if listed and (row.get("size") != str(entry.size) or row.get("mtime_ns") != str(entry.mtime_ns)):
        return "changed"
    code = row.get("error_code")
    if code in TRANSIENT_ERRORS or (code and args.retry_errors):
        return "retry"
    if code == "too_large" and (entry.size if listed else int(row.get("size") or 0)) <= max_bytes:
        return "limit raised"
    if args.check_content and row.get("sha256") and entry.size <= max_bytes:
        try:
            with open(folder / entry.relative, "rb") as handle:
                if hashlib.sha256(handle.read(max_bytes)).hexdigest() != row["sha256"]:
                    return "content changed"
        except OSError:
            return "unreadable now"  # scoring it puts the error on its row
    return None


def _score(todo: list[str], results, rows: Iterator[dict]) -> dict:
    """Write ``rows`` (those of ``todo``) into ``results``; the tally of this run's rows."""
    from .progress import Progress

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
            progress.update(errors=bool(row.get("error_code")))
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


def _report(tally: dict, found, results, *, where: str) -> None:
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
    _say(f"record: {len(found.films)} films {where}, {len(found.films) - len(failed) - missing} scored, "
         f"{len(failed)} could not be scored" + (f", {missing} not scored yet" if missing else "")
         + (":" if failed else ""))
    for row in failed:
        _say(f"  {row['path']}: {row['error_code']}: {row.get('error', '')}")
    if found.summary():
        _say(f"passed over: {found.summary()}")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
