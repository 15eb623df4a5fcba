"""Worker processes for ``pneumo score --workers N``, where a dead worker costs one row.

``multiprocessing.Pool`` waits forever for the result of a worker the kernel
killed (the out-of-memory killer on a Pi), and ``ProcessPoolExecutor`` fails every
pending film with it. Here each worker has its own pipe and one film at a time,
so the parent always knows which film a dead worker held: that film gets a
``worker_died`` row, a new worker takes the dead one's place, and the run goes on.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Callable

from ..errors import PneumoError

#: Workers that die before they are ready (while loading the model) in a row
#: before the run stops: that is no film's fault, and would repeat for ever.
MAX_STARTUP_DEATHS = 3


@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: object
    film: str | None = None
    ready: bool = False


def _serve(conn, make_context: Callable, score: Callable) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    context = make_context()
    conn.send(None)  # ready
    while True:
        film = conn.recv()
        if film is None:
            return
        conn.send(score(context, film))


def pool_rows(films: list[str], workers: int, *, make_context: Callable, score: Callable,
              died: Callable[[str, int | None], dict]) -> Iterator[dict]:
    """Rows for ``films`` in the order they finish, from ``workers`` processes.

    Each process calls ``make_context()`` once (it is pickled: a module-level function
    or a partial of one), then ``score(context, film)`` per film; ``died(film, exitcode)``
    is the row of a film whose worker died.
    """
    spawn = multiprocessing.get_context("spawn")
    pending = deque(films)
    live: list[_Worker] = []
    startup_deaths = 0

    def start() -> None:
        parent, child = spawn.Pipe()
        process = spawn.Process(target=_serve, args=(child, make_context, score), daemon=True)
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
            ready = set(wait([w.conn for w in live] + [w.process.sentinel for w in live]))
            for worker in list(live):
                message, alive = None, True
                if worker.conn in ready:
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):
                        alive = False
                elif worker.process.sentinel in ready:
                    alive = False
                else:
                    continue
                if alive:
                    if worker.ready:
                        yield message
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
