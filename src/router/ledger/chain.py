"""The hash chain: canonical JSON and the entry hash, with no database in sight.

Every ledger entry stores ``hash = sha256(prev_hash + kind + entry_id + body)``
where ``body`` is the canonical JSON text of the entry and ``prev_hash`` is the
hash of the entry before it (64 zeros for the first one). Editing a body, an id
or a kind changes that entry's hash; deleting, inserting or reordering entries
breaks the ``prev_hash`` link of the entry after the change. Keeping these two
functions free of SQLAlchemy lets ``verify`` and any offline auditor share them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["ENTRY_KINDS", "GENESIS_HASH", "canonical_json", "entry_hash"]

#: ``prev_hash`` of the first entry of every chain.
GENESIS_HASH = "0" * 64

#: The kinds of entry the chain holds; each names the body key holding its id.
ENTRY_KINDS: dict[str, str] = {
    "decision": "decision_id",
    "override": "override_id",
    "outcome": "outcome_id",
}

# Sorted keys make the text independent of dict insertion order, so the same
# record always hashes the same. Numpy scalars/arrays are accepted because
# scores and features are numpy on the hot path and a stray float64 must not
# make a decision unrecordable.
_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` to the canonical UTF-8 JSON stored and hashed by the ledger.

    Parameters
    ----------
    obj
        A JSON-able value (dicts with ``str`` keys, lists, numbers, strings, ...).

    Returns
    -------
    bytes
        Compact JSON with sorted keys.

    Raises
    ------
    TypeError
        If ``obj`` holds a value JSON cannot represent (``orjson.JSONEncodeError``).
    """
    return orjson.dumps(obj, option=_CANONICAL)


def entry_hash(prev_hash: str, kind: str, entry_id: str, body: bytes | str) -> str:
    """Hash one entry and link it to the one before it.

    Parameters
    ----------
    prev_hash
        Hex hash of the previous entry, or :data:`GENESIS_HASH` for the first.
    kind
        One of :data:`ENTRY_KINDS`.
    entry_id
        The entry's unique id (decision, override or outcome id).
    body
        Canonical JSON of the entry, as bytes or as the stored text.

    Returns
    -------
    str
        Lower-case hex SHA-256 of ``prev_hash + kind + entry_id + body`` (UTF-8).
    """
    digest = hashlib.sha256((prev_hash + kind + entry_id).encode())
    digest.update(body if isinstance(body, bytes) else body.encode())
    return digest.hexdigest()
