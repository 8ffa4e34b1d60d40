"""Common random numbers: every random draw of the simulated world is a pure function of its key.

A draw is ``f(seed, stream, *key)``: the key (for example the order index, the
node and the carrier option of a transit draw) is folded into the seed with the
splitmix64 finaliser, one part at a time, and the resulting 64-bit word is
turned into a uniform or a standard normal number. Nothing is consumed from a
sequential generator, so a draw never depends on which other draws were made
before it. That is what makes strategy comparisons fair (*common random
numbers*, Law & Kelton, *Simulation Modeling and Analysis*, ch. 11): when two
strategies send order 17 from node 3 with option 5, both see the same transit
noise, whatever else they did; when they send it elsewhere, each sees the draw
of its own lane.

splitmix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014) is a bijective 64-bit mixer that passes BigCrush
when used as a counter-based generator; chaining it over the key parts gives
well-spread, reproducible words on every platform (numpy unsigned arithmetic
wraps modulo 2**64 by definition). Everything here is vectorised over numpy
arrays of keys.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["key_words", "normal", "stream_id", "uniform"]

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_M53 = 2.0**-53


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 step: add the golden-ratio increment, then finalise (bijective)."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def stream_id(name: str) -> int:
    """A fixed 64-bit constant per stream name (blake2b, so it is the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def key_words(seed: int, stream: str, *parts: np.ndarray | int) -> np.ndarray:
    """64-bit words, one per element of the broadcast key parts.

    Parameters
    ----------
    seed : int
        The run's seed (any Python int; reduced modulo 2**64).
    stream : str
        What is drawn (``"transit"``, ``"pick"``): different streams never share words.
    *parts : array_like of int
        The key, e.g. order index, node index, option index; broadcast together.
        Parts must be non-negative.
    """
    base = np.uint64((seed ^ stream_id(stream)) & _MASK64)
    with np.errstate(over="ignore"):
        h = _mix(np.atleast_1d(np.asarray(base, dtype=np.uint64)))
        for p in parts:
            arr = np.atleast_1d(np.asarray(p)).astype(np.uint64)
            h = _mix(h ^ arr)
    return h


def uniform(words: np.ndarray, lane: int = 0) -> np.ndarray:
    """Uniform numbers in the open interval (0, 1), 53 bits each, from ``words``.

    ``lane`` derives independent uniforms from one key (0, 1, 2, ...).
    """
    with np.errstate(over="ignore"):
        w = _mix(words ^ np.uint64(lane + 1))
    return ((w >> _S11).astype(np.float64) + 0.5) * _TWO_M53


def normal(words: np.ndarray) -> np.ndarray:
    """Standard normal numbers from ``words`` (Box-Muller on two derived uniforms)."""
    u1 = uniform(words, 0)
    u2 = uniform(words, 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
