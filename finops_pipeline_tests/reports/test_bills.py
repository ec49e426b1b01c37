from __future__ import annotations

import csv
from decimal import Decimal

from openpyxl import load_workbook

from finops_pipeline.reports.bills import safe_text


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


def test_formula_like_team_names_are_neutralized():
    assert safe_text("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert safe_text("payments") == "payments"
