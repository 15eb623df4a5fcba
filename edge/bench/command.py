"""``pneumo bench``: latency, memory and accuracy per model variant, backend and thread count.

Every row (variant x backend x threads, and the notebook baseline) is measured in
a fresh Python process (:mod:`.worker`), so load time, first inference and
peak memory are that row's own. Rows whose backend is missing stay in the
results as ``unavailable`` with the reason. ``--compare`` lays the JSON of
several runs (several devices) side by side without measuring anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ..backends import BACKENDS, get_backend
from ..errors import PneumoError

SCHEMA = "pneumo-bench/1"
DEFAULT_FILMS = Path("../shared/data/fullres")  # the project's films, beside a checkout


HELP = "measure latency, memory and accuracy per model and backend"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cores = os.cpu_count() or 1
    parser.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                        help="TFLite models (paths, or names of shipped ones such as pneumo_mobilenet_int8); "
                             "default: every shipped model")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated backends; unavailable ones are reported with the reason "
                             f"(default: {','.join(BACKENDS)})")
    parser.add_argument("--threads", default=",".join(str(t) for t in sorted({1, cores})),
                        help="comma-separated CPU thread counts, e.g. 1,2,4 (default: 1 and all cores)")
    parser.add_argument("--films", nargs="+", default=None, metavar="PATH",
                        help=f"folders or files of real films (default: {DEFAULT_FILMS} if it exists)")
    parser.add_argument("--runs", type=int, default=50, help="timed films and timed invokes per row (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls before timing (default 5)")
    parser.add_argument("--keras-model", default=None, metavar="PATH",
                        help="model.keras from pneumo train, for the notebook baseline (needs TensorFlow)")
    parser.add_argument("--runtime", default=None, help="force an interpreter runtime (ai_edge_litert, "
                                                         "tflite_runtime, tensorflow)")
    parser.add_argument("--device", default=None, help="Edge TPU device, e.g. usb:0 or pci:0")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON")
    parser.add_argument("--markdown", default=None, metavar="OUT", help="write the results as Markdown")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="write a chart (needs matplotlib)")
    parser.add_argument("--compare", nargs="+", default=None, metavar="JSON",
                        help="measure nothing: lay out results saved with --json (several devices) side by side")


def run(args: argparse.Namespace) -> int:
    from . import report

    if args.compare:
        results = [load_results(path) for path in args.compare]
    else:
        if args.runs < 1 or args.warmup < 0:
            raise PneumoError("--runs must be at least 1 and --warmup at least 0", code="bad_counts")
        results = [benchmark(args)]
        if args.json:
            Path(args.json).write_text(json.dumps(results[0], indent=2) + "\n")
    print(report.text_table(results))
    if args.markdown:
        Path(args.markdown).write_text(report.markdown(results))
    if args.plot:
        try:
            report.plot(results, args.plot)
        except ModuleNotFoundError as exc:
            print(f"pneumo bench: no plot: {exc.name} is not installed "
                  "(pip install 'pneumo-edge[dev]' or matplotlib)", file=sys.stderr)
    return 0


def benchmark(args: argparse.Namespace) -> dict:
    from ..card import preprocess_spec, read_card
    from ..runtime import load_runtime
    from .machine import machine_info

    backends = parse_list(args.backends, "--backends")
    for backend in backends:
        get_backend(backend)  # an unknown name is an error before anything is measured
    threads = [parse_threads(t) for t in parse_list(args.threads, "--threads")]
    models = resolve_models(args.models)
    cards = {model: read_card(model) for model in models}
    side = max(preprocess_spec(card).size for card in cards.values())
    films, skipped = resolve_films(args.films, side)
    runtime = load_runtime(args.runtime)
    load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews every figure
    common = {"films": [str(f) for f in films], "runs": args.runs, "warmup": args.warmup,
              "runtime": args.runtime, "device": args.device}

    baseline_row, baseline_settings = measure_baseline_row(args.keras_model, common)
    rows = [baseline_row]
    for model in models:
        for backend in backends:
            for count in (threads if backend == "cpu" else [None]):
                rows.append(measure_tflite_row(model, cards[model], backend, threads=count, runtime=runtime,
                                               common=common))
    for row in rows:
        row["speedup_vs_baseline"] = speedup(row, baseline_row)
    settings = {"runs": args.runs, "warmup": args.warmup, "threads": threads, "backends": backends,
                "films": [f.name for f in films], "films_from": [str(p) for p in args.films or [DEFAULT_FILMS]],
                "skipped_films": skipped, "baseline": baseline_settings, "load_average_before": load_before,
                "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    return {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": command_line(args), "machine": machine_info(runtime), "settings": settings, "rows": rows}


def measure_tflite_row(model: Path, card: dict, backend: str, *, threads: int | None, runtime, common: dict) -> dict:
    from ..card import model_id
    from ..classifier import Options

    row = new_row("tflite", model=model.stem, variant=card.get("variant"), model_id=model_id(card),
                  model_path=str(model), size_bytes=model.stat().st_size,
                  validation_auc=(card.get("validation") or {}).get("roc_auc"), backend=backend, threads=threads,
                  runtime=f"{runtime.name} {runtime.version}")
    module = get_backend(backend)
    reason = module.probe(runtime, module.config_from(Options(threads=threads, device=common["device"])))
    if reason:
        return {**row, "status": "unavailable", "reason": reason}
    label = f"{model.stem} on {backend}" + (f", {threads} thread{'s' * (threads != 1)}" if threads else "")
    return {**row, **run_worker({**common, "kind": "tflite", "model": str(model), "backend": backend,
                                 "threads": threads}, label)}


def measure_baseline_row(keras_model: str | None, common: dict) -> tuple[dict, dict]:
    """The notebook pipeline's row, or an unavailable row saying why it could not run."""
    row = new_row("baseline", model=Path(keras_model).name if keras_model else "model.keras",
                  variant="keras float32", backend="keras", model_path=keras_model)
    if importlib.util.find_spec("tensorflow") is None:
        return {**row, "status": "unavailable",
                "reason": "TensorFlow is not installed (pip install 'pneumo-edge[train]')"}, {}
    if not keras_model:
        return {**row, "status": "unavailable",
                "reason": "no --keras-model given (the model.keras that pneumo train wrote)"}, {}
    path = Path(keras_model)
    if not path.is_file():
        return {**row, "status": "unavailable", "reason": f"no Keras model at {path}"}, {}
    settings = baseline_settings(path)
    row.update(size_bytes=path.stat().st_size, validation_auc=settings.pop("validation_auc"))
    measured = run_worker({**common, "kind": "baseline", "keras_model": str(path),
                           "scaling": settings["scaling"], "threshold": settings["threshold"]},
                          f"notebook baseline ({path.name}, Keras)", module="pneumo_edge.train.notebook_baseline")
    return {**row, **measured}, settings


