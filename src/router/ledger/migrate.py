"""Bring a ledger database to the schema head with Alembic, once and quickly.

Opening an up-to-date ledger only reads ``alembic_version`` (Alembic itself is
not even imported), which keeps ``SqlLedger(...)`` well under 200 ms. Only a
new or old database pays for ``alembic upgrade head``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect, text

from router.errors import LedgerError

__all__ = ["HEAD_REVISION", "MIGRATIONS_DIR", "current_revision", "upgrade_to_head"]

#: Folder holding ``env.py`` and ``versions/``.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Newest revision in ``versions/``; a test checks it against Alembic's own view.
HEAD_REVISION = "0006"


def current_revision(conn: Connection) -> str | None:
    """Return the Alembic revision stamped in the database, or None if unstamped."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def upgrade_to_head(conn: Connection) -> None:
    """Run ``alembic upgrade head`` on ``conn``, which must be in a write transaction.

    Raises
    ------
    LedgerError
        If Alembic cannot find a path from the stamped revision to head.

    Notes
    -----
    Running inside the caller's transaction (which holds the SQLite write lock
    or the PostgreSQL advisory lock) makes concurrent first openers queue up:
    the first migrates, the others then find the schema at head and do nothing.
    """
    from alembic import command  # deferred: only a fresh or old ledger needs it
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    try:
        command.upgrade(config, "head")
    except CommandError as exc:  # e.g. a database stamped by a newer router
        raise LedgerError(f"cannot migrate the ledger schema to {HEAD_REVISION}: {exc}") from exc

