"""What the engine needs from a decision ledger: the :class:`DecisionLedger` protocol.

The engine, service and CLI depend on this protocol only, never on SQLAlchemy,
so an in-memory or remote ledger can stand in for :class:`~router.ledger.SqlLedger`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

__all__ = ["DecisionLedger", "Reservation", "StrategyStore", "VerifyReport"]

#: One reserved quantity: ``(node_id, sku, qty)``.
Reservation = tuple[str, str, int]


class VerifyReport(BaseModel):
    """Outcome of walking the hash chain.

    Attributes
    ----------
    ok
        True when every entry's hash and link to its predecessor are intact.
    entries_checked
        Entries examined, including the first bad one when ``ok`` is False.
    first_bad_seq
        ``seq`` of the first entry that failed a check, or None when ``ok``.
    reason
        One sentence: what failed at ``first_bad_seq``, or a summary when ``ok``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    entries_checked: int
    first_bad_seq: int | None
    reason: str


@runtime_checkable
class DecisionLedger(Protocol):
    """Append-only, hash-chained record of decisions, overrides and outcomes.

    Nothing is ever updated or deleted: an override or outcome is a new entry
    pointing at its decision. Every write is all-or-nothing and raises
    :class:`~router.errors.LedgerError` when the entry was not recorded.
    """

    def append_decision(self, record: dict, reservations: Sequence[Reservation], *, pool: str | None = None) -> str:
        """Record one decision and its reservations in one transaction; return its hash.

        With ``pool``, every reserved unit is checked and taken from that stock pool in
        the same transaction, or nothing is written and ``ReservationConflict`` is raised.
        """
        ...

    def append_decisions(
        self, items: Sequence[tuple[dict, Sequence[Reservation]]], *, pool: str | None = None
    ) -> list[str]:
        """Record many decisions in one transaction; return their hashes in order."""
        ...

    def open_stock(self, pool: str, initial: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[int, int]]:
        """Seed the missing cells of a stock pool; return every cell's ``(on_hand, reserved)``."""
        ...

    def stock_levels(
        self, pool: str, cells: Sequence[tuple[str, str]] | None = None
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """``(on_hand, reserved)`` per ``(node_id, sku)`` of a pool."""
        ...

    def change_stock(
        self,
        pool: str,
        node_id: str,
        sku: str,
        *,
        set_on_hand: int | None = None,
        delta: int | None = None,
        ship: int | None = None,
        release: int | None = None,
    ) -> tuple[int, int]:
        """Apply one stock event if it keeps ``0 <= reserved <= on_hand``; return the new levels."""
        ...

    def get_decision(self, decision_id: str) -> dict:
        """Return the stored decision record; raise ``UnknownDecisionError`` if absent."""
        ...

    def append_override(
        self, decision_id: str, *, actor: str, reason: str, body: dict, created_at: str
    ) -> str:
        """Record an override of ``decision_id``; return the new override id."""
        ...

    def move_reservation(
        self,
        decision_id: str,
        *,
        actor: str,
        reason: str,
        body: dict,
        created_at: str,
        release: Sequence[Reservation],
        reserve: Sequence[Reservation],
        pool: str | None,
    ) -> str:
        """Record an override that gives back ``release`` and reserves ``reserve``, in one transaction."""
        ...

    def change_stocks(
        self, pool: str, changes: Sequence[tuple[str, str, str, int]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Apply stock changes ``(node_id, sku, kind, value)`` in one transaction; the new levels."""
        ...

    def mark_orders(self, pool: str, order_ids: Sequence[str], state: str, at: str) -> list[str]:
        """Move orders of ``pool`` to ``released`` or ``shipped`` in one transaction; the ids moved.

        Parameters
        ----------
        pool
            The stock pool the orders were routed in.
        order_ids
            The orders to move (an id given twice is moved once).
        state
            ``"released"`` or ``"shipped"``: routed -> released, routed -> shipped and
            released -> shipped are the moves allowed. Stock is not touched.
        at
            ISO time of the change.

        Returns
        -------
        list of str
            The order ids moved, in the order given.

        Raises
        ------
        UnknownOrderError
            An order without a state in ``pool`` (an InvalidEventError). Nothing changed.
        InvalidEventError
            An unknown state, or a move not allowed (the reason names the order and its
            current state). Nothing changed.
        """
        ...

    def order_states(
        self, pool: str, order_ids: Sequence[str] | None = None, state: str | None = None
    ) -> dict[str, tuple[str, str]]:
        """``{order_id: (decision_id, state)}`` of the orders of ``pool``, filtered.

        Parameters
        ----------
        pool
            The stock pool.
        order_ids
            Only these orders; None: all.
        state
            Only orders in this state; None: any.

        Returns
        -------
        dict
            Order id -> (the decision holding it, its state), by order id.
        """
        ...

    def open_orders(self, pool: str, limit: int | None = None) -> list[tuple[str, str]]:
        """``(order_id, decision_id)`` of the orders of ``pool`` in state ``routed``, by order id.

        Parameters
        ----------
        pool
            The stock pool.
        limit
            At most this many; None: all.

        Returns
        -------
        list of tuple
            ``(order_id, decision_id)`` pairs.
        """
        ...

    def apply_reroute(
        self,
        pool: str,
        moves: Sequence[tuple[str, dict, Sequence[Reservation], Sequence[Reservation]]],
        *,
        created_at: str,
    ) -> list[str]:
        """Move open orders to new decisions and their stock with them, all in one transaction.

        Parameters
        ----------
        pool
            The stock pool the orders were routed in.
        moves
            ``(old_decision_id, new_record, release_rows, reserve_rows)``: every release
            of every move is given back before any reserve is taken; the new records are
            chained as decisions; each order then points at its new decision.
        created_at
            ISO time of the re-route.

        Returns
        -------
        list of str
            The chain hashes of the new decisions, in the order of ``moves``.

        Raises
        ------
        InvalidEventError
            An order is no longer open (released, shipped, or held by another decision), or
            units to give back are not held or reserved. Nothing is written.
        ReservationConflict
            The pool cannot supply some reserve rows. Nothing is written.
        """
        ...

    def append_events(self, pool: str, events: Sequence[tuple[str, dict]], created_at: str) -> int:
        """Append live-state events for ``pool``; return the last event sequence number."""
        ...

    def events_since(self, pool: str, seq: int, limit: int = 10_000) -> list[tuple[int, str, dict]]:
        """The events of ``pool`` after ``seq``, oldest first."""
        ...

    def events_head(self, pool: str) -> int:
        """The last event sequence number of ``pool`` (0 when none)."""
        ...

    def list_decisions(
        self,
        *,
        order_id: str | None = None,
        strategy: str | None = None,
        node: str | None = None,
        since: str | None = None,
        overridden: bool | None = None,
        limit: int = 50,
        after: int = 0,
        scan: int = 5000,
    ) -> tuple[list[dict], int | None]:
        """Decision records after position ``after`` matching the filters; the next page's cursor."""
        ...

    def overrides_for(self, decision_id: str) -> list[dict]:
        """Return the overrides of ``decision_id``, oldest first."""
        ...

    def append_outcome(self, decision_id: str, *, body: dict, created_at: str) -> str:
        """Record an observed outcome of ``decision_id``; return the new outcome id."""
        ...

    def outcomes_for(self, decision_id: str) -> list[dict]:
        """Return the outcomes of ``decision_id``, oldest first."""
        ...

    def iter_outcomes(self, *, since: str | None = None, batch: int = 500) -> Iterator[tuple[dict, dict]]:
        """``(decision record, outcome body)`` for every recorded outcome, in ledger order."""
        ...

    def reservations_for(self, decision_id: str) -> list[Reservation]:
        """Return the ``(node_id, sku, qty)`` rows recorded with ``decision_id``."""
        ...

    def reserved_totals(self) -> dict[tuple[str, str], int]:
        """Return the reserved quantity summed per ``(node_id, sku)``."""
        ...

    def count_decisions(self) -> int:
        """Return the number of decisions recorded."""
        ...

    def recent_decisions(self, limit: int = 20) -> list[dict]:
        """Return up to ``limit`` decision records, newest first."""
        ...

    def verify(self) -> VerifyReport:
        """Recompute the whole chain and report the first broken entry, if any."""
        ...

    def close(self) -> None:
        """Release connections; the ledger cannot be used afterwards."""
        ...


@runtime_checkable
class StrategyStore(Protocol):
    """Strategy versions and rollout mode changes (schema 0006), kept by the ledger.

    Versions are immutable and keyed by their content hash; mode changes are an
    append-only, hash-linked log whose last ``seq`` every worker polls
    (:meth:`modes_head`) to agree on what is active.
    """

    def put_strategy_version(
        self, name: str, version: str, body: dict, *, author: str, reason: str, created_at: str
    ) -> bool:
        """Store a version; False (and nothing changed) when the hash is already stored."""
        ...

    def get_strategy_version(self, version: str) -> dict | None:
        """The stored version ``{name, version, body, author, reason, created_at}``, or None."""
        ...

    def list_strategy_versions(self, name: str | None = None) -> list[dict]:
        """Every stored version (of ``name``), oldest first."""
        ...

    def append_mode(
        self,
        name: str,
        version: str,
        mode: str,
        *,
        canary_percent: float = 0.0,
        actor: str,
        reason: str,
        created_at: str,
        guard: dict | None = None,
    ) -> dict:
        """Append a mode change (off, shadow, canary, on) with actor and reason; return the stored row."""
        ...

    def modes_since(self, seq: int = 0) -> list[dict]:
        """Mode changes after ``seq``, oldest first."""
        ...

    def modes_head(self) -> int:
        """The last mode change's ``seq`` (0 when none)."""
        ...
