"""``pneumo train``: arguments here (light); the work is in :mod:`.fit` (TensorFlow)."""

from __future__ import annotations

import argparse

HELP = "train a classifier on labelled films"
EXTRA = "train"  # the install extra it needs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="data folder (ROOT/<split>/<CLASS>/* or ROOT/<CLASS>/*) or a path,label CSV")
    parser.add_argument("--split", default=None, help="split folder to train on (default: 'train' if present)")
    parser.add_argument("--arch", choices=["shallow", "mobilenet", "efficientnet_lite0"], default="mobilenet")
    parser.add_argument("--out", required=True, help="run folder to write the model, history, plots and metrics")
    parser.add_argument("--size", type=int, default=None, help="input side in px (shallow 64, mobilenet 224)")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=None,
                        help="1 grey (default from scratch) or 3 (needed for ImageNet weights)")
    parser.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width multiplier")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default per arch)")
    parser.add_argument("--weights", default=None,
                        help="none, imagenet or a weights file (default: imagenet for efficientnet_lite0, read "
                             "offline from the [train] extra's weights package; none otherwise. MobileNet's "
                             "imagenet weights need internet)")
    parser.add_argument("--freeze-blocks", type=int, default=10,
                        help="efficientnet_lite0: keep the stem and blocks 0..N frozen at ImageNet (-1: none)")
    parser.add_argument("--augment", choices=["none", "light", "acquisition"], default="light",
                        help="light: rotation, shift, zoom, brightness, contrast; acquisition: also gamma, blur, "
                             "noise and JPEG re-compression, as films from other scanners differ")
    parser.add_argument("--normalise", choices=["none", "percentile"], default="none",
                        help="per-film intensity normalisation in the shared preprocessing (the device does the same)")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--average-last", type=int, default=0, metavar="K",
                        help="final weights = mean of the last K epochs' weights (0: best epoch by val AUC)")
    parser.add_argument("--watch", default=None, metavar="DIR",
                        help="a labelled folder scored after every epoch and logged as watch_auc "
                             "(reported only: never used to choose weights or threshold)")
    parser.add_argument("--keep-epochs", action="store_true", help="save every epoch's weights in RUN/epochs/")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="share of patients for validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=None,
                        help="seed of the validation split (default: --seed); runs that share it can be souped")
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
