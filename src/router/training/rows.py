"""Training rows of the delay-risk model: one row per shipped leg, its lane's features at decision
time and whether it arrived after the promise.

Three sources, one feature function (:func:`router.features.lane_features`):

* :func:`simulate_rows` -- seeded simulations with exploration (a share of
  orders routed by other strategies or a random feasible candidate, so the
  rows also cover lanes the optimizer avoids);
* :func:`ledger_rows` -- recorded decisions and their outcomes: the record's
  stored view and context rebuild the very rows the router scored;
* :func:`file_rows` -- a CSV (or Parquet) file of rows with the documented
  columns (docs/risk.md, "Outcome files").

Every row carries its decision time, so splits are by time only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from router.context import context_from_json
from router.distributed import ordered_map
from router.errors import RouterError
from router.features import FEATURES, feature_names, lane_features
from router.legs import lane_metrics
from router.network import Network
from router.scenario import Scenario, load_scenario
from router.state import StateView

__all__ = ["RowSet", "file_rows", "ledger_rows", "simulate_rows"]


@dataclass(frozen=True, eq=False)
class RowSet:
    """Rows of features with their labels and provenance, in any order (sort by ``time_h`` to split)."""

    X: np.ndarray  # float64[R, F], columns as router.features.FEATURES
    late: np.ndarray  # bool[R]: the leg arrived after the promise
    time_h: np.ndarray  # float64[R]: decision time, hours since the scenario start (or the file's epoch)
    scenario: np.ndarray  # str[R]
    seed: np.ndarray  # int64[R] (-1 when not simulated)
    strategy: np.ndarray  # str[R]: who routed the order (explore_random for exploration)
    # float64[R] observed hours from departure to delivery (NaN unknown): what the model's
    # lane history learns a lane's transit bias from
    transit_obs_h: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transit_obs_h is None:
            object.__setattr__(self, "transit_obs_h", np.full(len(self.late), np.nan))

    def __len__(self) -> int:
        return len(self.late)

    def take(self, keep: np.ndarray) -> RowSet:
        return RowSet(
            self.X[keep], self.late[keep], self.time_h[keep], self.scenario[keep], self.seed[keep], self.strategy[keep],
            self.transit_obs_h[keep], dict(self.meta),  # type: ignore[index]
        )

    def sorted_by_time(self) -> RowSet:
        return self.take(np.argsort(self.time_h, kind="stable"))

    def data_hash(self) -> str:
        """blake2b of the features, labels and times: equal rows, equal hash (the model card's data hash)."""
        h = hashlib.blake2b(digest_size=16)
        for a in (self.X, self.late, self.time_h):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    @staticmethod
    def concat(parts: Sequence[RowSet]) -> RowSet:
        if not parts:
            return _empty()
        return RowSet(
            np.concatenate([p.X for p in parts]),
            np.concatenate([p.late for p in parts]),
            np.concatenate([p.time_h for p in parts]),
            np.concatenate([p.scenario for p in parts]),
            np.concatenate([p.seed for p in parts]),
            np.concatenate([p.strategy for p in parts]),
            np.concatenate([p.transit_obs_h for p in parts]),  # type: ignore[misc]
            dict(parts[0].meta),
        )


def _empty() -> RowSet:
    return RowSet(
        np.zeros((0, len(FEATURES))), np.zeros(0, bool), np.zeros(0), np.zeros(0, "<U1"), np.zeros(0, np.int64),
        np.zeros(0, "<U1"),
    )


@dataclass(frozen=True)
class SimJob:
    """One simulation of :func:`simulate_rows` (picklable, for worker processes)."""

    scenario_path: str
    seed: int
    hours: float
    strategy: str
    explore: float
    risk_model: str | None  # "champion", a model folder, or None (analytic)


def _run_job(job: SimJob) -> RowSet:
    from router.simulation import simulate

    sc = load_scenario(job.scenario_path)
    r = simulate(
        sc, job.strategy, seed=job.seed, horizon_hours=job.hours, explore=job.explore, collect_rows=True,
        risk_model=job.risk_model,
    )
    t = r.training
    n = len(t["late"])
    return RowSet(
        t["X"],
        t["late"].astype(bool),
        r.legs.routed_hours.astype(float),
        np.full(n, sc.name),
        np.full(n, job.seed, dtype=np.int64),
        t["strategy"].astype(str),
        np.asarray(t["transit_h"], dtype=float),
    )


def simulate_rows(
    scenario_paths: Sequence[str | Path],
    seeds: Sequence[int],
    *,
    hours: float,
    strategy: str = "optimizer",
    explore: float = 0.3,
    risk_model: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RowSet:
    """Rows from one simulation per (scenario, seed), run in worker processes.

    Every scenario must be on one network (the feature codes index its nodes and
    regions); :class:`RouterError` names the first that is not.
    """
    paths = [str(Path(p)) for p in scenario_paths]
    keys = set()
    for p in paths:
        from router.network import build_network
        from router.risk.lane import network_domain

        keys.add(repr(network_domain(build_network(load_scenario(p)))))
    if len(keys) > 1:
        raise RouterError("the scenarios of one delay-risk model must share one network (nodes, regions, carriers)")
    jobs = [SimJob(p, int(s), float(hours), strategy, float(explore), risk_model) for p in paths for s in seeds]
    backend = "serial" if len(jobs) == 1 or workers == 1 else "local"
    parts = ordered_map(_run_job, jobs, backend=backend, workers=workers, progress=progress)  # type: ignore[arg-type]
    out = RowSet.concat(parts)
    out.meta.update({"scenarios": paths, "seeds": [int(s) for s in seeds], "hours": hours, "explore": explore})
    return out


# --------------------------------------------------------------------- ledger
def _leg_label(outcome: dict, node: str, carrier: str, service: str) -> tuple[bool, float] | None:
    """(late, observed transit hours) of one leg of an outcome; None when the outcome lacks the leg."""
    promised = datetime.fromisoformat(outcome["promised_by"])
    for leg in outcome.get("legs", ()):
        if leg["node"] == node and leg["carrier"] == carrier and leg["service"] == service:
            delivered = datetime.fromisoformat(leg["delivered_at"])
            transit = (delivered - datetime.fromisoformat(leg["departed_at"])).total_seconds() / 3600.0
            return delivered > promised, transit
    return None


def record_rows(net: Network, record: dict) -> tuple[np.ndarray, list[int]]:
    """The features of a full record's chosen legs (rows) and their lanes' flat indices.

    The record's stored view and context are the inputs the decision read, so these
    are the rows the router scored when it decided (tests/test_risk_features.py).
    """
    inputs = record.get("inputs") or {}
    view = StateView.from_json(inputs["view"])
    ctx = context_from_json(inputs["context"])
    x = lane_features(net, view, ctx, lane_metrics(net, view, ctx))
    node_index = {n: i for i, n in enumerate(net.node_ids)}
    opt_index = {k: i for i, k in enumerate(zip(net.option_carrier, net.option_service))}
    flat = [node_index[leg["node_id"]] * net.n_options + opt_index[(leg["carrier_id"], leg["service"])] for leg in record["chosen"]["legs"]]
    return x[flat], flat


def ledger_rows(
    scenario: Scenario,
    pairs: Iterable[tuple[dict, dict]],
    *,
    progress: Callable[[int], None] | None = None,
) -> RowSet:
    """Rows from recorded decisions and their outcomes (``DecisionLedger.iter_outcomes()``).

    Only full records (with inputs) of routed orders on ``scenario``'s network
    count; others are skipped and counted in ``meta["skipped"]``. Time is hours
    from the scenario start to the decision.
    """
    from router.network import build_network

    net = build_network(scenario)
    net_hash = net.content_hash
    xs, late, times, strat, scen, transit = [], [], [], [], [], []
    skipped = 0
    for i, (record, outcome) in enumerate(pairs, start=1):
        if progress is not None and i % 200 == 0:
            progress(i)
        if record.get("chosen") is None or not record.get("inputs") or (record.get("network") or {}).get("hash") != net_hash:
            skipped += 1
            continue
        rows, _ = record_rows(net, record)
        labels = [_leg_label(outcome, leg["node_id"], leg["carrier_id"], leg["service"]) for leg in record["chosen"]["legs"]]
        t = (datetime.fromisoformat(record["created_at"]) - scenario.start).total_seconds() / 3600.0
        for row, lab in zip(rows, labels):
            if lab is None:
                skipped += 1
                continue
            xs.append(row)
            late.append(lab[0])
            transit.append(lab[1])
            times.append(t)
            strat.append(record["strategy"]["name"])
            scen.append(record.get("scenario", scenario.name))
    if not xs:
        out = _empty()
    else:
        out = RowSet(
            np.asarray(xs), np.asarray(late, bool), np.asarray(times), np.asarray(scen), np.full(len(xs), -1, np.int64),
            np.asarray(strat), np.asarray(transit, dtype=float),
        )
    out.meta.update({"source": "ledger", "skipped": skipped})
    return out


# ----------------------------------------------------------------------- file
#: Columns an outcome file must have besides the features (docs/risk.md).
FILE_COLUMNS = ("decided_at", "late")


def file_rows(path: str | Path) -> RowSet:
    """Rows from a CSV or Parquet file: ``decided_at`` (ISO time), ``late`` (0/1) and every feature column.

    Raises RouterError naming the missing columns or the bad value.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise RouterError(f"{path}: no such outcome file")
    try:
        df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except ImportError as exc:
        raise RouterError(f"{path}: reading Parquet needs pyarrow ({exc}); use CSV or `pip install pyarrow`") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's, said in one line
        raise RouterError(f"{path}: not a readable CSV or Parquet file ({type(exc).__name__}: {exc})") from None
    missing = [c for c in (*FILE_COLUMNS, *feature_names()) if c not in df.columns]
    if missing:
        raise RouterError(f"{path}: missing columns {', '.join(missing)} (see docs/risk.md, Outcome files)")
    try:
        decided = pd.to_datetime(df["decided_at"], utc=True, format="ISO8601")
    except Exception as exc:  # noqa: BLE001
        raise RouterError(f"{path}: column decided_at must hold ISO times ({exc})") from None
    late = df["late"]
    if not late.isin([0, 1, True, False]).all():
        bad = late[~late.isin([0, 1, True, False])].iloc[0]
        raise RouterError(f"{path}: column late must be 0 or 1, found {bad.item() if hasattr(bad, 'item') else bad!r}")
    try:
        x = df[list(feature_names())].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise RouterError(f"{path}: feature columns must be numbers ({exc})") from None
    epoch = decided.min()
    times = ((decided - epoch).dt.total_seconds() / 3600.0).to_numpy()
    n = len(df)
    transit = df["transit_hours"].to_numpy(dtype=float) if "transit_hours" in df.columns else None
    out = RowSet(
        x, late.to_numpy().astype(bool), times, np.full(n, path.stem), np.full(n, -1, np.int64), np.full(n, "file"), transit
    )
    out.meta.update({"source": str(path), "epoch": epoch.isoformat()})
    return out
