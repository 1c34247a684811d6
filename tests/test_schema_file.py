"""schema.graphql is the schema the code builds; regenerate with `make schema`."""

from lineagehub.api.graphql.schema import sdl
from tests.conftest import REPO


def test_committed_schema_matches_the_code() -> None:
    committed = (REPO / "schema.graphql").read_text()
    assert committed == sdl(), "schema.graphql is stale: run `make schema` and commit it"
