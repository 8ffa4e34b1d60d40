"""The peer's single-order case (nextmv order fulfillment) mapped onto the router's model.

Source: ../shared/data/nextmv_order_fulfillment (see ../shared/data/README.md). One order
of 5 items, 2 distribution centres, 2 carriers with weight tiers, dimensional weight and
a volume capacity per centre x carrier. The mapping:

- each centre is a :class:`~router.domain.Node` with ``handling_per_carton_usd`` =
  ``handling_cost`` and ``carton_volume_cuft`` = ``carton_volume``;
- each carrier is a :class:`~router.domain.Carrier` with one service whose
  :class:`~router.domain.CostModel` holds the weight tiers and rates (the JSON gives them
  per centre x carrier; they are identical across centres here, which is asserted);
- each centre x carrier is a :class:`~router.domain.Lane` with
  ``max_shipment_volume_cuft`` = ``carrier_capacities[dc][carrier]``;
- SKUs carry unit weight and volume; stock is the inventory.

:func:`nextmv_problem` builds the :class:`~router.solver.split.SplitProblem` from those
domain objects with the cost formulas of the domain docstrings (distance 0 here), so the
case checks the mapping the router relies on, not a hand-made array. Arc order is
centre-major: (dc1, carrier1), (dc1, carrier2), (dc2, carrier1), (dc2, carrier2).

In this problem the only per-unit cost is the per-carton handling, so an arc's
``unit_usd`` breakdown from :func:`~router.solver.split.arc_cost` *is* its handling part
and the rest (tier rate) is delivery: see :func:`cost_parts`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from router.domain import Carrier, Lane, Node, Sku
from router.solver.split import SplitProblem, arc_cost

__all__ = [
    "DATA_DIR",
    "SERVICE",
    "cost_parts",
    "data_available",
    "load_input",
    "nextmv_problem",
    "nextmv_scenario_dict",
    "peer_plan_units",
    "problem_from_domain",
]

#: project root = parent of tests/; the shared data sits next to the project.
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/nextmv_order_fulfillment"
SKIP_REASON = f"peer case data not found: {DATA_DIR} (../shared/data/nextmv_order_fulfillment)"
SERVICE = "parcel"
# Distance must not matter: centres and destination share one arbitrary point.
_LAT, _LON = 40.0, -100.0


def data_available() -> bool:
    """True when both JSON files of the peer's case are present."""
    return (DATA_DIR / "input.json").is_file() and (DATA_DIR / "expected_output.json").is_file()


