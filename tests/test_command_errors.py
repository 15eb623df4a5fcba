"""One error policy, one folder walker and config objects, across device and workstation commands."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import fields

import pytest

from pneumo_edge.edge.cli import main
from pneumo_edge.edge.commands.score_walk import walk
from pneumo_edge.edge.labelled.listing import list_films

# Runs `pneumo ARGS` in a fresh process and then says whether TensorFlow was imported.
PROBE = ("import sys; from pneumo_edge.edge.cli import main; code = main(sys.argv[1:]); "
         "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'tensorflow not loaded'); sys.exit(code)")


def pneumo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, says", [
    (["evaluate", "m.tflite", "/nonexistent"], "no data folder or CSV at /nonexistent"),
    (["train", "--data", "/nonexistent", "--out", "x"], "no data folder or CSV at /nonexistent"),
    (["convert", "/nonexistent", "--calib", "x", "--out", "y"], "no trained model at /nonexistent"),
])
def test_a_missing_folder_is_one_line_without_tensorflow(args, says, tmp_path):
    done = pneumo(*[a if a.startswith(("/", "-", "m.")) or a in ("evaluate", "train", "convert")
                    else str(tmp_path / a) for a in args])
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"pneumo {args[0]}: {says}")
    assert done.stdout == "tensorflow not loaded\n"


def test_convert_refuses_a_scope_refusal_share_out_of_range_before_tensorflow(tmp_path):
    done = pneumo("convert", "/nonexistent", "--calib", str(tmp_path), "--out", str(tmp_path / "o"),
                  "--scope-refusal", "0.7")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("pneumo convert: --scope-refusal is a share of validation films between 0 and 0.5")
    assert done.stdout == "tensorflow not loaded\n"


def test_train_on_an_unlabelled_folder_fails_before_tensorflow(tmp_path, fullres_dir):
    shutil.copy(sorted(fullres_dir.glob("*.png"))[0], tmp_path / "film.png")
    done = pneumo("train", "--data", str(tmp_path), "--out", str(tmp_path / "run"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "no NORMAL/PNEUMONIA class folders" in done.stderr
    assert done.stdout == "tensorflow not loaded\n" and not (tmp_path / "run").exists()


@pytest.fixture
def labelled_with_extensionless_dicom(tmp_path, train_dir, fullres_dir):
    """NORMAL/ and PNEUMONIA/ with two JPEGs each, plus a DICOM named without an extension."""
    root = tmp_path / "labelled"
    for label in ("NORMAL", "PNEUMONIA"):
        (root / label).mkdir(parents=True)
        for path in sorted((train_dir / label).glob("*.jpeg"))[:2]:
            shutil.copy(path, root / label / path.name)
    shutil.copy(fullres_dir / "chest_cr_monochrome2.dcm", root / "NORMAL" / "IM0001")
    (root / "NORMAL" / ".IM0001").write_bytes(b"a hidden file")
    return root


def test_an_extensionless_dicom_is_found_by_score_evaluate_and_train_alike(labelled_with_extensionless_dicom):
    root = labelled_with_extensionless_dicom
    scored = [entry.relative for entry in walk(root).films]  # score
    assert "NORMAL/IM0001" in scored
    listed = [f.path.relative_to(root).as_posix() for f in list_films(root)]  # evaluate, train and convert
    assert "NORMAL/IM0001" in listed and "NORMAL/.IM0001" not in listed
    assert sorted(listed) == sorted(scored)


def test_evaluate_from_python_scores_the_extensionless_dicom(labelled_with_extensionless_dicom, tmp_path):
    pytest.importorskip("pydicom")
    pytest.importorskip("matplotlib")
    from pneumo_edge.edge.classifier import default_model
    from pneumo_edge.train.config import EvaluateConfig
    from pneumo_edge.train.evaluate import evaluate

    result = evaluate(EvaluateConfig(model=default_model(), data=labelled_with_extensionless_dicom,
                                     out=tmp_path / "eval", bootstrap=10))
    assert result["n"] == 5 and result["unscored"] == []
    assert (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.parametrize("command, config_module, config_name", [
    ("train", "pneumo_edge.train.config", "TrainConfig"),
    ("evaluate", "pneumo_edge.train.config", "EvaluateConfig"),
    ("convert", "pneumo_edge.convert.config", "ConvertConfig"),
])
def test_command_defaults_are_the_config_defaults(command, config_module, config_name):
    """The CLI is a thin layer: every option is a config field with the same default."""
    import importlib

    from pneumo_edge.edge.cli import commands

    config_class = getattr(importlib.import_module(config_module), config_name)
    parser = argparse.ArgumentParser()
    commands()[command].add_arguments(parser)
    required = {"train": ["--data", "d", "--out", "o"], "evaluate": ["m", "d"],
                "convert": ["m", "--calib", "c", "--out", "o"]}[command]
    args = vars(parser.parse_args(required))
    config = config_class(**{f.name: args[f.name] for f in fields(config_class) if f.name in args})
    assert set(args) == {f.name for f in fields(config_class)}
    assert vars(config) == args


def test_web_busy_and_camera_errors_are_the_projects_error_type():
    from pneumo_edge.edge.errors import Busy, PneumoError
    from pneumo_edge.edge.web.camera_slot import CameraUnavailable

    assert issubclass(Busy, PneumoError) and Busy("x").code == "busy"
    assert issubclass(CameraUnavailable, PneumoError) and CameraUnavailable("x").code == "camera_unavailable"


def test_an_unwritable_output_is_one_line(tmp_path, fullres_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["score", str(fullres_dir), "--out", str(blocker / "results.csv")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("pneumo score: ") and err.count("\n") == 1
