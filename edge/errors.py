"""Errors that a user can act on: each carries a short code and a sentence."""

from __future__ import annotations


class PneumoError(Exception):
    """An error with a stable machine-readable ``code`` and a human message."""

    code = "error"

    def __init__(self, message: str, code: str | None = None, hint: str | None = None):
        super().__init__(message)
        if code:
            self.code = code
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (hint: {self.hint})" if self.hint else text


class FilmError(PneumoError):
    """A film that cannot be read, or that the quality gate refuses."""

    code = "unreadable"


class ModelError(PneumoError):
    """A model file or card that cannot be used."""

    code = "model"


class BackendUnavailable(PneumoError):
    """An accelerator or interpreter runtime that is not present on this machine."""

    code = "backend_unavailable"


class DataError(PneumoError):
    """Labelled data, a run folder or a calibration that cannot be used: missing, empty or malformed."""

    code = "data"


class Busy(PneumoError):
    """Every place in the queue for the interpreter is taken: try again in a moment."""

    code = "busy"


class MissingExtra(PneumoError):
    """A feature whose optional dependencies are not installed."""

    code = "missing_extra"
