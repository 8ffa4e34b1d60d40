"""Order states and the atomic re-route, on SQLite and (marked ``postgres``) on PostgreSQL.

``order_states`` holds, per (pool, order), the decision that holds the order and whether
it is routed, released or shipped. Routed decisions recorded with a pool upsert it;
``mark_orders`` moves orders on; ``apply_reroute`` moves open orders to new decisions and
their stock with them in one transaction. The last tests kill a process in the middle
of a 2,000-order re-route and check that all of it or none of it landed.

The stock pool of most tests (``POOL``), by hand:

    cell         on hand
    WH-A SKU-1   10
    WH-B SKU-1    6
    WH-A SKU-2    4
    ST-C SKU-2    3

and three routed orders: o1 by d1 holds 4 of WH-A SKU-1 and 2 of WH-A SKU-2, o2 by d2
holds 3 of WH-A SKU-1, o3 by d3 holds 5 of WH-B SKU-1.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import reroute_kill_worker as worker
import sqlalchemy as sa
from conftest import pg_schema_url

from router.errors import InvalidEventError, LedgerError, ReservationConflict, UnknownOrderError
from router.ledger import SqlLedger, open_ledger
from router.ledger.chain import canonical_json, entry_hash

HERE = Path(__file__).resolve().parent
POOL = "tiny"
T0 = "2026-12-02T08:00:00+00:00"
T1 = "2026-12-02T09:00:00+00:00"
T2 = "2026-12-02T10:00:00+00:00"
STOCK = {("WH-A", "SKU-1"): 10, ("WH-B", "SKU-1"): 6, ("WH-A", "SKU-2"): 4, ("ST-C", "SKU-2"): 3}
HELD = {
    "d1": [("WH-A", "SKU-1", 4), ("WH-A", "SKU-2", 2)],
    "d2": [("WH-A", "SKU-1", 3)],
    "d3": [("WH-B", "SKU-1", 5)],
}


def rec(decision_id: str, order_id: str, *, status: str = "routed", created_at: str = T0, **extra: Any) -> dict:
    return {
        "decision_id": decision_id,
        "order_id": order_id,
        "created_at": created_at,
        "strategy": {"name": "optimizer", "version": "1"},
        "status": status,
        **extra,
    }


# -- backends -------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    url: str
    engine: sa.Engine

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        with self.engine.begin() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A file SQLite ledger, or a fresh schema on the PostgreSQL server (fails in CI when it is down)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        engine = sa.create_engine(url)
        try:
            yield Backend("sqlite", url, engine)
        finally:
            engine.dispose()
    else:
        with pg_schema_url() as url:
            engine = sa.create_engine(url)
            try:
                yield Backend("postgres", url, engine)
            finally:
                engine.dispose()


@pytest.fixture
def ledger(backend: Backend) -> Iterator[SqlLedger]:
    with open_ledger(backend.url) as opened:
        yield opened


@pytest.fixture
def seeded(ledger: SqlLedger) -> SqlLedger:
    """The pool and the three orders of the module docstring, routed in one batch (o4 unfulfillable)."""
    ledger.open_stock(POOL, STOCK)
    ledger.append_decisions(
        [
            (rec("d1", "o1"), HELD["d1"]),
            (rec("d2", "o2"), HELD["d2"]),
            (rec("d4", "o4", status="unfulfillable"), []),
            (rec("d3", "o3"), HELD["d3"]),
        ],
        pool=POOL,
    )
    return ledger


def snapshot(ledger: SqlLedger) -> dict:
    """Everything a refused write must leave as it was."""
    report = ledger.verify()
    return {
        "stock": ledger.stock_levels(POOL),
        "orders": ledger.order_states(POOL),
        "decisions": ledger.count_decisions(),
        "chain": (report.ok, report.entries_checked, report.reason),
        "reserved": ledger.reserved_totals(),
    }


def reserved_per_cell(ledger: SqlLedger, pool: str) -> dict[tuple[str, str], int]:
    return {cell: reserved for cell, (_on_hand, reserved) in ledger.stock_levels(pool).items()}


def assert_stock_matches_reservation_rows(ledger: SqlLedger, pool: str) -> None:
    """The stock table's reserved units per cell equal the reservation rows summed per cell."""
    rows = ledger.reserved_totals()
    stock = reserved_per_cell(ledger, pool)
    assert {c: rows.get(c, 0) for c in stock} == stock
    assert set(rows) <= set(stock)