def baseline_settings(path: Path) -> dict:
    """Scaling and threshold from the training run beside the model, else the shipped default card's."""
    from ..card import read_card
    from ..classifier import default_model

    run_file, metrics_file = path.with_name("run.json"), path.with_name("val_metrics.json")
    if run_file.is_file():
        run_info, source = json.loads(run_file.read_text()), run_file
    else:
        run_info, source = read_card(default_model()), default_model()
    auc = json.loads(metrics_file.read_text()).get("roc_auc") if metrics_file.is_file() else None
    return {"keras_model": str(path), "scaling": run_info["preprocess"]["scaling"],
            "threshold": float(run_info.get("threshold", 0.5)), "settings_from": str(source),
            "resize": "Pillow default filter", "threads": "TensorFlow default", "validation_auc": auc}


def run_worker(spec: dict, label: str, module: str = "pneumo_edge.edge.bench.worker") -> dict:
    """Measure one row in a fresh interpreter running ``module``; a crash becomes a failed row
    with its last error line."""
    from .worker import RESULT_MARK

    print(f"pneumo bench: measuring {label} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", module], input=json.dumps(spec),
                          capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            if result["status"] != "ok":
                print(f"pneumo bench: {label}: {result['status']}: {result['reason']}", file=sys.stderr)
            return result
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"pneumo bench: {label}: failed (exit {done.returncode}): {last}", file=sys.stderr)
    return {"status": "failed", "reason": f"worker exited with {done.returncode}: {last}"}


