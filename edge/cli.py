"""The ``pneumo`` command line: one parser, with subcommands registered as entry points.

Subcommands are the ``pneumo.commands`` entry points of the installed distribution
(setup.cfg), so the device core names none of the workstation's modules: it loads
what is installed. Each command module has ``HELP``, optionally ``EXTRA`` (the
install extra it needs), ``add_arguments(parser)`` and ``run(args)``, and imports
nothing heavy at module level (TensorFlow, matplotlib, pydicom and Flask load inside
``run``), so ``--help`` works everywhere and a missing extra is one line naming it,
not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from importlib import metadata

from .errors import PneumoError

DISTRIBUTION = "pneumo-edge"
GROUP = "pneumo.commands"
EXTRA_MODULES = {"tensorflow", "keras", "matplotlib", "pydicom"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pneumo", description="Pneumonia screen for chest X-ray films, offline.")
    parser.add_argument("--version", action="version", version=f"pneumo-edge {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in commands().items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        sub.set_defaults(_module=module)
        module.add_arguments(sub)
    return parser


def commands() -> dict:
    """Subcommand name -> its module, in the order setup.cfg lists them."""
    entry_points = metadata.distribution(DISTRIBUTION).entry_points
    return {ep.name: ep.load() for ep in entry_points if ep.group == GROUP}


def config_from_args(config_class, args: argparse.Namespace):
    """A command's config dataclass, from the parsed arguments of the same names."""
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)})


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if not getattr(args, "verbose", False):
        from .quiet import silence_library_warnings

        silence_library_warnings()
    try:
        return int(args._module.run(args) or 0)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in EXTRA_MODULES:
            extra = getattr(args._module, "EXTRA", None) or ("dicom" if exc.name.startswith("pydicom") else "train")
            print(f"pneumo {args.command}: needs {exc.name.split('.')[0]}; install it with "
                  f"pip install 'pneumo-edge[{extra}]'", file=sys.stderr)
            return 3
        raise
    except PneumoError as exc:
        print(f"pneumo {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the disk or the file system, not the program: a folder not writable, a full disk
        print(f"pneumo {args.command}: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pneumo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
