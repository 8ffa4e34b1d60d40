"""Reference classifiers the delay-risk model must beat on the same features.

A logistic regression is the baseline a reviewer would try first: if the boosted
trees do not beat it on held-out, time-ordered data, their extra complexity (and
compiled inference) is not earning its place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = ["LogisticBaseline", "categorical_mask"]


def categorical_mask(categorical_features, feature_names: Sequence[str] | None, n_features: int) -> np.ndarray:
    """Boolean mask of the categorical columns, from names, indices or a mask (as DelayRiskModel takes them).

    ``None`` means no categorical column. Names need ``feature_names``.
    """
    mask = np.zeros(n_features, dtype=bool)
    if categorical_features is None:
        return mask
    items = list(categorical_features)
    if items and all(isinstance(c, (bool, np.bool_)) for c in items):
        if len(items) != n_features:
            raise ValueError(f"categorical_features is a mask of {len(items)} entries but X has {n_features} columns")
        return np.asarray(items, dtype=bool)
    for c in items:
        if isinstance(c, str):
            if feature_names is None or c not in feature_names:
                raise ValueError(f"categorical feature {c!r} is not among feature_names {list(feature_names or [])}")
            mask[list(feature_names).index(c)] = True
        else:
            i = int(c)
            if not 0 <= i < n_features:
                raise ValueError(f"categorical feature index {i} is outside X's {n_features} columns")
            mask[i] = True
    return mask


def _as_matrix(X) -> np.ndarray:
    # NaN is allowed (imputed, or its own one-hot category); infinities are not
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix (rows x features), got {X.ndim} dimension(s)")
    if np.isinf(X).any():
        raise ValueError("X holds an infinite value; encode unknowns as NaN")
    return X


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """One-hot categoricals + median-imputed, standardised numerics + logistic regression.

    Parameters
    ----------
    feature_names : names of X's columns, in order (as for ``DelayRiskModel``).
    categorical_features : names, indices or a boolean mask of the columns holding
        category codes; they are one-hot encoded, and a code unseen in training is
        ignored (all-zero row) rather than rejected.
    C : inverse L2 regularisation strength of the logistic regression.
    max_iter : iteration cap of the lbfgs solver.

    Attributes
    ----------
    pipeline_ : the fitted ``sklearn.pipeline.Pipeline``.
    classes_, n_features_in_, feature_names_in_ : as for any scikit-learn classifier.
    """

    def __init__(self, *, feature_names=None, categorical_features=None, C: float = 1.0, max_iter: int = 2000):
        self.feature_names = feature_names
        self.categorical_features = categorical_features
        self.C = C
        self.max_iter = max_iter

    def _columns(self, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        names = list(self.feature_names) if self.feature_names is not None else None
        if names is not None and len(names) != n_features:
            raise ValueError(f"feature_names has {len(names)} names but X has {n_features} columns")
        mask = categorical_mask(self.categorical_features, names, n_features)
        return np.flatnonzero(mask), np.flatnonzero(~mask)

    def fit(self, X, y):
        X = _as_matrix(X)
        y = np.asarray(y).ravel()
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
        cat, num = self._columns(X.shape[1])
        parts = []
        if cat.size:
            parts.append(("categorical", OneHotEncoder(handle_unknown="ignore"), cat))
        if num.size:
            parts.append(("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num))
        self.pipeline_ = Pipeline(
            [
                ("columns", ColumnTransformer(parts, remainder="drop")),
                ("logistic", LogisticRegression(C=self.C, max_iter=self.max_iter)),
            ]
        )
        self.pipeline_.fit(X, y)
        self.classes_ = self.pipeline_.classes_
        self.n_features_in_ = X.shape[1]
        names = self.feature_names if self.feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
        self.feature_names_in_ = np.asarray(list(names), dtype=object)
        return self

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} columns but the baseline was fitted on {self.n_features_in_}")
        return X

    def predict_proba(self, X) -> np.ndarray:
        return self.pipeline_.predict_proba(self._checked(X))

    def predict(self, X) -> np.ndarray:
        return self.pipeline_.predict(self._checked(X))
