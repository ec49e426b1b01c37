"""Per container-hour utilization from Prometheus: usage avg/max/p95, requests and limits.

All aggregation happens in PromQL; one range query per measure and cluster returns every hour of
the run, and the measures are joined here on (namespace, pod, container, hour).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

import polars as pl

from finops_pipeline.sources.prometheus import PrometheusClient

SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.String,
    "hour_start": pl.Datetime("us", "UTC"),
    "namespace": pl.String,
    "pod": pl.String,
    "container": pl.String,
    "node": pl.String,
    "cpu_samples": pl.Int64,
    "cpu_usage_avg_cores": pl.Float64,
    "cpu_usage_max_cores": pl.Float64,
    "cpu_usage_p95_cores": pl.Float64,
    "memory_usage_avg_bytes": pl.Float64,
    "memory_usage_max_bytes": pl.Float64,
    "memory_usage_p95_bytes": pl.Float64,
    "cpu_request_cores": pl.Float64,
    "cpu_limit_cores": pl.Float64,
    "memory_request_bytes": pl.Float64,
    "memory_limit_bytes": pl.Float64,
    "gpu_request": pl.Float64,
}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.String,
    "hour_start": pl.Datetime("us", "UTC"),
    "namespace": pl.String,
    "pod": pl.String,
    "container": pl.String,
    "reason": pl.String,
    "raw": pl.String,
}
KEYS = ("namespace", "pod", "container")


def measures(client: PrometheusClient) -> dict[str, str]:
    """PromQL per output column; pod-level and pause-container series are excluded."""
    c = 'container!="",container!="POD"'
    cpu = f"{client.api.cpu_usage_metric}{client.selector(c)}"
    mem = f"{client.api.memory_usage_metric}{client.selector(c)}"

    def ksm(metric: str, resource: str) -> str:
        matcher = 'resource="' + resource + '"'
        return f"max_over_time({metric}{client.selector(c, matcher)}[1h])"

    return {
        "cpu_samples": f"count_over_time({cpu}[1h])",
        "cpu_usage_avg_cores": f"avg_over_time({cpu}[1h])",
        "cpu_usage_max_cores": f"max_over_time({cpu}[1h])",
        "cpu_usage_p95_cores": f"quantile_over_time(0.95, {cpu}[1h])",
        "memory_usage_avg_bytes": f"avg_over_time({mem}[1h])",
        "memory_usage_max_bytes": f"max_over_time({mem}[1h])",
        "memory_usage_p95_bytes": f"quantile_over_time(0.95, {mem}[1h])",
        "cpu_request_cores": ksm("kube_pod_container_resource_requests", "cpu"),
        "cpu_limit_cores": ksm("kube_pod_container_resource_limits", "cpu"),
        "memory_request_bytes": ksm("kube_pod_container_resource_requests", "memory"),
        "memory_limit_bytes": ksm("kube_pod_container_resource_limits", "memory"),
        "gpu_request": ksm("kube_pod_container_resource_requests", "nvidia_com_gpu"),
    }


def collect(
    client: PrometheusClient, start: datetime, end: datetime
) -> tuple[pl.DataFrame, pl.DataFrame, Counter]:
    """Rows per container-hour in [start, end), and quarantined rows (NaN, Inf, negative)."""
    cluster = client.cluster
    rows: dict[tuple, dict] = {}
    bad: dict[tuple, dict] = {}
    counts: Counter = Counter()
    answered: set[tuple] = set()  # (container-hour, column) pairs a series has answered
    for column, expr in measures(client).items():
        for p in client.hourly(expr, start, end):
            key = (p.hour, *(p.labels.get(k) for k in KEYS))
            if None in key[1:]:
                counts["series_without_container_labels"] += 1
                continue
            row = rows.setdefault(
                key,
                {"cluster": cluster, "hour_start": p.hour, **dict(zip(KEYS, key[1:], strict=True))},
            )
            if p.labels.get("node"):
                row.setdefault("node", p.labels["node"])
            problem = None
            if (key, column) in answered:
                # Two series for one container: two scrapes of it, or a selector too wide.
                problem = f"duplicate_series: {column} answered twice"
            elif math.isnan(p.value) or math.isinf(p.value):
                problem = f"non_finite_value: {column}={p.text}"
            elif p.value < 0:
                problem = f"negative_value: {column}={p.text}"
            answered.add((key, column))
            if problem:
                bad.setdefault(
                    key,
                    {
                        "cluster": cluster,
                        "hour_start": p.hour,
                        **dict(zip(KEYS, key[1:], strict=True)),
                        "reasons": [],
                    },
                )
                bad[key]["reasons"].append(problem)
                continue
            row[column] = int(p.value) if column == "cpu_samples" else p.value
    good = []
    quarantined = []
    for key, row in rows.items():
        if key in bad:
            b = bad[key]
            reasons = b.pop("reasons")
            counts[reasons[0].split(":")[0]] += 1
            quarantined.append({**b, "reason": "; ".join(reasons), "raw": str(row)})
        elif row.get("cpu_usage_avg_cores") is None and row.get("memory_usage_avg_bytes") is None:
            # Requests with no usage series: the container was scheduled but not measured.
            counts["no_usage_samples"] += 1
            quarantined.append(
                {
                    **{k: row[k] for k in ("cluster", "hour_start", *KEYS)},
                    "reason": "no_usage_samples: requests seen but no usage series",
                    "raw": str(row),
                }
            )
        else:
            good.append(row)
    counts["rows"] = len(good)
    frame = pl.DataFrame(good, schema=SCHEMA).sort("hour_start", *KEYS)
    return frame, pl.DataFrame(quarantined, schema=QUARANTINE_SCHEMA), counts
