from __future__ import annotations

import csv
from decimal import Decimal

import duckdb
import pytest
from openpyxl import load_workbook

from finops_pipeline.config import Paths
from finops_pipeline.reports.bills import safe_text, write_team_bills


def test_bill_files_match_the_mart(demo_run, published):
    month = published.execute("select min(month) from marts.team_bill_monthly").fetchone()[0]
    path = demo_run.fleet.paths.reports / f"team_bill_{month}.csv"
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    total = published.execute(
        "select sum(billed_amount) from marts.team_bill_monthly where month = ?", [month]
    ).fetchone()[0]
    assert sum(Decimal(r["billed_amount"]) for r in rows) == total
    wb = load_workbook(demo_run.fleet.paths.reports / f"team_bill_{month}.xlsx")
    ws = wb.active
    assert ws._charts, "the workbook has a chart"
    assert ws.cell(row=1, column=2).value == "team"
    total_row = len(rows) + 2
    assert ws.cell(row=total_row, column=2).value == "total"
    assert ws.cell(row=total_row, column=8).value == pytest.approx(float(total), abs=1e-9)


def test_formula_like_team_names_are_neutralized():
    assert safe_text("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert safe_text("payments") == "payments"


def test_control_characters_are_shown_alike_in_both_files():
    assert safe_text("bell\x07team") == "bell\\x07team"
    assert safe_text("=x\x00") == "'=x\\x00"
    assert safe_text("tab\tand\nnewline") == "tab\tand\nnewline"  # both formats hold these


def _published_bills(path, teams):
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        "create table marts.team_bill_monthly (month varchar, team varchar, "
        "direct_cost decimal(38,9), shared_cost decimal(38,9), idle_cost decimal(38,9), "
        "unmounted_cost decimal(38,9), "
        "total_cost decimal(38,9), billed_amount decimal(18,2), currency varchar)"
    )
    for month, team in teams:
        con.execute(
            "insert into marts.team_bill_monthly values (?, ?, 1, 0, 0, 0, 1, 1, 'USD')",
            [month, team],
        )
    con.close()


def test_a_failing_month_leaves_every_previous_bill_file_in_place(demo_run, tmp_path, monkeypatch):
    fleet = demo_run.fleet.model_copy(update={"paths": Paths(data_dir=tmp_path)})
    fleet.paths.published.parent.mkdir(parents=True)
    _published_bills(fleet.paths.published, [("2026-10", "bell\x07team"), ("2026-11", "ok")])
    first = write_team_bills(fleet)
    assert sorted(p.name for p in first) == [
        "team_bill_2026-10.csv",
        "team_bill_2026-10.xlsx",
        "team_bill_2026-11.csv",
        "team_bill_2026-11.xlsx",
    ]
    ws = load_workbook(fleet.paths.reports / "team_bill_2026-10.xlsx").active
    assert ws.cell(row=2, column=2).value == "bell\\x07team"
    before = {p.name: p.read_bytes() for p in fleet.paths.reports.iterdir()}

    # The second month's workbook fails to save: no file of either month may change.
    from openpyxl.workbook import workbook

    real_save = workbook.Workbook.save
    calls = []

    def failing_save(self, filename):
        calls.append(filename)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_save(self, filename)

    monkeypatch.setattr(workbook.Workbook, "save", failing_save)
    fleet.paths.published.unlink()
    _published_bills(fleet.paths.published, [("2026-10", "changed"), ("2026-11", "changed")])
    with pytest.raises(OSError, match="disk full"):
        write_team_bills(fleet)
    assert {p.name: p.read_bytes() for p in fleet.paths.reports.iterdir()} == before
