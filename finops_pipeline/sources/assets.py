"""Raw source assets: allocation, utilization and inventory, partitioned hour x cluster."""

import time

import dagster as dg
import polars as pl

from finops_pipeline.config import Fleet
from finops_pipeline.partitions import hour_cluster_partitions, hours_by_cluster
from finops_pipeline.quality.expectations import validate
from finops_pipeline.sources import ingest

INGESTERS = {
    "allocation": (
        ingest.ingest_allocation,
        "Hourly cost allocation per container from the "
        "Kubecost/OpenCost allocation API, idle and unmounted kept as their own rows.",
    ),
    "utilization": (
        ingest.ingest_utilization,
        "Per container-hour CPU and memory usage (avg, max, "
        "p95), requests and limits, aggregated in PromQL.",
    ),
    "inventory": (
        ingest.ingest_inventory,
        "Hourly kube-state-metrics snapshot: PVs, PVCs, pod "
        "volume mounts, Services and their type, ready endpoints, pod owners.",
    ),
}


def raw_assets(fleet: Fleet) -> list[dg.AssetsDefinition]:
    partitions = hour_cluster_partitions(fleet)
    out = []
    for name, (ingester, description) in INGESTERS.items():
        out.append(_raw_asset(fleet, name, ingester, description, partitions))
    return out


def _raw_asset(fleet, name, ingester, description, partitions) -> dg.AssetsDefinition:
    check = dg.AssetCheckSpec(
        "great_expectations_suite",
        asset=f"raw_{name}",
        blocking=True,
        description=f"Great Expectations suite raw_{name} over every row of the run, before any "
        "file is written: a failure fails the run and leaves the lake as it was",
    )

    @dg.asset(
        name=f"raw_{name}",
        group_name="sources",
        description=description,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[check],
        kinds={"parquet", "prometheus" if name != "allocation" else "kubecost"},
        metadata={"lake_path": dg.MetadataValue.path(str(fleet.paths.lake / name))},
    )
    def _asset(context: dg.AssetExecutionContext):
        t0 = time.monotonic()
        report = None
        by_cluster = hours_by_cluster(context.partition_keys)
        fleet.check_tokens(list(by_cluster))
        for cluster_name, hours in by_cluster.items():
            cluster = fleet.cluster(cluster_name)
            r = ingester(fleet, cluster, hours)
            context.log.info(
                f"raw_{name} {cluster_name}: {len(hours)} hours "
                f"({hours[0]:%Y-%m-%d %H:00}..{hours[-1]:%Y-%m-%d %H:00}), {r.rows} rows, "
                f"{r.quarantined} quarantined, {r.empty_hours} empty hours; "
                f"reasons {dict(r.counts)}"
            )
            if report is None:
                report = r
            else:
                report.merge(r)
        frame = (
            pl.concat(report.frames, how="vertical_relaxed") if report.frames else pl.DataFrame()
        )
        v = validate(name, frame)
        if not v.success:
            raise dg.Failure(
                description=f"raw_{name}: Great Expectations suite failed on {v.rows} rows, "
                f"nothing was written: {'; '.join(v.failed)}",
                metadata={"failed": dg.MetadataValue.json(v.failed), "rows": v.rows},
            )
        ingest.write(report)
        seconds = round(time.monotonic() - t0, 2)
        yield dg.MaterializeResult(
            metadata={
                "partitions": len(context.partition_keys),
                "files_written": report.files,
                "rows": report.rows,
                "rows_quarantined": report.quarantined,
                "empty_hours": report.empty_hours,
                "bytes": report.bytes,
                "seconds": seconds,
                "counts_by_reason": dg.MetadataValue.json(dict(report.counts)),
            }
        )
        yield dg.AssetCheckResult(
            check_name="great_expectations_suite",
            passed=v.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "expectations": v.evaluated,
                "rows": v.rows,
                "failed": dg.MetadataValue.json(v.failed),
            },
        )

    return _asset
