"""What every benchmark shares: seed lists, intervals over seeds, the winner rule, the machine.

A package rather than a module so that CI's ``for b in benchmarks/*.py`` runs the
benchmarks only. The scripts put ``benchmarks/`` first on ``sys.path`` (Python does so
for a script), so ``from protocol import ...`` finds it.

The rules (benchmarks/README.md, "Protocol"):

* settings are tuned on some seeds and reported on others (held-out seeds);
* a figure over seeds is a mean with its 95 % Student-t interval
  (:func:`router.simulation.report.confidence_interval`);
* a comparison is the paired difference per seed (both sides ran on the same seeded
  world), and a winner is called only where its 95 % interval excludes zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.simulation import sandbox as _sandbox
from router.simulation.report import machine_facts

__all__ = ["BENCH_SCENARIOS", "NO_CLEAR_WINNER", "interval", "machine_facts", "paired", "parse_seeds", "winner"]

NO_CLEAR_WINNER = "no clear winner"

#: The four simulated worlds of strategies.py and risk.py: label -> scenario file stem in scenarios/.
BENCH_SCENARIOS = {
    "calm": "national_calm",
    "peak_sale_day": "national_peak",
    "regional_storm": "national_storm",
    "carrier_meltdown": "national_meltdown",
}


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"101,102"``, ``"101-105"`` or a mix (``"1-3,7"``), in the order given.

    The sandbox's parser (:func:`router.simulation.sandbox.parse_seeds`), so the CLI and the
    benchmarks read seed lists the same way.

    >>> parse_seeds("101-103,7")
    [101, 102, 103, 7]
    """
    return _sandbox.parse_seeds(text)


def interval(values: Sequence[float], digits: int = 4) -> dict:
    """Mean and 95 % t-interval over seeds: ``{"mean", "ci95": [lo, hi], "n"}``.

    With one value the interval is ``[None, None]`` (no spread to estimate). The sandbox's
    (:func:`router.simulation.sandbox.interval`), at 4 digits by default.

    >>> interval([0.9, 0.8, 1.0])
    {'mean': 0.9, 'ci95': [0.6516, 1.1484], 'n': 3}
    """
    return _sandbox.interval(values, digits)


def winner(iv: dict, ours: str, theirs: str, *, lower_is_better: bool) -> str:
    """The winner of a paired difference ``ours - theirs`` by the rule: only where the interval excludes 0.

    >>> winner({"mean": -1.0, "ci95": [-1.5, -0.5]}, "optimizer", "nearest", lower_is_better=True)
    'optimizer'
    >>> winner({"mean": -1.0, "ci95": [-2.5, 0.5]}, "optimizer", "nearest", lower_is_better=True)
    'no clear winner'
    """
    return _sandbox.winner(iv, ours, theirs, lower_is_better=lower_is_better)


def paired(ours: Sequence[float], theirs: Sequence[float], names: tuple[str, str], *, lower_is_better: bool,
           scale: float = 1.0, relative: bool = False, digits: int = 4) -> dict:
    """Paired difference per seed, ``scale x (ours - theirs)`` (or ``/ theirs`` with ``relative``).

    Returns ``{"mean", "ci95", "n", "per_seed", "winner"}``; ``winner`` follows :func:`winner`.

    >>> paired([1.0, 2.0, 3.0], [2.0, 3.0, 4.5], ("a", "b"), lower_is_better=True)["winner"]
    'a'
    """
    if len(ours) != len(theirs):
        raise ValueError(f"paired difference needs one value per seed on both sides: {len(ours)} vs {len(theirs)}")
    diffs = [scale * ((a - b) / b if relative else (a - b)) for a, b in zip(ours, theirs)]
    iv = interval(diffs, digits)
    return {**iv, "per_seed": [round(d, digits) for d in diffs], "winner": winner(iv, *names, lower_is_better=lower_is_better)}
