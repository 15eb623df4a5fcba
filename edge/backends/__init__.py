"""Accelerator backends behind one interface, picked by name.

Each backend module has a ``Config`` dataclass, ``probe(runtime) -> str | None``
(``None`` when usable, else the reason it is not) and
``make_interpreter(model_path, config, runtime)``.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import BackendUnavailable
from . import cpu, edgetpu

BACKENDS: dict[str, ModuleType] = {"cpu": cpu, "edgetpu": edgetpu}


def get_backend(name: str) -> ModuleType:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}",
                                 code="unknown_backend") from None
