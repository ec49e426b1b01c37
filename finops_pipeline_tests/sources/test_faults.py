"""Sources facing faults a real server will not make on demand, served from 127.0.0.1 in the
APIs' own wire format: slow and throttled answers, warnings, bad values, duplicated series, daily
sets, and a failed check in a real Dagster run."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import polars as pl
import pytest

from finops_pipeline.config import PrometheusApi, load_fleet
from finops_pipeline.lake.parquet import partition_path, write_atomic
from finops_pipeline.sources import ingest, inventory, utilization
from finops_pipeline.sources.assets import raw_assets
from finops_pipeline.sources.http import SourceHttpError, get_with_retries
from finops_pipeline.sources.prometheus import PrometheusClient, PrometheusQueryError, parse_matrix
from finops_pipeline_tests.conftest import one_cluster_fleet_file
from finops_pipeline_tests.scripted_server import Answer, ScriptedServer

T0 = datetime(2026, 11, 2, 5, tzinfo=UTC)
H = timedelta(hours=1)


def matrix(*series: tuple[dict, str], at: float = T0.timestamp() + 3599.999, **extra) -> bytes:
    result = [{"metric": m, "values": [[at, v]]} for m, v in series]
    return json.dumps(
        {"status": "success", "data": {"resultType": "matrix", "result": result}, **extra}
    ).encode()


def test_a_trickled_answer_is_cut_at_the_deadline():
    with ScriptedServer([Answer(body=b"x" * 200, trickle_seconds=0.05)]) as srv:
        client = httpx.Client(base_url=srv.url, timeout=1.0)
        t0 = time.monotonic()
        with pytest.raises(SourceHttpError, match="gave up after 1 tries: timed out"):
            get_with_retries(client, "/q", {}, retries=0, what="slow")
        # The whole body would take 10 s; the deadline (1 s) plus one byte's pause ends it.
        assert time.monotonic() - t0 < 3


def test_retry_after_is_honoured():
    answers = [Answer(status=429, headers={"Retry-After": "2"}), Answer(body=b"ok")]
    with ScriptedServer(answers) as srv:
        client = httpx.Client(base_url=srv.url, timeout=5.0)
        assert get_with_retries(client, "/q", {}, retries=1, what="throttled") == b"ok"
        (t1, _), (t2, _) = srv.requests
        assert t2 - t1 >= 1.9  # not the 0.5 s backoff


def test_a_partial_response_warning_fails_the_query():
    body = matrix(({"pod": "p"}, "1"), warnings=["partial response: store eu-1 unavailable"])
    with pytest.raises(PrometheusQueryError, match="warnings, not used: partial response"):
        parse_matrix(body, "q")


def test_a_sample_value_that_is_no_number_is_an_error():
    with ScriptedServer([Answer(matrix(({"pod": "p"}, "abc")))]) as srv:
        client = PrometheusClient(PrometheusApi(url=srv.url, retries=0), "c1")
        with pytest.raises(PrometheusQueryError, match="sample value 'abc' .* is not a number"):
            client.hourly("up[1h]", T0, T0 + H)


def test_two_series_for_one_container_hour_are_quarantined_not_merged():
    labels = {"namespace": "ns", "pod": "p", "container": "app"}
    body = matrix(({**labels, "job": "a"}, "0.5"), ({**labels, "job": "b"}, "9"))
    with ScriptedServer([Answer(body)]) as srv:
        client = PrometheusClient(PrometheusApi(url=srv.url, retries=0), "c1")
        frame, quarantine, counts = utilization.collect(client, T0, T0 + H)
    assert frame.height == 0
    assert quarantine["reason"][0].startswith("duplicate_series: cpu_samples answered twice")
    assert counts["duplicate_series"] == 1


def test_inventory_counts_and_capacities_that_are_no_number_are_dropped_and_counted():
    labels = {"namespace": "ns", "endpoint": "svc", "persistentvolume": "pv-1", "pod": "p"}
    with ScriptedServer([Answer(matrix((labels, "NaN")))]) as srv:
        client = PrometheusClient(PrometheusApi(url=srv.url, retries=0), "c1")
        frame, counts = inventory.collect(client, T0, T0 + H)
    assert counts["endpoint_invalid_value_dropped"] == 1
    assert counts["persistentvolume_capacity_invalid_value_dropped"] == 1
    assert frame.filter(pl.col("object_kind") == "endpoint").height == 0


def allocation_body(*sets: dict) -> bytes:
    return json.dumps({"code": 200, "data": list(sets)}).encode()


def alloc(name: str, start: datetime, hours: int = 1, cluster: str = "c1") -> dict:
    end = start + hours * H
    return {
        "name": name,
        "properties": {"cluster": cluster, "namespace": "ns", "pod": name, "container": "app"},
        "window": {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{end:%Y-%m-%dT%H:%M:%SZ}"},
        "minutes": 60,
        "cpuCost": 1.0,
        "totalCost": 1.0,
    }


def one_cluster_fleet(tmp_path, url: str):
    return load_fleet(one_cluster_fleet_file(tmp_path, url))


def test_a_daily_set_keeps_the_hours_previous_file_and_writes_its_quarantine(tmp_path):
    with ScriptedServer([Answer(allocation_body({"a": alloc("a", T0 - 5 * H, hours=24)}))]) as srv:
        fleet = one_cluster_fleet(tmp_path, srv.url)
        old = partition_path(fleet.paths.lake, "allocation", "c1", T0)
        write_atomic(pl.DataFrame({"name": ["from an earlier run"]}), old)
        report = ingest.ingest_allocation(fleet, fleet.cluster("c1"), [T0])
        ingest.write(report)
    assert pl.read_parquet(old)["name"].to_list() == ["from an earlier run"]
    assert report.counts["hours_not_answered_kept_previous"] == 1
    q = pl.read_parquet(partition_path(fleet.paths.lake, "allocation_quarantine", "c1", T0))
    assert q["reason"][0].startswith("window_mismatch: set covers 2026-11-02T00:00:00Z")


def test_an_answer_for_another_cluster_writes_nothing(tmp_path):
    with ScriptedServer([Answer(allocation_body({"a": alloc("a", T0, cluster="c2")}))]) as srv:
        fleet = one_cluster_fleet(tmp_path, srv.url)
        with pytest.raises(Exception, match="answered for cluster 'c2', not 'c1'"):
            ingest.ingest_allocation(fleet, fleet.cluster("c1"), [T0])
    assert not (fleet.paths.lake / "allocation").exists()


def test_a_failed_quality_check_fails_the_run_and_leaves_the_lake_as_it_was(tmp_path):
    # Two keys naming one allocation: each decodes, together they break the grain.
    body = allocation_body({"a": alloc("x", T0), "b": alloc("x", T0)})
    with ScriptedServer([Answer(body)]) as srv:
        fleet = one_cluster_fleet(tmp_path, srv.url)
        old = partition_path(fleet.paths.lake, "allocation", "c1", T0)
        write_atomic(pl.DataFrame({"name": ["from an earlier run"]}), old)
        asset = next(a for a in raw_assets(fleet) if a.key.path == ["raw_allocation"])
        result = dg.materialize(
            [asset],
            partition_key=dg.MultiPartitionKey({"cluster": "c1", "hour": "2026-11-02-05:00"}),
            raise_on_error=False,
        )
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "expect_compound_columns_to_be_unique" in failure and "nothing was written" in failure
    assert pl.read_parquet(old)["name"].to_list() == ["from an earlier run"]
    assert not partition_path(fleet.paths.lake, "allocation_quarantine", "c1", T0).exists()


def test_an_empty_answer_does_not_erase_an_hour_read_before(tmp_path):
    with ScriptedServer([Answer(allocation_body({}))]) as srv:
        fleet = one_cluster_fleet(tmp_path, srv.url)
        old = partition_path(fleet.paths.lake, "allocation", "c1", T0)
        write_atomic(pl.DataFrame({"name": ["from an earlier run"]}), old)
        new = partition_path(fleet.paths.lake, "allocation", "c1", T0 + H)
        report = ingest.ingest_allocation(fleet, fleet.cluster("c1"), [T0])
        ingest.write(report)
        report = ingest.ingest_allocation(fleet, fleet.cluster("c1"), [T0 + H])
        ingest.write(report)
    assert pl.read_parquet(old)["name"].to_list() == ["from an earlier run"]
    assert pl.read_parquet(new).height == 0  # nothing there before: an empty hour is written
    assert report.empty_hours == 1


def test_half_an_hourly_answer_is_not_written(tmp_path):
    mixed = {"a": alloc("a", T0), "b": alloc("b", T0 - 5 * H, hours=24)}
    with ScriptedServer([Answer(allocation_body(mixed))]) as srv:
        fleet = one_cluster_fleet(tmp_path, srv.url)
        report = ingest.ingest_allocation(fleet, fleet.cluster("c1"), [T0])
        ingest.write(report)
    assert not partition_path(fleet.paths.lake, "allocation", "c1", T0).exists()
    assert report.counts["hours_not_answered_no_file"] == 1
    q = pl.read_parquet(partition_path(fleet.paths.lake, "allocation_quarantine", "c1", T0))
    assert sorted(r.split(":")[0] for r in q["reason"]) == ["set_not_hourly", "window_mismatch"]
    assert all(q["raw"].str.contains('"totalCost"'))  # the rows are kept whole, not dropped


def test_a_write_that_fails_midway_leaves_no_new_file(tmp_path, monkeypatch):
    body = allocation_body({"a": alloc("a", T0)}, {"b": alloc("b", T0 + H)})
    with ScriptedServer([Answer(body)]) as srv:
        fleet = one_cluster_fleet(tmp_path, srv.url)
        report = ingest.ingest_allocation(fleet, fleet.cluster("c1"), [T0, T0 + H])
    real = pl.DataFrame.write_parquet
    written = []

    def failing(self, path, **kw):
        written.append(path)
        if len(written) == 3:
            raise OSError("disk full")
        return real(self, path, **kw)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        ingest.write(report)
    files = [p for p in fleet.paths.lake.rglob("*") if p.is_file()]
    assert files == []  # neither the first files written nor their temporary copies
