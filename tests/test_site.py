"""Site calibration: ``pneumo calibrate`` on real labelled films, and ``--site`` in the commands that decide."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime

import numpy as np
import pytest

from pneumo_edge.edge.card import model_id, read_card
from pneumo_edge.edge.classifier import Classifier, Options, default_model, shipped_models
from pneumo_edge.edge.cli import main
from pneumo_edge.edge.errors import PneumoError
from pneumo_edge.edge.labelled.listing import list_films
from pneumo_edge.edge.site import MIN_PER_CLASS, SITE_ENV, calibration, load_site, wilson_interval
from pneumo_edge.edge.web.app import ServeConfig, create_app
from pneumo_edge.train.splits import sample_per_class

TARGET = 0.95
PER_CLASS = 30


@pytest.fixture(scope="module")
def sample(tmp_path_factory, train_dir):
    """30 real films per class in folders named in other cases, and one truncated film the gate refuses.

    Films the default model refuses as out of scope on this runtime are passed over (a borderline
    film can be refused by one runtime's kernels and not another's), so that every count is exact."""
    from pneumo_edge.edge.scope import OutOfScope

    folder = tmp_path_factory.mktemp("site") / "sample"
    classifier, kept = Classifier(), {0: 0, 1: 0}
    for film in sample_per_class(list_films(train_dir), 2 * PER_CLASS, seed=0):
        if kept[film.label] == PER_CLASS:
            continue
        try:
            classifier.predict(film.path)
        except OutOfScope:
            continue
        kept[film.label] += 1
        target = folder / ("normal" if film.label == 0 else "Pneumonia")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(film.path, target / film.path.name)
    good = (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes()
    (folder / "normal" / "zz-truncated.jpeg").write_bytes(good[: len(good) // 3])
    return folder


@pytest.fixture(scope="module")
def site(sample):
    """The site file ``pneumo calibrate`` writes for the sample, and its record."""
    path = sample.parent / "site.json"
    assert main(["calibrate", str(sample), "--target-sensitivity", str(TARGET), "--out", str(path)]) == 0
    return path, json.loads(path.read_text())


@pytest.fixture(scope="module")
def scored(sample, site):
    """``pneumo score --site`` rows of the sample's films, by path: scored apart from calibrate."""
    out = sample.parent / "scored.csv"
    assert main(["score", str(sample), "--out", str(out), "--site", str(site[0])]) == 0
    with out.open() as handle:
        return {row["path"]: row for row in csv.DictReader(handle) if not row["error"]}


def test_calibrate_writes_the_site_file(site):
    path, record = site
    card = read_card(default_model())
    assert record["model"] == model_id(card) and record["model_sha256"] == card["sha256"]
    assert record["target_sensitivity"] == TARGET
    assert datetime.fromisoformat(record["created"]).tzinfo is not None
    sample = record["sample"]
    assert (sample["NORMAL"], sample["PNEUMONIA"], sample["refused"]) == (PER_CLASS, PER_CLASS, 1)
    assert list(sample["refused_reasons"]) == [sample["refused_films"][0]["error"].split(":")[0]]
    assert sample["refused_films"][0]["path"].endswith("zz-truncated.jpeg")
    at = record["at_threshold"]
    assert at["tp"] + at["fn"] == PER_CLASS and at["tn"] + at["fp"] == PER_CLASS
    for rate in ("sensitivity", "specificity"):
        low, high = at[f"{rate}_ci95"]
        assert 0 <= low < at[rate] <= high <= 1
    assert 0.5 < record["roc_auc"] <= 1 and record["roc_auc_ci95"][0] <= record["roc_auc"]


def test_threshold_is_the_highest_that_reaches_the_target(site, scored):
    threshold = site[1]["threshold"]
    positives = [float(row["probability"]) for path, row in scored.items() if path.startswith("Pneumonia/")]

    def sensitivity(t):
        return sum(p >= t for p in positives) / len(positives)

    assert sensitivity(threshold) >= TARGET
    assert all(sensitivity(p) < TARGET for p in positives if p > threshold)
    assert site[1]["at_threshold"]["sensitivity"] == sensitivity(threshold)
    found = [row["label"] == "PNEUMONIA" for path, row in scored.items() if path.startswith("Pneumonia/")]
    assert sum(found) / len(found) >= TARGET  # the target holds through pneumo score's own decisions


def test_site_file_round_trips(site):
    path, record = site
    loaded = load_site(path, read_card(default_model()))
    assert loaded.threshold == record["threshold"] and loaded.record == record
    classifier = Classifier(Options(site=path))
    assert classifier.threshold == record["threshold"]
    assert classifier.describe()["site"]["films"] == 2 * PER_CLASS


def test_site_changes_the_decision_in_predict_and_score(site, sample, scored, capsys):
    path, record = site
    assert {float(row["threshold"]) for row in scored.values()} == {record["threshold"]}
    flagged = {p for p, row in scored.items() if row["label"] == "PNEUMONIA"}
    assert flagged == {p for p, row in scored.items() if float(row["probability"]) >= record["threshold"]}

    # Target 1.0 puts the site threshold at the sample's least suspicious pneumonia film, below the
    # card's (which the sample's one missed pneumonia film sits under): that film changes decision.
    path = sample.parent / "site_all.json"
    assert main(["calibrate", str(sample), "--target-sensitivity", "1.0", "--out", str(path)]) == 0
    record = json.loads(path.read_text())
    capsys.readouterr()
    low, high = sorted((read_card(default_model())["threshold"], record["threshold"]))
    changed = sorted(p for p, row in scored.items() if low <= float(row["probability"]) < high)
    assert changed, "the sample should hold films between the card's and the site's threshold"

    film = str(sample / changed[0])
    assert main(["predict", "--json", film]) == 0
    assert main(["predict", "--json", "--site", str(path), film]) == 0
    card_answer, site_answer = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert card_answer["label"] != site_answer["label"]
    assert (card_answer["threshold_source"], site_answer["threshold_source"]) == ("model card", f"site file {path}")
    assert site_answer["threshold"] == record["threshold"]


