"""The rationale of a decision, computed from the very arrays the strategy ranked.

Factors are read from :class:`~router.scoring.Scores` at the chosen and the
runner-up indices: the numbers in the rationale are the numbers the solver used.
The sentence names the chosen plan, the strongest reason it beat the best
alternative on another node (or service), and what the choice gave up.
"""

from __future__ import annotations

import numpy as np

from router.candidates import CandidateSet, OrderContext
from router.network import Network
from router.scoring import Scores

__all__ = ["build_rationale", "factors_at", "factors_for", "plan_label"]

_TERM_WORDS = {
    "cost": "cost",
    "eta": "ETA",
    "lateness": "expected lateness",
    "late_risk": "late risk",
    "load": "load pressure",
    "split": "extra shipments",
}


def _r(x: float, nd: int = 6) -> float:
    return float(round(float(x), nd))


def plan_label(cs: CandidateSet, net: Network, c: int) -> str:
    """E.g. ``WH-B by ups 2day`` or ``WH-A by ups ground + WH-C by fedex ground``."""
    parts = []
    for j in range(cs.leg_node.shape[1]):
        n = int(cs.leg_node[c, j])
        if n < 0:
            continue
        parts.append(f"{net.node_ids[n]} by {net.option_label(int(cs.leg_opt[c, j]))}")
    return " + ".join(parts)


def factors_for(scores: Scores, idx) -> list[list[dict]]:
    """Score breakdowns of several candidates at once: term, value, unit, weight, contribution.

    Values are rounded to 6 decimals once, here, so the record, the rationale and
    a replay compare equal whenever the solver's numbers are equal.
    """
    idx = np.asarray(idx, dtype=np.int64)
    vals = np.round(np.stack([t.values[idx] for t in scores.terms]), 6).tolist()
    contrib = np.round(np.stack([t.contributions[idx] for t in scores.terms]), 6).tolist()
    meta = [(t.name, t.unit, _r(t.weight)) for t in scores.terms]
    return [
        [
            {"term": name, "value": vals[i][c], "unit": unit, "weight": w, "contribution": contrib[i][c]}
            for i, (name, unit, w) in enumerate(meta)
        ]
        for c in range(len(idx))
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
        return f"{v:.2f}"
    return f"{v:.3g}"


def _alternative(cs: CandidateSet, ranking: np.ndarray, chosen: int) -> int | None:
    """The best-ranked plan that uses other nodes; else the best other plan at all."""
    nodes_chosen = set(cs.leg_node[chosen][cs.leg_node[chosen] >= 0].tolist())
    fallback = None
    for c in ranking[1:]:
        c = int(c)
        nodes = set(cs.leg_node[c][cs.leg_node[c] >= 0].tolist())
        if nodes != nodes_chosen:
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
) -> dict:
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
                    why += (
                        f" ({net.node_ids[n_alt]} pick queue est. +{(qa - qc) * 60:.0f} min)"
                    )
            if deltas[worst_term] < -0.005:
                w = scores.term(worst_term)
                sign = "+" if w.values[chosen] >= w.values[alt] else "-"
                diff = abs(float(w.values[chosen] - w.values[alt]))
                why += f"; {_TERM_WORDS.get(worst_term, worst_term)} {sign}{_describe(worst_term, w.unit, diff)}"
        else:
            why = f" by rule ({strategy_rule}); next: {alt_label}"
    sentence = head + why + "."

    top = np.asarray(ranking[:top_k], dtype=np.int64)
    factors = factors_for(scores, top)
    totals = np.round(scores.total[top], 6).tolist()
    runners = [
        {
            "rank": rank + 1,
            "plan": plan_label(cs, net, int(top[rank])),
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
        "term_definitions": {t.name: t.justification for t in scores.terms},
    }
