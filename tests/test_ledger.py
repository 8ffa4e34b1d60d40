"""The decision ledger: round trips, append-only follow-ups, tamper detection, atomicity
and concurrency, on SQLite and (marked ``postgres``) on PostgreSQL.

Tests may reach past the API with raw SQL to play the attacker (edit, delete or
reorder rows) or to reset a database; the library itself never does either.
"""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import pg_schema_url  # noqa: E402

from router.errors import LedgerError, UnknownDecisionError
from router.ledger import DecisionLedger, SqlLedger, VerifyReport, open_ledger
from router.ledger.chain import GENESIS_HASH, canonical_json, entry_hash
from router.ledger.codec import pack_body

LEDGER_SRC = Path(__file__).resolve().parents[1] / "src" / "router" / "ledger"


def make_record(decision_id: str, **extra: Any) -> dict:
    """A minimal decision record with the keys the ledger requires."""
    return {
        "decision_id": decision_id,
        "order_id": f"order-{decision_id}",
        "created_at": "2025-11-22T10:00:00+00:00",
        "strategy": {"name": "nearest", "version": "1"},
        "status": "routed",
        **extra,
    }


# -- backends -------------------------------------------------------------------


@dataclass
class Backend:
    """A ledger URL plus raw SQL access to the same database, for attacks and checks."""

    name: str
    url: str
    _engine: sa.Engine | None = None
    _sqlite_path: Path | None = None

    def execute(self, sql: str, **params: Any) -> list[tuple]:
        if self._sqlite_path is not None:
            with sqlite3.connect(self._sqlite_path) as conn:
                return conn.execute(sql, params).fetchall()
        assert self._engine is not None
        with self._engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []

    def seq_of(self, entry_id: str) -> int:
        return self.execute("SELECT seq FROM ledger_entries WHERE entry_id = :e", e=entry_id)[0][0]

    def reservation_count(self) -> int:
        return self.execute("SELECT count(*) FROM reservations")[0][0]


def _postgres_backend() -> Iterator[Backend]:
    """A fresh schema per test on the server at PG_URL; fails instead of skipping in CI."""
    with pg_schema_url() as url:
        raw = sa.create_engine(url)
        try:
            yield Backend("postgres", url, _engine=raw)
        finally:
            raw.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite"
        yield Backend("sqlite", f"sqlite:///{path}", _sqlite_path=path)
    else:
        yield from _postgres_backend()


@pytest.fixture
def ledger(backend: Backend) -> Iterator[SqlLedger]:
    with open_ledger(backend.url) as opened:
        yield opened


# -- round trips ------------------------------------------------------------------


def test_sql_ledger_satisfies_the_protocol(ledger: SqlLedger) -> None:
    assert isinstance(ledger, DecisionLedger)


def test_decision_round_trip_with_reservations(ledger: SqlLedger) -> None:
    record = make_record("d1", plan={"legs": [{"node": "WH-A", "qty": 2}]}, score=0.25)
    digest = ledger.append_decision(record, [("WH-A", "SKU-1", 2), ("WH-B", "SKU-2", 1)])

    assert digest == entry_hash(GENESIS_HASH, "decision", "d1", canonical_json(record))
    assert ledger.get_decision("d1") == record
    assert ledger.reservations_for("d1") == [("WH-A", "SKU-1", 2), ("WH-B", "SKU-2", 1)]
    assert ledger.count_decisions() == 1


def test_decision_without_reservations(ledger: SqlLedger) -> None:
    ledger.append_decision(make_record("d1", status="unroutable"), [])
    assert ledger.reservations_for("d1") == []
    assert ledger.reserved_totals() == {}


def test_reserved_totals_sum_per_node_and_sku(ledger: SqlLedger) -> None:
    ledger.append_decision(make_record("d1"), [("WH-A", "SKU-1", 2), ("WH-B", "SKU-1", 1)])
    ledger.append_decision(make_record("d2"), [("WH-A", "SKU-1", 3), ("WH-A", "SKU-2", 4)])
    assert ledger.reserved_totals() == {
        ("WH-A", "SKU-1"): 5,
        ("WH-B", "SKU-1"): 1,
        ("WH-A", "SKU-2"): 4,
    }


def test_batch_append_chains_in_order(ledger: SqlLedger) -> None:
    records = [make_record(f"d{i}") for i in range(3)]
    hashes = ledger.append_decisions([(r, [("WH-A", "SKU-1", 1)]) for r in records])

    prev = GENESIS_HASH
    for record, digest in zip(records, hashes, strict=True):
        assert digest == entry_hash(prev, "decision", record["decision_id"], canonical_json(record))
        prev = digest
    assert ledger.count_decisions() == 3
    assert ledger.reserved_totals() == {("WH-A", "SKU-1"): 3}


