"""Saving and loading the delay-risk model: a faithful round trip, and a clear refusal for each bad case."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sklearn

from router.errors import ModelLoadError, RouterError
from router.risk.baselines import LogisticBaseline
from router.risk.model import DelayRiskModel
from router.risk.store import (
    TRUSTED_TYPES,
    data_hash,
    library_versions,
    load_model,
    save_model,
)

FEATURES = [("shipping_mode", "category"), ("scheduled_days", "float64"), ("order_hour", "float64")]
NAMES = [n for n, _ in FEATURES]
INSTALLED = ".".join(sklearn.__version__.split(".")[:2])


class Gadget:
    """Not on any allow-list: a model file holding it must not be loaded."""

    def __init__(self) -> None:
        self.size = 3


@pytest.fixture(scope="module")
def lanes():
    rng = np.random.default_rng(7)
    n = 600
    mode = rng.integers(0, 4, n).astype(np.float64)
    days = np.array([4.0, 0.0, 1.0, 2.0])[mode.astype(int)]
    hour = rng.integers(0, 24, n).astype(np.float64)
    logit = np.array([-0.6, 0.2, 2.5, 1.0])[mode.astype(int)] + 0.03 * (hour - 12)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    X = np.column_stack([mode, days, hour])
    times = np.sort(rng.random(n) * 1000.0)
    return X, y, times


@pytest.fixture(scope="module")
def model(lanes):
    X, y, times = lanes
    return DelayRiskModel(feature_names=NAMES, categorical_features=["shipping_mode"], max_iter=20).fit(X, y, times=times)


def card_for(lanes) -> dict:
    X, y, times = lanes
    return {
        "name": "delay-risk",
        "version": "test-1",
        "training_data": {
            "hash": data_hash(X, y, times),
            "time_range": ["2026-01-01", "2026-02-01"],
            "rows": int(len(y)),
            "positives": int(y.sum()),
            "scenarios": ["synthetic"],
            "seeds": [7],
        },
        "command": "router train-risk --seed 7",
        "metrics": {"model": {"auc": 0.71, "brier": 0.2}, "logistic": {"auc": 0.69, "brier": float("nan")}},
    }


@pytest.fixture
def saved(tmp_path, model, lanes):
    return save_model(model, tmp_path / "v1", card_for(lanes))


def rewrite_card(directory, **changes) -> None:
    path = directory / "card.json"
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def refusal(directory, **kw) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_model(directory, **kw)
    assert info.value.directory == str(directory)
    return str(info.value)


def test_round_trip_predicts_the_same(tmp_path, model, lanes):
    X, _, _ = lanes
    out = save_model(model, tmp_path / "v1", card_for(lanes), reliability_png=b"\x89PNG\r\n\x1a\nfake")
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "card.md", "model.skops", "reliability.png"]
    loaded, card = load_model(out, features=FEATURES)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert type(loaded).__name__ == "DelayRiskModel"

    text = (out / "card.json").read_text()
    assert text == json.dumps(card, sort_keys=True, indent=2) + "\n"
    assert card["features"] == [{"name": n, "dtype": d} for n, d in FEATURES]
    assert card["libraries"] == library_versions()
    assert card["estimator"] == "router.risk.model.DelayRiskModel"
    assert card["params"]["max_iter"] == 20
    assert card["training_data"]["hash"] == data_hash(*lanes)

    md = (out / "card.md").read_text()
    assert md.startswith("# delay-risk test-1\n")
    assert "| 0 | `shipping_mode` | category |" in md
    assert f"| hash | `{data_hash(*lanes)}` |" in md
    assert "| time_range | 2026-01-01 to 2026-02-01 |" in md
    assert "| seeds | 7 |" in md
    assert "```sh\nrouter train-risk --seed 7\n```" in md
    assert "| metric | model | logistic |" in md
    assert "| auc | 0.7100 | 0.6900 |" in md
    assert "| brier | 0.2000 | n/a |" in md
    assert f"| scikit-learn | {sklearn.__version__} |" in md
    assert "![Reliability diagram](reliability.png)" in md


def test_baseline_round_trip(tmp_path, lanes):
    X, y, _ = lanes
    base = LogisticBaseline(feature_names=NAMES, categorical_features=["shipping_mode"]).fit(X, y)
    out = save_model(base, tmp_path / "logistic", {"name": "logistic baseline"})
    loaded, card = load_model(out, features=FEATURES)
    np.testing.assert_array_equal(loaded.predict_proba(X), base.predict_proba(X))
    assert "Reliability" not in (out / "card.md").read_text()


def test_an_existing_model_is_kept(saved, model, lanes):
    with pytest.raises(FileExistsError, match="already holds a model"):
        save_model(model, saved, card_for(lanes))
    save_model(model, saved, card_for(lanes), overwrite=True)


def test_card_features_must_match_the_model(tmp_path, model, lanes):
    card = card_for(lanes) | {"features": [{"name": "x", "dtype": "float64"}]}
    with pytest.raises(ValueError, match=r"differ from the model's feature_names_in_"):
        save_model(model, tmp_path / "v1", card)


def test_missing_directory(tmp_path):
    message = refusal(tmp_path / "nope")
    assert message == (
        f"model directory {tmp_path / 'nope'} does not exist; "
        "pass the directory save_model wrote (it holds model.skops and card.json)."
    )
    assert isinstance(ModelLoadError(tmp_path, "x"), RouterError)


@pytest.mark.parametrize("name", ["model.skops", "card.json"])
def test_missing_file(saved, name):
    (saved / name).unlink()
    assert refusal(saved).startswith(f"{name} is missing from model directory {saved}; save the model again")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"this is not a zip file" * 10, id="garbage"),
        pytest.param(lambda b: b"", id="empty"),
    ],
)
def test_corrupt_model_file(saved, damage):
    path = saved / "model.skops"
    path.write_bytes(damage(path.read_bytes()))
    message = refusal(saved)
    assert message.startswith(f"model.skops in {saved} is corrupt or not a skops file (")
    assert message.endswith("); restore it or save the model again.")


def test_unreadable_card(saved):
    (saved / "card.json").write_text("{not json")
    assert refusal(saved).startswith(f"card.json in {saved} is unreadable (")


def test_feature_renamed(saved):
    wanted = [FEATURES[0], ("promised_days", "float64"), FEATURES[2]]
    assert refusal(saved, features=wanted) == (
        f"feature 1 of the model in {saved} is 'scheduled_days' (float64) but the caller supplies "
        "'promised_days' (float64); retrain the model on the current features or build X from the features its card lists."
    )


def test_feature_dtype_changed(saved):
    wanted = [("shipping_mode", "float64"), *FEATURES[1:]]
    assert "feature 0 of the model in" in refusal(saved, features=wanted)
    assert "is 'shipping_mode' (category) but the caller supplies 'shipping_mode' (float64)" in refusal(
        saved, features=wanted
    )


def test_feature_added(saved):
    wanted = [*FEATURES, ("carrier", "category")]
    assert refusal(saved, features=wanted) == (
        f"the model in {saved} has 3 features but the caller supplies 4 (the caller's feature 3 'carrier' has no "
        "counterpart); retrain the model on the current features or build X from the features its card lists."
    )


def test_other_scikit_learn_version(saved):
    card = json.loads((saved / "card.json").read_text())
    rewrite_card(saved, libraries=card["libraries"] | {"scikit-learn": "1.4.2"})
    assert refusal(saved) == (
        f"the model in {saved} was saved with scikit-learn 1.4.2 but {sklearn.__version__} is installed; "
        f"retrain and save it with scikit-learn {INSTALLED}, or install scikit-learn 1.4."
    )


def test_patch_version_difference_is_fine(saved, lanes):
    card = json.loads((saved / "card.json").read_text())
    rewrite_card(saved, libraries=card["libraries"] | {"scikit-learn": INSTALLED + ".99"})
    load_model(saved)


def test_untrusted_type_is_refused(tmp_path, lanes):
    X, y, times = lanes
    m = DelayRiskModel(feature_names=NAMES, max_iter=5).fit(X, y, times=times)
    m.gadget_ = Gadget()
    out = save_model(m, tmp_path / "v1", card_for(lanes))
    assert refusal(out) == (
        f"model.skops in {out} holds types outside the trusted allow-list (test_risk_store.Gadget); "
        "do not load it unless you vetted these types and added them to router.risk.store.TRUSTED_TYPES."
    )
    assert "test_risk_store.Gadget" not in TRUSTED_TYPES


def test_load_never_trusts_everything(saved, monkeypatch):
    import skops.io as sio

    seen = []
    real = sio.load

    def spy(file, trusted=None):
        seen.append(trusted)
        return real(file, trusted=trusted)

    monkeypatch.setattr(sio, "load", spy)
    load_model(saved)
    assert len(seen) == 1 and isinstance(seen[0], list)
    assert set(seen[0]) <= TRUSTED_TYPES


def test_data_hash_sees_values_shape_and_absence():
    X = np.arange(6, dtype=np.float64).reshape(3, 2)
    y = np.array([0, 1, 0])
    t = np.array([0.0, 1.0, 2.0])
    h = data_hash(X, y, t)
    assert h == data_hash(X.copy(), y.copy(), t.copy()) and len(h) == 64
    assert h != data_hash(X, np.array([0, 1, 1]), t)
    assert h != data_hash(X.reshape(2, 3), y, t)
    assert h != data_hash(X, y, None)


def test_library_versions_names_the_stack():
    v = library_versions()
    assert set(v) == {"python", "numpy", "scikit-learn", "skops", "numba", "router"}
    assert v["scikit-learn"] == sklearn.__version__
