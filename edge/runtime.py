"""Which TFLite interpreter runtime to use, and its version.

Three packages provide the same ``Interpreter`` and ``load_delegate``:
``ai_edge_litert`` (current, numpy 2), ``tflite_runtime`` (2.14 and older,
Python <= 3.11, numpy < 2) and ``tensorflow.lite`` (workstations only). They are
tried in that order; ``PNEUMO_RUNTIME`` or ``--runtime`` forces one, because a
given libedgetpu build may work with only one of them.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

from .errors import BackendUnavailable
from .versions import dist_version

RUNTIME_ENV = "PNEUMO_RUNTIME"
RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_ALIASES = {"litert": "ai_edge_litert", "ai-edge-litert": "ai_edge_litert",
            "tflite-runtime": "tflite_runtime", "tf": "tensorflow"}


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str
    interpreter: Callable[..., Any]  # the Interpreter class
    load_delegate: Callable[..., Any]
    op_resolver_type: Any  # the OpResolverType enum (kernel families)


def _load(name: str) -> Runtime:
    if name == "ai_edge_litert":
        module = importlib.import_module("ai_edge_litert.interpreter")
        version = dist_version("ai-edge-litert") or "unknown"
    elif name == "tflite_runtime":
        module = importlib.import_module("tflite_runtime.interpreter")
        version = dist_version("tflite-runtime") or "unknown"
    elif name == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return Runtime(name, tf.__version__, tf.lite.Interpreter, tf.lite.experimental.load_delegate,
                       tf.lite.experimental.OpResolverType)
    else:
        raise BackendUnavailable(f"unknown interpreter runtime {name!r}; choose one of {', '.join(RUNTIMES)}",
                                 code="unknown_runtime")
    return Runtime(name, version, module.Interpreter, module.load_delegate, module.OpResolverType)


def load_runtime(name: str | None = None) -> Runtime:
    """The forced runtime (argument, then ``PNEUMO_RUNTIME``), else the first importable.

    TensorFlow is only tried when named, or when neither light runtime exists, so
    a device never pays its import time (or memory) by accident.
    """
    forced = name or os.environ.get(RUNTIME_ENV) or None
    if forced:
        forced = _ALIASES.get(forced, forced)
        try:
            return _load(forced)
        except ImportError as exc:
            raise BackendUnavailable(f"interpreter runtime {forced!r} is not importable: {exc}",
                                     hint=_install_hint(forced)) from None
    errors = []
    for candidate in RUNTIMES:
        try:
            return _load(candidate)
        except ImportError as exc:
            errors.append(f"{candidate}: {exc}")
    raise BackendUnavailable("no TFLite interpreter runtime is installed (" + "; ".join(errors) + ")",
                             hint="pip install ai-edge-litert (or tflite-runtime==2.14.0 on Python <= 3.11)")


def _install_hint(name: str) -> str:
    return {"ai_edge_litert": "pip install ai-edge-litert",
            "tflite_runtime": "pip install 'tflite-runtime==2.14.0' 'numpy<2' (Python <= 3.11)",
            "tensorflow": "pip install tensorflow (workstations only)"}.get(name, "")
