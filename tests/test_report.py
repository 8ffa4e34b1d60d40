"""Reports: confidence intervals by hand, the report folder, and `router simulate` as a user runs it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import TINY
from typer.testing import CliRunner

from router.cli import app
from router.simulation.report import (
    PLOTS,
    SUMMARY_METRICS,
    confidence_interval,
    format_estimate,
    summarise,
    tier_summary,
    write_report,
)
from router.simulation.sweep import SweepJob, SweepResult, run_sweep, sweep_jobs

STORM = str(TINY / "tiers_and_storm.yaml")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# t(0.975, 2) = 4.302652729749464 (two degrees of freedom)
T_975_2 = 4.302652729749464

runner = CliRunner()


def _made(strategy: str, seed: int, on_time: float, cost: float, tier_on_time: float) -> SweepResult:
    """A hand-made result: only the KPIs the summary reads."""
    overall = {
        "orders": 10,
        "on_time_rate": on_time,
        "cost_per_order_usd": cost,
        "shipments_per_order": 1.0,
        "mean_delivery_hours": 40.0,
        "p95_delivery_hours": 60.0,
        "late_orders": 1,
        "unfulfilled_lines": 0,
    }
    return SweepResult(
        job=SweepJob("x.yaml", strategy, seed),
        kpis={
            "scenario": "hand",
            "strategy": strategy,
            "seed": seed,
            "horizon_hours": 24.0,
            "overall": overall,
            "by_tier": {"vip": {"orders": 4, "on_time_rate": tier_on_time}},
            "by_node": {},
            "timing": {"decisions_per_s": 1000.0 * seed},
        },
        fingerprint="",
        node_ids=(),
        node_capacity_per_hour=np.zeros(0),
        picks_per_hour=np.zeros((0, 1), dtype=np.int64),
        lateness_quantiles=np.zeros(0),
    )


def test_confidence_interval_is_student_t_on_the_sample_sd():
    mean, half = confidence_interval([0.9, 0.8, 1.0])
    # sd = 0.1, so the half-width is t(0.975, 2) * 0.1 / sqrt(3) = 0.24841
    assert mean == pytest.approx(0.9)
    assert half == pytest.approx(T_975_2 * 0.1 / math.sqrt(3)) and half == pytest.approx(0.2484, abs=1e-4)
    # one value: a mean and no interval; missing values are left out
    mean, half = confidence_interval([0.7, None, float("nan")])
    assert mean == 0.7 and math.isnan(half)
    assert all(math.isnan(x) for x in confidence_interval([]))
    # four values: t(0.975, 3) = 3.182446305284263; sd of 1..4 is sqrt(5/3)
    assert confidence_interval([1, 2, 3, 4])[1] == pytest.approx(3.182446305284263 * math.sqrt(5 / 3) / 2)


def test_summarise_gives_mean_and_ci_per_strategy_in_order_of_appearance():
    results = [
        _made("optimizer", 1, 0.9, 10.0, 1.0),
        _made("optimizer", 2, 0.8, 12.0, 0.5),
        _made("optimizer", 3, 1.0, 14.0, 0.75),
        _made("nearest", 1, 0.6, 9.0, 0.5),
    ]
    s = summarise(results)
    assert list(s["strategy"]) == ["optimizer", "nearest"] and list(s["seeds"]) == [3, 1]
    opt, near = s.iloc[0], s.iloc[1]
    assert opt["on_time_rate_mean"] == pytest.approx(0.9)
    assert opt["on_time_rate_ci95"] == pytest.approx(0.2484, abs=1e-4)
    # cost 10, 12, 14: sd 2, half-width 4.303 * 2 / sqrt(3) = 4.968
    assert opt["cost_per_order_usd_mean"] == pytest.approx(12.0)
    assert opt["cost_per_order_usd_ci95"] == pytest.approx(T_975_2 * 2 / math.sqrt(3))
    assert opt["late_orders_ci95"] == 0.0  # the same in every seed
    assert opt["decisions_per_s_mean"] == pytest.approx(2000.0)
    assert near["on_time_rate_mean"] == 0.6 and math.isnan(near["on_time_rate_ci95"])
    assert {f"{k}_{p}" for k, _, _ in SUMMARY_METRICS for p in ("mean", "ci95")} <= set(s.columns)

    t = tier_summary(results)
    vip = t[(t["strategy"] == "optimizer") & (t["tier"] == "vip")].iloc[0]
    assert vip["on_time_rate_mean"] == pytest.approx(0.75)
    assert vip["on_time_rate_ci95"] == pytest.approx(T_975_2 * 0.25 / math.sqrt(3))


def test_estimates_are_formatted_in_their_unit_and_without_a_ci_for_one_seed():
    assert format_estimate(0.9, 0.24841, "rate") == "90.0% ± 24.8"
    assert format_estimate(12.0, 4.9683, "usd") == "$12.00 ± 4.97"
    assert format_estimate(0.6, math.nan, "rate") == "60.0%"
    assert format_estimate(math.nan, math.nan, "hours") == "-"


@pytest.fixture(scope="module")
def sweep():
    jobs = sweep_jobs([STORM], ["nearest", "cheapest", "optimizer"], [1, 2], max_orders=80)
    return run_sweep(jobs, executor="serial")


def test_write_report_writes_the_table_csvs_and_four_plots(sweep, tmp_path):
    path = write_report(sweep, tmp_path / "rep", meta={"executor": "serial"})
    folder = path.parent
    assert path == folder / "report.md" and folder == tmp_path / "rep"
    md = path.read_text()
    header = "| scenario | strategy | seeds | " + " | ".join(label for _, label, _ in SUMMARY_METRICS) + " |"
    assert header in md
    for strategy in ("nearest", "cheapest", "optimizer"):
        row = next(line for line in md.splitlines() if line.startswith(f"| tiers_and_storm | {strategy} | 2 |"))
        assert row.count("±") == len(SUMMARY_METRICS), row  # every KPI with its interval
    assert "## On-time rate by tier" in md and "| strategy | standard (" in md
    assert "seeds 1, 2" in md and "| executor | serial |" in md and "| logical cores |" in md

    kpis_csv = pd.read_csv(folder / "kpis.csv")
    assert len(kpis_csv) == len(sweep)
    assert list(kpis_csv[["strategy", "seed"]].itertuples(index=False, name=None)) == [
        (r.strategy, r.seed) for r in sweep
    ]
    assert list(kpis_csv["fingerprint"]) == [r.fingerprint for r in sweep]
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary["strategy"]) == ["nearest", "cheapest", "optimizer"]
    on_time = [r.kpis["overall"]["on_time_rate"] for r in sweep if r.strategy == "cheapest"]
    assert summary.loc[1, "on_time_rate_mean"] == pytest.approx(np.mean(on_time))
    assert len(pd.read_csv(folder / "tiers.csv")) == 3 * 3  # strategies x tiers

    assert set(PLOTS) == {"on_time_and_cost.png", "on_time_by_tier.png", "node_utilisation.png", "lateness.png"}
    for name in PLOTS:
        data = (folder / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
        assert f"]({name})" in md


def test_write_report_with_one_seed_shows_no_interval(sweep, tmp_path):
    one = [r for r in sweep if r.seed == 1]
    md = write_report(one, tmp_path).read_text()
    row = next(line for line in md.splitlines() if line.startswith("| tiers_and_storm | optimizer | 1 |"))
    assert "±" not in row
    with pytest.raises(ValueError, match="at least one"):
        write_report([], tmp_path)


def test_router_simulate_prints_the_table_and_writes_the_folder(tmp_path):
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        ["simulate", STORM, "--strategies", "nearest,optimizer", "--seeds", "2", "--orders", "60", "--out", str(out),
         "--processes", "2"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert "2 strategies x 2 seeds = 4 runs" in res.output
    assert "tiers_and_storm: mean ± 95 % CI over 2 seeds, 60 orders per run" in res.output
    for strategy in ("nearest", "optimizer"):
        assert any(line.split()[:1] == [strategy] and "%" in line for line in res.output.splitlines()), strategy
    assert f"report: {out}" in res.output.replace("\n", "")
    assert (out / "report.md").exists() and len(pd.read_csv(out / "kpis.csv")) == 4
    assert "router simulate" in (out / "report.md").read_text()  # the command that made it


def test_router_simulate_rejects_a_bad_strategy_or_scenario(tmp_path):
    res = runner.invoke(app, ["simulate", STORM, "--strategies", "nearest,fastest", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    said = " ".join(res.output.split())  # Rich wraps long lines
    assert "unknown strategy 'fastest'; known: cheapest, nearest, optimizer, tier_rules" in said
    assert not (tmp_path / "r").exists()
    res = runner.invoke(app, ["simulate", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and "no such scenario file" in " ".join(res.output.split())
