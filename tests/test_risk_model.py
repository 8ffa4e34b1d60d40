"""The delay-risk model: time-split calibration, and compiled scoring that matches scikit-learn.

One synthetic lane table (numeric, categorical and missing features, a label
that ignores one column) trained once per module; the compiled model is checked
against the estimator on rows that include categories never seen in training.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from router.risk.compiled import CompiledRisk
from router.risk.model import DelayRiskModel

NAMES = ("distance_km", "load_ratio", "carrier", "region", "noise", "weight_kg", "constant")
CATEGORICAL = ("carrier", "region")
N_CARRIERS, N_REGIONS = 6, 12


def lanes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, late, decision time in hours): lateness depends on every column but `noise` and `constant`."""
    rng = np.random.default_rng(seed)
    distance = rng.gamma(2.0, 300.0, n)
    load = rng.uniform(0.0, 1.2, n)
    carrier = rng.integers(0, N_CARRIERS, n).astype(float)
    region = rng.integers(0, N_REGIONS, n).astype(float)
    noise = rng.normal(size=n)
    weight = rng.lognormal(0.0, 1.0, n)
    load[rng.random(n) < 0.1] = np.nan
    region[rng.random(n) < 0.05] = np.nan
    z = -2.0 + distance / 600.0 + 2.0 * np.nan_to_num(load, nan=1.0) ** 2
    z += np.array([0.0, 0.5, -0.5, 1.0, 0.0, 0.3])[carrier.astype(int)] + 0.1 * np.log(weight)
    z += np.where(np.isnan(region), 0.5, np.where(region % 3 == 0, 0.7, 0.0))
    late = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(int)
    X = np.column_stack([distance, load, carrier, region, noise, weight, np.full(n, 3.0)])
    hours = np.round(rng.uniform(0.0, 24.0 * 60, n), 1)  # rounded: many rows share a decision time
    return X, late, hours


def scoring_rows(n: int = 10_000) -> np.ndarray:
    """Fresh rows with categories unseen in training, negative and fractional codes, and NaNs."""
    X, _, _ = lanes(n, seed=99)
    X[::7, 2] = N_CARRIERS + 3  # a carrier the model never saw
    X[::11, 3] = -1.0
    X[::13, 3] = 2.5
    X[::17, 0] = np.nan
    X[::19, 2] = np.nan
    X[::23, 5] = np.inf
    return X


@pytest.fixture(scope="module")
def fitted() -> DelayRiskModel:
    X, late, hours = lanes(8000, seed=1)
    model = DelayRiskModel(
        feature_names=NAMES, categorical_features=CATEGORICAL, max_iter=80, early_stopping=False, random_state=0
    )
    return model.fit(X, late, times=hours)


@pytest.fixture(scope="module")
def compiled(fitted) -> CompiledRisk:
    return fitted.compile()


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return scoring_rows()


# ------------------------------------------------------------ compiled == sklearn


def test_compiled_probabilities_match_sklearn(fitted, compiled, rows):
    p = compiled.predict(rows)
    assert p.shape == (10_000,) and p.dtype == np.float64
    assert np.max(np.abs(p - fitted.predict_proba(rows)[:, 1])) <= 1e-6
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert compiled.n_trees == 80 and compiled.n_features == len(NAMES)


def test_compiled_margins_match_sklearn(fitted, compiled, rows):
    assert np.max(np.abs(compiled.margin(rows) - fitted.margin(rows))) <= 1e-9
    assert np.max(np.abs(fitted.margin(rows) - fitted.booster_.decision_function(rows))) == 0.0


def test_unseen_and_out_of_range_categories_follow_the_missing_branch(fitted, compiled, rows):
    """scikit-learn sends NaN, unseen, negative and fractional codes down the missing-value branch."""
    base = rows[:500].copy()
    base[:, 2] = 1.0
    for odd in (np.nan, float(N_CARRIERS + 3), -1.0, 0.5):
        variant = base.copy()
        variant[:, 2] = odd
        nan_variant = base.copy()
        nan_variant[:, 2] = np.nan
        np.testing.assert_array_equal(compiled.predict(variant), compiled.predict(nan_variant))
        assert np.max(np.abs(compiled.predict(variant) - fitted.predict_proba(variant)[:, 1])) <= 1e-6
    # and the carrier matters: a known code scores differently from a missing one somewhere
    assert np.any(compiled.margin(base) != compiled.margin(nan_variant))


