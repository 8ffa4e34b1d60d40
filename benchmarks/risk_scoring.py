"""Scoring latency of the delay-risk model: CompiledRisk.predict against the estimator's predict_proba.

Protocol (see benchmarks/README.md for the shared rules):

* a synthetic lane table (numeric, categorical and missing features), seeded by
  ``--seed``; the model is ``DelayRiskModel``'s defaults (150 iterations, 15 leaves,
  isotonic calibration) with early stopping off, so every one of the 150 trees is
  scored -- the worst case the defaults allow (``--early-stopping`` scores the
  smaller model early stopping keeps);
* the timed input is one decision's worth of lanes: ``--rows`` (100) fresh rows,
  a C-contiguous float64 matrix, with unseen categories and NaNs;
* both paths score the same rows; a check confirms they agree to 1e-6;
* rounds alternate between the two paths (so a noisy spell hits both); per call,
  ``time.perf_counter_ns()`` around the call only; the figures are medians over
  all calls; the first calls (numba's compile or cache load) are not timed.

Ends with ONE line: a JSON object with every figure.

    python benchmarks/risk_scoring.py --quick     # 200 compiled / 20 sklearn calls per round
    python benchmarks/risk_scoring.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from router.risk.model import DelayRiskModel


def lanes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    distance = rng.gamma(2.0, 300.0, n)
    load = rng.uniform(0.0, 1.2, n)
    carrier = rng.integers(0, 6, n).astype(float)
    region = rng.integers(0, 12, n).astype(float)
    weight = rng.lognormal(0.0, 1.0, n)
    load[rng.random(n) < 0.1] = np.nan
    region[rng.random(n) < 0.05] = np.nan
    z = -2.0 + distance / 600.0 + 2.0 * np.nan_to_num(load, nan=1.0) ** 2
    z += np.array([0.0, 0.5, -0.5, 1.0, 0.0, 0.3])[carrier.astype(int)] + 0.1 * np.log(weight)
    z += np.where(np.isnan(region), 0.5, np.where(region % 3 == 0, 0.7, 0.0))
    late = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(int)
    X = np.column_stack([distance, load, carrier, region, rng.normal(size=n), weight])
    return X, late, np.sort(rng.uniform(0.0, 24.0 * 90, n))


def timed(fn, X, calls: int) -> list[int]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn(X)
        out.append(time.perf_counter_ns() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--train-rows", type=int, default=30_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--early-stopping", action="store_true")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    fast_calls, slow_calls = (200, 20) if args.quick else (2000, 100)

    X, late, hours = lanes(args.train_rows, args.seed)
    names = ["distance_km", "load_ratio", "carrier", "region", "noise", "weight_kg"]
    t0 = time.perf_counter()
    model = DelayRiskModel(
        feature_names=names,
        categorical_features=["carrier", "region"],
        early_stopping="auto" if args.early_stopping else False,
        random_state=args.seed,
    ).fit(X, late, times=hours)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = model.compile()
    compile_s = time.perf_counter() - t0

    rows, _, _ = lanes(args.rows, args.seed + 1000)
    rows[::7, 2] = 9.0  # a carrier never seen in training
    rows[::17, 0] = np.nan
    rows = np.ascontiguousarray(rows)
    t0 = time.perf_counter()
    p = compiled.predict(rows)
    first_call_s = time.perf_counter() - t0
    max_abs_diff = float(np.max(np.abs(p - model.predict_proba(rows)[:, 1])))
    assert max_abs_diff <= 1e-6, max_abs_diff

    fast, slow, contrib = [], [], []
    for _ in range(args.rounds):
        fast += timed(compiled.predict, rows, fast_calls)
        slow += timed(model.predict_proba, rows, slow_calls)
        contrib += timed(compiled.contributions, rows, fast_calls // 4)

    def us(ns: list[int], q: float = 50) -> float:
        return round(float(np.percentile(ns, q)) / 1000.0, 1)

    print(
        json.dumps(
            {
                "benchmark": "risk_scoring",
                "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
                "seed": args.seed,
                "rows": args.rows,
                "trees": compiled.n_trees,
                "nodes": compiled.n_nodes,
                "fit_s": round(fit_s, 2),
                "compile_s": round(compile_s, 3),
                "first_call_s": round(first_call_s, 3),
                "max_abs_diff": max_abs_diff,
                "compiled_predict_us_p50": us(fast),
                "compiled_predict_us_p10": us(fast, 10),
                "compiled_contributions_us_p50": us(contrib),
                "sklearn_predict_proba_us_p50": us(slow),
                "speedup_p50": round(float(np.median(slow)) / float(np.median(fast)), 1),
                "calls": {"compiled": len(fast), "sklearn": len(slow), "contributions": len(contrib)},
            }
        )
    )


if __name__ == "__main__":
    main()
