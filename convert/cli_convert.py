"""``pneumo convert``: arguments here (light); the work is in :mod:`.pipeline` (TensorFlow)."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "convert a trained run to float32/int8 TFLite with cards"
EXTRA = "train"  # the install extra it needs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_OR_RUN_DIR", help="a run folder from pneumo train, or its model.keras")
    parser.add_argument("--calib", required=True, help="labelled films to calibrate int8 on (training films)")
    parser.add_argument("--out", required=True, help="folder for the .tflite files and their cards")
    parser.add_argument("--name", default=None, help="file name stem (default pneumo_<arch>)")
    parser.add_argument("--float16", action="store_true", help="also write a float16 variant")
    parser.add_argument("--calib-count", type=int, default=400, help="calibration films, half per class (>= 300)")
    parser.add_argument("--edgetpu-runtime", type=int, default=None, metavar="N",
                        help="edgetpu_compiler -m N, for an older libedgetpu runtime")
    parser.add_argument("--max-auc-drop", type=float, default=0.01,
                        help="fail when int8 validation AUC is more than this below float32")


def run(args: argparse.Namespace) -> int:
    from ..edge.cli import config_from_args
    from .config import ConvertConfig
    from .pipeline import convert_run

    report = convert_run(config_from_args(ConvertConfig, args))
    p = report["parity"]
    print(f"parity on {p['films']} validation films: float32 AUC {p['float32_auc']:.4f}, int8 AUC "
          f"{p['int8_auc']:.4f}, decisions agree {p['decision_agreement']:.1%}, largest probability "
          f"difference {p['max_probability_difference']:.4f}")
    pre = report["edgetpu_preflight"]
    print(f"Edge TPU pre-flight: {'pass' if pre['ok'] else 'FAIL'}"
          + "".join(f"\n  - {problem}" for problem in pre["problems"]))
    print(f"Edge TPU compiler: {json.dumps(report['edgetpu_compile'])}")
    if p["auc_drop"] > args.max_auc_drop:
        print(f"int8 AUC is {p['auc_drop']:.4f} below float32 (limit {args.max_auc_drop})", file=sys.stderr)
        return 1
    return 0 if pre["ok"] else 1
