"""Kubecost/OpenCost allocation API: fetch hourly sets for one cluster and decode them to rows.

The response keys each allocation by name inside one map per step, so a generic JSON reader would
infer one column per allocation. The shape is declared here instead (msgspec structs), and every
field is optional because the API omits empty ones. Money is decoded from the JSON text as Decimal,
so no cost passes through a binary float.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import polars as pl

from finops_pipeline.config import Cluster
from finops_pipeline.sources.http import api_client, get_with_retries

MONEY = pl.Decimal(38, 18)
KV = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))

SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.String,
    "window_start": pl.Datetime("us", "UTC"),
    "window_end": pl.Datetime("us", "UTC"),
    "name": pl.String,
    "kind": pl.String,
    "source_cluster": pl.String,
    "node": pl.String,
    "namespace": pl.String,
    "controller_kind": pl.String,
    "controller": pl.String,
    "pod": pl.String,
    "container": pl.String,
    "labels": KV,
    "namespace_labels": KV,
    "services": pl.List(pl.String),
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "minutes": pl.Float64,
    "cpu_core_request_average": pl.Float64,
    "cpu_core_usage_average": pl.Float64,
    "cpu_core_hours": pl.Float64,
    "ram_byte_request_average": pl.Float64,
    "ram_byte_usage_average": pl.Float64,
    "ram_byte_hours": pl.Float64,
    "gpu_hours": pl.Float64,
    "pv_byte_hours": pl.Float64,
    "network_transfer_bytes": pl.Float64,
    "network_receive_bytes": pl.Float64,
    "cpu_cost": MONEY,
    "cpu_cost_adjustment": MONEY,
    "ram_cost": MONEY,
    "ram_cost_adjustment": MONEY,
    "gpu_cost": MONEY,
    "gpu_cost_adjustment": MONEY,
    "pv_cost": MONEY,
    "pv_cost_adjustment": MONEY,
    "network_cost": MONEY,
    "network_cost_adjustment": MONEY,
    "load_balancer_cost": MONEY,
    "load_balancer_cost_adjustment": MONEY,
    "shared_cost": MONEY,
    "external_cost": MONEY,
    "total_cost": MONEY,
    "unexplained_cost": MONEY,
    "pvs": pl.List(pl.Struct({"name": pl.String, "byte_hours": pl.Float64, "cost": MONEY})),
    "lb_allocations": pl.List(pl.Struct({"service": pl.String, "cost": MONEY})),
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.String,
    "window_start": pl.Datetime("us", "UTC"),
    "name": pl.String,
    "reason": pl.String,
    "raw": pl.String,
}

# Kubecost rounds each component to 6 decimals in its JSON; beyond this, the parts and the total
# disagree for a reason worth counting.
TOTAL_TOLERANCE = Decimal("0.00001")
# The lake keeps money as Decimal(38, 18): 20 digits before the point. Larger is not a cost.
MAX_COST = Decimal(10) ** 20
QUANTITIES = (
    "minutes",
    "cpuCoreRequestAverage",
    "cpuCoreUsageAverage",
    "cpuCoreHours",
    "ramByteRequestAverage",
    "ramByteUsageAverage",
    "ramByteHours",
    "gpuHours",
    "pvByteHours",
    "networkTransferBytes",
    "networkReceiveBytes",
)


class Window(msgspec.Struct):
    start: str | None = None
    end: str | None = None


class Properties(msgspec.Struct, omit_defaults=True):
    cluster: str | None = None
    node: str | None = None
    container: str | None = None
    controller: str | None = None
    controllerKind: str | None = None
    namespace: str | None = None
    pod: str | None = None
    services: list[str] | None = None
    labels: dict[str, str] | None = None
    namespaceLabels: dict[str, str] | None = None


class PvEntry(msgspec.Struct):
    byteHours: float | None = None
    cost: Decimal | None = None


class LbEntry(msgspec.Struct):
    service: str | None = None
    cost: Decimal | None = None


class Allocation(msgspec.Struct):
    name: str | None = None
    properties: Properties | None = None
    window: Window | None = None
    start: str | None = None
    end: str | None = None
    minutes: float | None = None
    cpuCoreRequestAverage: float | None = None
    cpuCoreUsageAverage: float | None = None
    cpuCoreHours: float | None = None
    cpuCost: Decimal | None = None
    cpuCostAdjustment: Decimal | None = None
    gpuHours: float | None = None
    gpuCost: Decimal | None = None
    gpuCostAdjustment: Decimal | None = None
    networkTransferBytes: float | None = None
    networkReceiveBytes: float | None = None
    networkCost: Decimal | None = None
    networkCostAdjustment: Decimal | None = None
    loadBalancerCost: Decimal | None = None
    loadBalancerCostAdjustment: Decimal | None = None
    lbAllocations: dict[str, LbEntry] | None = None
    pvByteHours: float | None = None
    pvCost: Decimal | None = None
    pvCostAdjustment: Decimal | None = None
    pvs: dict[str, PvEntry] | None = None
    ramByteRequestAverage: float | None = None
    ramByteUsageAverage: float | None = None
    ramByteHours: float | None = None
    ramCost: Decimal | None = None
    ramCostAdjustment: Decimal | None = None
    externalCost: Decimal | None = None
    sharedCost: Decimal | None = None
    totalCost: Decimal | None = None


class Envelope(msgspec.Struct):
    code: int | None = None
    data: list[dict[str, msgspec.Raw] | None] | None = None
    message: str | None = None


class AllocationApiError(RuntimeError):
    """The API answered, but not with allocation data."""


# Base costs that may not be negative; adjustments, idle and totals of adjusted rows may be.
BASE_COSTS = ("cpuCost", "ramCost", "gpuCost", "pvCost", "networkCost", "loadBalancerCost")
COST_PAIRS = (
    ("cpuCost", "cpuCostAdjustment"),
    ("ramCost", "ramCostAdjustment"),
    ("gpuCost", "gpuCostAdjustment"),
    ("pvCost", "pvCostAdjustment"),
    ("networkCost", "networkCostAdjustment"),
    ("loadBalancerCost", "loadBalancerCostAdjustment"),
)


def _ts(text: str | None) -> datetime | None:
    """RFC 3339 as the API writes it; ValueError names the text when it is not a time."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise ValueError(f"not a timestamp: {text[:40]!r}") from None


