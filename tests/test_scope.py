"""The out-of-scope check: the numpy pieces alone, then a tiny real int8 model with a fitted check
on every path (predict, score, the API), DICOM tags, and no TensorFlow on the device path."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pneumo_edge.edge.card import read_card
from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.cli import main
from pneumo_edge.edge.films import read_film
from pneumo_edge.edge.scope import (
    IN_SCOPE,
    REASONS,
    OutOfScope,
    ScopeCheck,
    age_in_years,
    decode,
    dicom_decision,
    encode,
    thumbnail,
)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


# --- numpy only -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, years", [("004Y", 4), ("018M", 1.5), ("062", 62), ("010D", 10 / 365.25),
                                         ("", None), ("old", None)])
def test_dicom_age_strings(text, years):
    assert age_in_years(text) == (None if years is None else pytest.approx(years))


@pytest.mark.parametrize("tags, refused_for", [
    ({"PatientAge": "045Y"}, "45 years"), ({"BodyPartExamined": "KNEE"}, "knee"),
    ({"ViewPosition": "LL"}, "lateral"), ({"PatientAge": "003Y", "BodyPartExamined": "CHEST", "ViewPosition": "AP"},
                                          None), ({}, None)])
def test_dicom_header_decisions(tags, refused_for):
    decision = dicom_decision(tags)
    if refused_for is None:
        assert decision is None
    else:
        assert not decision.in_scope and refused_for in decision.reason and decision.check == "dicom"


def test_arrays_round_trip_through_the_card_encoding():
    array = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    assert np.array_equal(decode(json.loads(json.dumps(encode(array)))), array)


def test_thumbnail_is_the_block_mean():
    pixels = np.arange(224 * 224, dtype=np.int64).reshape(224, 224) % 256
    thumb = thumbnail(pixels.astype(np.uint8))
    assert thumb.shape == (256,)
    assert thumb[0] == pytest.approx(pixels[:14, :14].mean() / 255, rel=1e-5)


def test_thumbnail_is_the_float32_mean_over_both_axes_bit_for_bit():
    """The integer block sums give what the features were fitted on: numpy's float32 mean."""
    rng = np.random.default_rng(5)
    for shape in ((224, 224), (225, 230), (31, 47), (512, 512)):
        for pixels in (rng.integers(0, 256, shape, dtype=np.uint8), np.full(shape, 255, np.uint8)):
            rows, cols = shape[0] // 16 * 16, shape[1] // 16 * 16
            blocks = pixels[:rows, :cols].reshape(16, rows // 16, 16, cols // 16)
            expected = blocks.mean(axis=(1, 3), dtype=np.float32).reshape(-1) / np.float32(255)
            assert thumbnail(pixels).dtype == np.float32 and np.array_equal(thumbnail(pixels), expected), shape


def test_block_distance_is_mahalanobis_plus_residual():
    from pneumo_edge.convert.scope_fit import fit_blocks

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6)) * np.array([5, 3, 2, 1, 0.1, 0.1])
    block = fit_blocks({"b": x.astype(np.float32)}, dims=4)["b"]
    z, residual = block.coordinates(x[0].astype(np.float32))
    centred = x[0] - x.mean(axis=0)
    covariance = np.cov(x.T)
    values, vectors = np.linalg.eigh(covariance)
    top = vectors[:, ::-1][:, :4]
    assert np.sum(z ** 2) == pytest.approx(np.sum((top.T @ centred) ** 2 / values[::-1][:4]), rel=1e-3)
    outside = centred - top @ (top.T @ centred)
    assert residual * block.residual_scale == pytest.approx(outside @ outside, rel=1e-2, abs=1e-4)


# --- a tiny real model with a fitted check ------------------------------------------------------

@pytest.fixture(scope="module")
def model(scope_model):
    return scope_model[0]


@pytest.fixture(scope="module")
def val_film(scope_model):
    """A validation film the check accepts (cut-offs refuse about 2% of them)."""
    classifier = Classifier(Options(model=scope_model[0]))
    for film in scope_model[1]["val"]:
        try:
            classifier.predict(film.path)
        except OutOfScope:
            continue
        return film.path
    pytest.fail("every validation film refused")


