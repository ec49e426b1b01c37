"""The allocation decoder on published response bodies and on small bodies with known quirks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from finops_pipeline.sources.allocation import AllocationApiError, decode
from finops_pipeline_tests.conftest import realdata

H = timedelta(hours=1)
T0 = datetime(2026, 11, 2, 5, tzinfo=UTC)


def body(*sets: dict, code: int = 200) -> bytes:
    return json.dumps({"code": code, "data": list(sets)}).encode()


def alloc(name: str = "c1/n1/ns/pod-a/app", **extra) -> dict:
    base = {
        "name": name,
        "properties": {"cluster": "c1", "namespace": "ns", "pod": "pod-a", "container": "app"},
        "window": {"start": "2026-11-02T05:00:00Z", "end": "2026-11-02T06:00:00Z"},
        "minutes": 60,
        "cpuCost": 0.5,
        "ramCost": 0.25,
        "totalCost": 0.75,
    }
    base.update(extra)
    return base


def test_kubecost_docs_example_keeps_the_one_real_row_and_quarantines_placeholders():
    raw = realdata("api-bodies/kubecost-docs-api-allocation-example.json").read_bytes()
    d = decode(raw, "aws-dev", datetime(2023, 1, 27, 23, tzinfo=UTC), H)
    assert d.rows.height == 1
    assert d.rows["total_cost"][0] == Decimal("0.004661")
    assert d.rows["minutes"][0] == 16.0
    assert d.rows["pvs"][0][0]["name"].endswith("pvc-16465f04-6464-483e-89af-9e68b4a59e72")
    assert d.rows["load_balancer_cost"][0] == Decimal("0.003333")
    # the "...etc": {} placeholder is never a zero-cost row
    assert d.quarantine["name"].to_list() == ["...etc", "...etc"]
    assert all(r.startswith("empty_allocation") for r in d.quarantine["reason"])


def test_opencost_example_three_rows_sum_to_the_published_total():
    raw = realdata("api-bodies/opencost-website-allocation-example-output.json").read_bytes()
    d = decode(raw, "default", datetime(2023, 7, 12, 11, 2, 46, tzinfo=UTC), timedelta(days=7))
    assert d.rows.height == 3
    assert sum(d.rows["total_cost"]) == Decimal("1.77816")
    assert d.rows["minutes"][0] == pytest.approx(10079.22199)
    ns = d.rows.filter(d.rows["name"] == "kube-system")["namespace_labels"][0]
    assert {"key": "kubernetes_io_metadata_name", "value": "kube-system"} in ns


def test_null_for_nan_in_a_cost_is_quarantined_with_its_reason():
    d = decode(body({"a": alloc(totalCost=None)}), "c1", T0, H)
    assert d.rows.height == 0
    assert d.quarantine["reason"][0].startswith("missing_total_cost")


def test_null_efficiency_and_exponent_numbers_are_read_exactly():
    d = decode(
        body({"a": alloc(cpuEfficiency=None, cpuCost=1e-06, ramCost=0, totalCost=1e-06)}),
        "c1",
        T0,
        H,
    )
    assert d.rows["cpu_cost"][0] == Decimal("0.000001")
    assert d.rows["total_cost"][0] == Decimal("0.000001")


def test_empty_set_gives_no_rows_and_is_counted():
    d = decode(
        body(
            {},
            {"a": alloc(window={"start": "2026-11-02T06:00:00Z", "end": "2026-11-02T07:00:00Z"})},
        ),
        "c1",
        T0,
        H,
    )
    assert d.counts["empty_set"] == 1
    assert d.rows["window_start"].to_list() == [T0 + H]


def test_missing_properties_and_null_pvs_are_accepted():
    a = alloc("c1/__unallocated__", pvs=None)
    del a["properties"]
    d = decode(body({"c1/__unallocated__": a}), "c1", T0, H)
    assert d.rows["kind"][0] == "unallocated"
    assert d.rows["namespace"][0] is None
    assert d.rows["pvs"][0].to_list() == []


def test_negative_adjustment_is_kept_and_parts_still_add_up():
    d = decode(body({"a": alloc(cpuCostAdjustment=-0.1, totalCost=0.65)}), "c1", T0, H)
    assert d.rows["cpu_cost_adjustment"][0] == Decimal("-0.1")
    assert d.rows["unexplained_cost"][0] == 0
    assert d.counts["total_differs_from_parts"] == 0


def test_negative_base_cost_on_a_workload_is_quarantined_but_negative_idle_is_kept():
    d = decode(
        body(
            {
                "a": alloc(cpuCost=-0.5, totalCost=-0.25),
                "c1/__idle__": alloc("c1/__idle__", cpuCost=-0.2, ramCost=0, totalCost=-0.2),
            }
        ),
        "c1",
        T0,
        H,
    )
    assert d.rows["kind"].to_list() == ["idle"]
    assert d.rows["total_cost"][0] == Decimal("-0.2")
    assert d.quarantine["reason"][0].startswith("negative_cost")


def test_special_names_are_classified():
    names = {
        "c1/__idle__": "idle",
        "c1/__unmounted__/__unmounted__/__unmounted__": "unmounted",
        "__unallocated__": "unallocated",
        "c1/n/ns/p/c": "container",
    }
    d = decode(body({n: alloc(n) for n in names}), "c1", T0, H)
    assert dict(zip(d.rows["name"], d.rows["kind"], strict=True)) == names


def test_efficiency_above_one_and_sanitized_label_keys_pass_through():
    a = alloc(cpuEfficiency=3.2)
    a["properties"]["labels"] = {"app_kubernetes_io_name": "web", "team": "payments"}
    d = decode(body({"a": a}), "c1", T0, H)
    assert {"key": "app_kubernetes_io_name", "value": "web"} in d.rows["labels"][0].to_list()


def test_daily_set_for_an_hourly_request_is_quarantined_not_spread():
    a = alloc(
        window={"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"},
        totalCost=24.0,
        cpuCost=24.0,
        ramCost=0,
    )
    d = decode(body({"a": a}), "c1", T0, H)
    assert d.rows.height == 0
    assert d.quarantine["reason"][0].startswith("window_mismatch")


def test_hostile_label_values_are_data_not_code():
    a = alloc()
    a["properties"]["labels"] = {
        "team": "x'; drop table marts.team_bill_monthly; --",
        "owner": '=HYPERLINK("http://example.invalid")',
    }
    d = decode(body({"a": a}), "c1", T0, H)
    labels = {x["key"]: x["value"] for x in d.rows["labels"][0].to_list()}
    assert labels["team"].startswith("x'; drop table")


@pytest.mark.parametrize(
    "raw", [b"not json", b'{"code": 500, "message": "boom"}', b'{"code": 200}']
)
def test_a_body_that_is_no_allocation_envelope_is_an_error(raw):
    with pytest.raises(AllocationApiError):
        decode(raw, "c1", T0, H)


def test_malformed_allocation_is_quarantined_with_the_decoder_message():
    d = decode(body({"a": alloc(totalCost="lots")}), "c1", T0, H)
    assert d.quarantine["reason"][0].startswith("malformed_allocation")


# Bad input: each case names the reason the row is quarantined with, or the error raised.


@pytest.mark.parametrize("text", ['"NaN"', '"Infinity"', '"-Infinity"'])
def test_non_finite_cost_text_is_quarantined_with_the_field(text):
    raw = json.dumps({"x": alloc(cpuCost=0)}).replace('"cpuCost": 0', f'"cpuCost": {text}')
    d = decode(body(json.loads(raw)), "c1", T0, H)
    assert d.rows.height == 0
    assert d.quarantine["reason"][0].startswith("non_finite_cost: cpuCost=")
    assert d.counts["non_finite_cost"] == 1


def test_non_finite_volume_cost_is_quarantined():
    a = alloc(pvs={"pvc-1": {"byteHours": 1.0, "cost": "NaN"}})
    d = decode(body({"x": a}), "c1", T0, H)
    assert d.quarantine["reason"].to_list() == ["non_finite_cost: pvs.pvc-1.cost=NaN"]


def test_a_cost_too_large_for_the_lake_is_quarantined_not_nulled():
    d = decode(body({"x": alloc(totalCost=123456789012345678901.5)}), "c1", T0, H)
    assert d.rows.height == 0
    assert d.quarantine["reason"][0].startswith("cost_out_of_range: totalCost=1.234568e+20")


def test_an_unreadable_timestamp_is_quarantined():
    a = alloc(window={"start": "yesterday", "end": "today"})
    d = decode(body({"x": a}), "c1", T0, H)
    assert d.quarantine["reason"][0] == "malformed_allocation: not a timestamp: 'yesterday'"


def test_negative_quantities_and_overlong_minutes_are_quarantined():
    d = decode(
        body({"a": alloc(cpuCoreHours=-50.0), "b": alloc(name="b", minutes=90)}), "c1", T0, H
    )
    assert sorted(d.quarantine["reason"]) == [
        "minutes_beyond_window: 90.0 minutes in a 1:00:00 set",
        "negative_quantity: cpuCoreHours below zero",
    ]


def test_a_negative_total_the_parts_do_not_explain_is_quarantined():
    d = decode(body({"x": alloc(totalCost=-100.0)}), "c1", T0, H)
    assert d.rows.height == 0
    assert d.quarantine["reason"][0].startswith("negative_cost: totalCost -100.0 is below zero")
    # A downward adjustment may take a total below zero: the parts say so, and the row is kept.
    adjusted = alloc(cpuCost=0.01, cpuCostAdjustment=-0.02, ramCost=0, totalCost=-0.01)
    d = decode(body({"x": adjusted}), "c1", T0, H)
    assert d.rows["total_cost"].to_list() == [Decimal("-0.01")]


def test_an_answer_for_another_cluster_is_an_error():
    with pytest.raises(AllocationApiError, match="answered for cluster 'c1', not 'idc-fra'"):
        decode(body({"x": alloc()}), "idc-fra", T0, H, expected_cluster="idc-fra")
    assert decode(body({"x": alloc()}), "c1", T0, H, expected_cluster="c1").rows.height == 1


def test_an_answer_with_fewer_sets_than_asked_is_an_error():
    with pytest.raises(AllocationApiError, match="asked for 2 sets .* the answer has 1"):
        decode(body({"x": alloc()}), "c1", T0, H, steps=2)


def test_a_daily_set_for_an_hour_leaves_the_hour_unanswered_and_files_its_rows_there():
    daily = alloc(window={"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"})
    next_hour = alloc(
        name="y", window={"start": "2026-11-02T06:00:00Z", "end": "2026-11-02T07:00:00Z"}
    )
    d = decode(body({"x": daily}, {"y": next_hour}), "c1", T0, H, steps=2)
    assert d.unanswered == {T0}
    assert d.quarantine["window_start"].to_list() == [T0]
    assert d.quarantine["reason"][0].startswith("window_mismatch: set covers 2026-11-02T00:00:00Z")
    assert d.rows["window_start"].to_list() == [T0 + H]
