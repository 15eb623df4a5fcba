"""A manifest: the films of a run named by a CSV or Parquet file with a ``path`` column.

Archives in object stores are not folders to walk, so a manifest names each film by a
path (relative ones are taken from the manifest's folder) or a URI that pyarrow's
filesystems read (``s3://``, ``gs://``, ``file://``). Empty cells and paths named twice
are passed over and counted, like the walk's passed-over files.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..commands.score_walk import Entry, Walk
from ..errors import PneumoError
from .arrow import require_pyarrow

SUFFIXES = (".csv", ".parquet")


def is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SUFFIXES


def read_manifest(path: Path) -> Walk:
    """The films a manifest names, in its order, as a :class:`Walk` (sizes unknown until read)."""
    names = _parquet_paths(path) if path.suffix.lower() == ".parquet" else _csv_paths(path)
    result, seen = Walk(), set()
    for name in names:
        if not name:
            result.skipped["empty path cell(s) in the manifest"] += 1
        elif name in seen:
            result.skipped["path(s) named twice in the manifest"] += 1
        else:
            seen.add(name)
            result.films.append(Entry(name, None, None))
    return result


def _csv_paths(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if "path" not in (reader.fieldnames or []):
                raise _no_path_column(path, reader.fieldnames or [])
            return [row["path"] or "" for row in reader]
    except UnicodeDecodeError as exc:
        raise PneumoError(f"manifest {path} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                          code="bad_manifest") from None


def _parquet_paths(path: Path) -> list[str]:
    require_pyarrow("a Parquet manifest")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise PneumoError(f"manifest {path} is not a readable Parquet file: {exc}", code="bad_manifest") from None
    if "path" not in schema.names:
        raise _no_path_column(path, schema.names)
    if not (pa.types.is_string(schema.field("path").type) or pa.types.is_large_string(schema.field("path").type)):
        raise PneumoError(f"manifest {path}: its path column holds {schema.field('path').type}, not text",
                          code="bad_manifest")
    return [name or "" for name in pq.read_table(path, columns=["path"]).column("path").to_pylist()]


def _no_path_column(path: Path, columns: list[str]) -> PneumoError:
    return PneumoError(f"manifest {path} has no path column (its columns: {', '.join(columns) or 'none'})",
                       code="bad_manifest", hint="a manifest is a CSV or Parquet file with one film per row "
                                                 "in a column named path")
