"""The one way lists are filtered, sorted and paginated.

A :class:`Filter` tree (AND/OR/NOT over field conditions and custom-property conditions)
is compiled to a parameterised Cypher predicate. Property names come only from the
entity's field whitelist, values only travel as parameters. A cursor holds the sort key
of its item (the sorted fields' values, then the id): the next page is the items sorting
after it, so pages neither skip nor repeat items when others are added or removed before
the cursor, and a deep page costs what the first does. An order on custom properties,
params or metrics (whose values may differ in type from node to node, where Cypher's
comparisons stop) pages by offset instead. Every page query returns its items and, on
request, the total in the same round trip, for one parent or for many parents at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import neo4j.time

from lineagehub.graph.errors import LimitExceeded, ValidationFailed
from lineagehub.graph.identity import in_scope, scope, scope_params
from lineagehub.graph.properties import (
    JSON_SLOT,
    KEY_PATTERN,
    METRIC_PREFIX,
    PARAM_PREFIX,
    SCALAR_PREFIX,
)
from lineagehub.graph.store import Row, Store, decode_node, node_map

# Namespaces of dynamic keys a filter or sort may reach into.
NAMESPACES = frozenset({SCALAR_PREFIX, PARAM_PREFIX, METRIC_PREFIX})


class Kind(Enum):
    """What a field holds, which decides the operators it accepts."""

    ID = "id"
    STRING = "string"
    ENUM = "enum"
    TIME = "time"
    NUMBER = "number"
    STRING_LIST = "string_list"


# SQL LIKE patterns, matched case-sensitively or not (see like_regex).
PATTERN_OPERATORS = frozenset({"like", "ilike"})
OPERATORS: dict[Kind, frozenset[str]] = {
    Kind.ID: frozenset({"eq", "ne", "in", "notIn"}),
    Kind.STRING: frozenset(
        {"eq", "ne", "in", "notIn", "contains", "startsWith", "endsWith", "exists"}
    )
    | PATTERN_OPERATORS,
    Kind.ENUM: frozenset({"eq", "ne", "in", "notIn"}),
    Kind.TIME: frozenset({"eq", "gt", "gte", "lt", "lte", "exists"}),
    Kind.NUMBER: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"}),
    Kind.STRING_LIST: frozenset({"contains", "containsAny", "containsAll", "exists"}),
}
CUSTOM_OPERATORS = (
    frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "startsWith", "exists"})
    | PATTERN_OPERATORS
)


@dataclass(frozen=True)
class Condition:
    """``<field> <op> <value>``; ``custom_key`` set means a custom property instead of a field."""

    field: str
    op: str
    value: Any
    path: str
    custom_key: str | None = None
    namespace: str = SCALAR_PREFIX  # for custom_key: custom property, param or metric
    via: str | None = None  # for custom_key: a related node's key (see ListSpec.related)


@dataclass(frozen=True)
class Filter:
    conditions: tuple[Condition, ...] = ()
    all_of: tuple[Filter, ...] = ()
    any_of: tuple[Filter, ...] = ()
    none_of: Filter | None = None


@dataclass(frozen=True)
class Sort:
    field: str | None
    descending: bool = False
    custom_key: str | None = None
    namespace: str = SCALAR_PREFIX
    via: str | None = None


@dataclass(frozen=True)
class Page:
    first: int
    offset: int = 0
    # The sort key of the item the page starts after (a key cursor), or None.
    after: tuple[Any, ...] | None = None

    @property
    def has_previous(self) -> bool:
        return self.after is not None or self.offset > 0


@dataclass(frozen=True)
class PageResult:
    rows: list[Row]
    cursors: list[str]  # one per row
    has_next: bool
    has_previous: bool
    total: int | None


@dataclass(frozen=True)
class ListSpec:
    """One kind of list: what to match, from where, and which fields it can filter/sort on.

    ``match`` is a literal pattern binding ``n`` (and ``p`` for the parent when
    ``parent_label`` is set), written in this code base, never built from input.
    """

    label: str
    match: str
    fields: dict[str, Kind]
    parent_label: str | None = None
    default_sort: tuple[Sort, ...] = (Sort("createdAt"),)
    # Related nodes whose keys filters and sorts may reach: name -> a literal pattern
    # binding ``src`` to the related node of ``n``.
    related: tuple[tuple[str, str], ...] = ()
    # What breaks ties: a property unique among the list's nodes and never null.
    tiebreak: tuple[str, Kind] = ("id", Kind.ID)
    # Fields every node of the list has, in an index on ``label`` that keeps them in order
    # (top-level lists): a page sorted on one of them first is read off the index from
    # where it starts, and reading stops after a page, however long the list.
    indexed: frozenset[str] = frozenset()


@dataclass
class Params:
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        name = f"f{len(self.values)}"
        self.values[name] = value
        return f"${name}"


# --- cursors -------------------------------------------------------------------------

_CURSOR_PREFIX = "offset:"
_KEY_PREFIX = "key:"
_CURSOR_MAX = 8192


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def _not_ours(cursor: str, field: str) -> ValidationFailed:
    return ValidationFailed(f"{cursor!r} is not a cursor this server gave out", field=field)


def _text(cursor: str) -> str:
    if len(cursor) > _CURSOR_MAX:
        return ""
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def decode_cursor(cursor: str, *, field: str = "after") -> int:
    text = _text(cursor)
    digits = text[len(_CURSOR_PREFIX) :]
    if (
        not (text.startswith(_CURSOR_PREFIX) and digits.isascii() and digits.isdigit())
        or len(digits) > 12
    ):
        raise _not_ours(cursor, field)
    return int(digits)


def is_key_cursor(cursor: str) -> bool:
    return _text(cursor).startswith(_KEY_PREFIX)


def order_key(spec: ListSpec, sorts: tuple[Sort, ...]) -> str | None:
    """What a key cursor of this list in this order is marked with (so that one of another
    list or order is refused, not misread), or None when the order pages by offset."""
    terms = sorts or spec.default_sort
    if any(s.custom_key is not None for s in terms):
        return None
    text = repr((spec.label, [(s.field, s.descending) for s in terms], spec.tiebreak[0]))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode_key_cursor(order: str, key: list[Any]) -> str:
    text = _KEY_PREFIX + order + ":" + json.dumps(key, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_key_cursor(
    cursor: str, text: str, spec: ListSpec | None, sorts: tuple[Sort, ...], field: str
) -> tuple[Any, ...]:
    marked, _, rest = text[len(_KEY_PREFIX) :].partition(":")
    if spec is None or marked != order_key(spec, sorts):
        raise ValidationFailed(
            f"{cursor!r} is a cursor of another list or order (keep orderBy as it was)",
            field=field,
        )
    try:
        key = json.loads(rest)
    except (ValueError, RecursionError):
        key = None
    kinds = [spec.fields.get(s.field or "") for s in sorts or spec.default_sort]
    kinds.append(spec.tiebreak[1])
    if not (
        isinstance(key, list)
        and len(key) == len(kinds)
        and key[-1] is not None
        and all(v is None or _fits(kind, v) for kind, v in zip(kinds, key, strict=True))
    ):
        raise _not_ours(cursor, field)
    return tuple(key)


def _fits(kind: Kind | None, value: Any) -> bool:
    """Whether ``value`` can stand in a key cursor at a term of this kind (so that the
    query it makes is one Neo4j runs: a made-up cursor is refused here, as VALIDATION)."""
    if kind is Kind.TIME:
        return isinstance(value, str) and _time_param(value) is not None
    if kind is Kind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return -(2**63) <= value < 2**63 if isinstance(value, int) else math.isfinite(value)
    return isinstance(value, str) and len(value) <= _CURSOR_MAX


# Neo4j's text for a zoned datetime (what toString gives, and datetime() reads).
_TIME_TEXT = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:\d{2}(?::\d{2})?)(?:\[([A-Za-z0-9_/+-]{1,64})\])?",
    re.ASCII,
)


def _time_param(text: str) -> neo4j.time.DateTime | str | None:
    """A key's time as the query takes it: a DateTime to the nanosecond with its offset
    (which the driver sends as is), or, with a zone named, the text (for ``datetime()``);
    None when it is no time Neo4j would read."""
    found = _TIME_TEXT.fullmatch(text)
    if found is None:
        return None
    clock, fraction, offset, zone = found.groups()
    try:
        at = datetime.fromisoformat(f"{clock}{offset}")
        if zone is not None:
            ZoneInfo(zone)
    except (ValueError, KeyError):  # (ZoneInfoNotFoundError is a KeyError)
        return None
    if zone is not None:
        return text
    nanos = int((fraction or "").ljust(9, "0"))
    return neo4j.time.DateTime(
        at.year, at.month, at.day, at.hour, at.minute, at.second, nanos, tzinfo=at.tzinfo
    )


def page_of(
    first: int | None,
    after: str | None,
    *,
    default_size: int,
    max_size: int,
    path: str = "",
    spec: ListSpec | None = None,
    sorts: tuple[Sort, ...] = (),
) -> Page:
    """The page ``first``/``after`` ask for, of ``spec`` in the order ``sorts`` (a key
    cursor is checked whole here, so that a bad one fails its own list only)."""
    size = default_size if first is None else first
    if size < 0:
        raise ValidationFailed("first must not be negative", field=f"{path}first")
    if size > max_size:
        raise LimitExceeded(
            f"first={size} exceeds the maximum page size of {max_size}",
            field=f"{path}first",
            details={"maximum": max_size},
        )
    if after is None:
        return Page(first=size)
    text = _text(after)
    if text.startswith(_KEY_PREFIX):
        return Page(first=size, after=_decode_key_cursor(after, text, spec, sorts, f"{path}after"))
    # (Offset cursors: an order that cannot page by key, and cursors given out before.)
    return Page(first=size, offset=decode_cursor(after, field=f"{path}after") + 1)


# --- compilation ---------------------------------------------------------------------


def _literal_regex(text: str) -> str:
    """``text`` as a Java regex matching it literally, with ``_`` matching any one character.

    A backslash before a character that is not an ASCII letter or digit makes it literal
    in Java's regex syntax, so everything but letters and digits is escaped; those stay
    bare (a backslash before them would start a class, an escape or a back-reference).
    """
    out: list[str] = []
    for ch in text:
        if ch == "_":
            out.append(".")
        elif ch.isascii() and ch.isalnum():
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "".join(out)


def like_regex(pattern: str, *, ignore_case: bool = False) -> str:
    """The Java regex (for Cypher's full-match ``=~``) of an SQL ``LIKE`` pattern.

    ``%`` matches any run of characters, ``_`` any one character, everything else itself
    (there is no escape character). ``ignore_case`` folds case over all of Unicode.

    Each inner ``%<segment>`` becomes an atomic ``(?>.*?<segment>)``: the segment's first
    occurrence is taken and never revisited. That is the same answer (an earlier end
    leaves more of the text for what follows) but keeps the match linear per segment,
    where plain ``.*`` runs would backtrack polynomially on patterns like ``%a%a%a%b``.
    """
    head, *rest = pattern.split("%")
    regex = ("(?siu)" if ignore_case else "(?s)") + _literal_regex(head)
    if rest:
        *middle, tail = rest
        regex += "".join(f"(?>.*?{_literal_regex(seg)})" for seg in middle if seg)
        regex += ".*" + _literal_regex(tail)
    return regex


def _operand(kind: Kind | None, cond: Condition) -> Any:
    value = cond.value
    if cond.op in {"in", "notIn", "containsAny", "containsAll"}:
        if not isinstance(value, list):
            raise ValidationFailed(f"{cond.op} takes a list", field=cond.path)
        return value
    if cond.op == "exists":
        if not isinstance(value, bool):
            raise ValidationFailed("exists takes true or false", field=cond.path)
        return value
    if kind is Kind.TIME and not isinstance(value, datetime):
        raise ValidationFailed("a time comparison takes a DateTime", field=cond.path)
    is_text_op = cond.op in {"contains", "startsWith", "endsWith"} | PATTERN_OPERATORS
    if is_text_op and kind is not Kind.STRING_LIST and not isinstance(value, str):
        raise ValidationFailed(f"{cond.op} takes a string", field=cond.path)
    return value


def _related(spec: ListSpec, via: str, path: str) -> str:
    pattern = dict(spec.related).get(via)
    if pattern is None:
        raise ValidationFailed(f"{via!r} is not related to {spec.label}", field=path)
    return pattern


def _compile_condition(cond: Condition, spec: ListSpec, params: Params, var: str) -> str:
    if cond.via is not None:
        pattern = _related(spec, cond.via, cond.path)
        inner = Condition(
            cond.field, cond.op, cond.value, cond.path, cond.custom_key, cond.namespace
        )
        return (
            f"EXISTS {{ MATCH {pattern} WHERE {_compile_condition(inner, spec, params, 'src')} }}"
        )
    if cond.custom_key is not None:
        if not KEY_PATTERN.match(cond.custom_key):
            raise ValidationFailed(f"{cond.custom_key!r} is not a valid key", field=cond.path)
        if cond.op not in CUSTOM_OPERATORS:
            raise ValidationFailed(
                f"{cond.op} is not allowed on custom properties", field=cond.path
            )
        if cond.namespace not in NAMESPACES:
            raise ValidationFailed(f"{cond.namespace!r} is not a namespace", field=cond.path)
        key = params.add(cond.namespace + cond.custom_key)
        target = f"{var}[{key}]"
        if cond.op == "exists":
            json_slot = JSON_SLOT.get(cond.namespace)
            test = f"{target} IS NOT NULL"
            if json_slot is not None:
                test = f"({test} OR {var}[{params.add(json_slot + cond.custom_key)}] IS NOT NULL)"
            return test if _operand(None, cond) else f"NOT {test}"
        kind = None
    else:
        kind = spec.fields.get(cond.field)
        if kind is None:
            raise ValidationFailed(f"{cond.field!r} cannot be filtered on", field=cond.path)
        if cond.op not in OPERATORS[kind]:
            raise ValidationFailed(f"{cond.op} is not allowed on {cond.field}", field=cond.path)
        # cond.field is a key of the whitelist, so it is one of our own property names.
        target = f"{var}.`{cond.field}`"
    value = _operand(kind, cond)
    if cond.op == "exists":
        return f"{target} IS NOT NULL" if value else f"{target} IS NULL"
    if cond.op in PATTERN_OPERATORS:
        value = like_regex(value, ignore_case=cond.op == "ilike")
    p = params.add(value)
    match cond.op:
        case "eq":
            return f"{target} = {p}"
        case "ne":
            return f"({target} IS NULL OR {target} <> {p})"
        case "in":
            return f"{target} IN {p}"
        case "notIn":
            return f"({target} IS NULL OR NOT {target} IN {p})"
        case "contains" if kind is Kind.STRING_LIST:
            return f"{p} IN {target}"
        case "containsAny":
            return f"any(x IN {p} WHERE x IN {target})"
        case "containsAll":
            return f"all(x IN {p} WHERE x IN {target})"
        case "contains":
            return f"{target} CONTAINS {p}"
        case "startsWith":
            return f"{target} STARTS WITH {p}"
        case "endsWith":
            return f"{target} ENDS WITH {p}"
        case "like" | "ilike":
            return f"{target} =~ {p}"
        case "gt":
            return f"{target} > {p}"
        case "gte":
            return f"{target} >= {p}"
        case "lt":
            return f"{target} < {p}"
        case "lte":
            return f"{target} <= {p}"
    raise ValidationFailed(f"unknown operator {cond.op}", field=cond.path)


def compile_filter(flt: Filter | None, spec: ListSpec, params: Params, var: str = "n") -> str:
    """A Cypher predicate for ``flt``; ``true`` for no filter."""
    if flt is None:
        return "true"
    parts = [_compile_condition(c, spec, params, var) for c in flt.conditions]
    parts += [f"({compile_filter(f, spec, params, var)})" for f in flt.all_of]
    if flt.any_of:
        parts.append(
            "(" + " OR ".join(f"({compile_filter(f, spec, params, var)})" for f in flt.any_of) + ")"
        )
    if flt.none_of is not None:
        parts.append(f"NOT ({compile_filter(flt.none_of, spec, params, var)})")
    return " AND ".join(parts) if parts else "true"


@dataclass(frozen=True)
class _Term:
    expr: str
    descending: bool
    kind: Kind | None  # None: a custom property, param or metric


def _order_terms(sorts: tuple[Sort, ...], spec: ListSpec, params: Params, var: str) -> list[_Term]:
    terms = []
    for sort in sorts or spec.default_sort:
        if sort.custom_key is not None:
            if not KEY_PATTERN.match(sort.custom_key):
                raise ValidationFailed(f"{sort.custom_key!r} is not a valid key", field="orderBy")
            if sort.namespace not in NAMESPACES:
                raise ValidationFailed(f"{sort.namespace!r} is not a namespace", field="orderBy")
            term = f"{var}[{params.add(sort.namespace + sort.custom_key)}]"
            if sort.via is not None:
                pattern = _related(spec, sort.via, "orderBy")
                inner = term.replace(f"{var}[", "src[", 1)
                order = "DESC" if sort.descending else "ASC"
                term = f"head(COLLECT {{ MATCH {pattern} RETURN {inner} AS v ORDER BY v {order} }})"
            terms.append(_Term(term, sort.descending, None))
        else:
            if sort.field not in spec.fields or spec.fields[sort.field] is Kind.STRING_LIST:
                raise ValidationFailed(f"{sort.field!r} cannot be sorted on", field="orderBy")
            terms.append(_Term(f"{var}.`{sort.field}`", sort.descending, spec.fields[sort.field]))
    # The id breaks ties, so pages never overlap or skip.
    field, kind = spec.tiebreak
    terms.append(_Term(f"{var}.`{field}`", False, kind))
    return terms


def _order_by(terms: list[_Term]) -> str:
    return ", ".join(f"{t.expr} {'DESC' if t.descending else 'ASC'}" for t in terms)


def compile_order(sorts: tuple[Sort, ...], spec: ListSpec, params: Params, var: str = "n") -> str:
    return _order_by(_order_terms(sorts, spec, params, var))


def _key_expr(terms: list[_Term]) -> str:
    """The sort key of an item as a list: times as text, to the nanosecond (a Python
    datetime would round them to the microsecond, and the cursor's item would come again)."""
    return (
        "["
        + ", ".join(f"toString({t.expr})" if t.kind is Kind.TIME else t.expr for t in terms)
        + "]"
    )


def _key_value(term: _Term, value: Any, params: Params) -> str:
    if term.kind is Kind.TIME:
        instant = _time_param(value)
        if isinstance(instant, neo4j.time.DateTime):
            # A plain parameter, which the planner seeks an index by (``datetime($p)``
            # it may only filter by, reading the index from its end to the cursor).
            return params.add(instant)
        return f"datetime({params.add(value)})"  # (a named zone: Neo4j reads it)
    return params.add(value)


def _after(terms: list[_Term], key: tuple[Any, ...], params: Params) -> str:
    """Items that sort after ``key`` (checked by ``page_of``), as ORDER BY sorts (nulls
    last going up, first going down): after on the first term, or equal on it and after
    on the next, ..."""
    values = [
        None if v is None else _key_value(t, v, params) for t, v in zip(terms, key, strict=True)
    ]
    options = []
    for i, (term, value) in enumerate(zip(terms, values, strict=True)):
        same = [
            f"{t.expr} IS NULL" if v is None else f"{t.expr} = {v}"
            for t, v in zip(terms[:i], values[:i], strict=True)
        ]
        if value is None:
            if not term.descending:
                continue  # nothing sorts after a null going up
            beyond = f"{term.expr} IS NOT NULL"
        elif term.descending:
            beyond = f"{term.expr} < {value}"
        else:
            beyond = f"({term.expr} > {value} OR {term.expr} IS NULL)"
        options.append(" AND ".join([*same, beyond]))
    return " OR ".join(f"({o})" for o in options) if options else "false"


def _leading_index(spec: ListSpec, sorts: tuple[Sort, ...]) -> str | None:
    """The field an index gives this list's order by, if any (see ``ListSpec.indexed``)."""
    first = (sorts or spec.default_sort)[0]
    if spec.parent_label is None and first.custom_key is None and first.field in spec.indexed:
        return first.field
    return None


def _after_indexed(terms: list[_Term], key: tuple[Any, ...], params: Params) -> str:
    """``_after`` for an order whose first term an index keeps (never null): a range on
    it that the index seeks from, the rest for the items that tie with the cursor's
    (inside CASE, so that the planner does not split the range into a union of seeks)."""
    first = terms[0]
    value = _key_value(first, key[0], params)
    rest = _after(terms[1:], key[1:], params)
    return (
        f"{first.expr} {'<=' if first.descending else '>='} {value} "
        f"AND CASE WHEN {first.expr} = {value} THEN {rest} ELSE true END"
    )


@dataclass(frozen=True)
class Window:
    """How a page query picks its page of ``n``: ``where`` (the list's predicate and the
    cursor's), ``order`` (ORDER BY terms), ``window`` (LIMIT, SKIP for offset cursors) and
    ``key`` (the item's sort key, for its cursor; None for an offset order)."""

    where: str
    order: str
    window: str
    key: str | None
    cursor_mark: str | None  # order_key: what the items' key cursors are marked with
    # A planner hint to put between the MATCH and its WHERE (or ""): the index to read.
    hint: str = ""


def window(
    spec: ListSpec, sorts: tuple[Sort, ...], page: Page, where: str, params: Params
) -> Window:
    """The page ``page`` of the items of ``spec`` matching ``where``, in the order ``sorts``."""
    terms = _order_terms(sorts, spec, params, "n")
    order = _order_by(terms)
    mark = order_key(spec, sorts)
    params.values["limit"] = page.first + 1
    lead = _leading_index(spec, sorts)
    # With an index to read, it is named: a plan cached while the list was short (scan
    # the index, filter by the cursor) would otherwise be kept once it is long.
    hint = ""
    if page.after is not None and lead is not None and page.after[0] is not None:
        where = f"{where} AND {_after_indexed(terms, page.after, params)}"
        hint = f"USING INDEX SEEK n:`{spec.label}`(`{lead}`)"
    elif page.after is not None:
        where = f"{where} AND ({_after(terms, page.after, params)})"
    elif lead is not None:  # (so that the planner reads the index in order)
        where = f"{where} AND n.`{lead}` IS NOT NULL"
        hint = f"USING INDEX n:`{spec.label}`(`{lead}`)"
    limit = "LIMIT $limit"
    if page.offset:
        params.values["skip"] = page.offset
        limit = "SKIP $skip LIMIT $limit"
    return Window(where, order, limit, _key_expr(terms) if mark else None, mark, hint)


def page_query(
    spec: ListSpec,
    *,
    flt: Filter | None,
    sorts: tuple[Sort, ...],
    page: Page,
    with_total: bool,
) -> tuple[str, Params, str | None]:
    """The query for pages of ``spec`` (each parent's, from ``$parentIds``), and what its
    items' key cursors are marked with (None: an offset order)."""
    params = Params()
    # Tombstones (deleted nodes) stay in the graph for lineage, never in listings.
    where = f"NOT n:Deleted AND {in_scope('n')} AND ({compile_filter(flt, spec, params)})"
    params.values.update(scope_params())
    picked = window(spec, sorts, page, where, params)
    item = f"[{node_map('n')}, {picked.key}]" if picked.key else node_map("n")
    total = "null"
    if with_total and flt is None and scope() is None and spec.match == f"MATCH (n:{spec.label})":
        # Every node of the label but the deleted: from the count store, not a scan.
        total = f"COUNT {{ {spec.match} }} - COUNT {{ MATCH (n:Deleted) WHERE n:`{spec.label}` }}"
    elif with_total:
        total = f"COUNT {{ {spec.match} WHERE {where} }}"
    items = (
        f"COLLECT {{ {spec.match} {picked.hint} WHERE {picked.where} "
        f"RETURN {item} AS item ORDER BY {picked.order} {picked.window} }}"
    )
    if spec.parent_label is None:
        query = f"RETURN null AS parentId, {total} AS total, {items} AS items"
        return query, params, picked.cursor_mark
    query = (
        f"UNWIND $parentIds AS parentId "
        f"MATCH (p:Node:`{spec.parent_label}` {{id: parentId}}) "
        f"RETURN parentId, {total} AS total, {items} AS items"
    )
    return query, params, picked.cursor_mark


async def fetch_pages(
    store: Store,
    spec: ListSpec,
    *,
    parent_ids: list[str] | None,
    flt: Filter | None,
    sorts: tuple[Sort, ...],
    page: Page,
    with_total: bool,
) -> dict[str | None, PageResult]:
    """Pages of ``spec`` for each parent (or the single top-level list): one round trip."""
    query, params, keyed = page_query(spec, flt=flt, sorts=sorts, page=page, with_total=with_total)
    if spec.parent_label is not None:
        params.values["parentIds"] = parent_ids or []
    rows = await store.read(query, params.values, raw=True)
    results: dict[str | None, PageResult] = {}
    for row in rows:
        found = row["items"][: page.first]
        if keyed:
            nodes = [decode_node(projected)[1] for projected, _ in found]
            cursors = [encode_key_cursor(keyed, key) for _, key in found]
        else:
            nodes = [decode_node(projected)[1] for projected in found]
            cursors = [encode_cursor(page.offset + i) for i in range(len(found))]
        results[row["parentId"]] = PageResult(
            rows=nodes,
            cursors=cursors,
            has_next=len(row["items"]) > page.first,
            has_previous=page.has_previous,
            total=row["total"],
        )
    return results


def empty_page(page: Page) -> PageResult:
    return PageResult(
        rows=[],
        cursors=[],
        has_next=False,
        has_previous=page.has_previous,
        total=0,
    )
