"""The router command as a user runs it: demo, route, explain, replay, verify."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from conftest import TINY
from typer.testing import CliRunner

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


def _order_json(**fields) -> dict:
    base = {
        "order_id": "cli-b",
        "customer": {"customer_id": "c1"},
        "destination": {"region": "north"},
        "lines": [{"sku": "SKU-1", "qty": 2}],
        "created_at": "2026-11-02T00:00:00Z",
    }
    return {**base, **fields}


def _route_file(tmp_path, content: bytes, *extra: str):
    """``router route`` on an order file holding ``content``; (result, ledger path)."""
    order = tmp_path / "order.json"
    order.write_bytes(content)
    ledger = tmp_path / "b.sqlite"
    res = runner.invoke(
        app,
        ["route", "--scenario", str(TINY / "two_warehouses_one_carrier.yaml"), "--order", str(order),
         "--ledger", f"sqlite:///{ledger}", *extra],
    )
    return res, order, ledger


def _one_line_error(res, *fragments: str) -> None:
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
    for fragment in fragments:
        assert fragment in res.output, res.output


@pytest.mark.parametrize(
    "content, fragment",
    [
        (json.dumps(_order_json(order_id="caf\xe9"), ensure_ascii=False).encode("latin-1"),
         "not UTF-8 text (byte 17: invalid continuation byte)"),
        (gzip.compress(json.dumps(_order_json()).encode()), "not UTF-8 text (byte 1: invalid start byte)"),
        (b'{"order_id": "x" "customer": {}}', "not valid JSON (Expecting ',' delimiter at line 1, column 18)"),
        (b"[1, 2]", "the JSON must be an object, not list"),
    ],
    ids=["latin-1", "gzip", "invalid-json", "not-an-object"],
)
def test_an_unreadable_order_file_is_one_line_naming_the_file_and_exit_2(tmp_path, content, fragment):
    res, order, ledger = _route_file(tmp_path, content)
    _one_line_error(res, f"cannot read the order {order}: {fragment}")
    assert not ledger.exists()  # nothing opened, nothing recorded


def test_a_missing_order_file_is_one_line_and_exit_2(tmp_path):
    res = runner.invoke(app, ["route", "--order", str(tmp_path / "none.json"), "--ledger", f"sqlite:///{tmp_path / 'n.sqlite'}"])
    _one_line_error(res, f"cannot read the order {tmp_path / 'none.json'}: No such file or directory")


@pytest.mark.parametrize(
    "fields, extra, fragment",
    [
        ({"lines": [{"sku": "SKU-1", "qty": "2"}]}, (), "lines[0].qty: Input should be a valid integer, got '2'"),
        ({"destination": {"lat": 51.5074, "lon": -0.1278}}, (), "destination: (51.5074, -0.1278) is 4,079 mi from the nearest region 'north'"),
        ({}, ("--now", "2026-12-02T00:00:00Z"), "created_at: 2026-11-02T00:00:00+00:00 is 720.0 h before the router's clock"),
    ],
    ids=["qty-as-text", "london", "stale"],
)
def test_an_order_that_breaks_a_rule_is_one_line_naming_file_and_field_and_records_nothing(tmp_path, fields, extra, fragment):
    from router.ledger import open_ledger

    res, order, ledger = _route_file(tmp_path, json.dumps(_order_json(**fields)).encode(), *extra)
    _one_line_error(res, f"error: {order}: {fragment}")
    if ledger.exists():
        led = open_ledger(f"sqlite:///{ledger}", create=False)
        assert led.count_decisions() == 0
        led.close()


def test_a_bad_now_is_one_line_and_exit_2(tmp_path):
    res, _, _ = _route_file(tmp_path, json.dumps(_order_json()).encode(), "--now", "yesterday")
    _one_line_error(res, "--now 'yesterday' is not an ISO 8601 time")


def test_a_scenario_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    res = runner.invoke(app, ["demo", "--scenario", str(bad), "--orders", "5", "--ledger", f"sqlite:///{tmp_path / 'd.sqlite'}"])
    _one_line_error(res, f"{bad}: <file>: cannot read the scenario: not UTF-8 text")


def test_an_order_on_standard_input_that_is_not_json_is_one_line_and_exit_2(tmp_path):
    res = runner.invoke(app, ["route", "--order", "-", "--ledger", f"sqlite:///{tmp_path / 's.sqlite'}"], input=b'{"a":\n')
    _one_line_error(res, "cannot read the order standard input: not valid JSON (Expecting value at line 2, column 1)")


def test_db_upgrade_override_and_serve_refusals(tmp_path, monkeypatch):
    from router.engine import Router
    from router.ledger.migrate import HEAD_REVISION
    from router.scenario import load_scenario

    ledger = f"sqlite:///{tmp_path / 'svc.sqlite'}"
    up = _run("db", "upgrade", "--database-url", ledger)
    assert up.exit_code == 0 and f"ledger schema at revision {HEAD_REVISION}" in up.output
    scenario = TINY / "two_warehouses_one_carrier.yaml"
    from conftest import FixedClock, make_order

    r = Router(load_scenario(scenario), ledger=ledger, clock=FixedClock(), risk_model=None)
    did = r.route(make_order("o1", [("SKU-1", 2)])).decision_id
    r.close()
    ov = _run("override", did, "--rank", "1", "--actor", "ops", "--reason", "drill", "--scenario", str(scenario),
              "--ledger", ledger)  # fmt: skip
    assert ov.exit_code == 0, ov.output
    assert f"{did}-override-1: Overridden to ship from WH-B by parcel ground" in ov.output
    bad = _run("override", did, "--rank", "9", "--actor", "ops", "--reason", "drill", "--scenario", str(scenario),
               "--ledger", ledger)  # fmt: skip
    assert bad.exit_code == 2 and "candidate_rank" in bad.output
    # the service refuses what would not be safe, before it listens. `serve` exports its
    # options as ROUTER_* for its workers: setenv first, so the test puts every one back
    for name in ("ROUTER_WORKERS", "ROUTER_HOST", "ROUTER_TOKEN", "ROUTER_DATABASE_URL", "ROUTER_PORT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    two = _run("serve", "--database-url", ledger, "--workers", "2")
    assert two.exit_code == 2 and "SQLite is for one worker" in two.output
    open_ = _run("serve", "--database-url", ledger, "--host", "0.0.0.0")
    assert open_.exit_code == 2 and "without a token" in open_.output
    wrong = _run("serve", "--database-url", ledger, "--workers", "0")
    assert wrong.exit_code == 2 and "workers" in wrong.output
