"""ordered_map: results in item order on every backend, clear errors for bad arguments."""

from __future__ import annotations

import operator

import pytest

from router.distributed import ordered_map


@pytest.mark.parametrize("backend", ["serial", "local"])
def test_results_come_back_in_item_order(backend):
    seen = []
    out = ordered_map(operator.neg, [3, -1, 4, -1, 5], backend=backend, workers=2, progress=lambda d, t: seen.append((d, t)))
    assert out == [-3, 1, -4, 1, -5]
    assert seen[-1] == (5, 5) and len(seen) == 5


def test_nothing_to_map_starts_nothing():
    assert ordered_map(operator.neg, [], backend="dask") == []


@pytest.mark.parametrize(
    "kwargs, message",
    [({"backend": "threads"}, "backend must be one of local, dask, serial, got 'threads'"), ({"workers": 0}, "workers must be >= 1, got 0")],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ordered_map(operator.neg, [1], **kwargs)
