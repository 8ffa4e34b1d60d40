"""The split search: plans that ship an order from several nodes, enumerated as arrays.

* :mod:`router.splits.bounds` -- lower bounds that skip sizes and subsets that cannot win;
* :mod:`router.splits.search` -- :class:`SplitSearch`, the enumeration (numpy reference);
* :mod:`router.splits.kernel` -- the same enumeration as one compiled loop (numba).
"""

from router.splits.bounds import SplitBounds
from router.splits.search import SplitSearch

__all__ = ["SplitBounds", "SplitSearch"]
