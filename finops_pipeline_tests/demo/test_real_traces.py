"""The main job on a real month of VM traces (../shared/realdata), checked against an independent
computation of the rightsizing rule straight from the trace file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from finops_pipeline.config import Fleet
from finops_pipeline.demo.build import DemoBuild, DemoServers, build
from finops_pipeline.demo.prometheus import CPU_USAGE
from finops_pipeline_tests.conftest import dagster_environment, realdata

TRACE = "bitbrains_rnd_2013-07.parquet"


@dataclass
class TraceRun:
    demo: DemoBuild
    fleet: Fleet
    con: duckdb.DuckDBPyConnection
    path: Path
    metadata: dict
    prometheus_url: str


@pytest.fixture(scope="module")
def trace_run(tmp_path_factory):
    """The whole job on the real month; Prometheus stays up for the module's tests."""
    import dagster as dg

    from finops_pipeline.cli import run_pipeline, workloads
    from finops_pipeline.config import load_fleet
    from finops_pipeline.postgres import LocalPostgres

    path = realdata(TRACE)
    data = tmp_path_factory.mktemp("trace-data")
    demo = build(None, data / "demo-cache", traces=path)
    with (
        DemoServers(demo, data / "demo-run") as servers,
        LocalPostgres(data / "dagster" / "postgres", remove_on_stop=True) as pg,
        dagster_environment(data, pg.url),
    ):
        fleet_path = servers.fleet_config(data, data / "fleet.yaml")
        run_pipeline(
            fleet_path,
            demo.spec.start,
            demo.spec.end,
            log_level="WARNING",
            workloads=workloads(demo),
        )
        with dg.DagsterInstance.get() as instance:
            event = instance.get_latest_materialization_event(dg.AssetKey("demo_workloads"))
            metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        fleet = load_fleet(fleet_path)
        con = duckdb.connect(str(fleet.paths.published), read_only=True)
        yield TraceRun(demo, fleet, con, path, metadata, servers.prometheus.url)
        con.close()


def cleaned_cpu_samples(path: Path) -> pl.DataFrame:
    """Straight from the file: one row per (vm, ts), the one reporting CPU capacity first, and only
    rows that carry a CPU measurement."""
    return (
        pl.read_parquet(path)
        .with_row_index("row")
        .sort("vm", "ts", pl.col("cpu_capacity_mhz") <= 0, "row")
        .unique(["vm", "ts"], keep="first")
        .filter((pl.col("cpu_capacity_mhz") > 0) & (pl.col("cpu_cores") > 0))
    )


def expected_rightsizing(path, ratio=0.2, hours=24, headroom=1.3, min_cores=0.01) -> pl.DataFrame:
    """The rule, computed here from the raw trace: per VM, its hourly mean CPU (cores used =
    usage / capacity x vCPUs, use clipped to capacity) under `ratio` of the hour's vCPUs in each of
    the last `hours` hours; rows without CPU capacity are no sample; a repeated (vm, ts) keeps the
    row that reports capacity."""
    last = pl.read_parquet(path, columns=["ts"])["ts"].max()
    end = last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    rows = (
        cleaned_cpu_samples(path)
        .filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        .with_columns(
            used=pl.min_horizontal("cpu_usage_mhz", "cpu_capacity_mhz")
            / pl.col("cpu_capacity_mhz")
            * pl.col("cpu_cores"),
            hour=pl.col("ts").dt.truncate("1h"),
        )
    )
    hourly = rows.group_by("vm", "hour").agg(
        mean=pl.col("used").mean(),
        p95=pl.col("used").quantile(0.95, "linear"),
        request=pl.col("cpu_cores").max(),
    )
    return (
        hourly.group_by("vm")
        .agg(
            hours=pl.len(),
            low=(pl.col("mean") < ratio * pl.col("request")).sum(),
            p95=pl.col("p95").max(),
        )
        .filter((pl.col("hours") == hours) & (pl.col("low") == hours))
        .with_columns(
            recommended=pl.max_horizontal(
                (pl.col("p95") * headroom * 1000).round(6).ceil() / 1000, pl.lit(min_cores)
            ),
            controller=pl.format("vm-{}", pl.col("vm").cast(pl.String).str.zfill(3)),
        )
        .sort("vm")
    )


