"""Accelerator backends behind one interface, picked by name.

A backend is a module in this package (a new file is all it takes: the registry
imports every module here) with:

- ``Config``: a dataclass of its settings, and ``config_from(options)`` building it
  from the :class:`~pneumo_edge.edge.classifier.Options` the user gave;
- ``model_file(path) -> Path``: the model file it runs for the model at ``path``
  (the Edge TPU runs the compiled ``*_edgetpu.tflite`` beside it);
- ``probe(runtime, config) -> str | None``: ``None`` when usable, else why not;
- ``make_interpreter(model_path, config, runtime)``.

:func:`register` adds one more at run time (a plugin, or a test's fake).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ..errors import BackendUnavailable

#: Backend name -> module; cpu first, then the others by name.
BACKENDS: dict[str, ModuleType] = {}

#: What a backend module must define.
INTERFACE = ("Config", "config_from", "model_file", "probe", "make_interpreter")


def register(name: str, module: ModuleType) -> None:
    missing = [attribute for attribute in INTERFACE if not hasattr(module, attribute)]
    if missing:
        raise TypeError(f"backend {name!r} lacks {', '.join(missing)}")
    BACKENDS[name] = module


def get_backend(name: str) -> ModuleType:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}",
                                 code="unknown_backend") from None


def _discover() -> None:
    names = sorted((info.name for info in pkgutil.iter_modules(__path__)), key=lambda name: (name != "cpu", name))
    for name in names:
        register(name, importlib.import_module(f"{__name__}.{name}"))


_discover()
