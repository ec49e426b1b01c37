from __future__ import annotations

from datetime import UTC, datetime

import pytest

from finops_pipeline.cli import _hour, main
from finops_pipeline.config import DEMO_CONFIG


def test_times_with_an_offset_are_converted_to_utc_not_relabelled():
    assert _hour("2026-11-14T02:00+02:00", "--start") == datetime(2026, 11, 14, 0, tzinfo=UTC)
    assert _hour("2026-11-14T02:00", "--start") == datetime(2026, 11, 14, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="not on the hour"):
        _hour("2026-11-14T00:30", "--start")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-14T00:00", "2026-11-14T00:00", "must be after --start"),
        ("2026-11-01T00:00", "2026-11-02T00:00", "before the fleet's partitions_start"),
        ("yesterday", "2026-11-02T00:00", "is not an ISO time"),
    ],
)
def test_run_refuses_a_window_it_cannot_run_before_starting_anything(capsys, start, end, message):
    code = main(["run", "--config", str(DEMO_CONFIG), "--start", start, "--end", end])
    assert code == 2
    assert message in capsys.readouterr().err