def new_row(kind: str, **fields) -> dict:
    from .report import ROW_FIELDS

    row = dict.fromkeys(ROW_FIELDS)
    row.update(kind=kind, **fields)
    return row


def speedup(row: dict, baseline: dict) -> dict | None:
    """How many times faster than the notebook baseline (its p50 over this row's p50)."""
    if row.get("status") != "ok" or baseline.get("status") != "ok":
        return None
    return {key: round(baseline[key]["p50"] / row[key]["p50"], 2) for key in ("end_to_end_ms", "invoke_ms")}


def resolve_models(given: list[str] | None) -> list[Path]:
    from ..classifier import resolve_model, shipped_models

    shipped = shipped_models()
    if not given:
        if not shipped:
            raise PneumoError("no shipped models are installed; name models with --models", code="no_model")
        return shipped
    return [resolve_model(item) for item in given]


def resolve_films(given: list[str] | None, side: int) -> tuple[list[Path], list[dict]]:
    """The films to time, and those skipped with the reason.

    Only raster files: the notebook baseline opens films with Pillow, and every
    row must score the same films (DICOM files are listed as skipped; files that
    are not films at all are ignored). Films the quality gate refuses are
    skipped too, since the device would not score them either.
    """
    from ..errors import FilmError
    from ..films import read_film, walk_films
    from ..films.folders import RASTER_SUFFIXES, may_be_film
    from ..quality import check_film

    if not given:
        if not DEFAULT_FILMS.is_dir():
            raise PneumoError("needs --films DIR: a folder of real films (PNG or JPEG) to time end to end",
                              code="no_films")
        given = [str(DEFAULT_FILMS)]
    candidates = []
    for item in given:
        path = Path(item)
        if path.is_dir():
            candidates += walk_films(path)
        elif path.is_file():
            candidates.append(path)
        else:
            raise PneumoError(f"--films: no such file or folder: {path}", code="no_films")
    films, skipped = [], []
    for path in candidates:
        if not may_be_film(path):
            continue  # not a film at all (a README, a checksum list)
        if path.suffix.lower() not in RASTER_SUFFIXES:
            kind = path.suffix or "extensionless"
            skipped.append({"film": path.name, "reason": f"{kind} films are not timed: the notebook baseline opens "
                                                        "films with Pillow, and every row scores the same films"})
            continue
        try:
            check_film(read_film(path, min_size=side), side)
        except FilmError as exc:
            skipped.append({"film": path.name, "reason": str(exc)})
            continue
        films.append(path)
    if not films:
        raise PneumoError(f"no usable films in {', '.join(given)} ({len(skipped)} skipped)", code="no_films")
    return films, skipped


def parse_list(text: str, option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise PneumoError(f"{option} is empty", code="bad_option")
    return items


def parse_threads(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise PneumoError(f"--threads: {text!r} is not a positive whole number", code="bad_option")
    return int(text)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, with every setting spelled out."""
    parts = ["pneumo", "bench"]
    for option in ("models", "backends", "threads", "films", "runs", "warmup", "keras_model", "runtime",
                   "device", "json", "markdown", "plot"):
        value = getattr(args, option)
        if value is None:
            continue
        parts.append("--" + option.replace("_", "-"))
        parts += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return shlex.join(parts)


def load_results(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PneumoError(f"--compare: no such file: {path}", code="not_found") from None
    except json.JSONDecodeError as exc:
        raise PneumoError(f"--compare: {path} is not JSON: {exc}", code="bad_json") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise PneumoError(f"--compare: {path} is not a pneumo bench result ({SCHEMA})", code="bad_json")
    data["source"] = Path(path).name
    return data
