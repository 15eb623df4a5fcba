"""pneumo bench: every row has every field, missing backends are rows with reasons, results compare."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pneumo_edge.edge.bench.report import ROW_FIELDS
from pneumo_edge.edge.card import read_card
from pneumo_edge.edge.classifier import shipped_models
from pneumo_edge.edge.cli import main
from pneumo_edge.edge.runtime import load_runtime

HAVE_TF = importlib.util.find_spec("tensorflow") is not None
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
MACHINE_FIELDS = ("cpu_model", "cores", "os", "kernel", "python", "runtime", "runtime_version", "libedgetpu",
                  "edgetpu_devices")
STATS = ("p25", "p50", "p75", "p90", "p99", "mean", "min", "max", "n")


@pytest.fixture(scope="module")
def two_films(fullsize_dir) -> list[str]:
    return [str(p) for p in sorted(fullsize_dir.glob("*.png"))[:2]]


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory) -> Path | None:
    """A small real Keras model (untrained shallow CNN), saved as pneumo train saves its models."""
    if not HAVE_TF:
        return None
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    subprocess.run([sys.executable, "-c", "import sys; from pneumo_edge.train.architectures import build_shallow; "
                    "build_shallow().save(sys.argv[1])", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, two_films, keras_model) -> tuple[dict, Path, str]:
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", "--films", *two_films, "--runs", "3", "--warmup", "1", "--threads", "1",
            "--json", str(out / "bench.json"), "--markdown", str(out / "bench.md"), "--plot", str(out / "bench.png")]
    if keras_model:
        argv += ["--keras-model", str(keras_model)]
    completed = subprocess.run([sys.executable, "-m", "pneumo_edge.edge.cli", *argv], capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads((out / "bench.json").read_text()), out, completed.stdout


def test_every_row_has_every_field(full_run):
    result, _, _ = full_run
    models = shipped_models()
    tflite = [row for row in result["rows"] if row["kind"] == "tflite"]
    assert [(r["model"], r["backend"]) for r in tflite] == [(m.stem, b) for m in models for b in ("cpu", "edgetpu")]
    for row in result["rows"]:
        assert set(row) == set(ROW_FIELDS), row
    for row, model in zip([r for r in tflite if r["backend"] == "cpu"], models):
        card = read_card(model)
        assert row["status"] == "ok", row["reason"]
        assert row["threads"] == 1
        assert row["size_bytes"] == model.stat().st_size
        assert row["validation_auc"] == card["validation"]["roc_auc"]
        for key in ("invoke_ms", "end_to_end_ms"):
            stats = row[key]
            assert set(stats) == set(STATS) and stats["n"] == 3
            order = [stats[k] for k in ("min", "p25", "p50", "p75", "p90", "p99", "max")]
            assert 0 < order[0] and order == sorted(order)
        assert set(row["stages_ms_p50"]) == {"decode", "preprocess", "invoke"}
        assert row["end_to_end_ms"]["p50"] > row["stages_ms_p50"]["decode"] > 0
        assert row["load_ms"] > 0 and row["first_inference_ms"] > 0 and row["first_end_to_end_ms"] > 0
        assert row["throughput_fps"] > 0 and row["peak_rss_mib"] > 10


def test_unavailable_edgetpu_rows_carry_the_reason(full_run):
    from pneumo_edge.edge.backends import edgetpu

    reason = edgetpu.probe(load_runtime(), edgetpu.Config())
    if reason is None:
        pytest.skip("libedgetpu is installed here")
    result, _, stdout = full_run
    rows = [row for row in result["rows"] if row["backend"] == "edgetpu"]
    assert len(rows) == len(shipped_models())
    for row in rows:
        assert row["status"] == "unavailable" and row["reason"] == reason
        assert row["end_to_end_ms"] is None and row["speedup_vs_baseline"] is None
    assert reason in stdout


def test_machine_is_described(full_run):
    result, _, _ = full_run
    machine = result["machine"]
    assert set(MACHINE_FIELDS) <= set(machine)
    runtime = load_runtime()
    assert (machine["runtime"], machine["runtime_version"]) == (runtime.name, runtime.version)
    assert machine["cores"] >= 1 and machine["kernel"]
    assert result["settings"]["films"] == [Path(p).name for p in result["settings"]["films_from"]]


@pytest.mark.skipif(not HAVE_TF, reason="TensorFlow is not installed: the notebook baseline cannot run")
def test_baseline_runs_and_every_row_has_its_ratio(full_run):
    result, _, _ = full_run
    baseline = result["rows"][0]
    assert baseline["kind"] == "baseline" and baseline["status"] == "ok", baseline["reason"]
    assert baseline["runtime"].startswith("tensorflow ")
    assert baseline["end_to_end_ms"]["n"] == 3
    for row in result["rows"]:
        if row["status"] == "ok":
            expected = baseline["end_to_end_ms"]["p50"] / row["end_to_end_ms"]["p50"]
            assert row["speedup_vs_baseline"]["end_to_end_ms"] == pytest.approx(expected, rel=0.01, abs=0.01)


def test_markdown_and_plot_are_written(full_run):
    result, out, stdout = full_run
    text = (out / "bench.md").read_text()
    assert result["command"] in text and result["command"].startswith("pneumo bench ")
    for row in result["rows"]:
        assert row["model"] in text and row["model"] in stdout
    if HAVE_MPL:
        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_lays_several_results_side_by_side(full_run, tmp_path, capsys):
    result, out, _ = full_run
    other = dict(result, machine={**result["machine"], "board": "Raspberry Pi 5 Model B Rev 1.0"})
    (tmp_path / "pi5.json").write_text(json.dumps(other))
    assert main(["bench", "--compare", str(out / "bench.json"), str(tmp_path / "pi5.json"),
                 "--markdown", str(tmp_path / "both.md")]) == 0
    stdout = capsys.readouterr().out
    assert "[bench.json]" in stdout and "Raspberry Pi 5 Model B Rev 1.0 [pi5.json]" in stdout
    rows = [line for line in (tmp_path / "both.md").read_text().splitlines() if line.startswith("| Raspberry")]
    measured = [row for row in result["rows"] if row["status"] == "ok"]
    assert len(rows) == len(result["rows"]) + len(measured)  # the results table, then the stage table


def test_without_matplotlib_the_plot_is_skipped_in_one_line(full_run, tmp_path, monkeypatch, capsys):
    _, out, _ = full_run
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    assert main(["bench", "--compare", str(out / "bench.json"), "--plot", str(tmp_path / "p.png")]) == 0
    assert not (tmp_path / "p.png").exists()
    assert capsys.readouterr().err.strip() == ("pneumo bench: no plot: matplotlib is not installed "
                                               "(pip install 'pneumo-edge[dev]' or matplotlib)")


def test_without_keras_model_the_baseline_says_why_and_bad_films_are_skipped(two_films, tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not a film")
    assert main(["bench", "--models", "pneumo_shallow_int8", "--backends", "cpu", "--threads", "1",
                 "--films", two_films[0], str(tmp_path / "notes.png"), "--runs", "2", "--warmup", "0",
                 "--json", str(tmp_path / "b.json")]) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    baseline, row = result["rows"]
    assert baseline["status"] == "unavailable"
    assert ("no --keras-model" if HAVE_TF else "TensorFlow is not installed") in baseline["reason"]
    assert row["status"] == "ok" and row["speedup_vs_baseline"] is None
    assert result["settings"]["films"] == [Path(two_films[0]).name]
    [skipped] = result["settings"]["skipped_films"]
    assert skipped["film"] == "notes.png" and "not an image" in skipped["reason"]
    assert "no --keras-model" in capsys.readouterr().out or not HAVE_TF


def test_without_films_it_says_what_is_needed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--runs", "1"]) == 1
    assert "needs --films DIR" in capsys.readouterr().err


def test_compare_refuses_a_file_that_is_not_a_result(tmp_path, capsys):
    (tmp_path / "other.json").write_text('{"rows": []}')
    assert main(["bench", "--compare", str(tmp_path / "other.json")]) == 1
    assert "is not a pneumo bench result" in capsys.readouterr().err


def test_the_default_says_how_it_compares_with_each_other_model(full_run):
    result, out, stdout = full_run
    cpu = {r["model"]: r for r in result["rows"] if r["kind"] == "tflite" and r["backend"] == "cpu"}
    default, other = cpu["pneumo_efficientnet_lite0_int8"], cpu["pneumo_mobilenet_int8"]
    ratio = f"{default['invoke_ms']['p50'] / other['invoke_ms']['p50']:.2f}x / " \
            f"{default['end_to_end_ms']['p50'] / other['end_to_end_ms']['p50']:.2f}x"
    line = next(line for line in stdout.splitlines() if line.startswith("the default pneumo_efficientnet_lite0_int8"))
    assert "on cpu, 1 thread(s)" in line and f"pneumo_mobilenet_int8 {ratio}" in line
    assert f"pneumo_mobilenet_int8 {ratio}" in (out / "bench.md").read_text()
