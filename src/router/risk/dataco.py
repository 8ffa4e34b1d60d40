"""The DataCo late-delivery sample: real order lines to check the delay-risk model against.

``../shared/data/late_delivery/dataco_sample_1000.csv`` holds 1,000 order lines of the
DataCo Smart Supply Chain data with the label ``Late_delivery_risk`` (548 late). Its
README gives the reference for a leak-free model on a time-ordered split: ROC-AUC about
0.72, Brier about 0.20; an AUC above 0.9 means a leak. :func:`evaluate_dataco` fits the
delay-risk model and the logistic baseline on the earliest orders and scores both on
the latest ones, so a regression in either shows against that reference.

Only ORDER-TIME columns become features; see ``_EXCLUDED`` for what is left out and why.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from router.risk.baselines import LogisticBaseline
from router.risk.metrics import risk_metrics

__all__ = [
    "DATACO_GRID",
    "DATACO_PARAMS",
    "DATACO_RELATIVE_PATH",
    "DatacoData",
    "evaluate_dataco",
    "load_dataco",
    "select_dataco_params",
    "time_split",
]

DATACO_RELATIVE_PATH = Path("late_delivery") / "dataco_sample_1000.csv"
"""Where the sample sits under the shared data folder (``../shared/data`` of the project root)."""

_LABEL = "Late_delivery_risk"
_DATE = "order date (DateOrders)"
_DATE_FORMAT = "%m/%d/%Y %H:%M"

# (feature name, source column); each known when the order is placed
_CATEGORICAL = (
    ("shipping_mode", "Shipping Mode"),
    ("order_region", "Order Region"),
    ("order_country", "Order Country"),
    ("category", "Category Name"),
)
_NUMERIC = (
    ("scheduled_days", "Days for shipment (scheduled)"),
    ("quantity", "Order Item Quantity"),
    ("product_price", "Order Item Product Price"),
    ("discount_rate", "Order Item Discount Rate"),
    ("sales", "Sales"),
)
_FROM_DATE = ("order_hour", "order_weekday", "order_month")

_EXCLUDED = {
    # identifiers: unique or near-unique per row, they let a model memorise rows, not learn lanes
    "Order Id": "identifier",
    "Order Customer Id": "identifier",
    "Order Item Id": "identifier",
    "Order Item Cardprod Id": "product identifier (same as Product Card Id)",
    "Product Card Id": "product identifier",
    "Product Category Id": "identifier of Category Name, which is used",
    "Product Name": "product identifier (82 names in 1,000 rows)",
    "Order Zipcode": "identifier, empty for 90 % of rows",
    # places finer than the country: 337 states and 612 cities in 1,000 rows, nearly one row each
    "Order State": "near-unique location",
    "Order City": "near-unique location",
    # profit is booked after fulfilment (it nets shipping and returns), an outcome
    "Benefit per order": "outcome (profit)",
    "Order Profit Per Order": "outcome (profit)",
    "Order Item Profit Ratio": "outcome (profit)",
    # the status is the order's state when the data was extracted, not when it was placed:
    # CANCELED (21 rows) and SUSPECTED_FRAUD (24 rows) are late in 0 % of rows against 55 %
    # overall, because a cancelled shipment is labelled not late; COMPLETE / CLOSED say the
    # parcel already arrived. It reveals the outcome, so it is a leak.
    "Order Status": "post-shipment state (leaks the label)",
    # duplicates of used columns
    "Product Price": "same as Order Item Product Price",
    "Sales per customer": "same as Order Item Total (Sales net of the discount)",
    "Order Item Total": "Sales net of the discount: Sales and discount_rate carry it",
    "Order Item Discount": "Sales times discount_rate",
    "Product Status": "constant",
}

DATACO_PARAMS: dict[str, Any] = {
    "max_iter": 120,
    "learning_rate": 0.03,
    "max_leaf_nodes": 7,
    "min_samples_leaf": 80,
    "l2_regularization": 1.0,
    "calibration_share": 0.3,
}
"""DelayRiskModel hyper-parameters for this 1,000-row sample, chosen by :func:`select_dataco_params`
(lowest inner-validation Brier over :data:`DATACO_GRID`) on the training part only, never on
the test rows. Few, shallow, heavily populated leaves and a larger calibration slice: with
700 training rows the defaults (15 leaves of 40 rows, 20 % = 140 rows for isotonic) overfit."""

DATACO_GRID: dict[str, tuple[Any, ...]] = {
    "max_iter": (30, 60, 120),
    "learning_rate": (0.03, 0.1),
    "max_leaf_nodes": (3, 7, 15),
    "min_samples_leaf": (20, 40, 80),
    "l2_regularization": (1.0, 10.0),
    "calibration_share": (0.2, 0.3),
}
"""The candidates :data:`DATACO_PARAMS` was chosen from (216 combinations)."""


@dataclass(frozen=True)
class DatacoData:
    """The sample as model input: one row per order line, in file order.

    ``X`` is float64 with category codes (index into ``categories[name]``) in the
    categorical columns; ``times`` are hours since the first order in the file.
    """

    X: np.ndarray
    y: np.ndarray
    times: np.ndarray
    feature_names: tuple[str, ...]
    categorical_features: tuple[str, ...]
    first_order: datetime
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def date_at(self, hours: float) -> datetime:
        """The order date ``hours`` after the first order."""
        return self.first_order + timedelta(minutes=round(float(hours) * 60))


def load_dataco(path: str | os.PathLike[str]) -> DatacoData:
    """Read the DataCo sample into order-time features, the late label and order times.

    Category codes are the rank of the value among the file's sorted distinct values;
    they carry no label information, so computing them over the whole file does not
    leak. An empty cell becomes NaN.
    """
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} holds no order lines")
    missing = [c for _, c in _CATEGORICAL + _NUMERIC if c not in rows[0]] + [
        c for c in (_LABEL, _DATE) if c not in rows[0]
    ]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; is it the DataCo late-delivery sample?")

    dates = [datetime.strptime(r[_DATE], _DATE_FORMAT) for r in rows]
    first = min(dates)
    times = np.array([(d - first).total_seconds() / 3600.0 for d in dates])
    y = np.array([int(r[_LABEL]) for r in rows], dtype=np.int64)

    columns: list[np.ndarray] = []
    names: list[str] = []
    categories: dict[str, tuple[str, ...]] = {}
    for name, col in _CATEGORICAL:
        values = [r[col].strip() for r in rows]
        levels = tuple(sorted({v for v in values if v}))
        index = {v: i for i, v in enumerate(levels)}
        columns.append(np.array([index[v] if v else np.nan for v in values], dtype=np.float64))
        names.append(name)
        categories[name] = levels
    for name, col in _NUMERIC:
        columns.append(np.array([float(r[col]) if r[col].strip() else np.nan for r in rows]))
        names.append(name)
    columns.append(np.array([d.hour for d in dates], dtype=np.float64))
    columns.append(np.array([d.weekday() for d in dates], dtype=np.float64))
    columns.append(np.array([d.month for d in dates], dtype=np.float64))
    names += _FROM_DATE

    return DatacoData(
        X=np.column_stack(columns),
        y=y,
        times=times,
        feature_names=tuple(names),
        categorical_features=tuple(n for n, _ in _CATEGORICAL),
        first_order=first,
        categories=categories,
    )


def time_split(times: np.ndarray, test_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the earliest ``1 - test_share`` (train) and the latest ``test_share`` (test) by time."""
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must be strictly between 0 and 1, got {test_share}")
    order = np.argsort(times, kind="stable")
    n_test = int(round(len(order) * test_share))
    if n_test == 0 or n_test == len(order):
        raise ValueError(f"test_share {test_share} leaves no rows on one side of {len(order)} rows")
    return order[: len(order) - n_test], order[len(order) - n_test :]


