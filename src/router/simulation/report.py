"""Sweep reports: strategies side by side with confidence intervals across seeds, CSV and plots.

:func:`summarise` turns sweep results into one row per (scenario, strategy): the
mean of each KPI across seeds and the half-width of its 95 % confidence
interval. The interval is Student's t: ``t(0.975, n - 1) * s / sqrt(n)`` with
``s`` the sample standard deviation (``ddof=1``) of the ``n`` per-seed values.
Seeds are independent replications of the same world, so the per-seed KPIs are
i.i.d. draws and the t interval is the textbook choice for few replications
(Law & Kelton, *Simulation Modeling and Analysis*, sec. 9.4). With one seed
there is no interval (NaN, shown as no "±").

Because every strategy sees the same arrivals and transit draws (common random
numbers), differences between strategies are sharper than these per-strategy
intervals suggest: a paired comparison on the per-seed values in ``kpis.csv``
has a narrower interval.

:func:`write_report` writes a folder: ``report.md``, ``kpis.csv`` (one row per
run), ``summary.csv``, ``tiers.csv`` and four PNG plots. Plots use matplotlib's
object API on Agg canvases (no pyplot, no global backend switch), so a report can
be written from any thread or a headless machine.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from router.simulation.sweep import LATENESS_QUANTILES, SweepResult

__all__ = [
    "PLOTS",
    "SUMMARY_METRICS",
    "confidence_interval",
    "format_estimate",
    "kpis_table",
    "machine_facts",
    "summarise",
    "tier_summary",
    "write_report",
]

#: The KPIs of the side-by-side table: (key, column label, kind). ``kind`` sets the
#: format: "rate" as a percentage, "usd" in dollars, "count" and "number" plain.
#: The keys are those of ``kpis(...)["overall"]``, except ``decisions_per_s``
#: (``kpis(...)["timing"]``).
SUMMARY_METRICS: tuple[tuple[str, str, str], ...] = (
    ("on_time_rate", "on-time", "rate"),
    ("cost_per_order_usd", "cost/order", "usd"),
    ("shipments_per_order", "ships/order", "ratio"),
    ("mean_delivery_hours", "mean h", "hours"),
    ("p95_delivery_hours", "p95 h", "hours"),
    ("late_orders", "late", "count"),
    ("unfulfilled_lines", "unfilled", "count"),
    ("decisions_per_s", "dec/s", "speed"),
)

#: The plot files of a report folder, and what each shows.
PLOTS: dict[str, str] = {
    "on_time_and_cost.png": "on-time rate and cost per order per strategy (mean, 95 % CI error bars)",
    "on_time_by_tier.png": "on-time rate by customer tier per strategy (mean, 95 % CI error bars)",
    "node_utilisation.png": "picks per node per hour / pick capacity over time, per strategy (mean over seeds)",
    "lateness.png": "ECDF of delivered - promised hours per strategy (quantiles averaged over seeds)",
}


# ---------------------------------------------------------------------------- statistics


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided Student-t confidence interval.

    Missing values (None, NaN) are left out. Half-width NaN with fewer than two
    values; both NaN with none.

    >>> m, h = confidence_interval([0.9, 0.8, 1.0])
    >>> round(m, 4), round(h, 4)
    (0.9, 0.2484)
    """
    x = np.array([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan
    t = float(stats.t.ppf(0.5 + level / 2.0, n - 1))
    return mean, t * float(x.std(ddof=1)) / math.sqrt(n)


def _metric(r: SweepResult, key: str) -> float:
    if key == "decisions_per_s":
        v = r.kpis.get("timing", {}).get(key)
    else:
        v = r.kpis["overall"].get(key)
    return math.nan if v is None else float(v)


def _groups(results: Sequence[SweepResult]) -> dict[tuple[str, str], list[SweepResult]]:
    """Results by (scenario, strategy), in order of first appearance."""
    out: dict[tuple[str, str], list[SweepResult]] = {}
    for r in results:
        out.setdefault((r.scenario, r.strategy), []).append(r)
    return out


def summarise(results: Sequence[SweepResult]) -> pd.DataFrame:
    """One row per (scenario, strategy): mean across seeds and 95 % CI half-width of each KPI.

    Columns: ``scenario``, ``strategy``, ``seeds``, ``orders`` (mean per run), then
    ``<kpi>_mean`` and ``<kpi>_ci95`` for each of :data:`SUMMARY_METRICS` (the
    half-width; NaN with one seed). Rows keep the order in which the strategies
    first appear in ``results``.
    """
    rows = []
    for (scenario, strategy), group in _groups(results).items():
        row: dict = {
            "scenario": scenario,
            "strategy": strategy,
            "seeds": len(group),
            "orders": float(np.mean([g.kpis["overall"]["orders"] for g in group])),
        }
        for key, _, _ in SUMMARY_METRICS:
            mean, half = confidence_interval([_metric(g, key) for g in group])
            row[f"{key}_mean"] = mean
            row[f"{key}_ci95"] = half
        rows.append(row)
    return pd.DataFrame(rows)


def tier_summary(results: Sequence[SweepResult]) -> pd.DataFrame:
    """One row per (scenario, strategy, tier): orders per run, on-time rate mean and CI half-width."""
    rows = []
    for (scenario, strategy), group in _groups(results).items():
        tiers = list(dict.fromkeys(t for g in group for t in g.kpis["by_tier"]))
        for tier in tiers:
            parts = [g.kpis["by_tier"].get(tier) for g in group]
            mean, half = confidence_interval([p["on_time_rate"] if p else None for p in parts])  # type: ignore[misc]
            rows.append(
                {
                    "scenario": scenario,
                    "strategy": strategy,
                    "tier": tier,
                    "seeds": len(group),
                    "orders": float(np.mean([p["orders"] if p else 0 for p in parts])),
                    "on_time_rate_mean": mean,
                    "on_time_rate_ci95": half,
                }
            )
    return pd.DataFrame(rows)


def kpis_table(results: Sequence[SweepResult]) -> pd.DataFrame:
    """One row per run: the job, every overall KPI, the timings and the run's fingerprint."""
    rows = []
    for r in results:
        t = r.kpis.get("timing", {})
        rows.append(
            {
                "scenario": r.scenario,
                "scenario_file": r.job.scenario,
                "strategy": r.strategy,
                "seed": r.seed,
                "max_orders": r.job.max_orders,
                "horizon_hours": r.kpis["horizon_hours"],
                **r.kpis["overall"],
                "decisions_per_s": t.get("decisions_per_s"),
                "orders_per_s": t.get("orders_per_s"),
                "routing_s": t.get("routing_s"),
                "total_s": t.get("total_s"),
                "fingerprint": r.fingerprint,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- formatting


def format_estimate(mean: float, half: float, kind: str, sep: str = " ± ") -> str:
    """``mean ± half`` in the unit of ``kind`` (see :data:`SUMMARY_METRICS`); no ``±`` when half is NaN.

    ``sep`` goes between the two (``"\\n± "`` stacks them in a narrow table cell).
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    has_ci = half is not None and not math.isnan(half)
    if kind == "rate":
        body, pm = f"{100 * mean:.1f}%", f"{100 * half:.1f}" if has_ci else ""
    elif kind == "usd":
        body, pm = f"${mean:.2f}", f"{half:.2f}" if has_ci else ""
    elif kind == "ratio":
        body, pm = f"{mean:.3f}", f"{half:.3f}" if has_ci else ""
    elif kind == "hours" or kind == "count":
        body, pm = f"{mean:.1f}", f"{half:.1f}" if has_ci else ""
    else:  # speed: a wall-clock figure, shown whole
        body, pm = f"{mean:,.0f}", f"{half:,.0f}" if has_ci else ""
    return f"{body}{sep}{pm}" if has_ci else body


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- machine


def machine_facts() -> dict[str, str]:
    """Where the sweep's driver ran: CPU, cores, memory, OS, Python and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {"cpu": cpu, "logical cores": str(os.cpu_count())}
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        facts["memory"] = f"{mem / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    facts["os"] = platform.platform()
    facts["python"] = sys.version.split()[0]
    for pkg in ("router", "numpy", "pandas", "ortools"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            facts[pkg] = metadata.version(pkg)
    return facts


# ---------------------------------------------------------------------------- plots


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)


def _yerr(half: Sequence[float], mean: Sequence[float] | None = None, top: float = 100.0) -> np.ndarray:
    """Error bar lengths; with ``mean``, clipped to [0, top] (a rate's interval can overshoot 0 % or 100 %)."""
    h = np.nan_to_num(np.asarray(half, dtype=float), nan=0.0)
    if mean is None:
        return h
    m = np.nan_to_num(np.asarray(mean, dtype=float), nan=0.0)
    return np.vstack([np.minimum(h, m), np.minimum(h, np.maximum(top - m, 0.0))])


def _strategies(results: Sequence[SweepResult]) -> list[str]:
    return list(dict.fromkeys(r.strategy for r in results))


def _scenarios(results: Sequence[SweepResult]) -> list[str]:
    return list(dict.fromkeys(r.scenario for r in results))


def _plot_on_time_and_cost(summary: pd.DataFrame, strategies: list[str], scenarios: list[str], path: Path) -> None:
    fig = Figure(figsize=(max(7.0, 1.7 * len(strategies) * 2), 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    x = np.arange(len(strategies))
    width = 0.8 / len(scenarios)
    for ax, key, label, scale in (
        (axes[0], "on_time_rate", "on-time rate (%)", 100.0),
        (axes[1], "cost_per_order_usd", "cost per order (USD)", 1.0),
    ):
        for s, scenario in enumerate(scenarios):
            rows = summary[summary["scenario"] == scenario].set_index("strategy").reindex(strategies)
            mean = scale * rows[f"{key}_mean"].to_numpy(dtype=float)
            half = scale * rows[f"{key}_ci95"].to_numpy(dtype=float)
            bars = ax.bar(
                x + (s - (len(scenarios) - 1) / 2) * width,
                np.nan_to_num(mean),
                width,
                yerr=_yerr(half, mean) if key == "on_time_rate" else _yerr(half),
                capsize=4,
                label=scenario,
                color=f"C{s}",
            )
            labels = [f"{m:.1f}" if key == "on_time_rate" else f"${m:.2f}" for m in mean]
            ax.bar_label(bars, labels=labels, padding=2, fontsize=8)
        ax.set_xticks(x, strategies)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.15)
    axes[0].set_ylim(0, 105)
    if len(scenarios) > 1:
        axes[0].legend(fontsize=8)
    seeds = int(summary["seeds"].max())
    fig.suptitle(f"On-time rate and cost per order ({seeds} seed{'s' if seeds > 1 else ''}; bars: 95 % CI)")
    _save(fig, path)


def _plot_on_time_by_tier(tiers: pd.DataFrame, strategies: list[str], scenarios: list[str], path: Path) -> None:
    fig = Figure(figsize=(8.0, 3.8 * len(scenarios)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(scenarios), 1))
    width = 0.8 / len(strategies)
    for ax, scenario in zip(axes, scenarios):
        rows = tiers[tiers["scenario"] == scenario]
        names = list(dict.fromkeys(rows["tier"]))
        x = np.arange(len(names))
        for k, strategy in enumerate(strategies):
            sub = rows[rows["strategy"] == strategy].set_index("tier").reindex(names)
            mean = 100 * sub["on_time_rate_mean"].to_numpy(dtype=float)
            ax.bar(
                x + (k - (len(strategies) - 1) / 2) * width,
                np.nan_to_num(mean),
                width,
                yerr=_yerr(100 * sub["on_time_rate_ci95"].to_numpy(dtype=float), mean),
                capsize=3,
                label=strategy,
                color=f"C{k}",
            )
        ax.set_xticks(x, names)
        ax.set_ylim(0, 105)
        ax.set_ylabel("on-time rate (%)")
        ax.set_title(f"{scenario}: on-time rate by tier (95 % CI, clipped to 0-100 %)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def _utilisation(group: Sequence[SweepResult], max_bins: int = 240) -> tuple[np.ndarray, float]:
    """Mean over seeds of picks per hour / capacity: (float[N, B], hours per bin).

    Long runs are averaged into at most ``max_bins`` bins of whole hours, so a month
    stays a readable heat map.
    """
    n_hours = max(g.picks_per_hour.shape[1] for g in group)
    total = np.zeros((group[0].picks_per_hour.shape[0], n_hours))
    for g in group:
        total[:, : g.picks_per_hour.shape[1]] += g.picks_per_hour
    capacity = group[0].node_capacity_per_hour[:, None]
    util = np.divide(total / len(group), capacity, out=np.zeros_like(total), where=capacity > 0)
    hours = max(1, math.ceil(n_hours / max_bins))
    n_bins = math.ceil(n_hours / hours)
    padded = np.zeros((util.shape[0], n_bins * hours))
    padded[:, :n_hours] = util
    return padded.reshape(util.shape[0], n_bins, hours).mean(axis=2), float(hours)


def _plot_node_utilisation(
    results: Sequence[SweepResult], strategies: list[str], scenarios: list[str], path: Path
) -> None:
    groups = _groups(results)
    panels = {key: _utilisation(g) for key, g in groups.items()}
    # The colour scale follows the data (its 99.5th percentile), not a fixed 0-1: a calm
    # network runs at 10-20 % and would be one dark block; the colour bar gives the scale.
    vmax = max(0.05, max(float(np.percentile(u, 99.5)) for u, _ in panels.values()))
    n_nodes = max(len(g[0].node_ids) for g in groups.values())
    # One scenario: strategies two to a row (four side by side are too narrow to read);
    # several: a row per scenario, a column per strategy.
    if len(scenarios) == 1:
        cols = min(2, len(strategies))
        cells = [(divmod(k, cols), (scenarios[0], s)) for k, s in enumerate(strategies)]
        rows = math.ceil(len(strategies) / cols)
    else:
        cols, rows = len(strategies), len(scenarios)
        cells = [((i, j), (sc, st)) for i, sc in enumerate(scenarios) for j, st in enumerate(strategies)]
    fig = Figure(figsize=(5.0 * cols + 1.4, max(2.6, 0.28 * n_nodes + 1.5) * rows), layout="constrained")
    axes = np.array(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_axis_off()
    image = None
    for (i, j), key in cells:
        if key not in panels:
            continue
        ax = axes[i, j]
        ax.set_axis_on()
        util, hours = panels[key]
        node_ids = groups[key][0].node_ids
        image = ax.imshow(
            util,
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            vmin=0.0,
            vmax=vmax,
            extent=(0.0, util.shape[1] * hours, len(node_ids) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(node_ids)), node_ids if j == 0 else [""] * len(node_ids), fontsize=7)
        ax.set_xlabel("hours since start")
        ax.set_title(key[1] if len(scenarios) == 1 else f"{key[0]}: {key[1]}", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes, label="picks / capacity", shrink=0.9)
    fig.suptitle("Node utilisation over time: picks per hour / pick capacity (1 = at capacity), mean over seeds")
    _save(fig, path)


def _plot_lateness(results: Sequence[SweepResult], strategies: list[str], scenarios: list[str], path: Path) -> None:
    groups = _groups(results)
    fig = Figure(figsize=(8.0, 4.0 * len(scenarios)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(scenarios), 1))
    for ax, scenario in zip(axes, scenarios):
        lo, hi = [], []
        for k, strategy in enumerate(strategies):
            group = [g for g in groups.get((scenario, strategy), []) if len(g.lateness_quantiles)]
            if not group:
                continue
            # Vincentised ECDF: the quantile functions of the seeds averaged point by point.
            q = np.mean([g.lateness_quantiles for g in group], axis=0)
            # Line styles as well as colours: strategies that agree draw on top of each other.
            ax.plot(
                q,
                100 * LATENESS_QUANTILES,
                drawstyle="steps-post",
                label=strategy,
                color=f"C{k}",
                ls=("-", "--", "-.", ":")[k % 4],
                lw=1.8,
            )
            lo.append(q[1])
            hi.append(q[-2])
        ax.axvline(0.0, color="black", lw=1, ls="--")
        ax.text(0.0, 2, " promise", fontsize=8, va="bottom")
        if lo:
            pad = 0.05 * (max(hi) - min(lo) + 1.0)
            ax.set_xlim(min(lo) - pad, max(hi) + pad)
        ax.set_ylim(0, 100)
        ax.set_xlabel("delivered - promised (hours); left of 0 is on time")
        ax.set_ylabel("orders delivered (%)")
        ax.set_title(f"{scenario}: lateness distribution (ECDF)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


# ---------------------------------------------------------------------------- the report


def write_report(results: Sequence[SweepResult], folder: str | Path, *, meta: dict | None = None) -> Path:
    """Write the report folder for a sweep and return the path of its ``report.md``.

    Parameters
    ----------
    results : sequence of SweepResult
        From :func:`router.simulation.sweep.run_sweep` (at least one).
    folder : path
        Created if missing; files in it with the same names are replaced.
    meta : dict, optional
        Facts about the run to print under "Machine" (executor, wall seconds,
        the command line...).

    Files
    -----
    report.md, kpis.csv (one row per run), summary.csv (:func:`summarise`),
    tiers.csv (:func:`tier_summary`) and the PNGs of :data:`PLOTS`.
    """
    if not results:
        raise ValueError("write_report needs at least one sweep result")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    strategies, scenarios = _strategies(results), _scenarios(results)
    summary = summarise(results)
    tiers = tier_summary(results)
    per_run = kpis_table(results)
    per_run.to_csv(folder / "kpis.csv", index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    tiers.to_csv(folder / "tiers.csv", index=False)

    _plot_on_time_and_cost(summary, strategies, scenarios, folder / "on_time_and_cost.png")
    _plot_on_time_by_tier(tiers, strategies, scenarios, folder / "on_time_by_tier.png")
    _plot_node_utilisation(results, strategies, scenarios, folder / "node_utilisation.png")
    _plot_lateness(results, strategies, scenarios, folder / "lateness.png")

    (folder / "report.md").write_text(_markdown(results, summary, tiers, meta or {}), encoding="utf-8")
    return folder / "report.md"


def _markdown(results: Sequence[SweepResult], summary: pd.DataFrame, tiers: pd.DataFrame, meta: dict) -> str:
    seeds = sorted({r.seed for r in results})
    scenarios = _scenarios(results)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"# Simulation report: {', '.join(scenarios)}",
        "",
        f"{len(results)} runs on {now}: strategies {', '.join(_strategies(results))}; seeds "
        f"{', '.join(map(str, seeds))}. Every strategy ran on the same arrivals and transit draws "
        "per seed (common random numbers).",
        "",
        "## Runs",
        "",
    ]
    run_rows = []
    for scenario in scenarios:
        rs = [r for r in results if r.scenario == scenario]
        orders = sorted({r.kpis["overall"]["orders"] for r in rs})
        horizons = sorted({round(r.kpis["horizon_hours"], 2) for r in rs})
        run_rows.append(
            [
                scenario,
                f"`{rs[0].job.scenario}`",
                "-".join(map(str, (orders[0], orders[-1]))) if len(orders) > 1 else str(orders[0]),
                f"{horizons[0]:g}" if len(horizons) == 1 else f"{horizons[0]:g}-{horizons[-1]:g}",
                str(rs[0].job.max_orders) if rs[0].job.max_orders is not None else "all",
                ", ".join(str(s) for s in sorted({r.seed for r in rs})),
            ]
        )
    out += [
        _md_table(["scenario", "file", "orders per run", "horizon h", "--orders", "seeds"], run_rows, right_from=2),
        "",
        "## Strategies side by side",
        "",
        "Mean across seeds ± half-width of the 95 % confidence interval (Student t, n - 1 degrees of "
        "freedom); with one seed there is no interval. On-time is over routed orders; cost and "
        "shipments per routed order; hours from order to delivery of the last parcel; late and "
        "unfilled lines are counts per run; dec/s is wall-clock routing speed.",
        "",
    ]
    header = ["scenario", "strategy", "seeds"] + [label for _, label, _ in SUMMARY_METRICS]
    rows = []
    for _, row in summary.iterrows():
        rows.append(
            [row["scenario"], row["strategy"], str(row["seeds"])]
            + [format_estimate(row[f"{k}_mean"], row[f"{k}_ci95"], kind) for k, _, kind in SUMMARY_METRICS]
        )
    out += [_md_table(header, rows, right_from=2), "", "## On-time rate by tier", ""]
    for scenario in scenarios:
        sub = tiers[tiers["scenario"] == scenario]
        names = list(dict.fromkeys(sub["tier"]))
        orders = {t: sub[sub["tier"] == t]["orders"].mean() for t in names}  # type: ignore[assignment]
        trows = []
        for strategy in dict.fromkeys(sub["strategy"]):
            s = sub[sub["strategy"] == strategy].set_index("tier")
            trows.append(
                [strategy]
                + [
                    format_estimate(s.at[t, "on_time_rate_mean"], s.at[t, "on_time_rate_ci95"], "rate")
                    if t in s.index
                    else "-"
                    for t in names
                ]
            )
        if len(scenarios) > 1:
            out += [f"### {scenario}", ""]
        out += [_md_table(["strategy"] + [f"{t} ({orders[t]:.0f} orders)" for t in names], trows), ""]
    out += [
        "## Node utilisation",
        "",
        "Picking hours / demand horizon, mean across seeds (the initial backlog counts).",
        "",
    ]
    for scenario in scenarios:
        rs = [r for r in results if r.scenario == scenario]
        nodes = list(rs[0].node_ids)
        urows = []
        for strategy in dict.fromkeys(r.strategy for r in rs):
            group = [r for r in rs if r.strategy == strategy]
            cells = []
            for n in nodes:
                vals = [g.kpis["by_node"][n]["utilisation"] for g in group]
                vals = [v for v in vals if v is not None]
                cells.append(f"{100 * np.mean(vals):.0f}%" if vals else "-")
            urows.append([strategy] + cells)
        if len(scenarios) > 1:
            out += [f"### {scenario}", ""]
        out += [_md_table(["strategy"] + nodes, urows), ""]
    out += ["## Plots", ""]
    for name, what in PLOTS.items():
        out += [f"**{what}**", "", f"![{what}]({name})", ""]
    out += [
        "## Files",
        "",
        "- `kpis.csv`: one row per run (every overall KPI, timings, the run's fingerprint)",
        "- `summary.csv`: the table above, as numbers (`<kpi>_mean`, `<kpi>_ci95` half-widths)",
        "- `tiers.csv`: on-time rate by tier, mean and CI half-width",
        "",
        "## Machine",
        "",
    ]
    facts = {**machine_facts(), **{k: str(v) for k, v in meta.items()}}
    out += [_md_table(["fact", "value"], [[k, v] for k, v in facts.items()], right_from=2), ""]
    return "\n".join(out)
