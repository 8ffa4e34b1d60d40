"""The decision ledger: an append-only, hash-chained record of routing decisions.

Decisions, overrides and outcomes form one chain (each entry hashes the one
before it), with the stock each decision reserved stored beside it. The engine
depends on the :class:`DecisionLedger` protocol; :class:`SqlLedger` stores it in
SQLite (default) or PostgreSQL. SQLAlchemy and Alembic are used only here.

>>> from router.ledger import open_ledger
>>> ledger = open_ledger("sqlite://")  # in memory
>>> ledger.verify().ok
True
"""

from router.engine import register_ledger_opener
from router.ledger.base import DecisionLedger, VerifyReport
from router.ledger.sql import SqlLedger, open_ledger

register_ledger_opener(open_ledger)

__all__ = ["DecisionLedger", "SqlLedger", "VerifyReport", "open_ledger"]
