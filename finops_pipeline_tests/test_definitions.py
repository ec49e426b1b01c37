from __future__ import annotations

from finops_pipeline.definitions import SOURCES_JOB, WAREHOUSE_JOB, build_definitions


def test_all_definitions_load_with_lineage():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for name in (
        "raw_allocation",
        "raw_utilization",
        "raw_inventory",
        "cost_by_cluster_hourly",
        "cost_by_team_daily",
        "cost_by_label_daily",
        "unit_cost_by_cluster_daily",
        "rightsizing_recommendations",
        "zombie_resources",
        "cost_anomalies",
        "team_bill_monthly",
        "published_warehouse",
        "team_bill_files",
    ):
        assert name in keys
    defs.resolve_job_def(SOURCES_JOB)
    defs.resolve_job_def(WAREHOUSE_JOB)
    from dagster import AssetKey

    parents = {k.to_user_string() for k in graph.get(AssetKey("stg_allocation")).parent_keys}
    assert parents == {"raw_allocation"}
