"""What a training or evaluation run is told: plain dataclasses, so both run from Python.

The command line (``cli_train``, ``cli_evaluate``) builds them from its arguments,
whose names they share; tests check that the defaults agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainConfig:
    """``pneumo train``: see its ``--help`` for each field (``--val-fraction`` is ``val_fraction``)."""

    data: str | Path
    out: str | Path
    split: str | None = None
    arch: str = "mobilenet"
    size: int | None = None
    channels: int | None = None
    alpha: float = 0.35
    epochs: int = 25
    batch: int = 32
    lr: float | None = None
    weights: str | None = None  # None: imagenet for efficientnet_lite0, none otherwise
    freeze_blocks: int = 10
    augment: str = "light"
    normalise: str = "none"
    label_smoothing: float = 0.0
    average_last: int = 0
    watch: str | Path | None = None
    keep_epochs: bool = False
    val_fraction: float = 0.15
    seed: int = 0
    split_seed: int | None = None  # the validation split's seed (default: seed), so seeds can share a split
    patience: int = 8
    target_sensitivity: float = 0.95
    limit: int | None = None
    workers: int = 2


@dataclass
class EvaluateConfig:
    """``pneumo evaluate``: a model (.tflite, model.keras or run folder) on labelled films."""

    model: str | Path
    data: str | Path
    split: str | None = None
    val_of: str | Path | None = None
    out: str | Path | None = None
    threshold: float | None = None
    bootstrap: int = 1000
    runtime: str | None = None
    adult_films: str | Path | None = None  # adult films to report the out-of-scope check's refusal on
