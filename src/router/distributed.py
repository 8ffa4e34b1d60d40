"""An ordered map over local processes or a Dask cluster (Dask is imported here and nowhere else).

:func:`ordered_map` runs ``fn(item)`` for every item and returns the results in
item order, whatever order they finish in. It knows nothing of what the items
are: simulation sweeps (:mod:`router.simulation.sweep`) and any later
partitioned work use it the same way.

>>> from router.distributed import ordered_map
>>> ordered_map(abs, [-1, 2, -3], backend="serial")
[1, 2, 3]

Backends:

* ``"serial"``: in this process, one after the other (debugging, tiny inputs);
* ``"local"``: a :class:`concurrent.futures.ProcessPoolExecutor` of spawned
  processes on this machine;
* ``"dask"``: a Dask cluster at ``address`` (``tcp://host:8786``), or a
  :class:`~distributed.LocalCluster` started for the call and closed after it.
  The workers need the same ``router`` installed, and ``fn`` and the items must
  pickle (a top-level function; paths the workers can read).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed as futures_completed
from multiprocessing import get_context
from typing import Literal, TypeVar

__all__ = ["BACKENDS", "Backend", "ordered_map"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Backend = Literal["local", "dask", "serial"]
BACKENDS: tuple[str, ...] = ("local", "dask", "serial")


def ordered_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    backend: Backend = "local",
    address: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, computed on ``backend``, in item order.

    Parameters
    ----------
    fn : callable
        Applied to each item; must be picklable by reference for ``local`` and ``dask``.
    items : sequence
    backend : {"local", "dask", "serial"}
        Where the calls run (see the module docstring). An ``address`` implies ``"dask"``.
    address : str, optional
        Dask scheduler address.
    workers : int, optional
        Processes for ``local`` and for a Dask LocalCluster (default: one per core,
        at most one per item). Ignored with an address: the cluster has the workers it has.
    progress : callable(done, total), optional
        Called in this process each time an item finishes.

    Raises
    ------
    ValueError
        An unknown backend, or ``workers`` < 1.
    """
    if address is not None:
        backend = "dask"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    items = list(items)
    if not items:
        return []
    if backend == "serial":
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            if progress is not None:
                progress(i + 1, len(items))
        return out
    if backend == "local":
        return _local(fn, items, workers, progress)
    return _dask(fn, items, address, workers, progress)


def _local(fn, items, workers, progress) -> list:
    n = max(1, min(workers or os.cpu_count() or 1, len(items)))
    results: list = [None] * len(items)
    # spawn: a forked child would inherit this process's threads, locks and database
    # handles; a spawned one imports router afresh (about a second) and is clean.
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for done, fut in enumerate(futures_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress(done, len(items))
    return results


def _dask(fn, items, address, workers, progress) -> list:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if address is None:
        # One thread per worker: pure-Python work holds the GIL most of the time.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        log.info("dask map of %d items on %s", len(items), client.scheduler.address)
        # pure=False: two equal items are still two runs (each may carry its own ids
        # and timings); keys stay unique within the call.
        futures = [client.submit(fn, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(items)
        for done, fut in enumerate(as_completed(futures), start=1):
            results[index[fut.key]] = fut.result()
            if progress is not None:
                progress(done, len(items))
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
