"""Build the DuckDB warehouse from the lake in one transaction, check it, and publish the marts."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from finops_pipeline.config import Fleet
from finops_pipeline.lake.parquet import asset_glob, has_files, lake_clusters, temporary_name
from finops_pipeline.warehouse.sqlmodels import (
    Model,
    build,
    grain_violations,
    load_models,
    null_violations,
)

RAW_ASSETS = ("allocation", "utilization", "inventory")
log = logging.getLogger(__name__)


class WarehouseCheckError(RuntimeError):
    """A data check failed; the transaction was rolled back and the warehouse is unchanged."""


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    detail: str
    model: str


@dataclass
class BuildResult:
    rows: dict[str, int]
    checks: list[CheckOutcome] = field(default_factory=list)
    seconds: float = 0.0
    model_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def sources(fleet: Fleet, notes: list[str] | None = None) -> dict[tuple[str, str], str]:
    """Raw sources read the lake of the clusters in the fleet file only: a cluster renamed or
    removed there leaves its old files in the lake, and they must not be counted again. What was
    left out either way is added to `notes`."""
    notes = [] if notes is None else notes
    lake = fleet.paths.lake
    out: dict[tuple[str, str], str] = {}
    for asset in RAW_ASSETS:
        globs = [
            asset_glob(lake, asset, c.name)
            for c in fleet.clusters
            if has_files(lake, asset, c.name)
        ]
        if not globs:
            raise FileNotFoundError(
                f"no {asset} partitions in {lake}: materialize the raw_{asset} asset first"
            )
        stray = sorted(set(lake_clusters(lake, asset)) - {c.name for c in fleet.clusters})
        if stray:
            notes.append(f"lake {asset} holds clusters not in the fleet file, not built: {stray}")
        missing = [c.name for c in fleet.clusters if not has_files(lake, asset, c.name)]
        if missing:
            # A cluster new to the fleet file, not ingested yet: built without it, said loudly.
            notes.append(f"lake {asset} has no files for fleet clusters {missing}: built without")
        listed = ", ".join("'" + g.replace("'", "''") + "'" for g in globs)
        out[("raw", asset)] = f"read_parquet([{listed}], union_by_name = true)"
    for table in (
        "rules",
        "clusters",
        "team_label_keys",
        "team_precedence",
        "team_namespace_map",
        "shared_namespaces",
    ):
        out[("config", table)] = f"config.{table}"
    return out


def write_config(con: duckdb.DuckDBPyConnection, fleet: Fleet) -> None:
    """Fleet rules as tables, so SQL models read them like any other input."""
    t, r = fleet.teams, fleet.allocation_rules
    rs, an, zb = fleet.thresholds.rightsizing, fleet.thresholds.anomaly, fleet.thresholds.zombies
    con.execute("create schema if not exists config")
    con.execute(
        """
        create or replace table config.rules as select
            ?::varchar as currency, ?::varchar as default_team, ?::varchar as default_product_line,
            ?::varchar as product_line_label, ?::varchar as idle_mode,
            ?::double as weight_cpu, ?::double as weight_ram, ?::double as weight_gpu,
            ?::double as rightsizing_cpu_ratio, ?::integer as rightsizing_hours,
            ?::double as rightsizing_headroom, ?::double as rightsizing_min_cpu_cores,
            ?::double as hours_per_month, ?::double as anomaly_increase_ratio,
            ?::integer as anomaly_baseline_hours, ?::double as anomaly_min_increase_cost,
            ?::integer as zombie_hours
        """,
        [
            fleet.currency,
            t.default_team,
            t.default_product_line,
            t.product_line_label,
            r.idle,
            r.weights.cpu,
            r.weights.ram,
            r.weights.gpu,
            rs.cpu_ratio_below,
            rs.hours,
            rs.headroom,
            rs.min_cpu_cores,
            rs.hours_per_month,
            an.increase_ratio,
            an.baseline_hours,
            an.min_increase_cost,
            zb.hours,
        ],
    )
    con.execute(
        "create or replace table config.clusters "
        "(cluster varchar primary key, provider varchar, region varchar)"
    )
    con.executemany(
        "insert into config.clusters values (?, ?, ?)",
        [[c.name, c.provider.value, c.region] for c in fleet.clusters],
    )
    con.execute(
        "create or replace table config.team_label_keys "
        "(source varchar, position integer, label_key varchar)"
    )
    keys = [["pod_label", i, k] for i, k in enumerate(t.pod_label_keys)]
    keys += [["namespace_label", i, k] for i, k in enumerate(t.namespace_label_keys)]
    if keys:
        con.executemany("insert into config.team_label_keys values (?, ?, ?)", keys)
    con.execute("create or replace table config.team_precedence (position integer, source varchar)")
    con.executemany(
        "insert into config.team_precedence values (?, ?)",
        [[i, s] for i, s in enumerate(t.precedence)],
    )
    con.execute(
        "create or replace table config.team_namespace_map "
        "(namespace varchar primary key, team varchar)"
    )
    if t.namespace_map:
        con.executemany(
            "insert into config.team_namespace_map values (?, ?)",
            [[k, v] for k, v in t.namespace_map.items()],
        )
    con.execute("create or replace table config.shared_namespaces (namespace varchar)")
    if r.shared_namespaces:
        con.executemany(
            "insert into config.shared_namespaces values (?)", [[n] for n in r.shared_namespaces]
        )


def money_checks(con: duckdb.DuckDBPyConnection) -> list[CheckOutcome]:
    """Conservation: each cost is allocated exactly once, to the 1e-9 of the currency."""
    out = []
    diff = con.execute(
        """
        select count(*), coalesce(max(abs(a.cost - coalesce(b.cost, 0))), 0)
        from (select cluster, hour_start, sum(total_cost) as cost from staging.stg_allocation
              group by all) as a
        left join (select cluster, hour_start, sum(allocated_cost) as cost
                   from marts.cost_allocated_hourly group by all) as b
            using (cluster, hour_start)
        where a.cost <> coalesce(b.cost, 0)
        """
    ).fetchone()
    out.append(
        CheckOutcome(
            "allocation_conserves_cost",
            diff[0] == 0,
            f"{diff[0]} cluster-hours where allocated cost differs from source (max gap {diff[1]})",
            "cost_allocated_hourly",
        )
    )
    totals = con.execute(
        """
        select (select coalesce(sum(total_cost), 0) from marts.team_bill_monthly),
               (select coalesce(sum(total_cost), 0) from marts.cost_by_cluster_hourly),
               (select coalesce(sum(billed_amount), 0) from marts.team_bill_monthly),
               (select coalesce(sum(r), 0) from (
                    select round(sum(total_cost), 2) as r from marts.team_bill_monthly
                    group by month))
        """
    ).fetchone()
    out.append(
        CheckOutcome(
            "bills_equal_cluster_costs",
            totals[0] == totals[1],
            f"team bills {totals[0]} vs cluster costs {totals[1]}",
            "team_bill_monthly",
        )
    )
    out.append(
        CheckOutcome(
            "rounded_bills_keep_total",
            totals[2] == totals[3],
            f"billed {totals[2]} vs rounded monthly totals {totals[3]}",
            "team_bill_monthly",
        )
    )
    neg = con.execute(
        "select count(*) from staging.stg_allocation where allocation_kind = 'container' and "
        "least(cpu_cost, ram_cost, gpu_cost, pv_cost, network_cost, load_balancer_cost) < 0 "
        "and total_cost >= 0 and other_cost = 0"
    ).fetchone()[0]
    out.append(
        CheckOutcome(
            "no_negative_cost_outside_adjustments",
            neg == 0,
            f"{neg} container rows with a negative part and no adjustment",
            "cost_by_cluster_hourly",
        )
    )
    return out


def model_checks(con: duckdb.DuckDBPyConnection, models: dict[str, Model]) -> list[CheckOutcome]:
    out = []
    for m in models.values():
        if m.layer != "marts":
            continue
        dup = grain_violations(con, m)
        nulls = null_violations(con, m)
        out.append(
            CheckOutcome(
                f"{m.name}_unique_at_grain",
                dup == 0,
                f"{dup} duplicate {'/'.join(m.grain)} keys",
                m.name,
            )
        )
        out.append(
            CheckOutcome(
                f"{m.name}_not_null", not nulls, f"nulls: {nulls}" if nulls else "no nulls", m.name
            )
        )
    return out


def build_warehouse(fleet: Fleet, select: set[str] | None = None) -> BuildResult:
    """Rebuild every model from the lake in one transaction; any failed check rolls it all back."""
    started = datetime.now(UTC)
    models = load_models()
    path = fleet.paths.warehouse
    path.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    src = sources(fleet, notes)
    for note in notes:
        log.warning(note)
    con = duckdb.connect(str(path))
    # Days and months are cut in UTC whatever the machine's zone.
    con.execute("set timezone = 'UTC'")
    con.execute("set enable_progress_bar = false")  # the run's log is the record, not a terminal
    committed = False
    try:
        con.execute("begin transaction")
        write_config(con, fleet)
        model_seconds: dict[str, float] = {}
        rows = build(con, models, src, fleet.currency, model_seconds)
        checks = money_checks(con) + model_checks(con, models)
        failed = [c for c in checks if not c.passed]
        if failed:
            raise WarehouseCheckError(
                "warehouse checks failed, nothing was changed: "
                + "; ".join(f"{c.name}: {c.detail}" for c in failed)
            )
        con.execute("commit")
        committed = True
    finally:
        if not committed:
            con.execute("rollback")
        con.close()
    seconds = (datetime.now(UTC) - started).total_seconds()
    return BuildResult(rows, checks, seconds, model_seconds, notes)


def publish(fleet: Fleet) -> Path:
    """Copy the marts to a fresh file and rename it over the published one (atomic for readers)."""
    target = fleet.paths.published
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"attach '{fleet.paths.warehouse}' as wh (read_only)")
        con.execute("create schema marts")
        tables = con.execute(
            "select table_name, comment from duckdb_tables() "
            "where database_name = 'wh' and schema_name = 'marts' order by table_name"
        ).fetchall()
        for name, comment in tables:
            con.execute(f"create table marts.{name} as select * from wh.marts.{name}")
            if comment:
                con.execute(
                    f"comment on table marts.{name} is '{comment.replace(chr(39), chr(39) * 2)}'"
                )
            for col, ccomment in con.execute(
                "select column_name, comment from duckdb_columns() where database_name = 'wh' "
                f"and schema_name = 'marts' and table_name = '{name}' and comment is not null"
            ).fetchall():
                con.execute(
                    f"comment on column marts.{name}.{col} is "
                    f"'{ccomment.replace(chr(39), chr(39) * 2)}'"
                )
        con.execute("detach wh")
        con.execute("checkpoint")
    finally:
        con.close()
    os.replace(tmp, target)
    wal = tmp.with_name(tmp.name + ".wal")
    if wal.exists():
        wal.unlink()
    return target