def test_pneumo_site_environment_variable(site, sample, monkeypatch, capsys):
    path, record = site
    monkeypatch.setenv(SITE_ENV, str(path))
    film = next((sample / "normal").glob("*.jpeg"))
    assert main(["predict", "--json", str(film)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["threshold"], answer["threshold_source"]) == (record["threshold"], f"site file {path}")


def test_site_file_for_another_model_is_refused(site, sample, capsys):
    path, record = site
    other = next(m for m in shipped_models() if m.name != default_model().name)
    film = str(next((sample / "normal").glob("*.jpeg")))
    assert main(["predict", "--model", str(other), "--site", str(path), film]) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and record["model"] in error and model_id(read_card(other)) in error
    with pytest.raises(PneumoError, match="site_mismatch|calibrated for model"):
        Classifier(Options(model=other, site=path))


def test_site_file_serves_the_edge_tpu_build_of_its_model(site):
    path, record = site
    compiled = {"sha256": "0" * 64, "compiled_from": {"sha256": record["model_sha256"]}, "name": "m"}
    assert load_site(path, compiled).threshold == record["threshold"]


def test_small_sample_warns(site, sample, tmp_path, capsys):
    assert [w.split(":")[0] for w in site[1]["warnings"]] == [f"only {PER_CLASS} PNEUMONIA films",
                                                             f"only {PER_CLASS} NORMAL films"]
    labels = tmp_path / "labels.csv"  # the same command on a path,label CSV, paths relative to it
    (tmp_path / "films").mkdir()
    films = sorted((sample / "normal").glob("IM*.jpeg"))[:6] + sorted((sample / "Pneumonia").glob("*"))[:6]
    for film in films:
        shutil.copy(film, tmp_path / "films" / film.name)
    labels.write_text("path,label\n" + "".join(f"films/{film.name},{film.parent.name}\n" for film in films))
    out = tmp_path / "small.json"
    assert main(["calibrate", str(labels), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert (record["sample"]["NORMAL"], record["sample"]["PNEUMONIA"]) == (6, 6)
    assert capsys.readouterr().err.count("WARNING: only 6") == 2


def test_no_warning_from_50_films_of_each_class():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], MIN_PER_CLASS)
    scores = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    card = read_card(default_model())
    record = calibration(y, scores, TARGET, card=card, refused=[])
    assert record["warnings"] == [] and record["at_threshold"]["sensitivity"] >= TARGET
    warnings = calibration(y[1:], scores[1:], TARGET, card=card, refused=[])["warnings"]
    assert warnings[0].startswith(f"only {MIN_PER_CLASS - 1} NORMAL films")


def test_unusable_samples_are_one_line_errors(tmp_path, sample, capsys):
    (tmp_path / "empty").mkdir()
    one = tmp_path / "one" / "PNEUMONIA"
    one.mkdir(parents=True)
    shutil.copy(next((sample / "Pneumonia").glob("*.jpeg")), one)
    for folder in (tmp_path / "empty", tmp_path / "one"):
        assert main(["calibrate", str(folder), "--out", str(tmp_path / "x.json")]) == 1
        error = capsys.readouterr().err.strip()
        assert error.startswith("pneumo calibrate: ") and "\n" not in error
    assert "both classes" in error
    assert not (tmp_path / "x.json").exists()


def test_a_damaged_site_file_is_a_one_line_error(tmp_path, sample, capsys):
    film = str(next((sample / "normal").glob("*.jpeg")))
    for text in ("{not json", json.dumps({"threshold": 0.5})):
        (tmp_path / "site.json").write_text(text)
        assert main(["predict", "--site", str(tmp_path / "site.json"), film]) == 1
        assert "\n" not in capsys.readouterr().err.strip()


def test_serve_and_capture_show_the_threshold_in_force(site, sample, capsys):
    path, record = site
    client = create_app(ServeConfig(classifier=Options(site=path))).test_client()
    health = client.get("/api/health").get_json()
    assert (health["threshold"], health["threshold_source"]) == (record["threshold"], f"site file {path}")
    assert health["site"]["target_sensitivity"] == TARGET
    page = " ".join(client.get("/").get_data(as_text=True).split())
    assert f"Flags pneumonia at {record['threshold']:.3f} or above: this site's threshold" in page
    assert f"on {2 * PER_CLASS} local films" in page
    assert main(["capture", "--camera", f"replay:{sample / 'normal'}", "--site", str(path)]) == 0
    assert f"threshold {record['threshold']:.3f} from site file {path}" in capsys.readouterr().out


def test_wilson_interval():
    low, high = wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(3.8415 / 13.8415, abs=1e-4)
    low, high = wilson_interval(45, 50)
    assert low == pytest.approx(0.7864, abs=1e-3) and high == pytest.approx(0.9565, abs=1e-3)
    low, high = wilson_interval(204, 204)  # every one: the upper bound is 1 itself, not just under it
    assert high == 1.0 and low == pytest.approx(204 / (204 + 3.8415), abs=1e-4)
