"""Score real films with the shipped int8 models, and compare runs across machines.

Run by ``.ci/pi_arm64.sh``: ``score`` on the x86-64 host (the reference, computed
fresh every time because the shipped models get retrained) and once per interpreter
runtime on emulated arm64; ``compare`` then checks that every arm64 output equals
the host's, or is one output quantization step away.

Each arm64 run is compared with the host's run of the same int8 arithmetic:
ai-edge-litert (XNNPACK kernels) with ai-edge-litert on the host; tflite-runtime
2.14, whose arm64 kernels compute TFLite's reference int8 arithmetic, with the
host's reference kernels (``--kernels reference``). The families differ from each
other by several output steps on borderline films (edge/backends/cpu.py).

``score`` must run under qemu user emulation without binfmt_misc, so it never
starts another Python (no subprocess, no multiprocessing): everything is in-process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

MODELS = ("pneumo_efficientnet_lite0_int8.tflite", "pneumo_mobilenet_int8.tflite", "pneumo_shallow_int8.tflite")
FILMS_PER_FOLDER = 4
FOLDERS = (("chest_xray/train/NORMAL", "*.jpeg"), ("chest_xray/train/PNEUMONIA", "*.jpeg"), ("fullres", "*.png"))


class SmokeError(Exception):
    """A failed check, reported as one line and exit status 1."""


def pick_films(data: Path) -> list[Path]:
    """FILMS_PER_FOLDER films spread evenly over each folder's sorted listing.

    Every machine walks the same folders, so every run scores the same films.
    """
    films = []
    for folder, pattern in FOLDERS:
        found = sorted((data / folder).glob(pattern))
        if len(found) < FILMS_PER_FOLDER:
            raise SmokeError(f"{data / folder} holds {len(found)} {pattern} films, "
                             f"the smoke needs {FILMS_PER_FOLDER}")
        films += [found[i * len(found) // FILMS_PER_FOLDER] for i in range(FILMS_PER_FOLDER)]
    return films


def environment(runtime) -> dict:
    import numpy
    import PIL

    import pneumo_edge.edge

    model_line = ""
    try:
        model_line = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("Model")), "")
    except OSError:
        pass
    return {"machine": platform.machine(), "python": platform.python_version(),
            "libc": "-".join(platform.libc_ver()), "numpy": numpy.__version__, "pillow": PIL.__version__,
            "runtime": runtime.name, "runtime_version": runtime.version, "cpuinfo_model": model_line,
            "package": str(Path(pneumo_edge.edge.__file__).parent)}


def score_model(model: Path, films: list[Path], runtime_name: str | None, *, kernels: str) -> dict:
    from pneumo_edge.edge.classifier import Classifier, Options

    # The shared full-size films are adults', which the default model refuses: scored anyway, since
    # the smoke compares the arithmetic, film by film.
    classifier = Classifier(Options(model=model, runtime=runtime_name, kernels=kernels, allow_out_of_scope=True))
    interpreter = classifier.interpreter
    (output,) = [d for d in interpreter.get_output_details() if int(d["shape"].prod()) == 1]
    scale, zero_point = output["quantization"]
    if not scale:
        raise SmokeError(f"{model.name}: its probability output is not quantized; "
                         "the smoke compares int8 models only")
    input_index = interpreter.get_input_details()[0]["index"]
    scores = {}
    for film in films:
        prediction = classifier.predict(film)
        scores[f"{film.parent.name}/{film.name}"] = {
            "probability": prediction.probability,
            "quantized": int(interpreter.get_tensor(output["index"]).reshape(-1)[0]),
            "input_sha256": hashlib.sha256(interpreter.get_tensor(input_index).tobytes()).hexdigest()[:16]}
    return {"sha256": classifier.card["sha256"], "output_scale": float(scale),
            "output_zero_point": int(zero_point), "output_dtype": output["dtype"].__name__,
            "runtime": classifier.runtime.name, "kernels": kernels, "films": scores}


def score(args) -> dict:
    import numpy

    from pneumo_edge.edge.classifier import shipped_models
    from pneumo_edge.edge.runtime import load_runtime

    if args.expect_numpy and numpy.__version__.split(".")[0] != args.expect_numpy:
        raise SmokeError(f"numpy {numpy.__version__} is installed, this run needs numpy {args.expect_numpy}.x")
    shipped = {path.name: path for path in shipped_models()}
    missing = [name for name in MODELS if name not in shipped]
    if missing:
        raise SmokeError(f"not installed with the package: {', '.join(missing)} "
                         f"(pneumo_edge.models holds {', '.join(sorted(shipped)) or 'nothing'})")
    films = pick_films(args.data)
    runtime = load_runtime(args.runtime)
    return {"environment": environment(runtime),
            "models": {name: score_model(shipped[name], films, args.runtime, kernels=args.kernels) for name in MODELS}}


def compare_one(reference: dict, result: dict, label: str) -> list[str]:
    """Print one arm64 run's agreement with the host; return its failures."""
    failures = []
    env = result["environment"]
    print(f"{label}: {env['machine']} Python {env['python']} {env['libc']}, numpy {env['numpy']}, "
          f"Pillow {env['pillow']}, {env['runtime']} {env['runtime_version']}, /proc/cpuinfo model "
          f"{env['cpuinfo_model'] or '(none)'}")
    if env["machine"] != "aarch64":
        failures.append(f"{label}: ran on {env['machine']}, not aarch64")
    for name, ref in reference["models"].items():
        got = result["models"].get(name)
        if got is None:
            failures.append(f"{label} {name}: not scored")
            continue
        if got["sha256"] != ref["sha256"]:
            failures.append(f"{label} {name}: a different model file (sha256 {got['sha256'][:12]} "
                            f"vs the host's {ref['sha256'][:12]})")
            continue
        if (got["output_scale"], got["output_zero_point"]) != (ref["output_scale"], ref["output_zero_point"]):
            failures.append(f"{label} {name}: output quantization {got['output_scale']}/{got['output_zero_point']} "
                            f"vs the host's {ref['output_scale']}/{ref['output_zero_point']}")
            continue
        if set(got["films"]) != set(ref["films"]):
            failures.append(f"{label} {name}: scored other films than the host")
            continue
        steps = {film: abs(got["films"][film]["quantized"] - ref["films"][film]["quantized"])
                 for film in ref["films"]}
        same_input = sum(got["films"][f]["input_sha256"] == ref["films"][f]["input_sha256"] for f in ref["films"])
        worst = max(abs(got["films"][f]["probability"] - ref["films"][f]["probability"]) for f in ref["films"])
        counts = [sum(step == n for step in steps.values()) for n in (0, 1)]
        print(f"  {name}: {len(steps)} films, {counts[0]} identical, {counts[1]} one step off "
              f"(step {ref['output_scale']:.6g}), {len(steps) - sum(counts)} further; "
              f"max |dp| {worst:.6g}; identical input tensors {same_input}/{len(steps)}")
        for film, step in sorted(steps.items()):
            if step > 1:
                failures.append(f"{label} {name} {film}: P={got['films'][film]['probability']:.6f} vs the host's "
                                f"{ref['films'][film]['probability']:.6f} ({step} quantization steps)")
    return failures


