"""Reading REST resources: one Cypher query per list, get or find.

A list runs as one query that also says whether the parent exists (404 otherwise), finds
the page of nodes with the related REST ids each one shows, and fetches one more than the
page size to know whether a next page exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lineagehub.api.rest.filter_query import parse_filter_query
from lineagehub.api.rest.resources import ARTIFACT_TYPES, ORDER_BY, Resource
from lineagehub.graph.errors import NotFound, ValidationFailed
from lineagehub.graph.identity import in_scope, scope_params
from lineagehub.graph.listing import (
    Condition,
    Filter,
    Page,
    Params,
    Sort,
    compile_filter,
    decode_cursor,
    encode_cursor,
    encode_key_cursor,
    is_key_cursor,
    page_of,
    window,
)
from lineagehub.graph.store import Store, decode_node, node_map

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class BadRequest(ValidationFailed):
    """A request the API's own schema rejects (400), as opposed to a domain rule (422)."""


@dataclass(frozen=True)
class Parent:
    """A list under a parent: the parent's label and a literal pattern binding p and n."""

    label: str
    pattern: str


VERSIONS_OF_MODEL = Parent("RegisteredModel", "(p)-[:HAS_VERSION]->(n:ModelVersion)")
ARTIFACTS_OF_VERSION = Parent("ModelVersion", "(p)-[:HAS_ARTIFACT]->(n:Artifact)")
RUNS_OF_EXPERIMENT = Parent("Experiment", "(n:ExperimentRun)-[:PART_OF]->(p)")
SERVICES_IN_ENVIRONMENT = Parent("ServingEnvironment", "(n:InferenceService)-[:IN]->(p)")
SERVES_OF_SERVICE = Parent("InferenceService", "(p)-[:HAS_DEPLOYMENT]->(n:Deployment)")
ARTIFACTS_OF_RUN = Parent("ExperimentRun", "(p)-[:INPUT_TO|PRODUCED|LOGGED]-(n)")


@dataclass(frozen=True)
class ListQuery:
    """The list parameters every list endpoint takes."""

    page_size: int = DEFAULT_PAGE_SIZE
    offset: int = 0
    token: str | None = None  # a key token (the sort key of the last item seen)
    order_by: str = "restId"
    descending: bool = False
    filter_query: str | None = None
    artifact_type: str | None = None


# The query parameters of the API and the text each one takes (its OpenAPI pattern).
_PRINTABLE = re.compile(r"[\x20-\x7E]*")
QUERY_PATTERNS = {
    "name": re.compile(r"[\x20-\x7E]+"),
    "externalId": re.compile(r"[\x20-\x7E]+"),
    "parentResourceId": re.compile(r"[1-9][0-9]{0,8}"),
    "filterQuery": _PRINTABLE,
    "pageSize": re.compile(r"[1-9][0-9]{0,8}"),
    "stepIds": re.compile(r"[0-9]{1,9}(,[0-9]{1,9})*"),
}


def check_query(params: dict[str, str]) -> None:
    """400 for a known query parameter whose value is outside its documented pattern."""
    for name, pattern in QUERY_PATTERNS.items():
        if name in params and not pattern.fullmatch(params[name]):
            raise BadRequest(f"{name} has an invalid value {params[name]!r}", field=name)


def list_query(
    params: dict[str, str], *, artifact_types: bool = False, keys: bool = True
) -> ListQuery:
    """Parse pageSize, nextPageToken, orderBy, sortOrder, filterQuery (and artifactType).
    ``keys``: whether the list pages by key tokens (a graph list), or only by offset."""
    size = DEFAULT_PAGE_SIZE
    if "pageSize" in params:
        raw = params["pageSize"]
        if not raw.isdigit() or not 1 <= int(raw) <= 999_999_999:
            raise BadRequest("pageSize must be a number from 1", field="pageSize")
        size = min(int(raw), MAX_PAGE_SIZE)
    offset = 0
    token = params.get("nextPageToken") or None
    if token is not None and not (keys and is_key_cursor(token)):
        try:
            offset = decode_cursor(token, field="nextPageToken") + 1
        except ValidationFailed as error:
            raise BadRequest(str(error), field="nextPageToken") from None
        token = None
    order_by = params.get("orderBy", "ID")
    if order_by not in ORDER_BY:
        raise BadRequest(f"orderBy must be one of {', '.join(ORDER_BY)}", field="orderBy")
    sort_order = params.get("sortOrder", "ASC")
    if sort_order not in ("ASC", "DESC"):
        raise BadRequest("sortOrder must be ASC or DESC", field="sortOrder")
    artifact_type = params.get("artifactType")
    if artifact_type is not None and (not artifact_types or artifact_type not in ARTIFACT_TYPES):
        raise BadRequest(
            f"artifactType must be one of {', '.join(ARTIFACT_TYPES)}", field="artifactType"
        )
    return ListQuery(
        page_size=size,
        offset=offset,
        token=token,
        order_by=ORDER_BY[order_by],
        descending=sort_order == "DESC",
        filter_query=params.get("filterQuery") or None,
        artifact_type=artifact_type,
    )


def _item(resource: Resource, key: str | None = None) -> str:
    return f"{{node: {node_map('n')}, rel: {resource.related}, key: {key or 'null'}}}"


def _render(resource: Resource, item: dict[str, Any]) -> dict[str, Any]:
    _, props = decode_node(item["node"])
    rel = dict(item["rel"])
    rel.setdefault("labels", item["node"]["labels"])
    return {k: v for k, v in resource.render(props, rel).items() if v is not None}


