"""glibc's allocator, set up so the server's memory is bounded and given back.

glibc gives each thread that allocates under contention its own arena (up to
8 per core) and keeps every arena's high-water mark after the memory is freed;
it also raises its mmap threshold after each large free, so the next film's
buffers come from an arena and stay there. A server whose threads take turns
decoding films then grows to (threads x largest film) and never shrinks.
:func:`bound_allocator` caps the arenas and fixes the mmap threshold, so every
buffer of a decoded film is its own mapping, returned to the system when freed;
:func:`give_back` trims what is left after a large film. Elsewhere than glibc
(musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: Arenas allowed: the main one and one for the decode and scoring threads.
ARENAS = 2
#: Allocations this large or larger are mappings of their own, unmapped when freed.
MMAP_THRESHOLD = 256 * 1024

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_M_ARENA_MAX = -8


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def bound_allocator() -> bool:
    """Cap glibc's arenas and fix its mmap threshold; True when both took effect.

    Call before any thread starts: an arena made before the call is kept. The
    environment variables are set too, so processes started from here inherit it.
    """
    os.environ.setdefault("MALLOC_ARENA_MAX", str(ARENAS))
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, ARENAS)) and bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def give_back() -> None:
    """Return the free memory at the top of glibc's heaps to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def rss_bytes(pid: int | str = "self") -> tuple[int, int]:
    """(current, peak) resident set size of a process, from /proc (Linux)."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]
