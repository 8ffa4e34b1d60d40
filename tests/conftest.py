"""Shared fixtures: named tiny scenarios, a fixed clock, an order builder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from router import Order
from router.engine import Router
from router.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
TINY = SCENARIOS / "tiny"
SHARED_DATA = ROOT.parent / "shared" / "data"
T0 = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)

PG_URL = os.environ.get("ROUTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class FixedClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_order(order_id: str = "o1", lines=(("SKU-1", 1),), *, tier: str = "standard", dest=None, **extra) -> Order:
    dest = dest if dest is not None else {"region": "north"}
    return Order.model_validate(
        {
            "order_id": order_id,
            "customer": {"customer_id": "c-" + order_id, "tier": tier},
            "destination": dest,
            "lines": [{"sku": s, "qty": q} for s, q in lines],
            "created_at": extra.pop("created_at", T0.isoformat()),
            **extra,
        }
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def tiny_router(tmp_path, clock):
    """Factory: a Router on a tiny scenario with a fresh SQLite ledger in tmp_path."""
    made = []

    def make(name: str, *, ledger: str | None | bool = True, **kw) -> Router:
        sc = load_scenario(TINY / f"{name}.yaml")
        url = f"sqlite:///{tmp_path / (name + '-ledger.sqlite')}" if ledger is True else (ledger or None)
        r = Router(sc, ledger=url, clock=clock, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL to a fresh schema on the PostgreSQL at PG_URL, dropped afterwards.

    Unreachable server: the test fails when CI=true (CI must exercise PostgreSQL), and is
    skipped with the reason elsewhere.
    """
    import sqlalchemy as sa

    schema = f"router_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        first_line = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        message = f"PostgreSQL at {PG_URL} is unreachable ({first_line})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + "; set ROUTER_TEST_PG_URL or start a server")
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
