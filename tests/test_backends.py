"""The backend registry: a new backend is a module that joins it; Classifier is not touched."""

from __future__ import annotations

import types
from dataclasses import dataclass

import pytest

from pneumo_edge.edge import backends
from pneumo_edge.edge.backends import cpu
from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.errors import BackendUnavailable


@pytest.fixture
def counting_backend(monkeypatch):
    """A backend named "counting": the CPU's interpreter, with its own config and model-file rule."""
    calls = []

    @dataclass
    class Config:
        threads: int | None = None

    def make_interpreter(model_path, config, runtime):
        calls.append((model_path.name, config))
        return cpu.make_interpreter(model_path, cpu.Config(threads=config.threads), runtime)

    module = types.SimpleNamespace(Config=Config, config_from=lambda options: Config(threads=options.threads),
                                   model_file=lambda path: path, probe=lambda runtime, config: None,
                                   make_interpreter=make_interpreter)
    monkeypatch.setitem(backends.BACKENDS, "counting", module)
    return calls


def test_a_registered_backend_scores_through_the_classifier(counting_backend, fullsize_dir):
    film = sorted(fullsize_dir.glob("*.png"))[0]
    reference = Classifier(Options(threads=1)).predict(film)
    classifier = Classifier(Options(backend="counting", threads=1))
    assert classifier.backend == "counting"
    assert counting_backend == [(classifier.model_path.name, counting_backend[0][1])]
    assert counting_backend[0][1].threads == 1
    assert classifier.predict(film).probability == reference.probability


def test_the_backend_files_join_the_registry_cpu_first():
    assert list(backends.BACKENDS)[:1] == ["cpu"] and "edgetpu" in backends.BACKENDS
    for module in backends.BACKENDS.values():
        assert all(hasattr(module, name) for name in backends.INTERFACE)


def test_a_backend_missing_part_of_the_interface_is_refused():
    with pytest.raises(TypeError, match="make_interpreter"):
        backends.register("half", types.SimpleNamespace(Config=object, config_from=None, model_file=None,
                                                        probe=None))
    assert "half" not in backends.BACKENDS


def test_an_unknown_backend_is_the_projects_error():
    with pytest.raises(BackendUnavailable, match="unknown backend 'nope'"):
        Classifier(Options(backend="nope"))


def test_only_the_edgetpu_backend_knows_the_compiled_file_name(tmp_path):
    model = tmp_path / "m.tflite"
    assert backends.get_backend("edgetpu").model_file(model) == model
    (tmp_path / "m_edgetpu.tflite").write_bytes(b"")
    assert backends.get_backend("edgetpu").model_file(model).name == "m_edgetpu.tflite"
    assert backends.get_backend("cpu").model_file(model) == model
