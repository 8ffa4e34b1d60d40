"""router: an order-routing optimization engine.

>>> from router import Router, Order
"""

__version__ = "0.1.0"  # before the imports: the engine records it in every decision

from router.domain import Customer, Destination, Leg, LegLine, Order, OrderLine, Plan
from router.engine import Decision, ReplayResult, Router
from router.errors import InvalidOrderError, RouterError, ScenarioError, UnknownDecisionError
from router.params import BoundaryParams, StrategyParams
from router.scenario import Scenario, load_scenario

__all__ = [
    "BoundaryParams",
    "Customer",
    "Decision",
    "ReplayResult",
    "Router",
    "Scenario",
    "load_scenario",
    "Destination",
    "InvalidOrderError",
    "Leg",
    "LegLine",
    "Order",
    "OrderLine",
    "Plan",
    "RouterError",
    "ScenarioError",
    "StrategyParams",
    "UnknownDecisionError",
]