# -- routed decisions are open orders --------------------------------------------


def test_routed_decisions_are_the_open_orders(seeded: SqlLedger, backend: Backend) -> None:
    assert seeded.open_orders(POOL) == [("o1", "d1"), ("o2", "d2"), ("o3", "d3")]
    assert seeded.open_orders(POOL, limit=2) == [("o1", "d1"), ("o2", "d2")]
    assert seeded.open_orders(POOL, limit=0) == []
    assert seeded.order_states(POOL) == {"o1": ("d1", "routed"), "o2": ("d2", "routed"), "o3": ("d3", "routed")}
    # the unfulfillable decision has no row; another pool has none of these
    assert seeded.order_states(POOL, ["o4"]) == {}
    assert seeded.open_orders("elsewhere") == []
    # the row is stamped with the decision's created_at, in the decision's transaction
    assert backend.rows("SELECT order_id, updated_at FROM order_states ORDER BY order_id") == [
        ("o1", T0), ("o2", T0), ("o3", T0)
    ]


def test_a_decision_without_a_pool_writes_no_order_state(ledger: SqlLedger) -> None:
    ledger.append_decision(rec("d1", "o1"), [("WH-A", "SKU-1", 1)])
    ledger.append_decisions([(rec("d2", "o2"), [])])
    assert ledger.open_orders(POOL) == [] and ledger.count_decisions() == 2


def test_an_order_routed_again_is_held_by_the_new_decision(seeded: SqlLedger, backend: Backend) -> None:
    seeded.append_decision(rec("d1-again", "o1", created_at=T1), [("WH-B", "SKU-1", 1)], pool=POOL)
    assert seeded.order_states(POOL, ["o1"]) == {"o1": ("d1-again", "routed")}
    # within one batch the later decision of an order wins
    seeded.append_decisions(
        [(rec("x1", "o5", created_at=T1), []), (rec("x2", "o5", created_at=T2), [])], pool=POOL
    )
    assert seeded.order_states(POOL, ["o5"]) == {"o5": ("x2", "routed")}
    assert backend.rows("SELECT updated_at FROM order_states WHERE order_id = 'o5'") == [(T2,)]
    # a released order routed again is open again
    seeded.mark_orders(POOL, ["o2"], "released", T1)
    seeded.append_decision(rec("d2-again", "o2", created_at=T2), [], pool=POOL)
    assert seeded.order_states(POOL, ["o2"]) == {"o2": ("d2-again", "routed")}


def test_a_refused_decision_writes_no_order_state(seeded: SqlLedger) -> None:
    before = snapshot(seeded)
    with pytest.raises(ReservationConflict):
        seeded.append_decisions([(rec("d9", "o9"), []), (rec("d10", "o10"), [("ST-C", "SKU-2", 4)])], pool=POOL)
    with pytest.raises(LedgerError, match="already in the ledger"):
        seeded.append_decision(rec("d1", "o9"), [], pool=POOL)
    with pytest.raises(LedgerError, match=re.escape("decision 'd9' not recorded: order_id must be a non-empty str, got 7")):
        seeded.append_decision(rec("d9", 7), [], pool=POOL)  # type: ignore[arg-type]
    assert snapshot(seeded) == before


def test_order_states_filters(seeded: SqlLedger) -> None:
    seeded.mark_orders(POOL, ["o2"], "released", T1)
    seeded.mark_orders(POOL, ["o3"], "shipped", T1)
    assert seeded.order_states(POOL, state="routed") == {"o1": ("d1", "routed")}
    assert seeded.order_states(POOL, state="released") == {"o2": ("d2", "released")}
    assert seeded.order_states(POOL, ["o3", "o1", "nope"]) == {"o1": ("d1", "routed"), "o3": ("d3", "shipped")}
    assert seeded.order_states(POOL, ["o3", "o1"], state="shipped") == {"o3": ("d3", "shipped")}
    assert seeded.order_states(POOL, []) == {}
    with pytest.raises(InvalidEventError) as info:
        seeded.order_states(POOL, state="open")
    assert (info.value.field, info.value.reason) == (
        "state", "'open' is not an order state; expected one of routed, released, shipped"
    )


# -- mark_orders ------------------------------------------------------------------