def test_card_carries_a_compact_scope_section_that_round_trips(model, scope_model):
    card = read_card(model)
    section = card["scope"]
    assert len(json.dumps(section)) < 300_000
    assert section["outputs"] == scope_model[1]["widths"] == {"final": 32, "early": 24}
    assert set(section["blocks"]) == {"final", "early", "thumbnail"}
    check = ScopeCheck(json.loads(json.dumps(section)))
    assert check.classes[0] == IN_SCOPE and check.weights.shape == (5, len(check.input_mean))


def test_convert_report_gives_every_refusal_rate(scope_model):
    rates = scope_model[1]["report"]["refusal"]
    for name in ("validation (in scope)", "inverted (validation copies)", "rotated_90 (validation copies)",
                 "rotated_180 (validation copies)", "rotated_270 (validation copies)",
                 "adult (held out, cross-validated)", "non_chest (held out, cross-validated)"):
        assert 0 <= rates[name]["rate"] <= 1 and rates[name]["films"] > 0, name
    assert rates["validation (in scope)"]["rate"] <= 0.05
    assert rates["inverted (validation copies)"]["rate"] >= 0.9
    assert rates["rotated_90 (validation copies)"]["rate"] >= 0.9


@pytest.mark.parametrize("change, reason", [(lambda p: 255 - p, "inverted"), (lambda p: np.rot90(p), "rotated"),
                                            (lambda p: np.rot90(p, 3), "rotated")])
def test_inverted_and_rotated_films_are_refused_with_their_reason(model, val_film, change, reason):
    classifier = Classifier(Options(model=model))
    assert classifier.predict(val_film).scope.in_scope
    pixels = np.asarray(read_film(val_film).image)
    with pytest.raises(OutOfScope) as refused:
        classifier.predict(png(change(pixels)))
    assert refused.value.code == "out_of_scope" and REASONS[reason] in str(refused.value)
    assert refused.value.decision.score >= 1


def test_a_grey_picture_that_is_not_a_chest_is_refused(model):
    from skimage import data

    with pytest.raises(OutOfScope):
        Classifier(Options(model=model)).predict(png(data.camera()))


def test_allow_out_of_scope_scores_and_marks_the_film(model, val_film):
    pixels = np.asarray(read_film(val_film).image)
    prediction = Classifier(Options(model=model, allow_out_of_scope=True)).predict(png(255 - pixels))
    assert not prediction.scope.in_scope and prediction.label in ("NORMAL", "PNEUMONIA")
    assert prediction.as_dict()["scope"]["reason"] == REASONS["inverted"]
    assert prediction.scope.status == f"out_of_scope: {REASONS['inverted']}"


def test_dicom_header_refuses_at_once(model, val_film):
    pydicom = pytest.importorskip("pydicom")  # noqa: F841
    from dicom_files import make_dicom

    pixels = np.asarray(read_film(val_film).image)
    classifier = Classifier(Options(model=model))
    child = make_dicom(pixels, PatientAge="003Y", BodyPartExamined="CHEST", ViewPosition="AP")
    assert classifier.predict(child).scope.in_scope
    for tags, words in (({"PatientAge": "045Y"}, "45 years"), ({"BodyPartExamined": "HAND"}, "hand"),
                        ({"ViewPosition": "LL"}, "lateral")):
        with pytest.raises(OutOfScope) as refused:
            classifier.predict(make_dicom(pixels, **tags))
        assert words in str(refused.value) and refused.value.decision.check == "dicom"


def test_score_refuses_on_the_row_and_fills_the_scope_column(model, val_film, tmp_path):
    folder = tmp_path / "films"
    folder.mkdir()
    pixels = np.asarray(read_film(val_film).image)
    (folder / "upright.png").write_bytes(png(pixels))
    (folder / "negative.png").write_bytes(png(255 - pixels))
    (folder / "sideways.png").write_bytes(png(np.rot90(pixels)))
    for allow, out in (([], tmp_path / "refused.csv"), (["--allow-out-of-scope"], tmp_path / "allowed.csv")):
        assert main(["score", str(folder), "--out", str(out), "--model", str(model), *allow]) == 0
        rows = {row["path"]: row for row in csv.DictReader(out.open())}
        assert rows["upright.png"]["scope"] == "in_scope" and rows["upright.png"]["label"]
        for name, reason in (("negative.png", "inverted"), ("sideways.png", "rotated")):
            assert rows[name]["scope"] == f"out_of_scope: {REASONS[reason]}"
            if allow:
                assert rows[name]["label"] and not rows[name]["error_code"]
            else:
                assert rows[name]["error_code"] == "out_of_scope" and not rows[name]["label"]


