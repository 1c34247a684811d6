"""Node ids: a type prefix and a ULID in Crockford base 32."""

from __future__ import annotations

import random

from lineagehub.graph import ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def digit_by_digit(value: int) -> str:
    digits = []
    for _ in range(26):
        digits.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(digits))


def test_base32_is_crockford_most_significant_first() -> None:
    assert ids.base32(0) == "0" * 26
    assert ids.base32(2**128 - 1) == "7" + "Z" * 25
    numbers = random.Random(7)
    for _ in range(1000):
        value = numbers.getrandbits(128)
        assert ids.base32(value) == digit_by_digit(value)


def test_new_ids_are_typed_and_sort_by_time() -> None:
    first = ids.new_id("ModelVersion")
    prefix, _, ulid = first.partition("_")
    assert ids.label_of(first) == "ModelVersion" and prefix == "mv"
    assert len(ulid) == 26 and set(ulid) <= set(CROCKFORD)
    later = [ids.new_id("ModelVersion") for _ in range(50)]
    # The first ten digits are the millisecond: never earlier than an id made before.
    assert all(first.partition("_")[2][:10] <= other.partition("_")[2][:10] for other in later)
