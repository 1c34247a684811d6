"""A realistic registry, planned in memory from a node count and a seed.

The plan holds the structure (who derives from whom, which run read which data, which
service served which version when) as compact integer lists; the property maps of each
node are built lazily, batch by batch, while loading. Every choice comes from random
generators seeded from ``seed``, and every id is a type prefix plus a ULID whose time part
is the node's ``createdAt`` and whose random part comes from the seed: the same
``(nodes, seed)`` always plans the same graph, down to the ids.

Shape (fractions of the node count, tuned on public registries' rough proportions):
versions ~16% (one model artifact each, a model card for 1 in 5), runs 1.6 per version
(one trains each version, ~12% prepare data, the rest explore), ~8 versions per model,
datasets in derivation chains of 1..8 (so lineage is up to ~8 deep) with the remainder of
the node count, services ~20% of versions with 1..5 deploys each. Runs pick their input
datasets by a Zipf law over dataset families, so a few datasets feed thousands of runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lineagehub.graph.vocabulary import NODE_TYPES

# 2023-01-01T00:00:00Z: the registry's history starts here and spans about two years.
EPOCH_MS = 1_672_531_200_000
SPAN_MS = 730 * 86_400_000
HOUR = 3_600_000
DAY = 24 * HOUR

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters

DOMAINS = ("churn", "fraud", "ranking", "search", "vision", "speech", "pricing", "forecast")
TASKS = ("classifier", "regressor", "ranker", "detector", "embedder", "tagger")
SOURCES = ("events", "clicks", "transactions", "images", "logs", "tickets", "sensors")
STAGES = ("raw", "clean", "validated", "features", "joined", "train-split", "balanced", "final")
PEOPLE = ("ana", "bo", "chen", "dara", "eli", "femi", "gus", "hana", "ivo", "jun")
FORMATS = (("onnx", "1.16"), ("pytorch", "2.3"), ("sklearn", "1.5"), ("xgboost", "2.0"))
_TIERS = ("prod", "staging", "dev")
_REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-south-1", "eu-central-1", "sa-east-1")
_SERVICE_KINDS = ("api", "batch", "canary", "shadow", "stream")
_CHAIN_WEIGHTS = (14, 20, 18, 14, 11, 9, 8, 6)  # chain length 1..8
_DEPLOY_WEIGHTS = (35, 25, 18, 12, 10)  # deploys per service 1..5
MIN_NODES = 500


def ulid(ms: int, rand80: int) -> str:
    """A 26-character Crockford base32 ULID: 48 bits of time, 80 of randomness."""
    value = (ms << 80) | rand80
    # 130 bits as 13 pairs of characters; the top two bits are always zero.
    return "".join(_PAIRS[(value >> (10 * i)) & 1023] for i in range(12, -1, -1))


def _zipf_cum(n: int, s: float) -> list[float]:
    total = 0.0
    cum = []
    for rank in range(1, n + 1):
        total += 1.0 / rank**s
        cum.append(total)
    return cum


@dataclass
class Counts:
    """How many nodes of each label; they add up to exactly ``nodes``."""

    nodes: int
    versions: int
    docs: int
    models: int
    runs: int
    prep_runs: int
    experiments: int
    code_refs: int
    environments: int
    services: int
    monitors: int

    @classmethod
    def for_nodes(cls, nodes: int) -> Counts:
        if nodes < MIN_NODES:
            raise ValueError(f"--nodes must be at least {MIN_NODES}")
        versions = round(nodes * 0.16)
        models = max(1, round(versions / 8))
        runs = round(versions * 1.6)
        return cls(
            nodes=nodes,
            versions=versions,
            docs=round(versions * 0.2),
            models=models,
            runs=runs,
            prep_runs=round(versions * 0.12),
            experiments=models + max(1, models // 10),
            code_refs=max(1, round(versions * 0.2)),
            environments=min(len(_TIERS) * len(_REGIONS), 3 + nodes // 50_000),
            services=max(1, round(versions * 0.2)),
            monitors=max(2, round(versions * 0.05)),
        )


@dataclass
class Service:
    env: int
    name: str
    model: int
    deploys: int
    first_deployment: int  # index of its first Deployment node
    versions: list[int] = field(default_factory=list)  # version per deploy, non-decreasing
    times: list[int] = field(default_factory=list)  # deploy times
    undeployed_at: int | None = None

    def segments(self) -> list[tuple[int, int, int | None]]:
        """(version, since, until) of each SERVES edge: a redeploy of the served version
        opens no new edge; moving on (or undeploying) closes the open one."""
        found: list[tuple[int, int, int | None]] = []
        for v, t in zip(self.versions, self.times, strict=True):
            if found and found[-1][0] == v:
                continue
            if found:
                found[-1] = (found[-1][0], found[-1][1], t)
            found.append((v, t, None))
        if self.undeployed_at is not None:
            found[-1] = (found[-1][0], found[-1][1], self.undeployed_at)
        return found


@dataclass
class Registry:
    """The planned graph. Indices are per label; ``ids[label][i]`` is node i's id."""

    nodes: int
    seed: int
    counts: Counts
    ids: dict[str, list[str]] = field(default_factory=dict)
    times: dict[str, list[int]] = field(default_factory=dict)
    # datasets: families are derivation chains; member j derives from member j-1
    ds_family: list[int] = field(default_factory=list)
    ds_stage: list[int] = field(default_factory=list)
    family_start: list[int] = field(default_factory=list)
    family_len: list[int] = field(default_factory=list)
    ds_join: dict[int, int] = field(default_factory=dict)  # child -> another family's root
    # models and versions (laid out model by model)
    model_first: list[int] = field(default_factory=list)
    model_count: list[int] = field(default_factory=list)
    ver_model: list[int] = field(default_factory=list)
    ver_seq: list[int] = field(default_factory=list)
    ver_base: dict[int, int] = field(default_factory=dict)  # fine-tune -> base version
    doc_version: list[int] = field(default_factory=list)
    # runs: run v < versions trains version v; then the prep runs; then exploration runs
    run_exp: list[int] = field(default_factory=list)
    run_seq: list[int] = field(default_factory=list)
    run_end: list[int] = field(default_factory=list)
    run_inputs: list[list[int]] = field(default_factory=list)
    run_code: list[int] = field(default_factory=list)  # -1: no code ref
    prep_target: list[int] = field(default_factory=list)  # prep run p produces this dataset
    exp_runs: list[int] = field(default_factory=list)  # runs per experiment
    # serving
    env_names: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    dep_service: list[int] = field(default_factory=list)
    monitor_targets: list[tuple[str, int]] = field(default_factory=list)  # ("svc"|"ver", i)

    @property
    def datasets(self) -> int:
        return len(self.ds_family)

    def node_counts(self) -> dict[str, int]:
        return {label: len(self.ids[label]) for label in NODE_TYPES}

    def model_name(self, m: int) -> str:
        return f"{DOMAINS[m % len(DOMAINS)]}-{TASKS[(m // 8) % len(TASKS)]}-{m:05d}"

    def family_name(self, f: int) -> str:
        return f"{SOURCES[f % len(SOURCES)]}-{f:06d}"

    def dataset_uri(self, i: int) -> str:
        return f"s3://lake/{self.family_name(self.ds_family[i])}/{STAGES[self.ds_stage[i]]}"

    def version_key(self, v: int) -> tuple[str, str]:
        """(model name, version name) of version v."""
        return self.model_name(self.ver_model[v]), str(self.ver_seq[v])

    def service_key(self, s: int) -> tuple[str, str]:
        """(environment name, service name) of service s."""
        return self.env_names[self.services[s].env], self.services[s].name