def test_mark_orders_moves_routed_to_released_to_shipped(seeded: SqlLedger, backend: Backend) -> None:
    stock = seeded.stock_levels(POOL)
    assert seeded.mark_orders(POOL, ["o1", "o2", "o1"], "released", T1) == ["o1", "o2"]
    assert seeded.open_orders(POOL) == [("o3", "d3")]
    assert seeded.mark_orders(POOL, ["o1"], "shipped", T2) == ["o1"]
    assert seeded.mark_orders(POOL, ["o3"], "shipped", T2) == ["o3"]  # routed -> shipped
    assert seeded.order_states(POOL) == {"o1": ("d1", "shipped"), "o2": ("d2", "released"), "o3": ("d3", "shipped")}
    assert backend.rows("SELECT order_id, updated_at FROM order_states ORDER BY order_id") == [
        ("o1", T2), ("o2", T1), ("o3", T2)
    ]
    assert seeded.mark_orders(POOL, [], "shipped", T2) == []
    # states only: the stock and the chain are untouched
    assert seeded.stock_levels(POOL) == stock
    assert seeded.verify().entries_checked == 4


@pytest.mark.parametrize(
    ("setup", "order_ids", "state", "field", "reason"),
    [
        ([], ["o9"], "released", "order_ids", "order 'o9' has no state in stock pool 'tiny': no decision routed it there"),
        ([], ["o4"], "shipped", "order_ids", "order 'o4' has no state in stock pool 'tiny': no decision routed it there"),
        ([("o1", "shipped")], ["o1"], "released", "order_ids", "order 'o1' is shipped (decision 'd1'): it cannot move to released"),
        ([("o1", "shipped")], ["o1"], "shipped", "order_ids", "order 'o1' is shipped (decision 'd1'): it cannot move to shipped"),
        ([("o1", "released")], ["o1"], "released", "order_ids", "order 'o1' is released (decision 'd1'): it cannot move to released"),
        ([("o1", "released")], ["o1"], "routed", "order_ids", "order 'o1' is released (decision 'd1'): it cannot move to routed"),
        ([], ["o1"], "routed", "order_ids", "order 'o1' is routed (decision 'd1'): it cannot move to routed"),
        ([], ["o1"], "cancelled", "state", "'cancelled' is not an order state; expected one of routed, released, shipped"),
        # the first orders could move: none of them does
        ([("o3", "released")], ["o1", "o2", "o3", "o9"], "released", "order_ids",
         "order 'o3' is released (decision 'd3'): it cannot move to released"),
    ],
)
def test_mark_orders_refusals_change_nothing(
    seeded: SqlLedger, setup: list, order_ids: list, state: str, field: str, reason: str
) -> None:
    for oid, to in setup:
        seeded.mark_orders(POOL, [oid], to, T1)
    before = snapshot(seeded)
    with pytest.raises(InvalidEventError) as info:
        seeded.mark_orders(POOL, order_ids, state, T2)
    assert (info.value.field, info.value.reason) == (field, reason)
    # "no such order" is told apart by type (the service answers 404 for it, 409 for a refused move)
    assert isinstance(info.value, UnknownOrderError) == ("has no state" in reason)
    assert snapshot(seeded) == before


def test_mark_orders_needs_text(seeded: SqlLedger) -> None:
    with pytest.raises(LedgerError, match="at must be a non-empty string"):
        seeded.mark_orders(POOL, ["o1"], "shipped", "")
    with pytest.raises(LedgerError, match="order id must be a non-empty string"):
        seeded.mark_orders(POOL, ["o1", None], "shipped", T1)  # type: ignore[list-item]
    assert seeded.open_orders(POOL) == [("o1", "d1"), ("o2", "d2"), ("o3", "d3")]


# -- apply_reroute ----------------------------------------------------------------


def moves_o2_then_o1() -> list:
    """o2 takes all 10 of WH-A SKU-1, which fits only once o1 (listed after it) gave its 4 back.

    o2: gives back 3 of WH-A SKU-1, reserves 10 of WH-A SKU-1.
    o1: gives back 4 of WH-A SKU-1 and 2 of WH-A SKU-2, reserves 2 of ST-C SKU-2 and 1 of WH-B SKU-1.
    """
    return [
        ("d2", rec("n2", "o2", created_at=T1), HELD["d2"], [("WH-A", "SKU-1", 10)]),
        ("d1", rec("n1", "o1", created_at=T1, note="via ST-C"), HELD["d1"], [("ST-C", "SKU-2", 2), ("WH-B", "SKU-1", 1)]),
    ]


