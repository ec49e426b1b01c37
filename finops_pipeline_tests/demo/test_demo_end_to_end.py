"""The main job on the demo fleet, checked against the fleet's ground truth."""

from __future__ import annotations

from decimal import Decimal

import duckdb

from finops_pipeline.cli import run_pipeline
from finops_pipeline.demo.fleet import ANOMALY


def test_cluster_day_totals_equal_ground_truth_to_the_cent(demo_run, published):
    got = {
        (c, str(d)): v
        for c, d, v in published.execute(
            "select cluster, day, sum(total_cost) from marts.cost_by_cluster_hourly group by all"
        ).fetchall()
    }
    truth = demo_run.truth["cluster_day_total_cost"]
    assert len(truth) == 9  # 3 clusters x 3 days
    for row in truth:
        assert round(got[(row["cluster"], row["day"])], 2) == round(Decimal(row["total_cost"]), 2)
        # exact to the 1e-9 the demo prices in, not only to the cent
        assert got[(row["cluster"], row["day"])] == Decimal(row["total_cost"])
    assert len(got) == len(truth)


def test_team_bills_add_up_to_the_fleet_total(demo_run, published):
    total, billed = published.execute(
        "select sum(total_cost), sum(billed_amount) from marts.team_bill_monthly"
    ).fetchone()
    fleet_total = Decimal(demo_run.truth["fleet_total_cost"])
    assert total == fleet_total
    assert billed == round(fleet_total, 2)
    teams = {t for (t,) in published.execute("select team from marts.team_bill_monthly").fetchall()}
    assert {
        "payments",
        "checkout",
        "search",
        "recommendations",
        "identity",
        "data-platform",
        "mobile-api",
        "ml-research",
        "analytics",
    } <= teams
    assert "unassigned" not in teams  # every demo workload maps to a team


def test_team_mapping_uses_labels_namespace_labels_and_the_map(published):
    rows = dict(
        published.execute(
            "select namespace, any_value(team) from marts.cost_utilization_hourly "
            "where cost_type = 'direct' group by namespace"
        ).fetchall()
    )
    assert rows["payments"] == "payments"  # pod label
    assert rows["search"] == "search"  # namespace label
    assert rows["mobile"] == "mobile-api"  # namespace map
    assert rows["recs"] == "recommendations"


def test_shared_and_idle_cost_is_spread_not_lost(published):
    shared, idle, direct = published.execute(
        "select sum(shared_cost), sum(idle_cost), sum(direct_cost) from marts.cost_by_team_daily"
    ).fetchone()
    cluster_idle = published.execute(
        "select sum(idle_cost) from marts.cost_by_cluster_hourly"
    ).fetchone()[0]
    assert shared > 0
    assert idle == cluster_idle


def test_every_seeded_low_utilization_workload_is_flagged_and_nothing_else(demo_run, published):
    truth = {
        (r["cluster"], r["namespace"], r["pod"], r["container"]): r["recommended_cpu_cores"]
        for r in demo_run.truth["low_utilization"]
    }
    assert len(truth) > 10
    got = {
        (r[0], r[1], r[2], r[3]): r[4]
        for r in published.execute(
            "select cluster, namespace, pod, container, recommended_cpu_request_cores "
            "from marts.rightsizing_recommendations where low_utilization"
        ).fetchall()
    }
    assert set(got) == set(truth)
    for key, rec in truth.items():
        assert abs(got[key] - rec) < 1e-9
    savings = published.execute(
        "select sum(monthly_savings_cost) from marts.rightsizing_recommendations "
        "where low_utilization"
    ).fetchone()[0]
    assert savings > 0


def test_every_zombie_is_found_and_nothing_else(demo_run, published):
    truth = {
        (z["cluster"], z["kind"], z["namespace"] or "", z["name"], z["reason"])
        for z in demo_run.truth["zombies"]
    }
    got = set(
        published.execute(
            "select cluster, object_kind, namespace, name, reason from marts.zombie_resources"
        ).fetchall()
    )
    assert got == truth
    lb_cost = published.execute(
        "select min(monthly_cost) from marts.zombie_resources where object_kind <> 'service' "
        "or reason = 'load_balancer_without_endpoints'"
    ).fetchone()[0]
    assert lb_cost > 0  # volumes and load balancers carry a monthly cost
    tags = published.execute("select suggested_tags from marts.zombie_resources").fetchall()
    assert all(t[0].startswith("finops.io/zombie=true,finops.io/zombie-reason=") for t in tags)


def test_the_anomaly_points_at_the_deployment_that_tripled(demo_run, published):
    rows = published.execute(
        "select distinct cluster, namespace, controller from marts.cost_anomalies"
    ).fetchall()
    assert rows == [(ANOMALY["cluster"], ANOMALY["namespace"], ANOMALY["deployment"])]
    first, ratio, share = published.execute(
        "select min(hour_start), max(increase_ratio), max(share_of_cluster_rise) "
        "from marts.cost_anomalies"
    ).fetchone()
    assert first.isoformat().replace("+00:00", "") == demo_run.truth["anomaly"][
        "first_hour"
    ].replace("+00:00", "")
    assert ratio >= 2.0
    assert share > 0.9


def test_rerunning_partitions_changes_no_total(demo_run):
    """Re-materialize a day of every cluster: files are replaced, never added to."""
    fleet = demo_run.fleet
    before = _totals(fleet.paths.published)
    files = sorted(p.name for p in (fleet.paths.lake / "allocation").rglob("*.parquet"))
    spec_start = demo_run.demo.spec.start
    from datetime import timedelta

    run_pipeline(
        demo_run.fleet_path, spec_start + timedelta(days=1), spec_start + timedelta(days=2)
    )
    assert sorted(p.name for p in (fleet.paths.lake / "allocation").rglob("*.parquet")) == files
    assert _totals(fleet.paths.published) == before


def _totals(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select (select sum(total_cost) from marts.cost_by_cluster_hourly), "
            "(select sum(total_cost) from marts.team_bill_monthly), "
            "(select count(*) from marts.cost_utilization_hourly)"
        ).fetchone()
    finally:
        con.close()
