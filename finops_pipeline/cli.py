"""`finops-pipeline`: run the demo job end to end, run a real fleet, or open the Dagster UI."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finops_pipeline.config import CONFIG_ENV, ConfigError, Fleet, load_fleet

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("finops_pipeline")


def dagster_env(data_dir: Path, pg_url: str) -> None:
    """Point Dagster at this repository's dagster.yaml and the given PostgreSQL."""
    os.environ["DAGSTER_HOME"] = str(ROOT)
    os.environ["FINOPS_DAGSTER_PG_URL"] = pg_url
    os.environ["FINOPS_DAGSTER_ARTIFACTS"] = str((data_dir / "dagster").resolve())
    os.environ["FINOPS_DAGSTER_COMPUTE_LOGS"] = str(
        (data_dir / "dagster" / "compute_logs").resolve()
    )


def run_pipeline(
    fleet_path: Path,
    start: datetime,
    end: datetime,
    log_level: str = "INFO",
    workloads: dict | None = None,
) -> dict[str, float]:
    """Materialize the sources for [start, end) x every cluster in one run, then the warehouse,
    published copy and reports in a second run, on the instance that DAGSTER_HOME names.

    `workloads`, from the demo, is recorded first as the metadata of the `demo_workloads` asset.
    """
    import dagster as dg

    from finops_pipeline.definitions import (
        DEMO_WORKLOADS,
        SOURCES_JOB,
        WAREHOUSE_JOB,
        build_definitions,
    )
    from finops_pipeline.partitions import HOUR_FORMAT

    os.environ[CONFIG_ENV] = str(fleet_path)
    fleet = load_fleet(fleet_path)
    defs = build_definitions()
    clusters = sorted(c.name for c in fleet.clusters)
    last = end - timedelta(hours=1)
    tags = {
        "dagster/asset_partition_range_start": f"{clusters[0]}|{start.strftime(HOUR_FORMAT)}",
        "dagster/asset_partition_range_end": f"{clusters[-1]}|{last.strftime(HOUR_FORMAT)}",
    }
    timings = {}
    # The console shows what this level lets through; every event is in the instance regardless.
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    with dg.DagsterInstance.get() as instance:
        # A run over many partitions records thousands of events; by default dagster-postgres
        # opens a new connection for each. Hold pooled connections instead, as the webserver does.
        instance.optimize_for_webserver(
            statement_timeout=120_000, pool_recycle=3600, max_overflow=4
        )
        if workloads is not None:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(DEMO_WORKLOADS.key, metadata=workloads)
            )
        t0 = time.monotonic()
        result = defs.resolve_job_def(SOURCES_JOB).execute_in_process(
            instance=instance, tags=tags, raise_on_error=False, run_config=run_config
        )
        timings["sources_seconds"] = time.monotonic() - t0
        if not result.success:
            # Each raw asset writes its own files only after its whole run checked out: the
            # assets that failed left theirs as they were, the others wrote theirs.
            failed = {e.step_key for e in result.get_step_failure_events()}
            written = sorted(
                e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
            )
            raise RuntimeError(
                f"source run {result.run_id} failed ({_failure(result)}); the lake files of "
                f"{', '.join(sorted(failed))} are as they were"
                + (f"; {', '.join(written)} wrote theirs" if written else "")
                + "; the warehouse was not rebuilt"
            )
        t0 = time.monotonic()
        result = defs.resolve_job_def(WAREHOUSE_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config
        )
        timings["warehouse_seconds"] = time.monotonic() - t0
        if not result.success:
            failed = {e.step_key for e in result.get_step_failure_events()}
            if failed & {"warehouse_models"} or not failed:
                state = "the warehouse and the published copy are unchanged"
            elif "published_warehouse" in failed:
                state = "the warehouse was rebuilt; the published copy and bills are unchanged"
            else:
                state = "the warehouse was rebuilt and published; the bill files are unchanged"
            raise RuntimeError(
                f"warehouse run {result.run_id} failed ({_failure(result)}); {state}"
            )
    return timings


