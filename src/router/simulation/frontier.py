"""The cost / on-time frontier: what each point of on-time costs, per tier, with the rule baselines beside it.

:func:`frontier_jobs` builds one sweep: the optimizer at a list of fixed lateness
prices (``late_risk_usd``), the optimizer under each set of on-time targets
(:mod:`router.targets`), and the rule strategies (``nearest``, ``cheapest``,
``tier_rules``) as single points, all on the same seeded worlds (common random
numbers). :func:`frontier_table` turns the results into one row per run,
:func:`write_frontier` writes the CSV, a PNG (cost per order against true on-time,
overall and per tier) and a short markdown file into a report folder.

Reading a frontier against a baseline (:func:`gaps_at_baseline`): per seed, the
fixed-price points are joined by straight lines (sorted by price); at the
baseline's on-time the line gives the optimizer's cost, at the baseline's cost it
gives the optimizer's on-time. Both are per-seed paired differences, so their 95 %
intervals over seeds say whether the frontier beats the baseline on each axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from matplotlib.figure import Figure

from router.simulation.report import _save, confidence_interval
from router.simulation.sweep import SweepJob, SweepResult

__all__ = [
    "BASELINES",
    "DEFAULT_PRICES",
    "frontier_jobs",
    "frontier_table",
    "gaps_at_baseline",
    "interpolate",
    "parse_targets",
    "write_frontier",
]

#: Fixed lateness prices swept by default (USD for a certain miss, before the tier multiplier).
DEFAULT_PRICES = (0.0, 6.0, 12.0, 18.0, 36.0, 72.0)
BASELINES = ("nearest", "cheapest", "tier_rules")


def parse_targets(text: str) -> dict:
    """``"vip=0.98,plus=0.95,standard=0.9"`` as a ``targets`` params object; ``tier@region=x`` for one region.

    A tier may carry a hard floor after a colon: ``vip=0.98:0.5`` (``max_late_risk`` 0.5).

    >>> parse_targets("vip=0.98:0.5,standard=0.9")["targets"][0]
    {'tier': 'vip', 'on_time': 0.98, 'max_late_risk': 0.5}
    """
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{part!r} is not tier=share (e.g. vip=0.98)")
        tier, _, region = key.strip().partition("@")
        rate, _, floor = value.partition(":")
        try:
            item: dict = {"tier": tier, "on_time": float(rate)}
            if region:
                item["region"] = region
            if floor:
                item["max_late_risk"] = float(floor)
        except ValueError:
            raise ValueError(f"{part!r}: {value!r} is not a share like 0.98 (or 0.98:0.5 with a floor)") from None
        out.append(item)
    if not out:
        raise ValueError("no target given")
    return {"targets": out}


def _target_label(targets: dict) -> str:
    return "targets " + ",".join(
        f"{t['tier']}{'@' + t['region'] if t.get('region') else ''}={t['on_time']:g}" for t in targets["targets"]
    )


def frontier_jobs(
    scenario: str | Path,
    seeds: Sequence[int],
    *,
    prices: Sequence[float] = DEFAULT_PRICES,
    target_sets: Sequence[dict] = (),
    baselines: Sequence[str] = BASELINES,
    horizon_hours: float | None = None,
    risk_model: str | None = "champion",
    target_options: dict | None = None,
) -> list[SweepJob]:
    """One sweep: fixed prices, target sets and baselines, each on every seed (same worlds).

    ``target_options`` are extra :class:`~router.params.ServiceTargets` fields (``gain``,
    ``window_hours``...) applied to every target set.
    """
    path = str(Path(scenario).resolve())
    jobs: list[SweepJob] = []
    for price in prices:
        params = orjson.dumps({"late_risk_usd": float(price)}).decode()
        jobs += [
            SweepJob(path, "optimizer", int(s), None, horizon_hours, None, risk_model, params, f"price {price:g}")
            for s in seeds
        ]
    for targets in target_sets:
        body = {**targets, **(target_options or {})}
        params = orjson.dumps({"targets": body}).decode()
        jobs += [
            SweepJob(path, "optimizer", int(s), None, horizon_hours, None, risk_model, params, _target_label(targets))
            for s in seeds
        ]
    for name in baselines:
        jobs += [SweepJob(path, name, int(s), None, horizon_hours, None, risk_model, None, name) for s in seeds]
    return jobs


def _kind(job: SweepJob) -> tuple[str, float | None]:
    if job.params is None:
        return "baseline", None
    data = orjson.loads(job.params)
    if "targets" in data:
        return "targets", None
    return "price", float(data["late_risk_usd"])


def frontier_table(results: Sequence[SweepResult]) -> pd.DataFrame:
    """One row per run: label, kind (price / targets / baseline), price, seed, cost per order and on-time.

    On-time columns: ``on_time`` overall and ``on_time_<tier>`` per tier, all orders of
    the run; ``after_warmup_<segment>`` is a target segment's realised on-time after the
    first 20 % of the horizon, ``price_<segment>`` its final price and
    ``feasible_<segment>`` the controller's verdict (target runs only).
    """
    rows = []
    for r in results:
        kind, price = _kind(r.job)
        k = r.kpis
        row = {
            "scenario": k["scenario"],
            "label": r.job.name or r.job.strategy,
            "kind": kind,
            "price": price,
            "seed": r.job.seed,
            "orders": k["overall"]["orders"],
            "cost_per_order": k["overall"]["cost_per_order_usd"],
            "on_time": k["overall"]["on_time_rate"],
            "shipments_per_order": k["overall"]["shipments_per_order"],
        }
        for tier, v in k["by_tier"].items():
            row[f"on_time_{tier}"] = v["on_time_rate"]
            row[f"cost_{tier}"] = v["cost_per_order_usd"]
        for st in k.get("targets", []):
            seg = st["segment"]
            row[f"target_{seg}"] = st["target"]
            row[f"after_warmup_{seg}"] = st["realised_after_warmup"]
            row[f"price_{seg}"] = st["price_usd"]
            row[f"feasible_{seg}"] = st["feasible"]
            row[f"best_reachable_{seg}"] = st["best_reachable"]
            row[f"capped_{seg}"] = st["capped"]
            row[f"slack_{seg}"] = st.get("slack", False)
        rows.append(row)
    return pd.DataFrame(rows)


def interpolate(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """y at ``at`` on the line through the points (x, y) taken in the given order (by price); NaN outside them.

    The points are a fixed-price frontier sorted by price: on-time and cost both
    grow with the price, but not strictly, so the first segment whose x-range holds
    ``at`` is used rather than sorting by x.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    for i in range(len(x) - 1):
        lo, hi = x[i], x[i + 1]
        if min(lo, hi) <= at <= max(lo, hi):
            if hi == lo:
                return float(min(y[i], y[i + 1]))
            w = (at - lo) / (hi - lo)
            return float(y[i] + w * (y[i + 1] - y[i]))
    return math.nan


