"""What a conversion is told: a dataclass, so ``convert_run`` runs from Python as from ``pneumo convert``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ConvertConfig:
    model: str | Path  # a run folder from pneumo train, or its model.keras
    calib: str | Path  # labelled films to calibrate int8 on (training films, never test)
    out: str | Path
    name: str | None = None  # file name stem (default pneumo_<arch>)
    float16: bool = False
    calib_count: int = 400
    edgetpu_runtime: int | None = None  # edgetpu_compiler -m N
    check: str | Path | None = None  # labelled films from outside the training split: measured, never fit
    soup: list[str | Path] | None = None  # more run folders whose weights are averaged with model's
    calib_augment: bool = False  # calibrate on each film and one acquisition variant of it
    max_auc_drop: float = 0.005
    adult_films: str | Path | None = None  # adult chest films (PNG) to fit the out-of-scope check with
    scope_refusal: float = 0.005  # share of validation films each part of the scope check may refuse
