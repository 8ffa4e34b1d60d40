"""The HTTP service's tables: live-state events shared by every worker, and idempotency keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

``state_events``: every live-state event posted to any worker, in the order the
database took them (``seq``). Each worker applies the rows after the last one it
applied before it decides, so every worker routes on the same state version, and a
decision record names the ``seq`` it had read. ``idempotency_keys``: one row per
``Idempotency-Key`` of a POST: the request's hash and, once it succeeded, the stored
response a retry gets back. Written by hand, independent of ``router.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("pool", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
    )
    op.create_index("ix_state_events_pool_seq", "state_events", ["pool", "seq"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", "endpoint", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_state_events_pool_seq", table_name="state_events")
    op.drop_table("state_events")