def build(nodes: int, seed: int) -> Registry:
    """Plan a registry of exactly ``nodes`` nodes, deterministically from ``seed``."""
    counts = Counts.for_nodes(nodes)
    reg = Registry(nodes=nodes, seed=seed, counts=counts)
    rng = random.Random(f"lineagehub-bench:{seed}")
    _plan_models(reg, rng)
    _plan_serving_shape(reg, rng)
    others = (
        2 * counts.versions  # versions and their model artifacts
        + counts.docs
        + counts.models
        + counts.runs
        + counts.experiments
        + counts.code_refs
        + counts.environments
        + len(reg.services)
        + len(reg.dep_service)
        + counts.monitors
    )
    _plan_datasets(reg, rng, nodes - others)
    _plan_runs(reg, rng)
    _plan_times(reg, rng)
    _plan_deploys(reg, rng)
    _plan_ids(reg)
    assert sum(reg.node_counts().values()) == nodes
    return reg


def _plan_models(reg: Registry, rng: random.Random) -> None:
    c = reg.counts
    # Every model has a version; popular models (Zipf) get many more.
    per_model = [1] * c.models
    for m in rng.choices(
        range(c.models), cum_weights=_zipf_cum(c.models, 0.8), k=c.versions - c.models
    ):
        per_model[m] += 1
    for m, n in enumerate(per_model):
        reg.model_first.append(len(reg.ver_model))
        reg.model_count.append(n)
        for k in range(1, n + 1):
            v = len(reg.ver_model)
            reg.ver_model.append(m)
            reg.ver_seq.append(k)
            if k > 1 and rng.random() < 0.2:
                reg.ver_base[v] = v - 1  # a fine-tune of the previous version
    reg.doc_version = sorted(rng.sample(range(c.versions), c.docs))