def _failure(result) -> str:
    """The failed steps of a run and, for each, the first line of the error that caused it
    (Dagster wraps the asset's own exception in a step execution error)."""
    out = []
    for e in result.get_step_failure_events():
        err = e.event_specific_data.error if e.event_specific_data else None
        while err is not None and err.cause is not None:
            err = err.cause
        first = (err.message.strip().splitlines() or [""])[0][:400] if err else "failed"
        if err is not None and err.cls_name and f"{err.cls_name}: " in first:
            # "package.module.ErrorClass: text" -> "ErrorClass: text"
            first = f"{err.cls_name}: {first.split(f'{err.cls_name}: ', 1)[1]}"
        out.append(f"{e.step_key}: {first}")
    return "; ".join(out) or "no step failed; see the run's logs"


def summary(fleet: Fleet) -> str:
    import duckdb

    con = duckdb.connect(str(fleet.paths.published), read_only=True)
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    cur = fleet.currency
    lines = []
    total, idle = q("select sum(total_cost), sum(idle_cost) from marts.cost_by_cluster_hourly")[0]
    if total is None:
        con.close()
        return (
            "The warehouse holds no cost rows: the sources answered no data for these hours "
            "(see the raw_* assets' metadata in `finops-pipeline dev`)."
        )
    first, last = q("select min(hour_start), max(hour_start) from marts.cost_by_cluster_hourly")[0]
    lines.append(
        f"Fleet cost {first:%Y-%m-%d %H:00} .. {last:%Y-%m-%d %H:00} UTC: "
        f"{total:,.2f} {cur} (idle {idle:,.2f})"
    )
    for cluster, provider, cost, share in q(
        "select cluster, any_value(provider), sum(total_cost), "
        "sum(total_cost) / (select sum(total_cost) from marts.cost_by_cluster_hourly) "
        "from marts.cost_by_cluster_hourly group by cluster order by 3 desc"
    ):
        lines.append(f"  {cluster:<12} {provider:<6} {cost:>12,.2f} {cur}  {share:6.1%}")
    lines.append("Unit cost, CPU core-hour (provisioned / used):")
    for cluster, prov, used in q(
        "select cluster, sum(cpu_cost) / sum(provisioned_cpu_core_hours), "
        "sum(cpu_cost) / sum(used_cpu_core_hours) from marts.unit_cost_by_cluster_daily "
        "group by cluster order by cluster"
    ):
        lines.append(f"  {cluster:<12} {prov:.4f} / {used:.4f} {cur}")
    lines.append("Top teams (all months):")
    for team, cost, direct, shared in q(
        "select team, sum(total_cost), sum(direct_cost), sum(shared_cost + idle_cost + "
        "unmounted_cost) from marts.team_bill_monthly group by team order by 2 desc limit 5"
    ):
        lines.append(
            f"  {team:<18} {cost:>10,.2f} {cur} (direct {direct:,.2f}, "
            f"shared and idle {shared:,.2f})"
        )
    n, saving = q(
        "select count(*), coalesce(sum(monthly_savings_cost), 0) from "
        "marts.rightsizing_recommendations where low_utilization"
    )[0]
    lines.append(
        f"Rightsizing: {n} containers under "
        f"{fleet.thresholds.rightsizing.cpu_ratio_below:.0%} CPU for "
        f"{fleet.thresholds.rightsizing.hours} h; {saving:,.2f} {cur}/month to save"
    )
    zn, zc = q("select count(*), coalesce(sum(monthly_cost), 0) from marts.zombie_resources")[0]
    by_reason = q("select reason, count(*) from marts.zombie_resources group by 1 order by 1")
    lines.append(
        f"Zombies: {zn} objects costing {zc:,.2f} {cur}/month ("
        + ", ".join(f"{r} {c}" for r, c in by_reason)
        + ")"
    )
    anomalies = q(
        "select cluster, namespace, controller_kind, controller, min(hour_start), count(*), "
        "max(increase_ratio), max(increase_cost) from marts.cost_anomalies "
        "group by all order by 8 desc"
    )
    if len(anomalies) > 10:
        lines.append(
            f"Anomalies: {len(anomalies)} controllers; the 10 with the largest hourly rise "
            "(all in marts.cost_anomalies):"
        )
    for row in anomalies[:10]:
        lines.append(
            f"Anomaly: {row[3]} ({row[2]}) in {row[0]}/{row[1]}: {row[5]} h from "
            f"{row[4]:%Y-%m-%d %H:00} UTC, up to +{row[6]:.0%} over its baseline"
        )
    con.close()
    lines.append(f"Analyst warehouse: {fleet.paths.published.resolve()}")
    lines.append(f"Bills: {fleet.paths.reports.resolve()}")
    return "\n".join(lines)