def test_apply_reroute_moves_the_reservations_exactly(seeded: SqlLedger, backend: Backend) -> None:
    # (on hand, reserved) per cell before, from the module docstring
    assert seeded.stock_levels(POOL) == {
        ("WH-A", "SKU-1"): (10, 7), ("WH-B", "SKU-1"): (6, 5), ("WH-A", "SKU-2"): (4, 2), ("ST-C", "SKU-2"): (3, 0)
    }
    head = seeded.verify().reason.rsplit(" ", 1)[-1]
    moves = moves_o2_then_o1()

    hashes = seeded.apply_reroute(POOL, moves, created_at=T2)

    # WH-A SKU-1: 7 - 3 - 4 + 10 = 10; WH-B SKU-1: 5 + 1; WH-A SKU-2: 2 - 2; ST-C SKU-2: 0 + 2
    assert seeded.stock_levels(POOL) == {
        ("WH-A", "SKU-1"): (10, 10), ("WH-B", "SKU-1"): (6, 6), ("WH-A", "SKU-2"): (4, 0), ("ST-C", "SKU-2"): (3, 2)
    }
    assert_stock_matches_reservation_rows(seeded, POOL)
    # the old decisions hold nothing any more: their rows plus the negative ones
    assert seeded.reservations_for("d1") == HELD["d1"] + [(n, s, -q) for n, s, q in HELD["d1"]]
    assert seeded.reservations_for("d2") == [("WH-A", "SKU-1", 3), ("WH-A", "SKU-1", -3)]
    for old in ("d1", "d2"):
        net: dict = {}
        for n, s, q in seeded.reservations_for(old):
            net[(n, s)] = net.get((n, s), 0) + q
        assert set(net.values()) == {0}
    assert seeded.reservations_for("n2") == [("WH-A", "SKU-1", 10)]
    assert seeded.reservations_for("n1") == [("ST-C", "SKU-2", 2), ("WH-B", "SKU-1", 1)]
    assert seeded.reservations_for("d3") == HELD["d3"]
    # the orders point at their new decisions, still open; o3 untouched
    assert seeded.order_states(POOL) == {"o1": ("n1", "routed"), "o2": ("n2", "routed"), "o3": ("d3", "routed")}
    assert backend.rows("SELECT order_id, updated_at FROM order_states ORDER BY order_id") == [
        ("o1", T2), ("o2", T2), ("o3", T0)
    ]
    # the new records are chained as decisions, in the order of the moves, exactly as given
    h2 = entry_hash(head, "decision", "n2", canonical_json(moves[0][1]))
    h1 = entry_hash(h2, "decision", "n1", canonical_json(moves[1][1]))
    assert hashes == [h2, h1]
    assert seeded.get_decision("n1") == moves[1][1]
    assert seeded.count_decisions() == 6
    report = seeded.verify()
    assert (report.ok, report.entries_checked) == (True, 6)
    assert report.reason.endswith(h1)
    # and the re-routed orders can be re-routed again, or shipped
    seeded.apply_reroute(POOL, [("n1", rec("m1", "o1"), [("ST-C", "SKU-2", 2)], [("WH-A", "SKU-2", 4)])], created_at=T2)
    assert seeded.stock_levels(POOL)[("WH-A", "SKU-2")] == (4, 4)
    assert seeded.stock_levels(POOL)[("ST-C", "SKU-2")] == (3, 0)
    assert seeded.reservations_for("n1") == [("ST-C", "SKU-2", 2), ("WH-B", "SKU-1", 1), ("ST-C", "SKU-2", -2)]
    assert seeded.mark_orders(POOL, ["o1", "o2"], "shipped", T2) == ["o1", "o2"]
    assert seeded.open_orders(POOL) == [("o3", "d3")]
    assert seeded.verify().ok


def test_apply_reroute_of_nothing_writes_nothing(seeded: SqlLedger) -> None:
    before = snapshot(seeded)
    assert seeded.apply_reroute(POOL, [], created_at=T2) == []
    assert snapshot(seeded) == before


