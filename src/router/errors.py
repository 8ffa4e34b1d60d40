"""Typed errors. Every error a user can cause names the field and the rule it broke."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InvalidEventError",
    "InvalidOrderError",
    "InvalidPlanError",
    "LedgerError",
    "ModelLoadError",
    "NetworkMismatchError",
    "ReplayError",
    "ReservationConflict",
    "RouterError",
    "StageError",
    "ScenarioError",
    "StrategyFileError",
    "UnknownDecisionError",
    "UnknownOrderError",
    "UnknownStrategyError",
]


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


class _FieldError(RouterError, ValueError):
    """An input value broke a rule; ``field`` is its dotted path, ``reason`` the rule."""

    def __init__(self, field: str, reason: str, *, source: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {reason}")

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class InvalidOrderError(_FieldError):
    """The order cannot be routed as given (unknown SKU, bad quantity, no coordinates...)."""


class ScenarioError(_FieldError):
    """A scenario file is malformed or inconsistent."""


class ConfigError(_FieldError):
    """A setting of the service (``ROUTER_*``) is invalid."""


class InvalidEventError(_FieldError):
    """A live-state event names something unknown or would make the state inconsistent."""


class UnknownOrderError(InvalidEventError):
    """An order id has no state in the stock pool: no decision routed it there.

    A subclass of InvalidEventError (callers catching that one still catch it), kept apart
    so that a caller can tell "no such order" from "the order cannot make that move" by
    type, not by the wording of the reason (the HTTP service answers 404 and 409).
    """


class StrategyFileError(RouterError, ValueError):
    """A strategy file is refused; ``problems`` lists every one as ``(line, field, reason)``.

    ``line`` is 1-based (0 when the file could not be read), ``field`` the dotted path
    in the file (``rules[2].exclude.nodes[0]``). Nothing was loaded or changed.
    """

    def __init__(self, problems, *, source: str | None = None) -> None:
        self.problems: list[tuple[int, str, str]] = [(int(a), str(b), str(c)) for a, b, c in problems]
        self.source = source
        where = source or "<strategy>"
        super().__init__("\n".join(f"{where}:{ln}: {f}: {r}" for ln, f, r in self.problems))

    def to_dict(self) -> list[dict]:
        return [{"line": ln, "field": f, "reason": r} for ln, f, r in self.problems]


class UnknownDecisionError(RouterError, KeyError):
    """No decision with that id is in the ledger."""

    def __init__(self, decision_id: str) -> None:
        self.decision_id = decision_id
        super().__init__(f"no decision with id {decision_id!r} in the ledger")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


class UnknownStrategyError(RouterError, KeyError):
    """No strategy of that name is among the router's strategies."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"unknown strategy {name!r}; known: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


class InvalidPlanError(RouterError):
    """A plan breaks a rule of the independent plan validator (``router.solver.validate``).

    ``violations`` holds every broken rule (objects with ``rule``, ``where`` and
    ``detail``); the message lists them all, one per line, so a failing check
    shows the whole picture, not just the first problem.
    """

    def __init__(self, violations, *, subject: str = "plan") -> None:
        self.violations = tuple(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        n = len(self.violations)
        super().__init__(f"{subject} breaks {n} rule{'s' if n != 1 else ''} of a valid plan:\n{lines}")


class LedgerError(RouterError):
    """The ledger could not be written or read; the decision was not recorded."""


class ReservationConflict(LedgerError):
    """The ledger's stock no longer covers a reservation: another writer took the units first.

    ``levels`` maps (node_id, sku), for every node and every SKU the write wanted to
    reserve, to the ledger's current ``(on_hand, reserved)``, so the router can
    refresh its cache and decide again. Nothing was written.
    """

    def __init__(self, message: str, levels: dict[tuple[str, str], tuple[int, int]]) -> None:
        self.levels = levels
        super().__init__(message)


class StageError(RouterError):
    """One stage of a routing decision failed (``stage``: rules, legs, candidates, splits, ...).

    Raised inside the decision pipeline and caught by the fallback chain, which
    records ``stage`` and the cause; never raised out of ``Router.route``.
    """

    def __init__(self, stage: str, cause: BaseException) -> None:
        self.stage = stage
        self.cause = cause
        super().__init__(f"{stage}: {type(cause).__name__}: {cause}")


class ReplayError(RouterError):
    """A decision cannot be replayed here (its inputs are missing, or were altered)."""


class NetworkMismatchError(ReplayError):
    """The decision was taken on another network than this router's (a different scenario file)."""


class ModelLoadError(RouterError):
    """A saved delay-risk model cannot be used here; nothing was loaded.

    Raised by ``router.risk.store.load_model`` when the model directory or one of its
    files is missing, the model file is corrupt, the model card's feature list differs
    from the caller's, the model was saved with another scikit-learn major.minor
    version, or the file holds types outside the trusted allow-list. ``directory`` is
    the model directory; the message says in one sentence what is wrong and what to do.
    """

    def __init__(self, directory: object, message: str | None = None) -> None:
        # ModelLoadError(message) when no single directory is at fault (a registry, a network)
        if message is None:
            directory, message = "", str(directory)
        self.directory = str(directory)
        super().__init__(message)


def pydantic_field_error(exc: object, cls: type[_FieldError], *, source: str | None = None):
    """Turn the first error of a pydantic ``ValidationError`` into one of our typed errors."""
    errors = exc.errors()  # type: ignore[attr-defined]
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    field = field_path(first.get("loc", ()))
    reason = _reason(first)
    err = cls(field, reason, source=source)
    err.all_errors = [  # type: ignore[attr-defined]
        {"field": field_path(e.get("loc", ())), "reason": _reason(e)}
        for e in errors
    ]
    return err


def _reason(error: dict) -> str:
    """pydantic's message; for a wrong type also the value given (``got '2'``): the bad value named."""
    reason = str(error.get("msg", "invalid"))
    if reason.startswith("Value error, "):
        return reason[len("Value error, ") :]
    given = error.get("input")
    kind = str(error.get("type", ""))
    if kind.endswith(("_type", "_parsing", "_from_float")) and isinstance(given, (str, int, float, bool)):
        shown = repr(given if not isinstance(given, str) or len(given) <= 40 else given[:40] + "...")
        reason += f", got {shown}"
    return reason


def field_path(loc) -> str:
    """pydantic's ('lines', 2, 'sku') as ``lines[2].sku``, the form every error of ours uses."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"

