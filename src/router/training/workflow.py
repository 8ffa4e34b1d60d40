"""The delay-risk model's life cycle: train from simulations, ledgers or files; report drift; replace
the champion only when a challenger wins on a recent held-out window.

``router train-risk`` and ``router risk-report`` (:mod:`router.cli`) are thin
wrappers over these functions, which return plain dicts (what the CLI prints
and the tests check).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from router.errors import RouterError
from router.network import build_network
from router.risk.champion import champion_entry, load_champion, load_version, promote
from router.risk.lane import LaneRiskModel
from router.risk.metrics import risk_metrics
from router.scenario import Scenario, load_scenario
from router.training.rows import RowSet, file_rows, ledger_rows, simulate_rows
from router.training.train import compare, fit_and_evaluate, publish, time_split

__all__ = ["DRIFT_THRESHOLD", "risk_report", "train_from_file", "train_from_ledger", "train_from_simulation"]

#: How far the expected calibration error on recent outcomes may rise above the card's before
#: ``risk-report`` says retrain (0.02: a late-risk term priced 2 points off on average).
DRIFT_THRESHOLD = 0.02


def _summary(version: str, directory: Path, ev, rows: RowSet) -> dict:
    return {
        "version": version,
        "directory": str(directory),
        "rows": len(rows),
        "late_share": float(rows.late.mean()) if len(rows) else float("nan"),
        "train_rows": ev.n_train,
        "test_rows": ev.n_test,
        "metrics": ev.metrics,
    }


def train_from_simulation(
    scenario_paths: Sequence[str | Path],
    *,
    days: float,
    seeds: Sequence[int],
    explore: float = 0.3,
    name: str | None = None,
    test_share: float = 0.2,
    command: str,
    root: Path | None = None,
    make_champion: bool | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Simulate with exploration, fit, evaluate on the later window, publish; champion when none exists
    (``make_champion=None``) or when asked (True)."""
    if days <= 0:
        raise RouterError(f"--days must be > 0, got {days}")
    if not seeds:
        raise RouterError("--seeds names no seed")
    scenarios = [load_scenario(p) for p in scenario_paths]
    net = build_network(scenarios[0])
    rows = simulate_rows(scenario_paths, seeds, hours=days * 24.0, explore=explore, workers=workers, progress=progress)
    if len(rows) < 500 or rows.late.sum() < 20:
        raise RouterError(
            f"only {len(rows)} legs ({int(rows.late.sum())} late) to learn from: simulate more days or seeds"
        )
    ev = fit_and_evaluate(rows, test_share=test_share)
    version, directory = publish(
        ev, rows, net, name=name or scenarios[0].name.split("_")[0], command=command, root=root, overwrite=True
    )
    out = _summary(version, directory, ev, rows)
    existing = champion_entry(net, root)
    if make_champion or (make_champion is None and existing is None):
        promote(
            net, version, scenarios=[s.name for s in scenarios],
            verdict={"reason": "first model of this network" if existing is None else "promoted by request"}, root=root,
        )
        out["champion"] = True
    else:
        out["champion"] = False
    return out


def _challenge(net, scenario: Scenario, rows: RowSet, *, name: str, command: str, root, window_share: float, test_share: float) -> dict:
    """Train a challenger on the older rows; compare with the champion on the most recent window."""
    older, recent = time_split(rows.time_h, window_share)
    train_rows = rows.take(older)
    window = rows.take(recent)
    ev = fit_and_evaluate(train_rows, test_share=test_share)
    version, directory = publish(ev, train_rows, net, name=name, command=command, root=root, overwrite=True)
    out = _summary(version, directory, ev, train_rows)
    challenger = load_version(version, net, root)
    champion = load_champion(net, root)
    if not isinstance(champion, LaneRiskModel):
        verdict = {"winner": version, "rule": "no usable champion: the challenger takes its place"}
    else:
        verdict = compare(champion, challenger, window)
    out["verdict"] = verdict
    out["champion"] = verdict["winner"] == version
    if out["champion"]:
        promote(net, version, scenarios=[scenario.name], verdict=verdict, root=root)
    elif isinstance(champion, LaneRiskModel):
        # the verdict is kept with the champion's history too: who challenged and lost
        entry = champion_entry(net, root) or {}
        promote(net, entry.get("version", champion.version), scenarios=[scenario.name], verdict=verdict, root=root)
    return out


