"""Strategy versions and rollout modes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

``strategy_versions``: one row per strategy version, keyed by its content hash
(``version``): the strategy's name, its body as JSON, author, reason and time.
Immutable: inserting a hash that is already there changes nothing.

``strategy_modes``: the append-only log of rollout mode changes (off, shadow,
canary with a percentage, on) of a strategy version, each with actor and reason,
and for an automatic change the guard that tripped (JSON). Every row is hashed and
linked to the row before it (``prev_hash``, ``hash``: the same hash as the
decision chain's, with kind ``mode`` and the row's ``mode_id``), so ``router verify``
detects an edited, deleted or reordered mode change. The highest ``seq`` is what
workers poll to pick up a change. Written by hand, independent of ``router.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "strategy_versions",
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_strategy_versions"),
    )
    op.create_index("ix_strategy_versions_name", "strategy_versions", ["name"])
    seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "strategy_modes",
        sa.Column("seq", seq, primary_key=True, autoincrement=True),
        sa.Column("mode_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("canary_percent", sa.Float(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("guard", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("mode IN ('off', 'shadow', 'canary', 'on')", name="ck_strategy_modes_mode"),
        sa.CheckConstraint("canary_percent >= 0 AND canary_percent <= 100", name="ck_strategy_modes_percent"),
        sa.UniqueConstraint("mode_id", name="uq_strategy_modes_mode_id"),
    )


def downgrade() -> None:
    op.drop_table("strategy_modes")
    op.drop_index("ix_strategy_versions_name", table_name="strategy_versions")
    op.drop_table("strategy_versions")
