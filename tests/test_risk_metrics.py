"""Risk metrics against values computed by hand on a few predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from router.risk.metrics import reliability_curve, risk_metrics

# four predictions, each alone in its 1/15-wide bin: 0.1 -> bin 1, 0.45 -> 6, 0.3 -> 4, 0.85 -> 12
Y4 = [0, 0, 1, 1]
P4 = [0.1, 0.45, 0.3, 0.85]


def test_four_predictions_in_separate_bins():
    m = risk_metrics(Y4, P4)
    # late 0.3 beats on-time 0.1 but not 0.45; late 0.85 beats both: 3 of 4 pairs
    assert m["auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx((0.01 + 0.2025 + 0.49 + 0.0225) / 4)  # 0.18125
    # one row per bin: the ECE is the mean absolute error |p - y|
    assert m["ece"] == pytest.approx((0.1 + 0.45 + 0.7 + 0.15) / 4)  # 0.35
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.55) + math.log(0.3) + math.log(0.85)) / 4)
    assert m["n"] == 4 and m["positives"] == 2
    assert m["mean_p"] == pytest.approx(0.425)


def test_ece_weights_shared_bins_by_count():
    # 0.21, 0.22, 0.24 share bin 3 (mean p 0.67/3, rate 2/3); 0.9 is bin 13, 0.95 bin 14
    y = [0, 1, 1, 0, 1]
    p = [0.21, 0.22, 0.24, 0.9, 0.95]
    m = risk_metrics(y, p)
    expected = 3 / 5 * abs(0.67 / 3 - 2 / 3) + 1 / 5 * 0.9 + 1 / 5 * 0.05  # 0.266 + 0.18 + 0.01
    assert m["ece"] == pytest.approx(0.456)
    assert m["ece"] == pytest.approx(expected)

    mean_p, rate, count = reliability_curve(y, p)
    assert mean_p.shape == rate.shape == count.shape == (15,)
    assert count.tolist() == [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert mean_p[3] == pytest.approx(0.67 / 3) and rate[3] == pytest.approx(2 / 3)
    assert mean_p[13] == pytest.approx(0.9) and rate[13] == 0.0
    assert mean_p[14] == pytest.approx(0.95) and rate[14] == 1.0
    assert np.isnan(mean_p[0]) and np.isnan(rate[0])  # empty bins are NaN, not 0


def test_edges_go_to_first_and_last_bin():
    mean_p, rate, count = reliability_curve([0, 1, 1], [0.0, 1.0, 0.5], bins=2)
    assert count.tolist() == [1, 2]  # 0.5 opens the second half; 1.0 stays in it
    assert mean_p.tolist() == [0.0, 0.75]
    assert rate.tolist() == [0.0, 1.0]


def test_log_loss_clips_certain_misses():
    m = risk_metrics([1, 0], [0.0, 1.0])
    # 34.54 nats each, not infinity; 1 - 1e-15 rounds to 1 - 0.999e-15 in float64
    upper_gap = 1.0 - (1.0 - 1e-15)
    assert m["log_loss"] == pytest.approx(-(math.log(1e-15) + math.log(upper_gap)) / 2)
    assert m["brier"] == 1.0 and m["ece"] == 1.0 and m["auc"] == 0.0


def test_one_class_has_no_auc():
    m = risk_metrics([1, 1], [0.7, 0.9])
    assert math.isnan(m["auc"])
    assert m["brier"] == pytest.approx((0.09 + 0.01) / 2)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.5], "2 labels but p has 1"),
        ([], [], "empty"),
        ([0, 2], [0.5, 0.5], "0 (on time) or 1 (late), got 2.0"),
        ([0, 1], [0.5, 1.5], "probabilities in [0, 1], got 1.5"),
        ([0, 1], [0.5, float("nan")], "probabilities in [0, 1], got nan"),
    ],
)
def test_bad_inputs_are_named(y, p, message):
    with pytest.raises(ValueError) as info:
        risk_metrics(y, p)
    assert message in str(info.value)


def test_reliability_png_is_a_png_and_leaves_pyplot_alone():
    import sys

    from router.training.plots import reliability_png

    pyplot_was_loaded = "matplotlib.pyplot" in sys.modules
    rng = np.random.default_rng(3)
    p = rng.random(400)
    y = (rng.random(400) < p).astype(int)
    png = reliability_png({"model": (y, p), "logistic": (y, np.full(400, y.mean()))}, "held-out orders")

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (600, 650)  # 6 x 6.5 inches at 100 dpi
    assert 15_000 < len(png) < 300_000
    # the object-oriented API: no pyplot import (asking for the backend would import it), no figure left open
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_was_loaded
    if pyplot_was_loaded:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
    with pytest.raises(ValueError, match="curves is empty"):
        reliability_png({}, "nothing")