def test_recent_decisions_newest_first(ledger: SqlLedger) -> None:
    for i in range(5):
        ledger.append_decision(make_record(f"d{i}"), [])
    ledger.append_outcome("d0", body={"delivered": True}, created_at="2025-11-23T00:00:00+00:00")

    assert [r["decision_id"] for r in ledger.recent_decisions(limit=3)] == ["d4", "d3", "d2"]
    assert len(ledger.recent_decisions()) == 5
    assert ledger.count_decisions() == 5


def test_unknown_decision_raises_with_the_id(ledger: SqlLedger) -> None:
    ledger.append_decision(make_record("d1"), [])
    with pytest.raises(UnknownDecisionError, match="'nope'") as info:
        ledger.get_decision("nope")
    assert info.value.decision_id == "nope"
    for call in (
        lambda: ledger.reservations_for("nope"),
        lambda: ledger.overrides_for("nope"),
        lambda: ledger.outcomes_for("nope"),
        lambda: ledger.append_outcome("nope", body={}, created_at="2025-11-23T00:00:00Z"),
        lambda: ledger.append_override(
            "nope", actor="ops", reason="x", body={}, created_at="2025-11-23T00:00:00Z"
        ),
    ):
        with pytest.raises(UnknownDecisionError, match="'nope'"):
            call()
    assert ledger.verify().entries_checked == 1  # the failed follow-ups wrote nothing


# -- overrides and outcomes -------------------------------------------------------


def test_override_is_a_new_entry_and_leaves_the_decision_unchanged(ledger: SqlLedger) -> None:
    record = make_record("d1", plan={"node": "WH-A"})
    ledger.append_decision(record, [("WH-A", "SKU-1", 1)])

    first = ledger.append_override(
        "d1",
        actor="ops@example.com",
        reason="WH-A flooded",
        body={"plan": {"node": "WH-B"}},
        created_at="2025-11-22T11:00:00+00:00",
    )
    second = ledger.append_override(
        "d1", actor="planner-7", reason="back to A", body={}, created_at="2025-11-22T12:00:00+00:00"
    )

    assert (first, second) == ("d1-override-1", "d1-override-2")
    assert ledger.get_decision("d1") == record
    assert ledger.overrides_for("d1") == [
        {
            "override_id": "d1-override-1",
            "decision_id": "d1",
            "actor": "ops@example.com",
            "reason": "WH-A flooded",
            "created_at": "2025-11-22T11:00:00+00:00",
            "plan": {"node": "WH-B"},
        },
        {
            "override_id": "d1-override-2",
            "decision_id": "d1",
            "actor": "planner-7",
            "reason": "back to A",
            "created_at": "2025-11-22T12:00:00+00:00",
        },
    ]
    assert ledger.count_decisions() == 1
    report = ledger.verify()
    assert (report.ok, report.entries_checked) == (True, 3)


def test_override_needs_actor_and_reason(ledger: SqlLedger) -> None:
    ledger.append_decision(make_record("d1"), [])
    with pytest.raises(LedgerError, match="actor"):
        ledger.append_override("d1", actor=" ", reason="x", body={}, created_at="2025-11-22")
    with pytest.raises(LedgerError, match="reason"):
        ledger.append_override("d1", actor="ops", reason="", body={}, created_at="2025-11-22")
    assert ledger.overrides_for("d1") == []


def test_outcome_is_linked_to_its_decision(ledger: SqlLedger) -> None:
    ledger.append_decision(make_record("d1"), [])
    ledger.append_decision(make_record("d2"), [])
    outcome_id = ledger.append_outcome(
        "d1", body={"delivered": True, "late_hours": 0.0}, created_at="2025-11-24T09:00:00+00:00"
    )

    assert outcome_id == "d1-outcome-1"
    assert ledger.outcomes_for("d1") == [
        {
            "outcome_id": "d1-outcome-1",
            "decision_id": "d1",
            "created_at": "2025-11-24T09:00:00+00:00",
            "delivered": True,
            "late_hours": 0.0,
        }
    ]
    assert ledger.outcomes_for("d2") == []
    assert ledger.overrides_for("d1") == []


# -- tamper detection -------------------------------------------------------------


