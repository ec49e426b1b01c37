"""The demo fleet's history as a real Prometheus server: OpenMetrics text, promtool backfill, serve.

Series follow cAdvisor and kube-state-metrics v2 names, with a `cluster` label as a central
Prometheus (or Thanos/Mimir) holding several clusters would have. CPU usage is the kube-prometheus
recording rule `node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m`, a gauge
of cores, so that an hour's mean is the mean of its samples.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl

from finops_pipeline.demo.fleet import DemoFleet

log = logging.getLogger(__name__)

CPU_USAGE = "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m"


def _escape(col: str) -> pl.Expr:
    return (
        pl.col(col)
        .cast(pl.String)
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
    )


def _labels(*names: str, **fixed: str) -> pl.Expr:
    """`{a="..",b=".."}` from columns (label name = column name unless given as name=column)."""
    parts: list[pl.Expr] = []
    for i, spec in enumerate([*names, *(f"{k}={v}" for k, v in fixed.items())]):
        label, _, col = spec.partition("=")
        col = col or label
        sep = "" if i == 0 else ","
        parts += [pl.lit(f'{sep}{label}="'), _escape(col), pl.lit('"')]
    return pl.concat_str([pl.lit("{"), *parts, pl.lit("}")])


@dataclass
class Family:
    name: str
    frame: pl.DataFrame  # columns: series (label text), ts (seconds), value


def _static(series: pl.DataFrame, start: pl.Expr, end: pl.Expr, step: int) -> pl.DataFrame:
    """Repeat each series' constant value every `step` seconds over its lifetime."""
    return (
        series.with_columns(ts=pl.int_ranges(start, end, step))
        .explode("ts")
        .select("series", "ts", "value")
    )


