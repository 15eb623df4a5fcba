"""``pneumo train``: arguments here (light); the work is in :mod:`.fit` (TensorFlow)."""

from __future__ import annotations

import argparse

HELP = "train a classifier on labelled films"
EXTRA = "train"  # the install extra it needs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="data folder (ROOT/<split>/<CLASS>/* or ROOT/<CLASS>/*) or a path,label CSV")
    parser.add_argument("--split", default=None, help="split folder to train on (default: 'train' if present)")
    parser.add_argument("--arch", choices=["shallow", "mobilenet"], default="mobilenet")
    parser.add_argument("--out", required=True, help="run folder to write the model, history, plots and metrics")
    parser.add_argument("--size", type=int, default=None, help="input side in px (shallow 64, mobilenet 224)")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=None,
                        help="1 grey (default from scratch) or 3 (needed for ImageNet weights)")
    parser.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width multiplier")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default per arch)")
    parser.add_argument("--weights", default="none", help="none, imagenet (needs internet) or a weights file")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="share of patients for validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=8, help="early stopping: epochs without a better val AUC")
    parser.add_argument("--target-sensitivity", type=float, default=0.95,
                        help="the operating threshold is set on validation for this sensitivity")
    parser.add_argument("--limit", type=int, default=None,
                        help="use at most N films per class (quick runs and tests)")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding films")


def run(args: argparse.Namespace) -> int:
    from ..edge.cli import config_from_args
    from .config import TrainConfig
    from .fit import train

    train(config_from_args(TrainConfig, args))
    return 0
