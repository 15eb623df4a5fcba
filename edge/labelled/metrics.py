"""Screening metrics in numpy alone, so a .tflite model is evaluated without TensorFlow."""

from __future__ import annotations

import numpy as np


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and the thresholds, highest first."""
    y_true = np.asarray(y_true, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    scores, y_true = scores[order], y_true[order]
    distinct = np.where(np.diff(scores))[0]
    ends = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true)[ends]
    fps = 1 + ends - tps
    positives, negatives = max(tps[-1], 1), max(fps[-1], 1)
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    return fpr, tpr, np.r_[np.inf, scores[ends]]


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (ties count one half), via the rank statistic."""
    y_true = np.asarray(y_true, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(y_true.sum())
    negatives = y_true.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)
    boundaries = np.r_[0, np.where(np.diff(sorted_values))[0] + 1, values.size]
    for start, stop in zip(boundaries[:-1], boundaries[1:]):
        ranks[order[start:stop]] = (start + stop + 1) / 2  # mean of 1-based ranks start+1..stop
    return ranks


def bootstrap_auc_ci(y_true, scores, n: int = 1000, *, seed: int = 0, level: float = 0.95
                     ) -> tuple[float, float]:
    """Percentile bootstrap interval for the ROC AUC (resampling films)."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        index = rng.integers(0, y_true.size, y_true.size)
        if 0 < y_true[index].sum() < index.size:
            values.append(roc_auc(y_true[index], scores[index]))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def confusion(y_true, scores, threshold: float) -> dict:
    """Counts with PNEUMONIA (1) as positive; a score >= threshold is positive."""
    y_true = np.asarray(y_true, dtype=np.int64)
    predicted = (np.asarray(scores) >= threshold).astype(np.int64)
    return {"tp": int(((predicted == 1) & (y_true == 1)).sum()),
            "fp": int(((predicted == 1) & (y_true == 0)).sum()),
            "tn": int(((predicted == 0) & (y_true == 0)).sum()),
            "fn": int(((predicted == 0) & (y_true == 1)).sum())}


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def at_threshold(y_true, scores, threshold: float) -> dict:
    c = confusion(y_true, scores, threshold)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sensitivity, ppv = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    return {"threshold": float(threshold),
            "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
            "sensitivity": sensitivity,
            "specificity": _ratio(tn, tn + fp),
            "ppv": ppv,
            "npv": _ratio(tn, tn + fn),
            "f1": _ratio(2 * ppv * sensitivity, ppv + sensitivity) if tp else 0.0,
            "confusion_matrix": {"labels": ["NORMAL", "PNEUMONIA"],
                                 "rows_true_cols_predicted": [[tn, fp], [fn, tp]]}}


def expected_calibration_error(y_true, scores, bins: int = 10) -> float:
    """ECE over equal-width probability bins: sum of |accuracy - confidence| weighted by size."""
    y_true = np.asarray(y_true, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(y_true[mask].mean() - scores[mask].mean())
    return float(ece)


def reliability(y_true, scores, bins: int = 10) -> list[dict]:
    """Per-bin mean predicted probability and observed pneumonia rate."""
    y_true = np.asarray(y_true, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    return [{"bin": b, "count": int((which == b).sum()),
             "mean_probability": float(scores[which == b].mean()) if (which == b).any() else None,
             "observed_rate": float(y_true[which == b].mean()) if (which == b).any() else None}
            for b in range(bins)]


def threshold_for_sensitivity(y_true, scores, target: float = 0.95) -> float:
    """The highest threshold whose sensitivity is at least ``target``.

    Highest, so specificity is as good as it can be at that sensitivity.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    positive_scores = np.sort(np.asarray(scores, dtype=np.float64)[y_true == 1])
    if positive_scores.size == 0:
        raise ValueError("no positive films to set a sensitivity threshold on")
    # keep ceil(target * P) positives at or above the threshold
    keep = int(np.ceil(target * positive_scores.size - 1e-9))
    return float(positive_scores[positive_scores.size - max(keep, 1)])


def summary(y_true, scores, threshold: float, *, bootstrap: int = 1000) -> dict:
    """Everything a clinician reads, at ``threshold`` and at 0.5."""
    low, high = bootstrap_auc_ci(y_true, scores, n=bootstrap) if bootstrap else (float("nan"),) * 2
    return {"n": int(len(y_true)), "positives": int(np.sum(y_true)),
            "roc_auc": roc_auc(y_true, scores), "roc_auc_ci95": [low, high],
            "ece": expected_calibration_error(y_true, scores),
            "at_threshold": at_threshold(y_true, scores, threshold),
            "at_0.5": at_threshold(y_true, scores, 0.5)}
