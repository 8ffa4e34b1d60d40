"""Order streams drawn from a scenario's demand process (seeded, no global state).

Arrivals follow a non-homogeneous Poisson process: ``orders_per_day`` spread over
the day by ``hourly_profile`` and multiplied inside ``peaks``. Each order's
region is drawn by ``demand_weight``, its tier by ``tier_mix``, its number of
distinct lines uniformly, SKUs by a Zipf popularity (exponent 0 = uniform)
without repetition, and units per line uniformly.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from router.domain import Customer, Destination, Order, OrderLine
from router.scenario import Scenario

__all__ = ["arrival_hours", "generate_orders"]


def _rate_per_hour(scenario: Scenario, hours: np.ndarray) -> np.ndarray:
    d = scenario.demand
    profile = np.asarray(d.hourly_profile, dtype=float)
    profile = profile / profile.mean()
    rate = d.orders_per_day / 24.0 * profile[(np.floor(hours) % 24).astype(int)]
    for p in d.peaks:
        rate = np.where((hours >= p.start_hour) & (hours < p.end_hour), rate * p.multiplier, rate)
    return rate


def arrival_hours(scenario: Scenario, horizon_hours: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (hours since the scenario start) by thinning a homogeneous process."""
    grid = np.arange(0.0, horizon_hours, 0.25)
    lam_max = float(_rate_per_hour(scenario, grid).max()) if len(grid) else 0.0
    if lam_max <= 0:
        return np.zeros(0)
    n = rng.poisson(lam_max * horizon_hours)
    t = np.sort(rng.uniform(0.0, horizon_hours, size=n))
    keep = rng.uniform(0.0, 1.0, size=n) < _rate_per_hour(scenario, t) / lam_max
    return t[keep]


def generate_orders(
    scenario: Scenario,
    n_orders: int | None = None,
    *,
    seed: int | None = None,
    horizon_hours: float | None = None,
    prefix: str = "ORD",
) -> list[Order]:
    """A reproducible order stream: ``n_orders`` orders, or every arrival within the horizon.

    With ``n_orders`` the arrivals of the demand process are drawn over as many
    horizons as needed and the first ``n_orders`` kept.
    """
    rng = np.random.default_rng(scenario.seed if seed is None else seed)
    d = scenario.demand
    horizon = horizon_hours if horizon_hours is not None else scenario.spec.horizon_days * 24.0
    if n_orders is not None:
        per_hour = d.orders_per_day / 24.0
        horizon = max(horizon, 1.3 * n_orders / per_hour + 1.0)
    t = arrival_hours(scenario, horizon, rng)
    if n_orders is not None:
        while len(t) < n_orders:  # pathological profiles: extend the horizon
            horizon *= 2
            t = arrival_hours(scenario, horizon, rng)
        t = t[:n_orders]
    m = len(t)
    regions = scenario.regions
    if not regions:
        raise ValueError("scenario has no regions to draw destinations from")
    w = np.array([r.demand_weight for r in regions], dtype=float)
    region_i = rng.choice(len(regions), size=m, p=w / w.sum())
    tiers = list(d.tier_mix)
    tp = np.array([d.tier_mix[x] for x in tiers], dtype=float)
    tier_i = rng.choice(len(tiers), size=m, p=tp / tp.sum())
    k_skus = len(scenario.skus)
    ranks = np.arange(1, k_skus + 1, dtype=float)
    pop = ranks ** (-d.sku_zipf_exponent)
    pop = pop / pop.sum()
    n_lines = rng.integers(d.lines_per_order_min, min(d.lines_per_order_max, k_skus) + 1, size=m)
    # Orders are built with model_construct: every field comes from the validated
    # scenario or from the draws above (distinct SKUs, positive units, an aware start),
    # and pydantic's validation was two thirds of the ~0.1 ms each order cost to draw.
    # The random draws and their order are unchanged, so a seed gives the same stream.
    sku_ids = [sk.id for sk in scenario.skus]
    sku_value = [sk.value_usd for sk in scenario.skus]
    dests = [Destination.model_construct(lat=r.lat, lon=r.lon, region=r.id) for r in regions]
    region_l, tier_l, t_l = region_i.tolist(), tier_i.tolist(), t.tolist()
    # Lines are frozen models, and a stream repeats the same (SKU, units) pairs: build
    # each pair once and share it between orders.
    line_cache: dict[tuple[int, int], OrderLine] = {}

    def line(s: int, q: int) -> OrderLine:
        ln = line_cache.get((s, q))
        if ln is None:
            ln = line_cache[(s, q)] = OrderLine.model_construct(sku=sku_ids[s], qty=q)
        return ln

    orders = []
    for i in range(m):
        picks = rng.choice(k_skus, size=int(n_lines[i]), replace=False, p=pop).tolist()
        units = rng.integers(d.units_per_line_min, d.units_per_line_max + 1, size=len(picks)).tolist()
        created = scenario.start + timedelta(hours=t_l[i])
        cust = f"C-{int(rng.integers(0, 10**7)):07d}"
        # lines in catalogue order; the value is priced on the lines themselves
        lines = list(zip(sorted(picks), units))
        orders.append(
            Order.model_construct(
                order_id=f"{prefix}-{i:07d}",
                customer=Customer.model_construct(customer_id=cust, tier=tiers[tier_l[i]]),
                destination=dests[region_l[i]],
                lines=tuple(line(s, q) for s, q in lines),
                value_usd=float(sum(sku_value[s] * q for s, q in lines)),
                created_at=created,
                promised_by=None,
                service_level=None,
            )
        )
    return orders