def _money_problem(a: Allocation) -> str | None:
    """NaN, infinite or out-of-range money anywhere in the allocation, named by field."""
    values = [(f, getattr(a, f)) for f in Allocation.__struct_fields__]
    values += [(f"pvs.{k}.cost", v.cost) for k, v in (a.pvs or {}).items()]
    values += [(f"lbAllocations.{k}.cost", v.cost) for k, v in (a.lbAllocations or {}).items()]
    for name, v in values:
        if isinstance(v, Decimal):
            if not v.is_finite():
                return f"non_finite_cost: {name}={v}"
            if abs(v) >= MAX_COST:
                return f"cost_out_of_range: {name}={v:.6e} exceeds 1e20"
    return None


def _kind(name: str) -> str:
    if "__idle__" in name:
        return "idle"
    if "__unmounted__" in name:
        return "unmounted"
    if "__unallocated__" in name:
        return "unallocated"
    return "container"


@dataclass
class Decoded:
    rows: pl.DataFrame
    quarantine: pl.DataFrame
    counts: Counter = field(default_factory=Counter)
    # Hours whose set was not the hour asked for (a daily set, say): no answer for that hour.
    unanswered: set[datetime] = field(default_factory=set)


def decode(
    body: bytes,
    cluster: str,
    requested_start: datetime,
    step: timedelta,
    steps: int | None = None,
    expected_cluster: str | None = None,
) -> Decoded:
    """Turn one response body into allocation rows and quarantined rows with their reasons.

    Rows are tied to the step they were asked for: a set whose window is not one requested step
    (Kubecost answers old hours with daily sets) is quarantined under the hour asked for, never
    spread or double counted, and that hour is reported as not answered. With `steps`, an answer
    with fewer sets than asked is an error; with `expected_cluster`, so is an allocation whose
    `properties.cluster` names another cluster.
    """
    try:
        env = msgspec.json.decode(body, type=Envelope)
    except msgspec.DecodeError as exc:
        raise AllocationApiError(
            f"{cluster}: response is not an allocation envelope: {exc}"
        ) from None
    if env.code not in (None, 200):
        raise AllocationApiError(f"{cluster}: API answered code {env.code}: {env.message or ''}")
    if env.data is None:
        raise AllocationApiError(f"{cluster}: response has no data array")
    if steps is not None and len(env.data) < steps:
        raise AllocationApiError(
            f"{cluster}: asked for {steps} sets of {step} from "
            f"{requested_start:%Y-%m-%dT%H:%M:%SZ}, the answer has {len(env.data)}; "
            "an incomplete answer is not used"
        )

    rows: list[dict] = []
    texts: list[str] = []  # each row's JSON, in case its set turns out not to be the hour asked
    bad: list[dict] = []
    counts: Counter = Counter()
    unanswered: set[datetime] = set()
    dec = msgspec.json.Decoder(type=Allocation)
    for i, aset in enumerate(env.data):
        set_start = requested_start + i * step
        if not aset:
            counts["empty_set"] += 1
            continue
        usable_before, mismatched = len(rows), 0
        for key, raw in aset.items():
            text = bytes(raw).decode("utf-8", "replace")

            def reject(reason: str, when: datetime = set_start, key: str = key, text: str = text):
                bad.append(
                    {
                        "cluster": cluster,
                        "window_start": when,
                        "name": key,
                        "reason": reason,
                        "raw": text[:20000],
                    }
                )
                counts[reason.split(":")[0]] += 1

            try:
                a = dec.decode(raw)
            except msgspec.ValidationError as exc:
                reject(f"malformed_allocation: {exc}")
                continue
            if a.name is None and a.totalCost is None and a.properties is None:
                reject("empty_allocation: object has no name, properties or costs")
                continue
            p = a.properties or Properties()
            if expected_cluster and p.cluster and p.cluster != expected_cluster:
                raise AllocationApiError(
                    f"{cluster}: the allocation API answered for cluster {p.cluster!r}, not "
                    f"{expected_cluster!r}: check allocation.url, or set allocation.cluster_id "
                    "to the id this API reports"
                )
            win = a.window or Window()
            try:
                w_start, w_end = _ts(win.start), _ts(win.end)
                a_start, a_end = _ts(a.start), _ts(a.end)
            except ValueError as exc:
                reject(f"malformed_allocation: {exc}")
                continue
            if w_start is None or w_end is None:
                w_start, w_end = set_start, set_start + step
            if w_end - w_start != step or w_start != set_start:
                mismatched += 1
                reject(
                    f"window_mismatch: set covers {win.start}..{win.end}, asked for "
                    f"{set_start:%Y-%m-%dT%H:%M:%SZ} + {step}"
                )
                continue
            if a.totalCost is None:
                reject("missing_total_cost: totalCost is null or absent (NaN upstream)")
                continue
            problem = _money_problem(a)
            if problem:
                reject(problem)
                continue
            negative_q = [f for f in QUANTITIES if (getattr(a, f) or 0) < 0]
            if negative_q:
                reject(f"negative_quantity: {', '.join(negative_q)} below zero")
                continue
            if (a.minutes or 0) > step.total_seconds() / 60:
                reject(f"minutes_beyond_window: {a.minutes} minutes in a {step} set")
                continue
            name = a.name or key
            kind = _kind(name)
            costs = {f: getattr(a, f) for pair in COST_PAIRS for f in pair}
            negative = [f for f in BASE_COSTS if (costs[f] or 0) < 0]
            if negative and kind != "idle":
                reject(f"negative_cost: {', '.join(negative)} below zero on a non-idle allocation")
                continue
            parts = sum((v or Decimal(0) for v in costs.values()), Decimal(0))
            parts += (a.sharedCost or Decimal(0)) + (a.externalCost or Decimal(0))
            gap = a.totalCost - parts
            if a.totalCost < 0 and kind != "idle" and gap < -TOTAL_TOLERANCE:
                # Adjustments may take a total below zero; the parts must then say so.
                reject(
                    f"negative_cost: totalCost {a.totalCost} is below zero and "
                    f"{-gap} below its parts"
                )
                continue
            if abs(gap) > TOTAL_TOLERANCE:
                counts["total_differs_from_parts"] += 1
            rows.append(
                {
                    "cluster": cluster,
                    "window_start": w_start,
                    "window_end": w_end,
                    "name": name,
                    "kind": kind,
                    "source_cluster": p.cluster,
                    "node": p.node,
                    "namespace": p.namespace,
                    "controller_kind": p.controllerKind,
                    "controller": p.controller,
                    "pod": p.pod,
                    "container": p.container,
                    "labels": [{"key": k, "value": v} for k, v in (p.labels or {}).items()],
                    "namespace_labels": [
                        {"key": k, "value": v} for k, v in (p.namespaceLabels or {}).items()
                    ],
                    "services": p.services or [],
                    "start": a_start,
                    "end": a_end,
                    "minutes": a.minutes,
                    "cpu_core_request_average": a.cpuCoreRequestAverage,
                    "cpu_core_usage_average": a.cpuCoreUsageAverage,
                    "cpu_core_hours": a.cpuCoreHours,
                    "ram_byte_request_average": a.ramByteRequestAverage,
                    "ram_byte_usage_average": a.ramByteUsageAverage,
                    "ram_byte_hours": a.ramByteHours,
                    "gpu_hours": a.gpuHours,
                    "pv_byte_hours": a.pvByteHours,
                    "network_transfer_bytes": a.networkTransferBytes,
                    "network_receive_bytes": a.networkReceiveBytes,
                    "cpu_cost": a.cpuCost,
                    "cpu_cost_adjustment": a.cpuCostAdjustment,
                    "ram_cost": a.ramCost,
                    "ram_cost_adjustment": a.ramCostAdjustment,
                    "gpu_cost": a.gpuCost,
                    "gpu_cost_adjustment": a.gpuCostAdjustment,
                    "pv_cost": a.pvCost,
                    "pv_cost_adjustment": a.pvCostAdjustment,
                    "network_cost": a.networkCost,
                    "network_cost_adjustment": a.networkCostAdjustment,
                    "load_balancer_cost": a.loadBalancerCost,
                    "load_balancer_cost_adjustment": a.loadBalancerCostAdjustment,
                    "shared_cost": a.sharedCost,
                    "external_cost": a.externalCost,
                    "total_cost": a.totalCost,
                    "unexplained_cost": gap,
                    "pvs": [
                        {"name": k, "byte_hours": v.byteHours, "cost": v.cost}
                        for k, v in (a.pvs or {}).items()
                    ],
                    "lb_allocations": [
                        {"service": v.service or k, "cost": v.cost}
                        for k, v in (a.lbAllocations or {}).items()
                    ],
                }
            )
            texts.append(text)
            counts["rows"] += 1
        if mismatched:
            # Part of the set is not this hour: the hour is not answered. Its other rows are
            # quarantined too, so that no hour is written from half an answer.
            for r, raw_text in zip(rows[usable_before:], texts[usable_before:], strict=True):
                bad.append(
                    {
                        "cluster": cluster,
                        "window_start": set_start,
                        "name": r["name"],
                        "reason": "set_not_hourly: other rows of this set cover another window",
                        "raw": raw_text[:20000],
                    }
                )
                counts["set_not_hourly"] += 1
                counts["rows"] -= 1
            del rows[usable_before:], texts[usable_before:]
            unanswered.add(set_start)
    return Decoded(
        rows=pl.DataFrame(rows, schema=SCHEMA),
        quarantine=pl.DataFrame(bad, schema=QUARANTINE_SCHEMA),
        counts=counts,
        unanswered=unanswered,
    )


def fetch(cluster: Cluster, start: datetime, end: datetime) -> bytes:
    """One request for hourly sets over [start, end), idle kept apart for our own rules."""
    api = cluster.allocation
    params = {
        "window": f"{start:%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ}",
        "step": "1h",
        "accumulate": "false",
        "idle": "true",
        "shareIdle": "false",
        "shareTenancyCosts": "false",
    }
    with api_client(str(api.url), api.bearer_token_env, api.verify_tls, api.timeout_seconds) as c:
        return get_with_retries(c, api.path, params, api.retries, what=f"{cluster.name} allocation")
