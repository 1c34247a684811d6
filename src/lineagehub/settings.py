"""Configuration from ``LINEAGEHUB_*`` environment variables (and a ``.env`` file)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Link-local (cloud instance metadata: 169.254.169.254, fd00:ec2::254 among them), other
# clouds' metadata and host services (100.100.100.200, 168.63.129.16), "this network",
# multicast and broadcast.
DEFAULT_DENIED_NETWORKS = (
    "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,168.63.129.16/32,"
    "0.0.0.0/8,224.0.0.0/4,ff00::/8,255.255.255.255/32"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINEAGEHUB_", env_file=".env", extra="ignore")

    # Neo4j. When neo4j_uri is unset, `lineagehub serve` starts the local dev Neo4j.
    neo4j_uri: str | None = None
    neo4j_user: str | None = None
    neo4j_password: str | None = None
    neo4j_database: str = "neo4j"

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    # GraphQL guards
    max_query_depth: int = Field(default=12, ge=2)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=5000, ge=100)
    # A request body over this many bytes is refused (413) before it is read whole.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    default_page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=500, ge=1)

    # Authentication. "auto": bearer tokens; while no token exists and the server is bound to
    # loopback, requests without one act as the local admin (logged loudly). "required":
    # always a token. A server bound beyond loopback refuses to start without tokens.
    auth: Literal["auto", "required"] = "auto"
    # How long a process may reuse what it learnt about a token (0: ask Neo4j every time).
    # A revocation made elsewhere (the CLI, another worker) takes effect within this time.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Complete plain data (lineage answers, records) without per-field resolvers, and
    # answer known documents through the warm lane; the answers are identical either way
    # (api/graphql/execution.py, api/graphql/lane.py). A kill switch.
    fast_path: bool = True
    # Keyed point reads (a version by model and name, a service by environment and name, a
    # version by id): at most this many queries of one kind run at once per process; more
    # concurrent reads of that kind wait and go together as one query (graph/coalesce.py).
    # 0: every read alone. Applies to the store the app opens (not to one handed to it).
    coalesce_reads: int = Field(default=1, ge=0, le=100)
    # With several workers (serve --workers N, on Linux): a worker holding more than its
    # share of the keep-alive connections closes one after its answer, so that clients
    # spread evenly (lineagehub.workers.Balance). Off: connections stay where the kernel
    # put them.
    balance_connections: bool = True
    # Ensured to exist as an admin token at start-up (for containers; keep it secret).
    bootstrap_token: str | None = Field(default=None, min_length=24)
    # Governance rules.
    allow_self_approval: bool = False
    protected_aliases: list[str] = Field(default_factory=lambda: ["production"])

    # Lineage: defaults and caps (asking beyond a cap is an error, never a runaway query)
    default_lineage_depth: int = Field(default=5, ge=1)
    max_lineage_depth: int = Field(default=10, ge=1, le=50)
    default_lineage_limit: int = Field(default=200, ge=1)
    max_lineage_nodes: int = Field(default=5000, ge=1)

    # Registry events (subscriptions and webhooks): how often a process looks for events
    # other processes wrote (its own it sees at once).
    event_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # How long registry events are kept (days; 0: for good). Older ones are deleted every
    # 5 minutes, oldest first; resuming after a deleted one is an EXPIRED error.
    event_retention_days: float = Field(default=30.0, ge=0, le=36500)
    # Subscriptions one WebSocket connection may hold at once.
    max_subscriptions_per_connection: int = Field(default=20, ge=1, le=1000)
    # Webhook delivery: whether this process delivers (any number of processes may; each
    # webhook is delivered by one at a time), how long a receiver may take to answer, and
    # the longest wait between retries of a failing one.
    deliver_webhooks: bool = True
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_max_backoff_seconds: float = Field(default=600.0, ge=1, le=86400)
    # Where webhooks may never send (comma-separated networks): by default link-local
    # addresses, where clouds serve instance metadata and credentials, and addresses that
    # are no one's. Checked on the URL when a webhook is made or changed and on every
    # address its host resolves to before each delivery.
    webhook_deny_networks: str = DEFAULT_DENIED_NETWORKS
    # Whether webhooks may send to loopback and private addresses (in-cluster receivers).
    webhook_allow_private: bool = True

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        # LINEAGEHUB_LOG_LEVEL=warning means WARNING, as it does for uvicorn and logging;
        # anything else is left as given, for the error to quote.
        if not isinstance(value, str) or not value.isascii():
            return value
        for known in ("DEBUG", "INFO", "WARNING", "ERROR", "json", "text"):
            if value.lower() == known.lower():
                return known
        return value

    @field_validator("webhook_deny_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                ipaddress.ip_network(item.strip(), strict=False)  # ValueError names it
        return value

    @field_validator("neo4j_uri", "neo4j_user", "neo4j_password", "bootstrap_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value
