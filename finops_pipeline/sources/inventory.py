"""Hourly inventory snapshots from kube-state-metrics: volumes, claims, mounts, services, owners.

An object is in an hour's snapshot when any of its series had a sample in that hour.
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
    "object_kind": pl.String,
    "namespace": pl.String,
    "name": pl.String,
    "phase": pl.String,
    "storageclass": pl.String,
    "capacity_bytes": pl.Float64,
    "volume_name": pl.String,
    "claim_name": pl.String,
    "service_type": pl.String,
    "ready_endpoints": pl.Int64,
    "owner_kind": pl.String,
    "owner_name": pl.String,
}

# object_kind -> (PromQL body, label giving the object's name, label -> column)
QUERIES: dict[str, tuple[str, str, dict[str, str]]] = {
    "persistentvolume": (
        "last_over_time(kube_persistentvolume_info{S}[1h])",
        "persistentvolume",
        {"storageclass": "storageclass"},
    ),
    "persistentvolume_capacity": (
        "last_over_time(kube_persistentvolume_capacity_bytes{S}[1h])",
        "persistentvolume",
        {},
    ),
    "persistentvolume_phase": (
        "last_over_time(kube_persistentvolume_status_phase{S}[1h]) == 1",
        "persistentvolume",
        {"phase": "phase"},
    ),
    "persistentvolumeclaim": (
        "last_over_time(kube_persistentvolumeclaim_info{S}[1h])",
        "persistentvolumeclaim",
        {"namespace": "namespace", "volumename": "volume_name", "storageclass": "storageclass"},
    ),
    "pod_volume": (
        "last_over_time(kube_pod_spec_volumes_persistentvolumeclaims_info{S}[1h])",
        "pod",
        {"namespace": "namespace", "persistentvolumeclaim": "claim_name"},
    ),
    "service": (
        "last_over_time(kube_service_spec_type{S}[1h])",
        "service",
        {"namespace": "namespace", "type": "service_type"},
    ),
    "endpoint": (
        "count by (namespace, endpoint) "
        '(last_over_time(kube_endpoint_address{S,ready="true"}[1h]))',
        "endpoint",
        {"namespace": "namespace"},
    ),
    "pod_owner": (
        "last_over_time(kube_pod_owner{S}[1h])",
        "pod",
        {"namespace": "namespace", "owner_kind": "owner_kind", "owner_name": "owner_name"},
    ),
    "replicaset_owner": (
        "last_over_time(kube_replicaset_owner{S}[1h])",
        "replicaset",
        {"namespace": "namespace", "owner_kind": "owner_kind", "owner_name": "owner_name"},
    ),
}


def collect(
    client: PrometheusClient, start: datetime, end: datetime
) -> tuple[pl.DataFrame, Counter]:
    counts: Counter = Counter()
    pv: dict[tuple, dict] = {}
    rows: list[dict] = []
    sel = client.api.selector
    for kind, (template, name_label, columns) in QUERIES.items():
        expr = template.replace("{S}", "{" + sel + "}").replace(
            "{S,", "{" + sel + "," if sel else "{"
        )
        for p in client.hourly(expr, start, end):
            name = p.labels.get(name_label)
            if not name:
                counts[f"{kind}_without_name"] += 1
                continue
            row = {
                "cluster": client.cluster,
                "hour_start": p.hour,
                "object_kind": kind,
                "name": name,
            }
            for label, col in columns.items():
                row[col] = p.labels.get(label)
            numeric = kind in ("endpoint", "persistentvolume_capacity")
            if numeric and (not math.isfinite(p.value) or p.value < 0):
                # Counts and capacities are whole and finite; anything else is dropped, counted.
                counts[f"{kind}_invalid_value_dropped"] += 1
                continue
            if kind == "endpoint":
                row["ready_endpoints"] = int(p.value)
            if kind.startswith("persistentvolume") and kind != "persistentvolumeclaim":
                # The three PV series describe one object: fold them into one row.
                merged = pv.setdefault((p.hour, name), {**row, "object_kind": "persistentvolume"})
                if kind == "persistentvolume_capacity":
                    merged["capacity_bytes"] = p.value
                else:
                    merged.update({k: v for k, v in row.items() if k in columns.values() and v})
                continue
            rows.append(row)
    rows.extend(pv.values())
    counts["rows"] = len(rows)
    frame = pl.DataFrame(rows, schema=SCHEMA).sort("hour_start", "object_kind", "namespace", "name")
    return frame, counts
