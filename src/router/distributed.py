"""The Dask backend: simulation sweeps on a cluster (Dask is imported here and nowhere else).

>>> from router.simulation.sweep import sweep_jobs
>>> from router.distributed import run_jobs
>>> jobs = sweep_jobs(["scenarios/national.yaml"], ["nearest", "optimizer"], [1, 2, 3])
>>> results = run_jobs(jobs, "tcp://scheduler:8786")  # doctest: +SKIP

Each job is one task running :func:`router.simulation.sweep.run_job` on a worker.
The job holds the scenario's *path*, so the workers need the same files (a
shared folder or the same checkout at the same path) and the same ``router``
installed. Results come back in job order, equal to what the local executor
returns except the wall-clock timings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dask.distributed import Client, LocalCluster, as_completed

if TYPE_CHECKING:  # pragma: no cover
    from router.simulation.sweep import SweepJob, SweepResult

__all__ = ["run_jobs"]

log = logging.getLogger(__name__)


def run_jobs(
    jobs: Sequence[SweepJob],
    address: str | None = None,
    *,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_outcomes: bool = False,
    processes: bool = True,
) -> list[SweepResult]:
    """Run sweep jobs on a Dask cluster, one task per job; results in job order.

    Parameters
    ----------
    jobs : sequence of SweepJob
    address : str, optional
        Scheduler address, e.g. ``tcp://10.0.0.5:8786``. Without one, a
        :class:`~distributed.LocalCluster` is started for this call and closed after it.
    n_workers : int, optional
        Workers of that LocalCluster (default: Dask's choice, one per core). Ignored
        with an address: the cluster has the workers it has.
    progress : callable(done, total), optional
        Called in this process each time a job finishes.
    keep_outcomes : bool
        Also bring back each run's per-order table.
    processes : bool
        LocalCluster workers as processes (default) or as threads of this process.
        A simulation is pure Python under the GIL, so threads only help debugging.
    """
    from router.simulation.sweep import run_job

    jobs = list(jobs)
    if not jobs:
        return []
    cluster = None
    if address is None:
        # One thread per worker: a job holds the GIL most of the time.
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        log.info("dask sweep of %d jobs on %s", len(jobs), client.scheduler.address)
        # pure=False: two equal jobs are still two runs (each has its own decision ids
        # and timings); keys stay unique within the sweep.
        futures = [client.submit(run_job, job, keep_outcomes, pure=False) for job in jobs]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[SweepResult | None] = [None] * len(jobs)
        for done, fut in enumerate(as_completed(futures), start=1):
            results[index[fut.key]] = fut.result()
            if progress is not None:
                progress(done, len(jobs))
        return results  # type: ignore[return-value]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
