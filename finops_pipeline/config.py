"""Fleet configuration: one YAML file, validated once here, typed everywhere else."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

CONFIG_ENV = "FINOPS_FLEET_CONFIG"
DEMO_CONFIG = Path(__file__).parent / "demo" / "demo_fleet.yaml"

# Kubernetes names: DNS-1123 labels. Cluster names also become Dagster partition keys and
# folder names in the lake, so they must be safe in both.
K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class ConfigError(ValueError):
    """A fleet file that cannot be used, with the file, the key and what is allowed."""


# A Prometheus metric name, so that a config value can never splice PromQL into a query.
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
# The name of an environment variable, never a token pasted in its place (which would be echoed).
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _plain_url(v: AnyHttpUrl) -> AnyHttpUrl:
    """Base URLs only: credentials belong in bearer_token_env, parameters are the client's."""
    if v.username or v.password:
        raise ValueError("must not carry user:password@; name a token in bearer_token_env")
    if v.query or v.fragment:
        raise ValueError("must be a base URL without ?query or #fragment")
    return v


class Provider(StrEnum):
    idc = "idc"
    aws = "aws"
    gcp = "gcp"
    azure = "azure"


class AllocationApi(Strict):
    url: AnyHttpUrl
    kind: Literal["kubecost", "opencost"] = "kubecost"
    bearer_token_env: str | None = Field(
        default=None,
        pattern=ENV_NAME,
        description="Name of the environment variable that holds the bearer token",
    )
    verify_tls: bool = True
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="deadline for one whole request, body included"
    )
    retries: int = Field(default=3, ge=0, le=10)
    cluster_id: str | None = Field(
        default=None,
        min_length=1,
        description="The cluster id this API reports in properties.cluster (Kubecost's "
        "CLUSTER_ID); defaults to the cluster's name. Answers for another cluster are refused.",
    )

    url_is_plain = field_validator("url")(_plain_url)

    @property
    def path(self) -> str:
        return "/model/allocation" if self.kind == "kubecost" else "/allocation/compute"


class PrometheusApi(Strict):
    url: AnyHttpUrl
    selector: str = Field(
        default="",
        description='Extra label matchers that pick this cluster\'s series, e.g. cluster="idc-fra"',
    )
    bearer_token_env: str | None = Field(default=None, pattern=ENV_NAME)
    verify_tls: bool = True
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="deadline for one whole request, body included"
    )
    retries: int = Field(default=3, ge=0, le=10)
    cpu_usage_metric: str = Field(
        default="node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m",
        pattern=METRIC_NAME,
        description="Gauge of CPU cores used per container (kube-prometheus recording rule)",
    )
    memory_usage_metric: str = Field(
        default="container_memory_working_set_bytes", pattern=METRIC_NAME
    )

    url_is_plain = field_validator("url")(_plain_url)

    @field_validator("selector")
    @classmethod
    def _selector_shape(cls, v: str) -> str:
        if v and not re.fullmatch(
            r'(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"\\]*"\s*,?)+', v
        ):
            raise ValueError('must be label matchers such as cluster="idc-fra"')
        return v.strip().rstrip(",")


class Cluster(Strict):
    name: Annotated[str, Field(pattern=K8S_NAME)]
    provider: Provider
    region: str = Field(min_length=1)
    allocation: AllocationApi
    prometheus: PrometheusApi


class TeamMapping(Strict):
    pod_label_keys: list[str] = Field(default_factory=lambda: ["team"])
    namespace_label_keys: list[str] = Field(default_factory=lambda: ["team"])
    namespace_map: dict[str, str] = Field(default_factory=dict)
    precedence: list[Literal["pod_label", "namespace_label", "namespace_map"]] = Field(
        default_factory=lambda: ["pod_label", "namespace_label", "namespace_map"]
    )
    default_team: str = Field(default="unassigned", min_length=1)
    product_line_label: str = Field(default="product_line", min_length=1)
    default_product_line: str = Field(default="unassigned", min_length=1)

    @field_validator("precedence")
    @classmethod
    def _precedence_unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v) or not v:
            raise ValueError("must list each of pod_label, namespace_label, namespace_map once")
        return v


class Weights(Strict):
    cpu: float = Field(default=0.5, ge=0)
    ram: float = Field(default=0.4, ge=0)
    gpu: float = Field(default=0.1, ge=0)

    @model_validator(mode="after")
    def _positive(self) -> Weights:
        if self.cpu + self.ram + self.gpu <= 0:
            raise ValueError("at least one of cpu, ram, gpu must be positive")
        return self


