"""Orders and events from outside: their time, their place and their types.

Every refusal is a typed error naming the field, the value and the limit, and changes
nothing: no unit reserved, no decision recorded. Each rule has a refused / accepted pair.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import SCENARIOS, T0, TINY, FixedClock

from router import InvalidOrderError, Order, ScenarioError, StrategyParams
from router.engine import Router
from router.errors import InvalidEventError
from router.params import BoundaryParams
from router.scenario import load_scenario
from router.state import parse_event


def _order(**fields) -> dict:
    base = {
        "order_id": "b1",
        "customer": {"customer_id": "c1", "tier": "standard"},
        "destination": {"region": "north"},
        "lines": [{"sku": "SKU-1", "qty": 1}],
        "created_at": T0.isoformat(),
    }
    return {**base, **fields}


def _refused(router: Router, order, field: str, *fragments: str) -> InvalidOrderError:
    """Route ``order``, expect InvalidOrderError on ``field`` with each fragment, and no change."""
    version = router.state.version
    with pytest.raises(InvalidOrderError) as info:
        router.route(order)
    assert info.value.field == field
    for fragment in fragments:
        assert fragment in info.value.reason
    assert router.state.version == version
    assert int(router.state.reserved.sum()) == 0
    assert router.ledger.count_decisions() == 0
    return info.value


def _variant(tmp_path, base: str, boundary: dict):
    """The tiny scenario ``base`` with its own ``boundary`` section."""
    path = tmp_path / f"{base}-boundary.yaml"
    path.write_text(f"extends: {TINY / (base + '.yaml')}\nboundary: {json.dumps(boundary)}\n", encoding="utf-8")
    return load_scenario(path)


# ------------------------------------------------------------------ created_at


def test_an_order_stamped_weeks_before_the_clock_is_refused_naming_its_age_and_the_limit(tiny_router, clock):
    # the README example's trap: an order from 2 November routed on 2 December
    r = tiny_router("two_warehouses_one_carrier")
    clock.now = T0 + timedelta(days=30)
    _refused(
        r,
        _order(),
        "created_at",
        "2026-11-02T00:00:00+00:00 is 720.0 h before the router's clock (2026-12-02T00:00:00+00:00)",
        "over the 168 h limit (boundary.max_order_age_hours)",
    )


def test_an_order_exactly_at_the_age_limit_is_routed(tiny_router, clock):
    r = tiny_router("two_warehouses_one_carrier")
    clock.now = T0 + timedelta(hours=BoundaryParams().max_order_age_hours)
    d = r.route(_order())
    assert d.status == "routed"
    # its promise (120 h standard) ran out 48 h ago, and the record says so
    assert d.plan.promise_hours == pytest.approx(-48.0)


def test_an_order_from_the_future_of_the_clock_is_refused_beyond_the_skew_allowance(tiny_router, clock):
    r = tiny_router("two_warehouses_one_carrier")
    _refused(
        r,
        _order(created_at=(T0 + timedelta(minutes=10)).isoformat()),
        "created_at",
        "is 10 min ahead of the router's clock (2026-11-02T00:00:00+00:00)",
        "at most 5 min of clock skew is accepted (boundary.max_clock_skew_minutes)",
    )
    _refused(r, _order(created_at="2027-11-02T00:00:00Z"), "created_at", "is 8,760.0 h ahead")


def test_an_order_within_the_skew_allowance_is_routed(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    assert r.route(_order(created_at=(T0 + timedelta(minutes=5)).isoformat())).status == "routed"


def test_the_check_reads_the_routers_injected_clock_not_the_wall_clock(tmp_path):
    # a simulation or a replay of 2031 decides at its own time
    later = datetime(2031, 5, 4, 12, 0, tzinfo=timezone.utc)
    r = Router(load_scenario(TINY / "two_warehouses_one_carrier.yaml"), ledger=None, clock=FixedClock(later))
    assert r.route(_order(created_at=later.isoformat())).status == "routed"
    with pytest.raises(InvalidOrderError, match="before the router's clock"):
        r.route(_order(created_at=T0.isoformat()))


def test_the_age_limit_is_a_scenario_knob(tmp_path, clock):
    sc = _variant(tmp_path, "two_warehouses_one_carrier", {"max_order_age_hours": 24})
    assert sc.boundary == BoundaryParams(max_order_age_hours=24)
    r = Router(sc, ledger="sqlite://", clock=clock)
    clock.now = T0 + timedelta(hours=30)
    _refused(r, _order(), "created_at", "30.0 h before", "over the 24 h limit")
    clock.now = T0 + timedelta(hours=20)
    assert r.route(_order()).status == "routed"


def test_a_stale_order_in_a_batch_is_named_by_position_and_the_batch_changes_nothing(tiny_router, clock):
    r = tiny_router("two_warehouses_one_carrier")
    clock.now = T0 + timedelta(days=8)
    fresh = _order(order_id="fresh", created_at=clock.now.isoformat())
    with pytest.raises(InvalidOrderError) as info:
        r.route_batch([fresh, _order(order_id="stale")])
    assert info.value.field == "orders[1].created_at"
    assert "192.0 h before" in info.value.reason
    assert int(r.state.reserved.sum()) == 0 and r.ledger.count_decisions() == 0


# ----------------------------------------------------------------- destination


@pytest.fixture
def national_router(tmp_path):
    sc = load_scenario(SCENARIOS / "national.yaml")
    r = Router(sc, ledger=f"sqlite:///{tmp_path / 'national.sqlite'}", clock=FixedClock(sc.start))
    yield r
    r.close()


def _national_order(dest: dict) -> dict:
    return _order(destination=dest, lines=[{"sku": "SKU-003", "qty": 1}], created_at="2026-11-02T00:00:00Z")


def test_london_on_the_us_network_is_refused_naming_the_distance_to_the_nearest_region(national_router):
    _refused(
        national_router,
        _national_order({"lat": 51.5074, "lon": -0.1278}),
        "destination",
        "(51.5074, -0.1278) is 3,271 mi from the nearest region 'boston-ma'",
        "(limit 600 mi, boundary.max_region_distance_miles)",
    )


def test_coordinates_far_from_the_region_they_name_are_refused(national_router):
    _refused(
        national_router,
        _national_order({"lat": 51.5074, "lon": -0.1278, "region": "chicago-il"}),
        "destination",
        "is 3,950 mi from its region 'chicago-il'",
    )


@pytest.mark.parametrize(
    "place, lat, lon",
    [("Chicago", 41.8781, -87.6298), ("Williston ND, the US town farthest from a region", 48.147, -103.618)],
)
def test_a_us_point_within_the_network_routes_as_before(national_router, place, lat, lon):
    d = national_router.route(_national_order({"lat": lat, "lon": lon}))
    assert d.status == "routed", place
    assert national_router.ledger.count_decisions() == 1


def test_the_distance_limit_is_a_scenario_knob(tmp_path, clock):
    # (41 N, 80 W) is 521 mi east of the region 'north' (41 N, 90 W): inside the default
    sc = _variant(tmp_path, "two_warehouses_one_carrier", {"max_region_distance_miles": 100})
    r = Router(sc, ledger="sqlite://", clock=clock)
    _refused(r, _order(destination={"lat": 41.0, "lon": -80.0}), "destination", "521 mi from the nearest region 'north' (limit 100 mi")
    assert r.route(_order(destination={"lat": 41.5, "lon": -90.5})).status == "routed"
    default = Router(load_scenario(TINY / "two_warehouses_one_carrier.yaml"), ledger=None, clock=clock)
    assert default.route(_order(destination={"lat": 41.0, "lon": -80.0})).status == "routed"


# ---------------------------------------------------------------- strict types


@pytest.mark.parametrize("qty, shown", [("2", "'2'"), (2.0, "2.0"), (True, "True")])
def test_a_quantity_must_be_an_integer_not_text_a_float_or_a_bool(tiny_router, qty, shown):
    r = tiny_router("two_warehouses_one_carrier")
    _refused(
        r,
        _order(lines=[{"sku": "SKU-1", "qty": qty}]),
        "lines[0].qty",
        f"Input should be a valid integer, got {shown}",
    )


@pytest.mark.parametrize(
    "fields, field, fragment",
    [
        ({"destination": {"lat": "41.0", "lon": -90.0}}, "destination.lat", "Input should be a valid number, got '41.0'"),
        ({"value_usd": "12.50"}, "value_usd", "Input should be a valid number, got '12.50'"),
        ({"created_at": 1793577600}, "created_at", "give an ISO 8601 time such as 2026-11-02T12:00:00Z, not the number 1793577600"),
        ({"order_id": 17}, "order_id", "Input should be a valid string, got 17"),
    ],
)
def test_numbers_times_and_ids_must_have_their_own_type(tiny_router, fields, field, fragment):
    r = tiny_router("two_warehouses_one_carrier")
    _refused(r, _order(**fields), field, fragment)


def test_ints_are_valid_floats_and_iso_strings_valid_times(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(_order(destination={"lat": 41, "lon": -90}, value_usd=12, created_at="2026-11-02T00:00:00Z"))
    assert d.status == "routed"
    # JSON text parses the same way (JSON has no datetime type)
    text = json.dumps(_order(lines=[{"sku": "SKU-1", "qty": 2}], value_usd=12))
    assert Order.model_validate_json(text).lines[0].qty == 2


@pytest.mark.parametrize(
    "event, field, fragment",
    [
        ({"type": "stock_set", "node": "WH-A", "sku": "SKU-1", "on_hand": "5"}, "stock_set.on_hand", "got '5'"),
        ({"type": "shipped", "node": "WH-A", "sku": "SKU-1", "qty": 1.0}, "shipped.qty", "valid integer, got 1.0"),
        ({"type": "node_status", "node": "WH-A", "closed": "no"}, "node_status.closed", "valid boolean, got 'no'"),
    ],
)
def test_events_from_outside_are_strict_too(tiny_router, event, field, fragment):
    r = tiny_router("two_warehouses_one_carrier")
    version = r.state.version
    with pytest.raises(InvalidEventError) as info:
        r.state.apply(event)
    assert info.value.field == field
    assert fragment in info.value.reason
    assert r.state.version == version


def test_an_int_is_a_valid_float_in_an_event():
    assert parse_event({"type": "load_update", "node": "WH-A", "queue_orders": 3}).queue_orders == 3.0


# ----------------------------------------------------------------------- files


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("name: caf\xe9\n".encode("latin-1"), "cannot read the scenario: not UTF-8 text (byte 9: invalid continuation byte)"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "cannot read the scenario: not UTF-8 text (byte 1: invalid start byte)"),
    ],
    ids=["latin-1", "gzip"],
)
def test_a_scenario_file_that_is_not_utf8_is_a_scenario_error_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.field == "<file>" and info.value.source == str(path)
    assert fragment in info.value.reason


def test_a_scenario_file_with_binary_bytes_that_decode_is_a_yaml_error_naming_the_position(tmp_path):
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"name: x\n\x00\x01")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.field == "character 8"
    assert info.value.reason == "not valid YAML: special characters are not allowed (#x0000)"


def test_a_params_file_that_cannot_be_read_is_a_scenario_error_naming_the_file(tmp_path):
    path = tmp_path / "params.toml"
    path.write_bytes("[params]\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        StrategyParams.from_toml(path)
    path.write_text("[params]\nmax_splits = 0\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        StrategyParams.from_toml(path)
    assert info.value.field == "max_splits" and info.value.source == str(path)
    assert "greater than or equal to 1" in info.value.reason
    path.write_text("[params]\nmax_splits = 2\n", encoding="utf-8")
    assert StrategyParams.from_toml(path).max_splits == 2
