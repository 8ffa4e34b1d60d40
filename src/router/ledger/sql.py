"""SqlLedger: the decision ledger on SQLite (default) or PostgreSQL, via SQLAlchemy Core.

Writes are serialised twice over, because the chain head must be read and
extended atomically: a ``threading.Lock`` orders the threads of one process,
and the database orders processes (SQLite ``BEGIN IMMEDIATE`` takes the single
write lock before the head is read; PostgreSQL ``pg_advisory_xact_lock`` does the
same for every writer of the chain). Reads take neither lock (except on an
in-memory database, which is a single shared connection); on SQLite they run in
WAL mode next to the writer.

Core statements (not the ORM) are built once at import and hit SQLAlchemy's
compiled cache, and writes reuse one kept connection, so an append costs a few
cheap round trips and one commit.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from numbers import Integral
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, select, text
from sqlalchemy.dialects.postgresql import insert as _pg_insert
from sqlalchemy.dialects.sqlite import insert as _sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from router.errors import InvalidEventError, LedgerError, ReservationConflict, UnknownDecisionError, UnknownOrderError
from router.ledger.base import DecisionLedger, Reservation, StrategyStore, VerifyReport
from router.ledger.chain import ENTRY_KINDS, GENESIS_HASH, canonical_json, entry_hash
from router.ledger.codec import pack_body, unpack_body
from router.ledger.migrate import HEAD_REVISION, current_revision, upgrade_to_head
from router.ledger.schema import (
    entries,
    idempotency_keys,
    order_states,
    reservations,
    state_events,
    stock,
    strategy_modes,
    strategy_versions,
)

__all__ = ["DEFAULT_URL", "SqlLedger", "open_ledger"]

_log = logging.getLogger(__name__)

#: Where the ledger lives when nothing is configured: a file in the working directory.
DEFAULT_URL = "sqlite:///router-ledger.sqlite"

# Any fixed bigint works as long as every writer of the chain uses the same one;
# this is ASCII "router" followed by 0x0001.
_PG_CHAIN_LOCK_KEY = 0x726F75746572_0001
# Long enough to outlast a burst of batch appends from other processes; a writer
# waiting longer than this gets a LedgerError rather than hanging forever.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option read by the SQLite "begin" hook to choose the BEGIN flavour.
_SQLITE_BEGIN = "router_sqlite_begin"

_REQUIRED_DECISION_KEYS = ("decision_id", "order_id", "created_at", "strategy", "status")

_INSERT_ENTRY = entries.insert()
_INSERT_RESERVATION = reservations.insert()
_SELECT_HEAD = select(entries.c.hash).order_by(entries.c.seq.desc()).limit(1)
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# The same statements as plain SQL for the SQLite driver fast path (see SqlLedger._sqlite_append).
_SQLITE_HEAD = f"SELECT hash FROM {entries.name} ORDER BY seq DESC LIMIT 1"
_SQLITE_INSERT_ENTRY = (
    f"INSERT INTO {entries.name} (kind, entry_id, decision_id, created_at, body_z, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_RESERVATION = f"INSERT INTO {reservations.name} (decision_id, node_id, sku, qty) VALUES (?, ?, ?, ?)"
# Check-and-reserve: the row changes only if the units are still there. This WHERE is the
# no-oversell rule across processes; the table's CHECK constraints are a second guard.
_RESERVE_SQL = (
    f"UPDATE {stock.name} SET reserved = reserved + :qty "
    "WHERE pool = :pool AND node_id = :node_id AND sku = :sku AND on_hand - reserved >= :qty"
)
_SQLITE_RESERVE = (
    f"UPDATE {stock.name} SET reserved = reserved + ? "
    "WHERE pool = ? AND node_id = ? AND sku = ? AND on_hand - reserved >= ?"
)
# Stock events, each conditional on keeping reserved <= on_hand (and reserved >= 0).
_STOCK_CHANGES = {
    "set_on_hand": f"UPDATE {stock.name} SET on_hand = :value "
    "WHERE pool = :pool AND node_id = :node_id AND sku = :sku AND reserved <= :value "
    "RETURNING on_hand, reserved",
    "delta": f"UPDATE {stock.name} SET on_hand = on_hand + :value "
    "WHERE pool = :pool AND node_id = :node_id AND sku = :sku AND on_hand + :value >= reserved "
    "RETURNING on_hand, reserved",
    "ship": f"UPDATE {stock.name} SET on_hand = on_hand - :value, reserved = reserved - :value "
    "WHERE pool = :pool AND node_id = :node_id AND sku = :sku AND reserved >= :value "
    "RETURNING on_hand, reserved",
    "release": f"UPDATE {stock.name} SET reserved = reserved - :value "
    "WHERE pool = :pool AND node_id = :node_id AND sku = :sku AND reserved >= :value "
    "RETURNING on_hand, reserved",
}

# Where a routed order stands (schema 0005): a routed decision recorded with a pool points its
# order's row at itself, in its own transaction. ``excluded`` is the row that was refused.
_SQLITE_UPSERT_ORDER = (
    f"INSERT INTO {order_states.name} (pool, order_id, decision_id, state, updated_at) "
    "VALUES (?, ?, ?, 'routed', ?) ON CONFLICT (pool, order_id) DO UPDATE SET "
    "decision_id = excluded.decision_id, state = 'routed', updated_at = excluded.updated_at"
)
_pg_order_insert = _pg_insert(order_states)
_PG_UPSERT_ORDER = _pg_order_insert.on_conflict_do_update(
    index_elements=[order_states.c.pool, order_states.c.order_id],
    set_={
        "decision_id": _pg_order_insert.excluded.decision_id,
        "state": _pg_order_insert.excluded.state,
        "updated_at": _pg_order_insert.excluded.updated_at,
    },
)
# Order-state rows change in place (the chain keeps the history): by primary key, after the
# writer has read and checked them under the chain lock.
_UPDATE_ORDER_STATE = (
    order_states.update()
    .where(order_states.c.pool == bindparam("b_pool"), order_states.c.order_id == bindparam("b_order"))
    .values(state=bindparam("state"), updated_at=bindparam("updated_at"))
)
_REPOINT_ORDER = (
    order_states.update()
    .where(order_states.c.pool == bindparam("b_pool"), order_states.c.order_id == bindparam("b_order"))
    .values(decision_id=bindparam("decision_id"), updated_at=bindparam("updated_at"))
)
# Ids per IN (...) list: far below SQLite's limit on bound parameters.
_IN_CHUNK = 1_000
#: The states of an order, and the moves ``mark_orders`` allows to each of them.
ORDER_STATES = ("routed", "released", "shipped")
_ORDER_MOVES = {"released": ("routed",), "shipped": ("routed", "released")}

_T = TypeVar("_T")

#: The rollout modes of a strategy version (schema 0006).
STRATEGY_MODES = ("off", "shadow", "canary", "on")
_SELECT_MODE_HEAD = select(strategy_modes.c.hash).order_by(strategy_modes.c.seq.desc()).limit(1)
_SELECT_MODE_SEQ = select(func.max(strategy_modes.c.seq))


class _ShortStock(Exception):
    """A reserve row of a re-route does not fit; raised inside the transaction to roll it back."""

    def __init__(self, node_id: str, sku: str, qty: int, on_hand: int, reserved: int) -> None:
        super().__init__(node_id, sku, qty, on_hand, reserved)
        self.node_id, self.sku, self.qty, self.on_hand, self.reserved = node_id, sku, qty, on_hand, reserved


class _Entry(NamedTuple):
    """An entry serialised and validated, waiting for its place in the chain."""

    kind: str
    entry_id: str
    decision_id: str
    created_at: str
    body: bytes


class SqlLedger(DecisionLedger, StrategyStore):
    """The decision ledger stored through SQLAlchemy Core.

    Parameters
    ----------
    url
        SQLAlchemy URL. ``sqlite:///path/to/file.sqlite`` (the parent folder is
        created if missing; ``sqlite://`` is an in-memory ledger for tests) or
        ``postgresql+psycopg://user@host:5432/db``.
    create
        Create or migrate the schema (``alembic upgrade head``) if it is not at
        the current revision. With False, a missing or old schema is an error.

    Raises
    ------
    LedgerError
        If the URL is malformed or unsupported, the database is unreachable, or
        the schema is not at head and ``create`` is False.

    Notes
    -----
    Safe to share between threads, and several processes may append to the same
    database at once. No chain entry or reservation row is ever updated or deleted
    (see :meth:`verify`); only running states change in place: the stock table and
    ``order_states`` (where each routed order stands, see :meth:`open_orders`).
    """

    def __init__(self, url: str = DEFAULT_URL, *, create: bool = True) -> None:
        self._engine, in_memory = _create_engine(url)
        self.url = self._engine.url.render_as_string(hide_password=True)
        self._is_postgres = self._engine.dialect.name == "postgresql"
        # Plain reads on SQLite start a deferred transaction: with WAL they see
        # a consistent snapshot without blocking (or waiting for) the writer.
        self._reader = self._engine.execution_options(**{_SQLITE_BEGIN: "DEFERRED"})
        self._write_lock = threading.Lock()
        # An in-memory database is one shared connection, so reads must not
        # interleave with a write transaction on it.
        self._read_lock: AbstractContextManager[Any] = (
            self._write_lock if in_memory else nullcontext()
        )
        # One connection kept for writes (used only under the write lock): a pool
        # checkout and reset per append would halve the append rate.
        self._write_conn: Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        try:
            self._ensure_schema(create)
        except BaseException:
            self._engine.dispose()
            raise

    # -- lifecycle -------------------------------------------------------------

    def _ensure_schema(self, create: bool) -> None:
        try:
            with self._reader.connect() as conn:
                revision = current_revision(conn)
            if revision == HEAD_REVISION:
                return
            if not create:
                raise LedgerError(
                    f"ledger at {self.url} has schema revision {revision or 'none'}, "
                    f"expected {HEAD_REVISION}; open it with create=True to migrate it"
                )
            _log.info("migrating ledger at %s from %s to %s", self.url, revision, HEAD_REVISION)
            with self._engine.connect() as conn, conn.begin():
                if self._is_postgres:
                    conn.execute(_PG_LOCK, {"key": _PG_CHAIN_LOCK_KEY})
                upgrade_to_head(conn)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot open ledger at {self.url}: {_db_message(exc)}") from exc

    def close(self) -> None:
        """Release every pooled connection; later calls raise :class:`LedgerError`."""
        with self._write_lock:
            self._closed = True
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
            self._engine.dispose()

    def __enter__(self) -> SqlLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlLedger({self.url!r})"

    # -- writes ----------------------------------------------------------------

    def append_decision(self, record: dict, reservations: Sequence[Reservation], *, pool: str | None = None) -> str:
        """Record one decision and its reservation rows in one transaction.

        Parameters
        ----------
        record
            JSON-able decision record with at least ``decision_id``, ``order_id``,
            ``created_at`` (ISO text), ``strategy`` (a dict with ``name``) and
            ``status``. Stored as canonical JSON, exactly as given.
        reservations
            ``(node_id, sku, qty)`` rows reserved by this decision, ``qty >= 1``.
        pool
            The stock pool to reserve from (see :meth:`open_stock`). With a pool,
            every row is checked and reserved against the stock table in the same
            transaction, and a ``routed`` decision points its order's row in
            ``order_states`` at itself (state ``routed``, at its ``created_at``; an
            order routed again is held by the newer decision). None records the
            rows without touching stock or order states.

        Returns
        -------
        str
            The entry's chain hash.

        Raises
        ------
        LedgerError
            If the record is incomplete or not JSON-able, a reservation is
            malformed, the decision id is already recorded, a routed decision
            recorded with a pool has no text ``order_id``, or the database
            fails. Nothing is written in any of these cases.
        ReservationConflict
            The pool no longer holds some reserved units (another writer took
            them); ``levels`` has the current stock of every cell. Nothing is written.
        """
        return self.append_decisions([(record, reservations)], pool=pool)[0]

    def append_decisions(
        self, items: Sequence[tuple[dict, Sequence[Reservation]]], *, pool: str | None = None
    ) -> list[str]:
        """Record many decisions and their reservations in one transaction.

        Parameters
        ----------
        items
            ``(record, reservations)`` pairs as for :meth:`append_decision`.

        Returns
        -------
        list of str
            Chain hashes, in the order of ``items``.

        Raises
        ------
        LedgerError
            As :meth:`append_decision`; one bad item records none of them.
        """
        pending: list[_Entry] = []
        reservation_rows: list[dict[str, Any]] = []
        # order id -> (decision id, created_at) of the batch's routed decisions; the last wins
        routed: dict[str, tuple[str, str]] = {}
        for record, reserved in items:
            entry = _prepare_decision(record)
            pending.append(entry)
            reservation_rows.extend(_prepare_reservations(entry.decision_id, reserved))
            if pool is not None and record["status"] == "routed":
                routed[_order_id(record, entry.entry_id)] = (entry.decision_id, entry.created_at)
        if not pending:
            return []
        if len({e.entry_id for e in pending}) != len(pending):
            ids = [e.entry_id for e in pending]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise LedgerError(f"decisions not recorded: decision_id repeated in the batch: {dupes}")
        what = (
            f"decision {pending[0].entry_id!r}"
            if len(pending) == 1
            else f"batch of {len(pending)} decisions"
        )

        if not self._is_postgres:
            return self._sqlite_append(what, pending, reservation_rows, pool, routed)

        def write(conn: Connection, head: str) -> list[str]:
            if pool is not None and reservation_rows:
                _reserve_stock(conn, what, pool, reservation_rows)
            hashes = _insert_entries(conn, head, pending)
            if reservation_rows:
                conn.execute(_INSERT_RESERVATION, reservation_rows)
            if routed:
                conn.execute(
                    _PG_UPSERT_ORDER,
                    [
                        {"pool": pool, "order_id": o, "decision_id": d, "state": "routed", "updated_at": at}
                        for o, (d, at) in routed.items()
                    ],
                )
            return hashes

        return self._write(what, write)

    def _sqlite_append(
        self,
        what: str,
        pending: list[_Entry],
        reservation_rows: list[dict[str, Any]],
        pool: str | None,
        routed: dict[str, tuple[str, str]],
    ) -> list[str]:
        """The decision write on SQLite, through the driver connection SQLAlchemy opened.

        Why: route() commits one decision per call, and at ~0.1 ms of SQL work the
        Core statement machinery (compile cache lookups, events, result objects) cost
        as much again. Same transaction, same statements, same chain lock
        (BEGIN IMMEDIATE) as :meth:`_write`; the tables are SQLAlchemy's.
        """
        with self._write_lock:
            self._check_open()
            if self._write_conn is None:
                try:
                    self._write_conn = self._engine.connect()
                except SQLAlchemyError as exc:
                    raise LedgerError(f"{what} not recorded: {_db_message(exc)}") from exc
            raw = self._write_conn.connection.driver_connection
            cur = raw.cursor()  # type: ignore[union-attr]
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    if pool is not None and reservation_rows:
                        _sqlite_reserve_stock(cur, what, pool, reservation_rows)
                    row = cur.execute(_SQLITE_HEAD).fetchone()
                    prev = row[0] if row else GENESIS_HASH
                    rows = []
                    for entry in pending:
                        digest = entry_hash(prev, entry.kind, entry.entry_id, entry.body)
                        rows.append(
                            (entry.kind, entry.entry_id, entry.decision_id, entry.created_at,
                             pack_body(entry.body), prev, digest)
                        )
                        prev = digest
                    cur.executemany(_SQLITE_INSERT_ENTRY, rows)
                    if reservation_rows:
                        cur.executemany(
                            _SQLITE_INSERT_RESERVATION,
                            [(r["decision_id"], r["node_id"], r["sku"], r["qty"]) for r in reservation_rows],
                        )
                    if routed:
                        cur.executemany(
                            _SQLITE_UPSERT_ORDER, [(pool, o, d, at) for o, (d, at) in routed.items()]
                        )
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                return [r[6] for r in rows]
            except sqlite3.IntegrityError as exc:
                raise LedgerError(
                    f"{what} not recorded: rejected by the database, most likely an id that "
                    f"is already in the ledger ({exc})"
                ) from exc
            except sqlite3.Error as exc:
                self._drop_write_conn()
                raise LedgerError(f"{what} not recorded: {exc}") from exc
            finally:
                cur.close()

    # -- stock -----------------------------------------------------------------

    def open_stock(self, pool: str, initial: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[int, int]]:
        """Seed the cells of ``pool`` that do not exist yet; return every cell's (on_hand, reserved).

        Existing cells keep their values: the ledger's stock is the truth, and a
        router that starts (or a second process) adopts it. Safe to call from
        several processes at once.
        """
        _require_text("pool", pool)
        rows = [
            {"pool": pool, "node_id": node, "sku": sku, "on_hand": int(q), "reserved": 0}
            for (node, sku), q in initial.items()
        ]
        for r in rows:
            if r["on_hand"] < 0:  # type: ignore[operator]
                raise LedgerError(f"stock of {r['sku']} at {r['node_id']} cannot be negative: {r['on_hand']}")
        if rows:
            insert = (
                _pg_insert(stock) if self._is_postgres else _sqlite_insert(stock)
            ).on_conflict_do_nothing(index_elements=["pool", "node_id", "sku"])

            def write(conn: Connection, head: str) -> None:
                conn.execute(insert, rows)

            self._write(f"stock pool {pool!r}", write, chain=False)
        return self.stock_levels(pool)

    def stock_levels(
        self, pool: str, cells: Sequence[tuple[str, str]] | None = None
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(on_hand, reserved) per (node_id, sku) of ``pool``; only ``cells`` when given."""
        query = select(stock.c.node_id, stock.c.sku, stock.c.on_hand, stock.c.reserved).where(stock.c.pool == pool)
        with self._reading() as conn:
            rows = conn.execute(query).all()
        out = {(r.node_id, r.sku): (int(r.on_hand), int(r.reserved)) for r in rows}
        if cells is not None:
            out = {c: out.get(c, (0, 0)) for c in cells}
        return out

    def change_stock(
        self,
        pool: str,
        node_id: str,
        sku: str,
        *,
        set_on_hand: int | None = None,
        delta: int | None = None,
        ship: int | None = None,
        release: int | None = None,
    ) -> tuple[int, int]:
        """Apply one stock event to ``pool`` if it keeps 0 <= reserved <= on_hand; return the new levels.

        Exactly one of: ``set_on_hand`` (a cycle count), ``delta`` (a receipt or
        shrinkage), ``ship`` (reserved units left: on-hand and reserved both drop),
        ``release`` (a reservation undone).

        Raises
        ------
        InvalidEventError
            The change would break the rule (the reason names the current levels); nothing changed.
        """
        given = {k: v for k, v in (("set_on_hand", set_on_hand), ("delta", delta), ("ship", ship), ("release", release)) if v is not None}
        if len(given) != 1:
            raise LedgerError(f"change_stock takes exactly one change, got {sorted(given) or 'none'}")
        (kind, value), = given.items()
        statement = text(_STOCK_CHANGES[kind])
        params = {"pool": pool, "node_id": node_id, "sku": sku, "value": int(value)}

        def write(conn: Connection, head: str) -> tuple[int, int] | None:
            row = conn.execute(statement, params).first()
            return None if row is None else (int(row[0]), int(row[1]))

        levels = self._write(f"stock {kind} of {sku} at {node_id}", write, chain=False)
        if levels is None:
            current = self.stock_levels(pool, [(node_id, sku)])[(node_id, sku)]
            field = {"set_on_hand": "on_hand", "delta": "delta", "ship": "qty", "release": "qty"}[kind]
            raise InvalidEventError(
                field,
                f"{kind} {value} of {sku} at {node_id} refused by the ledger's stock (pool {pool!r}): "
                f"on hand {current[0]}, reserved {current[1]}",
            )
        return levels

    def change_stocks(
        self, pool: str, changes: Sequence[tuple[str, str, str, int]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Apply several stock changes ``(node_id, sku, kind, value)`` in one transaction: all or none.

        ``kind`` as for :meth:`change_stock` (``set_on_hand``, ``delta``, ``ship``,
        ``release``). Returns the new levels of every cell changed.

        Raises
        ------
        InvalidEventError
            Change ``i`` would break 0 <= reserved <= on_hand (field ``[i]``, the reason
            names the levels); nothing changed.
        """
        for node_id, sku, kind, _ in changes:
            if kind not in _STOCK_CHANGES:
                raise LedgerError(f"unknown stock change {kind!r} of {sku} at {node_id}")

        def write(conn: Connection, head: str) -> dict[tuple[str, str], tuple[int, int]]:
            out: dict[tuple[str, str], tuple[int, int]] = {}
            for i, (node_id, sku, kind, value) in enumerate(changes):
                params = {"pool": pool, "node_id": node_id, "sku": sku, "value": int(value)}
                row = conn.execute(text(_STOCK_CHANGES[kind]), params).first()
                if row is None:
                    got = conn.execute(
                        select(stock.c.on_hand, stock.c.reserved).where(
                            stock.c.pool == pool, stock.c.node_id == node_id, stock.c.sku == sku
                        )
                    ).first()
                    on_hand, reserved = (int(got[0]), int(got[1])) if got is not None else (0, 0)
                    raise InvalidEventError(
                        f"[{i}]",
                        f"{kind} {value} of {sku} at {node_id} refused by the ledger's stock (pool {pool!r}): "
                        f"on hand {on_hand}, reserved {reserved}",
                    )
                out[(node_id, sku)] = (int(row[0]), int(row[1]))
            return out

        return self._write(f"{len(changes)} stock changes", write, chain=False)

    def append_override(
        self, decision_id: str, *, actor: str, reason: str, body: dict, created_at: str
    ) -> str:
        """Record an override of a decision as a new entry pointing at it.

        The original decision entry is never changed.

        Parameters
        ----------
        decision_id
            The decision being overridden.
        actor
            Who overrode it (user or service name); must not be empty.
        reason
            Why; must not be empty.
        body
            JSON-able details (e.g. the replacement plan). The stored body is this
            dict plus ``override_id``, ``decision_id``, ``actor``, ``reason`` and
            ``created_at``, which take precedence over same-named keys in ``body``.
        created_at
            ISO timestamp from the caller's clock.

        Returns
        -------
        str
            The new override id, ``"<decision_id>-override-<n>"`` with ``n``
            counting this decision's overrides from 1.

        Raises
        ------
        UnknownDecisionError
            If no decision ``decision_id`` is recorded.
        LedgerError
            If an argument is invalid or the database fails.
        """
        extra = {"actor": _require_text("actor", actor), "reason": _require_text("reason", reason)}
        return self._append_follow_up("override", decision_id, body, created_at, extra)

    def move_reservation(
        self,
        decision_id: str,
        *,
        actor: str,
        reason: str,
        body: dict,
        created_at: str,
        release: Sequence[Reservation],
        reserve: Sequence[Reservation],
        pool: str | None,
    ) -> str:
        """Record an override that moves a decision's reservation, all in one transaction.

        ``release`` rows are given back to ``pool`` (each only if that many are still
        reserved), ``reserve`` rows are checked and reserved as for a decision, the override
        entry is appended to the chain, and the reservation rows are recorded under the
        original decision: the released ones with negative quantities, so
        :meth:`reservations_for` sums to what the decision holds now. Nothing is written
        when any step fails.

        Returns
        -------
        str
            The override id, as :meth:`append_override`.

        Raises
        ------
        UnknownDecisionError
            No decision ``decision_id`` is recorded.
        ReservationConflict
            ``pool`` no longer holds some units of ``reserve``.
        InvalidEventError
            Some units of ``release`` are no longer reserved in ``pool`` (shipped, or
            released by someone else): field ``release``.
        LedgerError
            The database failed, or an argument is invalid.
        """
        what = f"override of decision {decision_id!r}"
        extra = {"actor": _require_text("actor", actor), "reason": _require_text("reason", reason)}
        _require_text("created_at", created_at)
        back = _prepare_reservations(decision_id, release)
        take = _prepare_reservations(decision_id, reserve)
        statement = text(_STOCK_CHANGES["release"])

        def write(conn: Connection, head: str) -> str:
            if conn.execute(_decision_exists(decision_id)).first() is None:
                raise UnknownDecisionError(decision_id)
            if pool is not None:
                for r in back:
                    row = conn.execute(
                        statement, {"pool": pool, "node_id": r["node_id"], "sku": r["sku"], "value": r["qty"]}
                    ).first()
                    if row is None:
                        raise InvalidEventError(
                            "release",
                            f"{r['qty']} of {r['sku']} at {r['node_id']} are no longer reserved in stock pool "
                            f"{pool!r}: the order was shipped or its reservation released",
                        )
                if take:
                    _reserve_stock(conn, what, pool, take)
            count = conn.execute(_count_follow_ups(decision_id, "override")).scalar_one()
            entry_id = f"{decision_id}-override-{count + 1}"
            full = {**body, **extra, ENTRY_KINDS["override"]: entry_id, "decision_id": decision_id, "created_at": created_at}
            _insert_entries(conn, head, [_Entry("override", entry_id, decision_id, created_at, _dump(full, what))])
            rows = [{**r, "qty": -r["qty"]} for r in back] + take
            if rows:
                conn.execute(_INSERT_RESERVATION, rows)
            return entry_id

        return self._write(what, write)

    # -- order states ------------------------------------------------------------

    def mark_orders(self, pool: str, order_ids: Sequence[str], state: str, at: str) -> list[str]:
        """Move routed orders of ``pool`` on to ``released`` or ``shipped``, all in one transaction.

        The moves allowed are routed -> released, routed -> shipped and released ->
        shipped. Only ``order_states`` changes: the stock is not touched (give units back
        or ship them with :meth:`change_stocks`) and no chain entry is written. An id
        given twice is moved once.

        Parameters
        ----------
        pool
            The stock pool the orders were routed in.
        order_ids
            The orders to move.
        state
            ``"released"`` or ``"shipped"``.
        at
            ISO time of the change, stored as the rows' ``updated_at``.

        Returns
        -------
        list of str
            The ids of the orders moved, in the order given, each once.

        Raises
        ------
        UnknownOrderError
            An order has no state in ``pool`` (field ``order_ids``; a subclass of
            InvalidEventError). Nothing changed.
        InvalidEventError
            ``state`` is not an order state (field ``state``); or an order cannot move
            from its current state to ``state`` (field ``order_ids``; the reason names
            the first such order, its state and the decision holding it). Nothing changed.
        LedgerError
            An argument is not text, or the database failed. Nothing changed.
        """
        _require_text("pool", pool)
        _require_text("at", at)
        _check_order_state(state)
        ids = list(dict.fromkeys(order_ids))
        for oid in ids:
            _require_text("order id", oid)
        if not ids:
            return []
        allowed = _ORDER_MOVES.get(state, ())

        def write(conn: Connection, head: str) -> list[str]:
            current = _read_orders(conn, pool, ids)
            for oid in ids:
                got = current.get(oid)
                if got is None:
                    raise UnknownOrderError(
                        "order_ids", f"order {oid!r} has no state in stock pool {pool!r}: no decision routed it there"
                    )
                if got[1] not in allowed:
                    raise InvalidEventError(
                        "order_ids",
                        f"order {oid!r} is {got[1]} (decision {got[0]!r}): it cannot move to {state}",
                    )
            conn.execute(
                _UPDATE_ORDER_STATE, [{"b_pool": pool, "b_order": oid, "state": state, "updated_at": at} for oid in ids]
            )
            return ids

        # The chain lock, though no entry is written: every writer of order_states holds it,
        # so a re-route and a release of the same order are strictly ordered.
        return self._write(f"{state} of {len(ids)} orders", write)

    def order_states(
        self, pool: str, order_ids: Sequence[str] | None = None, state: str | None = None
    ) -> dict[str, tuple[str, str]]:
        """Where the orders of ``pool`` stand: order id -> ``(decision_id, state)``.

        Parameters
        ----------
        pool
            The stock pool.
        order_ids
            Only these orders (ids without a state are left out); None: every order.
        state
            Only orders in this state (``routed``, ``released`` or ``shipped``).

        Returns
        -------
        dict
            ``{order_id: (decision_id, state)}``, ordered by order id.

        Raises
        ------
        InvalidEventError
            ``state`` is not an order state (field ``state``).
        LedgerError
            The database read failed.
        """
        if state is not None:
            _check_order_state(state)
        with self._reading() as conn:
            if order_ids is None:
                query = select(order_states.c.order_id, order_states.c.decision_id, order_states.c.state).where(
                    order_states.c.pool == pool
                )
                if state is not None:
                    query = query.where(order_states.c.state == state)
                got = {r[0]: (r[1], r[2]) for r in conn.execute(query)}
            else:
                got = _read_orders(conn, pool, list(dict.fromkeys(order_ids)))
                if state is not None:
                    got = {o: v for o, v in got.items() if v[1] == state}
        return dict(sorted(got.items()))

    def open_orders(self, pool: str, limit: int | None = None) -> list[tuple[str, str]]:
        """The orders of ``pool`` still in state ``routed``: ``(order_id, decision_id)`` by order id.

        Parameters
        ----------
        pool
            The stock pool.
        limit
            At most this many (the first by order id); None: all of them.

        Returns
        -------
        list of tuple
            ``(order_id, decision_id)`` pairs, ordered by order id.

        Raises
        ------
        LedgerError
            ``limit`` is negative, or the database read failed.
        """
        if limit is not None and limit < 0:
            raise LedgerError(f"open_orders: limit must be >= 0, got {limit}")
        query = (
            select(order_states.c.order_id, order_states.c.decision_id)
            .where(order_states.c.pool == pool, order_states.c.state == "routed")
            .order_by(order_states.c.order_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as conn:
            return [(r[0], r[1]) for r in conn.execute(query)]

    def apply_reroute(
        self,
        pool: str,
        moves: Sequence[tuple[str, dict, Sequence[Reservation], Sequence[Reservation]]],
        *,
        created_at: str,
    ) -> list[str]:
        """Move open orders to new decisions, their stock with them: all moves or none, in one transaction.

        Each move is ``(old_decision_id, new_record, release_rows, reserve_rows)``. Under
        the chain lock: every order (``new_record["order_id"]``) must still be held by
        ``old_decision_id`` in state ``routed``; the ``release_rows`` of every move are
        given back to the pool's stock (each cell only if that many units are reserved
        there, and only what the old decision holds), then the ``reserve_rows`` of every
        move are reserved (checked as for a decision), so one order's new plan may use
        units another order gives up. The new records are appended to the chain as
        decisions, exactly as :meth:`append_decisions` would; the released rows are
        recorded under the old decision with negative quantities (its
        :meth:`reservations_for` then sums to what it still holds, 0 when all is given
        back), the reserved rows under the new one; each order's row then points at its
        new decision (still ``routed``, ``updated_at`` = ``created_at``).

        Parameters
        ----------
        pool
            The stock pool the orders were routed in.
        moves
            ``(old_decision_id, new_record, release_rows, reserve_rows)``; rows are
            ``(node_id, sku, qty)`` with ``qty >= 1``. ``new_record`` is a full decision
            record (as for :meth:`append_decision`) with status ``routed``.
        created_at
            ISO time of the re-route, stored as the orders' ``updated_at``.

        Returns
        -------
        list of str
            The chain hashes of the new decisions, in the order of ``moves``.

        Raises
        ------
        InvalidEventError
            Field ``moves``: an order is no longer open (released, shipped, or held by
            another decision), an old decision does not hold the units a move gives back,
            or the pool no longer has them reserved (the reason names the order or the
            cell). Nothing is written.
        ReservationConflict
            The pool cannot supply some ``reserve_rows`` even after the releases (the
            message names the cell and its levels at that point of the transaction);
            ``levels`` has the stock of every cell of the SKUs reserved, read after the
            rollback. Nothing is written.
        LedgerError
            A move is malformed, a record is incomplete or not routed, an order, an old or
            a new decision id appears twice, a new decision id is already recorded, or the
            database failed. Nothing is written.
        """
        _require_text("pool", pool)
        _require_text("created_at", created_at)
        pending: list[_Entry] = []
        orders: list[tuple[str, str, str]] = []  # (order id, old decision id, new decision id)
        give_back: list[list[dict[str, Any]]] = []  # per move, rows under the old decision id
        take: list[dict[str, Any]] = []  # rows under the new decision ids
        for i, move in enumerate(moves):
            try:
                old, record, release, reserve = move
            except (TypeError, ValueError):
                raise LedgerError(
                    f"re-route not recorded: move [{i}] must be "
                    "(old_decision_id, new_record, release_rows, reserve_rows)"
                ) from None
            if not isinstance(old, str) or not old:
                raise LedgerError(f"re-route not recorded: move [{i}]: old_decision_id must be a non-empty str, got {old!r}")
            entry = _prepare_decision(record)
            if record["status"] != "routed":
                raise LedgerError(
                    f"decision {entry.entry_id!r} not recorded: a re-route records routed decisions, "
                    f"got status {record['status']!r}"
                )
            order_id = _order_id(record, entry.entry_id)
            pending.append(entry)
            orders.append((order_id, old, entry.decision_id))
            give_back.append([{**r, "decision_id": old} for r in _prepare_reservations(entry.decision_id, release)])
            take.extend(_prepare_reservations(entry.decision_id, reserve))
        if not pending:
            return []
        for position, name in ((0, "order_id"), (1, "old decision id"), (2, "new decision id")):
            ids = [o[position] for o in orders]
            if len(set(ids)) != len(ids):
                dupes = sorted({x for x in ids if ids.count(x) > 1})
                raise LedgerError(f"re-route not recorded: {name} repeated in the moves: {dupes}")
        what = f"re-route of order {orders[0][0]!r}" if len(orders) == 1 else f"re-route of {len(orders)} orders"
        released = _per_cell(r for rows in give_back for r in rows)
        reserved = _per_cell(take)
        give_back_sql = text(_STOCK_CHANGES["release"])
        reserve_sql = text(_RESERVE_SQL)

        def write(conn: Connection, head: str) -> list[str]:
            current = _read_orders(conn, pool, [o[0] for o in orders])
            for order_id, old, _new in orders:
                got = current.get(order_id)
                if got == (old, "routed"):
                    continue
                if got is None:
                    why = f"no decision routed it in stock pool {pool!r}"
                elif got[1] != "routed":
                    why = got[1]
                else:
                    why = f"held by decision {got[0]!r}"
                raise InvalidEventError("moves", f"order {order_id!r} is no longer open: {why}")
            held = _held_by(conn, [o[1] for o in orders])
            for (order_id, old, _new), rows in zip(orders, give_back):
                for (node_id, sku), qty in _per_cell(rows).items():
                    has = held.get((old, node_id, sku), 0)
                    if has < qty:
                        raise InvalidEventError(
                            "moves",
                            f"order {order_id!r}: decision {old!r} holds {has} of {sku} at {node_id}, "
                            f"cannot give back {qty}",
                        )
            for (node_id, sku), qty in released.items():
                if conn.execute(give_back_sql, {"pool": pool, "node_id": node_id, "sku": sku, "value": qty}).first() is None:
                    on_hand, now = _cell_levels(conn, pool, node_id, sku)
                    raise InvalidEventError(
                        "moves",
                        f"{qty} of {sku} at {node_id} are no longer reserved in stock pool {pool!r} "
                        f"(on hand {on_hand}, reserved {now}): shipped or released by another writer",
                    )
            for (node_id, sku), qty in reserved.items():
                done = conn.execute(reserve_sql, {"pool": pool, "node_id": node_id, "sku": sku, "qty": qty})
                if done.rowcount != 1:
                    raise _ShortStock(node_id, sku, qty, *_cell_levels(conn, pool, node_id, sku))
            hashes = _insert_entries(conn, head, pending)
            rows = [{**r, "qty": -r["qty"]} for back in give_back for r in back] + take
            if rows:
                conn.execute(_INSERT_RESERVATION, rows)
            conn.execute(
                _REPOINT_ORDER,
                [{"b_pool": pool, "b_order": o, "decision_id": new, "updated_at": created_at} for o, _old, new in orders],
            )
            return hashes

        try:
            return self._write(what, write)
        except _ShortStock as short:
            # The transaction is rolled back: report the levels as they stand, not as they
            # were inside it (with this re-route's releases applied).
            skus = {sku for _node, sku in reserved}
            levels = {c: v for c, v in self.stock_levels(pool).items() if c[1] in skus}
            raise ReservationConflict(
                f"{what} not recorded: {short.qty} of {short.sku} at {short.node_id} do not fit in stock pool "
                f"{pool!r}: on hand {short.on_hand}, reserved {short.reserved} once the re-route's releases "
                "are given back",
                levels,
            ) from None

    # -- live-state events and idempotency keys (the HTTP service) ---------------

    def append_events(self, pool: str, events: Sequence[tuple[str, dict]], created_at: str) -> int:
        """Append live-state events ``(kind, body)`` for ``pool`` in one transaction; return the last ``seq``."""
        rows = [
            {"pool": pool, "kind": kind, "body": orjson.dumps(body).decode(), "created_at": created_at}
            for kind, body in events
        ]
        if not rows:
            return self.events_head(pool)

        def write(conn: Connection, head: str) -> int:
            conn.execute(state_events.insert(), rows)
            return int(
                conn.execute(select(func.max(state_events.c.seq)).where(state_events.c.pool == pool)).scalar_one()
            )

        return self._write(f"{len(rows)} events", write, chain=False)

    def events_since(self, pool: str, seq: int, limit: int = 10_000) -> list[tuple[int, str, dict]]:
        """The events of ``pool`` after ``seq``, oldest first: ``(seq, kind, body)``."""
        query = (
            select(state_events.c.seq, state_events.c.kind, state_events.c.body)
            .where(state_events.c.pool == pool, state_events.c.seq > seq)
            .order_by(state_events.c.seq)
            .limit(limit)
        )
        with self._reading() as conn:
            return [(int(r.seq), r.kind, orjson.loads(r.body)) for r in conn.execute(query)]

    def events_head(self, pool: str) -> int:
        """The last event ``seq`` of ``pool`` (0 when none)."""
        with self._reading() as conn:
            got = conn.execute(select(func.max(state_events.c.seq)).where(state_events.c.pool == pool)).scalar_one()
        return int(got or 0)

    # -- strategy versions and rollout modes (schema 0006) -----------------------

    def put_strategy_version(
        self, name: str, version: str, body: dict, *, author: str, reason: str, created_at: str
    ) -> bool:
        """Store an immutable strategy version under its content hash; False when the hash is already stored.

        A version is never changed: storing a hash again (with any body) is a no-op.
        """
        for field_name, value in (("name", name), ("version", version), ("author", author), ("reason", reason)):
            _require_text(field_name, value)
        _require_text("created_at", created_at)
        if not isinstance(body, dict):
            raise LedgerError(f"strategy version {version!r} not recorded: body must be a dict")
        row = {
            "version": version,
            "name": name,
            "body": canonical_json(body).decode(),
            "author": author,
            "reason": reason,
            "created_at": created_at,
        }

        def write(conn: Connection, head: str) -> bool:
            got = conn.execute(
                _insert_ignore(self._is_postgres, strategy_versions).values(**row).returning(strategy_versions.c.version)
            )
            return got.first() is not None

        return self._write(f"strategy version {version!r}", write, chain=False)

    def get_strategy_version(self, version: str) -> dict | None:
        """The stored version ``{name, version, body, author, reason, created_at}``, or None."""
        query = select(strategy_versions).where(strategy_versions.c.version == version)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else _version_row(row)

    def list_strategy_versions(self, name: str | None = None) -> list[dict]:
        """Every stored version (of ``name``), oldest first."""
        query = select(strategy_versions).order_by(strategy_versions.c.created_at, strategy_versions.c.version)
        if name is not None:
            query = query.where(strategy_versions.c.name == name)
        with self._reading() as conn:
            return [_version_row(r) for r in conn.execute(query)]

    def append_mode(
        self,
        name: str,
        version: str,
        mode: str,
        *,
        canary_percent: float = 0.0,
        actor: str,
        reason: str,
        created_at: str,
        guard: dict | None = None,
    ) -> dict:
        """Append a rollout mode change of strategy ``name`` at ``version``; return the stored row.

        ``mode`` is off, shadow, canary or on; ``canary_percent`` (0-100) matters for canary.
        ``guard`` names the guard and its numbers when a guard made the change. The row is
        hashed and linked to the mode change before it (see :meth:`verify`).
        """
        what = f"mode change of strategy {name!r} {version!r}"
        for field_name, value in (("name", name), ("version", version), ("actor", actor), ("reason", reason)):
            _require_text(field_name, value)
        _require_text("created_at", created_at)
        if mode not in STRATEGY_MODES:
            raise LedgerError(f"{what} not recorded: mode must be one of {', '.join(STRATEGY_MODES)}, got {mode!r}")
        try:
            percent = float(canary_percent)
        except (TypeError, ValueError):
            raise LedgerError(f"{what} not recorded: canary_percent must be a number") from None
        if not 0.0 <= percent <= 100.0:
            raise LedgerError(f"{what} not recorded: canary_percent must be within 0-100, got {percent}")
        if guard is not None and not isinstance(guard, dict):
            raise LedgerError(f"{what} not recorded: guard must be a dict")
        mode_id = uuid.uuid4().hex
        body = {
            "mode_id": mode_id,
            "name": name,
            "version": version,
            "mode": mode,
            "canary_percent": percent,
            "actor": actor,
            "reason": reason,
            "guard": guard,
            "created_at": created_at,
        }
        text_body = canonical_json(body)

        def write(conn: Connection, head: str) -> dict:
            prev = conn.execute(_SELECT_MODE_HEAD).scalar_one_or_none() or GENESIS_HASH
            digest = entry_hash(prev, "mode", mode_id, text_body)
            row = {**body, "guard": None if guard is None else canonical_json(guard).decode()}
            got = conn.execute(
                strategy_modes.insert().values(**row, prev_hash=prev, hash=digest).returning(strategy_modes.c.seq)
            )
            return {**body, "seq": int(got.scalar_one()), "hash": digest}

        return self._write(what, write)

    def modes_since(self, seq: int = 0) -> list[dict]:
        """The mode changes after ``seq``, oldest first (each with ``seq`` and ``hash``)."""
        query = select(strategy_modes).where(strategy_modes.c.seq > seq).order_by(strategy_modes.c.seq)
        with self._reading() as conn:
            return [_mode_row(r) for r in conn.execute(query)]

    def modes_head(self) -> int:
        """The last mode change's ``seq`` (0 when none): one indexed read, cheap to poll."""
        with self._reading() as conn:
            got = conn.execute(_SELECT_MODE_SEQ).scalar_one_or_none()
        return int(got or 0)

    def idempotency_get(self, key: str, endpoint: str) -> tuple[str, int | None, str | None] | None:
        """``(body_hash, status_code, response)`` stored for an Idempotency-Key, or None."""
        query = select(
            idempotency_keys.c.body_hash, idempotency_keys.c.status_code, idempotency_keys.c.response
        ).where(idempotency_keys.c.key == key, idempotency_keys.c.endpoint == endpoint)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row.body_hash, row.status_code, row.response)

    def idempotency_claim(self, key: str, endpoint: str, body_hash: str, created_at: str) -> bool:
        """Claim a key for a request; False when it is already claimed (by this or another request)."""

        def write(conn: Connection, head: str) -> bool:
            got = conn.execute(
                _insert_ignore(self._is_postgres, idempotency_keys)
                .values(key=key, endpoint=endpoint, body_hash=body_hash, created_at=created_at)
                .returning(idempotency_keys.c.key)
            )
            # RETURNING, not rowcount: psycopg reports no row count for this statement
            return got.first() is not None

        return self._write(f"idempotency key {key!r}", write, chain=False)

    def idempotency_store(self, key: str, endpoint: str, status_code: int, response: str) -> None:
        """Store the response of the request that claimed the key."""

        def write(conn: Connection, head: str) -> None:
            conn.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.key == key, idempotency_keys.c.endpoint == endpoint)
                .values(status_code=status_code, response=response)
            )

        self._write(f"idempotency key {key!r}", write, chain=False)

    def idempotency_release(self, key: str, endpoint: str) -> None:
        """Drop a claim whose request failed (nothing was written): the key may be used again."""

        def write(conn: Connection, head: str) -> None:
            conn.execute(
                idempotency_keys.delete().where(
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.endpoint == endpoint,
                    idempotency_keys.c.response.is_(None),
                )
            )

        self._write(f"idempotency key {key!r}", write, chain=False)

    def append_outcome(self, decision_id: str, *, body: dict, created_at: str) -> str:
        """Record an observed outcome (delivered, late, cancelled...) of a decision.

        Parameters
        ----------
        decision_id
            The decision the outcome belongs to.
        body
            JSON-able outcome facts. Stored with ``outcome_id``, ``decision_id``
            and ``created_at`` added (these win over same-named keys).
        created_at
            ISO timestamp from the caller's clock.

        Returns
        -------
        str
            The new outcome id, ``"<decision_id>-outcome-<n>"``.

        Raises
        ------
        UnknownDecisionError
            If no decision ``decision_id`` is recorded.
        LedgerError
            If an argument is invalid or the database fails.
        """
        return self._append_follow_up("outcome", decision_id, body, created_at, {})

    def _append_follow_up(
        self, kind: str, decision_id: str, body: dict, created_at: str, extra: dict[str, str]
    ) -> str:
        what = f"{kind} of decision {decision_id!r}"
        if not isinstance(body, dict):
            raise LedgerError(
                f"{what} not recorded: body must be a dict, got {type(body).__name__}"
            )
        _require_text("created_at", created_at)

        def write(conn: Connection, head: str) -> str:
            # The id counts existing follow-ups, so it must be computed under the
            # write lock, where no other writer can add one in between.
            if conn.execute(_decision_exists(decision_id)).first() is None:
                raise UnknownDecisionError(decision_id)
            count = conn.execute(_count_follow_ups(decision_id, kind)).scalar_one()
            entry_id = f"{decision_id}-{kind}-{count + 1}"
            full = {
                **body,
                **extra,
                ENTRY_KINDS[kind]: entry_id,
                "decision_id": decision_id,
                "created_at": created_at,
            }
            entry = _Entry(kind, entry_id, decision_id, created_at, _dump(full, what))
            _insert_entries(conn, head, [entry])
            return entry_id

        return self._write(what, write)

    def _write(self, what: str, work: Callable[[Connection, str], _T], *, chain: bool = True) -> _T:
        """Run ``work(conn, chain_head)`` in one write transaction holding the chain lock.

        ``chain=False`` (stock events, which add no entry) takes neither the chain
        lock nor the head: row locks of the conditional updates order them.
        """
        with self._write_lock:
            self._check_open()
            try:
                if self._write_conn is None:
                    self._write_conn = self._engine.connect()
                conn = self._write_conn
                with conn.begin():
                    if not chain:
                        return work(conn, "")
                    if self._is_postgres:
                        conn.execute(_PG_LOCK, {"key": _PG_CHAIN_LOCK_KEY})
                    head = conn.execute(_SELECT_HEAD).scalar_one_or_none() or GENESIS_HASH
                    return work(conn, head)
            except IntegrityError as exc:
                raise LedgerError(
                    f"{what} not recorded: rejected by the database, most likely an id that "
                    f"is already in the ledger ({_db_message(exc)})"
                ) from exc
            except SQLAlchemyError as exc:
                # The connection may be broken (server restart, disk error): start
                # the next write on a fresh one.
                self._drop_write_conn()
                raise LedgerError(f"{what} not recorded: {_db_message(exc)}") from exc

    def _drop_write_conn(self) -> None:
        if self._write_conn is not None:
            try:
                self._write_conn.invalidate()
            except SQLAlchemyError:
                _log.debug("discarding a broken ledger write connection", exc_info=True)
            self._write_conn = None

    # -- reads -----------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        self._check_open()
        try:
            with self._read_lock, self._reader.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger read failed at {self.url}: {_db_message(exc)}") from exc

    def get_decision(self, decision_id: str) -> dict:
        """Return the decision record exactly as it was appended.

        Raises
        ------
        UnknownDecisionError
            If no decision ``decision_id`` is recorded.
        """
        query = select(entries.c.body, entries.c.body_z).where(
            entries.c.entry_id == decision_id, entries.c.kind == "decision"
        )
        with self._reading() as conn:
            row = conn.execute(query).first()
        body = None if row is None else _stored_text(row.body, row.body_z)
        if body is None:
            raise UnknownDecisionError(decision_id)
        return orjson.loads(body)

    def overrides_for(self, decision_id: str) -> list[dict]:
        """Return the override bodies of a decision, oldest first.

        Raises
        ------
        UnknownDecisionError
            If no decision ``decision_id`` is recorded.
        """
        return self._follow_ups(decision_id, "override")

    def outcomes_for(self, decision_id: str) -> list[dict]:
        """Return the outcome bodies of a decision, oldest first.

        Raises
        ------
        UnknownDecisionError
            If no decision ``decision_id`` is recorded.
        """
        return self._follow_ups(decision_id, "outcome")

    def _follow_ups(self, decision_id: str, kind: str) -> list[dict]:
        query = (
            select(entries.c.body, entries.c.body_z)
            .where(entries.c.decision_id == decision_id, entries.c.kind == kind)
            .order_by(entries.c.seq)
        )
        with self._reading() as conn:
            bodies = [_stored_text(r.body, r.body_z) for r in conn.execute(query)]
            # Only an empty answer needs the second query to tell "none yet"
            # from "no such decision".
            if not bodies and conn.execute(_decision_exists(decision_id)).first() is None:
                raise UnknownDecisionError(decision_id)
        return [orjson.loads(b) for b in bodies]

    def iter_outcomes(self, *, since: str | None = None, batch: int = 500) -> Iterator[tuple[dict, dict]]:
        """Yield ``(decision record, outcome body)`` for every recorded outcome, in ledger order.

        ``since`` (an ISO time) keeps the decisions created at or after it. The
        pairs are read ``batch`` outcomes at a time, so a large ledger is never
        held in memory at once.
        """
        d = entries.alias("d")
        last = 0
        while True:
            query = (
                select(entries.c.seq, entries.c.body, entries.c.body_z, d.c.body.label("d_body"), d.c.body_z.label("d_body_z"))
                .join(d, (d.c.entry_id == entries.c.decision_id) & (d.c.kind == "decision"))
                .where(entries.c.kind == "outcome", entries.c.seq > last)
                .order_by(entries.c.seq)
                .limit(batch)
            )
            if since is not None:
                query = query.where(d.c.created_at >= since)
            with self._reading() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for r in rows:
                yield orjson.loads(_stored_text(r.d_body, r.d_body_z)), orjson.loads(_stored_text(r.body, r.body_z))
            last = int(rows[-1].seq)

    def reservations_for(self, decision_id: str) -> list[Reservation]:
        """Return the ``(node_id, sku, qty)`` rows recorded with a decision, in order.

        Raises
        ------
        UnknownDecisionError
            If no decision ``decision_id`` is recorded.
        """
        query = (
            select(reservations.c.node_id, reservations.c.sku, reservations.c.qty)
            .where(reservations.c.decision_id == decision_id)
            .order_by(reservations.c.id)
        )
        with self._reading() as conn:
            rows = [(r.node_id, r.sku, int(r.qty)) for r in conn.execute(query)]
            if not rows and conn.execute(_decision_exists(decision_id)).first() is None:
                raise UnknownDecisionError(decision_id)
        return rows

    def reserved_totals(self) -> dict[tuple[str, str], int]:
        """Return the reserved quantity summed over all decisions, per ``(node_id, sku)``."""
        query = select(
            reservations.c.node_id, reservations.c.sku, func.sum(reservations.c.qty)
        ).group_by(reservations.c.node_id, reservations.c.sku)
        with self._reading() as conn:
            return {(node, sku): int(total) for node, sku, total in conn.execute(query)}

    def count_decisions(self) -> int:
        """Return how many decisions are recorded (overrides and outcomes excluded)."""
        query = select(func.count()).select_from(entries).where(entries.c.kind == "decision")
        with self._reading() as conn:
            return int(conn.execute(query).scalar_one())

    def recent_decisions(self, limit: int = 20) -> list[dict]:
        """Return up to ``limit`` decision records, newest first.

        Raises
        ------
        LedgerError
            If ``limit`` is negative.
        """
        if limit < 0:
            raise LedgerError(f"recent_decisions: limit must be >= 0, got {limit}")
        query = (
            select(entries.c.body, entries.c.body_z)
            .where(entries.c.kind == "decision")
            .order_by(entries.c.seq.desc())
            .limit(limit)
        )
        with self._reading() as conn:
            return [orjson.loads(_stored_text(r.body, r.body_z)) for r in conn.execute(query)]

    def list_decisions(
        self,
        *,
        order_id: str | None = None,
        strategy: str | None = None,
        node: str | None = None,
        since: str | None = None,
        overridden: bool | None = None,
        limit: int = 50,
        after: int = 0,
        scan: int = 5000,
    ) -> tuple[list[dict], int | None]:
        """Decision records after ledger position ``after``, oldest first, that match every filter given.

        ``node``: some leg of the chosen plan ships from it; ``since``: decided at or after
        (ISO text, UTC); ``overridden``: has (True) or has no (False) override. Reads at
        most ``scan`` entries per call, so a rare filter costs a bounded read per page.
        Returns the records and the cursor of the next page (None: the end was reached).
        """
        query = (
            select(entries.c.seq, entries.c.decision_id, entries.c.body, entries.c.body_z)
            .where(entries.c.kind == "decision", entries.c.seq > after)
            .order_by(entries.c.seq)
            .limit(scan)
        )
        if since is not None:
            query = query.where(entries.c.created_at >= since)
        out: list[dict] = []
        last = after
        with self._reading() as conn:
            rows = conn.execute(query).all()
            over: set[str] = set()
            if overridden is not None and rows:
                ids = [r.decision_id for r in rows]
                over = {
                    r[0]
                    for r in conn.execute(
                        select(entries.c.decision_id).where(entries.c.kind == "override", entries.c.decision_id.in_(ids))
                    )
                }
        for r in rows:
            last = int(r.seq)
            if overridden is not None and (r.decision_id in over) != overridden:
                continue
            rec = orjson.loads(_stored_text(r.body, r.body_z))
            if order_id is not None and rec.get("order_id") != order_id:
                continue
            if strategy is not None and (rec.get("strategy") or {}).get("name") != strategy:
                continue
            if node is not None and not any(leg.get("node_id") == node for leg in ((rec.get("chosen") or {}).get("legs") or [])):
                continue
            out.append(rec)
            if len(out) >= limit:
                return out, last
        return out, (last if len(rows) == scan else None)

    def verify(self) -> VerifyReport:
        """Walk the whole chain in ``seq`` order and recompute every hash.

        Detects an edited body, id or kind (hash mismatch), a deleted, inserted
        or reordered entry (``prev_hash`` no longer the hash of the entry before),
        and indexed columns edited to disagree with the hashed body.

        Returns
        -------
        VerifyReport
            ``ok`` with the count and the chain head hash in ``reason`` (anchor it
            elsewhere to also detect a rewrite of the whole chain or a truncated
            tail, which no self-contained chain can); otherwise the first bad seq.
        """
        query = select(
            entries.c.seq,
            entries.c.kind,
            entries.c.entry_id,
            entries.c.decision_id,
            entries.c.created_at,
            entries.c.body,
            entries.c.body_z,
            entries.c.prev_hash,
            entries.c.hash,
        ).order_by(entries.c.seq)
        expected_prev = GENESIS_HASH
        checked = 0
        with self._reading() as conn:
            # Stream in chunks: a ledger may hold millions of 3 KB bodies.
            for row in conn.execution_options(yield_per=2_000).execute(query):
                checked += 1
                problem = _check_row(row, expected_prev)
                if problem is not None:
                    return VerifyReport(
                        ok=False,
                        entries_checked=checked,
                        first_bad_seq=int(row.seq),
                        reason=f"seq {row.seq}: {problem}",
                    )
                expected_prev = row.hash
        head = expected_prev
        expected_prev = GENESIS_HASH
        modes = 0
        with self._reading() as conn:
            for row in conn.execute(select(strategy_modes).order_by(strategy_modes.c.seq)):
                checked += 1
                modes += 1
                problem = _check_mode_row(row, expected_prev)
                if problem is not None:
                    return VerifyReport(
                        ok=False,
                        entries_checked=checked,
                        first_bad_seq=int(row.seq),
                        reason=f"strategy_modes seq {row.seq}: {problem}",
                    )
                expected_prev = row.hash
        tail = f"; {modes} strategy mode changes intact, head {expected_prev}" if modes else ""
        return VerifyReport(
            ok=True,
            entries_checked=checked,
            first_bad_seq=None,
            reason=f"all {checked - modes} entries intact; chain head {head}{tail}",
        )

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError(f"ledger at {self.url} is closed")
        if os.getpid() != self._pid:
            # A forked child must not share the parent's connections (SQLAlchemy
            # docs, "Using Connection Pools with Multiprocessing or os.fork()").
            self._engine.dispose(close=False)
            self._write_conn = None
            self._pid = os.getpid()


