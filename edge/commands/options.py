"""Command-line options shared by the commands that load a model."""

from __future__ import annotations

import argparse

from ..backends import BACKENDS
from ..classifier import Options
from ..runtime import RUNTIME_ENV, RUNTIMES
from ..site import SITE_ENV, site_path


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (``--threads -1`` is a one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser, site: bool = True) -> None:
    group = parser.add_argument_group("model and accelerator")
    group.add_argument("--model", default=None,
                       help="a .tflite model with its .card.json, or a shipped model's name such as "
                            "pneumo_shallow_int8 (default: the shipped int8 EfficientNet-Lite0)")
    group.add_argument("--backend", choices=sorted(BACKENDS), default="cpu")
    group.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all cores)")
    group.add_argument("--device", default=None, help="Edge TPU device, e.g. usb:0 or pci:0")
    group.add_argument("--runtime", choices=RUNTIMES, default=None,
                       help=f"force an interpreter runtime (also the {RUNTIME_ENV} environment variable)")
    group.add_argument("--fallback", choices=["cpu"], default=None,
                       help="use the CPU when the chosen backend is unavailable (otherwise it is an error)")
    group.add_argument("--kernels", choices=["default", "reference"], default="default",
                       help="CPU int8 kernels: the runtime's fastest (default), or TFLite's reference kernels, "
                            "bit-identical on every CPU and many times slower")
    group.add_argument("--no-quality-gate", dest="quality_gate", action="store_false",
                       help="score films that the quality gate would refuse")
    group.add_argument("--allow-out-of-scope", action="store_true",
                       help="score films the out-of-scope check refuses (adult, inverted, rotated, not a chest), "
                            "marked as out of scope")
    if site:
        group.add_argument("--site", metavar="FILE", default=None,
                           help="a site file from pneumo calibrate: decide with this clinic's threshold instead "
                                f"of the model card's (also the {SITE_ENV} environment variable)")
    group.add_argument("--verbose", action="store_true",
                       help="let the interpreter runtime's and Pillow's own messages through to the terminal")


def options_from(args: argparse.Namespace) -> Options:
    return Options(model=args.model, backend=args.backend, threads=args.threads, device=args.device,
                   runtime=args.runtime, fallback=args.fallback, quality_gate=args.quality_gate,
                   kernels=args.kernels, site=site_path(args), verbose=args.verbose,
                   allow_out_of_scope=args.allow_out_of_scope)
