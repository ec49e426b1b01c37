"""One small demo fleet per test session: real Prometheus, the allocation API, PostgreSQL for
Dagster, and the whole job run through a Dagster instance into a temporary data folder."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from finops_pipeline.config import Fleet, load_fleet
from finops_pipeline.demo.build import DemoBuild, DemoServers, build
from finops_pipeline.demo.fleet import DemoSpec

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
TEST_SPEC = DemoSpec(days=3, deployments_per_team=3)


@dataclass
class DemoRun:
    demo: DemoBuild
    fleet: Fleet
    fleet_path: Path
    servers: DemoServers

    @property
    def truth(self) -> dict:
        return self.demo.truth()


@contextmanager
def dagster_environment(data: Path, pg_url: str):
    """Point Dagster at a test's instance for the fixture's life, then put the environment back:
    a later test must not find a stopped server's URL there."""
    from finops_pipeline.cli import dagster_env
    from finops_pipeline.config import CONFIG_ENV

    keys = [
        "DAGSTER_HOME",
        "FINOPS_DAGSTER_PG_URL",
        "FINOPS_DAGSTER_ARTIFACTS",
        "FINOPS_DAGSTER_COMPUTE_LOGS",
        CONFIG_ENV,
    ]
    saved = {k: os.environ.get(k) for k in keys}
    dagster_env(data, pg_url)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory) -> DemoBuild:
    cache = Path(os.environ.get("FINOPS_TEST_CACHE", tmp_path_factory.mktemp("demo-cache")))
    return build(TEST_SPEC, cache)


@pytest.fixture(scope="session")
def demo_run(demo_build, tmp_path_factory):
    """The demo job, run once through Dagster on PostgreSQL storage."""
    from finops_pipeline.cli import run_pipeline
    from finops_pipeline.postgres import LocalPostgres

    data = tmp_path_factory.mktemp("data")
    with (
        DemoServers(demo_build, data / "demo-run") as servers,
        LocalPostgres(data / "dagster" / "postgres", remove_on_stop=True) as pg,
    ):
        fleet_path = servers.fleet_config(data, data / "fleet.yaml")
        with dagster_environment(data, pg.url):
            run_pipeline(fleet_path, TEST_SPEC.start, TEST_SPEC.end)
            yield DemoRun(demo_build, load_fleet(fleet_path), fleet_path, servers)


@pytest.fixture()
def published(demo_run):
    import duckdb

    con = duckdb.connect(str(demo_run.fleet.paths.published), read_only=True)
    yield con
    con.close()


def one_cluster_fleet_file(folder: Path, allocation_url: str) -> Path:
    """A fleet file of one cluster `c1` whose sources are tried once, with 2 s to answer;
    Prometheus is asked on port 9, where nothing listens. Data goes under folder/data."""
    path = folder / "fleet.yaml"
    path.write_text(
        f"""
partitions_start: "2026-11-02T00:00:00Z"
clusters:
  - name: c1
    provider: idc
    region: lab
    allocation: {{url: "{allocation_url}", retries: 0, timeout_seconds: 2}}
    prometheus: {{url: "http://127.0.0.1:9", retries: 0, timeout_seconds: 2}}
paths: {{data_dir: "{folder / "data"}"}}
"""
    )
    return path


def realdata(name: str) -> Path:
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared/realdata is not beside this checkout")
    return path
