"""The CPU backend: the runtime's own kernels (XNNPACK where the runtime has it).

int8 arithmetic is not bit-identical across kernel families: XNNPACK (what
ai-edge-litert uses), TFLite's built-in optimized kernels (what tflite-runtime 2.14
uses) and TFLite's reference kernels round requantization differently, and on a
borderline film the probability can move by several output steps (up to about 0.04
on the shipped MobileNet). ``kernels="reference"`` selects the reference kernels,
which give the same bits on every CPU (the emulated Pi check shows tflite-runtime on
arm64 equal to them), at many times the cost: for audits and cross-device checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Config:
    threads: int | None = None  # None: all cores
    kernels: str = "default"  # "default" (the runtime's fastest) or "reference" (TFLite's reference kernels)


def config_from(options) -> Config:
    return Config(threads=options.threads, kernels=options.kernels)


def model_file(path: Path) -> Path:
    return path


def probe(runtime, config: Config) -> str | None:
    return None


def make_interpreter(model_path: str, config: Config, runtime):
    threads = config.threads or os.cpu_count() or 1
    if config.kernels == "reference":
        return runtime.interpreter(model_path=str(model_path), num_threads=threads,
                                   experimental_op_resolver_type=runtime.op_resolver_type.BUILTIN_REF)
    if config.kernels != "default":
        raise ValueError(f"kernels must be 'default' or 'reference', not {config.kernels!r}")
    return runtime.interpreter(model_path=str(model_path), num_threads=threads)
