"""The delay-risk estimator: P(parcel arrives after the promise) for one lane.

A lane is one (node, carrier option) pair of an order; its features arrive as a
float64 matrix X [n_rows, F] whose columns the caller names (some are integer
category codes, NaN means missing). The model is feature-agnostic: it learns
from whatever columns it is given.

Two stages, split in time:

1. a gradient-boosted tree ensemble (scikit-learn's
   :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, categorical
   columns as native categoricals) trained on the earlier rows;
2. a calibrator fitted on the booster's margin (raw log-odds) of the latest
   ``calibration_share`` of rows: isotonic regression by default, Platt's
   sigmoid as the alternative.

Calibrating on the latest slice, not a random one, is deliberate: the router
acts on the probabilities as numbers (expected lateness cost), carrier
performance drifts, and the calibrator should reflect the most recent
behaviour the booster has not seen -- exactly the situation at serving time
(Niculescu-Mizil & Caruana, "Predicting good probabilities with supervised
learning", ICML 2005, for why boosted trees need calibrating at all).

Serving uses :meth:`DelayRiskModel.compile`, which flattens the trees and the
calibrator into plain arrays evaluated by compiled code
(:class:`router.risk.compiled.CompiledRisk`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

__all__ = ["DelayRiskModel", "LaneHistory", "MIN_CALIBRATION_ROWS"]

#: Fewer calibration rows than this give an isotonic fit of a handful of steps
#: whose probabilities are mostly noise.
MIN_CALIBRATION_ROWS = 50

_CALIBRATIONS = ("isotonic", "sigmoid")


class DelayRiskModel(ClassifierMixin, BaseEstimator):
    """Calibrated gradient-boosted trees for P(late) of a lane.

    Follows scikit-learn's estimator contract: the constructor stores the
    hyperparameters as given, :meth:`fit` learns the attributes ending in ``_``,
    and :func:`sklearn.base.clone` gives an unfitted copy.

    Parameters
    ----------
    feature_names : sequence of str, optional
        One name per column of X; ``x0, x1, ...`` when omitted.
    categorical_features : sequence of str or int, optional
        Columns holding category codes, by name or by index. The booster
        splits them as categories (sets of codes), not as numbers; at most 255
        distinct codes per column. Codes unseen in training, negative codes and
        NaN follow the split's missing-value branch.
    calibration : {"isotonic", "sigmoid"}
        Calibrator fitted on the booster's margin of the calibration slice.
    calibration_share : float in (0, 1)
        Share of rows, the latest by time, kept out of the booster's training
        to fit the calibrator.
    max_iter, learning_rate, max_leaf_nodes, max_depth, min_samples_leaf, \