def workloads(demo) -> dict:
    """What the demo serves, as asset metadata: the window, sample count and trace import counts."""
    truth = demo.truth()
    meta = {
        "source": truth.get("trace_file") or "simulated",
        "window_start": truth["window"]["start"],
        "window_end": truth["window"]["end"],
        "prometheus_samples": truth["prometheus_samples"],
    }
    for reason, n in (truth.get("trace_import") or {}).items():
        meta[f"trace_{reason}"] = n
    return meta


def cmd_demo(args: argparse.Namespace) -> int:
    from finops_pipeline.demo.build import DemoServers, build
    from finops_pipeline.demo.fleet import DemoSpec
    from finops_pipeline.postgres import LocalPostgres

    data_dir = Path(args.data_dir).resolve()
    spec = replace(DemoSpec(), days=args.days)
    t0 = time.monotonic()
    traces = Path(args.traces).resolve() if args.traces else None
    what = f"from {traces}" if traces else f"({spec.days} days, 3 clusters)"
    print(f"Building the demo fleet {what}...", flush=True)
    demo = build(spec, data_dir / "demo-cache", traces=traces)
    spec = demo.spec
    truth = demo.truth()
    print(
        f"  {truth['prometheus_samples']:,} Prometheus samples, {time.monotonic() - t0:.0f}s",
        flush=True,
    )
    if truth.get("trace_import"):
        counts = ", ".join(f"{k} {v:,}" for k, v in truth["trace_import"].items())
        print(f"  trace import: {counts}", flush=True)
    with (
        DemoServers(demo, data_dir / "demo-run") as servers,
        LocalPostgres(data_dir / "dagster" / "postgres") as pg,
    ):
        fleet_path = servers.fleet_config(data_dir, data_dir / "demo-run" / "fleet.runtime.yaml")
        dagster_env(data_dir, pg.url)
        print(
            f"Prometheus {servers.prometheus.url}, allocation API {servers.allocation_url}, "
            f"Dagster storage {pg.url}",
            flush=True,
        )
        timings = run_pipeline(
            fleet_path, spec.start, spec.end, log_level=args.log_level, workloads=workloads(demo)
        )
        fleet = load_fleet(fleet_path)
    print(
        f"Pipeline: sources {timings['sources_seconds']:.0f}s, warehouse and reports "
        f"{timings['warehouse_seconds']:.0f}s; whole demo {time.monotonic() - t0:.0f}s"
    )
    print(summary(fleet))
    print(f"Ground truth: {demo.truth_path}")
    here = "" if data_dir == Path("data").resolve() else f" --data-dir {data_dir}"
    print(f"See the runs: {_self_command()} dev{here}  (Dagster UI on http://127.0.0.1:3000)")
    return 0


