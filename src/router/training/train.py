"""Fit, evaluate and publish delay-risk models; compare a challenger with the champion.

:func:`fit_and_evaluate` splits rows by time only: the latest ``test_share`` of
decision times is the test window; the rest trains the model (whose own
calibration slice is the latest part of it, see
:class:`router.risk.model.DelayRiskModel`). On the test window the model is
compared with the analytic estimate (the ``analytic_risk`` feature: what the
router used before) and with a logistic regression on the same features.

:func:`publish` writes ``models/delay_risk/<version>/`` with its card; the
version is ``<name>-<first 10 hex of the training data hash>``, so the same
command on the same code gives the same version and the same metrics.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from router.features import CATEGORICAL, FEATURES, feature_names
from router.network import Network
from router.risk.baselines import LogisticBaseline
from router.risk.champion import models_dir, network_key
from router.risk.lane import network_domain
from router.risk.metrics import risk_metrics
from router.risk.model import DelayRiskModel
from router.risk.store import save_model
from router.training.plots import reliability_png
from router.training.rows import RowSet

__all__ = ["DEFAULT_MODEL_PARAMS", "Evaluation", "compare", "fit_and_evaluate", "publish", "time_split"]

#: The model's hyper-parameters, chosen on tuning seeds (simulation seeds 1-3 to train,
#: 101-103 to validate; benchmarks/risk.py reports on 201-205). The category codes are
#: plain numbers to the trees: native categorical splits over 30 regions and 16 nodes
#: overfit (validation Brier 0.0479 against 0.0469); what a lane does is learned by the
#: lane history instead (see router.risk.model.DelayRiskModel).
DEFAULT_MODEL_PARAMS: dict = {
    "max_iter": 150,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 100,
    "l2_regularization": 1.0,
    "calibration": "isotonic",
    "calibration_share": 0.3,
    "lane_features": ["node", "carrier", "service", "dest_region"],
    "lane_offset": "analytic_risk",
    "lane_transit": "transit_h",
    "lane_slack": "slack_h",
    "lane_sigma": "sigma_h",
    "lane_smoothing": 20.0,
}

ANALYTIC_COLUMN = feature_names().index("analytic_risk")


def time_split(time_h: np.ndarray, test_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, test mask): the latest ``test_share`` of decision times is the test window.

    The cut is a time: rows at the same instant fall on one side.
    """
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    cut = float(np.quantile(time_h, 1.0 - test_share))
    test = time_h > cut
    if not test.any() or test.all():
        raise ValueError("the rows span too short a time to hold out a later window")
    return ~test, test


@dataclass
class Evaluation:
    model: DelayRiskModel
    logistic: LogisticBaseline
    metrics: dict  # {"model": {...}, "analytic": {...}, "logistic": {...}} on the test window
    train_range_h: tuple[float, float]
    test_range_h: tuple[float, float]
    n_train: int
    n_test: int
    y_test: np.ndarray
    p_test: dict  # name -> predictions on the test window


def fit_and_evaluate(rows: RowSet, *, test_share: float = 0.2, params: dict | None = None) -> Evaluation:
    """Fit the model and the logistic baseline on the earlier rows; score all three on the later window."""
    train, test = time_split(rows.time_h, test_share)
    X, y, t = rows.X, rows.late.astype(int), rows.time_h
    names = list(feature_names())
    model = DelayRiskModel(feature_names=names, **(params or DEFAULT_MODEL_PARAMS))
    model.fit(X[train], y[train], times=t[train], transit_obs=rows.transit_obs_h[train])  # type: ignore[index]
    logistic = LogisticBaseline(feature_names=names, categorical_features=list(CATEGORICAL))
    logistic.fit(X[train], y[train])
    yt = y[test]
    preds = {
        "model": model.predict_proba(X[test])[:, 1],
        "analytic": X[test, ANALYTIC_COLUMN],
        "logistic": logistic.predict_proba(X[test])[:, 1],
    }
    metrics = {name: risk_metrics(yt, p) for name, p in preds.items()}
    return Evaluation(
        model=model,
        logistic=logistic,
        metrics=metrics,
        train_range_h=(float(t[train].min()), float(t[train].max())),
        test_range_h=(float(t[test].min()), float(t[test].max())),
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        y_test=yt,
        p_test=preds,
    )


def publish(
    ev: Evaluation,
    rows: RowSet,
    net: Network,
    *,
    name: str,
    command: str,
    root: Path | None = None,
    overwrite: bool = False,
) -> tuple[str, Path]:
    """Save the evaluated model as ``<root>/delay_risk/<name>-<data hash>`` with its card and diagram."""
    data_hash = rows.data_hash()
    version = f"{name}-{data_hash[:10]}"
    directory = (root or models_dir()) / "delay_risk" / version
    card = {
        "version": version,
        "what": "P(a parcel sent down this lane arrives after the promise), per (node, carrier service) lane of an "
        "order at decision time: scikit-learn HistGradientBoostingClassifier, calibrated on a later time slice",
        "features": [{"name": n, "dtype": d} for n, d in FEATURES],
        "network_domain": network_domain(net),
        "network_key": network_key(net),
        "training": {
            "data_hash": data_hash,
            "rows": len(rows),
            "late": int(rows.late.sum()),
            "train_rows": ev.n_train,
            "test_rows": ev.n_test,
            "train_range_hours": list(ev.train_range_h),
            "test_range_hours": list(ev.test_range_h),
            "calibration_range_hours": [float(x) for x in getattr(ev.model, "calibration_range_", (np.nan, np.nan))],
            **{k: v for k, v in rows.meta.items() if isinstance(v, str | int | float | list)},
            "strategies": {str(k): int(v) for k, v in zip(*np.unique(rows.strategy, return_counts=True))},
        },
        "command": command,
        "python": platform.python_version(),
        "metrics_test_window": ev.metrics,
    }
    png = reliability_png(
        {k: (ev.y_test, p) for k, p in ev.p_test.items()}, f"{version}: held-out later window ({ev.n_test} legs)"
    )
    save_model(ev.model, directory, card, reliability_png=png, overwrite=overwrite)
    return version, directory


def compare(champion, challenger, rows: RowSet) -> dict:
    """Score champion and challenger (LaneRiskModel-like, with ``.compiled``) on the same rows.

    The challenger wins when its Brier score is lower and its calibration error no
    worse than the champion's plus 0.005 (a sharper model that is miscalibrated
    would misprice the late-risk term).
    """
    y = rows.late.astype(int)
    m_champ = risk_metrics(y, champion.compiled.predict(rows.X))
    m_chall = risk_metrics(y, challenger.compiled.predict(rows.X))
    wins = m_chall["brier"] < m_champ["brier"] and m_chall["ece"] <= m_champ["ece"] + 0.005
    return {
        "champion": {"version": champion.version, **m_champ},
        "challenger": {"version": challenger.version, **m_chall},
        "rows": len(rows),
        "window_hours": [float(rows.time_h.min()), float(rows.time_h.max())] if len(rows) else [],
        "winner": challenger.version if wins else champion.version,
        "rule": "challenger wins on a lower Brier score with ECE no worse than the champion's + 0.005",
    }


def command_line() -> str:
    """The command that is running, as typed (for the card)."""
    argv = list(sys.argv)
    argv[0] = Path(argv[0]).name
    return " ".join(argv)