l2_regularization, early_stopping, random_state
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingClassifier`.

    Attributes
    ----------
    booster_ : HistGradientBoostingClassifier
        Trained on the rows before the calibration slice, labels encoded 0/1
        (1 = ``classes_[1]``, late).
    calibrator_ : IsotonicRegression or LogisticRegression
        Maps the booster's margin to P(``classes_[1]``).
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    feature_names_in_ : tuple of str
    categorical_indices_ : tuple of int
        Columns the booster treats as categorical.
    train_range_, calibration_range_ : tuple
        (first, last) time of the rows in each slice; row positions when
        ``fit`` got no ``times``. Every calibration row is strictly later than
        every training row.
    n_train_rows_, n_calibration_rows_ : int
    lane_history_ : LaneHistory or None
        With ``lane_features``: what each lane did in the training slice, given to
        the booster as extra columns (see below).

    Lane history. What a lane does beyond the analytic estimate (a carrier that is
    slow to one region from one node) is a three-way interaction of category
    codes that trees of a few leaves learn poorly from a few hundred rows per
    lane. One number per lane states it, shrunk toward 0 by ``lane_smoothing``
    pseudo rows (``sum(r) / (n + lane_smoothing)``):

    * with ``fit(..., transit_obs=...)`` and ``lane_transit`` (the column of the
      expected transit hours), ``r`` is the log ratio of observed to expected
      transit, clipped to +-0.5 (an exception's extra days say nothing about the
      lane): the lane's transit bias, ``lane_history``; with ``lane_slack`` and
      ``lane_sigma`` too, a second column ``lane_adjusted_z`` = (slack - expected
      transit x (exp(bias) - 1)) / sigma, the analytic margin with the lane's
      transit corrected by its bias;
    * otherwise ``r`` is the label minus the ``lane_offset`` column.

    The training rows get it out of fold (five contiguous time folds, each
    encoded from the other four), so the booster never sees a row's own outcome
    through it; the calibration slice and every later prediction use the table
    of the whole training slice, which holds only outcomes before them.
    """

    def __init__(
        self,
        *,
        feature_names: Sequence[str] | None = None,
        categorical_features: Sequence[str | int] | None = None,
        calibration: str = "isotonic",
        calibration_share: float = 0.2,
        max_iter: int = 150,
        learning_rate: float = 0.1,
        max_leaf_nodes: int | None = 15,
        max_depth: int | None = None,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        early_stopping: str | bool = "auto",
        random_state: int | None = 0,
        lane_features: Sequence[str | int] | None = None,
        lane_offset: str | int | None = None,
        lane_smoothing: float = 50.0,
        lane_transit: str | int | None = None,
        lane_slack: str | int | None = None,
        lane_sigma: str | int | None = None,
    ) -> None:
        self.feature_names = feature_names
        self.categorical_features = categorical_features
        self.calibration = calibration
        self.calibration_share = calibration_share
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.lane_features = lane_features
        self.lane_offset = lane_offset
        self.lane_smoothing = lane_smoothing
        self.lane_transit = lane_transit
        self.lane_slack = lane_slack
        self.lane_sigma = lane_sigma

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, times=None, transit_obs=None) -> DelayRiskModel:
        """Train the booster on the earlier rows, the calibrator on the latest ones.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features), float
            NaN marks a missing value.
        y : array-like of shape (n_rows,)
            Two classes; the larger (``classes_[1]``, e.g. 1 or True) is "late".
        times : array-like of shape (n_rows,), optional
            Decision time of each row (float hours or datetime64). Rows are
            ordered by it (stable sort); None keeps the given order.
        transit_obs : array-like of shape (n_rows,), optional
            Observed transit hours of each row's parcel (NaN unknown), for the
            lane history (see the class docstring).
        """
        if self.calibration not in _CALIBRATIONS:
            raise ValueError(f"calibration={self.calibration!r}: expected one of {_CALIBRATIONS}")
        share = float(self.calibration_share)
        if not 0.0 < share < 1.0:
            raise ValueError(f"calibration_share={self.calibration_share!r}: must lie strictly between 0 and 1")

        X = _as_matrix(X)
        n_rows, n_features = X.shape
        names = self._resolve_names(n_features)
        cat_idx = _resolve_categorical(self.categorical_features, names)

        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n_rows:
            raise ValueError(f"y has shape {y.shape}; expected ({n_rows},), one label per row of X")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError("y contains NaN: every row needs an on-time/late label")
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(
                f"y has one class ({classes.tolist()[0]!r} on all {n_rows} rows): the delay-risk model needs "
                "both on-time and late examples"
            )
        if classes.size > 2:
            raise ValueError(f"y has {classes.size} classes {classes.tolist()!r}: expected two (on time, late)")
        y01 = (y == classes[1]).astype(np.int8)

        t = _times_or_positions(times, n_rows)
        order = np.argsort(t, kind="stable")
        t_sorted = t[order]
        cut = _time_boundary(t_sorted, share)
        train, calib = order[:cut], order[cut:]
        if cut == 0 or calib.size < MIN_CALIBRATION_ROWS:
            raise ValueError(
                f"the calibration slice has {calib.size} rows (calibration_share={share} of {n_rows} rows, "
                f"cut at a time boundary); at least {MIN_CALIBRATION_ROWS} are needed and the training slice "
                f"must not be empty ({cut} rows)"
            )
        for what, idx in (("training", train), ("calibration", calib)):
            if np.unique(y01[idx]).size < 2:
                raise ValueError(
                    f"the {what} slice ({idx.size} rows) has one class only ({classes.tolist()[y01[idx[0]]]!r}): "
                    "both on-time and late examples are needed in each slice"
                )

        history = None
        X_fit = X
        if self.lane_features is not None:
            lane_cols = _resolve_categorical(self.lane_features, names)

            def col(name):
                return None if name is None else _resolve_categorical([name], names)[0]

            obs = None if transit_obs is None else np.asarray(transit_obs, dtype=np.float64)
            if obs is not None and obs.shape != (n_rows,):
                raise ValueError(f"transit_obs has shape {obs.shape}; expected ({n_rows},)")
            history = LaneHistory(
                lane_cols, col(self.lane_offset), float(self.lane_smoothing),
                transit_col=col(self.lane_transit) if obs is not None else None,
                slack_col=col(self.lane_slack), sigma_col=col(self.lane_sigma),
            )
            target = history.target(X, y01, obs)
            history.learn(X[train], target[train])
            extra = np.empty((n_rows, history.n_columns))
            extra[train] = history.out_of_fold(X[train], target[train])
            extra[calib] = history.transform(X[calib])
            X_fit = np.column_stack([X, extra])
        n_cols = X_fit.shape[1]
        is_cat = np.zeros(n_cols, dtype=bool)
        is_cat[list(cat_idx)] = True
        booster = HistGradientBoostingClassifier(
            loss="log_loss",
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=self.early_stopping,
            categorical_features=is_cat if cat_idx else None,
            random_state=self.random_state,
        )
        booster.fit(X_fit[train], y01[train])

        margin = booster.decision_function(X_fit[calib])
        calibrator = _fit_calibrator(self.calibration, margin, y01[calib])

        self.booster_ = booster
        self.calibrator_ = calibrator
        self.classes_ = classes
        self.n_features_in_ = n_features
        self.feature_names_in_ = names
        self.categorical_indices_ = cat_idx
        self.train_range_ = (t_sorted[0], t_sorted[cut - 1])
        self.calibration_range_ = (t_sorted[cut], t_sorted[-1])
        self.n_train_rows_ = int(train.size)
        self.n_calibration_rows_ = int(calib.size)
        self.lane_history_ = history
        self.booster_feature_names_ = names + (history.column_names if history is not None else ())
        return self

    def _resolve_names(self, n_features: int) -> tuple[str, ...]:
        if self.feature_names is None:
            return tuple(f"x{i}" for i in range(n_features))
        names = tuple(str(n) for n in self.feature_names)
        if len(names) != n_features:
            raise ValueError(f"feature_names has {len(names)} names but X has {n_features} columns")
        if len(set(names)) != len(names):
            raise ValueError(f"feature_names repeats a name: {names!r}")
        return names

    # -------------------------------------------------------------- predict

    def margin(self, X) -> np.ndarray:
        """The booster's raw log-odds of late, float64[n] (before calibration)."""
        X = self._check_X(X)
        history = getattr(self, "lane_history_", None)
        if history is not None:
            X = np.column_stack([X, history.transform(X)])
        return self.booster_.decision_function(X)

    def predict_proba(self, X) -> np.ndarray:
        """[P(classes_[0]), P(classes_[1])] per row, calibrated; float64[n, 2]."""
        p = self._calibrate(self.margin(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """The more probable class of each row (ties go to ``classes_[0]``, as argmax does)."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p > 0.5).astype(np.intp)]

    def compile(self):
        """The fitted model as flat arrays for fast scoring (:class:`~router.risk.compiled.CompiledRisk`)."""
        from router.risk.compiled import CompiledRisk

        return CompiledRisk.from_model(self)

    def _calibrate(self, margin: np.ndarray) -> np.ndarray:
        if isinstance(self.calibrator_, IsotonicRegression):
            p = self.calibrator_.predict(margin)
        else:
            p = self.calibrator_.predict_proba(margin.reshape(-1, 1))[:, 1]
        return np.asarray(p, dtype=np.float64)

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self, "booster_")
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} columns but the model was fitted on {self.n_features_in_} "
                f"({', '.join(self.feature_names_in_)})"
            )
        return X


# ------------------------------------------------------------------ helpers


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X has {X.ndim} dimension(s); expected a 2-D matrix [n_rows, n_features]")
    if X.shape[0] == 0:
        raise ValueError("X has no rows")
    return X


def _resolve_categorical(categorical, names: tuple[str, ...]) -> tuple[int, ...]:
    if categorical is None:
        return ()
    if isinstance(categorical, str | int | np.integer):
        raise ValueError(f"categorical_features={categorical!r}: expected a sequence of names or indices")
    out = []
    for c in categorical:
        if isinstance(c, str):
            if c not in names:
                raise ValueError(f"categorical feature {c!r} is not one of the feature names {names!r}")
            out.append(names.index(c))
        elif isinstance(c, int | np.integer) and not isinstance(c, bool):
            if not 0 <= c < len(names):
                raise ValueError(f"categorical feature index {c} is out of range for {len(names)} features")
            out.append(int(c))
        else:
            raise ValueError(f"categorical feature {c!r}: expected a feature name or a column index")
    if len(set(out)) != len(out):
        raise ValueError(f"categorical_features names a column twice: {categorical!r}")
    return tuple(sorted(out))


def _times_or_positions(times, n_rows: int) -> np.ndarray:
    if times is None:
        return np.arange(n_rows)
    t = np.asarray(times)
    if t.ndim != 1 or t.shape[0] != n_rows:
        raise ValueError(f"times has shape {t.shape}; expected ({n_rows},), one decision time per row of X")
    if t.dtype.kind == "M":
        if np.isnat(t).any():
            raise ValueError("times contains NaT: every row needs a decision time")
    elif t.dtype.kind in "iuf":
        if t.dtype.kind == "f" and not np.isfinite(t).all():
            raise ValueError("times contains NaN or inf: every row needs a decision time")
    else:
        raise ValueError(f"times has dtype {t.dtype}; expected float hours or datetime64")
    return t


def _time_boundary(t_sorted: np.ndarray, share: float) -> int:
    """Index of the first calibration row in time order.

    The target is the last ``share`` of rows; rows sharing a time must fall on
    one side, so the cut moves to the nearer of the two time boundaries around
    the target (ties to the side that keeps both slices non-empty).
    """
    n = t_sorted.shape[0]
    target = n - int(round(share * n))
    target = min(max(target, 1), n - 1)
    t_cut = t_sorted[target]
    before = int(np.searchsorted(t_sorted, t_cut, side="left"))  # tied rows go to calibration
    after = int(np.searchsorted(t_sorted, t_cut, side="right"))  # tied rows go to training
    candidates = [c for c in (before, after) if 0 < c < n]
    if not candidates:
        return 0
    return min(candidates, key=lambda c: (abs(c - target), -c))


def _fit_calibrator(kind: str, margin: np.ndarray, y01: np.ndarray):
    if kind == "isotonic":
        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True).fit(margin, y01)
    # Platt (1999): logistic regression on the margin against smoothed targets
    # (N+ + 1)/(N+ + 2) and 1/(N- + 2), which keeps a well-separated slice from
    # driving the slope to infinity. Soft targets are fitted as each row twice,
    # once per class, weighted by the target's share.
    n_pos = float(y01.sum())
    n_neg = float(y01.size - n_pos)
    target = np.where(y01 == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    Xm = np.concatenate([margin, margin]).reshape(-1, 1)
    yy = np.concatenate([np.ones(margin.size, dtype=np.int8), np.zeros(margin.size, dtype=np.int8)])
    w = np.concatenate([target, 1.0 - target])
    return LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000).fit(Xm, yy, sample_weight=w)



class LaneHistory:
    """What each lane did in training, looked up by the lane's category codes (plain arrays, no scikit-learn).

    A lane is the tuple of codes in ``columns``; codes combine into one int64 key
    by mixed radix. A lane unseen in training, or a row with a NaN or negative
    code, gets 0 (no history: the booster relies on the other columns). See
    :class:`DelayRiskModel` for what the value is.
    """

    FOLDS = 5
    CLIP = 0.5

    def __init__(self, columns, offset_col=None, smoothing: float = 50.0, *, transit_col=None, slack_col=None, sigma_col=None) -> None:
        self.columns = tuple(int(c) for c in columns)
        self.offset_col = None if offset_col is None else int(offset_col)
        self.smoothing = float(smoothing)
        self.transit_col = None if transit_col is None else int(transit_col)
        adjusted = self.transit_col is not None and slack_col is not None and sigma_col is not None
        self.slack_col = int(slack_col) if adjusted else None
        self.sigma_col = int(sigma_col) if adjusted else None
        self.radices = np.zeros(len(self.columns), dtype=np.int64)
        self.keys = np.zeros(0, dtype=np.int64)
        self.values = np.zeros(0)

    @property
    def column_names(self) -> tuple[str, ...]:
        return ("lane_history", "lane_adjusted_z") if self.slack_col is not None else ("lane_history",)

    @property
    def n_columns(self) -> int:
        return len(self.column_names)

    def target(self, X, y01, transit_obs) -> np.ndarray:
        """Per row, what the table averages: the clipped log transit ratio, or the label's residual (NaN: none)."""
        if self.transit_col is not None and transit_obs is not None:
            expected = X[:, self.transit_col]
            ok = np.isfinite(transit_obs) & np.isfinite(expected) & (transit_obs > 0) & (expected > 0)
            ratio = np.log(np.where(ok, transit_obs, 1.0) / np.where(ok, expected, 1.0))
            return np.where(ok, np.clip(ratio, -self.CLIP, self.CLIP), np.nan)
        offset = X[:, self.offset_col] if self.offset_col is not None else 0.0
        return np.asarray(y01, dtype=np.float64) - np.nan_to_num(offset, nan=0.0)

    def learn(self, X, target) -> None:
        codes = X[:, list(self.columns)]
        finite = np.isfinite(codes).all(axis=1) & (codes >= 0).all(axis=1)
        self.radices = (np.max(np.where(finite[:, None], codes, 0), axis=0) + 2).astype(np.int64)
        self.keys, self.values = self._table(self._keys(X), target)

    def _keys(self, X) -> np.ndarray:
        """int64[n] lane key; -1 for a row whose codes are NaN, negative, fractional or beyond the radix."""
        codes = X[:, list(self.columns)]
        ok = np.isfinite(codes).all(axis=1) & (codes >= 0).all(axis=1) & (codes == np.floor(codes)).all(axis=1)
        c = np.where(ok[:, None], codes, 0).astype(np.int64)
        ok &= (c < self.radices[None, :]).all(axis=1)
        key = np.zeros(len(X), dtype=np.int64)
        for j in range(c.shape[1]):
            key = key * self.radices[j] + c[:, j]
        return np.where(ok, key, -1)

    def _table(self, keys, target) -> tuple[np.ndarray, np.ndarray]:
        valid = (keys >= 0) & np.isfinite(target)
        uniq, inv = np.unique(keys[valid], return_inverse=True)
        sums = np.bincount(inv, weights=target[valid], minlength=len(uniq))
        counts = np.bincount(inv, minlength=len(uniq))
        return uniq, sums / (counts + self.smoothing)

    @staticmethod
    def _lookup(table_keys, table_values, keys) -> np.ndarray:
        if len(table_keys) == 0:
            return np.zeros(len(keys))
        pos = np.minimum(np.searchsorted(table_keys, keys), len(table_keys) - 1)
        return np.where((table_keys[pos] == keys) & (keys >= 0), table_values[pos], 0.0)

    def _columns(self, X, h) -> np.ndarray:
        if self.slack_col is None:
            return h[:, None]
        transit = X[:, self.transit_col]  # type: ignore[index]
        z = (X[:, self.slack_col] - transit * np.expm1(h)) / X[:, self.sigma_col]
        return np.column_stack([h, z])

    def transform(self, X) -> np.ndarray:
        """float64[n, n_columns]: the lane's history (0 without one), and the adjusted margin."""
        X = np.asarray(X, dtype=np.float64)
        return self._columns(X, self._lookup(self.keys, self.values, self._keys(X)))

    def out_of_fold(self, X, target) -> np.ndarray:
        """The training rows' columns, each fold's from the other folds (rows in time order, contiguous folds)."""
        keys = self._keys(X)
        h = np.zeros(len(X))
        for fold in np.array_split(np.arange(len(X)), self.FOLDS):
            rest = np.ones(len(X), dtype=bool)
            rest[fold] = False
            k, v = self._table(keys[rest], target[rest])
            h[fold] = self._lookup(k, v, keys[fold])
        return self._columns(X, h)