def test_rightsizing_on_the_real_month_matches_an_independent_computation(trace_run):
    con, path = trace_run.con, trace_run.path
    expected = expected_rightsizing(path)
    got = dict(
        con.execute(
            "select controller, recommended_cpu_request_cores "
            "from marts.rightsizing_recommendations where low_utilization"
        ).fetchall()
    )
    assert len(expected) > 100  # most of the real machines idle along
    assert set(got) == set(expected["controller"])
    sample = expected.sort("p95", descending=True).head(5)
    for controller, rec in zip(sample["controller"], sample["recommended"], strict=True):
        assert got[controller] == pytest.approx(rec, abs=1e-9)


def test_real_month_totals_reconcile_and_cover_every_machine(trace_run):
    con, truth = trace_run.con, trace_run.demo.truth()
    months = con.execute(
        "select month, sum(total_cost), sum(billed_amount) from marts.team_bill_monthly "
        "group by month order by month"
    ).fetchall()
    # The trace starts 2013-06-30 22:00 UTC: two hours of June, then July.
    assert [m[0] for m in months] == ["2013-06", "2013-07"]
    assert sum(m[1] for m in months) == Decimal(truth["fleet_total_cost"])
    for _, total, billed in months:
        # each month's bills add up to its total rounded half away from zero, to the cent
        assert billed == total.quantize(Decimal("0.01"), ROUND_HALF_UP)
    machines = con.execute(
        "select count(distinct controller) from marts.cost_utilization_hourly"
    ).fetchone()[0]
    assert machines == 500
    assert truth["trace_import"]["duplicate_timestamp_merged"] == 71_664
    assert truth["trace_import"]["rows_read"] == 3_890_450


def test_import_counts_per_reason_are_the_assets_metadata(trace_run):
    counts, metadata = trace_run.demo.truth()["trace_import"], trace_run.metadata
    assert metadata["source"] == trace_run.path.name
    assert {k: metadata[f"trace_{k}"] for k in counts} == counts
    # Every row read is accounted for: kept, merged into another, or dropped for a stated reason.
    assert counts["rows_read"] == (
        counts["samples_kept"]
        + counts["invalid_value_dropped"]
        + counts["duplicate_timestamp_merged"]
        + counts["rows_without_cpu_or_memory_dropped"]
    )
    assert counts["cpu_usage_clipped_to_capacity"] == 49_475
    assert counts["machines"] == 500


def _prom(url: str, query: str, at: float) -> list[dict]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": query, "time": at}, timeout=60)
    r.raise_for_status()
    return r.json()["data"]["result"]


def test_prometheus_holds_the_traced_samples_and_nothing_in_the_gaps(trace_run):
    """No usage is invented: per machine, the raw CPU samples in Prometheus are exactly the trace's
    cleaned samples, and inside the longest gap of a machine there is none."""
    samples = cleaned_cpu_samples(trace_run.path).with_columns(ts=pl.col("ts").dt.epoch("s"))
    gaps = (
        samples.sort("vm", "ts")
        .with_columns(prev=pl.col("ts").shift().over("vm"))
        .with_columns(gap=pl.col("ts") - pl.col("prev"))
        .sort("gap", descending=True, nulls_last=True)
    )
    widest = gaps.row(0, named=True)
    assert widest["gap"] > 6 * 3600  # the real month has machines silent for hours
    per_vm = samples.group_by("vm").len()
    short = per_vm.sort("len").row(0, named=True)  # the shortest-lived machine
    end = trace_run.demo.spec.end.timestamp()
    span = int(end - trace_run.demo.spec.start.timestamp())
    for vm in {widest["vm"], short["vm"], 1, 250, 500}:
        sel = f'{CPU_USAGE}{{container="app",pod=~".*-t{vm:04d}"}}'
        got = _prom(trace_run.prometheus_url, f"count_over_time({sel}[{span}s])", end)
        expected = per_vm.filter(pl.col("vm") == vm)["len"].item()
        assert [int(r["value"][1]) for r in got] == [expected], vm
    sel = f'{CPU_USAGE}{{container="app",pod=~".*-t{widest["vm"]:04d}"}}'
    inside = widest["gap"] - 2
    assert _prom(trace_run.prometheus_url, f"{sel}[{inside}s]", widest["ts"] - 1) == []
