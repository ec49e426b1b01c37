"""Dagster definitions for the fleet named by $FINOPS_FLEET_CONFIG (the demo fleet by default)."""

from __future__ import annotations

import warnings

import dagster as dg

from finops_pipeline.config import load_fleet
from finops_pipeline.reports.assets import report_assets
from finops_pipeline.sources.assets import raw_assets
from finops_pipeline.warehouse.assets import warehouse_assets

SOURCES_JOB = "ingest_sources"
WAREHOUSE_JOB = "build_warehouse_and_reports"

# Made outside Dagster by `finops-pipeline demo`: the workloads its servers answer for. A demo run
# records one materialization whose metadata says where they came from and, for a trace, what the
# import merged, clipped or dropped, counted per reason.
DEMO_WORKLOADS = dg.AssetSpec(
    "demo_workloads",
    group_name="demo",
    description="Workloads behind the demo Prometheus and allocation API, simulated or imported "
    "from a trace file; each materialization's metadata holds the import's counts per reason.",
)


# BackfillPolicy.single_run is deliberate (one API request per range of hours); Dagster calls the
# parameter beta and would warn on every load of these definitions.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def build_definitions() -> dg.Definitions:
    fleet = load_fleet()
    sources = raw_assets(fleet)
    downstream = warehouse_assets(fleet) + report_assets(fleet)
    return dg.Definitions(
        assets=[DEMO_WORKLOADS, *sources, *downstream],
        jobs=[
            dg.define_asset_job(
                SOURCES_JOB,
                selection=dg.AssetSelection.groups("sources"),
                description="Pull allocation, utilization and inventory for a range of hours "
                "and clusters (one run per backfill range).",
                executor_def=dg.in_process_executor,
            ),
            dg.define_asset_job(
                WAREHOUSE_JOB,
                selection=dg.AssetSelection.groups("staging", "marts", "reports"),
                description="Rebuild the warehouse from the lake, publish it and write the bills.",
                executor_def=dg.in_process_executor,
            ),
        ],
    )


defs = build_definitions()
