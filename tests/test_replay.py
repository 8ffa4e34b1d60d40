"""Replay trusts only what it can check: the network the decision was taken on, and its stored view."""

from __future__ import annotations

import json

import pytest
from conftest import TINY, make_order
from typer.testing import CliRunner

from router.cli import app
from router.engine import Router
from router.engine.replay import replay_record
from router.errors import NetworkMismatchError, ReplayError
from router.scenario import load_scenario


def test_every_record_names_its_network(tiny_router):
    r = tiny_router("tiers_and_storm")
    d = r.route(make_order("n", [("SKU-1", 1)], dest={"region": "north"}))
    assert d.record["network"] == {"scenario": "tiers_and_storm", "hash": r.network.content_hash}
    assert len(r.network.content_hash) == 32


def test_the_network_hash_changes_with_any_rate_and_not_with_stock(tmp_path):
    text = (TINY / "two_warehouses_one_carrier.yaml").read_text()
    base = load_scenario(TINY / "two_warehouses_one_carrier.yaml")
    h = Router(base, ledger=None).network.content_hash
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("fixed_usd: 5.0", "fixed_usd: 5.5"))
    assert Router(load_scenario(edited), ledger=None).network.content_hash != h
    restocked = tmp_path / "restocked.yaml"
    restocked.write_text(text.replace("WH-A: {SKU-1: 10, SKU-2: 5}", "WH-A: {SKU-1: 99, SKU-2: 5}"))
    assert Router(load_scenario(restocked), ledger=None).network.content_hash == h  # stock is state, not network


def test_replay_on_another_network_is_refused_in_one_sentence(tiny_router):
    r = tiny_router("tiers_and_storm")
    d = r.route(make_order("m", [("SKU-1", 1)], dest={"region": "north"}))
    other = Router(load_scenario(TINY / "split_needed.yaml"), ledger=None)
    with pytest.raises(NetworkMismatchError) as info:
        replay_record(other, d.record)
    msg = str(info.value)
    assert msg.startswith(f"decision {d.decision_id} was taken on network 'tiers_and_storm'")
    assert "this router runs 'split_needed'" in msg and "--scenario" in msg and "\n" not in msg


def test_a_record_without_a_network_hash_is_checked_by_shape(tiny_router):
    r = tiny_router("tiers_and_storm")
    d = r.route(make_order("o", [("SKU-1", 1)], dest={"region": "north"}))
    old = {k: v for k, v in d.record.items() if k != "network"}  # as records were written before
    assert replay_record(r, old).matches
    other = Router(load_scenario(TINY / "two_warehouses_one_carrier.yaml"), ledger=None)
    with pytest.raises(NetworkMismatchError, match="network of 3 nodes and 4 carrier options"):
        replay_record(other, old)


def test_a_tampered_view_is_refused(tiny_router):
    r = tiny_router("tiers_and_storm")
    d = r.route(make_order("t", [("SKU-1", 1)], dest={"region": "north"}))
    rec = json.loads(json.dumps(d.record))
    rec["inputs"]["view"]["queue_orders"][0] += 500.0  # someone edits the stored inputs
    with pytest.raises(ReplayError, match="stored view does not match its recorded hash"):
        replay_record(r, rec)


def test_cli_replay_against_another_scenario_says_so_in_one_line(tmp_path):
    ledger = f"sqlite:///{tmp_path / 'x.sqlite'}"
    order = tmp_path / "order.json"
    order.write_text(
        json.dumps(
            {
                "order_id": "x-1",
                "customer": {"customer_id": "c1"},
                "destination": {"region": "north"},
                "lines": [{"sku": "SKU-1", "qty": 1}],
                "created_at": "2026-11-02T00:00:00Z",
            }
        )
    )
    runner = CliRunner()
    res = runner.invoke(
        app, ["route", "--scenario", str(TINY / "two_warehouses_one_carrier.yaml"), "--order", str(order), "--ledger", ledger]
    )
    assert res.exit_code == 0, res.output
    decision_id = json.loads(res.output)["decision_id"]
    rep = runner.invoke(app, ["replay", decision_id, "--scenario", str(TINY / "split_needed.yaml"), "--ledger", ledger])
    assert rep.exit_code != 0
    lines = [ln for ln in rep.output.splitlines() if ln.strip()]
    assert len(lines) <= 2, rep.output  # no traceback
    assert "was taken on network 'two_warehouses_one_carrier'" in rep.output
    assert "Traceback" not in rep.output
