"""Evaluation a clinician can read: metrics JSON, ROC, confusion matrix, reliability diagram."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..edge.errors import DataError
from ..edge.labelled import metrics
from ..edge.labelled.listing import list_films
from .config import EvaluateConfig
from .run_folder import load_run, run_split


def _films(config: EvaluateConfig):
    films = list_films(config.data, config.split)
    if config.val_of:
        _, run = load_run(Path(config.val_of))
        _, val = run_split(run, Path(config.data))
        keep = {f.path.resolve() for f in val}
        films = [f for f in films if f.path.resolve() in keep]
    if not films:
        raise DataError(f"no labelled films to evaluate in {config.data}", code="no_films")
    return films


def score_tflite(model: Path, films, runtime: str | None, *, adult_films: Path | None = None):
    """Every film scored (out-of-scope ones too, so the metrics stay comparable), and the
    scope check's refusal rates: on these films and on the out-of-scope check sets."""
    from ..edge.classifier import Classifier, Options
    from ..edge.labelled.scoring import score_labelled

    classifier = Classifier(Options(model=model, runtime=runtime, allow_out_of_scope=True))
    decisions: list = []
    y, scores, errors = score_labelled(classifier, films, decisions)
    return y, scores, errors, classifier.threshold, classifier.id, scope_report(classifier, films, decisions,
                                                                                adult_films=adult_films)


def scope_report(classifier, films, decisions, *, adult_films: Path | None, copies: int = 300) -> dict | None:
    """In-scope refusal on ``films`` and refusal on each check set (copies of the first films)."""
    from ..edge.films import read_film
    from . import scope_sets

    if classifier.scope is None:
        return None
    refused = [d for d in decisions if not d.in_scope]
    rates = {"these films (in scope)": {"films": len(decisions), "refused": len(refused),
                                        "rate": len(refused) / max(len(decisions), 1)}}
    spread = films[::max(1, len(films) // copies)][:copies]
    sample = [read_film(f.path, min_size=classifier.spec.size) for f in spread]
    for name, check in scope_sets.check_sets(sample, adult_films):
        key = name if "in the fit" in name else f"{name} (copies of these films)"
        rates[key] = scope_sets.measure(classifier, check)
    return rates


def score_keras(model_or_run: Path, films):
    import keras

    from ..edge.preprocess import PreprocessSpec, scale_pixels
    from .films_in_memory import load_pixels

    model_path, run = load_run(model_or_run)
    spec = PreprocessSpec.from_dict(run["preprocess"])
    pixels, y, _, skipped = load_pixels(films, spec)
    model = keras.models.load_model(model_path)
    scores = model.predict(scale_pixels(pixels, spec), batch_size=32, verbose=0).reshape(-1)
    return y.astype(np.int64), scores.astype(np.float64), skipped, run["threshold"], str(model_path)


def evaluate(config: EvaluateConfig) -> dict:
    """Score ``config.model`` on the labelled films; write metrics.json and plots; return the metrics."""
    model = Path(config.model)
    films = _films(config)
    from .plots import plot_confusion, plot_reliability, plot_roc

    if model.suffix == ".tflite":
        y, scores, errors, threshold, model_name, scope = score_tflite(model, films, config.runtime,
                                                                       adult_films=config.adult_films)
    else:
        y, scores, errors, threshold, model_name = score_keras(model, films)
        scope = None
    threshold = config.threshold if config.threshold is not None else threshold
    result = {"model": model_name, "data": str(config.data), "split": config.split,
              "val_of": None if config.val_of is None else str(config.val_of),
              **metrics.summary(y, scores, threshold, bootstrap=config.bootstrap),
              "reliability": metrics.reliability(y, scores),
              "unscored": [{"path": p, "error": e} for p, e in errors], "scope_refusal": scope}
    out = Path(config.out) if config.out else (model.parent if model.is_file() else model) / f"eval_{model.stem}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    plot_roc(y, scores, threshold, path=out / "roc.png", title=f"ROC: {model.name}")
    plot_confusion(y, scores, threshold, path=out / "confusion.png")
    plot_reliability(y, scores, out / "reliability.png")
    print(format_table(result))
    if scope:
        from .scope_sets import format_rates

        print(f"out-of-scope check (metrics above include the films it refuses), refusal rates:\n"
              f"{format_rates(scope)}")
    for path, error in errors:
        print(f"unscored {path}: {error}", file=sys.stderr)
    print(f"metrics and plots in {out}")
    return result


def format_table(result: dict) -> str:
    low, high = result["roc_auc_ci95"]
    lines = [f"{result['n']} films ({result['positives']} pneumonia); ROC AUC {result['roc_auc']:.4f} "
             f"(95% CI {low:.3f}-{high:.3f}); ECE {result['ece']:.3f}",
             f"{'':<18}" + "".join(f"{name:>9}" for name in ("accuracy", "sens", "spec", "PPV", "NPV", "F1"))]
    for key in ("at_threshold", "at_0.5"):
        m = result[key]
        name = f"threshold {m['threshold']:.3f}"
        lines.append(f"{name:<18}" + "".join(f"{m[k]:>9.3f}" for k in
                                             ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")))
    (tn, fp), (fn, tp) = result["at_threshold"]["confusion_matrix"]["rows_true_cols_predicted"]
    lines.append(f"confusion at threshold: TP {tp}  FN {fn}  TN {tn}  FP {fp}")
    return "\n".join(lines)
