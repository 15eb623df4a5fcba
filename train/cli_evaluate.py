"""``pneumo evaluate MODEL DATA``: arguments here (light); the work is in :mod:`.evaluate`.

A ``.tflite`` model is evaluated through the edge runtime without TensorFlow; only
the plots need matplotlib (the [train] extra).
"""

from __future__ import annotations

import argparse

HELP = "evaluate a Keras or .tflite model on labelled films"
EXTRA = "train"  # the install extra it needs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="a .tflite model (with its card), a model.keras, or a run folder")
    parser.add_argument("data", metavar="DATA", help="labelled films: ROOT/<split>/<CLASS>/*, ROOT/<CLASS>/* or a CSV")
    parser.add_argument("--split", default=None, help="split folder inside DATA (e.g. test)")
    parser.add_argument("--val-of", metavar="RUN_DIR", default=None,
                        help="evaluate only on the validation patients of this training run")
    parser.add_argument("--out", default=None, help="folder for metrics.json and the plots (default: beside the model)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="operating threshold (default: the model card's or run's)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUC interval")
    parser.add_argument("--runtime", default=None, help="interpreter runtime for .tflite models")
    parser.add_argument("--adult-films", metavar="DIR", default=None,
                        help="adult chest films (PNG) to report the out-of-scope check's refusal on")


def run(args: argparse.Namespace) -> int:
    from ..edge.cli import config_from_args
    from .config import EvaluateConfig
    from .evaluate import evaluate

    evaluate(config_from_args(EvaluateConfig, args))
    return 0
