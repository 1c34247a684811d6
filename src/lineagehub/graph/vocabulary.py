"""The one list of node labels and relationship types, and how lineage flows along each.

Everything that puts a label or a relationship type into Cypher takes it from here (or
from the record classes built on it), so this file is the whitelist.

Lineage flows from cause to effect: a dataset is *upstream* of the run it fed, the run
upstream of the version it produced, the version upstream of the service serving it.
Relationship types keep the names that read naturally along their stored direction, so
for each type ``FLOW`` says whether lineage runs along it (``FORWARD``: start -> end) or
against it (``BACKWARD``: ``(child)-[:DERIVED_FROM]->(parent)`` means the parent is upstream).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Flow(Enum):
    FORWARD = "FORWARD"  # lineage flows from the start node to the end node
    BACKWARD = "BACKWARD"  # lineage flows from the end node to the start node


@dataclass(frozen=True)
class NodeType:
    label: str
    prefix: str
    description: str


@dataclass(frozen=True)
class EdgeType:
    name: str
    flow: Flow
    ends: tuple[tuple[str, str], ...]  # (start label, end label) pairs it may join
    description: str
    lineage: bool = True  # followed by lineage queries unless edge types are given


NODE_TYPES: dict[str, NodeType] = {
    t.label: t
    for t in (
        NodeType("RegisteredModel", "rm", "A model under registry, with versions."),
        NodeType("ModelVersion", "mv", "One version of a registered model."),
        NodeType("ModelArtifact", "ma", "The bytes of a model version: URI, format, digest."),
        NodeType("DocArtifact", "da", "A document about a version: model card, report."),
        NodeType("Dataset", "ds", "Data at a URI, versioned by digest."),
        NodeType("CodeRef", "cr", "Code at a commit: repository, path or notebook, entry point."),
        NodeType("Experiment", "ex", "A group of runs."),
        NodeType("ExperimentRun", "run", "One training or processing run: params, metrics."),
        NodeType("ServingEnvironment", "env", "A namespace or cluster that hosts services."),
        NodeType("InferenceService", "svc", "A named endpoint serving one model version."),
        NodeType("Deployment", "dep", "One (re)deploy of a service: version, state, time."),
        NodeType("MonitoringLink", "mon", "A dashboard or drift baseline for a version/service."),
    )
}

_ANY_ARTIFACT = (("ModelVersion", "ModelArtifact"), ("ModelVersion", "DocArtifact"))

EDGE_TYPES: dict[str, EdgeType] = {
    e.name: e
    for e in (
        EdgeType(
            "HAS_VERSION",
            Flow.FORWARD,
            (("RegisteredModel", "ModelVersion"),),
            "A model has its versions.",
        ),
        EdgeType("HAS_ARTIFACT", Flow.FORWARD, _ANY_ARTIFACT, "A version has its artifacts."),
        EdgeType(
            "INPUT_TO",
            Flow.FORWARD,
            (("Dataset", "ExperimentRun"), ("CodeRef", "ExperimentRun")),
            "Data or code a run consumed.",
        ),
        EdgeType(
            "PRODUCED",
            Flow.FORWARD,
            (
                ("ExperimentRun", "ModelVersion"),
                ("ExperimentRun", "Dataset"),
                ("ExperimentRun", "ModelArtifact"),
                ("ExperimentRun", "DocArtifact"),
            ),
            "What a run produced.",
        ),
        EdgeType(
            "PART_OF",
            Flow.BACKWARD,
            (("ExperimentRun", "Experiment"),),
            "A run belongs to an experiment.",
        ),
        EdgeType(
            "DERIVED_FROM",
            Flow.BACKWARD,
            (("ModelVersion", "ModelVersion"), ("Dataset", "Dataset")),
            "A fine-tune of its base version; a dataset derived from its parent.",
        ),
        EdgeType(
            "SERVES",
            Flow.BACKWARD,
            (("InferenceService", "ModelVersion"),),
            "A service serves a version (since/until: when it did).",
        ),
        EdgeType(
            "IN",
            Flow.BACKWARD,
            (("InferenceService", "ServingEnvironment"),),
            "A service runs in an environment.",
        ),
        EdgeType(
            "HAS_DEPLOYMENT",
            Flow.FORWARD,
            (("InferenceService", "Deployment"),),
            "The deploy history of a service.",
            lineage=False,
        ),
        EdgeType(
            "MONITORS",
            Flow.BACKWARD,
            (("MonitoringLink", "ModelVersion"), ("MonitoringLink", "InferenceService")),
            "A monitoring link watches a version or service.",
        ),
    )
}

LINEAGE_EDGE_TYPES: tuple[str, ...] = tuple(n for n, e in EDGE_TYPES.items() if e.lineage)

# Column lineage (``graph/columns.py``) lives beside the registry's nodes, not among them:
# a column is a ``DatasetField`` node (no ``:Node`` label, no id of its own; its key is its
# dataset's id and its name) that its dataset ``HAS_FIELD``; ``(a)-[:FEEDS]->(b)`` says
# column ``b`` is computed from column ``a`` (lineage flows along it, FORWARD). Neither type
# is a lineage edge type above: ``lineage()`` walks datasets, ``columnLineage`` columns.
COLUMN_LABEL = "DatasetField"
HAS_FIELD = "HAS_FIELD"
FEEDS = "FEEDS"