def _plan_serving_shape(reg: Registry, rng: random.Random) -> None:
    """Environments, services (popular models get more) and how many deploys each had."""
    c = reg.counts
    reg.env_names = [f"{tier}-{region}" for region in _REGIONS for tier in _TIERS][: c.environments]
    cum = _zipf_cum(c.models, 1.0)
    order = list(range(c.models))
    rng.shuffle(order)
    taken: set[tuple[int, str]] = set()
    for _ in range(c.services):
        model = order[rng.choices(range(c.models), cum_weights=cum)[0]]
        env = rng.randrange(c.environments)
        base = f"{reg.model_name(model)}-{rng.choice(_SERVICE_KINDS)}"
        name, k = base, 1
        while (env, name) in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add((env, name))
        deploys = rng.choices(range(1, 6), weights=_DEPLOY_WEIGHTS)[0]
        reg.services.append(Service(env, name, model, deploys, len(reg.dep_service)))
        reg.dep_service.extend([len(reg.services) - 1] * deploys)


def _plan_datasets(reg: Registry, rng: random.Random, total: int) -> None:
    if total < 10:
        raise ValueError("too few nodes left for datasets; raise --nodes")
    while len(reg.ds_family) < total:
        f = len(reg.family_start)
        length = rng.choices(range(1, 9), weights=_CHAIN_WEIGHTS)[0]
        length = min(length, total - len(reg.ds_family))
        reg.family_start.append(len(reg.ds_family))
        reg.family_len.append(length)
        reg.ds_family.extend([f] * length)
        reg.ds_stage.extend(range(length))
    families = len(reg.family_start)
    # A few derived datasets join in another family's raw data (roots have no parents, so
    # this never makes a cycle).
    for i, stage in enumerate(reg.ds_stage):
        if stage > 0 and rng.random() < 0.05:
            other = rng.randrange(families)
            if other != reg.ds_family[i]:
                reg.ds_join[i] = reg.family_start[other]