def _release(ledger: SqlLedger) -> None:
    ledger.mark_orders(POOL, ["o1"], "released", T1)


def _ship(ledger: SqlLedger) -> None:
    ledger.mark_orders(POOL, ["o1"], "shipped", T1)


def _route_again(ledger: SqlLedger) -> None:
    ledger.append_decision(rec("d1b", "o1", created_at=T1), [], pool=POOL)


@pytest.mark.parametrize(
    ("meanwhile", "reason"),
    [
        (_release, "order 'o1' is no longer open: released"),
        (_ship, "order 'o1' is no longer open: shipped"),
        (_route_again, "order 'o1' is no longer open: held by decision 'd1b'"),
    ],
)
def test_apply_reroute_refused_when_an_order_is_no_longer_open(seeded: SqlLedger, meanwhile, reason: str) -> None:
    meanwhile(seeded)
    before = snapshot(seeded)
    with pytest.raises(InvalidEventError) as info:
        seeded.apply_reroute(POOL, moves_o2_then_o1(), created_at=T2)
    assert (info.value.field, info.value.reason) == ("moves", reason)
    assert snapshot(seeded) == before
    assert seeded.reservations_for("d2") == HELD["d2"]


def test_apply_reroute_refused_for_an_order_never_routed_in_the_pool(seeded: SqlLedger) -> None:
    before = snapshot(seeded)
    with pytest.raises(InvalidEventError) as info:
        seeded.apply_reroute(POOL, [("d4", rec("n4", "o4"), [], [])], created_at=T2)
    assert info.value.reason == "order 'o4' is no longer open: no decision routed it in stock pool 'tiny'"
    assert snapshot(seeded) == before


def test_apply_reroute_refused_when_a_reserve_row_does_not_fit(seeded: SqlLedger) -> None:
    moves = moves_o2_then_o1()
    moves[1] = ("d1", moves[1][1], HELD["d1"], [("ST-C", "SKU-2", 2), ("WH-B", "SKU-1", 2)])  # 5 + 2 > 6
    before = snapshot(seeded)
    with pytest.raises(ReservationConflict) as info:
        seeded.apply_reroute(POOL, moves, created_at=T2)
    assert str(info.value) == (
        "re-route of 2 orders not recorded: 2 of SKU-1 at WH-B do not fit in stock pool 'tiny': "
        "on hand 6, reserved 5 once the re-route's releases are given back"
    )
    # the levels as committed (the releases rolled back), every cell of the SKUs reserved
    assert info.value.levels == {
        ("WH-A", "SKU-1"): (10, 7), ("WH-B", "SKU-1"): (6, 5), ("WH-A", "SKU-2"): (4, 2), ("ST-C", "SKU-2"): (3, 0)
    }
    assert snapshot(seeded) == before
    # 11 of a cell that holds 10, whatever is released
    moves = moves_o2_then_o1()
    moves[0] = ("d2", moves[0][1], HELD["d2"], [("WH-A", "SKU-1", 11)])
    with pytest.raises(ReservationConflict, match="11 of SKU-1 at WH-A do not fit in stock pool 'tiny': on hand 10, reserved 0 once"):
        seeded.apply_reroute(POOL, moves, created_at=T2)
    assert snapshot(seeded) == before


def test_apply_reroute_refused_when_a_release_is_not_held_or_not_reserved(seeded: SqlLedger) -> None:
    before = snapshot(seeded)
    # d3 holds 5 of WH-B SKU-1, not 6
    with pytest.raises(InvalidEventError) as info:
        seeded.apply_reroute(POOL, [("d3", rec("n3", "o3"), [("WH-B", "SKU-1", 6)], [])], created_at=T2)
    assert (info.value.field, info.value.reason) == ("moves", "order 'o3': decision 'd3' holds 5 of SKU-1 at WH-B, cannot give back 6")
    # a release of units d3 never held, even when the pool has them reserved
    with pytest.raises(InvalidEventError, match=re.escape("decision 'd3' holds 0 of SKU-1 at WH-A, cannot give back 1")):
        seeded.apply_reroute(POOL, [("d3", rec("n3", "o3"), [("WH-A", "SKU-1", 1)], [])], created_at=T2)
    assert snapshot(seeded) == before
    # the pool's units left by another way (shipped behind the ledger's back): refused by the stock
    seeded.change_stock(POOL, "WH-B", "SKU-1", ship=5)
    before = snapshot(seeded)
    with pytest.raises(InvalidEventError) as info:
        seeded.apply_reroute(POOL, [("d3", rec("n3", "o3"), HELD["d3"], [("WH-A", "SKU-1", 1)])], created_at=T2)
    assert info.value.reason == (
        "5 of SKU-1 at WH-B are no longer reserved in stock pool 'tiny' (on hand 1, reserved 0): "
        "shipped or released by another writer"
    )
    assert snapshot(seeded) == before


