from __future__ import annotations

from finops_pipeline.warehouse.sqlmodels import load_models, undocumented_columns


def test_models_are_ordered_by_their_references():
    order = list(load_models())
    assert order.index("stg_allocation") < order.index("cost_allocated_hourly")
    assert order.index("cost_allocated_hourly") < order.index("team_bill_monthly")


def test_every_column_of_every_model_is_documented(demo_run):
    import duckdb

    con = duckdb.connect(str(demo_run.fleet.paths.warehouse), read_only=True)
    try:
        missing = {m.name: undocumented_columns(con, m) for m in load_models().values()}
    finally:
        con.close()
    assert {k: v for k, v in missing.items() if v} == {}


def test_published_marts_carry_their_comments(published):
    comment = published.execute(
        "select comment from duckdb_tables() where table_name = 'team_bill_monthly'"
    ).fetchone()[0]
    assert "USD" in comment
