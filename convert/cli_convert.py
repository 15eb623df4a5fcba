"""``pneumo convert``: arguments here (light); the work is in :mod:`.pipeline` (TensorFlow)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "convert a trained run to float32/int8 TFLite with cards"
EXTRA = "train"  # the install extra it needs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_OR_RUN_DIR", help="a run folder from pneumo train, or its model.keras")
    parser.add_argument("--calib", required=True, help="labelled films to calibrate int8 on (training films)")
    parser.add_argument("--out", required=True, help="folder for the .tflite files and their cards")
    parser.add_argument("--name", default=None, help="file name stem (default pneumo_<arch>)")
    parser.add_argument("--float16", action="store_true", help="also write a float16 variant")
    parser.add_argument("--calib-count", type=int, default=400, help="calibration films, half per class (>= 300)")
    parser.add_argument("--calib-augment", action="store_true",
                        help="calibrate int8 on each film and one acquisition variant of it (gamma, contrast, noise)")
    parser.add_argument("--edgetpu-runtime", type=int, default=None, metavar="N",
                        help="edgetpu_compiler -m N, for an older libedgetpu runtime")
    parser.add_argument("--soup", nargs="+", default=None, metavar="RUN_DIR",
                        help="average these runs' weights with MODEL's (a model soup: seeds of one recipe "
                             "sharing its validation split) and convert the result")
    parser.add_argument("--check", default=None, metavar="DIR",
                        help="labelled films from outside the training split (e.g. chest_xray/test_dev): scored "
                             "with every variant for the parity report and the card; never fit or tuned on")
    parser.add_argument("--adult-films", metavar="DIR", default=None,
                        help="adult chest films (PNG) to fit each converted file's out-of-scope check with, e.g. "
                             "../shared/data/fullres (--check films measure it); without it, no scope check")
    parser.add_argument("--scope-refusal", type=float, default=0.005, metavar="SHARE",
                        help="share of validation films each part of the out-of-scope check (distance, "
                             "discriminant) may refuse; sets its cut-offs (default 0.005)")
    parser.add_argument("--max-auc-drop", type=float, default=0.005,
                        help="fail when int8 AUC is more than this below float32 on validation or --check")


def run(args: argparse.Namespace) -> int:
    from ..edge.cli import config_from_args
    from ..train.scope_sets import format_rates
    from .config import ConvertConfig
    from .pipeline import convert_run

    report = convert_run(config_from_args(ConvertConfig, args))
    splits = {"validation": report["parity"]}
    if "check_parity" in report:
        splits[Path(report["check_parity"]["data"]).name] = report["check_parity"]
    for split, p in splits.items():
        print(f"parity on {p['films']} {split} films: float32 AUC {p['float32_auc']:.4f}, int8 AUC "
              f"{p['int8_auc']:.4f}, decisions agree {p['decision_agreement']:.1%}, largest probability "
              f"difference {p['max_probability_difference']:.4f}")
    for variant, scope in (report["scope"] or {}).items():
        print(f"out-of-scope check ({variant} model), refusal rates:\n{format_rates(scope['refusal'])}")
    pre = report["edgetpu_preflight"]
    print(f"Edge TPU pre-flight: {'pass' if pre['ok'] else 'FAIL'}"
          + "".join(f"\n  - {problem}" for problem in pre["problems"]))
    print(f"Edge TPU compiler: {json.dumps(report['edgetpu_compile'])}")
    failed = [split for split, p in splits.items() if p["auc_drop"] > args.max_auc_drop]
    for split in failed:
        print(f"int8 AUC on {split} is {splits[split]['auc_drop']:.4f} below float32 (limit {args.max_auc_drop})",
              file=sys.stderr)
    if failed:
        return 1
    return 0 if pre["ok"] else 1
