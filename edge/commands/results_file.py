"""The results file of ``pneumo score``: the record of a folder, one current row per film.

What it guarantees, whatever happens to the process writing it:

- **One line per row.** Every field is written on one line (a name with a newline,
  an error message with one: see :func:`encode_path` and :func:`one_line`), so a
  row killed half-written is the file's last, partial line, and opening the file
  again drops it.
- **Any file name round-trips.** ``path`` is the name relative to the scored folder
  when it is valid UTF-8 and printable. Otherwise ``path`` is a readable stand-in
  (undecodable bytes and control characters as U+FFFD) and ``path_b64`` holds the
  name's exact bytes, base64 (URL-safe alphabet). The same in CSV and JSONL; the
  file is always valid UTF-8.
- **The last row for a film is its current row.** A film scored again (changed,
  or an error worth retrying) gets a new row appended; on close, and on opening a
  file that holds superseded rows, the file is rewritten with only the current
  rows, atomically (temp file, fsync, rename).
- **One writer, one model.** A lock file beside it (``.<name>.lock``, flock) keeps
  a second writer out; rows from another model or threshold, or a header that is
  not a results header, are refused unless a new file is asked for.

The row's columns are :data:`COLUMNS`, defined here and nowhere else.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import time
from pathlib import Path

from ..errors import PneumoError

#: The columns of a row, in file order. A new column is one entry here: files with
#: fewer columns (written by an older version) are read and rewritten with these.
COLUMNS = ["path", "sha256", "probability", "label", "scope", "threshold", "model", "error", "error_code", "ms",
           "heatmap", "size", "mtime_ns", "path_b64"]

#: Errors that may be gone on a rerun (a film still being copied, a full disk, a
#: worker killed for memory): a rerun scores these films again.
TRANSIENT_ERRORS = frozenset({"io_error", "truncated", "worker_died", "disk_full", "not_found", "empty_file"})

#: What identifies the model run that made a row: a file keeps rows of one only.
IDENTITY = ("model", "threshold")

FORMATS = ("csv", "jsonl")


def encode_path(relative: str) -> dict:
    """``path`` (and ``path_b64`` when needed) for a name as the OS gave it (surrogateescape)."""
    raw = os.fsencode(relative)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():
        return {"path": text, "path_b64": ""}
    return {"path": one_line(raw.decode("utf-8", errors="replace")),
            "path_b64": base64.urlsafe_b64encode(raw).decode("ascii")}


def decode_path(row: dict) -> str:
    """The name as the OS spells it (str, surrogateescape), from a row."""
    if row.get("path_b64"):
        return os.fsdecode(base64.urlsafe_b64decode(row["path_b64"]))
    return row["path"]


def one_line(text: str) -> str:
    """Printable text on one line: control characters (newlines too) and lone surrogates become U+FFFD."""
    if text.isprintable():  # nearly every field: nothing to replace (a lone surrogate is not printable)
        return text
    text = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def format_for(path: Path, given: str | None) -> str:
    return given or ("jsonl" if path.suffix.lower() == ".jsonl" else "csv")


class ResultsFile:
    """An open, locked results file: ``current`` maps each film (OS name) to its current row."""

    def __init__(self, path: str | Path, fmt: str, identity: dict, *, new: bool = False):
        if fmt not in FORMATS:
            raise ValueError("format must be csv or jsonl")
        self.path, self.format, self.identity = Path(path), fmt, {k: str(identity[k]) for k in IDENTITY}
        check_writable(self.path)
        self.lock = self.path.with_name(f".{self.path.name}.lock")
        self._lock_fd = acquire_lock(self.lock, self.path)
        self.replaced_to: Path | None = None
        self.dropped_lines = 0
        self.current: dict[str, dict] = {}
        self._superseded = 0
        self._fd = -1
        try:
            if new and self.path.exists():
                self.replaced_to = self.path.with_name(f"{self.path.name}.{time.strftime('%Y%m%dT%H%M%S')}")
                os.replace(self.path, self.replaced_to)
            rows, header = self._load()
            self._check_identity(rows)
            for row in rows:
                self._superseded += decode_path(row) in self.current
                self.current[decode_path(row)] = row
            if self._superseded or self.dropped_lines or (header is not None and header != COLUMNS):
                self.rewrite()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if fmt == "csv" and os.fstat(self._fd).st_size == 0:
                self._append(_csv_line(COLUMNS))
        except BaseException:
            self._release()
            raise
        self._last_sync = time.monotonic()

    # -- reading ---------------------------------------------------------------------------------
    def _load(self) -> tuple[list[dict], list[str] | None]:
        """Complete rows in file order (a partial last line is dropped) and the CSV header."""
        if not self.path.exists():
            return [], None
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):  # a row cut short by a kill or a full disk
            self.dropped_lines += 1
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)
            data = data[:keep]
        lines = data.decode("utf-8", errors="replace").splitlines()
        if not lines:
            return [], None
        if self.format == "jsonl":
            return self._jsonl_rows(lines), None
        header = next(csv.reader([lines[0]]))
        if "path" not in header or not set(header) <= set(COLUMNS):
            raise self._foreign(f"its header ({_clip(lines[0])}) is not a pneumo score header")
        rows = []
        for fields in csv.reader(lines[1:]):
            if len(fields) != len(header):
                self.dropped_lines += 1
                continue
            rows.append(dict(zip(header, fields)))
        return rows, header

    def _jsonl_rows(self, lines: list[str]) -> list[dict]:
        rows = []
        for number, line in enumerate(lines):
            try:
                row = json.loads(line)
                valid = isinstance(row, dict) and "path" in row
            except ValueError:
                valid = False
            if valid and not set(row) <= set(COLUMNS):
                raise self._foreign(f"line {number + 1} has fields a pneumo score row does not have "
                                    f"({', '.join(sorted(set(row) - set(COLUMNS)))})")
            if not valid:
                if number == 0:
                    raise self._foreign(f"its first line ({_clip(line)}) is not a pneumo score row")
                self.dropped_lines += 1
                continue
            rows.append({key: "" if value is None else str(value) for key, value in row.items()})
        return rows

    def _check_identity(self, rows: list[dict]) -> None:
        for row in rows:
            found = {key: row.get(key, "") for key in IDENTITY}
            if found["model"] and found != self.identity:
                raise self._foreign(f"it holds rows from model {found['model']} (threshold {found['threshold']}), "
                                    f"and this run uses {self.identity['model']} (threshold "
                                    f"{self.identity['threshold']})", code="other_model")

    def _foreign(self, why: str, code: str = "foreign_results") -> PneumoError:
        return PneumoError(f"will not add to {self.path}: {why}",
                           code=code, hint="give another --out, or --new to start a new file "
                                           "(the old one is kept beside it, renamed with the date)")

    # -- writing ---------------------------------------------------------------------------------
    def write(self, row: dict) -> None:
        """Append ``row`` (``path`` holds the OS name) as one line; it becomes the film's current row."""
        relative = row["path"]
        record = {**row, **encode_path(relative)}
        self._append(self._line(record))
        self._superseded += relative in self.current
        self.current[relative] = record
        if time.monotonic() - self._last_sync > 5:  # bound what a power cut can take
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def _line(self, record: dict) -> str:
        values = {key: field_text(key, record.get(key)) for key in COLUMNS}
        if self.format == "jsonl":
            return json.dumps({key: value for key, value in values.items() if value != ""},
                              ensure_ascii=False) + "\n"
        return _csv_line([values[key] for key in COLUMNS])

    def _append(self, line: str) -> None:
        data = line.encode("utf-8")
        while data:  # a short write (a disk filling up) is finished or raises ENOSPC
            data = data[os.write(self._fd, data):]

    def rewrite(self) -> None:
        """Replace the file by its current rows, atomically: temp file, fsync, rename, fsync the folder."""
        temp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open(temp, "w", encoding="utf-8", newline="") as handle:
                if self.format == "csv":
                    handle.write(_csv_line(COLUMNS))
                for row in self.current.values():
                    handle.write(self._line(row))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_folder(self.path.parent)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._superseded = self.dropped_lines = 0

    def close(self) -> None:
        """Compact the file if a film has more than one row, make it durable, release the lock."""
        try:
            if self._superseded:
                self.rewrite()
            os.fsync(self._fd)
        finally:
            self._release()

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing releases the flock; the lock file stays (unlinking it races)
            self._lock_fd = -1


def check_writable(path: Path) -> None:
    """One-line errors for an ``--out`` that cannot be a results file."""
    if path.is_dir():
        raise PneumoError(f"--out {path} is a folder; give a file name such as {path / 'results.csv'}",
                          code="bad_out")
    if not path.parent.is_dir():
        why = "is not a folder" if path.parent.exists() else "does not exist"
        raise PneumoError(f"--out {path}: the folder {path.parent} {why}", code="bad_out")


def acquire_lock(lock: Path, path: Path) -> int:
    import fcntl

    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise PneumoError(f"cannot create the lock file {lock}: {exc.strerror}", code="bad_out") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", errors="replace").strip() or "unknown"
        os.close(fd)
        raise PneumoError(f"another pneumo score (pid {holder}) is writing {path}; wait for it to finish, "
                          "or give another --out", code="locked") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def field_text(key: str, value) -> str:
    if value is None:
        return ""
    return value if key == "path_b64" else one_line(str(value))


def _csv_line(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
