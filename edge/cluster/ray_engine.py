"""``pneumo score --engine ray``: the films of a run scored by a Ray Data actor pool.

The driver (this process) lists the films, hands Ray Data their names only, and writes
the rows that come back into the same results record as the local engine; the actors
(:class:`~.scorer.Scorer`) read, decode and score. Without ``--ray-address`` a Ray of this
machine's cores is started for the run and stopped after it; with one (``auto``, a
``HOST:PORT`` GCS address or ``ray://HOST:10001``) the run joins that cluster, whose
nodes must see the films at the same paths or URIs.

What a kill costs: a row reaches the record only once it came back to the driver, so
films in flight when the driver dies have no row and the next run scores them; Ray
restarts an actor that dies and runs its batch again, so a worker killed costs nothing.
A driver SIGKILLed leaves the local Ray it started to stop itself; Ray's two node agents
(``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) have been seen to outlive it (Ray 2.60).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from typing import Callable

from ..errors import MissingExtra, PneumoError
from .arrow import EXTRA_HINT
from .scorer import Scorer, name_items, rows_of

#: Films per Ray Data block, and so per actor call: small enough that progress is smooth and
#: a killed driver loses little, large enough that Ray's per-task cost (~ms) is noise.
BATCH_FILMS = 32


def ray_rows(films: list[str], *, make: Callable, threads: int, actors: int | None, address: str | None,
             verbose: bool, say: Callable[[str], None]) -> Iterator[dict]:
    """Rows for ``films`` in the order they finish; starts (or joins) Ray on the first row asked for."""
    ray = import_ray()
    started = time.monotonic()
    owned = not ray.is_initialized()  # a program that called ray.init itself keeps its connection
    if owned:
        _connect(ray, address, verbose)
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the run's own progress line says it all
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        actors = actors or max(1, cpus // threads)
        how = "using the Ray this process had joined" if not owned else \
            f"joined {address}" if address else "started on this machine"
        say(f"Ray {ray.__version__}: {how} in {time.monotonic() - started:.1f} s, {cpus} CPUs; "
            f"{actors} actor(s) x {threads} thread(s)")
        if actors * threads > cpus:
            say(f"warning: {actors} actor(s) x {threads} thread(s) need {actors * threads} CPUs and the cluster "
                f"has {cpus}: the rest wait for an autoscaler to add nodes")
        per_block = max(1, min(BATCH_FILMS, math.ceil(len(films) / actors)))  # a small run still feeds every actor
        dataset = ray.data.from_items(name_items(films), override_num_blocks=math.ceil(len(films) / per_block))
        dataset = dataset.map_batches(Scorer, fn_constructor_kwargs={"make": make}, batch_size=None,
                                      batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=actors),
                                      num_cpus=threads)
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield from rows_of(table)
    finally:
        if owned:
            ray.shutdown()


def import_ray():
    """Ray, with Ray Data; one line naming the extra when it is not installed."""
    try:
        import ray
        import ray.data
    except ModuleNotFoundError as exc:
        raise MissingExtra(f"--engine ray needs {exc.name.split('.')[0]}: {EXTRA_HINT}") from None
    return ray


def _connect(ray, address: str | None, verbose: bool) -> None:
    """Start a local Ray or join the one at ``address``; ``ray.shutdown`` stops the one or leaves the other."""
    level = logging.INFO if verbose else logging.ERROR
    kwargs = dict(logging_level=level, log_to_driver=verbose)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:  # "local": a Ray of our own even if another is running here (ray start by someone else)
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise PneumoError(f"cannot start or join {where}: {str(exc).splitlines()[0]}", code="ray_unavailable",
                          hint="--ray-address auto joins the cluster this machine belongs to; "
                               "ray://HOST:10001 one elsewhere") from None