def test_sigmoid_calibration_matches_and_is_increasing():
    X, late, hours = lanes(4000, seed=2)
    model = DelayRiskModel(
        feature_names=NAMES, categorical_features=[2, 3], calibration="sigmoid", max_iter=40, early_stopping=False
    ).fit(X, late, times=hours)
    assert isinstance(model.calibrator_, LogisticRegression)
    assert model.calibrator_.coef_[0, 0] > 0  # a larger margin means a larger P(late)
    Xs = scoring_rows(2000)
    compiled = model.compile()
    assert compiled.calibration == "sigmoid"
    p = compiled.predict(Xs)
    assert np.max(np.abs(p - model.predict_proba(Xs)[:, 1])) <= 1e-6
    m = compiled.margin(Xs)
    order = np.argsort(m)
    assert np.all(np.diff(p[order]) >= 0.0)


def test_isotonic_calibrator_is_fitted_on_the_margin(fitted, rows):
    assert isinstance(fitted.calibrator_, IsotonicRegression)
    expected = np.clip(fitted.calibrator_.predict(fitted.margin(rows[:100])), 0.0, 1.0)
    np.testing.assert_allclose(fitted.predict_proba(rows[:100])[:, 1], expected, rtol=0, atol=0)
    proba = fitted.predict_proba(rows[:100])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(fitted.predict(rows[:100]), fitted.classes_[(proba[:, 1] > 0.5).astype(int)])


# --------------------------------------------------------------- contributions


def test_contributions_add_up_to_the_probability(fitted, compiled, rows):
    base, contrib = compiled.contributions(rows)
    p = compiled.predict(rows)
    assert contrib.shape == (10_000, len(NAMES))
    assert np.max(np.abs(base + contrib.sum(axis=1) - p)) <= 1e-9
    # base is the calibrated probability of the expected margin, the same for every row
    assert np.ptp(base) == 0.0
    assert abs(base[0] - fitted._calibrate(np.array([compiled.expected_margin]))[0]) <= 1e-12


def test_contributions_credit_what_the_label_depends_on(compiled, rows):
    _, contrib = compiled.contributions(rows)
    total = dict(zip(NAMES, contrib.mean(axis=0)))
    size = dict(zip(NAMES, np.abs(contrib).mean(axis=0)))
    # no tree can split a constant column: exactly nothing
    assert size["constant"] == 0.0
    # the label ignores `noise`: the splits the trees made on it cancel out over the rows,
    # and each row's credit is a fraction of what the real causes get
    assert abs(total["noise"]) < 0.002
    for cause in ("distance_km", "load_ratio", "carrier", "region"):
        assert size[cause] > 0.04
        assert size["noise"] < 0.4 * size[cause], cause


def test_contributions_point_the_right_way():
    """A longer distance raises P(late) here, so its credit grows with the distance."""
    X, late, hours = lanes(4000, seed=4)
    compiled = (
        DelayRiskModel(feature_names=NAMES, categorical_features=CATEGORICAL, max_iter=40, early_stopping=False)
        .fit(X, late, times=hours)
        .compile()
    )
    near, far = scoring_rows(500), scoring_rows(500)
    near[:, 0], far[:, 0] = 50.0, 2500.0
    _, c_near = compiled.contributions(near)
    _, c_far = compiled.contributions(far)
    assert c_far[:, 0].mean() > 0.0 > c_near[:, 0].mean()


# ------------------------------------------------------------- the time split


def test_calibration_slice_is_strictly_later_than_training(fitted):
    X, late, hours = lanes(8000, seed=1)
    assert fitted.train_range_[1] < fitted.calibration_range_[0]
    assert fitted.train_range_[0] == hours.min() and fitted.calibration_range_[1] == hours.max()
    # rows sharing a decision time never straddle the cut
    assert fitted.n_calibration_rows_ == int(np.sum(hours >= fitted.calibration_range_[0]))
    assert fitted.n_train_rows_ == int(np.sum(hours <= fitted.train_range_[1]))
    assert fitted.n_train_rows_ + fitted.n_calibration_rows_ == 8000
    assert abs(fitted.n_calibration_rows_ - 1600) <= 10
    assert fitted.booster_.n_features_in_ == len(NAMES)


