"""``pneumo check-edgetpu``: what ``edgetpu_compiler`` would refuse, or leave on the CPU, in a .tflite.

Runs on the device install, without TensorFlow or the compiler: the model's flatbuffer is
read with the TFLite schema module that ai-edge-litert ships
(``ai_edge_litert.schema_py_generated``, on top of the ``flatbuffers`` package it depends
on), or TensorFlow's copy of the same module where ai-edge-litert is absent.

Blocking (``problems``): tensors that are not int8/uint8 (constant int32 tensors, such as
biases and shape or axis operands, are accepted as the compiler does), dynamic shapes
(``shape_signature`` with -1), an input batch other than 1, activations with a size above 1
outside their three innermost dimensions, more than one subgraph, ops outside the Edge
TPU's supported-operations table, and op versions that compiler 16.0 was seen to refuse.

Warnings: parameters (constant buffers) over the Edge TPU's 8 MiB on-chip memory (they
would be streamed from host memory, which is slower, not refused), and op versions above 1
that cannot be verified because Coral does not document the versions compiler 16.0 accepts.

The op table and where it comes from: ``edgetpu_ops`` (Coral's "TensorFlow models on the
Edge TPU", supported operations, for Edge TPU Compiler 16.0). See docs/edgetpu.md.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..edge.errors import MissingExtra, ModelError
from . import edgetpu_ops

ON_CHIP_BYTES = 8 * 1024 * 1024
TFLITE_IDENTIFIER = b"TFL3"
EXAMPLES = 3  # tensor names quoted per finding


@dataclass
class Tensor:
    name: str
    dtype: str
    shape: tuple
    signature: tuple  # shape_signature (-1 where dynamic), or the shape when the file has none
    constant: bool
    buffer: int


@dataclass
class Subgraph:
    tensors: list
    inputs: list
    ops: list  # (name, version) per operator, in execution order


@dataclass
class Flatbuffer:
    subgraphs: list
    buffer_bytes: list  # bytes of constant data per buffer index (0 for activations' empty buffers)


@dataclass
class Report:
    model: str
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    ops: dict = field(default_factory=dict)  # op name -> count
    op_versions: dict = field(default_factory=dict)  # op name -> versions used
    parameter_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"model": self.model, "ok": self.ok, "problems": self.problems, "warnings": self.warnings,
                "ops": self.ops, "op_versions": self.op_versions, "parameter_bytes": self.parameter_bytes,
                "on_chip_bytes": ON_CHIP_BYTES, "table": edgetpu_ops.SOURCE}


def schema():
    """The generated TFLite flatbuffer schema module, from ai-edge-litert or else TensorFlow."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated
        except ImportError:
            raise MissingExtra("reading a .tflite needs the TFLite schema that ai-edge-litert ships: "
                               "pip install ai-edge-litert (or tensorflow)") from None
    return schema_py_generated


def read_tflite(path: str | Path) -> Flatbuffer:
    """A .tflite file's subgraphs (tensors with type, shape and constness; operators) and buffer sizes."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"no model at {path}", code="no_model") from None
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder, not a .tflite file", code="not_tflite") from None
    if data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{path} is not a TFLite model (no {TFLITE_IDENTIFIER.decode()} flatbuffer identifier)",
                         code="not_tflite")
    fb = schema()
    try:
        flat = _read(fb, fb.Model.GetRootAs(data, 0))
    except Exception as exc:  # a truncated or corrupt flatbuffer fails anywhere inside the generated reader
        raise ModelError(f"{path} is a damaged TFLite flatbuffer ({type(exc).__name__}: {exc})",
                         code="bad_tflite") from None
    if not flat.subgraphs:
        raise ModelError(f"{path} has no subgraph: it holds no model to run", code="bad_tflite")
    return flat


def _read(fb, model) -> Flatbuffer:
    dtypes = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    builtins = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    buffer_bytes = [_buffer_bytes(model.Buffers(i)) for i in range(model.BuffersLength())]
    opcodes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # TFLite's own rule for the two fields
        name = builtins.get(number, f"BUILTIN_{number}")
        if name == "CUSTOM":
            name = (code.CustomCode() or b"").decode("utf-8", "replace") or "CUSTOM"
        opcodes.append((name, code.Version()))
    graphs = []
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        tensors = []
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            shape = tuple(int(tensor.Shape(j)) for j in range(tensor.ShapeLength()))
            signature = tuple(int(tensor.ShapeSignature(j)) for j in range(tensor.ShapeSignatureLength()))
            buffer = tensor.Buffer()
            tensors.append(Tensor(name=(tensor.Name() or b"").decode("utf-8", "replace"),
                                  dtype=dtypes.get(tensor.Type(), f"TYPE_{tensor.Type()}"), shape=shape,
                                  signature=signature or shape, buffer=buffer,
                                  constant=0 < buffer < len(buffer_bytes) and buffer_bytes[buffer] > 0))
        ops = [opcodes[graph.Operators(o).OpcodeIndex()] for o in range(graph.OperatorsLength())]
        graphs.append(Subgraph(tensors=tensors, inputs=[graph.Inputs(i) for i in range(graph.InputsLength())],
                               ops=ops))
    return Flatbuffer(subgraphs=graphs, buffer_bytes=buffer_bytes)


def _buffer_bytes(buffer) -> int:
    """Bytes of constant data in a buffer: inline, or (models over 2 GiB) at an offset in the file."""
    inline = buffer.DataLength()
    return inline or (int(buffer.Size()) if buffer.Offset() > 1 else 0)


def check_model(path: str | Path) -> Report:
    """Check a .tflite file against what Edge TPU Compiler 16.0 maps to the Edge TPU."""
    flat = read_tflite(path)
    graphs = flat.subgraphs
    report = Report(model=str(path))
    tensors = [t for g in graphs for t in g.tensors]
    if len(graphs) > 1:
        report.problems.append(f"{len(graphs)} subgraphs (control flow or several signatures): the Edge TPU "
                               "compiler takes a model with one subgraph")
    _check_types(tensors, report)
    _check_shapes(graphs[0], tensors, report)
    _check_ops([op for g in graphs for op in g.ops], report)
    report.parameter_bytes = sum(flat.buffer_bytes[b] for b in {t.buffer for t in tensors if t.constant})
    if report.parameter_bytes > ON_CHIP_BYTES:
        report.warnings.append(f"parameters take {_mib(report.parameter_bytes)}, more than the Edge TPU's "
                               f"{_mib(ON_CHIP_BYTES)} on-chip memory: the rest will be streamed from host "
                               "memory on every inference (slower, not refused)")
    return report


def _short(name: str, limit: int = 60) -> str:
    """A tensor name for a message: the converter joins fused ops' names with ';', keep the first."""
    name = name.split(";")[0]
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _names(tensors) -> str:
    quoted = ", ".join(f"'{_short(t.name)}' {list(t.signature)}" for t in tensors[:EXAMPLES])
    return quoted + (f" and {len(tensors) - EXAMPLES} more" if len(tensors) > EXAMPLES else "")


