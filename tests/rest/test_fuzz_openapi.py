"""Fuzz the REST edge with schemathesis from the OpenAPI document we serve: no 5xx, every
answer conforms to the document, schema-valid input is accepted."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from lineagehub.api.rest.openapi_doc import served_spec
from lineagehub.settings import Settings
from tests.conftest import ThreadedServer, make_token

schema = schemathesis.openapi.from_dict(served_spec("v1alpha3"))


@pytest.fixture(scope="module")
def target(server: ThreadedServer, settings: Settings) -> tuple[str, dict[str, str]]:
    """The server and a writer's token (with a token in place, anonymous calls get 401)."""
    _, secret = make_token(settings, "fuzzer", ["reader", "writer"])
    return server.url, {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_documented_answers(
    case: Any, target: tuple[str, dict[str, str]]
) -> None:
    base_url, headers = target
    excluded = []
    if _outside_the_schema(case):
        excluded.append(positive_data_acceptance)
    case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=excluded)


def _outside_the_schema(case: Any) -> bool:
    """Inputs the schema cannot rule out (or the generator does not) but the API rightly
    refuses (with a 400 or 422): a
    ``filterQuery`` outside its grammar, a page token it never gave out, a find with
    neither name nor externalId."""
    query = case.query or {}
    if "filterQuery" in query or "nextPageToken" in query:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    keys = body.get("customProperties")
    if isinstance(keys, dict) and any("\x00" in key for key in keys):
        # The schema's propertyNames pattern rules NUL out (Neo4j refuses it in a property
        # name), but the generator does not follow propertyNames.
        return True
    if case.path.endswith("/model_versions/{id}/artifacts") and body.get("artifactType") in (
        "dataset-artifact",
        "metric",
        "parameter",
    ):
        return True  # a version holds model and doc artifacts only (documented limitation)
    if case.path.endswith("/experiment_runs/{id}/artifacts") and body.get("artifactType") in (
        "metric",
        "parameter",
    ):
        return not body.get("name")  # a run's metric or param is found again by its name
    is_find = case.method == "GET" and not case.path.endswith("s") and "{" not in case.path
    return is_find and not (query.get("name") or query.get("externalId"))
