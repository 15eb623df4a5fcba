"""The Edge TPU preflight (pneumo check-edgetpu) on real .tflite files, and edgetpu_compiler's log parsing.

Models are built with TensorFlow here, tiny, and converted by the real TFLite converter;
the shipped int8 models are checked as they are. There is no edgetpu_compiler on this
machine: its log parsing is tested on logs quoted from public reports (marked below),
and the no-compiler path is run for real.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pneumo_edge.convert import edgetpu, edgetpu_ops
from pneumo_edge.convert.preflight import ON_CHIP_BYTES, check_model, schema
from pneumo_edge.edge.cli import main
from pneumo_edge.edge.errors import MissingExtra, ModelError

try:
    schema()
    NO_SCHEMA = None
except MissingExtra as missing:  # a device with only tflite_runtime (it ships no schema module)
    NO_SCHEMA = str(missing)
needs_schema = pytest.mark.skipif(NO_SCHEMA is not None, reason=f"no TFLite schema here: {NO_SCHEMA}")

REPO = Path(__file__).resolve().parents[1]
SHIPPED_INT8 = [REPO / "models" / name for name in (
    "pneumo_efficientnet_lite0_int8.tflite", "pneumo_mobilenet_int8.tflite", "pneumo_shallow_int8.tflite")]


def _convert(model, int8: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        shape = (1,) + tuple(model.input_shape[1:])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.random(shape, dtype=np.float32)] for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def _small_cnn(batch_size, leaky: bool = False):
    import keras

    inputs = keras.Input(shape=(16, 16, 1), batch_size=batch_size)
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.LeakyReLU()(x) if leaky else keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


def _while_loop_bytes() -> bytes:
    """A float model whose tf.while_loop becomes a WHILE op with its own subgraphs."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def doubled_until_large(x):
        return tf.while_loop(lambda v: tf.reduce_sum(v) < 100.0, lambda v: v * 2.0, [x])[0]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([doubled_until_large.get_concrete_function()])
    return converter.convert()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """name -> .tflite path, each converted by TensorFlow's TFLite converter."""
    pytest.importorskip("tensorflow")
    import keras

    folder = tmp_path_factory.mktemp("tiny_models")
    flat = keras.Input(shape=(16,), batch_size=1)
    wide = keras.Input(shape=(2900,), batch_size=1)
    models = {
        "good": _convert(_small_cnn(1), int8=True),
        "float32": _convert(_small_cnn(1), int8=False),
        "dynamic": _convert(_small_cnn(None), int8=True),  # Input(shape=...) alone: TF leaves the batch -1
        "leaky": _convert(_small_cnn(1, leaky=True), int8=True),
        "rank5": _convert(keras.Model(flat, keras.layers.Reshape((2, 2, 2, 2))(flat)), int8=True),
        # 2900 x 2900 int8 weights: 8.02 MiB, just over the on-chip 8 MiB
        "wide": _convert(keras.Model(wide, keras.layers.Dense(2900)(wide)), int8=True),
        "while": _while_loop_bytes(),
    }
    paths = {}
    for name, data in models.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(data)
    return paths


