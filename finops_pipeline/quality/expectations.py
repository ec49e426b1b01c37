"""Great Expectations suites for raw partitions (GX 1.x, ephemeral context over pandas frames).

dagster-ge supports only GX 0.x, so the Dagster asset checks call GX directly through here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

log = logging.getLogger(__name__)


@dataclass
class Validation:
    success: bool
    evaluated: int
    failed: list[str]
    rows: int


def _suites():
    import great_expectations as gx

    E = gx.expectations

    def not_null(*cols):
        return [E.ExpectColumnValuesToNotBeNull(column=c) for c in cols]

    return {
        "allocation": [
            *not_null("cluster", "window_start", "window_end", "name", "kind", "total_cost"),
            E.ExpectColumnValuesToBeInSet(
                column="kind", value_set=["container", "idle", "unmounted", "unallocated"]
            ),
            E.ExpectColumnValuesToBeBetween(column="minutes", min_value=0, max_value=60),
            E.ExpectCompoundColumnsToBeUnique(column_list=["cluster", "window_start", "name"]),
        ],
        "utilization": [
            *not_null("cluster", "hour_start", "namespace", "pod", "container"),
            E.ExpectColumnValuesToBeBetween(column="cpu_usage_avg_cores", min_value=0),
            E.ExpectColumnValuesToBeBetween(column="memory_usage_avg_bytes", min_value=0),
            E.ExpectColumnValuesToBeBetween(column="cpu_request_cores", min_value=0),
            E.ExpectCompoundColumnsToBeUnique(
                column_list=["cluster", "hour_start", "namespace", "pod", "container"]
            ),
        ],
        "inventory": [
            *not_null("cluster", "hour_start", "object_kind", "name"),
            E.ExpectColumnValuesToBeInSet(
                column="object_kind",
                value_set=[
                    "persistentvolume",
                    "persistentvolumeclaim",
                    "pod_volume",
                    "service",
                    "endpoint",
                    "pod_owner",
                    "replicaset_owner",
                ],
            ),
            E.ExpectColumnValuesToBeBetween(column="capacity_bytes", min_value=0),
        ],
    }


def validate(asset: str, frame: pl.DataFrame) -> Validation:
    """Run the asset's suite over the frame; an empty frame passes with nothing to check."""
    if frame.height == 0:
        return Validation(True, 0, [], 0)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets INFO on some of its module loggers; its chatter is not the pipeline's.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("great_expectations") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    # GX draws a progress bar per validation on stderr unless told not to.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(f"raw_{asset}")
    batch_def = source.add_dataframe_asset(name=asset).add_batch_definition_whole_dataframe("run")
    # Money stays exact in the lake; GX only needs comparable numbers here.
    pdf = (
        frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
        .drop([c for c, t in frame.schema.items() if isinstance(t, pl.List)])
        .to_pandas()
    )
    batch = batch_def.get_batch(batch_parameters={"dataframe": pdf})
    suite = gx.ExpectationSuite(name=f"raw_{asset}")
    for e in _suites()[asset]:
        suite.add_expectation(e)
    result = batch.validate(suite)
    failed = []
    for r in result.results:
        if not r.success:
            kw = r.expectation_config.kwargs
            failed.append(
                f"{r.expectation_config.type} {kw.get('column') or kw.get('column_list')}"
            )
    return Validation(bool(result.success), len(result.results), failed, frame.height)
