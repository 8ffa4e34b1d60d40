"""The decision ledger: an append-only, hash-chained record of routing decisions, and the stock truth.

Decisions, overrides and outcomes form one chain (each entry hashes the one
before it), with the stock each decision reserved stored beside it. The ledger
also holds the stock table that every router on it reserves from: a reservation
is a conditional update in the decision's own transaction, so no two processes
can reserve the same unit. The engine depends on the :class:`DecisionLedger`
protocol; :class:`SqlLedger` stores it in SQLite (default) or PostgreSQL.
SQLAlchemy and Alembic are used only here.

>>> from router.ledger import open_ledger
>>> ledger = open_ledger("sqlite://")  # in memory
>>> ledger.verify().ok
True
"""

from router.ledger.base import DecisionLedger, StrategyStore, VerifyReport
from router.ledger.sql import DEFAULT_URL, SqlLedger, open_ledger

__all__ = ["DEFAULT_URL", "DecisionLedger", "SqlLedger", "StrategyStore", "VerifyReport", "open_ledger"]
