"""The CPU backend: the runtime's own kernels (XNNPACK where the runtime has it)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Config:
    threads: int | None = None  # None: all cores


def probe(runtime) -> str | None:
    return None


def make_interpreter(model_path: str, config: Config, runtime):
    threads = config.threads or os.cpu_count() or 1
    return runtime.interpreter(model_path=str(model_path), num_threads=threads)
