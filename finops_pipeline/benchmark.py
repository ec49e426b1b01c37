"""Benchmark: run the whole demo job once and report where the time and memory went.

    .venv/bin/python -m finops_pipeline.benchmark [--days 14 | --traces PATH] [--data-dir DIR]

Each run starts from an empty lake, warehouse and Dagster storage in DIR (default
data/benchmark), so every source partition is really fetched; the generated fleet is cached in
DIR/demo-cache and reused, and its build time is reported apart (0 s when reused). Peak memory is
the largest resident set of this process (which runs Dagster and every asset) and of each server
it starts (Prometheus, the allocation API, the PostgreSQL postmaster), read from /proc before they
stop. The result is printed and saved as JSON beside the data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path


def _peak_rss_mib(pid: int) -> int | None:
    """VmHWM: the most resident memory the process has had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def run(days: int, traces: Path | None, data_dir: Path) -> dict:
    import dagster as dg

    from finops_pipeline.cli import dagster_env, run_pipeline, workloads
    from finops_pipeline.demo.build import DemoServers, build
    from finops_pipeline.demo.fleet import DemoSpec
    from finops_pipeline.postgres import LocalPostgres
    from finops_pipeline.warehouse.sqlmodels import load_models

    for sub in ("lake", "warehouse", "published", "reports", "dagster", "demo-run"):
        shutil.rmtree(data_dir / sub, ignore_errors=True)
    t0 = time.monotonic()
    demo = build(replace(DemoSpec(), days=days), data_dir / "demo-cache", traces=traces)
    build_seconds = time.monotonic() - t0
    truth = demo.truth()
    with (
        DemoServers(demo, data_dir / "demo-run") as servers,
        LocalPostgres(data_dir / "dagster" / "postgres") as pg,
    ):
        fleet_path = servers.fleet_config(data_dir, data_dir / "demo-run" / "fleet.runtime.yaml")
        dagster_env(data_dir, pg.url)
        timings = run_pipeline(
            fleet_path, demo.spec.start, demo.spec.end, "WARNING", workloads(demo)
        )
        model_seconds = {}
        with dg.DagsterInstance.get() as instance:
            for name in load_models():
                event = instance.get_latest_materialization_event(dg.AssetKey(name))
                md = event.asset_materialization.metadata if event else {}
                if "model_seconds" in md:
                    model_seconds[name] = md["model_seconds"].value
            warehouse_build = md["build_seconds"].value if "build_seconds" in md else None
        postmaster = int((pg.datadir / "postmaster.pid").read_text().split()[0])
        servers_peak = {
            "prometheus": _peak_rss_mib(servers.prometheus.proc.pid),
            "allocation_api": _peak_rss_mib(servers.alloc_proc.pid),
            "postgresql": _peak_rss_mib(postmaster),
        }
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    clusters = len(demo.spec.clusters)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "input": str(traces.name) if traces else f"simulated, {days} days",
        "window": truth["window"],
        "cluster_hours": clusters * demo.spec.hours,
        "prometheus_samples": truth["prometheus_samples"],
        "build_seconds": round(build_seconds, 1),
        "sources_seconds": round(timings["sources_seconds"], 1),
        "warehouse_and_reports_seconds": round(timings["warehouse_seconds"], 1),
        "warehouse_build_seconds": warehouse_build,
        "total_seconds": round(time.monotonic() - t0, 1),
        "peak_rss_mib_this_process": round(own / 1024),
        "peak_rss_mib_servers": servers_peak,
        "slowest_models_seconds": dict(sorted(model_seconds.items(), key=lambda kv: -kv[1])[:5]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--traces", type=Path)
    p.add_argument("--data-dir", type=Path, default=Path("data/benchmark"))
    args = p.parse_args(argv)
    data_dir = args.data_dir.resolve()
    result = run(args.days, args.traces.resolve() if args.traces else None, data_dir)
    out = data_dir / f"benchmark-{result['when'].replace(':', '')}.json"
    out.write_text(json.dumps(result, indent=1))
    for k, v in result.items():
        print(f"{k:32} {v}")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
