"""The device runtime: shipped default model, runtimes, backends, cards, and no TensorFlow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pneumo_edge.edge.card import read_card
from pneumo_edge.edge.classifier import Classifier, Options, default_model, shipped_models
from pneumo_edge.edge.cli import main
from pneumo_edge.edge.errors import BackendUnavailable, ModelError
from pneumo_edge.edge.runtime import load_runtime


def test_shipped_models_are_installed_with_cards():
    names = {p.name for p in shipped_models()}
    assert {"pneumo_efficientnet_lite0_int8.tflite", "pneumo_mobilenet_int8.tflite", "pneumo_mobilenet_float32.tflite",
            "pneumo_shallow_int8.tflite"} <= names
    assert default_model().name == "pneumo_efficientnet_lite0_int8.tflite"
    assert default_model().stat().st_size < 8 * 1024 * 1024  # the Edge TPU on-chip memory (tests/test_preflight.py)
    for model in shipped_models():
        card = read_card(model)  # verifies sha256
        assert card["labels"] == ["NORMAL", "PNEUMONIA"] and 0 < card["threshold"] < 1


def test_predict_in_a_fresh_process_never_loads_tensorflow(fullsize_dir):
    film = sorted(fullsize_dir.glob("*.png"))[0]
    code = ("import sys, json; from pneumo_edge.edge.cli import main; rc = main(['predict', '--json', %r]);"
            "print(json.dumps({'rc': rc, 'tf': sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tf_keras'))}))" % str(film))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    prediction, report = json.loads(lines[0]), json.loads(lines[-1])
    assert report == {"rc": 0, "tf": []}
    assert prediction["label"] in ("NORMAL", "PNEUMONIA")
    assert prediction["model"].startswith("pneumo_efficientnet_lite0-int8@")


def test_predict_cli_one_line_per_film_and_json(train_dir, capsys, tmp_path):
    films = [str(sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[0]), str(train_dir / "NORMAL" / "IM-0115-0001.jpeg")]
    assert main(["predict", *films, "--heatmap", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(" p=" in line and "threshold" in line and " ms" in line for line in lines)
    from PIL import Image

    overlays = sorted(tmp_path.glob("*.heatmap.jpg"))
    assert len(overlays) == 2 and all(Image.open(path).format == "JPEG" for path in overlays)
    assert main(["predict", "--json", films[0]]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) >= {"label", "probability", "threshold", "model", "timings_ms"}


def test_a_bad_film_is_an_error_line_and_a_nonzero_exit(tmp_path, capsys):
    bad = tmp_path / "film.png"
    bad.write_text("hello")
    assert main(["predict", str(bad)]) == 1
    assert "not_an_image" in capsys.readouterr().err


def test_model_whose_sha256_does_not_match_its_card_is_refused(tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(default_model(), model)
    card = read_card(default_model())
    card["sha256"] = "0" * 64
    (tmp_path / "m.card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not match its card"):
        Classifier(Options(model=model))
    assert main(["predict", "--model", str(model), str(default_model())]) == 1


def test_model_without_a_card_is_refused(tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(default_model(), model)
    with pytest.raises(ModelError, match="no model card"):
        Classifier(Options(model=model))


def test_missing_edgetpu_is_an_error_with_a_hint_unless_fallback(fullsize_dir, capsys):
    with pytest.raises(BackendUnavailable) as info:
        Classifier(Options(backend="edgetpu"))
    assert "libedgetpu" in str(info.value) and info.value.hint
    classifier = Classifier(Options(backend="edgetpu", fallback="cpu"))
    assert classifier.backend == "cpu"
    assert classifier.predict(sorted(fullsize_dir.glob("*.png"))[0]).label in ("NORMAL", "PNEUMONIA")
    assert main(["predict", "--backend", "edgetpu", str(sorted(fullsize_dir.glob("*.png"))[0])]) == 1
    err = capsys.readouterr().err
    assert "Edge TPU unavailable" in err and "hint" in err and "Traceback" not in err


def test_runtime_can_be_forced_by_argument_and_environment(monkeypatch):
    runtime = load_runtime()
    assert runtime.name in ("ai_edge_litert", "tflite_runtime")
    assert load_runtime(runtime.name).name == runtime.name
    monkeypatch.setenv("PNEUMO_RUNTIME", runtime.name)
    assert load_runtime().name == runtime.name
    monkeypatch.setenv("PNEUMO_RUNTIME", "no_such_runtime")
    with pytest.raises(BackendUnavailable, match="unknown interpreter runtime"):
        load_runtime()


def test_unavailable_runtime_is_a_clear_error():
    other = "tflite_runtime" if load_runtime().name == "ai_edge_litert" else "ai_edge_litert"
    try:
        __import__(other)
    except ImportError:
        with pytest.raises(BackendUnavailable, match="not importable"):
            load_runtime(other)
    else:
        pytest.skip(f"{other} is installed here")


def test_workstation_command_without_its_extra_says_which_extra(tmp_path, train_dir):
    """In a process where TensorFlow cannot be imported, train (on good data) says to install [train]."""
    code = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None;"
            "from pneumo_edge.edge.cli import main;"
            f"sys.exit(main(['train', '--data', {str(train_dir)!r}, '--limit', '5', "
            f"'--out', {str(tmp_path / 'o')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert "pip install 'pneumo-edge[train]'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_every_subcommand_has_help(capsys):
    from pneumo_edge.edge.cli import commands

    names = set(commands())
    assert names == {"train", "evaluate", "convert", "check-edgetpu", "predict", "score", "serve", "bench", "capture",
                     "calibrate"}
    for command in names:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: pneumo " + command in capsys.readouterr().out


def test_reference_kernels_score_close_to_the_default_ones(fullsize_dir, capsys):
    """Kernel families round int8 differently; the reference kernels stay within a few steps."""
    films = sorted(fullsize_dir.glob("*.png"))[:4]
    fast = Classifier(Options())
    reference = Classifier(Options(kernels="reference"))
    step = next(d["quantization"][0] for d in fast.interpreter.get_output_details() if d["shape"].prod() == 1)
    for film in films:
        a, b = fast.predict(film).probability, reference.predict(film).probability
        assert abs(a - b) <= 16 * step
    assert main(["predict", "--json", "--kernels", "reference", str(films[0])]) == 0
    assert json.loads(capsys.readouterr().out)["probability"] == pytest.approx(
        reference.predict(films[0]).probability)
    with pytest.raises(ValueError, match="kernels must be"):
        Classifier(Options(kernels="fastest"))


def test_the_fused_input_is_the_scaled_and_quantized_tensor_on_every_kind_of_film(fullsize_dir, train_dir):
    """What predict sets in the interpreter equals quantize(to_tensor(film)) of the original readers
    (tests/test_films.py: reference_grey), and so does the probability, on every kind of film."""
    import numpy as np
    from PIL import Image
    from test_films import film_kinds, reference_grey

    from pneumo_edge.edge import adapters
    from pneumo_edge.edge.classifier import input_table
    from pneumo_edge.edge.preprocess import PreprocessSpec, to_tensor

    film = Image.open(sorted(fullsize_dir.glob("*.png"))[1]).convert("L")
    kinds = film_kinds(film, np.asarray(film), (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes())
    for name in ("16-bit PNG, one value",):  # refused by the gate as blank: nothing reaches the model
        kinds.pop(name)
    for model in (path.stem for path in shipped_models()):
        # Some kinds are films turned by their EXIF tag: scored anyway, the input is what is compared.
        classifier = Classifier(Options(model=model, threads=1, allow_out_of_scope=True))
        detail = classifier.interpreter.get_input_details()[0]
        for name, data in kinds.items():
            probability = classifier.predict(data).probability
            fed = classifier.interpreter.get_tensor(detail["index"])
            expected = adapters.quantize(to_tensor(reference_grey(data, classifier.spec.size), classifier.spec)
                                         [np.newaxis], detail)
            assert fed.dtype == expected.dtype and np.array_equal(fed, expected), (model, name)
            assert probability == float(classifier.invoke(to_tensor(reference_grey(data, classifier.spec.size),
                                                                     classifier.spec))["probability"][0, 0]), name
    for scaling in ("unit", "symmetric", "lite"):  # every scaling, on a quantized input
        spec = PreprocessSpec(scaling=scaling)
        levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
        detail = {"dtype": np.uint8, "quantization": (1 / 127.5 if scaling != "unit" else 1 / 255, 127)}
        assert np.array_equal(input_table(spec, detail)[levels], adapters.quantize(to_tensor(
            Image.fromarray(levels), PreprocessSpec(size=16, scaling=scaling))[..., 0], detail))


def test_outputs_read_through_the_plan_are_the_dequantized_tensors_bit_for_bit(train_dir):
    from pneumo_edge.edge import adapters

    film = sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[0]
    for model in shipped_models():
        classifier = Classifier(Options(model=model, threads=1, allow_out_of_scope=True))
        classifier.predict(film)
        details = {d["index"]: d for d in classifier.interpreter.get_output_details()}
        plan = adapters.output_plan(list(details.values()))
        read = adapters.outputs_by_rank(classifier.interpreter, plan)
        assert len(read) == len(details) and "probability" in read, model.name
        for index, name, _ in plan:
            expected = adapters.dequantize(classifier.interpreter.get_tensor(index), details[index])
            assert read[name].dtype == np.float32 and np.array_equal(read[name], expected), (model.name, name)
