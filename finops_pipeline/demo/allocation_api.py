"""A Kubecost/OpenCost-compatible allocation endpoint serving the demo fleet's hourly allocations.

It is a mock of the Kubecost `GET /model/allocation` and OpenCost `GET /allocation/compute` APIs for
the one thing the pipeline asks of them: per-step allocation sets at container grain with idle kept
apart. It answers the documented query parameters (window, step, accumulate, aggregate, idle,
shareIdle) and the documented envelope `{"code": 200, "data": [{name: allocation}, ...]}`, with
costs computed from the same ground truth as the Prometheus history. Each cluster is served under
its own prefix: `http://127.0.0.1:PORT/<cluster>/model/allocation`.

Run as a process: `python -m finops_pipeline.demo.allocation_api --records FILE --port N`.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import polars as pl

from finops_pipeline.demo.fleet import NANO, DemoFleet, unmounted_items

SUM_FIELDS = (
    "cpuCoreHours",
    "cpuCost",
    "cpuCostAdjustment",
    "gpuHours",
    "gpuCost",
    "gpuCostAdjustment",
    "networkTransferBytes",
    "networkReceiveBytes",
    "networkCost",
    "networkCrossZoneCost",
    "networkCrossRegionCost",
    "networkInternetCost",
    "networkCostAdjustment",
    "loadBalancerCost",
    "loadBalancerCostAdjustment",
    "pvByteHours",
    "pvCost",
    "pvCostAdjustment",
    "ramByteHours",
    "ramCost",
    "ramCostAdjustment",
    "externalCost",
    "sharedCost",
    "totalCost",
)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(nanos: int) -> float:
    # n / 1e9 is the double nearest the decimal n·10⁻⁹, so JSON shows that decimal exactly.
    return nanos / NANO


def allocation_records(fleet: DemoFleet) -> pl.DataFrame:
    """One row per (cluster, hour, allocation) with the allocation's JSON text ready to serve."""
    a = fleet.allocations
    c = fleet.containers.select(
        "cluster", "namespace", "pod", "container", "pod_labels", "replicaset"
    )
    ns_labels = {
        (r["cluster"], r["namespace"]): {x["key"]: x["value"] for x in r["labels"]}
        for r in fleet.namespaces.iter_rows(named=True)
    }
    labels = {
        (r["cluster"], r["namespace"], r["pod"], r["container"]): {
            x["key"]: x["value"] for x in r["pod_labels"]
        }
        for r in c.iter_rows(named=True)
    }
    unmounted_pvs, unmounted_lbs = unmounted_items(fleet)
    services_of: dict[tuple[str, str, str], list[str]] = {}
    for r in fleet.services.iter_rows(named=True):
        for pod in r["pods"]:
            services_of.setdefault((r["cluster"], r["namespace"], pod), []).append(r["service"])

    out_cluster, out_hour, out_name, out_json = [], [], [], []
    for r in a.iter_rows(named=True):
        cluster, hour, kind = r["cluster"], r["hour"], r["kind"]
        props: dict = {"cluster": cluster}
        pvs = None
        lb_allocs = None
        pv_bytes = 0.0
        if kind == "container":
            name = f"{cluster}/{r['node']}/{r['namespace']}/{r['pod']}/{r['container']}"
            props |= {
                "node": r["node"],
                "container": r["container"],
                "controller": r["controller"],
                "controllerKind": r["controller_kind"],
                "namespace": r["namespace"],
                "pod": r["pod"],
                "providerID": f"{cluster}-{r['node']}",
            }
            svcs = services_of.get((cluster, r["namespace"], r["pod"]))
            if svcs:
                props["services"] = svcs
            pod_labels = labels[(cluster, r["namespace"], r["pod"], r["container"])]
            if pod_labels:
                props["labels"] = pod_labels
            nsl = ns_labels.get((cluster, r["namespace"]))
            if nsl:
                props["namespaceLabels"] = nsl
            if r["pv"]:
                pv_bytes = r["capacity_bytes"]
                pvs = {
                    f"cluster={cluster}:name={r['pv']}": {
                        "byteHours": pv_bytes,
                        "cost": _money(r["pv_cost"]),
                    }
                }
            if r["lb_service"]:
                lb_allocs = {
                    f"{cluster}/{r['lb_service']}": {
                        "service": r["lb_service"],
                        "cost": _money(r["lb_cost"]),
                        "private": False,
                        "ip": "",
                    }
                }
        elif kind == "idle":
            name = f"{cluster}/__idle__"
        else:
            name = f"{cluster}/__unmounted__/__unmounted__/__unmounted__/__unmounted__"
            props |= {
                "node": "__unmounted__",
                "namespace": "__unmounted__",
                "pod": "__unmounted__",
                "container": "__unmounted__",
            }
            items = unmounted_pvs.filter(pl.col("cluster") == cluster)
            if items.height:
                pv_bytes = float(items["capacity_bytes"].sum())
                pvs = {
                    f"cluster={cluster}:name={p['pv']}": {
                        "byteHours": p["capacity_bytes"],
                        "cost": _money(p["pv_cost"]),
                    }
                    for p in items.iter_rows(named=True)
                }
            lbs = unmounted_lbs.filter(pl.col("cluster") == cluster)
            if lbs.height:
                lb_allocs = {
                    f"{cluster}/{x['namespace']}/{x['service']}": {
                        "service": f"{x['namespace']}/{x['service']}",
                        "cost": _money(x["lb_cost"]),
                        "private": False,
                        "ip": "",
                    }
                    for x in lbs.iter_rows(named=True)
                }
        cpu_h = r["cpu_core_hours"] or 0.0
        ram_bh = r["ram_byte_hours"] or 0.0
        cpu_use = r["cpu_usage"]
        ram_use = r["ram_usage"]
        body = {
            "name": name,
            "properties": props,
            "window": {"start": _iso(hour), "end": _iso(hour + 3600)},
            "start": _iso(hour),
            "end": _iso(hour + 3600),
            "minutes": 60.0,
            "cpuCores": cpu_h,
            "cpuCoreRequestAverage": r["cpu_request"] or 0.0,
            "cpuCoreUsageAverage": cpu_use or 0.0,
            "cpuCoreHours": cpu_h,
            "cpuCost": _money(r["cpu_cost"] or 0),
            "cpuCostAdjustment": 0.0,
            "cpuEfficiency": (cpu_use / r["cpu_request"]) if cpu_use and r["cpu_request"] else 0.0,
            "gpuCount": r["gpu_hours"] or 0.0,
            "gpuHours": r["gpu_hours"] or 0.0,
            "gpuCost": _money(r["gpu_cost"] or 0),
            "gpuCostAdjustment": 0.0,
            "networkTransferBytes": r["egress_bytes"] or 0.0,
            "networkReceiveBytes": 0.0,
            "networkCost": _money(r["network_cost"] or 0),
            "networkCrossZoneCost": 0.0,
            "networkCrossRegionCost": 0.0,
            "networkInternetCost": _money(r["network_cost"] or 0),
            "networkCostAdjustment": 0.0,
            "loadBalancerCost": _money(r["lb_cost"] or 0),
            "loadBalancerCostAdjustment": 0.0,
            "lbAllocations": lb_allocs,
            "pvBytes": pv_bytes,
            "pvByteHours": pv_bytes,
            "pvCost": _money(r["pv_cost"] or 0),
            "pvs": pvs,
            "pvCostAdjustment": 0.0,
            "ramBytes": ram_bh,
            "ramByteRequestAverage": r["memory_request_bytes"] or 0.0,
            "ramByteUsageAverage": ram_use or 0.0,
            "ramByteHours": ram_bh,
            "ramCost": _money(r["ram_cost"] or 0),
            "ramCostAdjustment": 0.0,
            "ramEfficiency": (ram_use / r["memory_request_bytes"])
            if ram_use and r["memory_request_bytes"]
            else 0.0,
            "externalCost": 0.0,
            "sharedCost": 0.0,
            "totalCost": _money(r["total_cost"]),
            "totalEfficiency": 0.0,
        }
        out_cluster.append(cluster)
        out_hour.append(hour)
        out_name.append(name)
        out_json.append(json.dumps(body, separators=(",", ":")))
    return pl.DataFrame(
        {"cluster": out_cluster, "hour": out_hour, "name": out_name, "json": out_json},
        schema={"cluster": pl.String, "hour": pl.Int64, "name": pl.String, "json": pl.String},
    ).sort("cluster", "hour", "name")


