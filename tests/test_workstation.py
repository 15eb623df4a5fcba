"""End to end on the workstation: train each architecture briefly, evaluate, convert, score the result."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from pneumo_edge.edge.card import read_card  # noqa: E402
from pneumo_edge.edge.classifier import Classifier, Options  # noqa: E402
from pneumo_edge.edge.cli import main  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory, train_dir):
    """One short run per architecture on 200 films per class."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for arch, extra in (("shallow", ["--epochs", "2"]), ("mobilenet", ["--epochs", "1", "--batch", "16"]),
                        ("efficientnet_lite0", ["--epochs", "2", "--batch", "16", "--augment", "acquisition",
                                                "--label-smoothing", "0.05", "--average-last", "2"])):
        out = root / arch
        assert main(["train", "--data", str(train_dir), "--arch", arch, "--out", str(out), "--limit", "200",
                     "--seed", "1", *extra]) == 0
        made[arch] = out
    return made


ARCHS = ["shallow", "mobilenet", "efficientnet_lite0"]
SIZES = {"shallow": 64, "mobilenet": 224, "efficientnet_lite0": 224}


@pytest.mark.parametrize("arch", ARCHS)
def test_train_leaves_model_history_plots_and_metrics(runs, arch):
    out = runs[arch]
    for name in ("model.keras", "history.csv", "loss.png", "auc.png", "val_metrics.json", "run.json"):
        assert (out / name).stat().st_size > 0, name
    run = json.loads((out / "run.json").read_text())
    assert run["preprocess"]["size"] == SIZES[arch]
    assert run["counts"]["val"]["NORMAL"] > 0 and run["counts"]["val"]["PNEUMONIA"] > 0
    val = json.loads((out / "val_metrics.json").read_text())
    assert val["at_threshold"]["sensitivity"] >= 0.95
    assert set(val) >= {"roc_auc", "roc_auc_ci95", "ece", "at_threshold", "at_0.5"}


def test_evaluate_keras_and_tflite_write_metrics_and_plots(runs, train_dir, tmp_path):
    out = tmp_path / "eval"
    assert main(["evaluate", str(runs["shallow"]), str(train_dir), "--val-of", str(runs["shallow"]),
                 "--out", str(out), "--bootstrap", "200"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "confusion_matrix"):
        assert key in result["at_threshold"] and key in result["at_0.5"]
    assert result["roc_auc_ci95"][0] <= result["roc_auc"] <= result["roc_auc_ci95"][1]
    for plot in ("roc.png", "confusion.png", "reliability.png"):
        assert (out / plot).stat().st_size > 1000


@pytest.mark.parametrize("arch", ARCHS)
def test_convert_writes_float_and_int8_with_cards_and_parity(runs, arch, train_dir, shared_data, tmp_path,
                                                           fullres_dir):
    out = tmp_path / "models"
    check = ["--check", str(shared_data / "chest_xray" / "test_dev")] if arch == "efficientnet_lite0" else []
    scope = ["--adult-films", str(fullres_dir)] if arch == "shallow" else []  # the quickest to fit twice
    code = main(["convert", str(runs[arch]), "--calib", str(train_dir), "--out", str(out), "--calib-count", "300",
                 *check, *scope])
    report = json.loads((out / f"pneumo_{arch}_convert_report.json").read_text())
    parity = report["parity"]
    drops = [parity["auc_drop"], *([report["check_parity"]["auc_drop"]] if check else [])]
    assert code == (0 if max(drops) <= 0.005 and report["edgetpu_preflight"]["ok"] else 1)
    if check:
        assert report["check_parity"]["films"] == 306
        assert read_card(out / f"pneumo_{arch}_int8.tflite")["outside_training"]["n"] == 306
    assert 0 <= parity["max_probability_difference"] <= 1 and parity["films"] > 50
    if scope:  # each file's own check, fit on its own outputs
        assert set(report["scope"]) == {"float32", "int8"}
        assert all(fitted["refusal"]["validation (in scope)"]["films"] > 0 for fitted in report["scope"].values())
    else:
        assert report["scope"] is None
    for variant in ("float32", "int8"):
        model = out / f"pneumo_{arch}_{variant}.tflite"
        card = read_card(model)
        assert card["variant"] == variant and card["labels"] == ["NORMAL", "PNEUMONIA"]
        assert card["preprocess"]["size"] == SIZES[arch]
        assert "pediatric" in " ".join(card["limitations"]) and "not a diagnosis" in card["intended_use"]
        assert 0 < card["threshold"] < 1 and "roc_auc" in card["validation"]
        assert ("scope" in card) == bool(scope)
        classifier = Classifier(Options(model=model, allow_out_of_scope=True))  # an adult film is predicted below
        details = classifier.interpreter.get_input_details()[0]
        assert list(details["shape"]) == [1, card["input"]["size"], card["input"]["size"], card["input"]["channels"]]
        assert list(details["shape_signature"]) == list(details["shape"]), "shapes must be static"
        if variant == "int8":
            assert details["dtype"] == np.uint8
        prediction = classifier.predict(sorted(fullres_dir.glob("*.png"))[0])
        assert (prediction.cam is not None) == (arch != "shallow")