def _three_decisions(ledger: SqlLedger) -> None:
    for i in (1, 2, 3):
        ledger.append_decision(make_record(f"d{i}"), [("WH-A", "SKU-1", 1)])


def test_verify_ok_on_a_clean_chain(ledger: SqlLedger) -> None:
    _three_decisions(ledger)
    ledger.append_override("d2", actor="ops", reason="r", body={}, created_at="2025-11-22")
    ledger.append_outcome("d2", body={"delivered": True}, created_at="2025-11-23")

    report = ledger.verify()

    assert isinstance(report, VerifyReport)
    assert (report.ok, report.entries_checked, report.first_bad_seq) == (True, 5, None)
    assert report.reason.startswith("all 5 entries intact; chain head ")


def test_verify_on_an_empty_ledger(ledger: SqlLedger) -> None:
    assert ledger.verify() == VerifyReport(
        ok=True,
        entries_checked=0,
        first_bad_seq=None,
        reason=f"all 0 entries intact; chain head {GENESIS_HASH}",
    )


def test_verify_detects_an_edited_body(ledger: SqlLedger, backend: Backend) -> None:
    _three_decisions(ledger)
    seq = backend.seq_of("d2")
    edited = pack_body(canonical_json(make_record("d2", status="cancelled")))
    backend.execute("UPDATE ledger_entries SET body_z = :b WHERE seq = :s", b=edited, s=seq)

    report = ledger.verify()

    assert (report.ok, report.first_bad_seq, report.entries_checked) == (False, seq, 2)
    assert "edited" in report.reason


def test_verify_detects_a_deleted_row(ledger: SqlLedger, backend: Backend) -> None:
    _three_decisions(ledger)
    backend.execute("DELETE FROM ledger_entries WHERE seq = :s", s=backend.seq_of("d2"))

    report = ledger.verify()

    assert (report.ok, report.first_bad_seq) == (False, backend.seq_of("d3"))
    assert "deleted, inserted or reordered" in report.reason


def test_verify_detects_reordered_rows(ledger: SqlLedger, backend: Backend) -> None:
    _three_decisions(ledger)
    backend.execute("UPDATE ledger_entries SET seq = 1000 WHERE seq = :s", s=backend.seq_of("d1"))

    report = ledger.verify()  # order is now d2, d3, d1: d2 no longer links to genesis

    assert (report.ok, report.first_bad_seq) == (False, backend.seq_of("d2"))


def test_verify_detects_an_edited_index_column(ledger: SqlLedger, backend: Backend) -> None:
    _three_decisions(ledger)
    seq = backend.seq_of("d3")
    backend.execute("UPDATE ledger_entries SET created_at = 'x' WHERE seq = :s", s=seq)

    report = ledger.verify()

    assert (report.ok, report.first_bad_seq) == (False, seq)
    assert "column" in report.reason


# -- atomicity --------------------------------------------------------------------


def test_duplicate_decision_id_writes_nothing(ledger: SqlLedger, backend: Backend) -> None:
    ledger.append_decision(make_record("d1"), [("WH-A", "SKU-1", 1)])

    with pytest.raises(LedgerError, match="'d1' not recorded"):
        ledger.append_decision(make_record("d1", status="again"), [("WH-A", "SKU-1", 5)])

    assert ledger.count_decisions() == 1
    assert backend.reservation_count() == 1
    assert ledger.reserved_totals() == {("WH-A", "SKU-1"): 1}
    assert ledger.get_decision("d1")["status"] == "routed"
    assert ledger.verify().ok


def test_batch_with_one_duplicate_writes_none_of_it(ledger: SqlLedger, backend: Backend) -> None:
    ledger.append_decision(make_record("d1"), [])
    batch = [(make_record(f"n{i}"), [("WH-A", "SKU-1", 1)]) for i in range(3)]
    batch.append((make_record("d1"), [("WH-A", "SKU-1", 1)]))

    with pytest.raises(LedgerError, match="batch of 4 decisions not recorded"):
        ledger.append_decisions(batch)
    with pytest.raises(LedgerError, match=re.escape("repeated in the batch: ['x']")):
        ledger.append_decisions([(make_record("x"), []), (make_record("x"), [])])

    assert ledger.count_decisions() == 1
    assert backend.reservation_count() == 0
    # The ledger still works after the rolled-back transaction.
    ledger.append_decision(make_record("n0"), [("WH-A", "SKU-1", 1)])
    assert ledger.verify().entries_checked == 2


