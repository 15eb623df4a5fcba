"""The notebook baseline: a Keras float model scoring one film at a time, as tutorials do.

Open with Pillow, ``convert("RGB")``, resize to the model's input (Pillow's default
filter), to a float array, keep one channel if the model takes grey input, scale
as the model was trained, and ``model.predict(x[None], verbose=0)``.

It lives with the workstation code because it needs TensorFlow: ``pneumo bench``
(in the device package, which never imports TensorFlow) runs it as its own process,
``python -m pneumo_edge.train.notebook_baseline < spec.json``, with the same
protocol as :mod:`pneumo_edge.edge.bench.worker`.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from PIL import Image

from ..edge.bench.measure import peak_rss_mib, time_invoke, time_pipeline
from ..edge.bench.worker import answer
from ..edge.preprocess import SCALINGS


def measure_baseline(spec: dict) -> dict:
    """The same protocol as :func:`pneumo_edge.edge.bench.measure.measure_tflite`, for the Keras pipeline.

    The load time includes importing TensorFlow, as a notebook's first cell pays it.
    """
    films, runs, warmup = spec["films"], spec["runs"], spec["warmup"]
    started = time.perf_counter()
    import keras
    import tensorflow as tf

    model = keras.models.load_model(spec["keras_model"], compile=False)
    load_ms = (time.perf_counter() - started) * 1000
    _, height, width, channels = model.input_shape
    multiplier, offset = SCALINGS[spec["scaling"]]

    def prepare(path: str) -> tuple[np.ndarray, float, float]:
        t0 = time.perf_counter()
        image = Image.open(path).convert("RGB")
        t1 = time.perf_counter()
        x = np.asarray(image.resize((width, height)), dtype=np.float32)
        if channels == 1:
            x = x[..., :1]
        x = x * multiplier + offset
        return x, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000

    def probability(x: np.ndarray) -> float:
        output = model.predict(x[None], verbose=0)
        return float(np.asarray(output[0] if isinstance(output, (list, tuple)) else output).reshape(-1)[0])

    def predict(path: str) -> dict:
        x, decode_ms, preprocess_ms = prepare(path)
        t0 = time.perf_counter()
        label = "PNEUMONIA" if probability(x) >= spec["threshold"] else "NORMAL"
        invoke_ms = (time.perf_counter() - t0) * 1000
        return {"label": label, "decode": decode_ms, "preprocess": preprocess_ms, "invoke": invoke_ms}

    pipeline = time_pipeline(predict, films, runs, warmup=warmup)
    current: dict[str, np.ndarray] = {}
    invoke = time_invoke(lambda x: current.update(x=x), lambda: probability(current["x"]),
                         [prepare(film)[0] for film in films], runs=runs, warmup=warmup)
    return {"status": "ok", "reason": None, "backend": "keras",
            "runtime": f"tensorflow {tf.__version__} (keras {keras.__version__})",
            "load_ms": round(load_ms, 3), **pipeline, "invoke_ms": invoke, "peak_rss_mib": peak_rss_mib()}


def main() -> int:
    return answer(measure_baseline)


if __name__ == "__main__":
    sys.exit(main())