def test_apply_reroute_refused_when_the_new_decision_is_already_recorded(seeded: SqlLedger) -> None:
    """The unique entry id fails after the stock was moved in the transaction: all of it rolls back."""
    moves = moves_o2_then_o1()
    moves[1] = ("d1", rec("d3", "o1"), HELD["d1"], [("ST-C", "SKU-2", 2)])
    before = snapshot(seeded)
    with pytest.raises(LedgerError, match="re-route of 2 orders not recorded: rejected by the database"):
        seeded.apply_reroute(POOL, moves, created_at=T2)
    assert snapshot(seeded) == before
    # the ledger still writes afterwards
    assert len(seeded.apply_reroute(POOL, moves_o2_then_o1(), created_at=T2)) == 2


@pytest.mark.parametrize(
    ("moves", "message"),
    [
        ([("d1", rec("n1", "o1"), [], []), ("d1", rec("n2", "o2"), [], [])], "old decision id repeated in the moves: ['d1']"),
        ([("d1", rec("n1", "o1"), [], []), ("d2", rec("n2", "o1"), [], [])], "order_id repeated in the moves: ['o1']"),
        ([("d1", rec("n1", "o1"), [], []), ("d2", rec("n1", "o2"), [], [])], "new decision id repeated in the moves: ['n1']"),
        ([("d1", rec("n1", "o1", status="unfulfillable"), [], [])], "a re-route records routed decisions, got status 'unfulfillable'"),
        ([("d1", rec("n1", "o1"), [])], "move [0] must be (old_decision_id, new_record, release_rows, reserve_rows)"),
        ([("", rec("n1", "o1"), [], [])], "move [0]: old_decision_id must be a non-empty str"),
        ([("d1", {"decision_id": "n1"}, [], [])], "record is missing order_id, created_at, strategy, status"),
        ([("d1", rec("n1", "o1"), [("WH-A", "SKU-1", 0)], [])], "qty: int >= 1"),
    ],
)
def test_apply_reroute_refuses_malformed_moves(seeded: SqlLedger, moves: list, message: str) -> None:
    before = snapshot(seeded)
    with pytest.raises(LedgerError, match=re.escape(message)):
        seeded.apply_reroute(POOL, moves, created_at=T2)
    assert snapshot(seeded) == before


# -- schema upgrade -----------------------------------------------------------------