@lru_cache(maxsize=1)
def load_input() -> dict:
    """The peer's input.json as a dict."""
    return json.loads((DATA_DIR / "input.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _load_output() -> dict:
    return json.loads((DATA_DIR / "expected_output.json").read_text(encoding="utf-8"))


def _carrier_tiers(data: dict) -> dict[str, tuple[list[float], list[float]]]:
    """Per-carrier (bounds, rates), checking they do not depend on the centre."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for dc, per_carrier in data["carrier_delivery_costs"].items():
        for carrier, card in per_carrier.items():
            tiers = ([float(b) for b in card["weight_tiers"]], [float(r) for r in card["weight_rates"]])
            # The router prices a carrier service the same from every node; if the peer's
            # cards differed per centre, the mapping would need one service per centre.
            assert out.setdefault(carrier, tiers) == tiers, (
                f"{dc}/{carrier}: weight tiers differ from another centre's; per-carrier tiers do not fit"
            )
    return out


def nextmv_scenario_dict() -> dict:
    """The case as a scenario mapping in the format of ``router.scenario.ScenarioFile``.

    Nodes, carriers, lanes, SKUs and stock as described in the module docstring; one
    region ``dest`` at the same coordinates as the centres; one tier ``standard`` with a
    long promise; params with ``max_splits`` 2 and every non-cost weight set to 0 so that
    the router's score is the peer's cost.
    """
    data = load_input()
    tiers = _carrier_tiers(data)
    dims = data["carrier_dimensional_weight_factors"]
    nodes = [
        {
            "id": dc["distribution_center_id"],
            "kind": "dc",
            "lat": _LAT,
            "lon": _LON,
            "region": "dest",
            "handling_per_carton_usd": float(dc["handling_cost"]),
            "carton_volume_cuft": float(data["carton_volume"]),
        }
        for dc in data["distribution_centers"]
    ]
    carriers = [
        {
            "id": carrier,
            "dim_weight_factor_lb_per_cuft": float(dims[carrier]),
            "services": [
                {"name": SERVICE, "cost": {"weight_tiers_lb": bounds, "weight_rates_usd": rates}}
            ],
        }
        for carrier, (bounds, rates) in tiers.items()
    ]
    lanes = [
        {"node": dc, "carrier": carrier, "service": SERVICE, "max_shipment_volume_cuft": float(cap)}
        for dc, caps in data["carrier_capacities"].items()
        for carrier, cap in caps.items()
    ]
    skus = [
        {"id": it["item_id"], "unit_weight_lb": float(it["unit_weight"]), "unit_volume_cuft": float(it["unit_volume"])}
        for it in data["items"]
    ]
    stock = {dc["distribution_center_id"]: {k: int(v) for k, v in dc["inventory"].items()} for dc in data["distribution_centers"]}
    return {
        "name": "nextmv-order-fulfillment",
        "description": "Peer's single-order case: 2 centres, 2 carriers with weight tiers and dim weight.",
        "source": "github.com/nextmv-io/community-apps@32b282ff .nextmv/golden/order-fulfillment-gosdk (Apache-2.0)",
        "regions": [{"id": "dest", "lat": _LAT, "lon": _LON}],
        "nodes": nodes,
        "carriers": carriers,
        "lanes": lanes,
        "skus": skus,
        "stock": stock,
        "tiers": [{"name": "standard", "promise_hours": 24.0 * 30}],
        "params": {
            "max_splits": 2,
            "eta_hour_usd": 0.0,
            "late_hour_usd": 0.0,
            "late_risk_usd": 0.0,
            "load_usd": 0.0,
            "split_penalty_usd": 0.0,
        },
    }


def nextmv_order_qty() -> dict[str, int]:
    """The order: units per SKU id, in the input's item order."""
    return {it["item_id"]: int(it["quantity"]) for it in load_input()["items"]}


def problem_from_domain(
    nodes: list[Node],
    carriers: list[Carrier],
    lanes: list[Lane],
    skus: list[Sku],
    stock: dict[str, dict[str, int]],
    order_qty: dict[str, int],
    *,
    max_nodes: int,
    allow_quantity_split: bool = True,
    miles: float = 0.0,
) -> tuple[SplitProblem, list[tuple[str, str, str]]]:
    """Arrays for the split solver from domain objects (cost formulas of domain.py).

    Every node x carrier x service is an arc unless a lane disables it; a lane with
    ``service=None`` applies to every service of its carrier. Returns the problem and the
    arc labels ``(node, carrier, service)``.
    """
    sku_ids = list(order_qty)
    by_sku = {s.id: s for s in skus}
    weight = np.array([by_sku[s].unit_weight_lb for s in sku_ids], dtype=float)
    volume = np.array([by_sku[s].unit_volume_cuft for s in sku_ids], dtype=float)
    avail = np.array([[stock.get(n.id, {}).get(s, 0) for s in sku_ids] for n in nodes], dtype=np.int64)
    labels, arc_node, fixed, unit, per_lb, dim, bounds, rates, max_vol = [], [], [], [], [], [], [], [], []
    for i, node in enumerate(nodes):
        for carrier in carriers:
            for svc in carrier.services:
                match = [ln for ln in lanes if ln.node == node.id and ln.carrier == carrier.id
                         and ln.service in (None, svc.name)]
                if any(not ln.enabled for ln in match):
                    continue
                caps = [ln.max_shipment_volume_cuft for ln in match if ln.max_shipment_volume_cuft is not None]
                cm = svc.cost
                labels.append((node.id, carrier.id, svc.name))
                arc_node.append(i)
                fixed.append(cm.fixed_usd + node.handling_per_shipment_usd)
                unit.append(
                    cm.per_unit_usd + cm.per_unit_mile_usd * miles + node.handling_per_unit_usd
                    + node.handling_per_carton_usd * volume / node.carton_volume_cuft
                )
                per_lb.append(cm.per_lb_usd)
                dim.append(carrier.dim_weight_factor_lb_per_cuft)
                bounds.append(np.array(cm.weight_tiers_lb, dtype=float))
                rates.append(np.array(cm.weight_rates_usd, dtype=float))
                max_vol.append(min(caps) if caps else np.inf)
    problem = SplitProblem(
        qty=np.array([order_qty[s] for s in sku_ids], dtype=np.int64),
        unit_weight_lb=weight,
        unit_volume_cuft=volume,
        avail=avail,
        arc_node=np.array(arc_node, dtype=np.int64),
        arc_fixed_usd=np.array(fixed, dtype=float),
        arc_unit_usd=np.array(unit, dtype=float).reshape(len(labels), len(sku_ids)),
        arc_per_lb_usd=np.array(per_lb, dtype=float),
        arc_dim_factor=np.array(dim, dtype=float),
        arc_tier_bounds=tuple(bounds),
        arc_tier_rates=tuple(rates),
        arc_max_volume=np.array(max_vol, dtype=float),
        max_nodes=max_nodes,
        allow_quantity_split=allow_quantity_split,
    )
    return problem, labels


def _build() -> tuple[SplitProblem, list[tuple[str, str, str]]]:
    sc = nextmv_scenario_dict()
    return problem_from_domain(
        [Node.model_validate(n) for n in sc["nodes"]],
        [Carrier.model_validate(c) for c in sc["carriers"]],
        [Lane.model_validate(ln) for ln in sc["lanes"]],
        [Sku.model_validate(s) for s in sc["skus"]],
        sc["stock"],
        nextmv_order_qty(),
        max_nodes=sc["params"]["max_splits"],
    )


def nextmv_problem() -> SplitProblem:
    """The peer's order as a :class:`SplitProblem` (4 arcs, 5 lines, 2 nodes, max 2 nodes)."""
    return _build()[0]


def nextmv_arc_labels() -> list[tuple[str, str, str]]:
    """``(centre, carrier, service)`` of each arc of :func:`nextmv_problem`, in order."""
    return _build()[1]


def peer_plan_units() -> np.ndarray:
    """The peer's published assignments as ``units[L, K]`` (duplicate rows summed)."""
    problem, labels = _build()
    arc_of = {(node, carrier): l for l, (node, carrier, _) in enumerate(labels)}
    line_of = {sku: k for k, sku in enumerate(nextmv_order_qty())}
    units = np.zeros((problem.n_arcs, problem.n_lines), dtype=np.int64)
    (solution,) = _load_output()["solutions"]
    for a in solution["assignments"]:
        units[arc_of[(a["distribution_center_id"], a["carrier_id"])], line_of[a["item_id"]]] += int(a["quantity"])
    return units


def peer_reported() -> dict[str, float]:
    """The peer's own figures (under its quirky accounting): value, delivery, handling."""
    out = _load_output()
    custom = out["statistics"]["result"]["custom"]
    return {"value": float(out["statistics"]["result"]["value"]),
            "delivery": float(custom["delivery_costs"]), "handling": float(custom["handling_costs"])}


def cost_parts(problem: SplitProblem, units: np.ndarray) -> tuple[float, float]:
    """(delivery, handling) of a plan, from :func:`arc_cost` breakdowns.

    Handling is the per-unit part (here only the per-carton handling); delivery is the
    rest: fixed, per-lb and the tier rate.
    """
    delivery = handling = 0.0
    for l in range(problem.n_arcs):
        usd, parts = arc_cost(problem, l, units[l])
        handling += parts["unit_usd"]
        delivery += usd - parts["unit_usd"]
    return delivery, handling


def nextmv_order():
    """The peer's order as one of our Orders (destination: the region ``dest``)."""
    from router import Order

    return Order.model_validate(
        {
            "order_id": "nextmv-1",
            "customer": {"customer_id": "peer"},
            "destination": {"region": "dest"},
            "lines": [{"sku": s, "qty": q} for s, q in nextmv_order_qty().items()],
            "created_at": "2026-11-02T00:00:00Z",
        }
    )