async def list_page(
    store: Store,
    resource: Resource,
    query: ListQuery,
    *,
    parent: Parent | None = None,
    parent_id: int | None = None,
    conditions: tuple[Condition, ...] = (),
) -> dict[str, Any]:
    """One page of ``resource`` (under ``parent_id`` when ``parent`` is given)."""
    params = Params()
    match = f"MATCH {parent.pattern}" if parent else f"MATCH (n:{resource.label})"
    spec = resource.spec(match)
    try:
        parsed = parse_filter_query(query.filter_query or "", resource.filters)
    except ValidationFailed as error:
        raise BadRequest(str(error), field="filterQuery") from None
    flt = Filter(conditions=conditions, all_of=(parsed,) if parsed else ())
    where = (
        f"NOT n:Deleted AND {in_scope('n')} AND {resource.where} "
        f"AND ({compile_filter(flt, spec, params)})"
    )
    if query.artifact_type is not None:
        where += f" AND {ARTIFACT_TYPES[query.artifact_type]}"
    sorts = (Sort(query.order_by, query.descending),)
    page = Page(first=query.page_size, offset=query.offset)
    if query.token is not None:
        try:
            page = page_of(
                query.page_size,
                query.token,
                default_size=query.page_size,
                max_size=query.page_size,
                spec=spec,
                sorts=sorts,
            )
        except ValidationFailed as error:
            raise BadRequest(str(error), field="nextPageToken") from None
    params.values.update(scope_params())
    picked = window(spec, sorts, page, where, params)
    items = (
        f"COLLECT {{ {match} {picked.hint} WHERE {picked.where} "
        f"RETURN {_item(resource, picked.key)} AS item "
        f"ORDER BY {picked.order} {picked.window} }}"
    )
    if parent is None:
        cypher = f"RETURN true AS found, {items} AS items"
    else:
        params.values["parentId"] = parent_id
        cypher = (
            f"OPTIONAL MATCH (p:Node:{parent.label} {{restId: $parentId}}) "
            f"WHERE NOT p:Deleted AND {in_scope('p')} "
            f"RETURN p IS NOT NULL AS found, {items} AS items"
        )
    rows = await store.read(cypher, params.values, raw=True)
    row = rows[0]
    if not row["found"]:
        assert parent is not None
        raise NotFound(f"no {parent.label} with id {parent_id}", field="id")
    found = row["items"][: query.page_size]
    rendered = [_render(resource, item) for item in found]
    more = len(row["items"]) > query.page_size
    token = None
    if more and picked.cursor_mark is not None:
        token = encode_key_cursor(picked.cursor_mark, found[-1]["key"])
    return page_answer(rendered, query, more=more, token=token)


def page_answer(
    items: list[dict[str, Any]], query: ListQuery, *, more: bool, token: str | None = None
) -> dict[str, Any]:
    """A Kubeflow list answer: the page, the token of the next one ("" on the last): the
    last item's sort key (``token``), else an offset."""
    if more and token is None:
        token = encode_cursor(query.offset + query.page_size - 1)
    return {
        "items": items,
        "nextPageToken": token if more else "",
        "pageSize": query.page_size,
        "size": len(items),
    }


def _lookup(resource: Resource, key: str) -> str:
    """A clause binding ``n`` to the node with REST id (key "restId") or our id ("id")."""
    if resource.label == "Artifact|Dataset|RunLog":
        if key == "id":
            return "MATCH (n:Node {id: $key}) WHERE true"
        return (
            "CALL () { MATCH (n:Node {restId: $key}) RETURN n "
            "UNION MATCH (n:RunLog {restId: $key}) RETURN n } "
            "WITH n WHERE (n:Artifact OR n:Dataset OR n:RunLog)"
        )
    prop = "restId" if key == "restId" else "id"
    return f"MATCH (n:Node:{resource.label} {{{prop}: $key}}) WHERE true"


async def get_one(
    store: Store, resource: Resource, key: Any, *, by: str = "restId", field: str = "id"
) -> dict[str, Any]:
    """One resource by its REST id (or, after a write, by our id); 404 when absent."""
    rows = await store.read(
        f"{_lookup(resource, by)} AND NOT n:Deleted AND {in_scope('n')} "
        f"RETURN {_item(resource)} AS item",
        {"key": key, **scope_params()},
        raw=True,
    )
    if not rows:
        raise NotFound(f"no {resource.name} with id {key}", field=field)
    return _render(resource, rows[0]["item"])


async def our_ids(store: Store, *refs: tuple[str, int, str]) -> list[str]:
    """Our ids of the nodes ``(label, REST id, field)`` name, in one round trip; 404
    naming the field of the first one missing."""
    rows = await store.read(
        "UNWIND $refs AS ref "
        "OPTIONAL MATCH (n:Node {restId: ref.rest}) "
        f"WHERE ref.label IN labels(n) AND NOT n:Deleted AND {in_scope('n')} "
        "RETURN n.id AS id",
        {"refs": [{"label": label, "rest": rest} for label, rest, _ in refs], **scope_params()},
    )
    for (label, rest, field), row in zip(refs, rows, strict=True):
        if row["id"] is None:
            raise NotFound(f"no {label} with id {rest}", field=field)
    return [row["id"] for row in rows]


async def our_id(store: Store, label: str, rest: int, *, field: str) -> dict[str, Any]:
    """Our id and properties of the ``label`` node with REST id ``rest``; 404 naming ``field``."""
    rows = await store.read(
        f"MATCH (n:Node:{label} {{restId: $rest}}) WHERE NOT n:Deleted AND {in_scope('n')} "
        "RETURN n {.*} AS n",
        {"rest": rest, **scope_params()},
    )
    if not rows:
        raise NotFound(f"no {label} with id {rest}", field=field)
    props: dict[str, Any] = rows[0]["n"]
    return props
