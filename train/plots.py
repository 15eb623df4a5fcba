"""Plots for a clinician and an engineer: learning curves, ROC, confusion matrix, reliability."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..edge.labelled import metrics  # noqa: E402


def plot_history(history_csv: Path, out: Path) -> list[Path]:
    """loss.png and auc.png from Keras' CSVLogger file."""
    with open(history_csv) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return []
    epochs = [int(r["epoch"]) + 1 for r in rows]
    written = []
    for key, title in (("loss", "Loss (binary cross-entropy)"), ("auc", "ROC AUC")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for prefix, name in (("", "train"), ("val_", "validation")):
            if prefix + key in rows[0]:
                ax.plot(epochs, [float(r[prefix + key]) for r in rows], marker="o", label=name)
        ax.set(xlabel="epoch", title=title)
        ax.grid(alpha=0.3)
        ax.legend()
        path = out / f"{key}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_roc(y_true, scores, threshold: float, *, path: Path, title: str = "ROC") -> Path:
    fpr, tpr, _ = metrics.roc_curve(y_true, scores)
    at = metrics.at_threshold(y_true, scores, threshold)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {metrics.roc_auc(y_true, scores):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.scatter([1 - at["specificity"]], [at["sensitivity"]], color="red", zorder=3,
               label=f"threshold {threshold:.3f}")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(y_true, scores, threshold: float, *, path: Path) -> Path:
    matrix = np.array(metrics.at_threshold(y_true, scores, threshold)["confusion_matrix"]["rows_true_cols_predicted"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black", fontsize=14)
    labels = ["NORMAL", "PNEUMONIA"]
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=f"Confusion at threshold {threshold:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(y_true, scores, path: Path, *, bins: int = 10) -> Path:
    table = metrics.reliability(y_true, scores, bins)
    fig, ax = plt.subplots(figsize=(5, 5))
    centers = [(row["bin"] + 0.5) / bins for row in table]
    observed = [row["observed_rate"] if row["observed_rate"] is not None else np.nan for row in table]
    ax.bar(centers, observed, width=1 / bins, edgecolor="black", alpha=0.7, label="observed pneumonia rate")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set(xlabel="predicted probability", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability (ECE {metrics.expected_calibration_error(y_true, scores, bins):.3f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
