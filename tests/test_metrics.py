"""Screening metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pneumo_edge.edge.labelled import metrics

Y = [0, 0, 0, 1, 1, 1, 1]
S = [0.1, 0.4, 0.7, 0.35, 0.8, 0.9, 0.7]


def test_auc_by_hand():
    # 12 (negative, positive) pairs: 0.1 loses to all 4; 0.4 loses to 3, beats 0.35;
    # 0.7 loses to 0.8 and 0.9, ties 0.7 (one half), beats 0.35: (4 + 3 + 2.5) / 12
    assert metrics.roc_auc(Y, S) == pytest.approx(9.5 / 12)
    assert metrics.roc_auc([0, 1], [0.2, 0.9]) == 1.0
    assert math.isnan(metrics.roc_auc([1, 1], [0.2, 0.9]))


def test_counts_and_rates_by_hand():
    m = metrics.at_threshold(Y, S, 0.5)
    # predicted positive: 0.7 (neg), 0.8, 0.9, 0.7 (pos): TP 3, FP 1, TN 2, FN 1
    assert m["confusion_matrix"]["rows_true_cols_predicted"] == [[2, 1], [1, 3]]
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["ppv"] == pytest.approx(3 / 4)
    assert m["npv"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["f1"] == pytest.approx(0.75)


def test_threshold_for_sensitivity_is_the_highest_that_reaches_it():
    assert metrics.threshold_for_sensitivity(Y, S, 1.0) == 0.35
    assert metrics.threshold_for_sensitivity(Y, S, 0.75) == 0.7
    assert metrics.threshold_for_sensitivity(Y, S, 0.5) == 0.8
    t = metrics.threshold_for_sensitivity(Y, S, 0.95)
    assert metrics.at_threshold(Y, S, t)["sensitivity"] >= 0.95


def test_ece_by_hand():
    # bins of width 0.5: [0.2, 0.4] with labels [0, 1] -> |0.5 - 0.3| ; [0.9] with [1] -> |1 - 0.9|
    assert metrics.expected_calibration_error([0, 1, 1], [0.2, 0.4, 0.9], bins=2) == pytest.approx(
        2 / 3 * 0.2 + 1 / 3 * 0.1)


def test_roc_curve_ends_and_bootstrap_brackets_auc():
    fpr, tpr, _ = metrics.roc_curve(Y, S)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    s = np.clip(y * 0.3 + rng.normal(0.35, 0.2, 400), 0, 1)
    low, high = metrics.bootstrap_auc_ci(y, s, n=300)
    assert low < metrics.roc_auc(y, s) < high
