"""The HTTP service under sustained load: recorded decisions per second and latency, over HTTP.

``router serve`` on the default scenario (``national``, the delay-risk champion) is
started on PostgreSQL with 1 and 2 workers and on SQLite with 1 worker (SQLite refuses
more), each on a fresh database. A load generator in other processes (``--clients``
processes, each an asyncio loop with an httpx client keeping ``--concurrency`` requests
in flight) posts ``/v1/route`` for ``--seconds`` after a warm-up, every order a distinct
one of the scenario's stream. Every 200 is a decision recorded in the ledger in its own
transaction before the response (the figures count only those; the run checks the
ledger's decision count afterwards). Reported per configuration: decisions/s, p50 / p99
/ max latency as the client saw it, errors, and the CPU the load generator itself used
(its share of the machine: the service had the rest).

Side by side, the bound: the same router in process (``Router.route`` on the same
database, no HTTP), decisions/s over the same orders: what the HTTP layer, the worker
processes and the client cost.

Target (issue 10): >= 800 recorded decisions/s with p99 <= 50 ms on PostgreSQL with
2 workers, on a 2-core machine.

    python benchmarks/service.py            # 20 s per configuration, 2 client processes
    python benchmarks/service.py --quick    # 4 s per configuration, 1 client process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import uuid
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
PG_URL = os.environ.get("ROUTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCENARIO = ROOT / "scenarios" / "national.yaml"


def orders_for(first: int, n: int) -> list[dict]:
    """Distinct orders of the scenario's stream, without created_at (the service stamps receipt time)."""
    from router.demand import generate_orders
    from router.scenario import load_scenario

    sc = load_scenario(SCENARIO)
    out = []
    for o in generate_orders(sc, n, seed=1 + first // 1_000_000):
        d = o.model_dump(mode="json", exclude={"created_at", "promised_by"})
        d["order_id"] = f"L{first}-{d['order_id']}"
        out.append(d)
    return out


def client(args: tuple[str, int, float, float, int]) -> dict:
    """One load process: keep ``concurrency`` requests in flight for ``seconds`` after ``warmup``."""
    import httpx

    url, concurrency, warmup, seconds, first = args
    orders = orders_for(first, 60_000)
    lat: list[float] = []
    errors = 0
    counter = iter(range(len(orders)))
    t_start = time.perf_counter()
    t_measure = t_start + warmup
    t_end = t_measure + seconds
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            now = time.perf_counter()
            if now >= t_end:
                return
            i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                r = await c.post("/v1/route", json=orders[i])
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            t1 = time.perf_counter()
            if t0 >= t_measure and t1 <= t_end:
                if ok:
                    lat.append((t1 - t0) * 1e3)
                else:
                    errors += 1

    async def main() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as c:
            await asyncio.gather(*(worker(c) for _ in range(concurrency)))

    asyncio.run(main())
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "latencies_ms": lat,
        "errors": errors,
        "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "wall_s": time.perf_counter() - t_start,
    }