class AllocationRules(Strict):
    shared_namespaces: list[str] = Field(default_factory=lambda: ["kube-system", "monitoring"])
    idle: Literal["spread", "separate"] = Field(
        default="spread",
        description="spread: idle cost goes to teams by weight; separate: billed to the idle line",
    )
    weights: Weights = Field(default_factory=Weights)


class Rightsizing(Strict):
    cpu_ratio_below: float = Field(default=0.20, gt=0, lt=1)
    hours: int = Field(default=24, ge=1, le=24 * 31)
    headroom: float = Field(default=1.3, ge=1, le=10)
    min_cpu_cores: float = Field(default=0.01, gt=0)
    hours_per_month: float = Field(default=730.0, gt=0)


class Anomaly(Strict):
    increase_ratio: float = Field(
        default=2.0, gt=0, description="2.0 flags a 200% increase: cost at least 3x the baseline"
    )
    baseline_hours: int = Field(default=24, ge=1, le=24 * 14)
    min_increase_cost: float = Field(default=0.5, ge=0)


class Zombies(Strict):
    hours: int = Field(
        default=24,
        ge=1,
        le=24 * 31,
        description="how long an object must stay unused to be flagged",
    )


class Thresholds(Strict):
    rightsizing: Rightsizing = Field(default_factory=Rightsizing)
    zombies: Zombies = Field(default_factory=Zombies)
    anomaly: Anomaly = Field(default_factory=Anomaly)


class Paths(Strict):
    data_dir: Path = Path("data")

    @property
    def lake(self) -> Path:
        return self.data_dir / "lake"

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse" / "finops.duckdb"

    @property
    def published(self) -> Path:
        return self.data_dir / "published" / "finops.duckdb"

    @property
    def reports(self) -> Path:
        return self.data_dir / "reports"


class Fleet(Strict):
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    partitions_start: datetime = Field(
        description="First hour of the hour x cluster partitions (UTC). Keep the partition count "
        "under about 100,000: hours since start x clusters."
    )
    clusters: list[Cluster] = Field(min_length=1)
    teams: TeamMapping = Field(default_factory=TeamMapping)
    allocation_rules: AllocationRules = Field(default_factory=AllocationRules)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    paths: Paths = Field(default_factory=Paths)
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("partitions_start")
    @classmethod
    def _utc_hour(cls, v: datetime) -> datetime:
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        if v.minute or v.second or v.microsecond:
            raise ValueError("must be on the hour")
        return v

    @model_validator(mode="after")
    def _unique_clusters(self) -> Fleet:
        names = [c.name for c in self.clusters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"cluster names must be unique; repeated: {', '.join(dupes)}")
        # Two clusters reading one endpoint would bill one cluster's cost twice.
        for what, key in (
            ("allocation.url", lambda c: (str(c.allocation.url),)),
            (
                "prometheus.url and selector",
                lambda c: (str(c.prometheus.url), c.prometheus.selector),
            ),
        ):
            seen: dict[tuple, str] = {}
            for c in self.clusters:
                k = key(c)
                if k in seen:
                    raise ValueError(
                        f"clusters {seen[k]} and {c.name} have the same {what}; each cluster "
                        "needs its own endpoint or selector"
                    )
                seen[k] = c.name
        return self

    @property
    def source(self) -> str:
        return str(self._source) if self._source else "(fleet config)"

    def check_tokens(self, names: list[str] | None = None) -> None:
        """Fail before any source is read if a named token variable is unset."""
        for i, c in enumerate(self.clusters):
            if names is not None and c.name not in names:
                continue
            for api in ("allocation", "prometheus"):
                env = getattr(c, api).bearer_token_env
                if env and not os.environ.get(env):
                    raise ConfigError(
                        f"{self.source}: clusters.{i}.{api}.bearer_token_env ({c.name}): "
                        f"environment variable {env} is not set or empty"
                    )

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(f"cluster {name!r} is not in the fleet config")


def _describe(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid fleet configuration"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {key}: {e['msg']}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML where a key given twice in one mapping is an error, not a silent overwrite."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key!r} given twice (first at line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_fleet(path: str | Path | None = None) -> Fleet:
    """Read and validate a fleet file; without a path, $FINOPS_FLEET_CONFIG or the demo fleet."""
    path = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG)
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (safe loader)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: fleet configuration file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the fleet configuration: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        fleet = Fleet.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    fleet._source = path
    return fleet


def bearer_token(env_name: str | None) -> str | None:
    """The token named by a config key; a named but unset variable is an error, not anonymous."""
    if env_name is None:
        return None
    token = os.environ.get(env_name)
    if not token:
        raise ConfigError(f"environment variable {env_name} (bearer_token_env) is not set")
    return token
