"""The ledger's hash chain on its own: canonical JSON and the entry hash, with known digests.

The ledger tests compare stored hashes with ``entry_hash`` itself, so they pass whatever
``entry_hash`` computes. Here every expected digest comes from hashlib directly, and one
is written out, so a change of algorithm, order or encoding fails.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from router.ledger.chain import ENTRY_KINDS, GENESIS_HASH, canonical_json, entry_hash


def sha256_hex(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def test_genesis_is_64_zeros_and_the_kinds_name_their_id_keys():
    assert GENESIS_HASH == "0" * 64
    assert ENTRY_KINDS == {"decision": "decision_id", "override": "override_id", "outcome": "outcome_id"}


# --------------------------------------------------------------- canonical_json


def test_canonical_json_is_compact_with_sorted_keys_at_every_level():
    assert canonical_json({"b": 1, "a": {"d": [3, 1], "c": None}}) == b'{"a":{"c":null,"d":[3,1]},"b":1}'


def test_canonical_json_does_not_depend_on_insertion_order():
    one = {"order_id": "o1", "lines": [{"sku": "S", "qty": 2}], "score": 1.25}
    other = {"score": 1.25, "lines": [{"qty": 2, "sku": "S"}], "order_id": "o1"}
    assert canonical_json(one) == canonical_json(other)


def test_canonical_json_keeps_utf8_text_and_exact_floats():
    assert canonical_json({"city": "Zürich", "x": 0.1}) == '{"city":"Zürich","x":0.1}'.encode()


def test_canonical_json_accepts_numpy_scalars_and_arrays():
    data = {"score": np.float64(2.5), "n": np.int64(3), "avail": np.array([[1, 2], [3, 4]])}
    assert canonical_json(data) == b'{"avail":[[1,2],[3,4]],"n":3,"score":2.5}'


def test_canonical_json_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError):
        canonical_json({"when": object()})


# ------------------------------------------------------------------- entry_hash


def test_entry_hash_is_sha256_of_prev_kind_id_and_body_concatenated():
    body = canonical_json({"decision_id": "d1", "status": "routed"})
    expected = sha256_hex(GENESIS_HASH.encode() + b"decision" + b"d1" + body)
    assert entry_hash(GENESIS_HASH, "decision", "d1", body) == expected
    # written out once, so the test fails if both sides ever drift together
    assert expected == "851d7810d5cda4f07dc388247cf493e7fa6e9a3c1c317d835242307ebe39cd3d"


def test_a_body_hashes_the_same_as_bytes_and_as_stored_text():
    body = canonical_json({"decision_id": "d2", "note": "café"})
    prev = sha256_hex(b"previous entry")
    from_bytes = entry_hash(prev, "override", "o9", body)
    assert entry_hash(prev, "override", "o9", body.decode()) == from_bytes
    assert from_bytes == sha256_hex(prev.encode() + b"override" + b"o9" + body)


def test_changing_any_part_changes_the_hash():
    body = canonical_json({"decision_id": "d1"})
    base = entry_hash(GENESIS_HASH, "decision", "d1", body)
    changed = [
        entry_hash("1" + GENESIS_HASH[1:], "decision", "d1", body),
        entry_hash(GENESIS_HASH, "outcome", "d1", body),
        entry_hash(GENESIS_HASH, "decision", "d2", body),
        entry_hash(GENESIS_HASH, "decision", "d1", body + b" "),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    assert all(len(h) == 64 and h == h.lower() for h in [base, *changed])


def test_entries_chain_each_hash_into_the_next():
    bodies = [canonical_json({"decision_id": f"d{i}"}) for i in range(3)]
    prev, hashes = GENESIS_HASH, []
    for i, body in enumerate(bodies):
        prev = entry_hash(prev, "decision", f"d{i}", body)
        hashes.append(prev)
    # recomputed by hand from hashlib, link by link
    expected, link = [], GENESIS_HASH
    for i, body in enumerate(bodies):
        link = sha256_hex(f"{link}decision{'d' + str(i)}".encode() + body)
        expected.append(link)
    assert hashes == expected
    # the same entries in another order end at another head
    swapped = entry_hash(entry_hash(GENESIS_HASH, "decision", "d1", bodies[1]), "decision", "d0", bodies[0])
    assert swapped != hashes[1]