def _constant_bytes(path) -> int:
    """Constant-buffer bytes by TensorFlow's own flatbuffer reader (object API), to check ours against."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    used = {t.buffer for g in model.subgraphs for t in g.tensors}
    return sum(len(model.buffers[b].data) for b in used if model.buffers[b].data is not None)


def test_static_batch1_int8_model_passes(tiny):
    report = check_model(tiny["good"])
    assert report.ok and report.problems == []
    assert set(report.ops) <= set(edgetpu_ops.SUPPORTED_OPS)
    assert report.ops["CONV_2D"] == 1 and report.ops["FULLY_CONNECTED"] == 1
    assert report.parameter_bytes == _constant_bytes(tiny["good"]) > 0
    assert all("not verified" in w for w in report.warnings)  # only the undocumented-op-version notice
    as_dict = json.loads(json.dumps(report.as_dict()))
    assert as_dict["ok"] is True and as_dict["ops"] == report.ops and as_dict["on_chip_bytes"] == ON_CHIP_BYTES


def test_float32_model_is_flagged(tiny):
    report = check_model(tiny["float32"])
    assert not report.ok
    assert any("float32 activation tensors" in p for p in report.problems)
    assert any("float32 constant tensors" in p for p in report.problems)


def test_dynamic_batch_int8_model_is_flagged(tiny):
    from ai_edge_litert.interpreter import Interpreter

    signature = Interpreter(model_path=str(tiny["dynamic"])).get_input_details()[0]["shape_signature"]
    assert signature[0] == -1  # what TFLiteConverter.from_keras_model leaves on Input(shape=...)
    report = check_model(tiny["dynamic"])
    assert not report.ok
    assert any(p.startswith("dynamic shapes") for p in report.problems)
    assert any("has batch dynamic (-1)" in p for p in report.problems)
    assert not any("float" in p for p in report.problems)


def test_op_outside_the_edgetpu_list_is_flagged(tiny):
    assert "LEAKY_RELU" not in edgetpu_ops.SUPPORTED_OPS
    report = check_model(tiny["leaky"])
    assert report.ops.get("LEAKY_RELU") == 1
    assert report.problems == [p for p in report.problems if p.startswith("LEAKY_RELU (x1) is not in")]
    assert len(report.problems) == 1


def test_parameters_over_on_chip_memory_warn_but_pass(tiny):
    report = check_model(tiny["wide"])
    assert report.parameter_bytes == _constant_bytes(tiny["wide"]) > ON_CHIP_BYTES
    assert report.ok
    assert any("streamed from host memory" in w for w in report.warnings)
    assert not any("streamed" in w for w in check_model(tiny["good"]).warnings)


def test_several_subgraphs_and_high_rank_activations_are_flagged(tiny):
    looped = check_model(tiny["while"])
    assert any("subgraphs" in p for p in looped.problems) and "WHILE" in looped.ops
    rank5 = check_model(tiny["rank5"])
    assert any("outside their 3 innermost dimensions" in p for p in rank5.problems)
    assert not any("outside their 3 innermost" in p for p in check_model(tiny["good"]).problems)


@pytest.fixture()
def shipped() -> Path:
    present = [p for p in SHIPPED_INT8 if p.exists()]
    if not present:
        pytest.skip("no shipped int8 model in models/")
    return present[0]


@needs_schema
@pytest.mark.parametrize("model", [p for p in SHIPPED_INT8 if p.exists()], ids=lambda p: p.name)
def test_shipped_int8_models_pass(model):
    report = check_model(model)
    assert report.ok, report.problems
    assert 0 < report.parameter_bytes < ON_CHIP_BYTES


@pytest.mark.parametrize("model", [p for p in SHIPPED_INT8 if p.exists()], ids=lambda p: p.name)
def test_parameter_bytes_match_tensorflows_reader(model):
    pytest.importorskip("tensorflow")
    assert check_model(model).parameter_bytes == _constant_bytes(model)


@needs_schema
def test_unreadable_files_are_clear_errors(tmp_path, shipped):
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    with pytest.raises(ModelError, match="not a TFLite model") as raised:
        check_model(text)
    assert raised.value.code == "not_tflite"
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(shipped.read_bytes()[:20000])
    with pytest.raises(ModelError, match="damaged TFLite flatbuffer"):
        check_model(truncated)
    with pytest.raises(ModelError, match="no model at"):
        check_model(tmp_path / "missing.tflite")


def test_cli_exit_codes(tiny, capsys):
    assert main(["check-edgetpu", str(tiny["good"])]) == 0
    assert "passes the Edge TPU preflight" in capsys.readouterr().out
    assert main(["check-edgetpu", str(tiny["leaky"])]) == 1
    assert "problem: LEAKY_RELU" in capsys.readouterr().out
    assert main(["check-edgetpu", "--json", str(tiny["float32"])]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
    assert main(["check-edgetpu", str(tiny["good"].with_name("absent.tflite"))]) == 1
    assert "no model at" in capsys.readouterr().err


@pytest.mark.skipif(NO_SCHEMA is None, reason="the TFLite schema is installed here")
def test_without_a_schema_the_cli_says_what_to_install(shipped, capsys):
    assert main(["check-edgetpu", str(shipped)]) == 1
    err = capsys.readouterr().err
    assert "pip install ai-edge-litert" in err and "Traceback" not in err


@needs_schema
def test_cli_reads_models_without_tensorflow(shipped):
    """The device install has no TensorFlow: the real entry point must not import it."""
    probe = ("import sys; from pneumo_edge.edge.cli import main; code = main(['check-edgetpu', sys.argv[1]]); "
             "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, str(shipped)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "passes the Edge TPU preflight" in done.stdout


# --- edgetpu_compiler logs, quoted verbatim from public reports (no compiler here) ---------------

# Quoted from github.com/google-coral/edgetpu/issues/342 (compiler stdout with -s, March 2021).
LOG_ISSUE_342 = """\
Number of operations that will run on Edge TPU: 2
Number of operations that will run on CPU: 153

Operator                       Count      Status


