"""Compile an int8 model for the Coral Edge TPU with ``edgetpu_compiler``, where it is installed.

The compiler is distributed only from Coral's apt repository, for x86-64 Debian/Ubuntu.
Where it is absent, ``compile_if_available`` says so and does nothing; ``pneumo
check-edgetpu`` (convert/preflight.py) tells without it what the compiler would refuse.

A compiled model in which any op stays on the CPU is an error here, not a result: the
Edge TPU backend would then shuttle tensors between the CPU and the Edge TPU on every
inference, and the speed the accelerator is for would be lost without anyone noticing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ..edge.card import read_card, write_card
from ..edge.errors import ModelError

COMPILER = "edgetpu_compiler"
MAPPED = "Mapped to Edge TPU"
TIMEOUT_S = 600  # the compiler stops itself after 180 s by default; this only guards a hung process
NOT_FOUND_HINT = ("edgetpu_compiler is distributed only from Coral's apt repository for x86-64 Debian/Ubuntu; "
                  "install it there and rerun, or run pneumo check-edgetpu")

_ROW = re.compile(r"^(?P<op>[A-Za-z0-9_\-]+)\s+(?P<count>\d+)\s+(?P<status>\S.*?)\s*$")
_VERSION = re.compile(r"Edge TPU Compiler version (\S+)")
_TOTALS = re.compile(r"Number of operations that will run on (Edge TPU|CPU): (\d+)")


def parse_operation_log(text: str) -> dict:
    """Ops mapped to the Edge TPU and left on the CPU, from the compiler's operation log.

    The log (``<model>_edgetpu.log``, and the stdout of ``edgetpu_compiler -s``) holds a table
    ``Operator  Count  Status`` with one row per op and status; "Mapped to Edge TPU" rows run on
    the Edge TPU, every other status ("Operation not supported", "More than one subgraph is not
    supported", "Operation version not supported", ...) runs on the CPU.
    """
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:3] == ["Operator", "Count", "Status"]), None)
    rows = []
    if header is not None:
        for line in lines[header + 1:]:
            match = _ROW.match(line.strip())
            if match:
                rows.append({"op": match["op"], "count": int(match["count"]), "status": match["status"]})
            elif line.strip():
                break
    totals = {where: int(n) for where, n in _TOTALS.findall(text)}
    if not rows and not totals:
        raise ModelError("no operator table ('Operator  Count  Status') nor operation totals in the "
                         "edgetpu_compiler log", code="edgetpu_log")
    version = _VERSION.search(text)
    cpu_rows = [r for r in rows if r["status"] != MAPPED]
    if rows:
        cpu_ops = sum(r["count"] for r in cpu_rows)
        edgetpu_ops = sum(r["count"] for r in rows) - cpu_ops
    else:
        edgetpu_ops, cpu_ops = totals.get("Edge TPU", 0), totals.get("CPU", 0)
    return {"compiler_version": version.group(1) if version else None,
            "edgetpu_ops": edgetpu_ops, "cpu_ops": cpu_ops,
            "cpu": [f"{r['op']} x{r['count']}: {r['status']}" for r in cpu_rows],
            "operators": rows}


def require_all_mapped(mapping: dict, log: Path) -> dict:
    """``mapping`` (from ``parse_operation_log``) when every op runs on the Edge TPU; else the error naming them."""
    if mapping["cpu_ops"]:
        total = mapping["cpu_ops"] + mapping["edgetpu_ops"]
        ops = "; ".join(mapping["cpu"]) or "the log lists only totals"
        raise ModelError(f"{mapping['cpu_ops']} of {total} ops stay on the CPU after edgetpu_compiler ({ops}); "
                         f"see {log}", code="edgetpu_cpu_ops",
                         hint="pneumo check-edgetpu names what the Edge TPU refuses")
    return mapping


def compile_if_available(int8_path: Path, out_dir: Path, runtime_version: int | None) -> dict:
    """Compile ``int8_path`` into ``out_dir``; a card for the ``*_edgetpu.tflite`` beside it.

    ``runtime_version`` is the compiler's ``-m``: the oldest Edge TPU runtime the model must
    run on (None: the compiler's default, its own runtime version).
    """
    compiler = shutil.which(COMPILER)
    if compiler is None:
        return {"status": "compiler_not_found", "hint": NOT_FOUND_HINT}
    int8_path, out_dir = Path(int8_path), Path(out_dir)
    card = read_card(int8_path)  # before compiling: a model without a valid card is not worth compiling
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = int8_path.name[: -len(int8_path.suffix)]
    compiled, log = out_dir / f"{stem}_edgetpu.tflite", out_dir / f"{stem}_edgetpu.log"
    for stale in (compiled, log):
        stale.unlink(missing_ok=True)
    command = [compiler, "-s", "-o", str(out_dir)]
    if runtime_version is not None:
        command += ["-m", str(runtime_version)]
    try:
        done = subprocess.run(command + [str(int8_path)], capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelError(f"{COMPILER} did not finish on {int8_path.name} within {TIMEOUT_S} s",
                         code="edgetpu_compile_failed") from None
    output = done.stdout + done.stderr
    if done.returncode != 0 or not compiled.exists():
        raise ModelError(f"{COMPILER} failed on {int8_path.name} (exit {done.returncode}):\n{output.strip()}",
                         code="edgetpu_compile_failed")
    if not log.exists():  # keep the operation table beside the output either way
        log.write_text(output)
    mapping = require_all_mapped(parse_operation_log(log.read_text()), log)
    card.update(variant="int8_edgetpu", compiled_from={"file": int8_path.name, "sha256": card["sha256"]},
                edgetpu={"compiler_version": mapping["compiler_version"], "min_runtime_version": runtime_version,
                         "ops_on_edgetpu": mapping["edgetpu_ops"]})
    card_file = write_card(compiled, card)
    return {"status": "compiled", "path": str(compiled), "card": str(card_file), "log": str(log),
            "compiler_version": mapping["compiler_version"], "min_runtime_version": runtime_version,
            "edgetpu_ops": mapping["edgetpu_ops"], "cpu_ops": 0}
