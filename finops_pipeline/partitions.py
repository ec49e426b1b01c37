"""Hour x cluster partitions, with the clusters and the first hour taken from the fleet file."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from finops_pipeline.config import Fleet

HOUR_FORMAT = "%Y-%m-%d-%H:%M"


def hour_cluster_partitions(fleet: Fleet) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            "cluster": dg.StaticPartitionsDefinition(sorted(c.name for c in fleet.clusters)),
            "hour": dg.HourlyPartitionsDefinition(
                start_date=fleet.partitions_start.strftime(HOUR_FORMAT), timezone="UTC"
            ),
        }
    )


def hours_by_cluster(partition_keys: list[str]) -> dict[str, list[datetime]]:
    """Group a run's partition keys ("<cluster>|<hour>") by cluster."""
    out: dict[str, list[datetime]] = defaultdict(list)
    for key in partition_keys:
        if isinstance(key, dg.MultiPartitionKey):
            dims = key.keys_by_dimension
            cluster, hour = dims["cluster"], dims["hour"]
        else:
            cluster, hour = key.split("|")
        out[cluster].append(datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC))
    return {c: sorted(h) for c, h in out.items()}