_DURATION = re.compile(r"^(\d+)([mhd])$")


def _parse_time(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def parse_window(window: str) -> tuple[int, int]:
    """`start,end` as RFC3339 or unix seconds; Kubecost's other forms are not served here."""
    parts = window.split(",")
    if len(parts) != 2:
        raise ValueError(f"window {window!r}: this endpoint serves 'start,end' windows only")
    start, end = (_parse_time(p.strip()) for p in parts)
    if end <= start:
        raise ValueError(f"window {window!r}: end must be after start")
    return start, end


def parse_step(step: str) -> int:
    m = _DURATION.match(step)
    if not m:
        raise ValueError(f"step {step!r}: expected a duration such as 1h")
    n, unit = int(m.group(1)), m.group(2)
    return n * {"m": 60, "h": 3600, "d": 86400}[unit]


class AllocationStore:
    def __init__(self, records: pl.DataFrame):
        self.by_cluster = {
            name: frame.sort("hour") for (name,), frame in records.group_by("cluster")
        }

    def sets(
        self,
        cluster: str,
        start: int,
        end: int,
        step: int,
        idle: bool,
        aggregate: list[str],
    ) -> str:
        frame = self.by_cluster.get(cluster)
        if frame is None:
            raise LookupError(f"unknown cluster {cluster!r}")
        if step % 3600 or start % 3600 or end % 3600:
            raise ValueError("this endpoint holds hourly data: window and step must be whole hours")
        parts = []
        for set_start in range(start, end, step):
            rows = frame.filter((pl.col("hour") >= set_start) & (pl.col("hour") < set_start + step))
            if not idle:
                rows = rows.filter(~pl.col("name").str.contains("__idle__", literal=True))
            if step == 3600 and not aggregate:
                items = [
                    f"{json.dumps(n)}:{j}" for n, j in zip(rows["name"], rows["json"], strict=True)
                ]
                parts.append("{" + ",".join(items) + "}")
            else:
                parts.append(
                    json.dumps(_aggregate(rows["json"].to_list(), aggregate, set_start, step))
                )
        return '{"code":200,"status":"success","data":[' + ",".join(parts) + "]}"


def _aggregate(bodies: list[str], keys: list[str], start: int, step: int) -> dict:
    """Sum allocations that share the values of `keys` (container grain when keys is empty)."""
    out: dict[str, dict] = {}
    for text in bodies:
        a = json.loads(text)
        props = a["properties"]
        if "__idle__" in a["name"]:
            key = "__idle__"
        elif keys:
            key = "/".join(str(props.get(k, "__unallocated__")) for k in keys)
        else:
            key = a["name"]
        if key not in out:
            kept = {k: v for k, v in props.items() if not keys or k in keys or k == "cluster"}
            out[key] = {
                **{f: 0.0 for f in SUM_FIELDS},
                "name": key,
                "properties": kept,
                "window": {"start": _iso(start), "end": _iso(start + step)},
                "start": a["start"],
                "end": a["end"],
                "minutes": 0.0,
            }
        acc = out[key]
        for f in SUM_FIELDS:
            acc[f] = round(acc[f] + (a.get(f) or 0.0), 9)
        acc["minutes"] = max(acc["minutes"], a["minutes"])
        acc["end"] = max(acc["end"], a["end"])
    return out


class Handler(BaseHTTPRequestHandler):
    store: AllocationStore

    def log_message(self, fmt: str, *args) -> None:  # quiet: the pipeline logs its own requests
        return

    def _send(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/healthz":
            self._send(200, '{"code":200}')
            return
        m = re.fullmatch(r"/([^/]+)/(model/allocation|allocation/compute|allocation)", url.path)
        if not m:
            self._send(404, json.dumps({"code": 404, "message": f"no route {url.path}"}))
            return
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if "window" not in q:
                raise ValueError("missing required parameter: window")
            start, end = parse_window(q["window"])
            accumulate = q.get("accumulate", "false").lower() == "true"
            step = end - start if accumulate else parse_step(q.get("step", "1h"))
            if q.get("shareIdle", "false").lower() == "true":
                raise ValueError("shareIdle=true is not served: ask for idle=true and share it")
            aggregate = [k for k in q.get("aggregate", "").split(",") if k]
            if aggregate == ["container"]:
                aggregate = []
            idle = q.get("idle", "true").lower() == "true"
            body = self.store.sets(m.group(1), start, end, step, idle, aggregate)
        except LookupError as exc:
            self._send(404, json.dumps({"code": 404, "message": str(exc)}))
            return
        except ValueError as exc:
            self._send(400, json.dumps({"code": 400, "message": str(exc)}))
            return
        self._send(200, body)


def serve(records_path: Path, port: int) -> None:
    Handler.store = AllocationStore(pl.read_parquet(records_path))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"allocation API on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    # A parent started with SIGTERM ignored passes that on; this server must stop when told.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    serve(args.records, args.port)


if __name__ == "__main__":
    sys.exit(main())
