"""The server's camera, if it has one: opened at start, held, shared under a lock.

Starting the Pi camera takes a second or more, so it is opened once when the
server starts and closed when it stops; captures from several requests are
serialised by a lock. ``kind`` is ``none``, ``picamera2`` (``picamera2:N``) or
``replay:DIR``, as understood by :func:`pneumo_edge.edge.films.camera.open_camera`.
A camera that cannot be opened leaves the server running without one, and says why.
"""

from __future__ import annotations

import logging
import threading

from ..errors import BackendUnavailable, FilmError, PneumoError
from ..films import Film

log = logging.getLogger(__name__)

#: What a camera driver raises on failure (camera.py wraps most as BackendUnavailable).
CAMERA_ERRORS = (PneumoError, OSError, RuntimeError)


class CameraUnavailable(BackendUnavailable):
    """The server's camera cannot capture now (not opened, closed, or the capture failed)."""

    code = "camera_unavailable"


class CameraSlot:
    def __init__(self, kind: str = "none"):
        self.kind = kind
        self._lock = threading.Lock()
        self._camera = None
        self.reason = self._open()

    @property
    def available(self) -> bool:
        return self._camera is not None

    def _open(self) -> str | None:
        """Open the camera; return why it cannot be used, or None."""
        if self.kind == "none":
            return "no camera configured (pneumo serve --camera)"
        try:
            from ..films.camera import open_camera
        except ImportError as exc:
            return f"camera support is not installed ({exc})"
        try:
            self._camera = open_camera(self.kind).__enter__()
        except CAMERA_ERRORS as exc:
            log.warning("camera %s unavailable: %s", self.kind, exc)
            return f"camera {self.kind} could not be opened: {exc}"
        return None

    def capture(self) -> Film:
        """One frame as a :class:`Film`; a bad frame raises FilmError like a bad upload."""
        from ..films.camera import capture_film

        with self._lock:
            if self._camera is None:
                raise CameraUnavailable(self.reason or "the camera is closed")
            try:
                return capture_film(self._camera)
            except FilmError:
                raise
            except CAMERA_ERRORS as exc:
                log.warning("capture from %s failed: %s", self.kind, exc)
                raise CameraUnavailable(f"capture from camera {self.kind} failed: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._camera is not None:
                self._camera.__exit__(None, None, None)
                self._camera = None
