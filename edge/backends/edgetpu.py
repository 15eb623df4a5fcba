"""The Coral Edge TPU backend: the libedgetpu delegate.

The model must be compiled by ``edgetpu_compiler`` (``*_edgetpu.tflite``); an
uncompiled int8 model would run entirely on the CPU. A missing library or device
is an error with a hint, never a silent fall-back (that is ``--fallback cpu``).
"""

from __future__ import annotations

import ctypes
import platform
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendUnavailable

COMPILED_SUFFIX = "_edgetpu.tflite"  # what edgetpu_compiler names its output
LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


@dataclass
class Config:
    device: str | None = None  # "usb", "usb:0", "pci:0" or None for the first found
    library: str | None = None  # override the platform's libedgetpu name


def config_from(options) -> Config:
    return Config(device=options.device)


def model_file(path: Path) -> Path:
    """The compiled ``<stem>_edgetpu.tflite`` beside ``path`` when there is one, else ``path``."""
    if path.name.endswith(COMPILED_SUFFIX):
        return path
    compiled = path.with_name(path.stem + COMPILED_SUFFIX)
    return compiled if compiled.exists() else path


def library_name(config: Config) -> str:
    return config.library or LIBRARY.get(platform.system(), "libedgetpu.so.1")


def probe(runtime, config: Config) -> str | None:
    """Why the Edge TPU cannot be used here, or None when its library loads."""
    name = library_name(config)
    try:
        ctypes.CDLL(name)
    except OSError:
        return (f"{name} is not installed: install libedgetpu1-std from Coral's apt repository "
                "(or a community build matching your interpreter runtime)")
    return None


def make_interpreter(model_path: str, config: Config, runtime):
    reason = probe(runtime, config)
    if reason:
        raise BackendUnavailable(f"Edge TPU unavailable: {reason}", hint="use --backend cpu, or --fallback cpu")
    if not str(model_path).endswith(COMPILED_SUFFIX):
        raise BackendUnavailable(
            f"{model_path} is not compiled for the Edge TPU",
            hint="run pneumo convert where edgetpu_compiler is installed, and use the *_edgetpu.tflite it writes")
    options = {"device": config.device} if config.device else {}
    try:
        delegate = runtime.load_delegate(library_name(config), options)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendUnavailable(
            f"Edge TPU delegate failed to load ({exc})",
            hint="is the Coral plugged in (lsusb shows 1a6e:089a or 18d1:9302; PCIe: /dev/apex_0)? "
                 "is your user in the plugdev/apex group? does libedgetpu match the "
                 f"{runtime.name} {runtime.version} runtime?") from None
    return runtime.interpreter(model_path=str(model_path), experimental_delegates=[delegate])
