"""The ``router`` command: demo, route, explain, replay, verify, simulate, strategies.

Tables, progress bars and colours live here only; the core never prints.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import numpy as np
import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from router.demand import generate_orders
from router.domain import Order
from router.engine import DEFAULT_LEDGER_URL, Router
from router.errors import InvalidOrderError, RouterError, pydantic_field_error
from router.scenario import load_scenario
from router.strategies import strategy_names

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Order-routing optimization engine.")
console = Console()
err = Console(stderr=True)

DEMO_STRATEGIES = ("nearest", "cheapest", "tier_rules", "optimizer")


def default_scenario() -> Path:
    """scenarios/national.yaml here, or beside the package source (an editable install)."""
    here = Path("scenarios/national.yaml")
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / "scenarios" / "national.yaml"


class ManualClock:
    """A clock the demo moves to each order's arrival time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _open_existing(url: str):
    """Open a ledger that must already exist (explain, verify): a typo should not create one."""
    from router.ledger import open_ledger

    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            raise RouterError(f"no ledger at {url}: route an order or run `router demo` first")
    return open_ledger(url, create=False)


def _fail(exc: Exception) -> NoReturn:
    """Bad input: one line on stderr (no traceback, no wrapping), exit code 2."""
    err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2)


def read_order_file(path: Path) -> dict:
    """The JSON object in an order file (``-``: standard input); RouterError naming the file otherwise."""
    name = "standard input" if str(path) == "-" else str(path)
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise RouterError(f"cannot read the order {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RouterError(f"cannot read the order {name}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RouterError(
            f"cannot read the order {name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise RouterError(f"cannot read the order {name}: the JSON must be an object, not {type(data).__name__}")
    return data


def run_stream(router: Router, orders, clock: ManualClock, *, strategy: str, progress=None, task=None) -> dict:
    """Route ``orders`` in arrival order, moving the clock and draining pick queues between them."""
    start = router.scenario.start
    last_h = 0.0
    day = 0
    cost = shipments = late = eta = 0.0
    routed = unfulfilled = 0
    decisions = []
    t0 = time.perf_counter()
    for o in orders:
        h = (o.created_at - start).total_seconds() / 3600.0
        if int(h // 24) != day:
            day = int(h // 24)
            router.state.new_day()
        router.state.drain(h - last_h)
        router.state.set_clock_hours(h)
        last_h = h
        clock.now = o.created_at
        d = router.route(o, strategy=strategy)
        decisions.append(d)
        if d.plan is None:
            unfulfilled += 1
        else:
            routed += 1
            cost += d.plan.cost_usd
            shipments += len(d.plan.legs)
            late += d.plan.late_risk
            eta += d.plan.eta_hours
        if progress is not None:
            progress.advance(task)
    secs = time.perf_counter() - t0
    n = max(routed, 1)
    return {
        "strategy": strategy,
        "orders": len(orders),
        "routed": routed,
        "unfulfilled": unfulfilled,
        "cost_per_order_usd": cost / n,
        "shipments_per_order": shipments / n,
        "on_time_estimate": 1.0 - late / n,
        "mean_eta_hours": eta / n,
        "decisions_per_s": len(orders) / secs if secs > 0 else float("inf"),
        "decisions": decisions,
    }


@app.command()
def demo(
    scenario: Annotated[Optional[Path], typer.Option(help="scenario YAML (default: scenarios/national.yaml)")] = None,
    orders: Annotated[int, typer.Option(min=1, help="orders per strategy")] = 2000,
    strategies: Annotated[str, typer.Option(help="comma-separated strategy names")] = ",".join(DEMO_STRATEGIES),
    ledger: Annotated[
        Optional[str],
        typer.Option(help="ledger database URL (default: a new file router-demo-<time>.sqlite here)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the order stream and solvers")] = 7,
) -> None:
    """Route one seeded order stream with each strategy and compare them side by side.

    Every strategy reserves from a stock pool of its own in the ledger, so each
    sees the scenario's initial stock; the decisions of all of them are recorded.
    """
    path = scenario or default_scenario()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if ledger is None:
        ledger = f"sqlite:///router-demo-{run_id}.sqlite"
    try:
        sc = load_scenario(path)
        names = [s.strip() for s in strategies.split(",") if s.strip()]
        for s in names:
            if s not in strategy_names():
                raise RouterError(f"unknown strategy {s!r}; known: {', '.join(strategy_names())}")
    except RouterError as exc:
        _fail(exc)
    # The stream is sampled across the whole horizon so that disruption windows are in it.
    full = generate_orders(sc, seed=seed)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(full), size=min(orders, len(full)), replace=False))
    stream = [full[i] for i in pick]
    console.print(
        f"[bold]{sc.name}[/bold]: {len(sc.nodes)} nodes, {len(sc.regions)} regions, {len(sc.options)} carrier "
        f"services, {len(sc.skus)} SKUs; {len(stream)} orders over {sc.spec.horizon_days:g} days, "
        f"{len(sc.disruptions)} disruptions; ledger {ledger}"
    )
    results = []
    with Progress(
        TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        for name in names:
            clock = ManualClock(sc.start)
            try:
                router = Router(
                    sc, ledger=ledger, strategy=name, seed=seed, clock=clock, stock_pool=f"demo-{run_id}-{name}"
                )
            except RouterError as exc:
                _fail(exc)
            task = progress.add_task(name, total=len(stream))
            results.append(run_stream(router, stream, clock, strategy=name, progress=progress, task=task))
            router.close()

    table = Table(title=f"{len(stream)} orders, same stream for every strategy")
    table.add_column("strategy", no_wrap=True, min_width=10)
    for col in ("cost/order", "ships/order", "on-time est.", "ETA h", "unfilled", "dec/s"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r["strategy"],
            f"${r['cost_per_order_usd']:.2f}",
            f"{r['shipments_per_order']:.3f}",
            f"{100 * r['on_time_estimate']:.1f}%",
            f"{r['mean_eta_hours']:.1f}",
            str(r["unfulfilled"]),
            f"{r['decisions_per_s']:.0f}",
        )
    console.print(table)
    by_name = {r["strategy"]: r for r in results}
    if "optimizer" in by_name and "nearest" in by_name:
        a, b = by_name["optimizer"], by_name["nearest"]
        console.print(
            f"optimizer vs nearest: cost/order {100 * (a['cost_per_order_usd'] / b['cost_per_order_usd'] - 1):+.1f}%, "
            f"on-time est. {100 * (a['on_time_estimate'] - b['on_time_estimate']):+.1f} points"
        )
    # Show one decision where the optimizer chose differently from the nearest node.
    shown = None
    if "optimizer" in by_name and "nearest" in by_name:
        # the one where the optimizer's choice cut the late risk of the nearest node's most
        best_gain = -1.0
        for d_opt, d_near in zip(by_name["optimizer"]["decisions"], by_name["nearest"]["decisions"]):
            if d_opt.plan and d_near.plan and d_opt.rationale["chosen"]["plan"] != d_near.rationale["chosen"]["plan"]:
                gain = d_near.plan.late_risk - d_opt.plan.late_risk
                if gain > best_gain:
                    shown, best_gain = d_opt, gain
    if shown is None:
        shown = results[-1]["decisions"][0]
    console.print(f"\n[bold]One decision[/bold] ({shown.strategy}, order {shown.order_id}, id {shown.decision_id}):")
    console.print(shown.sentence)
    _print_factors(shown.rationale)
    hint = "" if ledger == DEFAULT_LEDGER_URL else f" --ledger {ledger}"
    console.print(f"\nReview it later with: router explain {shown.decision_id}{hint}")


def _print_factors(rationale: dict) -> None:
    if not rationale.get("chosen"):
        return
    table = Table(show_edge=False)
    table.add_column("term")
    table.add_column("unit")
    table.add_column("weight", justify="right")
    plans = [("chosen", rationale["chosen"])] + [(f"#{r['rank']}", r) for r in rationale["runners_up"][:2]]
    for label, p in plans:
        table.add_column(f"{label}: {p['plan']}", justify="right")
    for i, f in enumerate(rationale["chosen"]["factors"]):
        row = [f["term"], f["unit"], f"{f['weight']:g}"]
        for _, p in plans:
            g = p["factors"][i]
            row.append(f"{g['value']:.3f} -> {g['contribution']:.3f}")
        table.add_row(*row)
    table.add_row("total", "usd", "", *[f"{p['score']:.3f}" for _, p in plans])
    console.print(table)
    for e in rationale.get("excluded", [])[:5]:
        console.print(f"  excluded {e['detail']}")


@app.command()
def route(
    order: Annotated[Path, typer.Option(help="order JSON file ('-' for standard input)")],
    scenario: Annotated[Optional[Path], typer.Option(help="scenario YAML")] = None,
    strategy: Annotated[str, typer.Option(help="strategy name")] = "optimizer",
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
    now: Annotated[Optional[str], typer.Option(help="decision time, ISO 8601 (default: the order's created_at)")] = None,
) -> None:
    """Route one order on a scenario's initial state and print the decision as JSON.

    Bad input (an unreadable file, not UTF-8, not JSON, an order that breaks a rule)
    is one line on stderr naming the file, and exit code 2.
    """
    name = "standard input" if str(order) == "-" else str(order)
    try:
        parsed = Order.model_validate(read_order_file(order))
    except ValidationError as exc:
        _fail(pydantic_field_error(exc, InvalidOrderError, source=name))
    except RouterError as exc:
        _fail(exc)
    try:
        at = datetime.fromisoformat(now) if now else parsed.created_at
    except ValueError:
        _fail(RouterError(f"--now {now!r} is not an ISO 8601 time such as 2026-11-02T12:00:00Z"))
    clock = ManualClock(at if at.tzinfo else at.replace(tzinfo=timezone.utc))
    try:
        sc = load_scenario(scenario or default_scenario())
        router = Router(sc, ledger=ledger, strategy=strategy, seed=sc.seed, clock=clock)
        router.state.set_clock_hours(max((clock.now - sc.start).total_seconds() / 3600.0, 0.0))
        try:
            d = router.route(parsed)
        finally:
            router.close()
    except InvalidOrderError as exc:
        _fail(InvalidOrderError(exc.field, exc.reason, source=name))
    except (RouterError, KeyError) as exc:
        _fail(exc)
    out = {
        "decision_id": d.decision_id,
        "order_id": d.order_id,
        "status": d.status,
        "strategy": d.strategy,
        "plan": d.plan.model_dump(mode="json") if d.plan else None,
        "sentence": d.sentence,
    }
    console.print_json(json.dumps(out))


@app.command()
def explain(
    decision_id: str,
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole rationale as JSON")] = False,
) -> None:
    """Show a recorded decision's rationale: sentence, score factors, runners-up, exclusions."""
    try:
        led = _open_existing(ledger)
        rec = led.get_decision(decision_id)
        led.close()
    except RouterError as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps({"decision_id": decision_id, **rec["rationale"]}))
        return
    console.print(
        f"[bold]{rec['order_id']}[/bold] {rec['status']} by {rec['strategy']['name']} "
        f"(requested {rec['strategy']['requested']}) at {rec['created_at']}, "
        f"state v{rec.get('state', {}).get('version', '-')}"
    )
    console.print(rec["rationale"]["sentence"])
    _print_factors(rec["rationale"])


@app.command()
def replay(
    decision_id: str,
    scenario: Annotated[Optional[Path], typer.Option(help="the scenario the decision was made on")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="counterfactual: another strategy on the same inputs")] = None,
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
) -> None:
    """Re-derive a recorded decision from its stored inputs (or run another strategy on them)."""
    from router.engine.replay import replay_record

    try:
        led = _open_existing(ledger)
        try:
            rec = led.get_decision(decision_id)
        finally:
            led.close()
        # Replay only reads: the router keeps no ledger of its own (and touches no stock).
        router = Router(load_scenario(scenario or default_scenario()), ledger=None)
        res = replay_record(router, rec, strategy=strategy)
    except (RouterError, KeyError) as exc:
        _fail(exc)
    console.print(
        f"original: {res.original_plan} (score {res.original_score})\n"
        f"replayed: {res.replayed_plan} (score {res.replayed_score}) with {res.strategy}\n"
        f"{'same decision' if res.matches else 'differs: ' + ', '.join(res.differences)}"
    )
    if strategy is None and not res.matches:
        raise typer.Exit(1)


@app.command()
def verify(ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL) -> None:
    """Recompute the ledger's hash chain; exit 1 if any entry was altered, removed or reordered."""
    try:
        led = _open_existing(ledger)
        rep = led.verify()
        led.close()
    except RouterError as exc:
        _fail(exc)
    if rep.ok:
        console.print(f"ledger ok: {rep.entries_checked} entries, chain intact")
    else:
        console.print(f"[red]ledger tampered[/red] at entry {rep.first_bad_seq}: {rep.reason}")
        raise typer.Exit(1)


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    strategies: Annotated[str, typer.Option(help="comma-separated strategy names")] = ",".join(DEMO_STRATEGIES),
    seeds: Annotated[int, typer.Option(min=1, help="seeds 1..N per strategy (independent replications)")] = 3,
    orders: Annotated[
        Optional[int], typer.Option(min=1, help="only the first N arrivals of each run (default: the whole horizon)")
    ] = None,
    hours: Annotated[
        Optional[float], typer.Option(min=0.001, help="arrivals in the first H hours (default: the scenario's horizon)")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="report folder (default: reports/<scenario>-<UTC timestamp>)")
    ] = None,
    dask: Annotated[
        Optional[str], typer.Option(help="Dask scheduler address, e.g. tcp://host:8786 (default: local processes)")
    ] = None,
    processes: Annotated[Optional[int], typer.Option(min=1, help="local worker processes (default: CPU count)")] = None,
    ledger: Annotated[
        Optional[str], typer.Option(help="ledger URL for --keep-decisions (default: sqlite in the report folder)")
    ] = None,
    keep_decisions: Annotated[
        bool, typer.Option("--keep-decisions", help="record every decision and its outcome in a ledger (slower)")
    ] = False,
) -> None:
    """Simulate strategies on a scenario over several seeds; print them side by side and write a report."""
    from router.simulation.report import SUMMARY_METRICS, format_estimate, summarise, write_report
    from router.simulation.sweep import sweep_jobs

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    try:
        if not names:
            raise RouterError("--strategies names no strategy")
        for s in names:
            if s not in strategy_names():
                raise RouterError(f"unknown strategy {s!r}; known: {', '.join(strategy_names())}")
        sc = load_scenario(scenario)
    except RouterError as exc:
        _fail(exc)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = out or Path("reports") / f"{sc.name}-{stamp}"
    ledger_url = None
    if keep_decisions or ledger is not None:
        folder.mkdir(parents=True, exist_ok=True)
        ledger_url = ledger or f"sqlite:///{(folder / 'decisions.sqlite').resolve()}"
    jobs = sweep_jobs(
        [scenario], names, range(1, seeds + 1), max_orders=orders, horizon_hours=hours, ledger_url=ledger_url
    )
    where = dask or f"{processes or os.cpu_count()} local processes"
    console.print(
        f"[bold]{sc.name}[/bold]: {len(names)} strategies x {seeds} seeds = {len(jobs)} runs on {where}"
        + (f"; decisions kept in {ledger_url}" if ledger_url else "")
    )
    t0 = time.perf_counter()
    results = _run_sweep_with_bar(jobs, dask, processes)
    wall_s = time.perf_counter() - t0
    meta = {
        "executor": dask or f"local, {processes or os.cpu_count()} processes",
        "sweep wall time": f"{wall_s:.1f} s",
        "command": " ".join(
            ["router simulate", str(scenario), f"--strategies {','.join(names)}", f"--seeds {seeds}"]
            + ([f"--orders {orders}"] if orders is not None else [])
            + ([f"--hours {hours:g}"] if hours is not None else [])
        ),
    }
    report = write_report(results, folder, meta=meta)

    summary = summarise(results)
    runs = f"{int(summary['orders'].mean())} orders per run" if len(summary) else ""
    # mean over ± half-width in each cell: ten columns fit an 80-column terminal
    table = Table(
        title=f"{sc.name}: mean ± 95 % CI over {seeds} seed{'s' if seeds > 1 else ''}, {runs}",
        caption="same arrivals and transit draws for every strategy (common random numbers)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("strategy", no_wrap=True)
    short = {"cost/order": "$/order", "ships/order": "ships /order", "unfilled": "unfilled lines"}
    for _, label, _ in SUMMARY_METRICS:
        table.add_column(short.get(label, label), justify="right")
    for _, row in summary.iterrows():
        table.add_row(
            row["strategy"],
            *[format_estimate(row[f"{k}_mean"], row[f"{k}_ci95"], kind, "\n±") for k, _, kind in SUMMARY_METRICS],
        )
    console.print(table)
    _print_targets(results)
    console.print(f"report: {report.parent} ({wall_s:.1f} s)")


def _run_sweep_with_bar(jobs, dask: str | None, processes: int | None) -> list:
    """Run a sweep's jobs with a progress bar; a bad job or executor is one line and exit 2."""
    from router.simulation.sweep import run_sweep

    try:
        with Progress(
            TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            task = bar.add_task("runs", total=len(jobs))
            return run_sweep(
                jobs,
                executor="dask" if dask else "local",
                dask_address=dask,
                processes=processes,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    except (RouterError, ValueError, OSError) as exc:
        _fail(exc)


def _print_targets(results) -> None:
    """With on-time targets: per strategy and segment, the realised rate after warm-up, the price and the verdict."""
    rows = [(r.job.strategy, st) for r in results for st in r.kpis.get("targets", [])]
    if not rows:
        return
    table = Table(title="on-time targets (realised: orders after the first 20 % of the horizon)", box=box.SIMPLE_HEAD)
    for col in ("strategy", "segment", "target", "realised", "final price", "verdict"):
        table.add_column(col, justify="left" if col in ("strategy", "segment", "verdict") else "right")
    groups: dict[tuple[str, str], list[dict]] = {}
    for strategy, st in rows:
        groups.setdefault((strategy, st["segment"]), []).append(st)
    for (strategy, seg), sts in groups.items():
        realised = [s["realised_after_warmup"] for s in sts if s["realised_after_warmup"] is not None]
        verdicts = []
        if any(s["feasible"] is False for s in sts):
            best = [s["best_reachable"] for s in sts if s["feasible"] is False]
            verdicts.append(f"beyond reach (best reachable {100 * sum(best) / len(best):.1f} %)")
        if any(s["capped"] for s in sts):
            verdicts.append("price capped")
        if all(s["slack"] for s in sts):
            verdicts.append("slack (met at the lowest price)")
        table.add_row(
            strategy,
            seg,
            f"{100 * sts[0]['target']:.1f} %",
            f"{100 * sum(realised) / len(realised):.2f} %" if realised else "-",
            f"${sum(s['price_usd'] for s in sts) / len(sts):.2f}",
            "; ".join(verdicts) or "steering",
        )
    console.print(table)


@app.command()
def frontier(
    scenario: Annotated[Path, typer.Option("--scenario", help="scenario YAML file")],
    seeds: Annotated[str, typer.Option(help="seeds, e.g. 1-3 or 101,102")] = "1-3",
    prices: Annotated[
        str, typer.Option(help="fixed late_risk_usd values to sweep (USD for a certain miss, x the tier multiplier)")
    ] = ",".join(f"{p:g}" for p in (0, 6, 12, 18, 36, 72)),
    target: Annotated[
        Optional[list[str]],
        typer.Option(help="a set of on-time targets, e.g. vip=0.98,plus=0.95,standard=0.9 (repeatable)"),
    ] = None,
    baselines: Annotated[str, typer.Option(help="rule strategies drawn as points")] = "nearest,cheapest,tier_rules",
    hours: Annotated[
        Optional[float], typer.Option(min=0.001, help="arrivals in the first H hours (default: the scenario's horizon)")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="report folder (default: reports/<scenario>-frontier-<UTC timestamp>)")
    ] = None,
    dask: Annotated[Optional[str], typer.Option(help="Dask scheduler address (default: local processes)")] = None,
    processes: Annotated[Optional[int], typer.Option(min=1, help="local worker processes (default: CPU count)")] = None,
) -> None:
    """Sweep lateness prices (and targets) on a scenario: cost per order against true on-time, per tier.

    The optimizer runs at each fixed price and under each target set; the rule
    baselines are points on the same axes, all on the same seeded worlds. Writes
    frontier.csv, frontier.png and frontier.md, and prints where the frontier stands
    against nearest.
    """
    from router.simulation.frontier import (
        frontier_jobs,
        frontier_table,
        gaps_at_baseline,
        parse_targets,
        write_frontier,
    )
    from router.simulation.sweep import with_params

    try:
        sc = load_scenario(scenario)
        seed_list = _parse_seeds(seeds)
        try:
            price_list = [float(p) for p in prices.split(",") if p.strip()]
        except ValueError:
            raise RouterError(f"--prices: {prices!r} is not a comma-separated list of numbers") from None
        if any(p < 0 or not math.isfinite(p) for p in price_list):
            raise RouterError("--prices: every price must be a finite number >= 0")
        target_sets = []
        for t in target or []:
            try:
                body = parse_targets(t)
            except ValueError as exc:
                raise RouterError(f"--target: {exc}") from None
            with_params(sc, {"targets": body})  # every tier, region and share checked before anything runs
            target_sets.append(body)
        names = [b.strip() for b in baselines.split(",") if b.strip()]
        for b in names:
            if b not in strategy_names():
                raise RouterError(f"unknown strategy {b!r}; known: {', '.join(strategy_names())}")
        if len(price_list) < 2 and not target_sets:
            raise RouterError("--prices needs at least two prices to draw a frontier (or give --target)")
    except RouterError as exc:
        _fail(exc)
    jobs = frontier_jobs(
        scenario, seed_list, prices=price_list, target_sets=target_sets, baselines=names, horizon_hours=hours
    )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = out or Path("reports") / f"{sc.name}-frontier-{stamp}"
    console.print(f"[bold]{sc.name}[/bold]: {len(jobs)} runs ({len(price_list)} prices, {len(target_sets)} target sets, "
                  f"{len(names)} baselines x {len(seed_list)} seeds)")
    t0 = time.perf_counter()
    results = _run_sweep_with_bar(jobs, dask, processes)
    table = frontier_table(results)
    meta = {
        "seeds": ",".join(map(str, seed_list)),
        "command": " ".join(
            ["router frontier", f"--scenario {scenario}", f"--seeds {seeds}", f"--prices {prices}"]
            + [f"--target {t}" for t in target or []]
            + ([f"--hours {hours:g}"] if hours is not None else [])
        ),
        "sweep wall time": f"{time.perf_counter() - t0:.1f} s",
    }
    png = write_frontier(table, folder, meta=meta)
    tiers = sorted(c[len("on_time_"):] for c in table.columns if c.startswith("on_time_"))
    out_table = Table(title=f"{sc.name}: mean over {len(seed_list)} seeds", box=box.SIMPLE_HEAD)
    for col in ["run", "$/order", "on-time %"] + [f"{t} %" for t in tiers]:
        out_table.add_column(col, justify="left" if col == "run" else "right")
    for label, grp in table.groupby("label", sort=False):
        out_table.add_row(
            str(label), f"{grp['cost_per_order'].mean():.2f}", f"{100 * grp['on_time'].mean():.2f}",
            *[f"{100 * grp[f'on_time_{t}'].mean():.2f}" for t in tiers],
        )
    console.print(out_table)
    if "nearest" in names and len(price_list) >= 2:
        g = gaps_at_baseline(table, "nearest")
        console.print(
            f"against nearest: at its on-time the frontier costs {g['cost_pct']['mean']} % "
            f"{g['cost_pct']['ci95']}; at its cost it is {g['on_time_points']['mean']} points {g['on_time_points']['ci95']} more on time"
        )
    for col in [c for c in table.columns if c.startswith("feasible_")]:
        seg = col[len("feasible_"):]
        bad = table[table[col] == False]  # noqa: E712 - pandas object column of True/False/None
        if len(bad):
            best = bad[f"best_reachable_{seg}"].mean()
            console.print(
                f"[yellow]target for {seg} is beyond reach in {len(bad)} run(s): best reachable on-time "
                f"{100 * best:.1f} % (price capped at ${bad[f'price_{seg}'].max():.2f})[/yellow]"
            )
    console.print(f"report: {png.parent}")


def _parse_seeds(text: str) -> list[int]:
    """``1,2,3`` or ``1-5`` (or both, comma-separated) as a list of ints."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise RouterError(f"--seeds: {part!r} is not a seed or a range like 1-5") from None
    if not out:
        raise RouterError("--seeds names no seed")
    return out


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("estimate")
    for col in ("AUC", "Brier", "ECE", "log-loss", "legs", "late"):
        table.add_column(col, justify="right")
    for name, m in metrics.items():
        table.add_row(
            name, f"{m['auc']:.4f}", f"{m['brier']:.4f}", f"{m['ece']:.4f}", f"{m['log_loss']:.4f}", str(m["n"]),
            str(m["positives"]),
        )
    return table


@app.command("train-risk")
def train_risk(
    scenario: Annotated[list[Path], typer.Option(help="scenario YAML (repeat for several; one network)")],
    days: Annotated[float, typer.Option(min=0.01, help="simulated days per seed")] = 1.25,
    seeds: Annotated[str, typer.Option(help="simulation seeds, e.g. 1,2,3 or 1-3")] = "1,2,3",
    explore: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of orders routed by another strategy or a random candidate")
    ] = 0.3,
    from_ledger: Annotated[
        Optional[str], typer.Option("--from-ledger", help="train a challenger from this ledger's decisions and outcomes")
    ] = None,
    outcomes: Annotated[
        Optional[Path], typer.Option(help="train a challenger from an outcome file (CSV or Parquet, docs/risk.md)")
    ] = None,
    since: Annotated[Optional[str], typer.Option(help="with --from-ledger: decisions at or after this ISO time")] = None,
    name: Annotated[Optional[str], typer.Option(help="version prefix (default: the network's name)")] = None,
    champion: Annotated[
        Optional[bool],
        typer.Option("--champion/--no-champion", help="make the simulated model the champion (default: if none exists)"),
    ] = None,
    processes: Annotated[Optional[int], typer.Option(min=1, help="local worker processes (default: CPU count)")] = None,
) -> None:
    """Train a delay-risk model: from simulations with exploration, or a challenger from a ledger or a file."""
    from router.training.train import command_line
    from router.training.workflow import train_from_file, train_from_ledger, train_from_simulation

    command = command_line()
    try:
        if from_ledger is not None and outcomes is not None:
            raise RouterError("give --from-ledger or --outcomes, not both")
        if (from_ledger is not None or outcomes is not None) and len(scenario) != 1:
            raise RouterError("a challenger is trained for one scenario's network: give one --scenario")
        for path in scenario:
            load_scenario(path)
        with Progress(
            TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            if from_ledger is not None:
                task = bar.add_task("outcomes", total=None)
                out = train_from_ledger(
                    scenario[0], from_ledger, since=since, name=name, command=command,
                    progress=lambda n: bar.update(task, completed=n),
                )
            elif outcomes is not None:
                out = train_from_file(scenario[0], outcomes, name=name, command=command)
            else:
                seed_list = _parse_seeds(seeds)
                task = bar.add_task("simulations", total=len(scenario) * len(seed_list))
                out = train_from_simulation(
                    scenario, days=days, seeds=seed_list, explore=explore, name=name, command=command,
                    make_champion=champion, workers=processes,
                    progress=lambda done, total: bar.update(task, completed=done),
                )
    except (RouterError, ValueError, OSError) as exc:
        _fail(exc)
    console.print(_metrics_table(f"{out['version']}: later held-out window, {out['test_rows']} legs", out["metrics"]))
    if "verdict" in out:
        v = out["verdict"]
        if "champion" in v:
            ch, cl = v["champion"], v["challenger"]
            console.print(
                f"on the most recent {v['rows']} legs: champion {ch['version']} Brier {ch['brier']:.4f} ECE {ch['ece']:.4f}, "
                f"challenger {cl['version']} Brier {cl['brier']:.4f} ECE {cl['ece']:.4f}"
            )
        who = "the challenger" if v.get("winner") == out["version"] else "the champion"
        console.print(f"verdict: {who} {v.get('winner')} ({v.get('rule')})")
    console.print(
        f"model: {out['directory']} ({out['rows']} legs, {out['late_share']:.1%} late)"
        + ("; now the champion" if out["champion"] else "; the champion is unchanged")
    )


@app.command("risk-report")
def risk_report(
    scenario: Annotated[Path, typer.Option(help="scenario YAML the decisions were taken on")],
    ledger: Annotated[str, typer.Option(help="ledger database URL with decisions and outcomes")] = DEFAULT_LEDGER_URL,
    since: Annotated[Optional[str], typer.Option(help="only decisions at or after this ISO time")] = None,
    threshold: Annotated[float, typer.Option(min=0.0, help="calibration drift that calls for retraining")] = 0.02,
) -> None:
    """Compare the champion's calibration and AUC on recorded outcomes with its model card's."""
    from router.training.workflow import risk_report as report

    try:
        _open_existing(ledger).close()
        out = report(scenario, ledger, since=since, threshold=threshold)
    except (RouterError, ValueError, OSError) as exc:
        _fail(exc)
    table = _metrics_table(
        f"{out['version']} on {out['rows']} recorded legs vs its card",
        {"recent outcomes": out["recent"], **({"model card": out["card"]} if out["card"] else {})},
    )
    console.print(table)
    console.print(("[yellow]" if out["retrain"] else "[green]") + escape(out["advice"]))
    if out["retrain"]:
        raise typer.Exit(1)


@app.command()
def strategies() -> None:
    """List the built-in strategies, their rules and fallback chains."""
    from router.strategies import default_strategies

    book = default_strategies()
    for name in book.names():
        s = book.get(name)
        chain = " -> ".join(book.chain(name)[1:]) or "none"
        console.print(f"[bold]{name}[/bold] v{s.version}: {s.rule} (fallback: {chain})")


if __name__ == "__main__":  # pragma: no cover
    app()


@app.command()
def serve(
    scenario: Annotated[Optional[Path], typer.Option(help="scenario file (env ROUTER_SCENARIO)")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="ledger URL (env ROUTER_DATABASE_URL)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="worker processes (env ROUTER_WORKERS)")] = None,
    host: Annotated[Optional[str], typer.Option(help="address (env ROUTER_HOST; default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (env ROUTER_PORT; default 8000)")] = None,
    model: Annotated[Optional[str], typer.Option(help="delay-risk model: champion, none, or a directory")] = None,
    token: Annotated[Optional[str], typer.Option(help="bearer token for write endpoints (env ROUTER_TOKEN)")] = None,
    log_format: Annotated[Optional[str], typer.Option(help="json or console (env ROUTER_LOG_FORMAT)")] = None,
) -> None:
    """Serve the HTTP API (docs/http-api.md) with uvicorn; options override ROUTER_* variables."""
    import os
    import tempfile

    from pydantic import ValidationError

    from router.service.settings import ServiceSettings

    given = {"scenario": scenario, "database_url": database_url, "workers": workers, "host": host, "port": port,
             "model": model, "token": token, "log_format": log_format}  # fmt: skip
    for name, value in given.items():
        if value is not None:
            os.environ[f"ROUTER_{name.upper()}"] = str(value)
    try:
        settings = ServiceSettings()
    except ValidationError as exc:
        from router.errors import ConfigError

        _fail(pydantic_field_error(exc, ConfigError, source="ROUTER_* settings"))
    problems = settings.problems()
    if problems:
        _fail(RouterError("; ".join(problems)))
    from router.ledger import open_ledger

    # the schema is migrated once here, not by every worker at once
    try:
        open_ledger(settings.database_url).close()
    except RouterError as exc:
        _fail(exc)
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="router-metrics-")
    import uvicorn

    err.print(
        f"router serve: {settings.workers} worker(s) on http://{settings.host}:{settings.port}, "
        f"ledger {settings.database_url.split('@')[-1]}, scenario {settings.scenario}",
        soft_wrap=True,
    )
    uvicorn.run(
        "router.service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=False,
    )


db_app = typer.Typer(no_args_is_help=True, help="The ledger database's schema.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str, typer.Option(help="ledger URL (env ROUTER_DATABASE_URL)", envvar="ROUTER_DATABASE_URL")] = DEFAULT_LEDGER_URL,
) -> None:
    """Run the Alembic migrations of the ledger schema up to the current revision."""
    from router.ledger import open_ledger
    from router.ledger.migrate import HEAD_REVISION

    try:
        open_ledger(database_url).close()
    except RouterError as exc:
        _fail(exc)
    console.print(f"ledger schema at revision {HEAD_REVISION}: {database_url.split('@')[-1]}")


@app.command()
def override(
    decision_id: str,
    actor: Annotated[str, typer.Option(help="who overrides")],
    reason: Annotated[str, typer.Option(help="why")],
    rank: Annotated[Optional[int], typer.Option(help="a candidate rank of the decision (1: runner-up)")] = None,
    plan: Annotated[Optional[Path], typer.Option(help="a JSON file with {legs: [...]} (- for stdin)")] = None,
    scenario: Annotated[Optional[Path], typer.Option(help="the scenario the decision was made on")] = None,
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
) -> None:
    """Replace a decision's plan; its reservation moves with it, and the override is recorded."""
    try:
        body = None if plan is None else read_order_file(plan)
        router = Router(load_scenario(scenario or default_scenario()), ledger=_open_existing(ledger))
        try:
            out = router.override(decision_id, actor=actor, reason=reason, plan=body, candidate_rank=rank)
        finally:
            router.close()
    except (RouterError, KeyError) as exc:
        _fail(exc)
    console.print(f"{out['override_id']}: {out['sentence']}", soft_wrap=True)


# ------------------------------------------------------------------ batch re-routing
REROUTE_KPIS = (
    ("score", "score (USD)", "{:,.2f}"),
    ("cost_usd", "cost (USD)", "{:,.2f}"),
    ("shipments_per_order", "shipments/order", "{:.3f}"),
    ("excess_splits", "excess splits", "{:d}"),
    ("past_promise", "past promise", "{:d}"),
    ("rows_over_capacity", "rows over capacity", "{:d}"),
)


def read_backlog_file(path: Path) -> list[str]:
    """Order ids from a file: a JSON list of strings, or one id a line (blank lines and ``#`` comments skipped)."""
    name = "standard input" if str(path) == "-" else str(path)
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise RouterError(f"cannot read the backlog {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RouterError(f"cannot read the backlog {name}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RouterError(
                f"cannot read the backlog {name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        for i, oid in enumerate(data):
            if not isinstance(oid, str) or not oid.strip():
                raise RouterError(f"{name}: backlog[{i}]: an order id must be a non-empty string, got {oid!r}")
        ids = [oid.strip() for oid in data]
    else:
        ids = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not ids:
        raise RouterError(f"{name}: backlog: the file names no order id")
    return ids


def read_events_file(path: Path) -> list:
    """The JSON list of live-state events in a file (or an object ``{"events": [...]}``, the HTTP body)."""
    name = "standard input" if str(path) == "-" else str(path)
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise RouterError(f"cannot read the events {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RouterError(f"cannot read the events {name}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RouterError(
            f"cannot read the events {name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if isinstance(data, dict) and set(data) == {"events"}:
        data = data["events"]
    if not isinstance(data, list):
        raise RouterError(f"cannot read the events {name}: the JSON must be a list of events, not {type(data).__name__}")
    return data


def _apply_cli_events(router: Router, raw: list, source: str) -> int:
    """Apply events to this process's state only: checked first (``events[i].field``), the ledger untouched.

    The ledger's own event log (what ``POST /v1/events`` appended for this pool) is applied
    first, as a service worker would; then the file's events, in order. A stock event in
    the file changes this run's picture of the stock, not the ledger's stock table.
    """
    from router.errors import InvalidEventError
    from router.service.events import EventSync

    sync = EventSync(router)  # reads the log; writes nothing
    try:
        events = sync.check(raw)
    except InvalidEventError as exc:
        raise InvalidEventError(exc.field, exc.reason, source=source) from None
    state = router.state
    sink, state.stock_sink = state.stock_sink, None
    try:
        for i, ev in enumerate(events):
            try:
                state.apply(ev)
            except InvalidEventError as exc:
                raise InvalidEventError(f"events[{i}].{exc.field}", exc.reason, source=source) from None
    finally:
        state.stock_sink = sink
    return sync.seq


@app.command()
def reroute(
    scenario: Annotated[Optional[Path], typer.Option(help="the scenario the orders were routed on")] = None,
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
    backlog: Annotated[
        Optional[Path], typer.Option(help="order ids to re-route, one a line or a JSON list (default: every open order)")
    ] = None,
    filter_node: Annotated[Optional[list[str]], typer.Option(help="only orders with a leg at this node (repeatable)")] = None,
    filter_region: Annotated[Optional[list[str]], typer.Option(help="only orders to this region (repeatable)")] = None,
    filter_tier: Annotated[Optional[list[str]], typer.Option(help="only orders of this tier (repeatable)")] = None,
    events: Annotated[
        Optional[Path], typer.Option(help="a JSON list of live-state events applied before planning, e.g. a closure")
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="write the moves (default: a dry run that changes nothing)")] = False,
    time_limit: Annotated[float, typer.Option(help="solver time limit, seconds")] = 10.0,
    top_k: Annotated[int, typer.Option(help="ranked plans per order besides its current one")] = 6,
    move_cost: Annotated[float, typer.Option(help="what moving an order costs, USD")] = 0.5,
    partitions: Annotated[int, typer.Option(help="> 1: generate columns per partition of destination regions, in parallel")] = 1,
    solve_partitions: Annotated[bool, typer.Option(help="with --partitions: also solve per partition under capacity shares, stitched")] = False,
    backend: Annotated[str, typer.Option(help="where partitions run: local, dask or serial")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Dask scheduler address, e.g. tcp://host:8786")] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(help="processes generating the columns (default: one per core from 4,000 orders on, else 1)"),
    ] = None,
    now: Annotated[
        Optional[str], typer.Option(help="re-route time, ISO 8601 (default: the time of the ledger's latest decision)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole move plan as JSON")] = False,
) -> None:
    """Re-optimise open orders jointly (after a closure, say): a dry run unless --apply.

    The backlog's reservations are given back on a snapshot, every order gets its ranked
    plans, its current plan and a keep column, and one model under shared stock, lane
    and pick capacities picks a plan per order. With --apply the moves are written as
    one new decision each, superseding the old, all in one ledger transaction.
    The process starts from the scenario's state with the ledger's stock and event log;
    --events adds events for this run only (the ledger's are not written). It plans at
    --now, by default the time of the ledger's latest decision.
    Bad input is one line naming the field and exit code 2; nothing changes.
    """
    from router.distributed import BACKENDS
    from router.engine.reroute import RerouteOptions

    try:
        opts = RerouteOptions(top_k=top_k, move_cost_usd=move_cost, time_limit_s=time_limit, partitions=partitions,
                              solve_partitions=solve_partitions, workers=workers)
        opts.check()
        if backend not in BACKENDS:
            raise RouterError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        at = None
        if now is not None:
            try:
                at = datetime.fromisoformat(now)
            except ValueError:
                raise RouterError(f"--now {now!r} is not an ISO 8601 time such as 2026-11-02T12:00:00Z") from None
            at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
        ids = None if backlog is None else read_backlog_file(backlog)
        raw_events = None if events is None else read_events_file(events)
        flt = {
            k: v for k, v in (("nodes", filter_node), ("regions", filter_region), ("tiers", filter_tier)) if v
        } or None
        sc = load_scenario(scenario or default_scenario())
        clock = ManualClock(at or sc.start)
        router = Router(sc, ledger=_open_existing(ledger), seed=sc.seed, clock=clock)
    except (RouterError, ValueError, OSError) as exc:
        _fail(exc)
    try:
        try:
            if raw_events is not None:
                _apply_cli_events(router, raw_events, str(events))
            else:
                from router.service.events import EventSync

                EventSync(router)  # the ledger's event log, as a service worker sees it
            open_orders, skipped = router.open_backlog(ids, filter=flt)
            if at is None:
                clock.now = _ledger_now(router, open_orders) or clock.now
            router.state.set_clock_hours(max((clock.now - sc.start).total_seconds() / 3600.0, 0.0))
            plan = _run_reroute(router, open_orders, opts, apply, partitions, backend, address, show_bar=not as_json)
            plan.skipped[:0] = skipped
        finally:
            router.close()
    except (RouterError, ValueError, OSError) as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(plan.to_json(), default=str))
        return
    _print_reroute(plan)


def _ledger_now(router: Router, backlog) -> datetime | None:
    """The ledger's time: its latest decision's, or the latest order's of the backlog when that is later."""
    times = [oo.order.created_at for oo in backlog]
    assert router.ledger is not None
    latest = router.ledger.recent_decisions(1)
    if latest:
        times.append(datetime.fromisoformat(latest[0]["created_at"]))
    return max(times) if times else None


def _run_reroute(router: Router, backlog, opts, apply: bool, partitions: int, backend: str, address, *, show_bar: bool):
    from functools import partial

    from rich.progress import TaskID

    from router.distributed import ordered_map

    with Progress(
        TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not show_bar,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        mapper = None
        if partitions > 1:
            mapper = partial(
                ordered_map, backend=backend, address=address,  # type: ignore[arg-type]  # checked against BACKENDS
                progress=lambda done, total: progress("partitions", done, total),
            )
        return router.reroute(
            backlog=backlog, apply=apply, time_limit_s=opts.time_limit_s, options=opts, progress=progress, mapper=mapper
        )


def _print_reroute(plan) -> None:
    s = plan.summary()
    gap = s["gap"]
    solver = plan.solver
    table = Table(title=f"re-route job {plan.job_id} at {plan.created_at.isoformat(timespec='seconds')}", box=box.SIMPLE_HEAD)
    for col in ("job", "", "KPI", "before", "after"):
        table.add_column(col, justify="left" if col in ("job", "KPI") else "right")
    job = [
        ("orders", str(s["orders"])),
        ("moved", str(s["moved"])),
        ("unplaced", str(s["unplaced"])),
        ("skipped", str(s["skipped"])),
        ("objective", f"{s['objective']:,.2f}"),
        ("bound", f"{s['bound']:,.2f}"),
        ("gap", "-" if gap is None or not math.isfinite(gap) else f"{100 * gap:.3f} %"),
        ("solver", f"{solver.get('method')}, {solver.get('status')}"),
        ("seconds", f"{plan.timings.get('total_s', 0):.2f}"),
    ]
    kpis = []
    for key, label, fmt in REROUTE_KPIS:
        b, a = plan.kpis_before.get(key), plan.kpis_after.get(key)
        kpis.append((label, "-" if b is None else fmt.format(b), "-" if a is None else fmt.format(a)))
    for i in range(max(len(job), len(kpis))):
        left = job[i] if i < len(job) else ("", "")
        right = kpis[i] if i < len(kpis) else ("", "", "")
        table.add_row(*left, *right)
    console.print(table)
    if plan.moves:
        console.print(f"[bold]moves[/bold] ({len(plan.moves)}):")
        for m in plan.moves[:10]:
            console.print(f"  {m.order_id}: {escape(m.sentence)}", soft_wrap=True)
        if len(plan.moves) > 10:
            console.print(f"  ... and {len(plan.moves) - 10} more (--json lists every move)")
    if plan.unplaced:
        console.print(f"[bold]unplaced[/bold] ({len(plan.unplaced)}):")
        for u in plan.unplaced[:20]:
            rows = f" [rows at capacity: {', '.join(u['rows'])}]" if u.get("rows") else ""
            console.print(f"  {u['order_id']}: {escape(u['reason'] + rows)}", soft_wrap=True)
        if len(plan.unplaced) > 20:
            console.print(f"  ... and {len(plan.unplaced) - 20} more")
    if plan.skipped:
        console.print(f"[bold]skipped[/bold] ({len(plan.skipped)}):")
        for u in plan.skipped[:20]:
            console.print(f"  {u['order_id']}: {escape(u['reason'])}", soft_wrap=True)
        if len(plan.skipped) > 20:
            console.print(f"  ... and {len(plan.skipped) - 20} more")
    if plan.applied:
        console.print(f"[green]applied:[/green] {len(plan.moves)} new decisions (job {plan.job_id})")
    else:
        console.print(
            "dry run: nothing changed" + (f" (--apply writes the {len(plan.moves)} moves)" if plan.moves else "")
        )


@app.command()
def release(
    order_id: str,
    shipped: Annotated[bool, typer.Option("--shipped", help="mark it shipped (default: released to picking)")] = False,
    scenario: Annotated[Optional[Path], typer.Option(help="the scenario the order was routed on")] = None,
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
) -> None:
    """Mark a routed order released to picking (or shipped): re-routing no longer moves it."""
    state = "shipped" if shipped else "released"
    try:
        router = Router(load_scenario(scenario or default_scenario()), ledger=_open_existing(ledger), risk_model=None)
        try:
            router.release(order_id, state=state)
        finally:
            router.close()
    except (RouterError, KeyError) as exc:
        _fail(exc)
    console.print(f"{order_id}: {state} (re-routing no longer moves it)")


# -- strategy files (docs/strategies.md) -------------------------------------------------------

strategy_app = typer.Typer(
    no_args_is_help=True,
    help="Strategy files: validate, try (sandbox); versions and rollout: mode, status (docs/strategies.md).",
)
app.add_typer(strategy_app, name="strategy")


@strategy_app.command("validate")
def strategy_validate(
    file: Annotated[Path, typer.Argument(help="strategy YAML file")],
    scenario: Annotated[
        Optional[Path], typer.Option(help="scenario the file's names are checked against (default: national)")
    ] = None,
) -> None:
    """Check a strategy file: print every problem as FILE:LINE: field: reason (exit 2), or its version (exit 0)."""
    from router.errors import StrategyFileError
    from router.strategy_spec import load_strategy_file, spec_version

    try:
        sc = load_scenario(scenario or default_scenario())
    except RouterError as exc:
        _fail(exc)
    try:
        spec = load_strategy_file(file, sc)
    except StrategyFileError as exc:
        for line, field, reason in exc.problems:
            typer.echo(f"{file}:{line}: {field}: {reason}")
        raise typer.Exit(2) from None
    typer.echo(f"ok: {spec.name} version {spec_version(spec)[:12]}")


# -- strategy versions and rollout (docs/strategies.md, "Versions and rollout") ----------------------


def _mode_rows(led) -> dict[tuple[str, str], dict]:
    """The latest mode record of every strategy version in the ledger's mode log."""
    latest: dict[tuple[str, str], dict] = {}
    for row in led.modes_since(0):
        latest[(row["name"], row["version"])] = row
    return latest


@strategy_app.command("mode")
def strategy_mode(
    name: Annotated[str, typer.Argument(help="strategy name")],
    mode: Annotated[str, typer.Option(help="off | shadow | canary | on")],
    actor: Annotated[str, typer.Option(help="who makes the change")],
    reason: Annotated[str, typer.Option(help="why")],
    version: Annotated[Optional[str], typer.Option(help="version (content hash) the change applies to")] = None,
    percent: Annotated[float, typer.Option(help="canary share of the control's orders, 0-100")] = 0.0,
    file: Annotated[
        Optional[Path], typer.Option(help="strategy file: store its version (author = actor) and use it")
    ] = None,
    scenario: Annotated[
        Optional[Path], typer.Option(help="scenario the file is checked against (default: national)")
    ] = None,
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
) -> None:
    """Record a rollout mode change of a strategy version; every router on the ledger picks it up."""
    from router.errors import StrategyFileError

    if mode not in ("off", "shadow", "canary", "on"):
        _fail(RouterError(f"--mode must be off, shadow, canary or on, got {mode!r}"))
    if mode == "canary" and not 0.0 < percent <= 100.0:
        _fail(RouterError(f"--percent must be within (0, 100] for a canary, got {percent}"))
    try:
        led = _open_existing(ledger)
    except RouterError as exc:
        _fail(exc)
    try:
        now = datetime.now(timezone.utc).isoformat()
        if file is not None:
            from router.strategy_spec import load_strategy_file, spec_version

            try:
                spec = load_strategy_file(file, load_scenario(scenario or default_scenario()))
            except StrategyFileError as exc:
                for line, fld, why in exc.problems:
                    typer.echo(f"{file}:{line}: {fld}: {why}")
                raise typer.Exit(2) from None
            if spec.name != name:
                raise RouterError(f"{file} declares strategy {spec.name!r}, not {name!r}")
            file_version = spec_version(spec)
            if version is not None and version != file_version:
                raise RouterError(f"{file} is version {file_version[:12]}, not {version}")
            version = file_version
            body = spec.model_dump(mode="json")
            if led.put_strategy_version(name, version, body, author=actor, reason=reason, created_at=now):
                console.print(f"stored {name} version {version[:12]}")
        if version is None:
            raise RouterError("give --version HASH (or --file FILE)")
        stored = led.get_strategy_version(version)
        builtin = name in strategy_names() and version == "1"
        if mode != "off" and not builtin and (stored is None or stored["name"] != name):
            raise RouterError(
                f"strategy {name!r} version {version!r} is not stored in the ledger: give --file FILE to store it"
            )
        row = led.append_mode(
            name, version, mode, canary_percent=percent if mode == "canary" else 0.0, actor=actor, reason=reason,
            created_at=now,
        )
    except RouterError as exc:
        _fail(exc)
    finally:
        led.close()
    share = f" {row['canary_percent']:g} %" if mode == "canary" else ""
    console.print(
        f"{name} {version[:12]}: {mode}{share} (mode change {row['seq']}, by {actor}: {reason})", soft_wrap=True
    )


@strategy_app.command("status")
def strategy_status(
    ledger: Annotated[str, typer.Option(help="ledger database URL")] = DEFAULT_LEDGER_URL,
    last: Annotated[int, typer.Option(help="decisions read for health (newest first)")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Modes, versions, guard trips, breaker states and health per strategy version and arm, from the ledger."""
    from router.rollout import health_from_records

    try:
        led = _open_existing(ledger)
    except RouterError as exc:
        _fail(exc)
    try:
        modes = _mode_rows(led)
        versions = led.list_strategy_versions()
        records = led.recent_decisions(limit=last)
        ids = {r["decision_id"] for r in records}
        outcomes: dict[str, bool] = {}
        for rec, body in led.iter_outcomes():
            if rec["decision_id"] in ids and "on_time" in body:
                outcomes[rec["decision_id"]] = bool(body["on_time"])
        trips = [r for r in led.modes_since(0) if r.get("guard")]
    except RouterError as exc:
        _fail(exc)
    finally:
        led.close()
    health = health_from_records(records, outcomes)
    if as_json:
        typer.echo(json.dumps({"modes": list(modes.values()), "versions": versions, "health": health, "trips": trips}))
        return
    t = Table(title="strategy modes (latest change per version)", box=box.SIMPLE)
    for col in ("strategy", "version", "mode", "canary %", "by", "reason", "at"):
        t.add_column(col)
    for (name, version), row in sorted(modes.items()):
        t.add_row(name, version[:12], row["mode"], f"{row['canary_percent']:g}" if row["mode"] == "canary" else "",
                  row["actor"], row["reason"], row["created_at"][:19])
    console.print(t if modes else "no mode changes recorded: every router runs its own strategies")
    if versions:
        v = Table(title="stored strategy versions", box=box.SIMPLE)
        for col in ("strategy", "version", "author", "reason", "stored at"):
            v.add_column(col)
        for row in versions:
            v.add_row(row["name"], row["version"][:12], row["author"], row["reason"], row["created_at"][:19])
        console.print(v)
    h = Table(title=f"health over the last {len(records)} decisions", box=box.SIMPLE)
    for col in ("strategy", "version", "arm", "decisions", "errors", "fallbacks", "p99 ms", "on-time", "breaker"):
        h.add_column(col)
    for row in health:
        ot = "" if row["on_time_rate"] is None else f"{row['on_time_rate']:.1%} of {row['outcomes']}"
        h.add_row(row["strategy"], row["version"][:12], row["arm"], str(row["decisions"]), str(row["errors"]),
                  str(row["fallbacks"]), "" if row["p99_ms"] is None else f"{row['p99_ms']:.2f}", ot, row["breaker"])
    console.print(h)
    for r in trips:
        console.print(f"[yellow]guard {r['guard']['guard']}[/yellow] at {r['created_at'][:19]}: {r['reason']}",
                      soft_wrap=True)


# -- strategy sandbox (docs/strategies.md, "Sandbox") ------------------------------------------------


@strategy_app.command("try")
def strategy_try(
    file: Annotated[Path, typer.Argument(help="candidate strategy YAML file")],
    scenario: Annotated[
        Optional[Path], typer.Option(help="scenario to simulate (with --from-ledger: the decisions' scenario)")
    ] = None,
    seeds: Annotated[str, typer.Option(help="seeds, e.g. 1-5 or 1,4,7: one seeded world each")] = "1-3",
    hours: Annotated[float, typer.Option(min=0.001, help="arrivals in the first H hours of each world")] = 24.0,
    orders: Annotated[
        Optional[int], typer.Option(min=1, help="at most the first N arrivals per world (default 1000)")
    ] = 1000,
    all_orders: Annotated[
        bool, typer.Option("--all-orders", help="every arrival of the H hours (no --orders cap)")
    ] = False,
    against: Annotated[str, typer.Option(help="the current strategy to compare with")] = "optimizer",
    from_ledger: Annotated[
        bool, typer.Option("--from-ledger", help="replay recorded decisions under the candidate instead of simulating")
    ] = False,
    last: Annotated[int, typer.Option(min=1, help="with --from-ledger: the newest N decisions")] = 500,
    ledger: Annotated[str, typer.Option(help="with --from-ledger: ledger database URL")] = DEFAULT_LEDGER_URL,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON instead of a table")] = False,
) -> None:
    """Try a strategy file before release: simulated side by side with the current one, or replayed on the ledger."""
    from router.errors import StrategyFileError
    from router.network import build_network
    from router.simulation.sandbox import parse_seeds, try_in_simulation, try_on_records
    from router.strategy_spec import compile_strategy, load_strategy_file

    try:
        sc = load_scenario(scenario or default_scenario())
        seed_list = parse_seeds(seeds)
        if against not in strategy_names():
            raise RouterError(f"unknown strategy {against!r} to try against; known: {', '.join(strategy_names())}")
    except RouterError as exc:
        _fail(exc)
    try:
        spec = load_strategy_file(file, sc)
    except StrategyFileError as exc:
        for line, fld, why in exc.problems:
            typer.echo(f"{file}:{line}: {fld}: {why}")
        raise typer.Exit(2) from None
    candidate = compile_strategy(spec, sc, build_network(sc))
    if from_ledger:
        try:
            led = _open_existing(ledger)
            try:
                records = led.recent_decisions(limit=last)
            finally:
                led.close()
            rep = try_on_records(sc, candidate, records)
        except RouterError as exc:
            _fail(exc)
        if as_json:
            typer.echo(json.dumps(rep))
        else:
            _print_replay_try(rep)
        if not rep["replayed"]:
            raise typer.Exit(1)  # nothing to compare: say so in the exit code too
        return
    cap = None if all_orders else orders
    label = f"{sc.name}: {len(seed_list)} seeded worlds x {hours:g} h" + (f", first {cap} orders" if cap else "")
    try:
        if as_json:
            res = try_in_simulation(sc, candidate, against=against, seeds=seed_list, horizon_hours=hours, max_orders=cap)
        else:
            console.print(f"[bold]{label}[/bold]: {spec.name} (candidate) against {against}, same worlds")
            with Progress(
                TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=True,
            ) as bar:
                task = bar.add_task("runs", total=2 * len(seed_list))
                res = try_in_simulation(
                    sc, candidate, against=against, seeds=seed_list, horizon_hours=hours, max_orders=cap,
                    progress=lambda done, total: bar.update(task, completed=done),
                )
    except RouterError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(res))
        return
    _print_sim_try(res)


def _ci_cell(iv: dict, kind: str, signed: bool = False, sep: str = "\n± ") -> str:
    """``mean ± half-width`` of a 95 % interval in the unit of ``kind`` (a signed difference of rates: points)."""
    mean, (lo, hi) = iv["mean"], iv["ci95"]
    if mean is None:
        return "-"

    def f(x: float, sign: bool, unit: bool) -> str:
        s = "+" if sign and x > 0 else ""
        if kind == "rate":
            return f"{s}{100 * x:.1f}" + ("%" if unit else "")
        if kind == "usd":
            return f"{s}${x:.2f}" if unit else f"{s}{x:.2f}"
        return f"{s}{x:.3f}"

    body = f(mean, signed, not signed)
    if lo is None or hi is None:
        return body
    return f"{body}{sep}{f((hi - lo) / 2.0, False, False)}"


def _print_sim_try(res: dict) -> None:
    cur, cand = res["current"], res["candidate"]
    n = len(res["seeds"])
    table = Table(
        title=f"{res['scenario']}: mean ± 95 % CI over {n} seed{'s' if n > 1 else ''}, "
        f"{cur['orders_per_run']:.0f} orders per world",
        caption="difference: candidate - current, paired per seed (rates in points);\n"
        "a winner only where the difference's 95 % CI excludes 0",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("metric", no_wrap=True)
    table.add_column(cur["label"], justify="right")
    table.add_column(cand["label"], justify="right")
    table.add_column("difference", justify="right")
    table.add_column("winner")
    for m in res["metrics"]:
        table.add_row(
            m["label"], _ci_cell(m["current"], m["kind"]), _ci_cell(m["candidate"], m["kind"]),
            _ci_cell(m["difference"], m["kind"], signed=True), m["difference"]["winner"],
        )
    console.print(table)
    own = {k: v - cand["fallback_legs_by_node"].get(k, 0) for k, v in cand["legs_by_node"].items()}
    moved = [
        f"{nid} {cur['legs_by_node'][nid]}->{cand['legs_by_node'][nid]}"
        for nid in cur["legs_by_node"]
        if cur["legs_by_node"][nid] != cand["legs_by_node"][nid]
    ]
    console.print(
        f"legs per node, all seeds ({cur['label']} -> {cand['label']}): " + (", ".join(moved) or "unchanged"),
        soft_wrap=True,
    )
    unused = [nid for nid, v in own.items() if v == 0 and cur["legs_by_node"].get(nid, 0) > 0]
    if unused:
        console.print(f"nodes the candidate itself never shipped from (its fallbacks aside): {', '.join(unused)}")
    console.print(f"candidate version {cand['version'][:12]}")


def _print_replay_try(rep: dict) -> None:
    if not rep["replayed"]:
        console.print(f"no decision replayed of {rep['decisions']} read ({rep['skipped']} skipped)")
        for why in rep["skip_reasons"]:
            console.print(f"  skipped {why}", soft_wrap=True)
        return
    by = ", ".join(f"{k} {v}" for k, v in sorted(rep["recorded_by"].items()))
    console.print(
        f"[bold]{rep['candidate']}[/bold] {rep['version'][:12]} replayed on {rep['replayed']} recorded decisions "
        f"(recorded by {by}; {rep['skipped']} skipped)"
    )
    table = Table(box=box.SIMPLE_HEAD, caption="candidate - recorded, per decision with a plan on both sides")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("agreement (same plan)", f"{rep['agreement']:.1%} ({rep['same_plan']} of {rep['replayed']})")
    table.add_row("cost delta (USD), mean ± 95 % CI", _ci_cell(rep["cost_delta"], "usd", signed=True, sep=" ± "))
    table.add_row("late-risk delta, mean ± 95 % CI", _ci_cell(rep["late_risk_delta"], "ratio", signed=True, sep=" ± "))
    table.add_row("a plan only as recorded / only by the candidate",
                  f"{rep['only_recorded_planned']} / {rep['only_candidate_planned']}")
    console.print(table)
    def plan(label: str | None, cost: float | None, risk: float | None) -> str:
        return "no plan" if label is None else f"{label} (${cost:.2f}, late risk {risk:.3f})"

    if rep["disagreements"]:
        console.print(f"first {len(rep['disagreements'])} disagreements (recorded -> candidate):")
    for d in rep["disagreements"]:
        console.print(
            f"  {d['order_id']} (decision {d['decision_id'][:12]}, {d['recorded_strategy']}): "
            f"{plan(d['recorded_plan'], d['recorded_cost_usd'], d['recorded_late_risk'])} -> "
            f"{plan(d['candidate_plan'], d['candidate_cost_usd'], d['candidate_late_risk'])}",
            soft_wrap=True,
        )
    for why in rep["skip_reasons"]:
        console.print(f"skipped {why}", soft_wrap=True)
