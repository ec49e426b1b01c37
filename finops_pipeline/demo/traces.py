"""Demo workloads from a real per-VM resource trace (the GWA-T-12 Bitbrains format).

Each traced machine becomes one container (`app`) of its own single-replica Deployment `vm-NNN`,
placed round-robin on the fleet's clusters and teams. Its provisioned vCPUs and memory become the
container's requests (sampled when the trace sampled them), its CPU and memory use become the
cAdvisor series, its network throughput the pod's network counters.

Rules, each counted in the import report:
- a row with a null, NaN or negative measure is dropped whole (`invalid_value_dropped`);
- rows that repeat a (vm, ts) pair keep one row: the one that reports CPU capacity, and of those
  the first in file order (`duplicate_timestamp_merged` counts the others);
- a row with zero CPU capacity or zero vCPUs carries no CPU measurement: its CPU sample and CPU
  request are dropped, the rest of the row kept (`cpu_sample_dropped_zero_capacity`);
- a row with zero memory capacity likewise loses its memory sample
  (`memory_sample_dropped_zero_capacity`);
- CPU use above capacity is clipped to the provisioned vCPUs (`cpu_usage_clipped_to_capacity`), and
  memory use above capacity to the capacity (`memory_usage_clipped_to_capacity`).
Gaps stay gaps: no sample is moved, interpolated or filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from finops_pipeline.demo.fleet import (
    DEFAULT_CLUSTERS,
    TEAMS,
    DemoCluster,
    DemoFleet,
    DemoSpec,
    allocations,
)

REQUIRED = {
    "ts": pl.Datetime,
    "vm": pl.Int32,
    "cpu_cores": pl.Float64,
    "cpu_capacity_mhz": pl.Float64,
    "cpu_usage_mhz": pl.Float64,
    "mem_capacity_kb": pl.Float64,
    "mem_usage_kb": pl.Float64,
    "net_rx_kbps": pl.Float64,
    "net_tx_kbps": pl.Float64,
}
MEASURES = [c for c in REQUIRED if c not in ("ts", "vm")]


class TraceFormatError(ValueError):
    """The trace file lacks a column this importer needs."""


@dataclass
class TraceImport:
    fleet: DemoFleet
    counts: dict[str, int]


def clean(raw: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Apply the stated rules; return one row per (vm, ts) with per-sample values in SI units."""
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise TraceFormatError(f"trace lacks columns {missing}; expected {list(REQUIRED)}")
    counts: dict[str, int] = {"rows_read": raw.height}
    df = raw.select(list(REQUIRED)).with_row_index("row")
    bad = (
        pl.any_horizontal(
            [pl.col(c).is_null() | pl.col(c).is_nan() | (pl.col(c) < 0) for c in MEASURES]
        )
        | pl.col("ts").is_null()
        | pl.col("vm").is_null()
    )
    counts["invalid_value_dropped"] = df.filter(bad).height
    df = df.filter(~bad)

    df = df.sort(["vm", "ts", (pl.col("cpu_capacity_mhz") > 0).not_(), "row"])
    before = df.height
    df = df.unique(["vm", "ts"], keep="first", maintain_order=True)
    counts["duplicate_timestamp_merged"] = before - df.height

    has_cpu = (pl.col("cpu_capacity_mhz") > 0) & (pl.col("cpu_cores") > 0)
    has_mem = pl.col("mem_capacity_kb") > 0
    counts["cpu_sample_dropped_zero_capacity"] = df.filter(~has_cpu).height
    counts["memory_sample_dropped_zero_capacity"] = df.filter(~has_mem).height
    counts["cpu_usage_clipped_to_capacity"] = df.filter(
        has_cpu & (pl.col("cpu_usage_mhz") > pl.col("cpu_capacity_mhz"))
    ).height
    counts["memory_usage_clipped_to_capacity"] = df.filter(
        has_mem & (pl.col("mem_usage_kb") > pl.col("mem_capacity_kb"))
    ).height
    out = df.select(
        "vm",
        ts=pl.col("ts").dt.epoch("s"),
        cpu_cores=pl.when(has_cpu).then(
            pl.min_horizontal(pl.col("cpu_usage_mhz"), pl.col("cpu_capacity_mhz"))
            / pl.col("cpu_capacity_mhz")
            * pl.col("cpu_cores")
        ),
        cpu_request_cores=pl.when(has_cpu).then(pl.col("cpu_cores")),
        memory_bytes=pl.when(has_mem).then(
            pl.min_horizontal(pl.col("mem_usage_kb"), pl.col("mem_capacity_kb")) * 1024
        ),
        memory_request_bytes=pl.when(has_mem).then(pl.col("mem_capacity_kb") * 1024),
        net_rx_bytes_per_s=pl.col("net_rx_kbps") * 1024,
        net_tx_bytes_per_s=pl.col("net_tx_kbps") * 1024,
    )
    empty = out.filter(pl.col("cpu_cores").is_null() & pl.col("memory_bytes").is_null())
    counts["rows_without_cpu_or_memory_dropped"] = empty.height
    out = out.filter(pl.col("cpu_cores").is_not_null() | pl.col("memory_bytes").is_not_null())
    counts["samples_kept"] = out.height
    counts["machines"] = out["vm"].n_unique()
    return out, counts