def train_from_ledger(
    scenario_path: str | Path,
    url: str,
    *,
    since: str | None = None,
    name: str | None = None,
    window_share: float = 0.2,
    test_share: float = 0.2,
    command: str,
    root: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """A challenger from recorded decisions and outcomes; it replaces the champion only if it wins."""
    from router.ledger import open_ledger

    scenario = load_scenario(scenario_path)
    net = build_network(scenario)
    ledger = open_ledger(url, create=False)
    try:
        rows = ledger_rows(scenario, ledger.iter_outcomes(since=since), progress=progress)
    finally:
        ledger.close()
    if len(rows) < 500 or rows.late.sum() < 20:
        raise RouterError(
            f"the ledger holds {len(rows)} usable legs with outcomes ({int(rows.late.sum())} late; "
            f"{rows.meta.get('skipped', 0)} skipped): too few to train a challenger"
        )
    return _challenge(
        net, scenario, rows, name=name or f"{scenario.name.split('_')[0]}-ledger", command=command, root=root,
        window_share=window_share, test_share=test_share,
    )


def train_from_file(
    scenario_path: str | Path,
    path: str | Path,
    *,
    name: str | None = None,
    window_share: float = 0.2,
    test_share: float = 0.2,
    command: str,
    root: Path | None = None,
) -> dict:
    """A challenger from an outcome file (docs/risk.md); it replaces the champion only if it wins."""
    scenario = load_scenario(scenario_path)
    net = build_network(scenario)
    rows = file_rows(path)
    if len(rows) < 500 or rows.late.sum() < 20:
        raise RouterError(f"{path}: {len(rows)} rows ({int(rows.late.sum())} late): too few to train a model")
    return _challenge(
        net, scenario, rows, name=name or f"{scenario.name.split('_')[0]}-file", command=command, root=root,
        window_share=window_share, test_share=test_share,
    )


def risk_report(
    scenario_path: str | Path,
    url: str,
    *,
    since: str | None = None,
    threshold: float = DRIFT_THRESHOLD,
    root: Path | None = None,
) -> dict:
    """Calibration and AUC of the champion on recorded outcomes, against its card's; says when to retrain."""
    from router.ledger import open_ledger

    scenario = load_scenario(scenario_path)
    net = build_network(scenario)
    champion = load_champion(net, root)
    if not isinstance(champion, LaneRiskModel):
        raise RouterError(
            "no usable delay-risk model for this network"
            + (f" ({champion.reason})" if champion is not None else "")
            + ": train one with `router train-risk`"
        )
    ledger = open_ledger(url, create=False)
    try:
        rows = ledger_rows(scenario, ledger.iter_outcomes(since=since))
    finally:
        ledger.close()
    if len(rows) == 0 or rows.late.all() or not rows.late.any():
        raise RouterError(
            f"the ledger holds {len(rows)} usable legs with outcomes"
            + ("" if len(rows) == 0 else " all with the same label")
            + ": nothing to compare (record outcomes with the decisions)"
        )
    y = rows.late.astype(int)
    now = risk_metrics(y, champion.compiled.predict(rows.X))
    card = champion.card.get("metrics_test_window", {}).get("model", {})
    drift = now["ece"] - float(card.get("ece", now["ece"]))
    retrain = drift > threshold
    return {
        "version": champion.version,
        "rows": len(rows),
        "late_share": float(y.mean()),
        "window_hours": [float(np.min(rows.time_h)), float(np.max(rows.time_h))],
        "recent": now,
        "card": card,
        "ece_drift": drift,
        "threshold": threshold,
        "retrain": bool(retrain),
        "advice": (
            f"retrain: calibration error {now['ece']:.3f} is {drift:+.3f} above the card's {card.get('ece', float('nan')):.3f} "
            f"(threshold {threshold}); run `router train-risk --scenario {scenario_path} --from-ledger {url}`"
            if retrain
            else f"keep {champion.version}: calibration error {now['ece']:.3f} within {threshold} of the card's"
        ),
    }