def test_times_as_datetimes_and_shuffled_rows():
    X, late, hours = lanes(3000, seed=5)
    shuffle = np.random.default_rng(0).permutation(3000)
    stamps = np.datetime64("2026-11-02T00:00") + (hours * 60).astype("timedelta64[m]")
    model = DelayRiskModel(feature_names=NAMES, max_iter=20).fit(X[shuffle], late[shuffle], times=stamps[shuffle])
    assert model.train_range_[1] < model.calibration_range_[0]
    assert model.calibration_range_[1] == stamps.max()
    assert model.n_calibration_rows_ == int(np.sum(stamps >= model.calibration_range_[0]))
    # without times the given order is the time order: the last rows calibrate
    plain = DelayRiskModel(feature_names=NAMES, max_iter=20).fit(X, late)
    assert plain.calibration_range_ == (2400, 2999) and plain.train_range_ == (0, 2399)


# ---------------------------------------------------------------- the contract


def test_clone_round_trips_the_parameters(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert copy.get_params()["feature_names"] == NAMES
    assert copy.get_params()["categorical_features"] == CATEGORICAL
    assert not hasattr(copy, "booster_")
    changed = clone(fitted.set_params(learning_rate=0.1)).set_params(calibration="sigmoid")
    assert changed.calibration == "sigmoid" and fitted.calibration == "isotonic"


def test_compiled_model_survives_pickling(compiled, rows):
    again = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(again.predict(rows), compiled.predict(rows))
    np.testing.assert_array_equal(again.contributions(rows)[1], compiled.contributions(rows)[1])
    assert (again.n_trees, again.n_nodes, again.feature_names) == (
        compiled.n_trees,
        compiled.n_nodes,
        compiled.feature_names,
    )


# ---------------------------------------------------------------------- errors


def test_one_class_is_refused():
    X, late, hours = lanes(500, seed=6)
    with pytest.raises(ValueError, match=r"y has one class \(0 on all 500 rows\)"):
        DelayRiskModel().fit(X, np.zeros(500, dtype=int), times=hours)


def test_too_few_calibration_rows_are_refused():
    X, late, hours = lanes(200, seed=7)
    with pytest.raises(ValueError, match=r"calibration slice has 40 rows .* at least 50 are needed"):
        DelayRiskModel(max_iter=5).fit(X, late, times=np.arange(200.0))


def test_a_one_class_calibration_slice_is_refused():
    X, late, hours = lanes(1000, seed=8)
    late = late.copy()
    late[800:] = 0
    with pytest.raises(ValueError, match=r"the calibration slice \(200 rows\) has one class only"):
        DelayRiskModel(max_iter=5).fit(X, late)


def test_wrong_width_is_refused(fitted, compiled, rows):
    with pytest.raises(ValueError, match=r"X has 6 columns but the model was fitted on 7"):
        fitted.predict_proba(rows[:, :6])
    with pytest.raises(ValueError, match=r"X has shape \(10000, 6\); expected \(n_rows, 7\)"):
        compiled.predict(rows[:, :6])
    X, late, hours = lanes(500, seed=9)
    with pytest.raises(ValueError, match=r"feature_names has 7 names but X has 6 columns"):
        DelayRiskModel(feature_names=NAMES).fit(X[:, :6], late, times=hours)


def test_bad_parameters_are_refused():
    X, late, hours = lanes(500, seed=10)
    with pytest.raises(ValueError, match=r"calibration='beta': expected one of"):
        DelayRiskModel(calibration="beta").fit(X, late)
    with pytest.raises(ValueError, match=r"calibration_share=1.5: must lie strictly between 0 and 1"):
        DelayRiskModel(calibration_share=1.5).fit(X, late)
    with pytest.raises(ValueError, match=r"categorical feature 'depot' is not one of the feature names"):
        DelayRiskModel(feature_names=NAMES, categorical_features=["depot"]).fit(X, late)
