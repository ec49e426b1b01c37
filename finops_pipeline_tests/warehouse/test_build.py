"""The warehouse build against a lake that holds more than the fleet file names."""

from __future__ import annotations

import shutil
from decimal import Decimal

import duckdb

from finops_pipeline.config import Paths
from finops_pipeline.warehouse.build import build_warehouse


def test_files_of_a_cluster_no_longer_in_the_fleet_are_not_counted(demo_run, tmp_path):
    """A cluster renamed in the fleet file leaves its old folders in the lake; building them too
    would count its cost twice."""
    fleet = demo_run.fleet.model_copy(update={"paths": Paths(data_dir=tmp_path)})
    shutil.copytree(demo_run.fleet.paths.lake, fleet.paths.lake)
    for asset in ("allocation", "utilization", "inventory"):
        shutil.copytree(
            fleet.paths.lake / asset / "cluster=gcp-euw1",
            fleet.paths.lake / asset / "cluster=gcp-old-name",
        )
    result = build_warehouse(fleet)
    assert result.notes == [
        f"lake {a} holds clusters not in the fleet file, not built: ['gcp-old-name']"
        for a in ("allocation", "utilization", "inventory")
    ]
    con = duckdb.connect(str(fleet.paths.warehouse), read_only=True)
    clusters, total = con.execute(
        "select list(distinct cluster order by cluster), sum(total_cost) "
        "from marts.cost_by_cluster_hourly"
    ).fetchone()
    con.close()
    assert clusters == ["aws-use1", "gcp-euw1", "idc-fra"]
    assert total == Decimal(demo_run.truth["fleet_total_cost"])
