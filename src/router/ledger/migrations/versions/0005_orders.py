"""Order states: where each routed order of a stock pool stands.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

``order_states``: one row per (pool, order id): the decision that holds the order now
(``decision_id``), its ``state`` (``routed``, ``released`` or ``shipped``) and when it
last changed. A routed decision recorded with a pool upserts its order's row in its own
transaction; releases, shipments and re-routes move it on. The ``(pool, state)`` index
serves the list of open (routed) orders.

No backfill: orders routed before this revision have no row, so they are not listed as
open and cannot be re-routed or marked; only decisions recorded from 0005 on are. Written
by hand, independent of ``router.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_states",
        sa.Column("pool", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("decision_id", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pool", "order_id", name="pk_order_states"),
        sa.CheckConstraint("state IN ('routed', 'released', 'shipped')", name="ck_order_states_state"),
    )
    op.create_index("ix_order_states_pool_state", "order_states", ["pool", "state"])


def downgrade() -> None:
    op.drop_index("ix_order_states_pool_state", table_name="order_states")
    op.drop_table("order_states")
