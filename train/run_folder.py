"""A training run's folder: its model, its run.json, and its own train/validation films."""

from __future__ import annotations

import json
from pathlib import Path

from ..edge.errors import DataError
from ..edge.labelled.listing import list_films
from .splits import sample_per_class, split_by_patient


def load_run(model_or_run: Path) -> tuple[Path, dict]:
    """The Keras model file and its run.json, from a run folder or the model file in one."""
    model_or_run = Path(model_or_run)
    run_dir = model_or_run if model_or_run.is_dir() else model_or_run.parent
    model_path = run_dir / "model.keras" if model_or_run.is_dir() else model_or_run
    if not model_path.exists():
        raise DataError(f"no trained model at {model_path}: name a run folder from pneumo train or its model.keras",
                        code="bad_run")
    run_file = run_dir / "run.json"
    if not run_file.exists():
        raise DataError(f"no run.json beside {model_path}: the run's preprocessing is recorded there", code="bad_run")
    return model_path, json.loads(run_file.read_text())


def run_split(run: dict, data: Path | None = None):
    """The run's own train and validation films (the same patients, by seed)."""
    seed = run.get("split_seed", run["seed"])
    films = sample_per_class(list_films(data or run["data"], run.get("split")), run.get("limit"), seed)
    return split_by_patient(films, run["val_fraction"], seed)