def test_router_db_upgrade_brings_a_0004_ledger_to_head(backend: Backend) -> None:
    """A ledger written at 0004 gains order_states (and the later revisions); its orders routed before are not listed as open."""
    from alembic import command
    from alembic.config import Config
    from typer.testing import CliRunner

    from router.cli import app
    from router.ledger.migrate import MIGRATIONS_DIR

    with backend.engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
    with pytest.raises(LedgerError, match="schema revision 0004, expected 0006"):
        SqlLedger(backend.url, create=False)
    assert backend.rows("SELECT version_num FROM alembic_version") == [("0004",)]

    result = CliRunner().invoke(app, ["db", "upgrade", "--database-url", backend.url], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "ledger schema at revision 0006" in result.output
    assert backend.rows("SELECT version_num FROM alembic_version") == [("0006",)]
    with SqlLedger(backend.url, create=False) as ledger:
        assert ledger.open_orders(POOL) == []
        ledger.open_stock(POOL, STOCK)
        ledger.append_decision(rec("d1", "o1"), HELD["d1"], pool=POOL)
        assert ledger.open_orders(POOL) == [("o1", "d1")]


# -- a process killed in the middle of a re-route -------------------------------------

KILL_ORDERS = 2_000
# Seconds after the worker's transaction is seen open; the transaction takes about 0.3 s
# (2,000 orders) on either database here, so the first kills land inside it.
KILL_DELAYS = (0.02, 0.12)


def _expected_reserved(n: int, prefix: str) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for i in range(n):
        for node, sku, qty in worker.rows(i, prefix):
            out[(node, sku)] = out.get((node, sku), 0) + qty
    return out


def _landed(ledger: SqlLedger, n: int) -> str:
    """``"none"`` or ``"all"`` of the worker's re-route; fails on anything in between."""
    report = ledger.verify()
    assert report.ok, report.reason
    states = ledger.order_states(worker.POOL)
    old = {f"o{i}": (f"d{i}", "routed") for i in range(n)}
    new = {f"o{i}": (f"r{i}", "routed") for i in range(n)}
    assert states in (old, new), "order_states holds part of the re-route"
    outcome = "none" if states == old else "all"
    assert report.entries_checked == ledger.count_decisions() == (n if outcome == "none" else 2 * n)
    assert_stock_matches_reservation_rows(ledger, worker.POOL)
    reserved = {c: r for c, r in reserved_per_cell(ledger, worker.POOL).items() if r}
    assert reserved == _expected_reserved(n, "WH" if outcome == "none" else "ST")
    return outcome


def _in_transaction(backend: Backend, app_name: str) -> bool:
    """Whether the worker's write transaction is open now."""
    if backend.name == "sqlite":
        path = sa.make_url(backend.url).database
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock: held by the worker from BEGIN to COMMIT
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise
        else:
            conn.execute("ROLLBACK")
            return False
        finally:
            conn.close()
    got = backend.rows(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a AND xact_start IS NOT NULL",
        a=app_name,
    )
    return got[0][0] > 0


def _wait_backend_gone(backend: Backend, app_name: str) -> None:
    """PostgreSQL rolls back a killed client's transaction once it notices the closed socket."""
    if backend.name != "postgres":
        return
    deadline = time.monotonic() + 20
    while backend.rows("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a", a=app_name)[0][0]:
        assert time.monotonic() < deadline, "the killed worker's server process is still there"
        time.sleep(0.02)


def _run_worker(backend: Backend, kill_after: float | None) -> tuple[int, bool, str]:
    """Run the worker; kill it ``kill_after`` seconds after its transaction is seen open.

    Returns its exit code, whether the transaction was open at the moment of the kill
    (checked just before it), and its output.
    """
    app_name = f"reroute-kill-{uuid.uuid4().hex[:8]}"
    url = backend.url
    if backend.name == "postgres":
        url = sa.make_url(url).update_query_dict({"application_name": app_name}).render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "reroute_kill_worker.py"), url, str(KILL_ORDERS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        if proc.stdout.readline().strip() != "started":
            pytest.fail(f"the worker did not start: {proc.stderr.read()}")
        open_at_kill = False
        if kill_after is not None:
            deadline = time.monotonic() + 60
            while proc.poll() is None and not _in_transaction(backend, app_name):
                assert time.monotonic() < deadline, "the worker's transaction never opened"
            if proc.poll() is None:
                time.sleep(kill_after)
                open_at_kill = proc.poll() is None and _in_transaction(backend, app_name)
                proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _wait_backend_gone(backend, app_name)
    return proc.returncode, open_at_kill, out + err


@pytest.mark.slow
def test_a_reroute_killed_mid_transaction_lands_all_or_nothing(backend: Backend) -> None:
    with open_ledger(backend.url) as ledger:
        worker.seed(ledger, KILL_ORDERS)
        assert _landed(ledger, KILL_ORDERS) == "none"
    killed_inside = 0
    for delay in KILL_DELAYS:
        code, open_at_kill, output = _run_worker(backend, delay)
        with open_ledger(backend.url) as ledger:
            outcome = _landed(ledger, KILL_ORDERS)
        if outcome == "all":
            # it committed before the signal: nothing is left to kill on this database
            assert "done" in output or code == -signal.SIGKILL, output
            break
        assert code == -signal.SIGKILL, output
        assert "done" not in output
        killed_inside += open_at_kill
    # at least one kill hit the open transaction (seen open just before the signal) and it left nothing
    assert killed_inside >= 1
    # the ledger is whole after the kills: the same re-route, not killed, lands in full
    if outcome == "none":
        code, _, output = _run_worker(backend, None)
        assert code == 0 and "done" in output, output
        with open_ledger(backend.url) as ledger:
            assert _landed(ledger, KILL_ORDERS) == "all"
