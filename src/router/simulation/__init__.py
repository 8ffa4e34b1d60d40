"""Offline simulation: strategies compared on the same seeded world.

>>> from router import load_scenario
>>> from router.simulation import simulate, kpis
>>> result = simulate(load_scenario("scenarios/national.yaml"), "optimizer", seed=1, max_orders=200)  # doctest: +SKIP
>>> kpis(result)["overall"]["on_time_rate"]  # doctest: +SKIP

* :mod:`~router.simulation.world`: the hidden delay process (picks, cut-offs,
  lane capacity, transit) and how it feeds the router's live state;
* :mod:`~router.simulation.crn`: counter-based random draws (common random numbers);
* :mod:`~router.simulation.simulator`: the loop through the real engine, outcomes to the ledger;
* :mod:`~router.simulation.kpis`: per-order tables and KPI summaries.
"""

from router.simulation.kpis import kpis, legs_frame, outcomes_frame
from router.simulation.simulator import SimResult, Simulation, outcome_bodies, simulate, write_outcomes
from router.simulation.world import LegRecords, World, WorldParams

__all__ = [
    "LegRecords",
    "SimResult",
    "Simulation",
    "World",
    "WorldParams",
    "kpis",
    "legs_frame",
    "outcome_bodies",
    "outcomes_frame",
    "simulate",
    "write_outcomes",
]
