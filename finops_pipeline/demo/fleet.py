"""A deterministic simulated fleet: workloads, their usage, inventory, prices and seeded truths.

Everything the demo servers answer and every value the acceptance tests expect is computed here,
from one seed, so that the pipeline can be checked against a ground truth it never saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

NANO = 1_000_000_000
GIB = 1024**3


@dataclass(frozen=True)
class PriceSheet:
    """Hourly list prices of one cluster, in the fleet currency."""

    cpu_core_hour: float
    ram_gib_hour: float
    gpu_hour: float
    storage_gib_hour: float
    load_balancer_hour: float
    internet_egress_gib: float


# OpenCost's published on-prem defaults ("based on GCP us-central1") stand in for GCP list prices.
GCP_PRICES = PriceSheet(0.031611, 0.004237, 0.95, 0.00005479452, 0.025, 0.12)
AWS_PRICES = PriceSheet(0.0433, 0.0058, 1.212, 0.00010959, 0.0225, 0.09)
# An IDC sheet: hardware, power and floor space amortized over three years. Cheaper per provisioned
# unit than the clouds, but bought for peak, so more of it sits idle.
IDC_PRICES = PriceSheet(0.0168, 0.00221, 0.52, 0.00002740, 0.004, 0.0)


@dataclass(frozen=True)
class DemoCluster:
    name: str
    provider: str
    region: str
    prices: PriceSheet
    headroom: float  # provisioned capacity / peak allocated
    gpu_spare: int  # GPUs nobody requests
    has_gpu_workloads: bool


DEFAULT_CLUSTERS = (
    DemoCluster("idc-fra", "idc", "fra-dc1", IDC_PRICES, 1.9, 2, True),
    DemoCluster("aws-use1", "aws", "us-east-1", AWS_PRICES, 1.25, 0, False),
    DemoCluster("gcp-euw1", "gcp", "europe-west1", GCP_PRICES, 1.3, 1, True),
)

# team -> (namespaces, product line, how the team is known: pod label, namespace label or map)
TEAMS = {
    "payments": (("payments",), "commerce", "pod_label"),
    "checkout": (("checkout",), "commerce", "pod_label"),
    "search": (("search",), "discovery", "namespace_label"),
    "recommendations": (("recs",), "discovery", "namespace_label"),
    "identity": (("identity",), "platform", "namespace_map"),
    "data-platform": (("ingest", "warehouse-jobs"), "platform", "pod_label"),
    "mobile-api": (("mobile",), "commerce", "namespace_map"),
    "ml-research": (("ml-train",), "ai", "pod_label"),
    "analytics": (("bi",), "platform", "namespace_label"),
}
ROLES = ("api", "worker", "cache", "web", "batch", "gateway")  # deployment name suffixes
SHARED_NAMESPACES = {"kube-system": "platform", "monitoring": "platform"}

# The deployment whose replicas triple for a few hours, and where.
ANOMALY = {
    "cluster": "aws-use1",
    "namespace": "checkout",
    "deployment": "checkout-api",
    "first_hour": 14,
    "hours": 4,
    "factor": 3,
}


def anomaly_day(days: int) -> int:
    """Day index of the spike: late in the window, with a full day of baseline before it."""
    return max(1, days - 4)


@dataclass(frozen=True)
class DemoSpec:
    seed: int = 20261102
    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)
    days: int = 14
    step_seconds: int = 300
    static_step_seconds: int = 900
    deployments_per_team: int = 4
    clusters: tuple[DemoCluster, ...] = DEFAULT_CLUSTERS

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    @property
    def hours(self) -> int:
        return self.days * 24

    def key(self) -> str:
        """A short text that changes whenever the generated fleet would."""
        names = ",".join(c.name for c in self.clusters)
        return (
            f"v7-{self.seed}-{self.start:%Y%m%d}-{self.days}d-{self.step_seconds}s-"
            f"{self.static_step_seconds}s-{self.deployments_per_team}dpt-{names}"
        )


@dataclass
class DemoFleet:
    """The generated fleet: every table the demo servers and the ground truth are built from."""

    spec: DemoSpec
    containers: pl.DataFrame  # one row per container of a pod, with its lifetime
    usage: pl.DataFrame  # one row per container and sample: cpu_cores, memory_bytes
    volumes: pl.DataFrame  # PVs with their claim (if any) and mounting pod (if any)
    services: pl.DataFrame  # Services with type and the pods behind them
    namespaces: pl.DataFrame  # namespace labels
    allocations: pl.DataFrame = field(default=None)  # per allocation and hour, costs in nanos
    trace_counts: dict | None = None  # what a trace import merged, clipped or dropped

    @property
    def hour_starts(self) -> list[datetime]:
        return [self.spec.start + timedelta(hours=h) for h in range(self.spec.hours)]


def _team_deployments(rng: np.random.Generator, cluster: DemoCluster, per_team: int) -> list[dict]:
    """The deployments of one cluster: name, namespace, team, shape and utilization profile."""
    deployments: list[dict] = []
    for team, (namespaces, product_line, _) in TEAMS.items():
        if team == "ml-research" and not cluster.has_gpu_workloads:
            continue
        for i in range(per_team):
            ns = namespaces[i % len(namespaces)]
            roll = rng.random()
            profile = "low" if roll < 0.18 else "hot" if roll < 0.28 else "normal"
            deployments.append(
                {
                    "namespace": ns,
                    "deployment": f"{team.split('-')[0]}-{ROLES[i % len(ROLES)]}"
                    + ("" if i < 6 else f"-{i}"),
                    "team": team,
                    "product_line": product_line,
                    "replicas": int(rng.integers(2, 6)),
                    "cpu_request": float(rng.choice([0.25, 0.5, 1.0, 2.0])),
                    "mem_request_gib": float(rng.choice([0.5, 1.0, 2.0, 4.0])),
                    "gpu_request": 1 if team == "ml-research" and i % 2 == 0 else 0,
                    "sidecar": bool(rng.random() < 0.35),
                    "profile": profile,
                    "stateful": i % 4 == 2,
                    "lb": i % 4 == 0,
                }
            )
    for d in deployments:
        if cluster.name == ANOMALY["cluster"] and d["deployment"] == ANOMALY["deployment"]:
            # Big enough that tripling it is a spike worth an alert, steady before and after. The
            # replicas added during the spike run hot, as pods do when an autoscaler adds them.
            d.update(replicas=4, cpu_request=2.0, mem_request_gib=4.0, profile="normal", lb=False)
    # Platform workloads in the shared namespaces.
    for ns, shared in (
        ("kube-system", ["coredns", "kube-proxy-agent", "metrics-server"]),
        ("monitoring", ["prometheus-server", "kube-state-metrics", "grafana"]),
    ):
        for name in shared:
            deployments.append(
                {
                    "namespace": ns,
                    "deployment": name,
                    "team": None,
                    "product_line": SHARED_NAMESPACES[ns],
                    "replicas": 2,
                    "cpu_request": 0.5,
                    "mem_request_gib": 1.0,
                    "gpu_request": 0,
                    "sidecar": False,
                    "profile": "normal",
                    "stateful": name == "prometheus-server",
                    "lb": False,
                }
            )
    # Decoys for rightsizing: idle for days, busy again in the last day; and idle but for one hour.
    for d, decoy in zip(deployments[1::9], ("recovered", "one_busy_hour") * 99, strict=False):
        if d["profile"] == "normal" and d["gpu_request"] == 0:
            d["profile"] = decoy
    return deployments


def _cpu_ratio_series(
    rng: np.random.Generator, profile: str, n: int, step: int, spec: DemoSpec
) -> np.ndarray:
    """CPU usage as a fraction of the request at each sample."""
    t = np.arange(n) * step
    hour_of_day = (t / 3600.0) % 24
    diurnal = np.sin(2 * np.pi * (hour_of_day - 9) / 24)
    if profile == "low":
        base, amp = rng.uniform(0.03, 0.09), rng.uniform(0.05, 0.3)
    elif profile == "hot":
        base, amp = rng.uniform(0.85, 1.25), rng.uniform(0.1, 0.3)
    else:
        base, amp = rng.uniform(0.45, 0.8), rng.uniform(0.1, 0.3)
    noise = rng.normal(0.0, 0.04, n)
    ratio = base * (1 + amp * diurnal) + noise * base
    if profile in ("recovered", "one_busy_hour"):
        low = rng.uniform(0.04, 0.09) * (1 + 0.2 * diurnal) + rng.normal(0, 0.003, n)
        last_day = t >= (spec.hours - 24) * 3600
        if profile == "recovered":
            ratio = np.where(last_day, ratio, low)
        else:
            busy_hour = (t >= (spec.hours - 7) * 3600) & (t < (spec.hours - 6) * 3600)
            ratio = np.where(busy_hour, 0.6 + rng.normal(0, 0.01, n), low)
    return np.clip(ratio, 0.002, None)


def generate(spec: DemoSpec = DemoSpec()) -> DemoFleet:
    """Build the whole fleet from the spec's seed; the same spec always gives the same fleet."""
    rng = np.random.default_rng(spec.seed)
    start_s = int(spec.start.timestamp())
    n_samples = spec.hours * 3600 // spec.step_seconds
    sample_ts = start_s + np.arange(n_samples) * spec.step_seconds

    containers: list[dict] = []
    usage_parts: list[pl.DataFrame] = []
    volumes: list[dict] = []
    services: list[dict] = []
    namespaces: list[dict] = []

    for cluster in spec.clusters:
        deployments = _team_deployments(rng, cluster, spec.deployments_per_team)
        seen_ns: set[str] = set()
        n_nodes = 12 if cluster.provider == "idc" else 9
        node_names = [f"{cluster.name}-node-{i:02d}" for i in range(n_nodes)]
        pod_counter = 0
        for d in deployments:
            ns = d["namespace"]
            if ns not in seen_ns:
                seen_ns.add(ns)
                labels: list[dict] = [{"key": "kubernetes_io_metadata_name", "value": ns}]
                team_source = TEAMS.get(d["team"] or "", (None, None, None))[2]
                if team_source == "namespace_label":
                    labels.append({"key": "team", "value": d["team"]})
                namespaces.append({"cluster": cluster.name, "namespace": ns, "labels": labels})
            rs_hash = "".join(rng.choice(list("bcdfghjklmnpqrstvwxz2456789"), 10))
            replicaset = f"{d['deployment']}-{rs_hash}"
            is_anomaly = (
                cluster.name == ANOMALY["cluster"] and d["deployment"] == ANOMALY["deployment"]
            )
            extra = (ANOMALY["factor"] - 1) * d["replicas"] if is_anomaly else 0
            spike_start = start_s + (anomaly_day(spec.days) * 24 + ANOMALY["first_hour"]) * 3600
            spike_end = spike_start + ANOMALY["hours"] * 3600
            pod_ips: list[str] = []
            pod_names: list[str] = []
            for r in range(d["replicas"] + extra):
                pod_counter += 1
                pod = f"{replicaset}-{''.join(rng.choice(list('bcdfghjklmnpqrstvwxz2456789'), 5))}"
                node = node_names[pod_counter % n_nodes]
                alive_from, alive_to = (
                    (spike_start, spike_end)
                    if r >= d["replicas"]
                    else (start_s, start_s + spec.hours * 3600)
                )
                pod_names.append(pod)
                pod_ips.append(
                    f"10.{spec.clusters.index(cluster)}."
                    f"{pod_counter // 250}.{pod_counter % 250 + 1}"
                )
                pod_labels = [{"key": "app", "value": d["deployment"]}]
                if d["team"] and TEAMS[d["team"]][2] == "pod_label":
                    pod_labels.append({"key": "team", "value": d["team"]})
                pod_labels.append({"key": "product_line", "value": d["product_line"]})
                names = ["app"] + (["log-shipper"] if d["sidecar"] else [])
                for cname in names:
                    main = cname == "app"
                    cpu_req = d["cpu_request"] if main else 0.05
                    mem_req = d["mem_request_gib"] * GIB if main else 128 * 1024**2
                    containers.append(
                        {
                            "cluster": cluster.name,
                            "node": node,
                            "namespace": ns,
                            "pod": pod,
                            "container": cname,
                            "controller_kind": "deployment",
                            "controller": d["deployment"],
                            "replicaset": replicaset,
                            "team": d["team"],
                            "product_line": d["product_line"],
                            "pod_labels": pod_labels,
                            "cpu_request": cpu_req,
                            "cpu_limit": cpu_req * 2,
                            "memory_request_bytes": float(mem_req),
                            "memory_limit_bytes": float(mem_req * 2),
                            "gpu_request": d["gpu_request"] if main else 0,
                            "profile": (d["profile"] if r < d["replicas"] else "hot")
                            if main
                            else "normal",
                            "alive_from": alive_from,
                            "alive_to": alive_to,
                            "pod_ip": pod_ips[-1],
                        }
                    )
                    alive = (sample_ts >= alive_from) & (sample_ts < alive_to)
                    profile = d["profile"] if main else "normal"
                    if r >= d["replicas"] and main:
                        profile = "hot"
                    ratio = _cpu_ratio_series(rng, profile, n_samples, spec.step_seconds, spec)
                    mem_ratio = np.clip(
                        rng.uniform(0.45, 0.85) + rng.normal(0, 0.02, n_samples), 0.05, 1.6
                    )
                    usage_parts.append(
                        pl.DataFrame(
                            {
                                "ts": sample_ts[alive],
                                "cpu_cores": np.round(ratio[alive] * cpu_req, 6),
                                "memory_bytes": np.round(mem_ratio[alive] * mem_req),
                            }
                        ).with_columns(
                            cluster=pl.lit(cluster.name),
                            namespace=pl.lit(ns),
                            pod=pl.lit(pod),
                            container=pl.lit(cname),
                        )
                    )
            # Storage: a stateful deployment's first pod mounts a claim bound to a PV.
            if d["stateful"]:
                claim = f"data-{d['deployment']}-0"
                volumes.append(
                    {
                        "cluster": cluster.name,
                        "pv": f"pvc-{''.join(rng.choice(list('0123456789abcdef'), 12))}",
                        "capacity_bytes": float(int(rng.choice([20, 50, 100, 200])) * GIB),
                        "storageclass": "standard" if cluster.provider == "idc" else "ssd",
                        "phase": "Bound",
                        "namespace": ns,
                        "claim": claim,
                        "mounted_by": pod_names[0],
                        "zombie_reason": None,
                    }
                )
            services.append(
                {
                    "cluster": cluster.name,
                    "namespace": ns,
                    "service": d["deployment"],
                    "type": "LoadBalancer" if d["lb"] else "ClusterIP",
                    "pods": pod_names[: d["replicas"]],
                    "pod_ips": pod_ips[: d["replicas"]],
                    "zombie_reason": None,
                }
            )
        # Seeded zombies: forgotten volumes, claims and services.
        for i, phase in enumerate(("Released", "Released", "Available")):
            volumes.append(
                {
                    "cluster": cluster.name,
                    "pv": f"pvc-{''.join(rng.choice(list('0123456789abcdef'), 12))}",
                    "capacity_bytes": float((100 + 50 * i) * GIB),
                    "storageclass": "standard" if cluster.provider == "idc" else "ssd",
                    "phase": phase,
                    "namespace": None,
                    "claim": None,
                    "mounted_by": None,
                    "zombie_reason": "pv_not_bound",
                }
            )
        for i, ns in enumerate(("ingest", "bi")):
            volumes.append(
                {
                    "cluster": cluster.name,
                    "pv": f"pvc-{''.join(rng.choice(list('0123456789abcdef'), 12))}",
                    "capacity_bytes": float(80 * (i + 1) * GIB),
                    "storageclass": "standard" if cluster.provider == "idc" else "ssd",
                    "phase": "Bound",
                    "namespace": ns,
                    "claim": f"scratch-old-export-{i}",
                    "mounted_by": None,
                    "zombie_reason": "pvc_not_mounted",
                }
            )
        services.append(
            {
                "cluster": cluster.name,
                "namespace": "payments",
                "service": "payments-legacy-lb",
                "type": "LoadBalancer",
                "pods": [],
                "pod_ips": [],
                "zombie_reason": "load_balancer_without_endpoints",
            }
        )
        services.append(
            {
                "cluster": cluster.name,
                "namespace": "search",
                "service": "search-canary",
                "type": "ClusterIP",
                "pods": [],
                "pod_ips": [],
                "zombie_reason": "service_without_endpoints",
            }
        )

    fleet = DemoFleet(
        spec=spec,
        containers=pl.DataFrame(containers),
        usage=pl.concat(usage_parts).select(
            "cluster", "namespace", "pod", "container", "ts", "cpu_cores", "memory_bytes"
        ),
        volumes=pl.DataFrame(volumes, infer_schema_length=None),
        services=pl.DataFrame(services, infer_schema_length=None),
        namespaces=pl.DataFrame(namespaces),
    )
    fleet.allocations = allocations(fleet)
    return fleet


