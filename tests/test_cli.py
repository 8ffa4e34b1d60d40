"""The router command as a user runs it: demo, route, explain, replay, verify."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from conftest import TINY
from router.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_demo_compares_every_strategy_and_shows_a_rationale(tmp_path):
    ledger = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    res = _run("demo", "--scenario", str(TINY / "tiers_and_storm.yaml"), "--orders", "40", "--ledger", ledger)
    assert res.exit_code == 0, res.output
    for name in ("nearest", "cheapest", "tier_rules", "optimizer"):
        assert re.search(rf"│ {name}\s+│ +\$\d+\.\d\d", res.output), name
    assert "Shipped from" in res.output
    decision_id = re.search(r"router explain ([0-9a-f]{32})", res.output).group(1)

    ex = _run("explain", decision_id, "--ledger", ledger)
    assert ex.exit_code == 0 and "Shipped from" in ex.output
    as_json = _run("explain", decision_id, "--ledger", ledger, "--json")
    assert json.loads(as_json.output)["decision_id"] == decision_id

    rep = _run("replay", decision_id, "--scenario", str(TINY / "tiers_and_storm.yaml"), "--ledger", ledger)
    assert rep.exit_code == 0 and "same decision" in rep.output

    ver = _run("verify", "--ledger", ledger)
    assert ver.exit_code == 0 and "ledger ok: 160 entries" in ver.output


def test_route_prints_the_decision_and_records_it(tmp_path):
    ledger = f"sqlite:///{tmp_path / 'r.sqlite'}"
    order = tmp_path / "order.json"
    order.write_text(
        json.dumps(
            {
                "order_id": "cli-1",
                "customer": {"customer_id": "c1"},
                "destination": {"region": "north"},
                "lines": [{"sku": "SKU-1", "qty": 2}],
                "created_at": "2026-11-02T00:00:00Z",
            }
        )
    )
    res = _run("route", "--scenario", str(TINY / "two_warehouses_one_carrier.yaml"), "--order", str(order), "--ledger", ledger)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["status"] == "routed" and out["plan"]["cost_usd"] == 7.0
    assert out["plan"]["legs"][0]["node_id"] == "WH-A"
    assert _run("explain", out["decision_id"], "--ledger", ledger).exit_code == 0


def test_bad_order_file_exits_2_naming_the_field(tmp_path):
    order = tmp_path / "order.json"
    order.write_text(json.dumps({"order_id": "x", "customer": {"customer_id": "c"}, "destination": {"region": "north"},
                                 "lines": [{"sku": "NOPE", "qty": 1}], "created_at": "2026-11-02T00:00:00Z"}))
    res = runner.invoke(app, ["route", "--scenario", str(TINY / "two_warehouses_one_carrier.yaml"), "--order", str(order),
                              "--ledger", f"sqlite:///{tmp_path / 'x.sqlite'}"])
    assert res.exit_code == 2
    assert "lines[0].sku: unknown sku 'NOPE'" in res.output


def test_unknown_decision_and_missing_scenario_are_clear_errors(tmp_path):
    ledger = f"sqlite:///{tmp_path / 'e.sqlite'}"
    res = runner.invoke(app, ["verify", "--ledger", ledger])
    assert res.exit_code == 2 and "no ledger at" in res.output
    from router.ledger import open_ledger

    open_ledger(ledger).close()  # an empty ledger
    res = runner.invoke(app, ["explain", "0" * 32, "--ledger", ledger])
    assert res.exit_code == 2 and "no decision with id" in res.output
    res = runner.invoke(app, ["demo", "--scenario", str(tmp_path / "none.yaml"), "--orders", "5", "--ledger", ledger])
    assert res.exit_code == 2 and "no such scenario file" in res.output