def _check_types(tensors, report: Report) -> None:
    refused = Counter()
    examples = {}
    for t in tensors:
        if t.dtype in ("INT8", "UINT8") or (t.dtype == "INT32" and t.constant):
            continue
        kind = (t.dtype.lower(), "constant" if t.constant else "activation")
        refused[kind] += 1
        examples.setdefault(kind, []).append(t)
    for (dtype, kind), count in sorted(refused.items()):
        report.problems.append(f"{count} {dtype} {kind} tensors, e.g. {_names(examples[(dtype, kind)])}: the "
                               "Edge TPU runs only 8-bit quantized tensors (int32 only for constants such as "
                               "biases); convert with full-integer (int8) quantization")


def _check_shapes(main: Subgraph, tensors, report: Report) -> None:
    dynamic = [t for t in tensors if any(d < 0 for d in t.signature)]
    if dynamic:
        report.problems.append(f"dynamic shapes in {len(dynamic)} tensors, e.g. {_names(dynamic)}: the Edge TPU "
                               "compiler needs every size fixed; build the model on Input(batch_size=1, ...)")
    for index in main.inputs:
        t = main.tensors[index]
        if len(t.signature) >= 2 and t.signature[0] != 1:
            batch = "dynamic (-1)" if t.signature[0] < 0 else t.signature[0]
            report.problems.append(f"input '{_short(t.name)}' has batch {batch}: the Edge TPU compiler needs batch 1")
    high = [t for t in tensors if not t.constant and any(d > 1 for d in t.shape[:-3])]
    if high:
        report.problems.append(f"{len(high)} activation tensors have a size above 1 outside their 3 innermost "
                               f"dimensions, e.g. {_names(high)}: only the 3 innermost are mapped to the Edge TPU")


def _check_ops(ops, report: Report) -> None:
    counts = Counter(name for name, _ in ops)
    report.ops = dict(counts)
    report.op_versions = {name: sorted({v for n, v in ops if n == name}) for name in counts}
    unverified = []
    for name, count in counts.items():
        versions = report.op_versions[name]
        if name == edgetpu_ops.COMPILED_CUSTOM_OP:
            report.warnings.append(f"already compiled for the Edge TPU ({count} {name}); the other ops listed "
                                   "run on the CPU")
        elif name not in edgetpu_ops.SUPPORTED_OPS:
            report.problems.append(f"{name} (x{count}) is not in the Edge TPU's supported operations: the "
                                   "compiler would leave it, and any op after it, on the CPU")
        elif name in edgetpu_ops.REJECTED_FROM and versions[-1] >= edgetpu_ops.REJECTED_FROM[name][0]:
            first, where = edgetpu_ops.REJECTED_FROM[name]
            report.problems.append(f"{name} version {versions[-1]}: edgetpu_compiler "
                                   f"{edgetpu_ops.COMPILER_VERSION} refuses version {first} and up "
                                   f"(seen in {where}); convert with an older TensorFlow")
        else:
            unverified += [f"{name} v{v}" for v in versions if v > 1]
    if unverified:
        report.warnings.append(f"op versions not verified: {', '.join(unverified)}; Coral does not document the "
                               f"op versions edgetpu_compiler {edgetpu_ops.COMPILER_VERSION} accepts, so only "
                               "the compiler can confirm them")


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def format_report(report: Report) -> str:
    verdict = ("passes" if report.ok else f"FAILS ({len(report.problems)} blocking)")
    lines = [f"{report.model}: {verdict} the Edge TPU preflight "
             f"(edgetpu_compiler {edgetpu_ops.COMPILER_VERSION} supported-operations table)",
             "  ops: " + ", ".join(f"{name} v{'/'.join(map(str, report.op_versions[name]))} x{count}"
                                   for name, count in report.ops.items()),
             f"  parameters: {_mib(report.parameter_bytes)} of {_mib(ON_CHIP_BYTES)} on-chip memory"]
    lines += [f"  problem: {p}" for p in report.problems]
    lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines)


HELP = "check a .tflite model against the Edge TPU's requirements"


def add_arguments(parser) -> None:
    parser.add_argument("model", type=Path, help="the .tflite model to check (int8, before edgetpu_compiler)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    report = check_model(args.model)
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1