def gaps_at_baseline(table: pd.DataFrame, baseline: str = "nearest", tier: str | None = None) -> dict:
    """Per seed: the frontier's cost gap (%) at the baseline's on-time and on-time gap (points) at its cost.

    Negative cost gap: the frontier is cheaper at the same on-time; positive on-time
    gap: it is more on time at the same cost. With ``tier`` the on-time of that tier
    is used (cost stays per order overall). Returns per-seed lists and the mean with
    its 95 % interval; NaN where the baseline lies outside the frontier's range.
    """
    col = "on_time" if tier is None else f"on_time_{tier}"
    cost_gap, on_time_gap = [], []
    seeds = sorted(table["seed"].unique())
    for s in seeds:
        t = table[table["seed"] == s]
        base = t[t["label"] == baseline]
        front = t[t["kind"] == "price"].sort_values("price")
        if base.empty or len(front) < 2:
            cost_gap.append(math.nan)
            on_time_gap.append(math.nan)
            continue
        b_on, b_cost = float(base[col].iloc[0]), float(base["cost_per_order"].iloc[0])
        c = interpolate(front[col].to_numpy(), front["cost_per_order"].to_numpy(), b_on)
        o = interpolate(front["cost_per_order"].to_numpy(), front[col].to_numpy(), b_cost)
        cost_gap.append(100.0 * (c - b_cost) / b_cost if not math.isnan(c) else math.nan)
        on_time_gap.append(100.0 * (o - b_on) if not math.isnan(o) else math.nan)

    def summary(v: list[float]) -> dict:
        m, h = confidence_interval(v)
        ci = [round(m - h, 3), round(m + h, 3)] if not math.isnan(h) else [None, None]
        return {"mean": None if math.isnan(m) else round(m, 3), "ci95": ci, "per_seed": [None if math.isnan(x) else round(x, 3) for x in v]}

    return {"seeds": [int(s) for s in seeds], "cost_pct": summary(cost_gap), "on_time_points": summary(on_time_gap)}


