"""The per-process token cache: valid tokens are reused for a while, revocations made in
this process end them at once, and unknown tokens are never cached."""

from __future__ import annotations

from collections.abc import Iterator

import neo4j
import pytest

from lineagehub.graph import identity
from lineagehub.graph.store import Store
from lineagehub.settings import Settings
from tests.conftest import with_store


@pytest.fixture
def cached(db: neo4j.Driver) -> Iterator[None]:
    identity.cache_authentication(60)
    yield
    identity.cache_authentication(0)


def test_valid_tokens_are_reused_and_revocation_here_ends_them(
    settings: Settings, db: neo4j.Driver, cached: None
) -> None:
    async def scenario(store: Store) -> list[str]:
        seen = []
        info, secret = await identity.create_token(store, "ci", ["reader"])
        first = await identity.authenticate(store, secret)
        assert first.principal is not None
        # Gone from Neo4j behind the process's back: the cached answer still stands...
        db.execute_query(
            "MATCH (t:ApiToken {id: $id}) SET t.revokedAt = datetime()", {"id": info.id}
        )
        again = await identity.authenticate(store, secret)
        seen.append("cached" if again.principal is not None else "asked")
        # ...until this process revokes a token, which clears what it knew.
        await identity.revoke_token(store, info.id)
        after = await identity.authenticate(store, secret)
        seen.append(after.reason)
        unknown = await identity.authenticate(store, "lh_not-a-token")
        seen.append(unknown.reason)
        return seen

    assert with_store(settings, scenario) == ["cached", "token 'ci' was revoked", "unknown token"]


def test_without_caching_every_request_asks(settings: Settings, db: neo4j.Driver) -> None:
    identity.cache_authentication(0)

    async def scenario(store: Store) -> bool:
        info, secret = await identity.create_token(store, "ci", ["reader"])
        assert (await identity.authenticate(store, secret)).principal is not None
        db.execute_query(
            "MATCH (t:ApiToken {id: $id}) SET t.revokedAt = datetime()", {"id": info.id}
        )
        return (await identity.authenticate(store, secret)).principal is None

    assert with_store(settings, scenario) is True
