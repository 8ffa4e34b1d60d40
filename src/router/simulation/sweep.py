"""Sweeps: many simulation runs (scenarios x strategies x seeds), in parallel.

A :class:`SweepJob` names one run by the path of its scenario file, so a job is a
few short strings and numbers: cheap to pickle, and a worker on another machine
loads the scenario itself. :func:`run_job` runs one job and condenses its
:class:`~router.simulation.simulator.SimResult` into a :class:`SweepResult`: the
KPI dict, the run's fingerprint, and two small series the report plots (picks
per node per hour, quantiles of the lateness). The whole per-order table comes
back only on request (``keep_outcomes=True``).

:func:`run_sweep` runs a list of jobs on one of three executors:

* ``"local"`` (default): a :class:`concurrent.futures.ProcessPoolExecutor` with the
  *spawn* start method (no fork of a process holding threads, locks or open
  database connections);
* ``"dask"``: a Dask cluster, through :func:`router.distributed.ordered_map` (the
  only module that imports Dask);
* ``"serial"``: in this process, one job after the other (for debugging, and for
  strategies registered at run time, which spawned workers do not know).

The simulation is deterministic in (scenario, strategy, seed, horizon, orders),
so every executor returns the same results in job order; only the wall-clock
``timing`` figures differ.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from router.distributed import BACKENDS, Backend, ordered_map
from router.errors import RouterError
from router.scenario import Scenario, load_scenario, parse_scenario
from router.simulation.kpis import kpis, outcomes_frame
from router.simulation.simulator import SimResult, simulate
from router.strategies import strategy_names

__all__ = [
    "EXECUTORS",
    "LATENESS_QUANTILES",
    "SweepJob",
    "SweepResult",
    "check_jobs",
    "run_job",
    "run_sweep",
    "sweep_jobs",
    "with_params",
]

log = logging.getLogger(__name__)

# the sweep runs on ordered_map, so its executors are exactly ordered_map's backends
Executor = Backend
EXECUTORS: tuple[str, ...] = BACKENDS

#: Probabilities at which each run's lateness (delivered - promised hours) is kept:
#: 0, 0.005, ..., 1. 201 numbers draw an ECDF as fine as the eye can see, whatever
#: the number of orders, and stay a few kilobytes per job.
LATENESS_QUANTILES = np.linspace(0.0, 1.0, 201)


@dataclass(frozen=True)
class SweepJob:
    """One simulation run, named by values a worker can rebuild it from.

    Attributes
    ----------
    scenario : str
        Path of the scenario YAML file. The worker loads it, so on a Dask cluster
        the path must exist on the workers too (a shared folder, or the same checkout).
    strategy : str
        A registered strategy name.
    seed : int
    max_orders : int, optional
        Only the first ``max_orders`` arrivals (default: every arrival of the horizon).
    horizon_hours : float, optional
        Arrivals in ``[0, horizon_hours)`` (default: the scenario's ``horizon_days``).
    ledger_url : str, optional
        Keep every decision, and each delivered order's outcome, in this ledger.
        Slower: one transaction per decision.
    risk_model : str, optional
        The router's late-risk estimate: ``"champion"`` (the default: the network's
        champion model, analytic when none), a model folder, or None for the
        analytic estimate.
    params : str, optional
        JSON object of :class:`~router.params.StrategyParams` fields that replace the
        scenario's (``'{"late_risk_usd": 36}'``, or ``targets``): how a frontier
        sweeps prices and targets. A string, so the job stays small and hashable.
    name : str, optional
        The run's label in reports (default: the strategy).
    """

    scenario: str
    strategy: str
    seed: int
    max_orders: int | None = None
    horizon_hours: float | None = None
    ledger_url: str | None = None
    risk_model: str | None = "champion"
    params: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.max_orders is not None and self.max_orders < 1:
            raise ValueError(f"max_orders must be >= 1, got {self.max_orders}")
        if self.horizon_hours is not None and not self.horizon_hours > 0:
            raise ValueError(f"horizon_hours must be > 0, got {self.horizon_hours}")

    @property
    def label(self) -> str:
        return f"{Path(self.scenario).stem}/{self.name or self.strategy}/seed {self.seed}"


@dataclass(frozen=True, eq=False)
class SweepResult:
    """What one job produced: its KPIs and the small series the report plots.

    Attributes
    ----------
    job : SweepJob
    kpis : dict
        :func:`router.simulation.kpis` with ``timing=True``; ``kpis["timing"]`` holds
        the wall-clock figures, everything else is deterministic.
    fingerprint : str
        :meth:`SimResult.fingerprint`: equal for equal runs, whichever process ran them.
    node_ids : tuple of str
    node_capacity_per_hour : numpy.ndarray
        float[N] nominal picks per hour of each node.
    picks_per_hour : numpy.ndarray
        int[N, H] legs whose pick finished in hour ``h`` (hours since the scenario
        start), per node; divide by the capacity for the utilisation.
    lateness_quantiles : numpy.ndarray
        float[201] quantiles of delivered - promised hours over the routed orders,
        at :data:`LATENESS_QUANTILES` (empty when nothing was routed).
    outcomes : pandas.DataFrame, optional
        One row per order (:func:`router.simulation.outcomes_frame`), when asked for.
    """

    job: SweepJob
    kpis: dict
    fingerprint: str
    node_ids: tuple[str, ...]
    node_capacity_per_hour: np.ndarray
    picks_per_hour: np.ndarray
    lateness_quantiles: np.ndarray
    outcomes: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def scenario(self) -> str:
        """The scenario's name (from the file, not the path)."""
        return self.kpis["scenario"]

    @property
    def strategy(self) -> str:
        return self.job.strategy

    @property
    def seed(self) -> int:
        return self.job.seed

    def deterministic_kpis(self) -> dict:
        """The KPI dict without its wall-clock ``timing`` part: equal across executors."""
        return {k: v for k, v in self.kpis.items() if k != "timing"}


