"""Real late-delivery labels, side by side: the delay-risk model vs the logistic baseline on DataCo.

Train on the earliest 70 % of the 1,000 DataCo order lines by order date, score on the
latest 30 %; the data's README gives ~0.72 AUC and ~0.20 Brier as the leak-free
reference. ``--tune`` re-runs the choice of DATACO_PARAMS over DATACO_GRID on the
training part (inner time-ordered split), never on the test rows. Reads
$ROUTER_SHARED_DATA or ../shared/data.

    python benchmarks/dataco.py [--quick] [--tune]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from protocol import machine_facts  # benchmarks/protocol

from router.risk.dataco import DATACO_GRID, DATACO_PARAMS, DATACO_RELATIVE_PATH, evaluate_dataco, select_dataco_params

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the tuned parameters only (no default-parameter run)")
    ap.add_argument("--tune", action="store_true", help="re-run the hyper-parameter choice on the training part")
    args = ap.parse_args()
    shared = Path(os.environ.get("ROUTER_SHARED_DATA") or ROOT.parent / "shared" / "data")
    path = shared / DATACO_RELATIVE_PATH
    if not path.is_file():
        print(json.dumps({"bench": "dataco", "skipped": f"{path} is absent", "machine": machine_facts()}))
        return
    try:
        import router.risk.model  # noqa: F401
    except ImportError:
        print(json.dumps({"bench": "dataco", "skipped": "router.risk.model is not in this tree", "machine": machine_facts()}))
        return
    out: dict = {"bench": "dataco", "data": str(DATACO_RELATIVE_PATH), "machine": machine_facts()}
    if args.tune:
        t0 = time.perf_counter()
        best, table = select_dataco_params(path, DATACO_GRID)
        out["tune"] = {"best": best, "candidates": len(table), "seconds": round(time.perf_counter() - t0, 1),
                       "matches_DATACO_PARAMS": best == DATACO_PARAMS}
    runs = {"tuned": DATACO_PARAMS} if args.quick else {"tuned": DATACO_PARAMS, "defaults": None}
    for name, params in runs.items():
        r = evaluate_dataco(path, model_params=params)
        out[name] = r
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