def _plan_runs(reg: Registry, rng: random.Random) -> None:
    c = reg.counts
    families = len(reg.family_start)
    cum = _zipf_cum(families, 1.0)
    popularity = list(range(families))
    rng.shuffle(popularity)  # popularity rank is not the family index
    derived = [i for i, stage in enumerate(reg.ds_stage) if stage > 0]
    reg.prep_target = sorted(rng.sample(derived, min(c.prep_runs, len(derived))))
    prep_experiments = c.experiments - c.models
    repos = max(1, c.code_refs // 8)

    def pick_datasets(k: int) -> list[int]:
        chosen: list[int] = []
        for rank in rng.choices(range(families), cum_weights=cum, k=k):
            f = popularity[rank]
            start, length = reg.family_start[f], reg.family_len[f]
            # Mostly the most refined member of the family, sometimes an earlier stage.
            member = length - 1 if rng.random() < 0.7 else rng.randrange(length)
            if start + member not in chosen:
                chosen.append(start + member)
        return chosen

    def code_for(experiment: int) -> int:
        if rng.random() < 0.1:
            return -1
        repo = experiment % repos
        per_repo = (c.code_refs - repo + repos - 1) // repos
        return repo + repos * rng.randrange(per_repo)

    for r in range(c.runs):
        if r < c.versions:  # trains version r, in its model's experiment
            exp = reg.ver_model[r]
            wide = rng.random() < 0.01  # a mixture run reading dozens of datasets
            inputs = pick_datasets(rng.randint(20, 80) if wide else rng.choice((1, 1, 2, 2, 3)))
        elif r < c.versions + len(reg.prep_target):  # turns a dataset's parent into it
            exp = c.models + rng.randrange(prep_experiments)
            inputs = [reg.prep_target[r - c.versions] - 1]
        else:  # exploration: reads data, produces nothing registered
            exp = rng.randrange(c.models)
            inputs = pick_datasets(rng.choice((1, 2)))
        reg.run_exp.append(exp)
        reg.run_inputs.append(inputs)
        reg.run_code.append(code_for(exp))
    reg.exp_runs = [0] * c.experiments
    for exp in reg.run_exp:
        reg.exp_runs[exp] += 1
        reg.run_seq.append(reg.exp_runs[exp])


def _plan_times(reg: Registry, rng: random.Random) -> None:
    """createdAt of everything, in causal order: data, then runs, versions, models."""
    c = reg.counts
    ds = [0] * reg.datasets
    for f, start in enumerate(reg.family_start):
        t = EPOCH_MS + rng.randrange(int(SPAN_MS * 0.7))
        for j in range(reg.family_len[f]):
            ds[start + j] = t
            t += rng.randrange(HOUR, 5 * DAY)
    starts: list[int] = []
    for r, inputs in enumerate(reg.run_inputs):
        p = r - c.versions
        if 0 <= p < len(reg.prep_target):  # runs between its input and its output
            parent, child = ds[inputs[0]], ds[reg.prep_target[p]]
            starts.append(parent + (child - parent) // 5)
            reg.run_end.append(parent + (child - parent) * 4 // 5)
        else:
            start = max(ds[i] for i in inputs) + rng.randrange(HOUR, 20 * DAY)
            starts.append(start)
            reg.run_end.append(start + rng.randrange(600_000, 12 * HOUR))
    versions = [0] * c.versions
    models = [0] * c.models
    for m, first in enumerate(reg.model_first):
        previous = 0
        for v in range(first, first + reg.model_count[m]):
            versions[v] = max(reg.run_end[v] + rng.randrange(60_000, HOUR), previous + 60_000)
            previous = versions[v]
        models[m] = versions[first] - rng.randrange(60_000, DAY)
    first_run = [EPOCH_MS + SPAN_MS] * c.experiments
    for r, exp in enumerate(reg.run_exp):
        first_run[exp] = min(first_run[exp], starts[r])
    reg.times = {
        "Dataset": ds,
        "ExperimentRun": starts,
        "ModelVersion": versions,
        "ModelArtifact": [t + 1000 for t in versions],
        "DocArtifact": [versions[v] + 2000 for v in reg.doc_version],
        "RegisteredModel": models,
        "Experiment": [t - HOUR for t in first_run],
        "CodeRef": [EPOCH_MS + rng.randrange(int(SPAN_MS * 0.7)) for _ in range(c.code_refs)],
        "ServingEnvironment": [EPOCH_MS + i * HOUR for i in range(c.environments)],
    }


def _plan_deploys(reg: Registry, rng: random.Random) -> None:
    """Which versions each service served and when; a few were undeployed since."""
    versions = reg.times["ModelVersion"]
    service_times: list[int] = []
    deploy_times: list[int] = []
    for svc in reg.services:
        first, count = reg.model_first[svc.model], reg.model_count[svc.model]
        recent = range(first + max(0, count - 6), first + count)  # services run recent versions
        svc.versions = sorted(rng.choice(recent) for _ in range(svc.deploys))
        t = versions[svc.versions[0]]
        for v in svc.versions:
            t = max(
                t + rng.randrange(HOUR, 20 * DAY), versions[v] + rng.randrange(600_000, 2 * DAY)
            )
            svc.times.append(t)
        if rng.random() < 0.1:
            svc.undeployed_at = t + rng.randrange(DAY, 30 * DAY)
        service_times.append(svc.times[0] - rng.randrange(60_000, HOUR))
        deploy_times.extend(svc.times)
    c = reg.counts
    on_services = rng.sample(range(len(reg.services)), min(c.monitors // 2, len(reg.services)))
    on_versions = rng.sample(range(c.versions), c.monitors - len(on_services))
    reg.monitor_targets = [("svc", s) for s in on_services] + [("ver", v) for v in on_versions]
    reg.times["InferenceService"] = service_times
    reg.times["Deployment"] = deploy_times
    reg.times["MonitoringLink"] = [
        (service_times[i] if kind == "svc" else versions[i]) + rng.randrange(HOUR, 3 * DAY)
        for kind, i in reg.monitor_targets
    ]


def _plan_ids(reg: Registry) -> None:
    """Ids: the label's prefix and a ULID of createdAt plus 80 seeded random bits."""
    for label, node_type in NODE_TYPES.items():
        bits = random.Random(f"lineagehub-bench:{reg.seed}:{label}").getrandbits
        prefix = node_type.prefix + "_"
        reg.ids[label] = [prefix + ulid(t, bits(80)) for t in reg.times[label]]
