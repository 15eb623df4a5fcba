"""Worker processes for ``pneumo score --workers N``, where a dead worker costs one row.

``multiprocessing.Pool`` waits forever for the result of a worker the kernel
killed (the out-of-memory killer on a Pi), and ``ProcessPoolExecutor`` fails every
pending film with it. Here each worker has its own pipe and one film at a time,
so the parent always knows which film a dead worker held: that film gets a
``worker_died`` row, a new worker takes the dead one's place, and the run goes on.
The parent loads no model: a worker that cannot load it says why, and the run stops
with that error.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Callable

from ..errors import PneumoError

#: The default number of workers is one per usable core, at most this many...
MAX_DEFAULT_WORKERS = 4
#: ...and at most one per this much available memory: a worker holds an interpreter (about
#: 66 MiB with the shipped model, benchmarks/score_memory.md) and the film it is decoding.
MIB_PER_WORKER = 256


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container or taskset limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_mib() -> int | None:
    """MemAvailable from /proc/meminfo, in MiB; None where there is no such file."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def default_workers() -> int:
    """One worker per usable core, at most MAX_DEFAULT_WORKERS and one per MIB_PER_WORKER available."""
    memory = available_mib()
    by_memory = MAX_DEFAULT_WORKERS if memory is None else memory // MIB_PER_WORKER
    return max(1, min(usable_cores(), MAX_DEFAULT_WORKERS, by_memory))


#: Workers that die before they are ready (while loading the model) in a row
#: before the run stops: that is no film's fault, and would repeat for ever.
MAX_STARTUP_DEATHS = 3


@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: object
    film: str | None = None
    ready: bool = False


def _serve(conn, make_context: Callable, describe: Callable, score: Callable) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        context = make_context()
    except PneumoError as exc:  # a model, runtime or backend it cannot load: the parent stops the run
        conn.send(("failed", str(exc), exc.code))
        return
    conn.send(("ready", describe(context)))
    while True:
        film = conn.recv()
        if film is None:
            return
        conn.send(score(context, film))


def pool_rows(films: list[str], workers: int, *, make_context: Callable, describe: Callable, score: Callable,
              ready: Callable[[dict], None], died: Callable[[str, int | None], dict]) -> Iterator[dict]:
    """Rows for ``films`` in the order they finish, from ``workers`` processes.

    Each process calls ``make_context()`` once (it is pickled, as are ``describe`` and
    ``score``: module-level functions or partials of them), sends ``describe(context)``,
    which the parent hands to ``ready`` for the first worker only, then returns
    ``score(context, film)`` per film; ``died(film, exitcode)`` is the row of a film whose
    worker died. A worker whose ``make_context`` raises a :class:`PneumoError` ends the
    run with that error.
    """
    spawn = multiprocessing.get_context("spawn")
    pending = deque(films)
    live: list[_Worker] = []
    startup_deaths, described = 0, False

    def start() -> None:
        parent, child = spawn.Pipe()
        process = spawn.Process(target=_serve, args=(child, make_context, describe, score), daemon=True)
        process.start()
        child.close()
        live.append(_Worker(process, parent))

    def hand_out(worker: _Worker) -> None:
        worker.film = pending.popleft() if pending else None
        try:
            worker.conn.send(worker.film)
        except OSError:  # it has just died: its sentinel says so on the next wait, with its film
            return
        if worker.film is None:
            live.remove(worker)
            worker.process.join()

    try:
        for _ in range(min(workers, len(pending))):
            start()
        while live:
            signalled = set(wait([w.conn for w in live] + [w.process.sentinel for w in live]))
            for worker in list(live):
                message, alive = None, True
                if worker.conn in signalled:
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):
                        alive = False
                elif worker.process.sentinel in signalled:
                    alive = False
                else:
                    continue
                if alive:
                    if worker.ready:
                        yield message
                    else:
                        kind, *detail = message
                        if kind == "failed":
                            raise PneumoError(detail[0], code=detail[1])
                        if not described:
                            ready(detail[0])
                            described = True
                    worker.ready, startup_deaths = True, 0
                    hand_out(worker)
                    continue
                live.remove(worker)
                worker.process.join()
                if worker.film is not None:
                    yield died(worker.film, worker.process.exitcode)
                elif not worker.ready:
                    startup_deaths += 1
                    if startup_deaths >= MAX_STARTUP_DEATHS:
                        raise PneumoError(f"{startup_deaths} worker processes died while loading the model "
                                          f"(exit code {worker.process.exitcode}); try fewer --workers",
                                          code="worker_died")
                if pending:
                    start()
    finally:
        for worker in live:
            worker.process.kill()
            worker.process.join()
