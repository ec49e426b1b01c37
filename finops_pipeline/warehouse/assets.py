"""The SQL models as Dagster assets (one transaction builds them all) and the published copy."""

import dagster as dg

from finops_pipeline.config import Fleet
from finops_pipeline.warehouse.build import build_warehouse, publish
from finops_pipeline.warehouse.sqlmodels import load_models

WAREHOUSE_POOL = "warehouse"
MONEY_CHECKS = {
    "allocation_conserves_cost": "cost_allocated_hourly",
    "bills_equal_cluster_costs": "team_bill_monthly",
    "rounded_bills_keep_total": "team_bill_monthly",
    "no_negative_cost_outside_adjustments": "cost_by_cluster_hourly",
}


def model_specs() -> tuple[list[dg.AssetSpec], list[dg.AssetCheckSpec]]:
    specs, checks = [], []
    for m in load_models().values():
        deps = [dg.AssetKey(r) for r in m.refs]
        deps += [dg.AssetKey(f"raw_{t}") for s, t in m.sources if s == "raw"]
        specs.append(
            dg.AssetSpec(
                key=m.name,
                deps=sorted(set(deps), key=str),
                group_name=m.layer,
                description=m.description or None,
                kinds={"duckdb", "sql"},
                metadata={
                    "relation": f"{m.layer}.{m.name}",
                    "materialization": m.materialization,
                    "sql_file": dg.MetadataValue.path(str(m.path)),
                    "grain": ", ".join(m.grain) or "(none declared)",
                    "dagster/column_schema": dg.TableSchema(
                        columns=[dg.TableColumn(c, description=d) for c, d in m.columns.items()]
                    ),
                },
            )
        )
        if m.layer == "marts":
            checks.append(dg.AssetCheckSpec(f"{m.name}_unique_at_grain", asset=m.name))
            checks.append(dg.AssetCheckSpec(f"{m.name}_not_null", asset=m.name))
    checks += [dg.AssetCheckSpec(name, asset=asset) for name, asset in MONEY_CHECKS.items()]
    return specs, checks


def warehouse_assets(fleet: Fleet) -> list[dg.AssetsDefinition]:
    specs, checks = model_specs()
    marts = [s.key for s in specs if s.group_name == "marts"]

    @dg.multi_asset(
        name="warehouse_models",
        specs=specs,
        check_specs=checks,
        pool=WAREHOUSE_POOL,
        description="Builds every dbt_like_sql model in one DuckDB transaction; any failed check "
        "rolls the whole build back, leaving the warehouse as it was.",
    )
    def _models(context: dg.AssetExecutionContext):
        result = build_warehouse(fleet)
        context.log.info(f"warehouse built in {result.seconds:.1f}s: {result.rows}")
        for note in result.notes:
            context.log.warning(note)
        for spec in specs:
            md = {
                "build_seconds": result.seconds,
                "lake_notes": dg.MetadataValue.json(result.notes),
                "model_seconds": result.model_seconds.get(spec.key.path[-1], 0.0),
            }
            if spec.key.path[-1] in result.rows:
                md["dagster/row_count"] = result.rows[spec.key.path[-1]]
            yield dg.MaterializeResult(asset_key=spec.key, metadata=md)
        for c in result.checks:
            yield dg.AssetCheckResult(
                asset_key=c.model,
                check_name=c.name,
                passed=c.passed,
                metadata={"detail": c.detail},
            )

    @dg.asset(
        name="published_warehouse",
        deps=marts,
        group_name="reports",
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        description="Read-only copy of every mart for analysts (schema marts), replaced "
        "atomically after each build.",
    )
    def _published(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        path = publish(fleet)
        context.log.info(f"published marts to {path}")
        return dg.MaterializeResult(
            metadata={"path": dg.MetadataValue.path(str(path)), "bytes": path.stat().st_size}
        )

    return [_models, _published]
