"""Alembic environment of the decision ledger.

``SqlLedger`` runs the upgrade itself and hands its open connection in through
``config.attributes["connection"]``, already inside a write-locked transaction,
so concurrent openers of a fresh ledger migrate it exactly once. Run by hand
(``alembic -c <ini with script_location and sqlalchemy.url> upgrade head``) it
opens its own connection from ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from router.ledger.schema import metadata

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    # No-op when the caller's connection is already in a transaction: the
    # migration then commits or rolls back with the caller's transaction.
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    _run(conn)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)  # type: ignore[arg-type]
    with engine.connect() as conn:
        _run(conn)
