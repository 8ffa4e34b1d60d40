"""Figures of a trained delay-risk model for its model card.

Built with matplotlib's object-oriented API on an Agg canvas: no pyplot, so drawing a
figure neither needs a display nor changes the caller's current figure or backend,
and figures drawn in worker threads do not share state.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from router.risk.metrics import ECE_BINS, reliability_curve, risk_metrics

__all__ = ["reliability_png"]


def reliability_png(curves: Mapping[str, tuple[object, object]], title: str, *, bins: int = ECE_BINS) -> bytes:
    """A reliability diagram as PNG bytes: one line per model over the diagonal, prediction histograms below.

    Parameters
    ----------
    curves : model name -> (labels y, predicted probabilities p) on the same held-out rows.
    title : the figure's title.
    bins : equal-width probability bins (the ECE's 15 by default).

    Each line joins the (mean prediction, observed late rate) of the non-empty bins; the
    legend gives each model's ECE and Brier score. The lower panel shows how many
    predictions fall in each bin, since a bin's point is only as reliable as its count.
    """
    if not curves:
        raise ValueError("curves is empty; give at least one model's (y, p)")
    fig = Figure(figsize=(6.0, 6.5), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    edges = np.linspace(0.0, 1.0, bins + 1)
    for name, (y, p) in curves.items():
        mean_p, rate, count = reliability_curve(y, p, bins)
        m = risk_metrics(y, p)
        shown = count > 0
        (line,) = top.plot(
            mean_p[shown], rate[shown], marker="o", markersize=4,
            label=f"{name} (ECE {m['ece']:.3f}, Brier {m['brier']:.3f})",
        )
        bottom.stairs(count, edges, color=line.get_color(), linewidth=1.2)
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("observed late rate")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_xlabel("predicted probability of being late")
    bottom.set_ylabel("predictions")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
