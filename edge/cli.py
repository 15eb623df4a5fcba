"""The ``pneumo`` command line: one parser, subcommands registered from their modules.

Each subcommand module has ``add_arguments(parser)`` and ``run(args)``, and imports
nothing heavy at module level (TensorFlow, matplotlib and pydicom load inside
``run``), so ``--help`` works everywhere and a missing extra is one line naming
it, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import PneumoError

# subcommand -> (module, one-line help, extra it needs or None)
COMMANDS = {
    "train": ("pneumo_edge.train.cli_train", "train a classifier on labelled films", "train"),
    "evaluate": ("pneumo_edge.train.cli_evaluate", "evaluate a Keras or .tflite model on labelled films", None),
    "convert": ("pneumo_edge.convert.cli_convert", "convert a trained run to float32/int8 TFLite with cards", "train"),
    "check-edgetpu": ("pneumo_edge.convert.preflight", "check a .tflite model against the Edge TPU's requirements", None),
    "predict": ("pneumo_edge.edge.predict", "score one or more films", None),
    "score": ("pneumo_edge.edge.score", "score a folder of films into a CSV or JSONL, resumable", None),
    "serve": ("pneumo_edge.edge.web.server", "serve the clinic web page", None),
    "bench": ("pneumo_edge.edge.bench", "measure latency, memory and accuracy per model and backend", None),
    "capture": ("pneumo_edge.edge.capture", "capture a film with the Raspberry Pi camera and score it", None),
}

EXTRA_MODULES = {"tensorflow", "keras", "matplotlib", "pydicom"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pneumo", description="Pneumonia screen for chest X-ray films, offline.")
    parser.add_argument("--version", action="version", version=f"pneumo-edge {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text, extra) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module, _extra=extra)
        importlib.import_module(module).add_arguments(sub)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in EXTRA_MODULES:
            extra = args._extra or ("dicom" if exc.name.startswith("pydicom") else "train")
            print(f"pneumo {args.command}: needs {exc.name.split('.')[0]}; install it with "
                  f"pip install 'pneumo-edge[{extra}]'", file=sys.stderr)
            return 3
        raise
    except PneumoError as exc:
        print(f"pneumo {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pneumo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
