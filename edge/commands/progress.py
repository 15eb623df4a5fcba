"""A dependency-free progress line: done, rate, ETA and errors (a bar on a terminal, periodic lines otherwise)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, stream=None, every_s: float = 10.0):
        self.total, self.count, self.errors, self.started = total, 0, 0, time.monotonic()
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s, self.last = (0.2 if self.tty else every_s), 0.0

    def update(self, step: int = 1, errors: int = 0) -> None:
        self.count += step
        self.errors += errors
        now = time.monotonic()
        if now - self.last >= self.every_s or self.count == self.total:
            self.last = now
            self.stream.write(("\r" if self.tty else "") + self.line(now) + ("" if self.tty else "\n"))
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.count / elapsed
        eta = (self.total - self.count) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * self.count / self.total) if self.total else width
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} "
                f"{rate:.1f} films/s ETA {_clock(eta)} errors {self.errors}")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"
