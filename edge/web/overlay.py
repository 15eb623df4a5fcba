"""The heatmap part of a web answer: the map for the page to draw, an image only on request.

The page draws the overlay on a canvas from the class activation map and the
film it already holds (:func:`~..heatmap.browser_recipe`), so by default the
server composes no image. For a film the browser cannot show as the server saw
it (DICOM, TIFF, a 16-bit film the server stretched, a camera frame the page never
had) the answer carries the grey film the overlay is drawn on, as a small JPEG.
A program that wants the server's overlay asks with ``overlay=1``.
"""

from __future__ import annotations

import base64

from ..films import Film
from ..heatmap import browser_recipe, encode_jpeg, grey_base, overlay_jpeg

#: Formats and modes every browser decodes to the pixels the server read.
BROWSER_FORMATS = {"JPEG", "MPO", "PNG", "BMP"}
BROWSER_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA"}


def browser_shows(film: Film) -> bool:
    """Whether the browser can draw the uploaded file itself as the film the model saw."""
    return film.format in BROWSER_FORMATS and film.original_mode in BROWSER_MODES


def heatmap_fields(cam, film: Film, *, uploaded: bool, overlay: bool) -> dict:
    """``heatmap`` (the recipe, with the grey film when the page needs it) and, asked for,
    ``overlay_jpeg_base64``; ``heatmap`` is None for a model without a map."""
    if cam is None:
        return {"heatmap": None}
    recipe = browser_recipe(cam)
    shown = uploaded and browser_shows(film)
    recipe["film_jpeg_base64"] = None if shown else _b64(encode_jpeg(grey_base(film.image)))
    fields = {"heatmap": recipe}
    if overlay:
        fields["overlay_jpeg_base64"] = _b64(overlay_jpeg(film.image, cam))
    return fields


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