def _fit_pair(data: DatacoData, train: np.ndarray, model_params: Mapping[str, Any] | None):
    from router.risk.model import DelayRiskModel  # written alongside; imported late so this module loads without it

    model = DelayRiskModel(
        feature_names=list(data.feature_names),
        categorical_features=list(data.categorical_features),
        **dict(model_params or {}),
    ).fit(data.X[train], data.y[train], times=data.times[train])
    baseline = LogisticBaseline(
        feature_names=list(data.feature_names), categorical_features=list(data.categorical_features)
    ).fit(data.X[train], data.y[train])
    return model, baseline


def evaluate_dataco(
    path: str | os.PathLike[str],
    test_share: float = 0.3,
    *,
    model_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit on the earliest orders, score on the latest: the delay-risk model against the logistic baseline.

    The training rows are the earliest ``1 - test_share`` by order date; DelayRiskModel
    takes its calibration slice from the latest of those (``fit(..., times=...)``), so no
    test row is seen by the trees, the calibration or the choice of ``model_params``
    (see :func:`select_dataco_params`). ``model_params`` go to ``DelayRiskModel``
    (None: its defaults; pass :data:`DATACO_PARAMS` for the values tuned for this sample).

    Returns
    -------
    dict with ``model`` and ``baseline`` (:func:`~router.risk.metrics.risk_metrics` on the
    test rows), ``train_rows``, ``test_rows``, ``train_start``, ``train_end``,
    ``test_start``, ``test_end`` (ISO dates of the first and last order of each part)
    and ``model_params``.
    """
    data = load_dataco(path)
    train, test = time_split(data.times, test_share)
    model, baseline = _fit_pair(data, train, model_params)
    X_test, y_test = data.X[test], data.y[test]
    return {
        "model": risk_metrics(y_test, model.predict_proba(X_test)[:, 1]),
        "baseline": risk_metrics(y_test, baseline.predict_proba(X_test)[:, 1]),
        "train_rows": int(train.size),
        "test_rows": int(test.size),
        "train_start": data.date_at(data.times[train].min()).isoformat(),
        "train_end": data.date_at(data.times[train].max()).isoformat(),
        "test_start": data.date_at(data.times[test].min()).isoformat(),
        "test_end": data.date_at(data.times[test].max()).isoformat(),
        "model_params": dict(model_params or {}),
    }


def select_dataco_params(
    path: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    test_share: float = 0.3,
    *,
    inner_share: float = 0.3,
    score: str = "brier",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Choose DelayRiskModel hyper-parameters on the training part only, by a time-ordered inner split.

    The test rows of :func:`evaluate_dataco` (the latest ``test_share``) are dropped
    first; of the rest, the earliest ``1 - inner_share`` fit each candidate and the
    latest ``inner_share`` score it. The lowest ``score`` (a loss: ``brier``,
    ``log_loss`` or ``ece``) wins; ties keep the earlier candidate. Brier is the default:
    isotonic calibration on a slice of ~150 rows outputs exact 0s and 1s, which the log
    loss punishes with ~34 nats per miss, so on this sample it ranks candidates by luck.

    Returns
    -------
    (best params, one row per candidate with its params and inner-validation metrics)
    """
    if score not in ("log_loss", "brier", "ece"):
        raise ValueError(f"score must be a loss (log_loss, brier or ece), got {score!r}")
    from router.risk.model import DelayRiskModel  # written alongside; imported late so this module loads without it

    data = load_dataco(path)
    train, _ = time_split(data.times, test_share)
    inner_fit_local, inner_val_local = time_split(data.times[train], inner_share)
    fit_rows, val_rows = train[inner_fit_local], train[inner_val_local]
    keys = list(grid)
    table: list[dict[str, Any]] = []
    for values in product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        model = DelayRiskModel(
            feature_names=list(data.feature_names),
            categorical_features=list(data.categorical_features),
            **params,
        ).fit(data.X[fit_rows], data.y[fit_rows], times=data.times[fit_rows])
        m = risk_metrics(data.y[val_rows], model.predict_proba(data.X[val_rows])[:, 1])
        table.append({"params": params, **m})
    best = min(table, key=lambda row: row[score])
    return dict(best["params"]), table
