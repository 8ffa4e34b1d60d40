"""router: an order-routing optimization engine.

>>> from router import Router, Order
"""

from router.domain import Customer, Destination, Leg, LegLine, Order, OrderLine, Plan
from router.errors import InvalidOrderError, RouterError, ScenarioError, UnknownDecisionError
from router.params import StrategyParams

__all__ = [
    "Customer",
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
__version__ = "0.1.0"
