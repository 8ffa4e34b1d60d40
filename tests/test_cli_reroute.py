"""``router reroute`` and ``router release`` as an operator runs them, on a ledger of 60 routed orders.

The ledger is built once (60 orders of scenarios/national.yaml routed on a fixed clock
into a SQLite file) and copied for each test, so every test starts from the same
open orders. The closure is of the node that holds the most orders' legs.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import SCENARIOS, FixedClock
from typer.testing import CliRunner

from router.cli import app
from router.demand import generate_orders
from router.engine import Router
from router.ledger import open_ledger
from router.scenario import load_scenario

runner = CliRunner()
NATIONAL = SCENARIOS / "national.yaml"
POOL = "national"  # a router's stock pool defaults to the scenario's name


@pytest.fixture(scope="module")
def routed(tmp_path_factory) -> tuple[Path, str]:
    """A ledger file with 60 routed orders, and the node holding the most of their legs."""
    path = tmp_path_factory.mktemp("reroute") / "ledger.sqlite"
    sc = load_scenario(NATIONAL)
    clock = FixedClock(sc.start)
    router = Router(sc, ledger=f"sqlite:///{path}", clock=clock, seed=sc.seed)
    try:
        for order in generate_orders(sc, 60, seed=5):
            clock.now = order.created_at
            router.route(order)
        legs = Counter(
            leg["node_id"]
            for _, did in router.ledger.open_orders(POOL)
            for leg in router.ledger.get_decision(did)["chosen"]["legs"]
        )
    finally:
        router.close()
    return path, legs.most_common(1)[0][0]


@pytest.fixture
def ledger(routed, tmp_path) -> tuple[str, str, Path]:
    """(URL of a fresh copy of the routed ledger, the busiest node, a closure events file for it)."""
    path, node = routed
    copy = tmp_path / "ledger.sqlite"
    shutil.copy(path, copy)
    closure = tmp_path / "closure.json"
    closure.write_text(json.dumps([{"type": "node_status", "node": node, "closed": True, "reason": "flood"}]))
    return f"sqlite:///{copy}", node, closure


def _run(*args: str):
    return runner.invoke(app, [*args, "--scenario", str(NATIONAL)], catch_exceptions=False)


def _snapshot(url: str) -> tuple[int, dict, dict]:
    """Decision count, stock levels and open orders {order_id: decision_id} of the pool."""
    led = open_ledger(url)
    try:
        return led.count_decisions(), led.stock_levels(POOL), dict(led.open_orders(POOL))
    finally:
        led.close()


def _on_node(url: str, node: str) -> list[str]:
    """The open orders whose current decision ships a leg from ``node``."""
    led = open_ledger(url)
    try:
        return [
            oid for oid, did in led.open_orders(POOL)
            if any(leg["node_id"] == node for leg in led.get_decision(did)["chosen"]["legs"])
        ]
    finally:
        led.close()


def _moved(output: str) -> int:
    return int(re.search(r"^\s*moved\s+(\d+)\b", output, re.M).group(1))


def test_a_closure_dry_run_changes_nothing_and_apply_writes_exactly_the_moves(ledger):
    url, node, closure = ledger
    stranded = _on_node(url, node)
    assert len(stranded) >= 10
    before = _snapshot(url)

    dry = _run("reroute", "--ledger", url, "--events", str(closure), "--time-limit", "5")
    assert dry.exit_code == 0, dry.output
    moved = _moved(dry.output)
    assert moved >= len(stranded)  # every order on the closed node moves; others may improve too
    assert re.search(r"^\s*orders\s+60\b", dry.output, re.M)
    assert re.search(r"^\s*unplaced\s+0\b", dry.output, re.M)
    assert f"moves ({moved}):" in dry.output and f"({node} closed)" in dry.output
    assert "dry run: nothing changed" in dry.output
    assert _snapshot(url) == before  # no decision, no stock, no order state written

    applied = _run("reroute", "--ledger", url, "--events", str(closure), "--time-limit", "5", "--apply")
    assert applied.exit_code == 0, applied.output
    assert _moved(applied.output) == moved
    assert f"applied: {moved} new decisions" in applied.output
    count, stock, open_now = _snapshot(url)
    assert count == before[0] + moved
    assert stock != before[1]  # the reservations moved with the orders
    assert sum(r for _, r in stock.values()) == sum(r for _, r in before[1].values())
    assert set(open_now) == set(before[2])  # still 60 open orders, some held by new decisions
    led = open_ledger(url)
    try:
        changed = {oid: did for oid, did in open_now.items() if did != before[2][oid]}
        assert len(changed) == moved
        for oid, did in changed.items():
            rec = led.get_decision(did)
            assert rec["order_id"] == oid
            assert rec["reroute"]["supersedes"] == before[2][oid] == rec["supersedes"]
            assert all(leg["node_id"] != node for leg in rec["chosen"]["legs"])
        assert led.verify().ok
    finally:
        led.close()

    assert _on_node(url, node) == []
    again = _run("reroute", "--ledger", url, "--events", str(closure), "--time-limit", "5")
    assert again.exit_code == 0, again.output
    assert f"({node} closed)" not in again.output and "dry run: nothing changed" in again.output
    # no open order is left on the closed node: a filter on it selects nothing
    none_left = _run("reroute", "--ledger", url, "--events", str(closure), "--filter-node", node)
    assert none_left.exit_code == 2
    assert "filter: matches none of the 60 open orders" in none_left.output


def test_json_and_partitions(ledger):
    url, node, closure = ledger
    before = _snapshot(url)
    res = _run("reroute", "--ledger", url, "--events", str(closure), "--time-limit", "4",
               "--partitions", "2", "--solve-partitions", "--backend", "serial", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    assert plan["applied"] is False and plan["orders"] == 60
    assert plan["solver"]["method"] == "partitioned" and plan["solver"]["partitions"] == 2
    assert plan["moved"] == len(plan["moves"]) > 0
    assert plan["kpis_after"]["rows_over_capacity"] == 0
    assert all(leg["node_id"] != node for m in plan["moves"] for leg in m["to"]["legs"])
    assert _snapshot(url) == before


def test_workers_generate_the_same_plan_as_one_process(ledger):
    url, node, closure = ledger
    plans = []
    for n in ("1", "2"):
        res = _run("reroute", "--ledger", url, "--events", str(closure), "--time-limit", "3", "--workers", n, "--json")
        assert res.exit_code == 0, res.output
        plans.append(json.loads(res.output))
    assert [p["timings"]["column_workers"] for p in plans] == [1, 2]
    # the same columns and a seeded solve: the same moves
    assert [(m["order_id"], m["to"]) for m in plans[0]["moves"]] == [(m["order_id"], m["to"]) for m in plans[1]["moves"]]
    assert plans[1]["kpis_after"]["rows_over_capacity"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--time-limit", "0"), "time_limit_s: must be a number of seconds > 0"),
        (("--filter-node", "NOPE"), "filter.nodes: unknown: NOPE"),
        (("--top-k", "0"), "top_k: must be >= 1"),
        (("--workers", "0"), "workers: must be >= 1"),
        (("--backend", "cloud"), "--backend must be one of local, dask, serial"),
    ],
)
def test_bad_arguments_exit_2_naming_the_field_and_change_nothing(ledger, args, message):
    url, _, closure = ledger
    before = _snapshot(url)
    res = _run("reroute", "--ledger", url, "--events", str(closure), "--apply", *args)
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert _snapshot(url) == before


def test_bad_files_exit_2_and_change_nothing(ledger, tmp_path):
    url, _, _ = ledger
    before = _snapshot(url)
    bad_event = tmp_path / "bad.json"
    bad_event.write_text(json.dumps([{"type": "node_status", "node": "WH-ATL", "closed": True},
                                     {"type": "node_status", "node": "WH-NOPE", "closed": True}]))  # fmt: skip
    res = _run("reroute", "--ledger", url, "--events", str(bad_event), "--apply")
    assert res.exit_code == 2 and "events[1].node: unknown node 'WH-NOPE'" in res.output
    not_json = tmp_path / "events.txt"
    not_json.write_text("{closed")
    res = _run("reroute", "--ledger", url, "--events", str(not_json), "--apply")
    assert res.exit_code == 2 and "not valid JSON" in res.output
    bad_backlog = tmp_path / "backlog.json"
    bad_backlog.write_text(json.dumps(["ORD-0000001", 7]))
    res = _run("reroute", "--ledger", url, "--backlog", str(bad_backlog), "--apply")
    assert res.exit_code == 2 and "backlog[1]: an order id must be a non-empty string" in res.output
    assert _snapshot(url) == before


def test_a_released_order_is_skipped(ledger, tmp_path):
    url, node, closure = ledger
    held = _on_node(url, node)
    first, second = held[0], held[1]
    rel = _run("release", first, "--ledger", url)
    assert rel.exit_code == 0, rel.output
    assert f"{first}: released" in rel.output
    again = _run("release", first, "--ledger", url)
    assert again.exit_code == 2 and first in again.output
    assert _run("release", second, "--shipped", "--ledger", url).exit_code == 0

    backlog = tmp_path / "backlog.txt"
    backlog.write_text(f"{first}\n{second}\n{held[2]}\nORD-NOPE\n")
    res = _run("reroute", "--ledger", url, "--events", str(closure), "--backlog", str(backlog), "--time-limit", "2")
    assert res.exit_code == 0, res.output
    assert re.search(r"^\s*orders\s+1\b", res.output, re.M)
    assert re.search(r"^\s*skipped\s+3\b", res.output, re.M)
    assert f"{first}: released: no longer movable" in res.output
    assert f"{second}: shipped: no longer movable" in res.output
    assert "ORD-NOPE: unknown order" in res.output
    assert f"{held[2]}: Moved from {node}" in res.output
