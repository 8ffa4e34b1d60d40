"""Typed errors. Every error a user can cause names the field and the rule it broke."""

from __future__ import annotations

__all__ = [
    "InvalidEventError",
    "InvalidOrderError",
    "InvalidPlanError",
    "LedgerError",
    "RouterError",
    "ScenarioError",
    "UnknownDecisionError",
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


class InvalidEventError(_FieldError):
    """A live-state event names something unknown or would make the state inconsistent."""


class UnknownDecisionError(RouterError, KeyError):
    """No decision with that id is in the ledger."""

    def __init__(self, decision_id: str) -> None:
        self.decision_id = decision_id
        super().__init__(f"no decision with id {decision_id!r} in the ledger")

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


def pydantic_field_error(exc: object, cls: type[_FieldError], *, source: str | None = None):
    """Turn the first error of a pydantic ``ValidationError`` into one of our typed errors."""
    errors = exc.errors()  # type: ignore[attr-defined]
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    field = field_path(first.get("loc", ()))
    reason = str(first.get("msg", "invalid"))
    if reason.startswith("Value error, "):
        reason = reason[len("Value error, ") :]
    err = cls(field, reason, source=source)
    err.all_errors = [  # type: ignore[attr-defined]
        {"field": field_path(e.get("loc", ())), "reason": e.get("msg", "")}
        for e in errors
    ]
    return err


def field_path(loc) -> str:
    """pydantic's ('lines', 2, 'sku') as ``lines[2].sku``, the form every error of ours uses."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"
