"""Table definitions of the ledger, as SQLAlchemy Core ``Table`` objects.

This is the schema the code reads and writes; the Alembic revisions in
``migrations/versions`` create it. A test compares the two so they cannot drift.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "entries",
    "idempotency_keys",
    "metadata",
    "order_states",
    "reservations",
    "state_events",
    "stock",
    "strategy_modes",
    "strategy_versions",
]

metadata = MetaData()

# BIGINT on PostgreSQL (a busy ledger outgrows 2**31 entries); INTEGER on SQLite
# because only "INTEGER PRIMARY KEY" aliases the rowid and autoincrements there.
_SeqType = BigInteger().with_variant(Integer(), "sqlite")

entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", _SeqType, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("decision_id", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    # canonical JSON as text (schema 0001-0002), or None when body_z holds it
    Column("body", Text, nullable=True),
    # codec byte + deflated canonical JSON (router.ledger.codec), from schema 0003 on
    Column("body_z", LargeBinary, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("kind IN ('decision', 'override', 'outcome')", name="ck_ledger_entries_kind"),
    UniqueConstraint("entry_id", name="uq_ledger_entries_entry_id"),
    Index("ix_ledger_entries_decision_id", "decision_id"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", _SeqType, primary_key=True, autoincrement=True),
    Column("decision_id", Text, nullable=False),
    Column("node_id", Text, nullable=False),
    Column("sku", Text, nullable=False),
    Column("qty", Integer, nullable=False),
    Index("ix_reservations_decision_id", "decision_id"),
)

# The reservation truth: one row per (pool, node, SKU). Reservations are conditional
# updates in the decision's transaction; the checks are the last line of defence.
stock = Table(
    "stock",
    metadata,
    Column("pool", Text, nullable=False),
    Column("node_id", Text, nullable=False),
    Column("sku", Text, nullable=False),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("pool", "node_id", "sku", name="pk_stock"),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved_nonnegative"),
    CheckConstraint("reserved <= on_hand", name="ck_stock_no_oversell"),
)

# Live-state events posted to the HTTP service (any worker), in the database's order:
# every worker applies the rows after the last one it applied before it decides.
state_events = Table(
    "state_events",
    metadata,
    Column("seq", _SeqType, primary_key=True, autoincrement=True),
    Column("pool", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Index("ix_state_events_pool_seq", "pool", "seq"),
)

# One row per Idempotency-Key and endpoint: the request's hash, and the response once
# the request succeeded (a retry gets it back; the same key with another body is refused).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", Text, nullable=True),
    Column("created_at", Text, nullable=False),
    PrimaryKeyConstraint("key", "endpoint", name="pk_idempotency_keys"),
)

# Where each routed order of a pool stands: the decision that holds it now and its state.
# A routed decision upserts its order's row in its own transaction; ``mark_orders`` moves
# it on (released, shipped) and ``apply_reroute`` points it at a new decision. A running
# state like ``stock``: updated in place, while the chain keeps the history.
order_states = Table(
    "order_states",
    metadata,
    Column("pool", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("decision_id", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("updated_at", Text, nullable=False),
    PrimaryKeyConstraint("pool", "order_id", name="pk_order_states"),
    CheckConstraint("state IN ('routed', 'released', 'shipped')", name="ck_order_states_state"),
    Index("ix_order_states_pool_state", "pool", "state"),
)

# Strategy versions (schema 0006): immutable, keyed by the content hash of the strategy's body.
strategy_versions = Table(
    "strategy_versions",
    metadata,
    Column("version", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    PrimaryKeyConstraint("version", name="pk_strategy_versions"),
    Index("ix_strategy_versions_name", "name"),
)

# Rollout mode changes (schema 0006): append-only, each row hashed and linked to the one
# before it (kind "mode", id ``mode_id``); a guard's automatic change names the guard (JSON).
strategy_modes = Table(
    "strategy_modes",
    metadata,
    Column("seq", _SeqType, primary_key=True, autoincrement=True),
    Column("mode_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("version", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("canary_percent", Float, nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("guard", Text, nullable=True),
    Column("created_at", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("mode IN ('off', 'shadow', 'canary', 'on')", name="ck_strategy_modes_mode"),
    CheckConstraint("canary_percent >= 0 AND canary_percent <= 100", name="ck_strategy_modes_percent"),
    UniqueConstraint("mode_id", name="uq_strategy_modes_mode_id"),
)