def run_config(label: str, database_url: str, workers: int, args, tmp: Path) -> dict:
    import httpx
    from service_server import Server

    from router.ledger import open_ledger

    server = Server(database_url, str(SCENARIO), workers=workers, model="champion", log=tmp / f"{label}.log")
    try:
        with get_context("spawn").Pool(args.clients) as pool:
            parts = pool.map(
                client,
                [(server.url, args.concurrency, args.warmup, args.seconds, (k + 1) * 1_000_000 + workers * 1000)
                 for k in range(args.clients)],  # fmt: skip
            )
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        server.stop()
    lat = np.concatenate([np.asarray(p["latencies_ms"]) for p in parts]) if parts else np.zeros(0)
    led = open_ledger(database_url)
    try:
        recorded = led.count_decisions()
    finally:
        led.close()
    retries = sum(float(x.rsplit(" ", 1)[1]) for x in metrics.splitlines() if x.startswith("router_reserve_conflict_retries_total"))
    cpu = sum(p["cpu_s"] for p in parts)
    wall = max(p["wall_s"] for p in parts)
    cores = os.cpu_count() or 1
    out = {
        "config": label,
        "workers": workers,
        "decisions_per_s": round(len(lat) / args.seconds, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "max_ms": round(float(lat.max()), 1) if len(lat) else None,
        "errors": sum(p["errors"] for p in parts),
        "recorded_in_ledger": recorded,
        "conflict_retries": retries,
        "load_generator_cpu_share": round(cpu / (wall * cores), 3),
    }
    print(
        f"{label:14s} {workers} worker(s): {out['decisions_per_s']:7.1f} decisions/s  p50 {out['p50_ms']} ms  "
        f"p99 {out['p99_ms']} ms  errors {out['errors']}  recorded {recorded}  "
        f"load generator {100 * out['load_generator_cpu_share']:.0f} % of the machine",
        file=sys.stderr,
        flush=True,
    )
    return out


def in_process(database_url: str, n: int) -> dict:
    """The bound: Router.route in this process on the same kind of database, the same stream."""
    from datetime import datetime, timezone

    from router.engine import Router
    from router.scenario import load_scenario

    router = Router(load_scenario(SCENARIO), ledger=database_url)
    orders = orders_for(9_000_000, n + 200)
    lat = []
    try:
        for i, o in enumerate(orders):
            o = dict(o, created_at=datetime.now(timezone.utc).isoformat())
            t0 = time.perf_counter()
            router.route(o)
            if i >= 200:
                lat.append((time.perf_counter() - t0) * 1e3)
    finally:
        router.close()
    a = np.asarray(lat)
    return {"decisions_per_s": round(1e3 / a.mean(), 1), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 s per configuration, 1 client process")
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds per configuration (default 20)")
    ap.add_argument("--warmup", type=float, default=None, help="unmeasured seconds first (default 3)")
    ap.add_argument("--clients", type=int, default=None, help="load processes (default 2)")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight per load process")
    args = ap.parse_args()
    args.seconds = args.seconds or (4.0 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.clients = args.clients or (1 if args.quick else 2)

    import sqlalchemy as sa
    from protocol import machine_facts

    t0 = time.perf_counter()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"router-service-bench-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    schemas = []
    admin = sa.create_engine(PG_URL)

    def pg_url() -> str:
        schema = f"router_bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        return sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)

    results = []
    try:
        results.append(run_config("postgresql", pg_url(), 1, args, tmp))
        results.append(run_config("postgresql", pg_url(), 2, args, tmp))
        results.append(run_config("sqlite", f"sqlite:///{tmp / 'bench.sqlite'}", 1, args, tmp))
        bound_n = 1000 if args.quick else 4000
        bound = {"postgresql": in_process(pg_url(), bound_n), "sqlite": in_process(f"sqlite:///{tmp / 'bound.sqlite'}", bound_n)}
    finally:
        with admin.begin() as conn:
            for s in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{s}" CASCADE'))
        admin.dispose()
    pg2 = next(r for r in results if r["config"] == "postgresql" and r["workers"] == 2)
    for label, b in bound.items():
        print(f"in process     {label}: {b['decisions_per_s']} decisions/s  p50 {b['p50_ms']} ms  p99 {b['p99_ms']} ms",
              file=sys.stderr)  # fmt: skip
    line = {
        "bench": "service",
        "seconds": args.seconds,
        "clients": args.clients,
        "concurrency": args.concurrency,
        "scenario": "national",
        "risk_model": "champion",
        "results": results,
        "in_process_bound": bound,
        "http_vs_in_process_pg_2_workers": round(pg2["decisions_per_s"] / bound["postgresql"]["decisions_per_s"], 2),
        "target": {"decisions_per_s": 800, "p99_ms": 50},
        "target_met": bool(pg2["decisions_per_s"] >= 800 and (pg2["p99_ms"] or 1e9) <= 50),
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "machine": machine_facts(),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
