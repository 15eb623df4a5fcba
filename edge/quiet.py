"""Keeping library chatter off the user's terminal unless ``--verbose``.

TFLite's C++ core prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
straight to file descriptor 2 while an interpreter is made, out of reach of Python's
logging; Pillow warns (DecompressionBombWarning, corrupt EXIF) through ``warnings``.
Neither tells a clinic worker anything they can act on: films Pillow warns about
are refused or scored on their own rows.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Send what native code writes to fd 2 to /dev/null for the duration (Python's stderr too)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def silence_library_warnings() -> None:
    """Ignore Pillow's warnings in this process (a command-line process: the filter is process-wide)."""
    warnings.filterwarnings("ignore", module=r"PIL(\..*)?$")
    from PIL import Image

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
