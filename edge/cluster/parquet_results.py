"""``--format parquet``: the results record as a Parquet dataset folder, written block by block.

The same record as :class:`~..commands.results_file.ResultsFile` (the same columns, one
current row per film, one writer and one model), for archives too large for one text file:

- **Blocks.** Rows are kept in memory and written as one file, ``part-NNNNNN.parquet``, every
  :data:`BLOCK_ROWS` rows or :data:`BLOCK_SECONDS` seconds and at the end. A block is written
  to a hidden temporary file, fsynced, then renamed, so a block file is whole or absent: a
  kill costs only the rows not yet in a block, and the next run scores those films again.
  Readers (``pyarrow.dataset``, Spark, DuckDB) skip the hidden files.
- **The last row for a film is its current row**, by block number. On close, a block that
  holds a row superseded by a later block is rewritten without it (temp file, rename), so the
  dataset holds one row per film; a kill in between leaves the later row in force.
- Every column is text, as in the CSV, so both records hold the same values.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from ..commands.results_file import COLUMNS, IDENTITY, acquire_lock, decode_path, encode_path, field_text, fsync_folder
from ..errors import PneumoError
from .arrow import require_pyarrow

#: What a kill can cost: the rows not yet in a block, at most this many films or seconds of scoring.
#: Small files cost readers little next to a record that must survive kills.
BLOCK_ROWS = 256
BLOCK_SECONDS = 5.0
BLOCK = re.compile(r"part-(\d{6,})\.parquet")
LOCK = ".lock"


class ParquetResults:
    """The results dataset folder at ``path``; ``current`` maps each film (OS name) to its current row."""

    format = "parquet"

    def __init__(self, path: str | Path, identity: dict, *, new: bool = False):
        require_pyarrow("--format parquet")
        self.path, self.identity = Path(path), {k: str(identity[k]) for k in IDENTITY}
        _check_folder(self.path)
        self.replaced_to: Path | None = None
        if new and self.path.exists():
            old_lock = acquire_lock(self.path / LOCK, self.path)  # never move a dataset another run is writing
            self.replaced_to = self.path.with_name(f"{self.path.name}.{time.strftime('%Y%m%dT%H%M%S')}")
            os.replace(self.path, self.replaced_to)
            os.close(old_lock)
        self.path.mkdir(exist_ok=True)
        self._lock_fd = acquire_lock(self.path / LOCK, self.path)
        self.current: dict[str, dict] = {}
        self._block_of: dict[str, str] = {}  # film -> the block holding its current row
        self._stale: set[str] = set()  # blocks holding a superseded row
        self._buffer: list[dict] = []
        try:
            self._load()
        except BaseException:
            self._release()
            raise
        self._last_flush = time.monotonic()

    def _load(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        blocks, foreign = [], []
        for entry in os.scandir(self.path):
            if entry.name.startswith("."):
                if entry.name.endswith(".tmp"):  # a block a kill cut short: never read, its films are rescored
                    os.unlink(entry.path)
                continue
            (blocks if BLOCK.fullmatch(entry.name) and entry.is_file() else foreign).append(entry.name)
        if foreign:
            raise self._foreign(f"it holds {', '.join(sorted(foreign)[:3])}, which no pneumo score run writes")
        blocks.sort(key=lambda name: int(BLOCK.fullmatch(name)[1]))
        for name in blocks:
            try:
                table = pq.read_table(self.path / name)
            except (pa.ArrowException, OSError) as exc:
                raise self._foreign(f"{name} is not a readable Parquet file ({exc})") from None
            if not set(table.column_names) <= set(COLUMNS) or "path" not in table.column_names:
                raise self._foreign(f"{name} has columns a pneumo score row does not have")
            for row in table.to_pylist():
                self._take({key: value or "" for key, value in row.items()}, name)
        self._next = int(BLOCK.fullmatch(blocks[-1])[1]) + 1 if blocks else 0

    def _take(self, row: dict, block: str) -> None:
        found = {key: row.get(key, "") for key in IDENTITY}
        if found["model"] and found != self.identity:
            raise self._foreign(f"it holds rows from model {found['model']} (threshold {found['threshold']}), "
                                f"and this run uses {self.identity['model']} (threshold "
                                f"{self.identity['threshold']})", code="other_model")
        film = decode_path(row)
        if film in self._block_of:
            self._stale.add(self._block_of[film])
        self.current[film], self._block_of[film] = row, block

    def _foreign(self, why: str, code: str = "foreign_results") -> PneumoError:
        return PneumoError(f"will not add to {self.path}: {why}", code=code,
                           hint="give another --out, or --new to start a new dataset "
                                "(the old one is kept beside it, renamed with the date)")

    def write(self, row: dict) -> None:
        """Add ``row`` (``path`` holds the OS name); it is on disk once its block is."""
        self._buffer.append({**row, **encode_path(row["path"])})
        if len(self._buffer) >= BLOCK_ROWS or time.monotonic() - self._last_flush >= BLOCK_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the rows held in memory as the next block: temp file, fsync, rename, fsync the folder."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        name = f"part-{self._next:06d}.parquet"
        rows = [{key: field_text(key, row.get(key)) for key in COLUMNS} for row in self._buffer]
        self._write_block(name, rows)
        self._next, self._buffer = self._next + 1, []
        for row in rows:
            self._take(row, name)

    def _write_block(self, name: str, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        temp, final = self.path / f".{name}.tmp", self.path / name
        table = pa.table({key: pa.array([row.get(key, "") for row in rows], pa.string()) for key in COLUMNS})
        try:
            pq.write_table(table, temp)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_folder(self.path)

    def compact(self) -> None:
        """Rewrite each block that holds a superseded row with only the rows still current in it."""
        import pyarrow.parquet as pq

        for name in sorted(self._stale):
            rows = [row for row in pq.read_table(self.path / name).to_pylist()
                    if self._block_of.get(decode_path({k: v or "" for k, v in row.items()})) == name]
            if rows:
                self._write_block(name, rows)
            else:
                os.unlink(self.path / name)
                fsync_folder(self.path)
        self._stale.clear()

    def close(self) -> None:
        """Write the last block, drop superseded rows, release the lock."""
        try:
            self.flush()
            self.compact()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _check_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise PneumoError(f"--out {path} is a file; a Parquet results dataset is a folder: give a new name",
                          code="bad_out")
    if not path.parent.is_dir():
        why = "is not a folder" if path.parent.exists() else "does not exist"
        raise PneumoError(f"--out {path}: the folder {path.parent} {why}", code="bad_out")
