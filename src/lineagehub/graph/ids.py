"""The one id scheme: a type prefix and a time-ordered, random ULID.

``mv_01JD5Q5Z6B3N4K8W2X7Y9T0R1S`` — the prefix names the node type, so an id alone tells
which label to look in (an index-backed lookup) and a wrong-type id is rejected before
any query; the ULID part sorts by creation time and is globally unique.
"""

from __future__ import annotations

import os
import time

from lineagehub.graph.errors import ValidationFailed
from lineagehub.graph.vocabulary import NODE_TYPES

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES: dict[str, str] = {label: t.prefix for label, t in NODE_TYPES.items()}
# Governance records: not lineage nodes, but ids of the same scheme.
PREFIXES.update(
    ApiToken="tok",
    AuditEvent="aud",
    AliasMove="amv",
    ApprovalDecision="apd",
    RegistryEvent="evt",
    Webhook="whk",
)
LABELS_BY_PREFIX: dict[str, str] = {prefix: label for label, prefix in PREFIXES.items()}


# Two base-32 digits for every 10-bit value: a ULID's 26 digits in 13 lookups.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_SHIFTS = tuple(range(120, -1, -10))


def base32(value: int) -> str:
    """A 128-bit number as 26 Crockford base-32 digits, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def _ulid() -> str:
    return base32((int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big"))


def new_id(label: str) -> str:
    return f"{PREFIXES[label]}_{_ulid()}"


def label_of(node_id: str, *, field: str = "id") -> str:
    """The node label an id belongs to; VALIDATION when it is not one of ours."""
    prefix, sep, rest = node_id.partition("_")
    if not sep or prefix not in LABELS_BY_PREFIX or len(rest) != 26:
        raise ValidationFailed(f"{node_id!r} is not a lineagehub id", field=field)
    return LABELS_BY_PREFIX[prefix]


def expect_label(node_id: str, label: str, *, field: str = "id") -> None:
    """VALIDATION when ``node_id`` is not an id of a ``label`` node."""
    actual = label_of(node_id, field=field)
    if actual != label:
        raise ValidationFailed(
            f"{node_id!r} is the id of a {actual}, not of a {label}", field=field
        )