@pytest.mark.parametrize(
    ("record", "reservations", "message"),
    [
        ({"decision_id": "d9"}, [], "missing order_id, created_at, strategy, status"),
        (make_record("d9", strategy="nearest"), [], "strategy must be a dict with a 'name'"),
        (make_record(""), [], "decision_id must be a non-empty str"),
        (make_record("d9", blob=object()), [], "not JSON-able"),
        (make_record("d9"), [("WH-A", "SKU-1", 0)], "qty: int >= 1"),
        (make_record("d9"), [("WH-A", "SKU-1", 1.5)], "qty: int >= 1"),
        (make_record("d9"), [("WH-A", "SKU-1")], "must be (node_id: str, sku: str"),
    ],
)
def test_invalid_input_raises_ledger_error_and_writes_nothing(
    ledger: SqlLedger, backend: Backend, record: dict, reservations: list, message: str
) -> None:
    with pytest.raises(LedgerError, match=re.escape(message)):
        ledger.append_decision(record, reservations)
    assert ledger.count_decisions() == 0
    assert backend.reservation_count() == 0


# -- concurrency ------------------------------------------------------------------


def test_threads_appending_at_once_keep_one_chain(ledger: SqlLedger) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(50):
                ledger.append_decision(make_record(f"t{t}-{i}"), [("WH-A", "SKU-1", 1)])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert ledger.count_decisions() == 400
    assert ledger.reserved_totals() == {("WH-A", "SKU-1"): 400}
    report = ledger.verify()
    assert (report.ok, report.entries_checked) == (True, 400)


def _append_from_process(url: str, worker: int, count: int, start: Any) -> None:
    """Process body for the multi-process test (module level so spawn can import it)."""
    with open_ledger(url) as ledger:
        # A timeout: a sibling that died before the barrier must not leave this
        # one waiting for ever (a hung child would keep pytest from exiting).
        start.wait(timeout=60)
        for i in range(count):
            ledger.append_decision(make_record(f"p{worker}-{i}"), [("WH-A", "SKU-1", 1)])
            if i % 10 == 0:
                ledger.append_outcome(f"p{worker}-{i}", body={"ok": True}, created_at="2025")


def _run_all(procs: list) -> list:
    """Start the processes, wait up to 120 s each, kill any still running; their exit codes.

    A hung child left alive would keep pytest from exiting (multiprocessing joins it at exit).
    """
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
        return [p.exitcode for p in procs]
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)


def test_processes_appending_at_once_keep_one_chain(backend: Backend) -> None:
    # No ledger is opened first: both processes also race to create the schema.
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_append_from_process, args=(backend.url, w, 100, start))
        for w in range(2)
    ]
    exitcodes = _run_all(procs)

    assert exitcodes == [0, 0]
    with open_ledger(backend.url) as ledger:
        assert ledger.count_decisions() == 200
        assert ledger.reserved_totals() == {("WH-A", "SKU-1"): 200}
        assert len(ledger.outcomes_for("p1-90")) == 1
        report = ledger.verify()
        assert (report.ok, report.entries_checked) == (True, 200 + 20)


def _open_fresh_files(folder: str, files: int, start: Any) -> None:
    """Process body: open each fresh SQLite file at the same moment as the others."""
    for i in range(files):
        start.wait(timeout=60)
        with open_ledger(f"sqlite:///{folder}/race-{i}.sqlite") as ledger:
            assert ledger.count_decisions() == 0


def test_processes_creating_one_sqlite_file_at_once_all_open_it(tmp_path: Path) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite answers
    # "database is locked" at once (no busy wait) to a process that loses that
    # race; about one open in 30 failed so before the connect hook retried it.
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_open_fresh_files, args=(str(tmp_path), 40, start))
        for _ in range(4)
    ]
    exitcodes = _run_all(procs)
    assert exitcodes == [0, 0, 0, 0]


# -- opening, schema and URLs -----------------------------------------------------


def test_create_false_refuses_an_unmigrated_database(backend: Backend) -> None:
    with pytest.raises(LedgerError, match="schema revision none, expected 0006"):
        SqlLedger(backend.url, create=False)
    with open_ledger(backend.url):
        pass
    with SqlLedger(backend.url, create=False) as reopened:
        assert reopened.count_decisions() == 0


def test_closed_ledger_refuses_use(backend: Backend) -> None:
    ledger = open_ledger(backend.url)
    ledger.close()
    with pytest.raises(LedgerError, match="is closed"):
        ledger.append_decision(make_record("d1"), [])
    with pytest.raises(LedgerError, match="is closed"):
        ledger.count_decisions()


