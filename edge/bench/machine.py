"""What machine a benchmark ran on: CPU, board, OS, Python, interpreter runtime, Edge TPU.

Everything here is read from the running system (``/proc``, ``/sys``, ``platform``,
the libedgetpu C API, ``vcgencmd`` on a Raspberry Pi); a figure that cannot be
read is ``None``, never a guess. ``pneumo bench`` reads it after measuring, so the
temperature and throttling flags say how the board ended the run.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
from pathlib import Path

from ..backends import edgetpu
from ..versions import dist_version

# ARM "CPU part" codes seen on Raspberry Pi boards (/proc/cpuinfo has no model name there).
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76", "0xb76": "ARM1176"}

# USB ids of the Coral USB Accelerator: before its firmware is loaded, and after.
CORAL_USB_IDS = {("1a6e", "089a"): "Coral USB Accelerator (firmware not yet loaded)",
                 ("18d1", "9302"): "Coral USB Accelerator"}


def machine_info(runtime=None) -> dict:
    """The machine, OS and software stack, as a flat JSON-ready dict."""
    tpu = edgetpu_info()
    return {
        "hostname": platform.node(),
        "board": _read_text("/proc/device-tree/model"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_max_mhz": _cpu_max_mhz(),
        "cpu_governor": _read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "soc_temp_c": _soc_temp_c(),
        "throttled": _throttled(),
        "memory_mib": _memory_mib(),
        "architecture": platform.machine(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": dist_version("numpy"),
        "pillow": dist_version("Pillow"),
        "runtime": runtime.name if runtime else None,
        "runtime_version": runtime.version if runtime else None,
        **tpu,
    }


def machine_label(machine: dict) -> str:
    """A short name for a machine in tables: its board, else its CPU model."""
    return machine.get("board") or machine.get("cpu_model") or machine.get("hostname") or "unknown machine"


def cpu_model() -> str | None:
    fields = _cpuinfo()
    if "model name" in fields:
        return fields["model name"]
    part = fields.get("CPU part")
    if part:
        return ARM_PARTS.get(part.lower(), f"ARM part {part}")
    return fields.get("Hardware") or platform.processor() or None


def edgetpu_info() -> dict:
    """libedgetpu's version and the Edge TPU devices it (or the USB bus) can see."""
    name = edgetpu.library_name(edgetpu.Config())
    info = {"libedgetpu": None, "libedgetpu_package": _dpkg_versions("libedgetpu1-*"),
            "edgetpu_devices": _usb_corals() + [f"pci:{p.name}" for p in sorted(Path("/dev").glob("apex_*"))]}
    try:
        library = ctypes.CDLL(name)
    except OSError:
        return info
    info["libedgetpu"] = _call_version(library)
    listed = _list_devices(library)
    if listed is not None:
        info["edgetpu_devices"] = listed
    return info


def _call_version(library) -> str | None:
    try:
        function = library.edgetpu_version
    except AttributeError:
        return None
    function.restype = ctypes.c_char_p
    value = function()
    return value.decode(errors="replace") if value else None


class _Device(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]


def _list_devices(library) -> list[str] | None:
    """``edgetpu_list_devices`` from edgetpu_c.h: type 0 is PCIe, 1 is USB."""
    try:
        list_devices, free_devices = library.edgetpu_list_devices, library.edgetpu_free_devices
    except AttributeError:
        return None
    list_devices.restype = ctypes.POINTER(_Device)
    list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    count = ctypes.c_size_t(0)
    devices = list_devices(ctypes.byref(count))
    found = []
    for i in range(count.value):
        kind = {0: "pci", 1: "usb"}.get(devices[i].type, "unknown")
        found.append(f"{kind}:{(devices[i].path or b'').decode(errors='replace')}")
    if devices:
        free_devices(devices)
    return found


def _usb_corals() -> list[str]:
    found = []
    for device in sorted(Path("/sys/bus/usb/devices").glob("*")):
        ids = (_read_text(device / "idVendor"), _read_text(device / "idProduct"))
        if ids in CORAL_USB_IDS:
            found.append(f"usb:{device.name} {CORAL_USB_IDS[ids]}")
    return found


def _cpuinfo() -> dict:
    fields: dict[str, str] = {}
    text = _read_text("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def _cpu_max_mhz() -> float | None:
    khz = _read_text("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    return round(int(khz) / 1000, 1) if khz and khz.isdigit() else None


def _soc_temp_c() -> float | None:
    millidegrees = _read_text("/sys/class/thermal/thermal_zone0/temp")
    return round(int(millidegrees) / 1000, 1) if millidegrees and millidegrees.lstrip("-").isdigit() else None


def _throttled() -> str | None:
    """Raspberry Pi firmware's throttling flags (``vcgencmd get_throttled``); 0x0 means never throttled."""
    if not shutil.which("vcgencmd"):
        return None
    result = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True)
    return result.stdout.strip().partition("=")[2] or None


def _memory_mib() -> int | None:
    for line in (_read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def _os_name() -> str:
    for line in (_read_text("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def _dpkg_versions(pattern: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n", pattern],
                            capture_output=True, text=True)
    installed = [" ".join(line.split()[:2]) for line in result.stdout.splitlines()
                 if line.endswith("installed") and "not-installed" not in line]
    return ", ".join(installed) or None


def _read_text(path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip().strip("\x00") or None
    except OSError:
        return None
