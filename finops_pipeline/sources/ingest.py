"""Ingest one cluster's hours from a source into the lake: fetch once, write one file per hour."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from finops_pipeline.config import Cluster, Fleet
from finops_pipeline.lake.parquet import partition_path, write_atomic
from finops_pipeline.sources import allocation, inventory, utilization
from finops_pipeline.sources.prometheus import PrometheusClient

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
# Ask the allocation API for at most a day of hourly sets per request.
ALLOCATION_HOURS_PER_REQUEST = 24


@dataclass
class IngestReport:
    asset: str
    files: int = 0
    rows: int = 0
    quarantined: int = 0
    bytes: int = 0
    empty_hours: int = 0
    counts: Counter = field(default_factory=Counter)
    frames: list[pl.DataFrame] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        self.files += other.files
        self.rows += other.rows
        self.quarantined += other.quarantined
        self.bytes += other.bytes
        self.empty_hours += other.empty_hours
        self.counts.update(other.counts)
        self.frames.extend(other.frames)


def runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Contiguous [start, end) ranges covering the given hours."""
    out: list[tuple[datetime, datetime]] = []
    for h in sorted(set(hours)):
        if out and out[-1][1] == h:
            out[-1] = (out[-1][0], h + HOUR)
        else:
            out.append((h, h + HOUR))
    return out


def _write_hours(
    fleet: Fleet,
    asset: str,
    cluster: str,
    hours: list[datetime],
    frame: pl.DataFrame,
    quarantine: pl.DataFrame | None,
    time_col: str,
    report: IngestReport,
) -> None:
    lake = fleet.paths.lake
    by_hour = {k[0]: g for k, g in frame.group_by(time_col)} if frame.height else {}
    q_by_hour = (
        {k[0]: g for k, g in quarantine.group_by(time_col)}
        if quarantine is not None and quarantine.height
        else {}
    )
    for h in hours:
        part = by_hour.get(h, frame.clear())
        if part.height == 0:
            report.empty_hours += 1
        report.bytes += write_atomic(part, partition_path(lake, asset, cluster, h))
        report.files += 1
        report.rows += part.height
        report.frames.append(part)
        if quarantine is not None:
            q = q_by_hour.get(h, quarantine.clear())
            # Always written, so a re-run that quarantines nothing clears an old quarantine.
            write_atomic(q, partition_path(lake, f"{asset}_quarantine", cluster, h))
            report.quarantined += q.height
    outside = set(by_hour) - set(hours)
    if outside:
        n = sum(by_hour[h].height for h in outside)
        report.counts["rows_outside_requested_hours"] += n
        log.warning("%s %s: %d rows for hours not requested were not written", asset, cluster, n)


def ingest_allocation(fleet: Fleet, cluster: Cluster, hours: list[datetime]) -> IngestReport:
    report = IngestReport("allocation")
    for start, end in runs(hours):
        t = start
        while t < end:
            stop = min(t + ALLOCATION_HOURS_PER_REQUEST * HOUR, end)
            t0 = time.monotonic()
            body = allocation.fetch(cluster, t, stop)
            decoded = allocation.decode(body, cluster.name, t, HOUR)
            chunk = [h for h in hours if t <= h < stop]
            _write_hours(
                fleet,
                "allocation",
                cluster.name,
                chunk,
                decoded.rows,
                decoded.quarantine,
                "window_start",
                report,
            )
            report.counts.update(decoded.counts)
            log.info(
                "allocation %s %s..%s: %d rows, %d quarantined, %d bytes in, %.1fs",
                cluster.name,
                t,
                stop,
                decoded.rows.height,
                decoded.quarantine.height,
                len(body),
                time.monotonic() - t0,
            )
            t = stop
    return report


def ingest_utilization(fleet: Fleet, cluster: Cluster, hours: list[datetime]) -> IngestReport:
    report = IngestReport("utilization")
    with PrometheusClient(cluster.prometheus, cluster.name) as client:
        for start, end in runs(hours):
            frame, quarantine, counts = utilization.collect(client, start, end)
            chunk = [h for h in hours if start <= h < end]
            _write_hours(
                fleet, "utilization", cluster.name, chunk, frame, quarantine, "hour_start", report
            )
            report.counts.update(counts)
    return report


def ingest_inventory(fleet: Fleet, cluster: Cluster, hours: list[datetime]) -> IngestReport:
    report = IngestReport("inventory")
    with PrometheusClient(cluster.prometheus, cluster.name) as client:
        for start, end in runs(hours):
            frame, counts = inventory.collect(client, start, end)
            chunk = [h for h in hours if start <= h < end]
            _write_hours(fleet, "inventory", cluster.name, chunk, frame, None, "hour_start", report)
            report.counts.update(counts)
    return report