def test_schema_matches_the_alembic_migration(backend: Backend) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from router.ledger.migrate import HEAD_REVISION, MIGRATIONS_DIR
    from router.ledger.schema import metadata

    with open_ledger(backend.url) as ledger, ledger._engine.connect() as conn:  # test-only peek at the live schema
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() == HEAD_REVISION


def test_reopening_an_up_to_date_ledger_is_fast(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    open_ledger(url).close()
    started = time.perf_counter()
    open_ledger(url).close()
    assert time.perf_counter() - started < 0.2


def test_sqlite_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.sqlite"
    with open_ledger(f"sqlite:///{path}") as ledger:
        ledger.append_decision(make_record("d1"), [])
    assert path.is_file()


def test_default_ledger_is_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_ledger(None) as ledger:
        ledger.append_decision(make_record("d1"), [])
    assert (tmp_path / "router-ledger.sqlite").is_file()


def test_in_memory_ledger_works_across_threads() -> None:
    with open_ledger("sqlite://") as ledger:
        threads = [
            threading.Thread(target=ledger.append_decision, args=(make_record(f"m{i}"), []))
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert ledger.count_decisions() == 4
        assert ledger.verify().ok


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "bad ledger URL 'not a url'"),
        ("mysql://u@h/db", "unsupported ledger URL 'mysql://u@h/db'"),
        ("sqlite+aiosqlite:///x.sqlite", "unsupported ledger URL"),
        ("postgresql+nosuchdriver://u@h/db", "cannot use ledger URL"),
        ("postgresql+psycopg://nobody:secret@127.0.0.1:1/db", "cannot open ledger at"),
    ],
)
def test_bad_url_raises_ledger_error(url: str, message: str) -> None:
    with pytest.raises(LedgerError, match=re.escape(message)) as info:
        SqlLedger(url)
    assert "secret" not in str(info.value)


def test_ledger_code_never_updates_or_deletes_an_entry_or_a_reservation_row() -> None:
    """Decisions, overrides, outcomes and reservation rows are append-only.

    Only running states are updated in place: the stock table (the reservation truth, a
    running balance) by conditional UPDATEs, and order_states (where each order stands)
    by upserts and ``order_states.update()``. No statement anywhere in the ledger updates
    the chain or the reservation rows, and nothing is ever deleted.
    """
    statement = re.compile(
        r"\bUPDATE\s+(\{entries\.name\}|\{reservations\.name\}|ledger_entries|reservations)\b"
        r"|\bDELETE\b|\b(entries|reservations)\.(update|delete)\("
    )
    offenders = [
        f"{path.relative_to(LEDGER_SRC)}:{n}: {line.strip()}"
        for path in sorted(LEDGER_SRC.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if statement.search(line)
    ]
    assert offenders == []
    updates = [
        line.strip()
        for line in (LEDGER_SRC / "sql.py").read_text().splitlines()
        if re.search(r"\bUPDATE \{", line)
    ]
    assert updates and all(u.startswith('f"UPDATE {stock.name}') or 'UPDATE {stock.name}' in u for u in updates)


def test_a_ledger_written_before_packed_bodies_is_migrated_and_still_verifies(tmp_path: Path) -> None:
    """Schema 0002 stored bodies as text: after the upgrade those entries read and verify as they
    were, new ones are packed, and the chain runs across both."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from router.ledger.migrate import MIGRATIONS_DIR

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        body = canonical_json(make_record("old-1"))
        digest = entry_hash(GENESIS_HASH, "decision", "old-1", body)
        conn.execute(
            sa.text(
                "INSERT INTO ledger_entries (kind, entry_id, decision_id, created_at, body, prev_hash, hash) "
                "VALUES ('decision', 'old-1', 'old-1', :c, :b, :p, :h)"
            ),
            {"c": make_record("old-1")["created_at"], "b": body.decode(), "p": GENESIS_HASH, "h": digest},
        )
    engine.dispose()
    with open_ledger(url) as ledger:  # migrates to head
        assert ledger.get_decision("old-1") == make_record("old-1")
        ledger.append_decision(make_record("new-1"), [])
        assert ledger.get_decision("new-1") == make_record("new-1")
        report = ledger.verify()
        assert report.ok and report.entries_checked == 2
    raw = sqlite3.connect(tmp_path / "old.sqlite")
    rows = raw.execute("SELECT entry_id, body IS NULL, length(body_z) FROM ledger_entries ORDER BY seq").fetchall()
    raw.close()
    assert rows[0][:2] == ("old-1", 0) and rows[1][:2] == ("new-1", 1) and rows[1][2] < len(body)
