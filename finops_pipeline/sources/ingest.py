"""Ingest one cluster's hours from a source into the lake: fetch once, one file per hour.

Ingestion stages its files in memory; `write` puts them in the lake only after the caller has
checked every row of the run, so a run that fails (a bad answer, a failed check, a missing token
on the last cluster) leaves the lake as it was.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from finops_pipeline.config import Cluster, Fleet
from finops_pipeline.lake.parquet import partition_path, write_partitions
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
    pending: list[tuple[Path, pl.DataFrame]] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        self.files += other.files
        self.rows += other.rows
        self.quarantined += other.quarantined
        self.bytes += other.bytes
        self.empty_hours += other.empty_hours
        self.counts.update(other.counts)
        self.frames.extend(other.frames)
        self.pending.extend(other.pending)


def write(report: IngestReport) -> None:
    """Write every staged partition under a temporary name first, then rename them all: a write
    that fails (disk full, a folder not writable) leaves no new file in the lake."""
    report.bytes += write_partitions(report.pending)
    report.files += len(report.pending)
    report.pending.clear()


def _rows_in(path: Path) -> int:
    """Rows in an existing lake file (from its footer), 0 when there is none."""
    if not path.exists():
        return 0
    return pl.scan_parquet(path).select(pl.len()).collect().item()


def runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Contiguous [start, end) ranges covering the given hours."""
    out: list[tuple[datetime, datetime]] = []
    for h in sorted(set(hours)):
        if out and out[-1][1] == h:
            out[-1] = (out[-1][0], h + HOUR)
        else:
            out.append((h, h + HOUR))
    return out


def _stage_hours(
    fleet: Fleet,
    asset: str,
    cluster: str,
    hours: list[datetime],
    frame: pl.DataFrame,
    quarantine: pl.DataFrame | None,
    time_col: str,
    report: IngestReport,
    unanswered: set[datetime] = frozenset(),
) -> None:
    """Stage one file per requested hour (and its quarantine file).

    An hour the source did not answer for (a set of another length), or answered with nothing
    while the lake holds rows for it, keeps its previous file: an API that has lost or aged out
    its data does not erase what was read before. Quarantined rows are always written.
    """
    lake = fleet.paths.lake
    by_hour = {k[0]: g for k, g in frame.group_by(time_col)} if frame.height else {}
    q_by_hour = (
        {k[0]: g for k, g in quarantine.group_by(time_col)}
        if quarantine is not None and quarantine.height
        else {}
    )
    for h in hours:
        if quarantine is not None:
            q = q_by_hour.get(h, quarantine.clear())
            # Always written, so a re-run that quarantines nothing clears an old quarantine.
            report.pending.append((partition_path(lake, f"{asset}_quarantine", cluster, h), q))
            report.quarantined += q.height
        path = partition_path(lake, asset, cluster, h)
        if h in unanswered:
            kept = path.exists()
            report.counts[
                "hours_not_answered_kept_previous" if kept else "hours_not_answered_no_file"
            ] += 1
            log.warning(
                "%s %s %s: not answered for this hour; %s",
                asset,
                cluster,
                h,
                "previous file kept" if kept else "no file for it yet",
            )
            continue
        part = by_hour.get(h, frame.clear())
        if part.height == 0 and (previous := _rows_in(path)):
            report.counts["empty_answer_kept_previous"] += 1
            log.warning(
                "%s %s %s: empty answer; the previous file's %d rows are kept",
                asset,
                cluster,
                h,
                previous,
            )
            continue
        if part.height == 0:
            report.empty_hours += 1
        report.pending.append((path, part))
        report.rows += part.height
        report.frames.append(part)
    for what, groups in (("rows", by_hour), ("quarantined rows", q_by_hour)):
        outside = set(groups) - set(hours)
        if outside:
            n = sum(groups[h].height for h in outside)
            report.counts[f"{what.replace(' ', '_')}_outside_requested_hours"] += n
            log.warning(
                "%s %s: %d %s for hours not requested, not written", asset, cluster, n, what
            )


def ingest_allocation(fleet: Fleet, cluster: Cluster, hours: list[datetime]) -> IngestReport:
    report = IngestReport("allocation")
    for start, end in runs(hours):
        t = start
        while t < end:
            stop = min(t + ALLOCATION_HOURS_PER_REQUEST * HOUR, end)
            t0 = time.monotonic()
            body = allocation.fetch(cluster, t, stop)
            steps = int((stop - t) / HOUR)
            expected = cluster.allocation.cluster_id or cluster.name
            decoded = allocation.decode(body, cluster.name, t, HOUR, steps, expected)
            chunk = [h for h in hours if t <= h < stop]
            _stage_hours(
                fleet,
                "allocation",
                cluster.name,
                chunk,
                decoded.rows,
                decoded.quarantine,
                "window_start",
                report,
                decoded.unanswered,
            )
            # Rows are counted as staged, above: a set outside the hours asked writes none.
            decoded.counts.pop("rows", None)
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
            _stage_hours(
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
            _stage_hours(fleet, "inventory", cluster.name, chunk, frame, None, "hour_start", report)
            report.counts.update(counts)
    return report
