"""The rationale of a decision, computed from the very arrays the strategy ranked.

Factors are read from :class:`~router.scoring.Scores` at the chosen and the
runner-up indices: the numbers in the rationale are the numbers the solver used.
The sentence names the chosen plan, the strongest reason it beat the best
alternative on another node (or service), and what the choice gave up.
"""

from __future__ import annotations

import numpy as np

from router.candidates import CandidateSet
from router.context import OrderContext
from router.network import Network
from router.scoring import Scores

__all__ = ["build_rationale", "factors_at", "factors_for", "plan_label", "round6"]

_TERM_WORDS = {
    "cost": "cost",
    "eta": "ETA",
    "lateness": "expected lateness",
    "late_risk": "late risk",
    "load": "load pressure",
    "split": "extra shipments",
    "stock_value": "stock value",
}


_TEN6 = 1e6  # 10.0 ** 6, exactly the factor np.round(x, 6) uses


def round6(x: np.ndarray) -> np.ndarray:
    """``np.round(x, 6)`` for float arrays, bit for bit, at a third of its cost.

    np.round(x, d) is multiply by 10**d, rint, divide by 10**d (numpy's
    PyArray_Round); calling the three ufuncs directly, in place, skips the
    Python-level dispatch that makes np.round cost ~5 us on a small array.
    """
    y = np.multiply(x, _TEN6)
    np.rint(y, out=y)
    np.true_divide(y, _TEN6, out=y)
    return y


def round_np(x: float, scale: float = _TEN6) -> float:
    """``np.round(x, d)`` of one Python float, bit for bit, with ``scale`` = 10.0 ** d.

    The same three steps in plain Python: the float multiply is the same IEEE
    operation, ``round(y)`` rounds half to even like ``rint`` (exactly, for
    |y| < 2**53), and dividing the integer by the scale converts it exactly first.
    A zero keeps the sign rint gives it (``-0.4`` rounds to ``-0.0``). For the
    handful of numbers of one plan this is a tenth of the cost of stacking them
    into an array for numpy. Non-finite values are returned unchanged, as numpy does.
    """
    y = x * scale
    if y - y != 0.0:  # inf or nan
        return x
    v = round(y)
    return v / scale if v else y * 0.0


def _r(x: float, nd: int = 6) -> float:
    return float(round(float(x), nd))


def plan_label(cs: CandidateSet, net: Network, c: int) -> str:
    """E.g. ``WH-B by ups 2day`` or ``WH-A by ups ground + WH-C by fedex ground``."""
    labels, node_ids = net.option_labels, net.node_ids
    return " + ".join(
        f"{node_ids[n]} by {labels[o]}" for n, o in zip(cs.leg_node[c].tolist(), cs.leg_opt[c].tolist()) if n >= 0
    )


def factors_for(scores: Scores, idx) -> list[list[dict]]:
    """Score breakdowns of several candidates at once: term, value, unit, weight, contribution.

    Values are rounded to 6 decimals once, here, so the record, the rationale and
    a replay compare equal whenever the solver's numbers are equal.
    """
    idx = np.asarray(idx, dtype=np.int64)
    # One gather + round + tolist over the [T, C] matrices instead of one per term.
    vals = round6(scores.values_matrix[:, idx]).T.tolist()
    contrib = round6(scores.contributions_matrix[:, idx]).T.tolist()
    meta = [(t.name, t.unit, _r(t.weight)) for t in scores.terms]
    return [
        [
            {"term": name, "value": v, "unit": unit, "weight": w, "contribution": x}
            for (name, unit, w), v, x in zip(meta, vs, xs)
        ]
        for vs, xs in zip(vals, contrib)
    ]


def factors_at(scores: Scores, c: int) -> list[dict]:
    """The score breakdown of candidate ``c``."""
    return factors_for(scores, [c])[0]


def _describe(term: str, unit: str, v: float) -> str:
    if unit == "usd":
        return f"${v:.2f}"
    if unit == "hours":
        return f"{v:.1f} h"
    if unit == "probability":
        # small risks differ in the third decimal; "0.01 vs 0.01" would hide why
        return f"{v:.3f}" if v < 0.1 else f"{v:.2f}"
    return f"{v:.3g}"


