"""Timing one model on one backend, inside a process of its own.

The parent (``pneumo bench``) starts a fresh Python for every row, so the load
time includes importing the interpreter runtime, the first inference pays for
whatever the runtime defers to it (XNNPACK weight packing, delegate set-up), and
the peak resident memory is this row's alone. The same protocol times the TFLite
rows and the notebook baseline (:mod:`pneumo_edge.train.notebook_baseline`).
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Callable

import numpy as np

STAGES = ("decode", "preprocess", "invoke")


def summarize(samples_ms: list[float]) -> dict:
    """Percentiles (linear interpolation; p25 and p75 bound the interquartile range), mean and range
    of a list of milliseconds."""
    values = np.asarray(samples_ms, dtype=np.float64)
    p25, p50, p75, p90, p99 = np.percentile(values, [25, 50, 75, 90, 99])
    return {"p25": round(float(p25), 3), "p50": round(float(p50), 3), "p75": round(float(p75), 3),
            "p90": round(float(p90), 3), "p99": round(float(p99), 3),
            "mean": round(float(values.mean()), 3), "min": round(float(values.min()), 3),
            "max": round(float(values.max()), 3), "n": int(values.size)}


def peak_rss_mib() -> float:
    """This process's peak resident set size (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def cycle(items: list, count: int) -> list:
    return [items[i % len(items)] for i in range(count)]


def time_pipeline(predict: Callable[[str], dict], films: list[str], runs: int, *, warmup: int) -> dict:
    """First film, ``warmup`` films untimed, then ``runs`` films timed end to end.

    ``predict(path)`` scores one film and returns its stage timings in ms
    (``decode``, ``preprocess``, ``invoke``). Throughput is films scored one
    after another per second of the timed loop.
    """
    started = time.perf_counter()
    first = predict(films[0])
    first_end_to_end = (time.perf_counter() - started) * 1000
    for film in cycle(films, warmup):
        predict(film)
    end_to_end, stages = [], {stage: [] for stage in STAGES}
    loop_started = time.perf_counter()
    for film in cycle(films, runs):
        started = time.perf_counter()
        timings = predict(film)
        end_to_end.append((time.perf_counter() - started) * 1000)
        for stage in STAGES:
            stages[stage].append(timings[stage])
    loop_seconds = time.perf_counter() - loop_started
    return {"first_inference_ms": round(first["invoke"], 3), "first_end_to_end_ms": round(first_end_to_end, 3),
            "end_to_end_ms": summarize(end_to_end),
            "stages_ms_p50": {stage: round(float(np.median(values)), 3) for stage, values in stages.items()},
            "throughput_fps": round(runs / loop_seconds, 3)}


def time_invoke(set_input: Callable[[np.ndarray], None], invoke: Callable[[], object],
                inputs: list[np.ndarray], *, runs: int, warmup: int) -> dict:
    """The model call alone: ``set_input`` untimed, then ``invoke()`` timed, after ``warmup`` calls."""
    samples = []
    for i, tensor in enumerate(cycle(inputs, warmup + runs)):
        set_input(tensor)
        started = time.perf_counter()
        invoke()
        if i >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
    return summarize(samples)


def measure_tflite(spec: dict) -> dict:
    """Load a :class:`Classifier`, then time it end to end on real films and invoke alone.

    End to end is :meth:`Classifier.predict` on the film's path: read the file,
    decode, quality gate, preprocess, invoke, out-of-scope check, postprocess. A film
    the scope check refuses costs the same steps, so it is timed, not refused
    (the shared full-size films are adults'). Invoke is
    ``interpreter.invoke()`` alone on tensors prepared beforehand.
    """
    from .. import adapters
    from ..classifier import Classifier, Options
    from ..films import read_film
    from ..preprocess import to_tensor

    films, runs, warmup = spec["films"], spec["runs"], spec["warmup"]
    classifier = Classifier(Options(model=spec["model"], backend=spec["backend"], threads=spec.get("threads"),
                                    device=spec.get("device"), runtime=spec.get("runtime"),
                                    allow_out_of_scope=True))
    pipeline = time_pipeline(lambda film: classifier.predict(film).timings_ms, films, runs, warmup=warmup)
    tensors = [to_tensor(read_film(film, min_size=classifier.spec.size).image, classifier.spec) for film in films]
    invoke = time_invoke(lambda tensor: adapters.set_input(classifier.interpreter, tensor),
                         classifier.interpreter.invoke, tensors, runs=runs, warmup=warmup)
    # The Edge TPU backend loads the compiled *_edgetpu.tflite sibling: report what actually ran.
    return {"status": "ok", "reason": None, "backend": classifier.backend, "model_path": str(classifier.model_path),
            "model_id": classifier.id, "size_bytes": classifier.model_path.stat().st_size,
            "runtime": f"{classifier.runtime.name} {classifier.runtime.version}",
            "load_ms": round(classifier.load_ms, 3), **pipeline, "invoke_ms": invoke,
            "peak_rss_mib": peak_rss_mib()}