def open_ledger(url: str | None, *, create: bool = True) -> SqlLedger:
    """Open (and by default create or migrate) the ledger at ``url``.

    Parameters
    ----------
    url
        SQLAlchemy URL, or None for :data:`DEFAULT_URL`, the SQLite file
        ``router-ledger.sqlite`` in the current directory.
    create
        As for :class:`SqlLedger`.

    Returns
    -------
    SqlLedger
        An open ledger; close it with :meth:`SqlLedger.close` or a ``with`` block.
    """
    return SqlLedger(DEFAULT_URL if url is None else url, create=create)


# -- helpers -------------------------------------------------------------------


def _version_row(row: Any) -> dict:
    return {
        "name": row.name,
        "version": row.version,
        "body": orjson.loads(row.body),
        "author": row.author,
        "reason": row.reason,
        "created_at": row.created_at,
    }


def _mode_body(row: Any) -> dict:
    return {
        "mode_id": row.mode_id,
        "name": row.name,
        "version": row.version,
        "mode": row.mode,
        "canary_percent": float(row.canary_percent),
        "actor": row.actor,
        "reason": row.reason,
        "guard": None if row.guard is None else orjson.loads(row.guard),
        "created_at": row.created_at,
    }


def _mode_row(row: Any) -> dict:
    return {**_mode_body(row), "seq": int(row.seq), "hash": row.hash}