def compare(args) -> list[str]:
    reference = json.loads(args.reference.read_text())
    env = reference["environment"]
    kernels = next(iter(reference["models"].values()))["kernels"]
    print(f"host reference: {env['machine']} Python {env['python']}, numpy {env['numpy']}, "
          f"Pillow {env['pillow']}, {env['runtime']} {env['runtime_version']} ({kernels} kernels), "
          f"package {env['package']}")
    failures = []
    for path in args.results:
        failures += compare_one(reference, json.loads(path.read_text()), path.stem)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("score", help="score the films; print JSON")
    run.add_argument("--data", type=Path, required=True, help="the shared data folder (../shared/data)")
    run.add_argument("--runtime", help="force an interpreter runtime (ai_edge_litert, tflite_runtime)")
    run.add_argument("--expect-numpy", help="numpy major version this run must see")
    run.add_argument("--kernels", choices=["default", "reference"], default="default",
                     help="CPU kernels (reference: TFLite's reference int8 kernels)")
    check = commands.add_parser("compare", help="compare arm64 runs with the host's reference")
    check.add_argument("reference", type=Path)
    check.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "score":
            json.dump(score(args), sys.stdout, indent=1)
            print()
            return 0
        failures = compare(args)
    except SmokeError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 1
    for failure in failures:
        print(f"MISMATCH {failure}")
    print("arm64 smoke: " + ("FAILED" if failures else f"{len(args.results)} arm64 run(s) agree with the host"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
