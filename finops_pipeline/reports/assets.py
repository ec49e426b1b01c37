"""Report files for finance, built from the published warehouse."""

import dagster as dg

from finops_pipeline.config import Fleet
from finops_pipeline.reports.bills import write_team_bills


def report_assets(fleet: Fleet) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="team_bill_files",
        deps=["published_warehouse"],
        group_name="reports",
        kinds={"csv", "excel"},
        description="Monthly team bills as CSV and Excel (with a chart) under data/reports.",
    )
    def _bills(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        files = write_team_bills(fleet)
        context.log.info(f"wrote {len(files)} bill files")
        return dg.MaterializeResult(
            metadata={"files": dg.MetadataValue.json([str(f) for f in files])}
        )

    return [_bills]
