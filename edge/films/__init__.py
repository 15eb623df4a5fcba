"""Films: reading one from any source into one 8-bit grey image.

Every path into the model (a scanner's 16-bit PNG, a phone photo, a DICOM file, a
camera frame, a training JPEG) ends in :func:`read_film`, which returns a
:class:`Film`: the grey 8-bit image plus what the quality gate needs to know about
the original (its size, whether it was in colour). Errors are :class:`FilmError`
with a specific code, never a bare Pillow exception.

Modules: ``film`` (the type, the pixel limit, grey conversion), ``limits`` (the
decoded-size limit every reader checks from the header), ``read`` (the one entry,
DICOM recognised by content), ``raster`` (Pillow formats), ``dicom`` (the ``[dicom]``
extra), ``dicom_bounds`` (a DICOM file bounded before decoding), ``camera`` (Pi camera
frames and replay folders), ``folders`` (which files in a folder are films: one rule
for every command).
"""

from .film import MAX_PIXELS, Film, Source
from .folders import FILM_SUFFIXES, walk_films
from .raster import open_image
from .read import is_dicom, read_film

__all__ = ["FILM_SUFFIXES", "MAX_PIXELS", "Film", "Source", "is_dicom", "open_image", "read_film", "walk_films"]
