"""Scores of a probabilistic late-delivery classifier: ranking, calibration and sharpness.

The router uses the predicted probability itself (as an expected cost of lateness),
not only its rank, so calibration matters as much as AUC: every report carries the
Brier score, the log loss and the expected calibration error next to the AUC.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["ECE_BINS", "LOG_LOSS_EPS", "reliability_curve", "risk_metrics"]

ECE_BINS = 15
"""Equal-width probability bins of the expected calibration error (Guo et al. 2017 use 15)."""

LOG_LOSS_EPS = 1e-15
"""Probabilities are clipped to [eps, 1 - eps] so a confident miss costs ~34.5 nats, not infinity."""


def _check(y, p) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y has {y_arr.size} labels but p has {p_arr.size} probabilities; they must pair up one to one")
    if y_arr.size == 0:
        raise ValueError("y and p are empty; metrics need at least one labelled prediction")
    if not np.all((y_arr == 0.0) | (y_arr == 1.0)):
        bad = y_arr[(y_arr != 0.0) & (y_arr != 1.0)][0]
        raise ValueError(f"y must hold 0 (on time) or 1 (late), got {float(bad)!r}")
    if not np.all(np.isfinite(p_arr)) or p_arr.min() < 0.0 or p_arr.max() > 1.0:
        bad = p_arr[~(np.isfinite(p_arr) & (p_arr >= 0.0) & (p_arr <= 1.0))][0]
        raise ValueError(f"p must hold probabilities in [0, 1], got {float(bad)!r}")
    return y_arr, p_arr


def _bin_index(p: np.ndarray, bins: int) -> np.ndarray:
    # floor(p * bins), with p == 1.0 put into the last bin rather than an extra one
    return np.minimum((p * bins).astype(np.int64), bins - 1)


def reliability_curve(y, p, bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean prediction, observed late rate and row count in each of ``bins`` equal-width bins.

    Bin ``k`` holds the predictions in ``[k / bins, (k + 1) / bins)``; the last bin also
    holds ``p == 1``. All three arrays have length ``bins``, so bin ``k`` is always at
    index ``k``; an empty bin has count 0 and NaN for its mean prediction and rate.

    Parameters
    ----------
    y : array of 0/1 labels (1 = late).
    p : array of predicted probabilities of being late, same length.
    bins : number of equal-width bins over [0, 1].

    Returns
    -------
    (mean_p, observed_rate, count) : three float/float/int arrays of length ``bins``.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    y_arr, p_arr = _check(y, p)
    idx = _bin_index(p_arr, bins)
    count = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=p_arr, minlength=bins)
    sum_y = np.bincount(idx, weights=y_arr, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / count, np.nan)
        rate = np.where(count > 0, sum_y / count, np.nan)
    return mean_p, rate, count


def risk_metrics(y, p) -> dict[str, float | int]:
    """AUC, Brier score, expected calibration error, log loss and counts of one set of predictions.

    Definitions (``n`` rows, labels ``y_i`` in {0, 1}, predictions ``p_i``):

    - ``auc``: ROC-AUC (``sklearn.metrics.roc_auc_score``); NaN when ``y`` holds one class
      only, since no ranking can then be judged.
    - ``brier``: ``mean((p_i - y_i)^2)``.
    - ``ece``: expected calibration error over ``ECE_BINS`` = 15 equal-width bins of ``p``
      (see :func:`reliability_curve`), weighted by bin count:
      ``sum_k (n_k / n) * |mean(p in bin k) - mean(y in bin k)|``; empty bins count 0.
    - ``log_loss``: ``-mean(y_i log q_i + (1 - y_i) log(1 - q_i))`` with ``q`` = ``p``
      clipped to ``[1e-15, 1 - 1e-15]``.
    - ``n``: rows; ``positives``: late rows; ``mean_p``: mean prediction (compare with
      ``positives / n`` for the overall calibration-in-the-large).
    """
    y_arr, p_arr = _check(y, p)
    n = int(y_arr.size)
    positives = int(y_arr.sum())
    auc = float(roc_auc_score(y_arr, p_arr)) if 0 < positives < n else math.nan
    brier = float(np.mean((p_arr - y_arr) ** 2))
    mean_p, rate, count = reliability_curve(y_arr, p_arr, ECE_BINS)
    filled = count > 0
    ece = float(np.sum(count[filled] / n * np.abs(mean_p[filled] - rate[filled])))
    q = np.clip(p_arr, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    log_loss = float(-np.mean(y_arr * np.log(q) + (1.0 - y_arr) * np.log1p(-q)))
    return {
        "auc": auc,
        "brier": brier,
        "ece": ece,
        "log_loss": log_loss,
        "n": n,
        "positives": positives,
        "mean_p": float(p_arr.mean()),
    }
