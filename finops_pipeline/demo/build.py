"""Build the demo fleet once (TSDB blocks, allocation records, ground truth) and serve it."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import yaml

from finops_pipeline.config import DEMO_CONFIG, Fleet, Rightsizing
from finops_pipeline.demo import prometheus as prom
from finops_pipeline.demo.allocation_api import allocation_records
from finops_pipeline.demo.fleet import ANOMALY, NANO, DemoFleet, DemoSpec, anomaly_day, generate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoBuild:
    root: Path
    spec: DemoSpec

    @property
    def blocks(self) -> Path:
        return self.root / "tsdb-blocks"

    @property
    def records(self) -> Path:
        return self.root / "allocations.parquet"

    @property
    def truth_path(self) -> Path:
        return self.root / "ground_truth.json"

    def truth(self) -> dict:
        return json.loads(self.truth_path.read_text())


def _decimal(nanos: int) -> str:
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), NANO)
    return f"{sign}{whole}.{frac:09d}"


def low_utilization(fleet: DemoFleet, rule: Rightsizing) -> pl.DataFrame:
    """Containers whose hourly mean CPU stayed under the ratio of their request in each of the
    last `rule.hours` hours, with the request to set (p95 of those hours' samples x headroom)."""
    last_start = int(fleet.spec.end.timestamp()) - rule.hours * 3600
    keys = ["cluster", "namespace", "pod", "container"]
    recent = fleet.usage.filter(pl.col("ts") >= last_start).with_columns(
        hour=(pl.col("ts") // 3600) * 3600
    )
    if "cpu_request_cores" not in recent.columns:
        req = fleet.containers.select(*keys, pl.col("cpu_request").alias("cpu_request_cores"))
        recent = recent.join(req, on=keys)
    hourly = (
        recent.filter(pl.col("cpu_cores").is_not_null())
        .group_by([*keys, "hour"])
        .agg(
            mean=pl.col("cpu_cores").mean(),
            p95=pl.col("cpu_cores").quantile(0.95, "linear"),
            hour_request=pl.col("cpu_request_cores").max(),
        )
    )
    return (
        hourly.filter(pl.col("hour_request") > 0)
        .join(fleet.containers.select(*keys, "controller"), on=keys)
        .group_by([*keys, "controller"])
        .agg(
            hours=pl.len(),
            low_hours=(pl.col("mean") < rule.cpu_ratio_below * pl.col("hour_request")).sum(),
            p95=pl.col("p95").max(),
            cpu_request=pl.col("hour_request").max(),
        )
        .filter((pl.col("hours") == rule.hours) & (pl.col("low_hours") == rule.hours))
        .with_columns(
            recommended_cpu_cores=pl.max_horizontal(
                (pl.col("p95") * rule.headroom * 1000).round(6).ceil() / 1000,
                pl.lit(rule.min_cpu_cores),
            )
        )
        .sort(keys)
    )


def ground_truth(fleet: DemoFleet, rule: Rightsizing) -> dict:
    a = fleet.allocations.with_columns(
        day=pl.from_epoch("hour", time_unit="s").dt.date().cast(pl.String)
    )
    per_day = (
        a.group_by("cluster", "day").agg(nanos=pl.col("total_cost").sum()).sort("cluster", "day")
    )

    def listed(frame: pl.DataFrame, kind: str, name: str, namespace: str | None) -> list[dict]:
        return [
            {
                "cluster": r["cluster"],
                "kind": kind,
                "namespace": r[namespace] if namespace else None,
                "name": r[name],
                "reason": r["zombie_reason"],
            }
            for r in frame.iter_rows(named=True)
        ]

    volumes, services = fleet.volumes, fleet.services
    zombies = (
        listed(
            volumes.filter(pl.col("zombie_reason") == "pv_not_bound"),
            "persistentvolume",
            "pv",
            None,
        )
        + listed(
            volumes.filter(pl.col("zombie_reason") == "pvc_not_mounted"),
            "persistentvolumeclaim",
            "claim",
            "namespace",
        )
        + listed(
            services.filter(pl.col("zombie_reason").is_not_null()),
            "service",
            "service",
            "namespace",
        )
    )
    low = low_utilization(fleet, rule)
    spike_start = (
        int(fleet.spec.start.timestamp())
        + (anomaly_day(fleet.spec.days) * 24 + ANOMALY["first_hour"]) * 3600
    )
    return {
        "spec": fleet.spec.key(),
        "window": {"start": fleet.spec.start.isoformat(), "end": fleet.spec.end.isoformat()},
        "currency": "USD",
        "fleet_total_cost": _decimal(int(a["total_cost"].sum())),
        "cluster_day_total_cost": [
            {"cluster": r["cluster"], "day": r["day"], "total_cost": _decimal(r["nanos"])}
            for r in per_day.iter_rows(named=True)
        ],
        "low_utilization": low.select(
            "cluster",
            "namespace",
            "pod",
            "container",
            "controller",
            "cpu_request",
            "recommended_cpu_cores",
        ).to_dicts(),
        "zombies": zombies,
        "anomaly": None
        if fleet.trace_counts is not None
        else {
            "cluster": ANOMALY["cluster"],
            "namespace": ANOMALY["namespace"],
            "controller": ANOMALY["deployment"],
            "first_hour": datetime.fromtimestamp(spike_start, UTC).isoformat(),
            "hours": ANOMALY["hours"],
        },
        "trace_import": fleet.trace_counts,
    }


def build(
    spec: DemoSpec, cache_root: Path, rule: Rightsizing | None = None, traces: Path | None = None
) -> DemoBuild:
    """Generate the fleet and its served artefacts, or reuse them if this spec was built before.

    With `traces`, the workloads come from that trace file and the window from its timestamps.
    """
    fleet = None
    if traces is not None:
        from finops_pipeline.demo.traces import load

        st = traces.stat()
        key = f"trace-{traces.stem}-{st.st_size}-{int(st.st_mtime)}-v3"
        if (cache_root / key / "READY").exists():
            truth = json.loads((cache_root / key / "ground_truth.json").read_text())
            start = datetime.fromisoformat(truth["window"]["start"])
            end = datetime.fromisoformat(truth["window"]["end"])
            return DemoBuild(cache_root / key, DemoSpec(start=start, days=(end - start).days))
        fleet = load(traces).fleet
        spec = fleet.spec
        out = DemoBuild(cache_root / key, spec)
    else:
        out = DemoBuild(cache_root / spec.key(), spec)
    if (out.root / "READY").exists():
        return out
    t0 = time.monotonic()
    tmp = out.root.with_name(out.root.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fleet = fleet or generate(spec)
    samples = prom.build_tsdb(fleet, tmp / "tsdb-blocks")
    allocation_records(fleet).write_parquet(tmp / "allocations.parquet")
    truth = ground_truth(fleet, rule or Rightsizing())
    truth["prometheus_samples"] = samples
    truth["trace_file"] = traces.name if traces is not None else None
    (tmp / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    (tmp / "READY").write_text(f"built in {time.monotonic() - t0:.1f}s\n")
    shutil.rmtree(out.root, ignore_errors=True)
    tmp.rename(out.root)
    log.info(
        "demo fleet %s built in %.1fs (%d samples)", spec.key(), time.monotonic() - t0, samples
    )
    return out


class DemoServers:
    """Prometheus and the allocation API for one demo build, both on 127.0.0.1."""

    def __init__(self, demo: DemoBuild, workdir: Path):
        self.demo = demo
        self.workdir = workdir
        self.prometheus = prom.PrometheusServer(demo.blocks, workdir / "prometheus")
        self.alloc_port = prom.free_port()
        self.alloc_proc: subprocess.Popen | None = None

    @property
    def allocation_url(self) -> str:
        return f"http://127.0.0.1:{self.alloc_port}"

    def start(self) -> DemoServers:
        (self.workdir / "prometheus").mkdir(parents=True, exist_ok=True)
        self.prometheus.start()
        with open(self.workdir / "allocation_api.log", "wb") as log_file:
            self.alloc_proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "finops_pipeline.demo.allocation_api",
                    "--records",
                    str(self.demo.records),
                    "--port",
                    str(self.alloc_port),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.alloc_proc.poll() is not None:
                self.stop()
                raise RuntimeError("allocation API exited; see " + str(log_file.name))
            try:
                if httpx.get(f"{self.allocation_url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("allocation API did not start in 60s")

    def stop(self) -> None:
        self.prometheus.stop()
        if self.alloc_proc and self.alloc_proc.poll() is None:
            self.alloc_proc.terminate()
            try:
                self.alloc_proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.alloc_proc.kill()
                self.alloc_proc.wait()
        self.alloc_proc = None

    def __enter__(self) -> DemoServers:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fleet_config(self, data_dir: Path, path: Path, base: Path = DEMO_CONFIG) -> Path:
        """Write the demo fleet file with the URLs of these servers and the given data folder."""
        raw = yaml.safe_load(base.read_text())
        raw["partitions_start"] = self.demo.spec.start.isoformat()
        for c in raw["clusters"]:
            c["allocation"]["url"] = f"{self.allocation_url}/{c['name']}"
            c["prometheus"]["url"] = self.prometheus.url
        raw["paths"] = {"data_dir": str(data_dir.resolve())}
        Fleet.model_validate(raw)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path
