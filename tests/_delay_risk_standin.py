"""A stand-in for ``router.risk.model.DelayRiskModel`` while that module is not in this tree.

Same constructor, ``fit(X, y, times=None)`` and fitted attributes; boosted trees on
the earlier rows by time, isotonic calibration on the latest ``calibration_share``.
``install()`` puts it into ``sys.modules`` as ``router.risk.model`` only when the real
module cannot be imported, so the tests exercise the real model as soon as it exists.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression


class DelayRiskModel(ClassifierMixin, BaseEstimator):
    def __init__(
        self,
        *,
        feature_names=None,
        categorical_features=None,
        calibration="isotonic",
        calibration_share=0.2,
        max_iter=150,
        learning_rate=0.1,
        max_leaf_nodes=15,
        max_depth=None,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping="auto",
        random_state=0,
    ):
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

    def fit(self, X, y, times=None):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).ravel()
        order = np.argsort(times, kind="stable") if times is not None else np.arange(len(y))
        n_cal = int(round(len(y) * self.calibration_share)) if self.calibration else 0
        fit_rows, cal_rows = order[: len(y) - n_cal], order[len(y) - n_cal :]
        names = list(self.feature_names) if self.feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
        cats = self.categorical_features
        if cats is not None and all(isinstance(c, str) for c in cats):
            cats = [names.index(c) for c in cats]
        self.booster_ = HistGradientBoostingClassifier(
            categorical_features=cats,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=self.early_stopping,
            random_state=self.random_state,
        ).fit(X[fit_rows], y[fit_rows])
        if n_cal:
            raw = self.booster_.predict_proba(X[cal_rows])[:, 1]
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y[cal_rows])
        else:
            self.calibrator_ = None
        self.classes_ = self.booster_.classes_
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(names, dtype=object)
        return self

    def predict_proba(self, X):
        p = self.booster_.predict_proba(np.asarray(X, dtype=np.float64))[:, 1]
        if self.calibrator_ is not None:
            p = self.calibrator_.predict(p)
        return np.column_stack([1.0 - p, p])


def install() -> type:
    """The real ``DelayRiskModel`` when importable, else this stand-in registered under its module name."""
    try:
        return importlib.import_module("router.risk.model").DelayRiskModel
    except ImportError:
        pass
    module = types.ModuleType("router.risk.model")
    module.__doc__ = "test stand-in (tests/_delay_risk_standin.py)"
    DelayRiskModel.__module__ = "router.risk.model"
    module.DelayRiskModel = DelayRiskModel
    sys.modules["router.risk.model"] = module
    return DelayRiskModel