def sweep_jobs(
    scenarios: Sequence[str | Path],
    strategies: Sequence[str],
    seeds: Sequence[int],
    *,
    max_orders: int | None = None,
    horizon_hours: float | None = None,
    ledger_url: str | None = None,
    risk_model: str | None = "champion",
) -> list[SweepJob]:
    """The full grid, scenario-major then strategy then seed (the order results come back in)."""
    return [
        SweepJob(str(Path(sc).resolve()), st, int(seed), max_orders, horizon_hours, ledger_url, risk_model)
        for sc in scenarios
        for st in strategies
        for seed in seeds
    ]


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Scenario:
    # One load per scenario file per worker process (the mtime keys out edited files).
    # A Scenario is immutable once validated; Router copies what it changes.
    return load_scenario(path)


def _summarise_run(job: SweepJob, result: SimResult, scenario: Scenario, keep_outcomes: bool) -> SweepResult:
    legs = result.legs
    n_nodes = len(result.node_ids)
    done = legs.pick_done_hours
    n_hours = int(np.floor(done.max())) + 1 if len(done) else 1
    picks = np.zeros((n_nodes, n_hours), dtype=np.int64)
    if len(done):
        np.add.at(picks, (legs.node, np.floor(done).astype(np.int64)), 1)
    routed = result.routed
    lateness = (result.delivered_hours - result.promise_hours)[routed]
    quantiles = np.quantile(lateness, LATENESS_QUANTILES) if len(lateness) else np.zeros(0)
    capacity = np.array([float(n.pick_capacity_per_hour) for n in scenario.nodes])
    return SweepResult(
        job=job,
        kpis=kpis(result, timing=True),
        fingerprint=result.fingerprint(),
        node_ids=tuple(result.node_ids),
        node_capacity_per_hour=capacity,
        picks_per_hour=picks,
        lateness_quantiles=quantiles,
        outcomes=outcomes_frame(result) if keep_outcomes else None,
    )


