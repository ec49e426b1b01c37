"""Monthly team bills for finance: one CSV and one Excel workbook (with a chart) per month."""

from __future__ import annotations

import csv
import os
import re
from decimal import Decimal
from pathlib import Path

import duckdb
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font

from finops_pipeline.config import Fleet
from finops_pipeline.lake.parquet import temporary_name

COLUMNS = (
    "month",
    "team",
    "direct_cost",
    "shared_cost",
    "idle_cost",
    "unmounted_cost",
    "total_cost",
    "billed_amount",
    "currency",
)


# Control characters other than tab, newline and carriage return: XML 1.0 (and so .xlsx) cannot
# hold them. They are shown as \xNN in both files, so the CSV and the workbook say the same.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def safe_text(value: object) -> object:
    """Team names come from pod labels: keep a spreadsheet from reading one as a formula, and
    keep characters no workbook can hold visible instead of failing the bills."""
    if not isinstance(value, str):
        return value
    value = CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_team_bills(fleet: Fleet) -> list[Path]:
    out_dir = fleet.paths.reports
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(fleet.paths.published), read_only=True)
    try:
        rows = con.execute(
            f"select {', '.join(COLUMNS)} from marts.team_bill_monthly "
            "order by month, total_cost desc"
        ).fetchall()
    finally:
        con.close()
    months: dict[str, list[tuple]] = {}
    for r in rows:
        months.setdefault(r[0], []).append(r)
    # Every file is written under a temporary name first; only when all are written are they
    # renamed into place, so a failure leaves the previous bills, CSV and workbook alike.
    staged: list[tuple[Path, Path]] = []
    try:
        for month, bill in months.items():
            _write_month(out_dir, month, bill, staged)
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [path for _, path in staged]


def _write_month(out_dir: Path, month: str, bill: list[tuple], staged: list) -> None:
    csv_path = out_dir / f"team_bill_{month}.csv"
    tmp = temporary_name(csv_path)
    staged.append((tmp, csv_path))
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in bill:
            w.writerow([safe_text(v) for v in r])

    xlsx_path = out_dir / f"team_bill_{month}.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = f"Team bill {month}"
    ws.append(list(COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in bill:
        ws.append([float(v) if isinstance(v, Decimal) else safe_text(v) for v in r])
    total_row = len(bill) + 2
    ws.cell(row=total_row, column=2, value="total").font = Font(bold=True)
    # Totals as values, summed exactly, so that scripts reading the file see them too (a formula
    # has no value until a spreadsheet program computes it).
    for col in range(3, 9):
        total = sum((r[col - 1] for r in bill), Decimal(0))
        ws.cell(row=total_row, column=col, value=float(total)).font = Font(bold=True)
    for col in "CDEFGH":
        for row in range(2, total_row + 1):
            ws[f"{col}{row}"].number_format = "#,##0.00"
    ws.column_dimensions["B"].width = 22
    chart = BarChart()
    chart.type = "bar"
    chart.title = f"Billed per team, {month} ({bill[0][-1]})"
    chart.y_axis.title = bill[0][-1]
    chart.add_data(
        Reference(ws, min_col=8, min_row=1, max_row=total_row - 1), titles_from_data=True
    )
    chart.set_categories(Reference(ws, min_col=2, min_row=2, max_row=total_row - 1))
    chart.height, chart.width = 9, 18
    ws.add_chart(chart, "K2")
    tmp = temporary_name(xlsx_path)
    staged.append((tmp, xlsx_path))
    wb.save(tmp)