def families(fleet: DemoFleet) -> list[Family]:
    spec = fleet.spec
    step = spec.static_step_seconds
    t0 = int(spec.start.timestamp())
    t1 = int(spec.end.timestamp())
    c = fleet.containers
    usage = fleet.usage.join(
        c.select("cluster", "namespace", "pod", "container", "node"),
        on=["cluster", "namespace", "pod", "container"],
    )
    sel = ("cluster", "namespace", "pod", "container", "node")
    out = [
        Family(CPU_USAGE, usage.select(series=_labels(*sel), ts="ts", value="cpu_cores")),
        Family(
            "container_memory_working_set_bytes",
            usage.select(series=_labels(*sel), ts="ts", value="memory_bytes"),
        ),
    ]

    def resource(cpu_col: str, mem_col: str) -> pl.DataFrame:
        parts = []
        for col, res, unit in (
            (cpu_col, "cpu", "core"),
            (mem_col, "memory", "byte"),
            ("gpu_request", "nvidia_com_gpu", "integer"),
        ):
            part = c.filter(pl.col(col) > 0).with_columns(r=pl.lit(res), u=pl.lit(unit))
            parts.append(
                part.select(
                    series=_labels(*sel, resource="r", unit="u"),
                    value=pl.col(col).cast(pl.Float64),
                    alive_from="alive_from",
                    alive_to="alive_to",
                )
            )
        s = pl.concat(parts)
        return _static(s, pl.col("alive_from"), pl.col("alive_to"), step)

    if "cpu_request_cores" in usage.columns:
        # Traced requests change over time: one sample wherever the trace sampled them.
        requests = pl.concat(
            [
                usage.filter(pl.col(col).is_not_null())
                .with_columns(r=pl.lit(res), u=pl.lit(unit))
                .select(series=_labels(*sel, resource="r", unit="u"), ts="ts", value=col)
                for col, res, unit in (
                    ("cpu_request_cores", "cpu", "core"),
                    ("memory_request_bytes", "memory", "byte"),
                )
            ]
        )
        out.append(Family("kube_pod_container_resource_requests", requests))
        pod_sel = ("cluster", "namespace", "pod")
        for col, name in (
            ("net_rx_bytes_per_s", "container_network_receive_bytes_total"),
            ("net_tx_bytes_per_s", "container_network_transmit_bytes_total"),
        ):
            # Counters: each sample adds its rate times the time since the pod's previous sample.
            counter = usage.sort("pod", "ts").with_columns(
                value=(pl.col(col) * pl.col("ts").diff().over("pod").fill_null(0))
                .cum_sum()
                .over("pod"),
                interface=pl.lit("eth0"),
            )
            out.append(
                Family(
                    name,
                    counter.select(series=_labels(*pod_sel, "interface"), ts="ts", value="value"),
                )
            )
    else:
        out.append(
            Family(
                "kube_pod_container_resource_requests",
                resource("cpu_request", "memory_request_bytes"),
            )
        )
    out.append(
        Family(
            "kube_pod_container_resource_limits",
            resource("cpu_limit", "memory_limit_bytes"),
        )
    )

    pods = c.group_by("cluster", "namespace", "pod").agg(
        pl.col("node").first(),
        pl.col("replicaset").first(),
        pl.col("controller").first(),
        pl.col("pod_labels").first(),
        pl.col("alive_from").min(),
        pl.col("alive_to").max(),
        pl.col("pod_ip").first(),
    )
    out.append(
        Family(
            "kube_pod_owner",
            _static(
                pods.with_columns(kind=pl.lit("ReplicaSet"), ctl=pl.lit("true")).select(
                    series=_labels(
                        "cluster",
                        "namespace",
                        "pod",
                        owner_kind="kind",
                        owner_name="replicaset",
                        owner_is_controller="ctl",
                    ),
                    value=pl.lit(1.0),
                    alive_from="alive_from",
                    alive_to="alive_to",
                ),
                pl.col("alive_from"),
                pl.col("alive_to"),
                step,
            ),
        )
    )
    rs = pods.group_by("cluster", "namespace", "replicaset").agg(pl.col("controller").first())
    out.append(
        Family(
            "kube_replicaset_owner",
            _static(
                rs.with_columns(kind=pl.lit("Deployment"), ctl=pl.lit("true")).select(
                    series=_labels(
                        "cluster",
                        "namespace",
                        "replicaset",
                        owner_kind="kind",
                        owner_name="controller",
                        owner_is_controller="ctl",
                    ),
                    value=pl.lit(1.0),
                ),
                pl.lit(t0),
                pl.lit(t1),
                step,
            ),
        )
    )
    label_rows = pods.explode("pod_labels").unnest("pod_labels")
    label_text = label_rows.group_by("cluster", "namespace", "pod").agg(
        extra=pl.concat_str(
            [pl.lit(",label_"), pl.col("key"), pl.lit('="'), _escape("value"), pl.lit('"')]
        )
        .sort()
        .str.join(""),
        alive_from=pl.col("alive_from").first(),
        alive_to=pl.col("alive_to").first(),
    )
    out.append(
        Family(
            "kube_pod_labels",
            _static(
                label_text.select(
                    series=pl.concat_str(
                        [
                            _labels("cluster", "namespace", "pod").str.strip_suffix("}"),
                            pl.col("extra"),
                            pl.lit("}"),
                        ]
                    ),
                    value=pl.lit(1.0),
                    alive_from="alive_from",
                    alive_to="alive_to",
                ),
                pl.col("alive_from"),
                pl.col("alive_to"),
                step,
            ),
        )
    )

    v = fleet.volumes
    pv_series = {
        "kube_persistentvolume_info": v.select(
            series=_labels("cluster", "pv", "storageclass").str.replace(
                'pv="', 'persistentvolume="', literal=True
            ),
            value=pl.lit(1.0),
        ),
        "kube_persistentvolume_capacity_bytes": v.select(
            series=_labels("cluster", persistentvolume="pv"), value="capacity_bytes"
        ),
        "kube_persistentvolume_status_phase": v.select(
            series=_labels("cluster", "phase", persistentvolume="pv"), value=pl.lit(1.0)
        ),
    }
    claimed = v.filter(pl.col("claim").is_not_null())
    pv_series["kube_persistentvolumeclaim_info"] = claimed.select(
        series=_labels(
            "cluster", "namespace", "storageclass", persistentvolumeclaim="claim", volumename="pv"
        ),
        value=pl.lit(1.0),
    )
    for name, frame in pv_series.items():
        out.append(Family(name, _static(frame, pl.lit(t0), pl.lit(t1), step)))
    mounts = claimed.filter(pl.col("mounted_by").is_not_null()).with_columns(volume=pl.lit("data"))
    out.append(
        Family(
            "kube_pod_spec_volumes_persistentvolumeclaims_info",
            _static(
                mounts.select(
                    series=_labels(
                        "cluster",
                        "namespace",
                        "volume",
                        pod="mounted_by",
                        persistentvolumeclaim="claim",
                    ),
                    value=pl.lit(1.0),
                ),
                pl.lit(t0),
                pl.lit(t1),
                step,
            ),
        )
    )

    s = fleet.services.with_columns(
        cluster_ip=pl.concat_str(
            [
                pl.lit("10.96."),
                (pl.int_range(pl.len()) // 200).cast(pl.String),
                pl.lit("."),
                (pl.int_range(pl.len()) % 200 + 10).cast(pl.String),
            ]
        )
    )
    out.append(
        Family(
            "kube_service_info",
            _static(
                s.select(
                    series=_labels("cluster", "namespace", "service", "cluster_ip"),
                    value=pl.lit(1.0),
                ),
                pl.lit(t0),
                pl.lit(t1),
                step,
            ),
        )
    )
    out.append(
        Family(
            "kube_service_spec_type",
            _static(
                s.select(
                    series=_labels("cluster", "namespace", "service", "type"), value=pl.lit(1.0)
                ),
                pl.lit(t0),
                pl.lit(t1),
                step,
            ),
        )
    )
    # Endpoints list the ready pod addresses behind each service, for as long as each pod lives.
    ep = (
        s.select("cluster", "namespace", "service", "pods", "pod_ips")
        .explode("pods", "pod_ips")
        .drop_nulls("pods")
        .join(
            pods.select(
                "cluster", "namespace", pl.col("pod").alias("pods"), "alive_from", "alive_to"
            ),
            on=["cluster", "namespace", "pods"],
        )
        .with_columns(ready=pl.lit("true"))
    )
    out.append(
        Family(
            "kube_endpoint_address",
            _static(
                ep.select(
                    series=_labels(
                        "cluster", "namespace", "ready", endpoint="service", ip="pod_ips"
                    ),
                    value=pl.lit(1.0),
                    alive_from="alive_from",
                    alive_to="alive_to",
                ),
                pl.col("alive_from"),
                pl.col("alive_to"),
                step,
            ),
        )
    )
    return out


def write_openmetrics(fleet: DemoFleet, path: Path) -> int:
    """Write every family as OpenMetrics text (seconds timestamps, `# EOF` last); return samples."""
    total = 0
    with open(path, "wb") as fh:
        for fam in families(fleet):
            # A missing value is a gap in the series, never a sample.
            frame = fam.frame.filter(pl.col("value").is_not_null())
            if frame.height == 0:
                continue
            fh.write(f"# TYPE {fam.name} gauge\n".encode())
            lines = frame.sort("series", "ts").select(
                line=pl.concat_str(
                    [
                        pl.lit(fam.name),
                        pl.col("series"),
                        pl.lit(" "),
                        pl.col("value").cast(pl.Float64).cast(pl.String),
                        pl.lit(" "),
                        pl.col("ts").cast(pl.String),
                    ]
                )
            )
            lines.write_csv(fh, include_header=False, quote_style="never")
            total += lines.height
        fh.write(b"# EOF\n")
    return total


def build_tsdb(fleet: DemoFleet, out_dir: Path) -> int:
    """Backfill a TSDB directory with promtool; returns the number of samples written."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise RuntimeError(
            "promtool not found: install Debian's prometheus package "
            "(apt-get install -y prometheus)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        om = Path(tmp) / "history.om"
        samples = write_openmetrics(fleet, om)
        hours = max(24, fleet.spec.hours)
        proc = subprocess.run(
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                f"--max-block-duration={hours}h",
                "openmetrics",
                str(om),
                str(out_dir),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"promtool backfill failed: {proc.stderr.strip()[-2000:]}")
    return samples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """A real `prometheus` process on 127.0.0.1 over a private copy of backfilled blocks."""

    def __init__(self, blocks: Path, workdir: Path, port: int | None = None):
        self.blocks = blocks
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus not found: apt-get install -y prometheus")
        tsdb = self.workdir / "tsdb"
        if tsdb.exists():
            shutil.rmtree(tsdb)
        # Hard links: the server may compact its own copy without touching the cached blocks.
        shutil.copytree(self.blocks, tsdb, copy_function=os.link)
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n")
        self.log_path = self.workdir / "prometheus.log"
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tsdb}",
                    "--storage.tsdb.retention.time=100y",
                    # The backfilled blocks are served as they are: no background compaction
                    # competing with the pipeline's queries, nothing to wait for at shutdown.
                    "--storage.tsdb.min-block-duration=2h",
                    "--storage.tsdb.max-block-duration=2h",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                    "--query.max-samples=200000000",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {self.proc.returncode}: "
                    f"{self.log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready in {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
