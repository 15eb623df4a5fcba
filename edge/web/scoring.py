"""Scoring uploaded films on one shared interpreter, with a bounded wait for it.

A TFLite interpreter is not thread-safe, and a device has one accelerator, so the
server's threads share one :class:`Classifier` behind a lock. Decoding happens
outside that lock, so a slow film delays only itself, in at most
``DECODE_WORKERS`` threads at a time, which bounds memory to that many decoded
films (each bounded by the readers' limits) whatever the number of threads. At
most ``queue`` requests may wait; one more is refused at once with
:class:`Busy` (503) rather than left waiting without end. The heatmap is the
class activation map for the page to draw (:mod:`.overlay`); an overlay image,
when asked for, needs no interpreter and is composed outside the lock. After a
large film the freed memory is handed back to the system.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..classifier import Classifier
from ..errors import Busy, PneumoError
from ..films import Film
from ..heatmap import overlay_jpeg
from .memory import give_back
from .overlay import heatmap_fields

#: Films decoded at once (a Pi has 2 to 4 cores; each decode is bounded by the readers' limits).
DECODE_WORKERS = 2
#: Films of this many pixels or more leave the allocator trimmed after them.
LARGE_FILM_PIXELS = 4_000_000

log = logging.getLogger(__name__)


class Scorer:
    def __init__(self, classifier: Classifier, queue: int, save_dir: Path | None = None):
        if queue < 0:
            raise PneumoError("--queue must be 0 or more", code="bad_option")
        self.classifier = classifier
        self.capacity = queue + 1  # the request holding the interpreter, plus those waiting
        self.interpreter_lock = threading.Lock()
        self._decoders = threading.BoundedSemaphore(DECODE_WORKERS)
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._in_use = 0
        self._count_lock = threading.Lock()
        self.save_dir = Path(save_dir) if save_dir else None

    @property
    def in_use(self) -> int:
        return self._in_use

    def score(self, data: bytes, *, overlay: bool = False) -> dict:
        """Score a film file's bytes: the prediction, timings and heatmap as a JSON-ready dict;
        with ``overlay``, also the server's overlay image.

        Raises FilmError for bad films and :class:`Busy` when the queue is full.
        """
        return self._score(lambda: self.classifier.read(data), data, overlay)

    def score_film(self, film: Film, *, overlay: bool = False) -> dict:
        """Score a film already decoded (a camera frame)."""
        return self._score(lambda: film, None, overlay)

    def _score(self, decode: Callable[[], Film], data: bytes | None, overlay: bool) -> dict:
        large = True  # until the film is known: a refused film may have been a large one
        try:
            result, (width, height) = self._decode_and_score(decode, data, overlay)
            large = width * height >= LARGE_FILM_PIXELS
            return result
        finally:
            if large:
                give_back()

    def _decode_and_score(self, decode: Callable[[], Film], data: bytes | None,
                          overlay: bool) -> tuple[dict, tuple[int, int]]:
        started = time.perf_counter()
        if not self._slots.acquire(blocking=False):
            raise Busy(f"the device is scoring other films ({self.capacity} in progress or waiting); "
                       "try again in a moment")
        self._count(+1)
        try:
            with self._decoders:
                decode_start = time.perf_counter()
                film = decode()
                decode_ms = (time.perf_counter() - decode_start) * 1000
            with self.interpreter_lock:
                waited = time.perf_counter() - started - decode_ms / 1000
                prediction = self.classifier.predict_film(film)
        finally:
            self._count(-1)
            self._slots.release()
        heat_start = time.perf_counter()
        heatmap = heatmap_fields(prediction.cam, film, uploaded=data is not None, overlay=overlay)
        done = time.perf_counter()
        result = prediction.as_dict()
        film_ms = decode_ms + sum(prediction.timings_ms.values())
        result["timings_ms"] = {"decode": round(decode_ms, 2), **result["timings_ms"], "total": round(film_ms, 2),
                                "wait": round(waited * 1000, 2), "heatmap": round((done - heat_start) * 1000, 2),
                                "server": round((done - started) * 1000, 2)}
        result.update(heatmap)
        result["id"] = uuid.uuid4().hex[:12]
        if self.save_dir:
            result["saved"] = self._save(result, data, film, cam=prediction.cam)
        return result, film.original_size

    def _count(self, step: int) -> None:
        with self._count_lock:
            self._in_use += step

    def _save(self, result: dict, data: bytes | None, film: Film, *, cam) -> bool:
        """Write the film (as uploaded, or a captured frame as grey PNG), its result (with the map's
        numbers) and its overlay under --save-dir; a failure is logged and reported, and the answer
        is still given."""
        stem = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{result['id']}"
        if data is None:
            buffer = io.BytesIO()
            film.image.save(buffer, format="PNG")
            data, suffix = buffer.getvalue(), "png"
        else:
            suffix = re.sub(r"[^a-z0-9]", "", film.format.lower())[:8] or "bin"
        record = {k: v for k, v in result.items() if k not in ("heatmap", "overlay_jpeg_base64")}
        record["cam"] = result["heatmap"]["cam"] if result["heatmap"] else None
        try:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            (self.save_dir / f"{stem}.film.{suffix}").write_bytes(data)
            if cam is not None:
                (self.save_dir / f"{stem}.heatmap.jpg").write_bytes(overlay_jpeg(film.image, cam, legend=True))
            (self.save_dir / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
        except OSError as exc:
            log.error("could not save result %s under %s: %s", result["id"], self.save_dir, exc)
            return False
        return True