def _check_mode_row(row: Any, expected_prev: str) -> str | None:
    """Why one mode-change row is bad (edited, deleted, inserted or reordered), or None."""
    if row.prev_hash != expected_prev:
        return "prev_hash is not the hash of the mode change before it (a row was deleted, inserted or reordered)"
    if entry_hash(row.prev_hash, "mode", row.mode_id, canonical_json(_mode_body(row))) != row.hash:
        return "hash does not match the mode change's content (it was edited)"
    return None


def _check_row(row: Any, expected_prev: str) -> str | None:
    """Return why one chain row is bad, or None if it is intact."""
    if row.prev_hash != expected_prev:
        return (
            "prev_hash is not the hash of the entry before it "
            "(an entry was deleted, inserted or reordered)"
        )
    try:
        text = _stored_text(row.body, row.body_z)
    except ValueError as exc:
        return f"stored body cannot be read ({exc}): it was edited"
    if entry_hash(row.prev_hash, row.kind, row.entry_id, text) != row.hash:
        return "hash does not match the entry's content (its body, id or kind was edited)"
    body = orjson.loads(text)
    id_key = ENTRY_KINDS.get(row.kind)
    if (
        id_key is None
        or body.get(id_key) != row.entry_id
        or body.get("decision_id") != row.decision_id
        or body.get("created_at") != row.created_at
    ):
        return "decision_id or created_at column disagrees with the hashed body (column edited)"
    return None


