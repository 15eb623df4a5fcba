"""pyarrow, which the ``[cluster]`` extra brings: one line naming the extra when it is missing."""

from __future__ import annotations

from ..errors import MissingExtra

EXTRA_HINT = "pip install 'pneumo-edge[cluster]'"


def require_pyarrow(what: str) -> None:
    try:
        import pyarrow  # noqa: F401
    except ModuleNotFoundError:
        raise MissingExtra(f"{what} needs pyarrow: {EXTRA_HINT}") from None
