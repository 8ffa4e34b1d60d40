"""Stock table: the reservation truth every router on the ledger shares.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

One row per (pool, node, SKU): on-hand and reserved units. A reservation is a
conditional UPDATE in the decision's own transaction; the CHECK constraints are
the last line of defence (reserved never negative, never above on-hand).
Written by hand, independent of ``router.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("pool", sa.Text, nullable=False),
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("sku", sa.Text, nullable=False),
        sa.Column("on_hand", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("pool", "node_id", "sku", name="pk_stock"),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved_nonnegative"),
        sa.CheckConstraint("reserved <= on_hand", name="ck_stock_no_oversell"),
    )


def downgrade() -> None:
    op.drop_table("stock")