def _insert_entries(conn: Connection, head: str, pending: list[_Entry]) -> list[str]:
    """Chain ``pending`` onto ``head`` and insert them; return their hashes."""
    rows: list[dict[str, str]] = []
    prev = head
    for entry in pending:
        digest = entry_hash(prev, entry.kind, entry.entry_id, entry.body)
        rows.append(
            {
                "kind": entry.kind,
                "entry_id": entry.entry_id,
                "decision_id": entry.decision_id,
                "created_at": entry.created_at,
                "body": None,  # type: ignore[dict-item]
                "body_z": pack_body(entry.body),  # type: ignore[dict-item]
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    conn.execute(_INSERT_ENTRY, rows[0] if len(rows) == 1 else rows)
    return [r["hash"] for r in rows]


def _reserve_stock(conn: Connection, what: str, pool: str, rows: list[dict[str, Any]]) -> None:
    """Check-and-reserve every row against the pool's stock; raise ReservationConflict on the first shortfall."""
    statement = text(_RESERVE_SQL)
    for r in rows:
        done = conn.execute(statement, {"pool": pool, "node_id": r["node_id"], "sku": r["sku"], "qty": r["qty"]})
        if done.rowcount != 1:
            # Every node's levels of the SKUs involved: the router decides again on them.
            skus = sorted({c["sku"] for c in rows})
            got = conn.execute(
                select(stock.c.node_id, stock.c.sku, stock.c.on_hand, stock.c.reserved).where(
                    stock.c.pool == pool, stock.c.sku.in_(skus)
                )
            ).all()
            levels = {(g[0], g[1]): (int(g[2]), int(g[3])) for g in got}
            raise ReservationConflict(_conflict_message(what, pool, r, levels), levels)


def _sqlite_reserve_stock(cur: Any, what: str, pool: str, rows: list[dict[str, Any]]) -> None:
    """:func:`_reserve_stock` on the SQLite driver cursor (the fast path of route())."""
    for r in rows:
        cur.execute(_SQLITE_RESERVE, (r["qty"], pool, r["node_id"], r["sku"], r["qty"]))
        if cur.rowcount != 1:
            skus = sorted({c["sku"] for c in rows})
            marks = ", ".join("?" * len(skus))
            got = cur.execute(
                f"SELECT node_id, sku, on_hand, reserved FROM {stock.name} WHERE pool = ? AND sku IN ({marks})",
                (pool, *skus),
            ).fetchall()
            levels = {(g[0], g[1]): (int(g[2]), int(g[3])) for g in got}
            raise ReservationConflict(_conflict_message(what, pool, r, levels), levels)


def _conflict_message(what: str, pool: str, row: dict[str, Any], levels: dict) -> str:
    on_hand, reserved = levels.get((row["node_id"], row["sku"]), (0, 0))
    return (
        f"{what} not recorded: {row['qty']} of {row['sku']} at {row['node_id']} no longer available in "
        f"stock pool {pool!r} (on hand {on_hand}, reserved {reserved}): another writer reserved it first"
    )


def _stored_text(body: str | None, body_z: bytes | None) -> bytes:
    """The canonical JSON of an entry: packed in ``body_z`` (schema 0003 on), or plain text in ``body``.

    Raises ValueError when the packed form does not unpack (it was altered).
    """
    if body_z is not None:
        return unpack_body(bytes(body_z))
    if body is None:
        raise ValueError("the entry has no body")
    return body.encode()


def _decision_exists(decision_id: str) -> Any:
    return select(entries.c.seq).where(
        entries.c.entry_id == decision_id, entries.c.kind == "decision"
    )


def _count_follow_ups(decision_id: str, kind: str) -> Any:
    return (
        select(func.count())
        .select_from(entries)
        .where(entries.c.decision_id == decision_id, entries.c.kind == kind)
    )


def _prepare_decision(record: dict) -> _Entry:
    if not isinstance(record, dict):
        raise LedgerError(
            f"decision not recorded: record must be a dict, got {type(record).__name__}"
        )
    missing = [key for key in _REQUIRED_DECISION_KEYS if key not in record]
    if missing:
        raise LedgerError(f"decision not recorded: record is missing {', '.join(missing)}")
    decision_id = record["decision_id"]
    if not isinstance(decision_id, str) or not decision_id:
        raise LedgerError(
            f"decision not recorded: decision_id must be a non-empty str, got {decision_id!r}"
        )
    what = f"decision {decision_id!r}"
    created_at = record["created_at"]
    if not isinstance(created_at, str) or not created_at:
        raise LedgerError(f"{what} not recorded: created_at must be ISO text, got {created_at!r}")
    strategy = record["strategy"]
    if not isinstance(strategy, dict) or "name" not in strategy:
        raise LedgerError(
            f"{what} not recorded: strategy must be a dict with a 'name', got {strategy!r}"
        )
    return _Entry("decision", decision_id, decision_id, created_at, _dump(record, what))


def _check_order_state(state: object) -> None:
    if state not in ORDER_STATES:
        raise InvalidEventError("state", f"{state!r} is not an order state; expected one of {', '.join(ORDER_STATES)}")


def _read_orders(conn: Connection, pool: str, ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{order_id: (decision_id, state)}`` of those of ``ids`` that have a row in ``pool``."""
    out: dict[str, tuple[str, str]] = {}
    for i in range(0, len(ids), _IN_CHUNK):
        query = select(order_states.c.order_id, order_states.c.decision_id, order_states.c.state).where(
            order_states.c.pool == pool, order_states.c.order_id.in_(ids[i : i + _IN_CHUNK])
        )
        out.update((r[0], (r[1], r[2])) for r in conn.execute(query))
    return out


def _held_by(conn: Connection, decision_ids: list[str]) -> dict[tuple[str, str, str], int]:
    """Units each decision holds now (its reservation rows summed) per ``(decision_id, node_id, sku)``."""
    out: dict[tuple[str, str, str], int] = {}
    for i in range(0, len(decision_ids), _IN_CHUNK):
        query = (
            select(reservations.c.decision_id, reservations.c.node_id, reservations.c.sku, func.sum(reservations.c.qty))
            .where(reservations.c.decision_id.in_(decision_ids[i : i + _IN_CHUNK]))
            .group_by(reservations.c.decision_id, reservations.c.node_id, reservations.c.sku)
        )
        out.update(((r[0], r[1], r[2]), int(r[3])) for r in conn.execute(query))
    return out


def _per_cell(rows: Any) -> dict[tuple[str, str], int]:
    """Reservation rows summed per ``(node_id, sku)``, in the order cells first appear."""
    out: dict[tuple[str, str], int] = {}
    for r in rows:
        cell = (r["node_id"], r["sku"])
        out[cell] = out.get(cell, 0) + r["qty"]
    return out


def _cell_levels(conn: Connection, pool: str, node_id: str, sku: str) -> tuple[int, int]:
    got = conn.execute(
        select(stock.c.on_hand, stock.c.reserved).where(stock.c.pool == pool, stock.c.node_id == node_id, stock.c.sku == sku)
    ).first()
    return (int(got[0]), int(got[1])) if got is not None else (0, 0)


def _order_id(record: dict, decision_id: str) -> str:
    """The order id of a routed record, which keys its row in ``order_states``."""
    order_id = record["order_id"]
    if not isinstance(order_id, str) or not order_id:
        raise LedgerError(
            f"decision {decision_id!r} not recorded: order_id must be a non-empty str, got {order_id!r}"
        )
    return order_id


def _prepare_reservations(
    decision_id: str, reserved: Sequence[Reservation]
) -> list[dict[str, Any]]:
    rows = []  # type: ignore[var-annotated]
    for item in reserved:
        try:
            node_id, sku, qty = item
        except (TypeError, ValueError):
            node_id = sku = qty = None  # type: ignore[assignment]
        if (
            not isinstance(node_id, str)
            or not isinstance(sku, str)
            or isinstance(qty, bool)
            or not isinstance(qty, Integral)
            or qty < 1
        ):
            raise LedgerError(
                f"decision {decision_id!r} not recorded: reservation {item!r} must be "
                "(node_id: str, sku: str, qty: int >= 1)"
            )
        rows.append({"decision_id": decision_id, "node_id": node_id, "sku": sku, "qty": int(qty)})
    return rows


def _dump(body: dict, what: str) -> bytes:
    try:
        return canonical_json(body)
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        raise LedgerError(f"{what} not recorded: body is not JSON-able: {exc}") from exc


def _require_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LedgerError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _db_message(exc: SQLAlchemyError) -> str:
    """The driver's message on one line, without the SQL and its (large) parameters."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())


def _create_engine(url: str) -> tuple[Engine, bool]:
    """Build the engine for ``url``; return it and whether it is an in-memory SQLite."""
    example = "e.g. 'sqlite:///router-ledger.sqlite' or 'postgresql+psycopg://user@host:5432/db'"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError) as exc:
        raise LedgerError(f"bad ledger URL {url!r}: {exc}; expected {example}") from exc
    shown = parsed.render_as_string(hide_password=True)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    try:
        if backend == "sqlite" and driver == "pysqlite":
            return _create_sqlite_engine(parsed)
        if backend == "postgresql":
            return create_engine(parsed), False
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise LedgerError(f"cannot use ledger URL {shown!r}: {exc}") from exc
    raise LedgerError(f"unsupported ledger URL {shown!r}; expected {example}")


def _create_sqlite_engine(url: URL) -> tuple[Engine, bool]:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if in_memory:
        # One connection shared by all threads; otherwise each pooled connection
        # would open its own empty database.
        engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        if not url.query.get("uri"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"cannot create the folder of ledger file {database!r}: {exc}"
                ) from exc
        engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so the "begin"
        # hook below decides how each transaction starts (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL").
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            # WAL lets readers run beside the single writer, and with
            # synchronous=NORMAL a commit needs no fsync (only checkpoints do):
            # a power cut may lose the last commits but never corrupts the chain.
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock before the chain head is read, so two
        # processes can never both extend the same head. Reads opt into DEFERRED.
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine, in_memory


def _set_wal(cursor: Any) -> None:
    """Switch a new SQLite connection to WAL, waiting out a concurrent switch.

    Changing the journal mode needs an exclusive lock, and SQLite may answer
    "database is locked" at once instead of calling the busy handler when
    another process is creating or converting the same file. So retry, with
    a short sleep, for as long as the busy timeout would have waited.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _insert_ignore(postgres: bool, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on either database."""
    return (_pg_insert(table) if postgres else _sqlite_insert(table)).on_conflict_do_nothing()
