"""Entry bodies stored packed: a binary column for the deflated canonical JSON.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

New entries keep ``body`` NULL and store ``body_z`` (a codec byte, then the canonical
JSON deflated with a preset dictionary, see ``router.ledger.codec``): about a sixth
of the text. Entries written before keep their text ``body``; nothing already in the
chain is rewritten, and the hash still covers the canonical JSON text either way.
Written by hand, independent of ``router.ledger.schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot drop NOT NULL in place, so the table is copied
    with op.batch_alter_table("ledger_entries") as batch:
        batch.alter_column("body", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("body_z", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("body_z")
        batch.alter_column("body", existing_type=sa.Text(), nullable=False)