def _nanos(x: pl.Expr) -> pl.Expr:
    return (x * NANO).round(0).cast(pl.Int64)


def allocations(fleet: DemoFleet) -> pl.DataFrame:
    """Hourly Kubecost-style allocations with costs in integer nanos of the fleet currency.

    Containers are charged max(request, average usage) per resource, as Kubecost does; what the
    nodes provide beyond that is the cluster's idle; unmounted volumes and load balancers with no
    pods behind them land in the cluster's unmounted allocation.
    """
    spec = fleet.spec
    prices = pl.DataFrame(
        {
            "cluster": [c.name for c in spec.clusters],
            "cpu_price": [c.prices.cpu_core_hour for c in spec.clusters],
            "ram_price": [c.prices.ram_gib_hour for c in spec.clusters],
            "gpu_price": [c.prices.gpu_hour for c in spec.clusters],
            "storage_price": [c.prices.storage_gib_hour for c in spec.clusters],
            "lb_price": [c.prices.load_balancer_hour for c in spec.clusters],
            "egress_price": [c.prices.internet_egress_gib for c in spec.clusters],
            "headroom": [c.headroom for c in spec.clusters],
            "gpu_spare": [c.gpu_spare for c in spec.clusters],
        }
    )
    keys = ["cluster", "namespace", "pod", "container"]
    traced = "cpu_request_cores" in fleet.usage.columns
    aggs = [
        pl.col("cpu_cores").mean().alias("cpu_usage"),
        pl.col("memory_bytes").mean().alias("ram_usage"),
        pl.len().alias("samples"),
    ]
    if traced:
        # Requests as sampled; the hour's highest, as kube-state-metrics' max_over_time shows it.
        aggs += [
            pl.col("cpu_request_cores").max().alias("hour_cpu_request"),
            pl.col("memory_request_bytes").max().alias("hour_memory_request"),
            (pl.col("net_tx_bytes_per_s").mean() * 3600).round(0).alias("egress_bytes"),
        ]
    hourly = (
        fleet.usage.with_columns(hour=(pl.col("ts") // 3600) * 3600)
        .group_by([*keys, "hour"])
        .agg(aggs)
        .join(fleet.containers.drop("pod_labels"), on=keys)
        .join(prices, on="cluster")
    )
    if traced:
        hourly = hourly.with_columns(
            cpu_request=pl.coalesce("hour_cpu_request", "cpu_request"),
            memory_request_bytes=pl.coalesce("hour_memory_request", "memory_request_bytes"),
        )
    else:
        # Egress: web-facing containers send a little to the internet.
        hourly = hourly.with_columns(
            egress_bytes=pl.when(pl.col("container") == "app")
            .then(pl.col("cpu_usage") * 40 * 1024**2)
            .otherwise(0.0)
            .round(0),
        )
    hourly = hourly.with_columns(
        cpu_core_hours=pl.max_horizontal("cpu_request", "cpu_usage"),
        ram_byte_hours=pl.max_horizontal("memory_request_bytes", "ram_usage"),
        gpu_hours=pl.col("gpu_request").cast(pl.Float64),
    ).with_columns(
        cpu_cost=_nanos(pl.col("cpu_core_hours") * pl.col("cpu_price")),
        ram_cost=_nanos(pl.col("ram_byte_hours") / GIB * pl.col("ram_price")),
        gpu_cost=_nanos(pl.col("gpu_hours") * pl.col("gpu_price")),
        network_cost=_nanos(pl.col("egress_bytes") / GIB * pl.col("egress_price")),
    )

    # Volumes mounted by a pod are charged to that pod's main container.
    vol = fleet.volumes.join(prices.select("cluster", "storage_price"), on="cluster").with_columns(
        pv_cost=_nanos(pl.col("capacity_bytes") / GIB * pl.col("storage_price"))
    )
    mounted = vol.filter(pl.col("mounted_by").is_not_null()).select(
        "cluster",
        pl.col("mounted_by").alias("pod"),
        pl.lit("app").alias("container"),
        "pv",
        "capacity_bytes",
        "pv_cost",
    )
    # Load balancers with pods are split over their pods' main containers, remainder to the first.
    svc = fleet.services.join(prices.select("cluster", "lb_price"), on="cluster").with_columns(
        lb_cost=pl.when(pl.col("type") == "LoadBalancer")
        .then(_nanos(pl.col("lb_price")))
        .otherwise(0)
    )
    lb_rows = []
    for row in svc.filter((pl.col("lb_cost") > 0) & (pl.col("pods").list.len() > 0)).iter_rows(
        named=True
    ):
        share, rest = divmod(row["lb_cost"], len(row["pods"]))
        for i, pod in enumerate(row["pods"]):
            lb_rows.append(
                {
                    "cluster": row["cluster"],
                    "pod": pod,
                    "container": "app",
                    "lb_service": f"{row['namespace']}/{row['service']}",
                    "lb_cost": share + (rest if i == 0 else 0),
                }
            )
    lb = pl.DataFrame(
        lb_rows,
        schema={
            "cluster": pl.String,
            "pod": pl.String,
            "container": pl.String,
            "lb_service": pl.String,
            "lb_cost": pl.Int64,
        },
    )
    hourly = (
        hourly.join(mounted, on=["cluster", "pod", "container"], how="left")
        .join(lb, on=["cluster", "pod", "container"], how="left")
        .with_columns(
            pl.col("pv_cost").fill_null(0),
            pl.col("lb_cost").fill_null(0),
            pl.col("capacity_bytes").fill_null(0.0),
        )
        .with_columns(
            total_cost=pl.col("cpu_cost")
            + pl.col("ram_cost")
            + pl.col("gpu_cost")
            + pl.col("network_cost")
            + pl.col("pv_cost")
            + pl.col("lb_cost"),
            kind=pl.lit("container"),
        )
    )

    # Idle: each cluster's provisioned capacity, priced, less what containers were charged.
    peak = (
        hourly.group_by("cluster", "hour")
        .agg(
            cores=pl.col("cpu_core_hours").sum(),
            ram=pl.col("ram_byte_hours").sum(),
            gpus=pl.col("gpu_hours").sum(),
        )
        .group_by("cluster")
        .agg(pl.col("cores").max(), pl.col("ram").max(), pl.col("gpus").max())
        .join(prices, on="cluster")
        .with_columns(
            cap_cores=(pl.col("cores") * pl.col("headroom")).ceil(),
            cap_ram=((pl.col("ram") * pl.col("headroom")) / GIB).ceil() * GIB,
            cap_gpus=pl.col("gpus") + pl.col("gpu_spare"),
        )
    )
    idle = (
        hourly.group_by("cluster", "hour")
        .agg(
            used_cpu_cost=pl.col("cpu_cost").sum(),
            used_ram_cost=pl.col("ram_cost").sum(),
            used_gpu_cost=pl.col("gpu_cost").sum(),
            used_cores=pl.col("cpu_core_hours").sum(),
            used_ram=pl.col("ram_byte_hours").sum(),
            used_gpus=pl.col("gpu_hours").sum(),
        )
        .join(peak, on="cluster")
        .with_columns(
            cpu_cost=_nanos(pl.col("cap_cores") * pl.col("cpu_price")) - pl.col("used_cpu_cost"),
            ram_cost=_nanos(pl.col("cap_ram") / GIB * pl.col("ram_price"))
            - pl.col("used_ram_cost"),
            gpu_cost=_nanos(pl.col("cap_gpus") * pl.col("gpu_price")) - pl.col("used_gpu_cost"),
            cpu_core_hours=pl.col("cap_cores") - pl.col("used_cores"),
            ram_byte_hours=pl.col("cap_ram") - pl.col("used_ram"),
            gpu_hours=pl.col("cap_gpus") - pl.col("used_gpus"),
            kind=pl.lit("idle"),
        )
        .with_columns(total_cost=pl.col("cpu_cost") + pl.col("ram_cost") + pl.col("gpu_cost"))
    )

    # Unmounted: volumes no pod mounts and load balancers with no pods, per cluster and hour.
    hours = pl.DataFrame({"hour": sorted(hourly["hour"].unique().to_list())})
    unmounted_pv = vol.filter(pl.col("mounted_by").is_null()).select(
        "cluster", "pv", "capacity_bytes", "pv_cost"
    )
    unmounted_lb = svc.filter((pl.col("lb_cost") > 0) & (pl.col("pods").list.len() == 0)).select(
        "cluster", (pl.col("namespace") + "/" + pl.col("service")).alias("lb_service"), "lb_cost"
    )
    unmounted = (
        pl.DataFrame({"cluster": [c.name for c in spec.clusters]})
        .join(
            unmounted_pv.group_by("cluster").agg(
                pv_cost=pl.col("pv_cost").sum(), capacity_bytes=pl.col("capacity_bytes").sum()
            ),
            on="cluster",
            how="left",
        )
        .join(
            unmounted_lb.group_by("cluster").agg(lb_cost=pl.col("lb_cost").sum()),
            on="cluster",
            how="left",
        )
        .fill_null(0)
        .join(hours, how="cross")
        .with_columns(kind=pl.lit("unmounted"), total_cost=pl.col("pv_cost") + pl.col("lb_cost"))
    )
    cols = [
        "kind",
        "cluster",
        "hour",
        "node",
        "namespace",
        "pod",
        "container",
        "controller_kind",
        "controller",
        "cpu_request",
        "cpu_usage",
        "memory_request_bytes",
        "ram_usage",
        "gpu_request",
        "cpu_core_hours",
        "ram_byte_hours",
        "gpu_hours",
        "egress_bytes",
        "capacity_bytes",
        "cpu_cost",
        "ram_cost",
        "gpu_cost",
        "network_cost",
        "pv_cost",
        "lb_cost",
        "total_cost",
        "pv",
        "lb_service",
    ]
    out = pl.concat([hourly, idle, unmounted], how="diagonal_relaxed")
    for c in cols:
        if c not in out.columns:
            out = out.with_columns(pl.lit(None).alias(c))
    return out.select(cols).sort("cluster", "hour", "kind", "namespace", "pod", "container")


def unmounted_items(fleet: DemoFleet) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The unmounted PVs and pod-less load balancers, itemized with their hourly cost in nanos."""
    prices = {c.name: c.prices for c in fleet.spec.clusters}
    pvs = fleet.volumes.filter(pl.col("mounted_by").is_null()).with_columns(
        pv_cost=pl.struct("cluster", "capacity_bytes").map_elements(
            lambda r: round(
                r["capacity_bytes"] / GIB * prices[r["cluster"]].storage_gib_hour * NANO
            ),
            return_dtype=pl.Int64,
        )
    )
    lbs = fleet.services.filter(
        (pl.col("type") == "LoadBalancer") & (pl.col("pods").list.len() == 0)
    ).with_columns(
        lb_cost=pl.col("cluster").map_elements(
            lambda c: round(prices[c].load_balancer_hour * NANO), return_dtype=pl.Int64
        )
    )
    return pvs, lbs


def ceil_to(x: float, step: float) -> float:
    return math.ceil(round(x / step, 9)) * step
