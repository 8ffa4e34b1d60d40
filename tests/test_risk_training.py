"""Training inputs: exploration recorded as such, outcome files, and the commands' bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from conftest import SCENARIOS
from typer.testing import CliRunner

from router.cli import app
from router.errors import RouterError
from router.features import feature_names
from router.ledger import open_ledger
from router.scenario import load_scenario
from router.simulation import Simulation
from router.training.rows import file_rows
from router.training.train import time_split

runner = CliRunner()


@pytest.fixture(scope="module")
def storm():
    return load_scenario(SCENARIOS / "national_storm.yaml")


def test_exploration_routes_a_share_by_other_strategies_and_records_them_as_such(storm, tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'x.sqlite'}")
    sim = Simulation(storm, "optimizer", seed=5, max_orders=600, ledger=ledger, explore=0.3, risk_model=None)
    sim.run()
    r = sim.finish()
    names = Counter(ledger.get_decision(d)["strategy"]["name"] for d in r.decision_ids)
    ledger.close()
    explored = sum(v for k, v in names.items() if k != "optimizer")
    # each order explores with probability 0.3: within 4 standard errors of 180 of 600
    assert abs(explored - 180) < 4 * np.sqrt(600 * 0.3 * 0.7)
    assert set(names) == {"optimizer", "nearest", "cheapest", "tier_rules", "explore_random"}
    # the same seed explores the same orders
    again = Simulation(storm, "optimizer", seed=5, max_orders=600, explore=0.3, risk_model=None, collect_rows=True)
    again.run()
    assert Counter(again.finish().training["strategy"].tolist()).keys() == names.keys()
    with pytest.raises(ValueError, match="explore must be a share in"):
        Simulation(storm, "optimizer", seed=5, max_orders=10, explore=1.5)


def _rows_frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.uniform(0, 1, size=(n, len(feature_names()))), columns=list(feature_names()))
    df.insert(0, "decided_at", pd.date_range("2026-11-02", periods=n, freq="h", tz="UTC").astype(str))
    df.insert(1, "late", rng.integers(0, 2, n))
    df["transit_hours"] = rng.uniform(20, 50, n)
    return df


def test_an_outcome_file_reads_into_rows(tmp_path):
    df = _rows_frame()
    path = tmp_path / "outcomes.csv"
    df.to_csv(path, index=False)
    rows = file_rows(path)
    assert len(rows) == 40
    np.testing.assert_allclose(rows.X, df[list(feature_names())].to_numpy())
    np.testing.assert_array_equal(rows.late, df["late"].to_numpy().astype(bool))
    np.testing.assert_allclose(rows.time_h, np.arange(40.0))  # hours since the first decision
    np.testing.assert_allclose(rows.transit_obs_h, df["transit_hours"].to_numpy())
    train, test = time_split(rows.time_h, 0.25)
    assert rows.time_h[train].max() < rows.time_h[test].min() and test.sum() == 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop(columns=["slack_h", "late"]), r"missing columns late, slack_h"),
        (lambda df: df.assign(late=2), r"column late must be 0 or 1, found 2"),
        (lambda df: df.assign(decided_at="yesterday"), r"column decided_at must hold ISO times"),
        (lambda df: df.assign(eta_h="soon"), r"feature columns must be numbers"),
    ],
)
def test_a_bad_outcome_file_is_refused_naming_the_column(tmp_path, change, message):
    path = tmp_path / "bad.csv"
    change(_rows_frame()).to_csv(path, index=False)
    with pytest.raises(RouterError, match=message):
        file_rows(path)
    with pytest.raises(RouterError, match="no such outcome file"):
        file_rows(tmp_path / "nope.csv")


def test_train_risk_and_risk_report_refuse_bad_input_in_one_line(tmp_path):
    storm = str(SCENARIOS / "national_storm.yaml")
    cases = [
        (["train-risk", "--scenario", storm, "--from-ledger", "sqlite:///x.sqlite", "--outcomes", "o.csv"],
         "give --from-ledger or --outcomes, not both"),
        (["train-risk", "--scenario", storm, "--seeds", "1,x"], "--seeds: 'x' is not a seed"),
        (["train-risk", "--scenario", str(tmp_path / "none.yaml")], "no such scenario file"),
        (["train-risk", "--scenario", storm, "--scenario", storm, "--outcomes", "o.csv"],
         "give one --scenario"),
        (["risk-report", "--scenario", storm, "--ledger", f"sqlite:///{tmp_path / 'none.sqlite'}"], "no ledger at"),
    ]
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)
        assert "Traceback" not in res.output
