"""Enums of the lineage vocabulary, generated from ``graph.vocabulary`` (the one list)."""

from __future__ import annotations

import enum
from typing import Any

import strawberry

from lineagehub.graph.governance import ApprovalStatus
from lineagehub.graph.lineage import Direction
from lineagehub.graph.records import DeploymentState, DesiredState, MonitoringKind, RunStatus
from lineagehub.graph.vocabulary import EDGE_TYPES, NODE_TYPES

strawberry.enum(
    Direction,
    name="LineageDirection",
    description="Which way to walk: towards causes (UPSTREAM), effects (DOWNSTREAM), or both.",
)
_node_types: Any = enum.Enum("NodeType", {label: label for label in NODE_TYPES})  # type: ignore[misc]
NodeType: Any = strawberry.enum(_node_types, description="Node types of the lineage graph.")
_edge_types: Any = enum.Enum("EdgeType", {name: name for name in EDGE_TYPES})  # type: ignore[misc]
EdgeType: Any = strawberry.enum(_edge_types, description="Edge types of the lineage graph.")

# Domain enums are registered under their GraphQL names; annotations use them directly.
strawberry.enum(RunStatus, name="RunStatus", description="Where a run is in its life.")
strawberry.enum(DesiredState, name="DesiredState", description="Whether a service should serve.")
strawberry.enum(
    DeploymentState, name="DeploymentState", description="Last known state of a deployment."
)
strawberry.enum(MonitoringKind, name="MonitoringKind", description="What a monitoring link is.")
strawberry.enum(
    ApprovalStatus,
    name="ApprovalStatus",
    description="NONE (never requested) -> PENDING -> APPROVED | REJECTED.",
)
