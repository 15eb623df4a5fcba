"""Cameras that photograph a film: the Raspberry Pi camera, or a folder replayed for tests.

Both are context managers with one method, ``capture()``, returning a PIL image
(RGB, like a camera frame), as picamera2 itself does::

    with open_camera("picamera2") as camera:
        film = capture_film(camera)

``open_camera("replay:DIR")`` returns the images in DIR in name order, cycling,
so tests and demos run the same code path without a camera.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..errors import BackendUnavailable, FilmError
from .film import Film, to_grey
from .folders import RASTER_SUFFIXES
from .raster import open_image

PICAMERA2_MISSING = ("the Pi camera needs picamera2, which comes from Raspberry Pi OS, not pip: "
                     "run `sudo apt install python3-picamera2` and use a venv made with "
                     "`python3 -m venv --system-site-packages`")


class Picamera2Camera:
    """The Raspberry Pi camera through picamera2 (libcamera): full-resolution stills."""

    def __init__(self, camera_num: int = 0, size: tuple[int, int] | None = None):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise BackendUnavailable(PICAMERA2_MISSING, code="camera_unavailable") from None
        try:
            self._camera = Picamera2(camera_num)
        except (RuntimeError, IndexError) as exc:
            raise BackendUnavailable(f"no camera at index {camera_num}: {exc}", code="camera_unavailable",
                                     hint="check the ribbon cable, then `rpicam-hello --list-cameras`") from None
        main = {"size": size} if size else {}
        self._camera.configure(self._camera.create_still_configuration(main=main))
        self._camera.start()

    def capture(self) -> Image.Image:
        try:
            return self._camera.capture_image("main").convert("RGB")
        except RuntimeError as exc:
            raise BackendUnavailable(f"the camera did not deliver a frame: {exc}", code="camera_failed") from None

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()

    def __enter__(self) -> Picamera2Camera:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ReplayCamera:
    """Replays the films in a folder, in name order, cycling: a camera for tests and demos."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise BackendUnavailable(f"replay camera: no folder {self.folder}", code="camera_unavailable")
        self.paths = sorted(p for p in self.folder.iterdir()
                            if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES)
        if not self.paths:
            raise BackendUnavailable(f"replay camera: no JPEG, PNG, TIFF or BMP files in {self.folder}",
                                     code="camera_unavailable")
        self._next = 0

    def capture(self) -> Image.Image:
        path = self.paths[self._next % len(self.paths)]
        self._next += 1
        try:
            image = open_image(path.read_bytes())
        except FilmError as exc:
            raise FilmError(f"replay camera: {path.name}: {exc}", code=exc.code) from None
        if image.mode.startswith("I") or image.mode == "F":
            image = to_grey(image)[0]  # a 16-bit scan: stretched to 8 bits first, as read_film does
        return image.convert("RGB")

    def close(self) -> None:
        pass

    def __enter__(self) -> ReplayCamera:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_camera(kind: str = "picamera2") -> Picamera2Camera | ReplayCamera:
    """``"picamera2"`` (or ``"picamera2:N"`` for camera N) or ``"replay:DIR"``."""
    name, _, argument = kind.partition(":")
    if name == "picamera2" and (not argument or argument.isdigit()):
        return Picamera2Camera(int(argument or 0))
    if name == "replay" and argument:
        return ReplayCamera(argument)
    raise BackendUnavailable(f"unknown camera {kind!r}; expected picamera2, picamera2:N or replay:DIR",
                             code="camera_unknown")


def capture_film(camera) -> Film:
    """Capture one frame and make it a :class:`Film`."""
    return film_from_frame(camera.capture())


def film_from_frame(image: Image.Image) -> Film:
    """A camera frame as a :class:`Film`: grey, with its colour spread for the quality gate.

    Saved as PNG and read back with ``read_film``, the frame gives the same film.
    """
    grey, spread = to_grey(image)
    return Film(grey, image.size, image.mode, "camera", spread)
