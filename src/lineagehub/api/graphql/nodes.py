"""Every node type's GraphQL object, by label: how a record of any kind is answered."""

from __future__ import annotations

from typing import Any

from lineagehub.api.graphql.provenance import CodeRef, Dataset, Experiment, ExperimentRun
from lineagehub.api.graphql.serving import (
    Deployment,
    InferenceService,
    MonitoringLink,
    ServingEnvironment,
)
from lineagehub.api.graphql.types import DocArtifact, ModelArtifact, ModelVersion, RegisteredModel
from lineagehub.graph.vocabulary import NODE_TYPES

GRAPHQL_TYPES: dict[str, Any] = {
    t.__name__: t
    for t in (
        RegisteredModel,
        ModelVersion,
        ModelArtifact,
        DocArtifact,
        Dataset,
        CodeRef,
        Experiment,
        ExperimentRun,
        ServingEnvironment,
        InferenceService,
        Deployment,
        MonitoringLink,
    )
}
assert set(GRAPHQL_TYPES) == set(NODE_TYPES), "GraphQL types and vocabulary disagree"