def load(path: Path, clusters: tuple[DemoCluster, ...] = DEFAULT_CLUSTERS) -> TraceImport:
    raw = pl.read_parquet(path)
    samples, counts = clean(raw)
    start_s = (samples["ts"].min() // 3600) * 3600
    end_s = (samples["ts"].max() // 3600 + 1) * 3600
    days = -(-(end_s - start_s) // 86400)
    spec = DemoSpec(start=datetime.fromtimestamp(start_s, UTC), days=days, clusters=clusters)

    teams = [t for t in TEAMS if t != "ml-research"]
    vms = sorted(samples["vm"].unique().to_list())
    rows = []
    for i, vm in enumerate(vms):
        cluster = clusters[i % len(clusters)]
        team = teams[(i // len(clusters)) % len(teams)]
        namespaces, product_line, source = TEAMS[team]
        ns = namespaces[0]
        deployment = f"vm-{vm:03d}"
        replicaset = f"{deployment}-{vm * 7919 % 10**10:010d}"
        labels = [
            {"key": "app", "value": deployment},
            {"key": "product_line", "value": product_line},
        ]
        if source == "pod_label":
            labels.append({"key": "team", "value": team})
        rows.append(
            {
                "vm": vm,
                "cluster": cluster.name,
                "node": f"{cluster.name}-node-{i % 16:02d}",
                "namespace": ns,
                "pod": f"{replicaset}-t{vm:04d}",
                "container": "app",
                "controller_kind": "deployment",
                "controller": deployment,
                "replicaset": replicaset,
                "team": team,
                "product_line": product_line,
                "pod_labels": labels,
                "pod_ip": f"10.{i % len(clusters)}.{vm // 250}.{vm % 250 + 1}",
                "team_source": source,
            }
        )
    placement = pl.DataFrame(rows)
    per_vm = samples.group_by("vm").agg(
        alive_from=pl.col("ts").min(),
        alive_to=pl.col("ts").max() + 1,
        cpu_request=pl.col("cpu_request_cores").max().fill_null(0.0),
        memory_request_bytes=pl.col("memory_request_bytes").max().fill_null(0.0),
    )
    containers = placement.join(per_vm, on="vm").with_columns(
        cpu_limit=pl.lit(None, pl.Float64),
        memory_limit_bytes=pl.lit(None, pl.Float64),
        gpu_request=pl.lit(0),
        profile=pl.lit("trace"),
    )
    usage = samples.join(
        placement.select("vm", "cluster", "namespace", "pod", "container"), on="vm"
    ).select(
        "cluster",
        "namespace",
        "pod",
        "container",
        "ts",
        "cpu_cores",
        "memory_bytes",
        "cpu_request_cores",
        "memory_request_bytes",
        "net_rx_bytes_per_s",
        "net_tx_bytes_per_s",
    )
    namespaces = (
        placement.filter(pl.col("team_source") == "namespace_label")
        .group_by("cluster", "namespace")
        .agg(team=pl.col("team").first())
        .with_columns(
            labels=pl.concat_list(
                pl.struct(key=pl.lit("kubernetes_io_metadata_name"), value=pl.col("namespace")),
                pl.struct(key=pl.lit("team"), value=pl.col("team")),
            )
        )
        .select("cluster", "namespace", "labels")
    )
    services = placement.select(
        "cluster",
        "namespace",
        service=pl.col("controller"),
        type=pl.lit("ClusterIP"),
        pods=pl.concat_list("pod"),
        pod_ips=pl.concat_list("pod_ip"),
        zombie_reason=pl.lit(None, pl.String),
    )
    volumes = pl.DataFrame(
        schema={
            "cluster": pl.String,
            "pv": pl.String,
            "capacity_bytes": pl.Float64,
            "storageclass": pl.String,
            "phase": pl.String,
            "namespace": pl.String,
            "claim": pl.String,
            "mounted_by": pl.String,
            "zombie_reason": pl.String,
        }
    )
    fleet = DemoFleet(
        spec=spec,
        containers=containers.drop("vm", "team_source"),
        usage=usage,
        volumes=volumes,
        services=services,
        namespaces=namespaces,
    )
    fleet.allocations = allocations(fleet)
    fleet.trace_counts = counts
    return TraceImport(fleet, counts)