def test_predict_command_marks_allowed_films(model, val_film, tmp_path, capsys):
    film = tmp_path / "negative.png"
    film.write_bytes(png(255 - np.asarray(read_film(val_film).image)))
    assert main(["predict", str(film), "--model", str(model), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error_code"] == "out_of_scope"
    assert main(["predict", str(film), "--model", str(model), "--allow-out-of-scope"]) == 0
    assert "OUT OF SCOPE: looks inverted" in capsys.readouterr().out


def test_api_answers_422_with_the_reason(model, val_film):
    from pneumo_edge.edge.web.app import ServeConfig, create_app

    client = create_app(ServeConfig(classifier=Options(model=model))).test_client()
    pixels = np.asarray(read_film(val_film).image)
    post = lambda data: client.post("/api/predict", data={"file": (io.BytesIO(data), "f.png", "image/png")},  # noqa: E731
                                    content_type="multipart/form-data")
    ok = post(png(pixels))
    assert ok.status_code == 200 and ok.get_json()["scope"]["in_scope"] is True
    refused = post(png(np.rot90(pixels, 2)))
    assert refused.status_code == 422
    assert refused.get_json()["code"] == "out_of_scope" and "looks rotated" in refused.get_json()["error"]


def test_a_model_without_a_scope_section_scores_as_before_and_says_so_once(train_dir, tmp_path, capsys):
    prediction = Classifier(Options(model="pneumo_mobilenet_int8")).predict(train_dir / "NORMAL" / "IM-0115-0001.jpeg")
    assert prediction.scope.status == "unchecked" and prediction.scope.in_scope
    folder = tmp_path / "films"
    folder.mkdir()
    for path in sorted((train_dir / "NORMAL").glob("*.jpeg"))[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    assert main(["score", str(folder), "--out", str(tmp_path / "r.csv"), "--model", "pneumo_mobilenet_int8"]) == 0
    assert capsys.readouterr().err.count("out-of-scope check none (this model's card has no scope section") == 1
    assert [row["scope"] for row in csv.DictReader((tmp_path / "r.csv").open())] == ["unchecked"] * 2


def test_the_device_path_never_imports_tensorflow(model, val_film):
    code = (f"import sys\nfrom pneumo_edge.edge.classifier import Classifier, Options\n"
            f"p = Classifier(Options(model={str(model)!r})).predict({str(val_film)!r})\n"
            f"assert p.scope.check == 'model'\n"
            f"bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'skimage')]\n"
            f"assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluate_reports_the_refusal_rates(model, scope_model, fullres_dir, tmp_path):
    from pneumo_edge.train.config import EvaluateConfig
    from pneumo_edge.train.evaluate import evaluate

    listing = tmp_path / "films.csv"
    films = [f for label in (0, 1) for f in [g for g in scope_model[1]["val"] if g.label == label][:10]]
    listing.write_text("path,label\n" + "".join(f"{f.path},{['NORMAL', 'PNEUMONIA'][f.label]}\n" for f in films))
    result = evaluate(EvaluateConfig(model=model, data=listing, out=tmp_path / "eval", bootstrap=20,
                                     adult_films=fullres_dir))
    rates = result["scope_refusal"]
    assert rates["these films (in scope)"]["films"] == result["n"] == 20
    for name in ("inverted (copies of these films)", "rotated_90 (copies of these films)",
                 "adult (fullres, in the fit)", "non_chest (skimage, in the fit)"):
        assert rates[name]["films"] > 0 and 0 <= rates[name]["rate"] <= 1, name
    assert rates["inverted (copies of these films)"]["rate"] >= 0.9
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["scope_refusal"] == rates