def _self_command() -> str:
    """How this command was called, so the hint printed works as typed (.venv/bin/...)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "finops-pipeline":
        try:
            return str(argv0.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(argv0)
    return "finops-pipeline"


def _hour(text: str, what: str) -> datetime:
    """An ISO time on the hour; without an offset it is UTC, with one it is converted to UTC."""
    try:
        t = datetime.fromisoformat(text)
        t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{what} {text!r} is not an ISO time such as 2026-11-02T00:00") from None
    if t.minute or t.second or t.microsecond:
        raise ValueError(
            f"{what} {text!r} is {t:%Y-%m-%dT%H:%M}Z, not on a UTC hour; partitions are whole "
            "UTC hours"
        )
    return t


def cmd_run(args: argparse.Namespace) -> int:
    from finops_pipeline.postgres import LocalPostgres

    fleet = load_fleet(args.config)
    start, end = _hour(args.start, "--start"), _hour(args.end, "--end")
    if end <= start:
        raise ValueError(
            f"--end {end:%Y-%m-%dT%H:%M}Z must be after --start {start:%Y-%m-%dT%H:%M}Z"
        )
    now = datetime.now(UTC)
    if end > now.replace(minute=0, second=0, microsecond=0):
        raise ValueError(
            f"--end {end:%Y-%m-%dT%H:%M}Z is after the last hour that has ended "
            f"(it is {now:%H:%M}Z now)"
        )
    if start < fleet.partitions_start:
        raise ValueError(
            f"--start {start:%Y-%m-%dT%H:%M}Z is before the fleet's partitions_start "
            f"{fleet.partitions_start:%Y-%m-%dT%H:%M}Z ({args.config})"
        )
    data_dir = fleet.paths.data_dir.resolve()
    config = Path(args.config).resolve()
    if os.environ.get("FINOPS_DAGSTER_PG_URL"):
        dagster_env(data_dir, os.environ["FINOPS_DAGSTER_PG_URL"])
        run_pipeline(config, start, end, log_level=args.log_level)
    else:
        with LocalPostgres(data_dir / "dagster" / "postgres") as pg:
            dagster_env(data_dir, pg.url)
            run_pipeline(config, start, end, log_level=args.log_level)
    print(summary(fleet))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from finops_pipeline.postgres import LocalPostgres

    data_dir = Path(args.data_dir).resolve()
    runtime = data_dir / "demo-run" / "fleet.runtime.yaml"
    if args.config:
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
        # The fleet's own Dagster storage, the one `run --config` records into.
        data_dir = load_fleet(args.config).paths.data_dir.resolve()
    elif runtime.exists():
        os.environ[CONFIG_ENV] = str(runtime)
    with LocalPostgres(data_dir / "dagster" / "postgres") as pg:
        dagster_env(data_dir, pg.url)
        cmd = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(args.port),
        ]
        print(f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops it and its storage)")
        try:
            # From here, so that relative paths in the fleet file mean what they mean to `run`.
            return subprocess.call(cmd, cwd=Path.cwd())
        except KeyboardInterrupt:
            return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="finops-pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the whole job on the built-in demo fleet")
    d.add_argument("--days", type=int, default=14, help="days of history (default 14)")
    d.add_argument("--data-dir", default="data")
    d.add_argument("--log-level", default="WARNING", help="Dagster console log level")
    d.add_argument("--traces", help="take workloads from a per-VM trace file (Bitbrains format)")
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("run", help="run the job for a fleet file over [start, end)")
    r.add_argument("--config", required=True)
    r.add_argument(
        "--start", required=True, help="first hour, e.g. 2026-11-02T00:00 (UTC unless an offset)"
    )
    r.add_argument("--end", required=True, help="end hour (exclusive), same form")
    r.add_argument("--log-level", default="INFO", help="Dagster console log level")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("dev", help="start Dagster storage and the Dagster UI on 127.0.0.1")
    v.add_argument("--config", help="fleet file (default: the last demo's, else the demo fleet)")
    v.add_argument("--data-dir", default="data", help="ignored with --config: the fleet's is used")
    v.add_argument("--port", type=int, default=3000)
    v.set_defaults(func=cmd_dev)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=Warning, module="dagster")
    try:
        return args.func(args)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        # A failed run: its message names the failed steps and their first error line; the
        # whole story is in the Dagster instance (`finops-pipeline dev`).
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