TRANSPOSE                      70         Operation not supported
FULLY_CONNECTED                1          More than one subgraph is not supported
PAD                            1          Mapped to Edge TPU
PAD                            17         More than one subgraph is not supported
ADD                            10         More than one subgraph is not supported
MEAN                           2          More than one subgraph is not supported
CONV_2D                        35         More than one subgraph is not supported
QUANTIZE                       1          Mapped to Edge TPU
QUANTIZE                       1          Operation is otherwise supported, but not mapped due to some unspecified limitation
DEPTHWISE_CONV_2D              17         More than one subgraph is not supported
"""

# Quoted from github.com/system-software-lab/nrf20, convert/quantize/README.md: two operation
# logs (*_edgetpu.log) of Edge TPU Compiler 15.0, one partly on the CPU, one fully mapped.
LOG_NRF20_MNIST4 = """\
Edge TPU Compiler version 15.0.340273435
Input: mnist4.tflite
Output: mnist4_edgetpu.tflite

Operator                       Count      Status

RESHAPE                        1          Mapped to Edge TPU
CONV_2D                        2          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
QUANTIZE                       1          Operation is otherwise supported, but not mapped due to some unspecified limitation
DEQUANTIZE                     1          Operation is working on an unsupported data type
MAX_POOL_2D                    2          Mapped to Edge TPU
FULLY_CONNECTED                2          Mapped to Edge TPU
"""
LOG_NRF20_MNIST7 = """\
Edge TPU Compiler version 15.0.340273435
Input: mnist7.tflite
Output: mnist7_edgetpu.tflite

Operator                       Count      Status

SOFTMAX                        1          Mapped to Edge TPU
FULLY_CONNECTED                2          Mapped to Edge TPU
RESHAPE                        1          Mapped to Edge TPU
CONV_2D                        2          Mapped to Edge TPU
MAX_POOL_2D                    2          Mapped to Edge TPU
"""

# Quoted from github.com/google-coral/edgetpu/issues/433 (compiler 16.0 stdout without -s: totals only).
STDOUT_ISSUE_433 = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 96 ms.

Input model: inference_proxy_mobilenet_quantized_v2.tflite
Input size: 7.02MiB
Output model: inference_proxy_mobilenet_quantized_v2_edgetpu.tflite
Output size: 7.14MiB
On-chip memory used for caching model parameters: 80.00KiB
On-chip memory remaining for caching model parameters: 6.04MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 191
Operation log: inference_proxy_mobilenet_quantized_v2_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will \
instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported \
by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 1
Number of operations that will run on CPU: 190
See the operation log file for individual operation details.
"""


def test_operation_table_agrees_with_the_compilers_own_totals():
    mapping = edgetpu.parse_operation_log(LOG_ISSUE_342)
    assert (mapping["edgetpu_ops"], mapping["cpu_ops"]) == (2, 153)  # the totals the compiler printed above it
    assert len(mapping["operators"]) == 10
    assert "TRANSPOSE x70: Operation not supported" in mapping["cpu"]
    with pytest.raises(ModelError, match=r"153 of 155 ops stay on the CPU .*TRANSPOSE x70") as raised:
        edgetpu.require_all_mapped(mapping, Path("model_edgetpu.log"))
    assert raised.value.code == "edgetpu_cpu_ops"


def test_operation_log_files():
    partial = edgetpu.parse_operation_log(LOG_NRF20_MNIST4)
    assert partial["compiler_version"] == "15.0.340273435"
    assert (partial["edgetpu_ops"], partial["cpu_ops"]) == (8, 2)
    assert [c.split(" x")[0] for c in partial["cpu"]] == ["QUANTIZE", "DEQUANTIZE"]
    full = edgetpu.parse_operation_log(LOG_NRF20_MNIST7)
    assert (full["edgetpu_ops"], full["cpu_ops"]) == (8, 0)
    assert edgetpu.require_all_mapped(full, Path("mnist7_edgetpu.log")) is full


def test_stdout_without_table_falls_back_to_totals():
    mapping = edgetpu.parse_operation_log(STDOUT_ISSUE_433)
    assert mapping["compiler_version"] == "16.0.384591198"
    assert (mapping["edgetpu_ops"], mapping["cpu_ops"]) == (1, 190)
    with pytest.raises(ModelError, match="190 of 191 ops stay on the CPU"):
        edgetpu.require_all_mapped(mapping, Path("x_edgetpu.log"))
    with pytest.raises(ModelError, match="no operator table"):
        edgetpu.parse_operation_log("Edge TPU Compiler version 16.0.384591198\nCompilation failed!\n")


def test_compile_without_the_compiler_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert shutil.which(edgetpu.COMPILER) is None
    out = tmp_path / "out"
    int8 = tmp_path / "model_int8.tflite"
    int8.write_bytes(b"never read: there is no compiler to give it to")
    result = edgetpu.compile_if_available(int8, out, 13)
    assert result == {"status": "compiler_not_found",
                      "hint": "edgetpu_compiler is distributed only from Coral's apt repository for x86-64 "
                              "Debian/Ubuntu; install it there and rerun, or run pneumo check-edgetpu"}
    assert not out.exists()