def _means(table: pd.DataFrame, label: str, cols: Sequence[str]) -> dict[str, tuple[float, float]]:
    t = table[table["label"] == label]
    return {c: confidence_interval(t[c].tolist()) for c in cols}


def write_frontier(table: pd.DataFrame, folder: str | Path, *, meta: dict | None = None) -> Path:
    """``frontier.csv``, ``frontier.png`` and ``frontier.md`` in ``folder``; returns the PNG's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "frontier.csv", index=False)
    tiers = sorted(c[len("on_time_") :] for c in table.columns if c.startswith("on_time_"))
    panels = [("on_time", "cost_per_order", "all orders")] + [(f"on_time_{t}", f"cost_{t}", f"tier {t}") for t in tiers]
    fig = Figure(figsize=(4.2 * len(panels), 4.0))
    labels = list(dict.fromkeys(table["label"]))
    price_labels = [lb for lb in labels if (table.loc[table["label"] == lb, "kind"] == "price").all()]
    markers = {"nearest": ("s", "tab:red"), "cheapest": ("v", "tab:green"), "tier_rules": ("D", "tab:purple")}
    for i, (col, cost_col, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        # means over seeds (every run sees the same worlds; the paired gaps carry the intervals)
        pts = [(lb, *(m[0] for m in _means(table, lb, [cost_col, col]).values())) for lb in labels]
        line = [(c, o) for lb, c, o in pts if lb in price_labels]
        if line:
            ax.plot([100 * o for _, o in line], [c for c, _ in line], "-o", color="tab:blue", label="optimizer, fixed price")
            for lb, c, o in pts:
                if lb in price_labels:
                    ax.annotate(lb.replace("price ", "$"), (100 * o, c), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for lb, c, o in pts:
            if lb in price_labels:
                continue
            m, colr = markers.get(lb, ("*", "tab:orange"))
            ax.plot(100 * o, c, m, color=colr, markersize=11 if m == "*" else 7, label=lb)
        ax.set_title(title)
        ax.set_xlabel("true on-time, %")
        ax.set_ylabel("cost per order, USD" if i == 0 else f"cost per {title} order, USD")
        ax.grid(alpha=0.3)
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6), fontsize=8)
    fig.subplots_adjust(bottom=0.25, wspace=0.3)
    png = folder / "frontier.png"
    _save(fig, png)
    lines = [f"# Cost / on-time frontier: {', '.join(sorted(table['scenario'].unique()))}", ""]
    for k, v in (meta or {}).items():
        lines.append(f"- {k}: {v}")
    lines += ["", "![frontier](frontier.png)", "", "| run | cost/order $ | on-time % | " + " | ".join(f"{t} on-time %" for t in tiers) + " |"]
    lines.append("|---" * (3 + len(tiers)) + "|")
    for lb in labels:
        means = _means(table, lb, ["cost_per_order", "on_time"] + [f"on_time_{t}" for t in tiers])
        cells = [f"{means['cost_per_order'][0]:.2f}"] + [
            f"{100 * means[c][0]:.2f}" for c in ["on_time"] + [f"on_time_{t}" for t in tiers]
        ]
        lines.append(f"| {lb} | " + " | ".join(cells) + " |")
    (folder / "frontier.md").write_text("\n".join(lines) + "\n")
    return png