def run_job(job: SweepJob, keep_outcomes: bool = False) -> SweepResult:
    """Run one job where this function is called (a worker process, a Dask worker, or here).

    Top-level and argument-only, so that any executor can pickle it by reference.
    """
    path = Path(job.scenario)
    scenario = _load(str(path), path.stat().st_mtime_ns)
    if job.params is not None:
        scenario = with_params(scenario, job.params)
    ledger = None
    if job.ledger_url is not None:
        from router.ledger import open_ledger

        ledger = open_ledger(job.ledger_url)
    try:
        result = simulate(
            scenario,
            job.strategy,
            seed=job.seed,
            horizon_hours=job.horizon_hours,
            max_orders=job.max_orders,
            ledger=ledger,
            record_outcomes=ledger is not None,
            risk_model=job.risk_model,
        )
    finally:
        if ledger is not None:
            ledger.close()
    return _summarise_run(job, result, scenario, keep_outcomes)


def with_params(scenario: Scenario, overrides: str | dict) -> Scenario:
    """The scenario with some of its strategy params replaced (a JSON object or a dict of fields).

    Raises :class:`~router.errors.ScenarioError` naming a bad field, as a scenario file would.
    """
    data = orjson.loads(overrides) if isinstance(overrides, str) else dict(overrides)
    merged = {**scenario.spec.params.model_dump(mode="json"), **data}
    spec = scenario.spec.model_dump(mode="json")
    spec["params"] = merged
    out = parse_scenario(spec, source=str(scenario.path) if scenario.path else None)
    out.path = scenario.path
    return out


def check_jobs(jobs: Sequence[SweepJob]) -> None:
    """Fail before any work starts: every scenario file exists and every strategy is registered.

    Raises
    ------
    RouterError
        Naming the missing file or the unknown strategy (with the known ones).
    """
    known = strategy_names()
    for job in jobs:
        if job.strategy not in known:
            raise RouterError(f"unknown strategy {job.strategy!r}; known: {', '.join(known)}")
        if not Path(job.scenario).is_file():
            raise RouterError(f"no scenario file at {job.scenario}")


def run_sweep(
    jobs: Sequence[SweepJob],
    *,
    executor: Executor = "local",
    dask_address: str | None = None,
    processes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_outcomes: bool = False,
) -> list[SweepResult]:
    """Run every job and return their results in job order.

    Parameters
    ----------
    jobs : sequence of SweepJob
        See :func:`sweep_jobs` for the usual grid.
    executor : {"local", "dask", "serial"}
        Where the jobs run (see the module docstring). Giving ``dask_address``
        implies ``"dask"``.
    dask_address : str, optional
        Scheduler address (``tcp://host:8786``); with ``executor="dask"`` and no
        address a :class:`distributed.LocalCluster` is started for the sweep.
    processes : int, optional
        Worker processes for ``"local"`` and for a Dask LocalCluster (default: the
        CPU count, at most one per job).
    progress : callable(done, total), optional
        Called in this process each time a job finishes.
    keep_outcomes : bool
        Also return each run's per-order table (:attr:`SweepResult.outcomes`).

    Raises
    ------
    RouterError
        An unknown strategy or a missing scenario file, before anything runs.
    ValueError
        An unknown executor.
    """
    jobs = list(jobs)
    if dask_address is not None:
        executor = "dask"
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if processes is not None and processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    check_jobs(jobs)
    if not jobs:
        return []
    log.info("sweep of %d jobs on %s", len(jobs), executor if dask_address is None else dask_address)
    fn = run_job_with_outcomes if keep_outcomes else run_job
    return ordered_map(fn, jobs, backend=executor, address=dask_address, workers=processes, progress=progress)


def run_job_with_outcomes(job: SweepJob) -> SweepResult:
    """:func:`run_job` keeping the per-order table (top-level, so executors pickle it by reference)."""
    return run_job(job, keep_outcomes=True)