def _alternative(cs: CandidateSet, ranking: np.ndarray, chosen: int) -> int | None:
    """The best-ranked plan that uses other nodes; else the best other plan at all."""
    leg_node = cs.leg_node
    nodes_chosen = {n for n in leg_node[chosen].tolist() if n >= 0}
    fallback = None
    # Walk the ranking in small blocks: the answer is nearly always among the first few.
    for start in range(1, len(ranking), 8):
        block = ranking[start : start + 8].tolist()
        for c, row in zip(block, leg_node[block].tolist()):
            if {n for n in row if n >= 0} != nodes_chosen:
                return c
            if fallback is None:
                fallback = c
    return fallback


def build_rationale(
    cs: CandidateSet,
    scores: Scores,
    ranking: np.ndarray,
    net: Network,
    ctx: OrderContext,
    *,
    strategy_name: str,
    strategy_rule: str,
    top_k: int,
    factors: list[list[dict]] | None = None,
    queue_orders: np.ndarray | None = None,
) -> dict:
    """The rationale dict; ``factors`` may pass in ``factors_for(scores, ranking[:top_k])``
    when the caller needs them too (the engine's top-K candidates), to compute them once."""
    chosen = int(ranking[0])
    label = plan_label(cs, net, chosen)
    cost = float(scores.term("cost").values[chosen])
    eta = float(scores.term("eta").values[chosen])
    risk = float(scores.term("late_risk").values[chosen])
    head = (
        f"Shipped from {label} (cost ${cost:.2f}, ETA {eta:.0f} h vs promise {ctx.promise_hours:.0f} h, "
        f"late risk {risk:.2f})"
    )
    alt = _alternative(cs, ranking, chosen)
    why = ""
    if alt is not None:
        deltas = {t.name: float(t.contributions[alt] - t.contributions[chosen]) for t in scores.terms}
        best_term = max(deltas, key=lambda k: deltas[k])
        worst_term = min(deltas, key=lambda k: deltas[k])
        alt_label = plan_label(cs, net, alt)
        t = scores.term(best_term)
        if strategy_name == "optimizer" and deltas[best_term] > 0:
            why = (
                f": {alt_label} scored ${scores.total[alt] - scores.total[chosen]:.2f} worse; its "
                f"{_TERM_WORDS.get(best_term, best_term)} {_describe(best_term, t.unit, t.values[alt])} vs "
                f"{_describe(best_term, t.unit, t.values[chosen])}"
            )
            if best_term in ("late_risk", "lateness", "eta", "load"):
                qa = float(cs.leg_queue_hours[alt].max())
                qc = float(cs.leg_queue_hours[chosen].max())
                if qa - qc > 0.25:
                    n_alt = int(cs.leg_node[alt][np.argmax(cs.leg_queue_hours[alt])])
                    extra = qa - qc
                    wait = f"+{extra * 60:.0f} min" if extra < 2.0 else f"+{extra:.1f} h"
                    queued = f" {queue_orders[n_alt]:.0f} orders," if queue_orders is not None else ""
                    why += f" ({net.node_ids[n_alt]} pick queue{queued} est. {wait})"
            if deltas[worst_term] < -0.005:
                w = scores.term(worst_term)
                sign = "+" if w.values[chosen] >= w.values[alt] else "-"
                diff = abs(float(w.values[chosen] - w.values[alt]))
                why += f"; {_TERM_WORDS.get(worst_term, worst_term)} {sign}{_describe(worst_term, w.unit, diff)}"
        else:
            why = f" by rule ({strategy_rule}); next: {alt_label}"
    sentence = head + why + "."

    top = np.asarray(ranking[:top_k], dtype=np.int64)
    if factors is None:
        factors = factors_for(scores, top)
    totals = round6(scores.total[top]).tolist()
    top_list = top.tolist()
    runners = [
        {
            "rank": rank + 1,
            "plan": plan_label(cs, net, top_list[rank]),
            "score": totals[rank],
            "score_delta": round(totals[rank] - totals[0], 6),
            "factors": factors[rank],
        }
        for rank in range(1, len(top))
    ]
    return {
        "sentence": sentence,
        "strategy_rule": strategy_rule,
        "chosen": {"plan": label, "score": totals[0], "factors": factors[0]},
        "runners_up": runners,
        "excluded": list(cs.excluded),
        "candidates_considered": int(len(cs)),
    }
