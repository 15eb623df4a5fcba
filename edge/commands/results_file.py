"""An append-only results file (CSV or JSONL) that survives being killed at any moment.

Each row is written with one ``write`` and flushed, so after a crash or SIGKILL
the file holds complete rows plus, at worst, one partial last line. Opening it
again drops that partial line and reports which films are already done, so a
rerun scores only the rest: no film lost, none twice, no broken line.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

COLUMNS = ["path", "sha256", "probability", "label", "threshold", "model", "error", "error_code", "ms", "heatmap"]


class ResultsFile:
    def __init__(self, path: str | Path, fmt: str):
        if fmt not in ("csv", "jsonl"):
            raise ValueError("format must be csv or jsonl")
        self.path, self.format = Path(path), fmt
        self.done = self._recover()
        self.handle = open(self.path, "a", encoding="utf-8", newline="")
        if fmt == "csv" and self.handle.tell() == 0:
            self._write_line(self._csv_line(COLUMNS))

    def _recover(self) -> set[str]:
        """Truncate a partial last line; return the paths of complete rows."""
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)
            data = data[:keep]
        text = data.decode("utf-8", errors="replace")
        if self.format == "jsonl":
            return {json.loads(line)["path"] for line in text.splitlines() if line.strip()}
        rows = list(csv.DictReader(io.StringIO(text)))
        return {row["path"] for row in rows if row.get("path")}

    def _csv_line(self, values: list) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue()

    def _write_line(self, line: str) -> None:
        self.handle.write(line)
        self.handle.flush()

    def write(self, row: dict) -> None:
        if self.format == "jsonl":
            line = json.dumps({key: row.get(key) for key in COLUMNS if row.get(key) not in (None, "")}) + "\n"
        else:
            line = self._csv_line(["" if row.get(key) is None else row.get(key) for key in COLUMNS])
        self._write_line(line)
        self.done.add(row["path"])

    def close(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
