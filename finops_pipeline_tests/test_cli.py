from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finops_pipeline.cli import _hour, main
from finops_pipeline.config import DEMO_CONFIG
from finops_pipeline_tests.conftest import one_cluster_fleet_file


def test_times_with_an_offset_are_converted_to_utc_not_relabelled():
    assert _hour("2026-11-14T02:00+02:00", "--start") == datetime(2026, 11, 14, 0, tzinfo=UTC)
    assert _hour("2026-11-14T02:00", "--start") == datetime(2026, 11, 14, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="2026-11-14T00:30Z, not on a UTC hour"):
        _hour("2026-11-14T00:30", "--start")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-14T00:00", "2026-11-14T00:00", "must be after --start"),
        ("2026-11-01T00:00", "2026-11-02T00:00", "before the fleet's partitions_start"),
        ("yesterday", "2026-11-02T00:00", "is not an ISO time"),
        ("0001-01-01T00:00+01:00", "2026-11-02T00:00", "is not an ISO time"),
        ("2026-11-02T00:00", "2999-01-01T00:00", "after the last hour that has ended"),
    ],
)
def test_run_refuses_a_window_it_cannot_run_before_starting_anything(capsys, start, end, message):
    code = main(["run", "--config", str(DEMO_CONFIG), "--start", start, "--end", end])
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_folder_given_as_config_is_a_clear_error(capsys, tmp_path):
    assert main(["run", "--config", str(tmp_path), "--start", "x", "--end", "y"]) == 2
    assert "cannot read the fleet configuration" in capsys.readouterr().err


@pytest.fixture()
def open_tmp():
    """A folder the postgres user can reach (pytest's are private to root), removed afterwards
    with the PostgreSQL cluster that `run` creates in it."""
    path = Path(tempfile.mkdtemp(prefix="finops-cli-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_failed_run_names_the_cause_and_what_it_left(capsys, open_tmp, monkeypatch):
    """Nothing listens on port 9: every source fails, and the message says why and what was
    written (nothing), without a traceback."""
    tmp_path = open_tmp
    # `run` starts its own PostgreSQL and sets these; monkeypatch puts them back afterwards.
    for key in (
        "DAGSTER_HOME",
        "FINOPS_DAGSTER_PG_URL",
        "FINOPS_DAGSTER_ARTIFACTS",
        "FINOPS_DAGSTER_COMPUTE_LOGS",
        "FINOPS_FLEET_CONFIG",
    ):
        monkeypatch.delenv(key, raising=False)
    fleet = one_cluster_fleet_file(tmp_path, "http://127.0.0.1:9/c1")
    args = ["--config", str(fleet), "--start", "2026-11-02T00:00", "--end", "2026-11-02T01:00"]
    assert main(["run", *args, "--log-level", "CRITICAL"]) == 1
    err = capsys.readouterr().err
    assert (
        "raw_allocation: SourceHttpError: c1 allocation: gave up after 1 tries: ConnectError" in err
    )
    assert (
        "the lake files of raw_allocation, raw_inventory, raw_utilization are as they were" in err
    )
    assert "the warehouse was not rebuilt" in err
    assert "Traceback" not in err
    assert not (tmp_path / "data" / "lake").exists()
