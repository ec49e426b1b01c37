"""A small dbt-like runner: SQL files with `{{ ref() }}` and `{{ source() }}`, in dependency order.

Models live in dbt_like_sql/staging (views) and dbt_like_sql/marts (tables); `models.yml` beside
them describes every model and column and names each model's grain and data tests.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb
import yaml

SQL_ROOT = Path(__file__).resolve().parents[2] / "dbt_like_sql"
REF = re.compile(r"\{\{\s*ref\(\s*'([a-z0-9_]+)'\s*\)\s*\}\}")
SOURCE = re.compile(r"\{\{\s*source\(\s*'([a-z0-9_]+)'\s*,\s*'([a-z0-9_]+)'\s*\)\s*\}\}")
LAYERS = {"staging": "view", "marts": "table"}


class ModelError(RuntimeError):
    """A model that cannot be built, named with its file."""


@dataclass
class Model:
    name: str
    layer: str
    path: Path
    sql: str
    refs: list[str]
    sources: list[tuple[str, str]]
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    grain: list[str] = field(default_factory=list)
    not_null: list[str] = field(default_factory=list)
    materialized: str | None = None  # models.yml may override the layer's view/table

    @property
    def schema(self) -> str:
        return self.layer

    @property
    def relation(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def materialization(self) -> str:
        return self.materialized or LAYERS[self.layer]


def load_models(root: Path = SQL_ROOT) -> dict[str, Model]:
    """Every model under root, in dependency order, with its documentation."""
    models: dict[str, Model] = {}
    for layer in LAYERS:
        docs_file = root / layer / "models.yml"
        docs = yaml.safe_load(docs_file.read_text())["models"] if docs_file.exists() else {}
        for path in sorted((root / layer).glob("*.sql")):
            sql = path.read_text()
            name = path.stem
            if name in models:
                raise ModelError(f"{path}: model name {name} is used twice")
            doc = docs.get(name) or {}
            models[name] = Model(
                name=name,
                layer=layer,
                path=path,
                sql=sql,
                refs=REF.findall(sql),
                sources=SOURCE.findall(sql),
                description=doc.get("description", ""),
                columns=doc.get("columns", {}) or {},
                grain=doc.get("grain", []) or [],
                not_null=doc.get("not_null", []) or [],
                materialized=doc.get("materialized"),
            )
            if models[name].materialization not in ("view", "table"):
                raise ModelError(f"{docs_file}: {name}: materialized must be view or table")
    for m in models.values():
        for r in m.refs:
            if r not in models:
                raise ModelError(f"{m.path}: ref('{r}') names no model")
    try:
        order = list(TopologicalSorter({n: m.refs for n, m in models.items()}).static_order())
    except CycleError as exc:
        raise ModelError(f"models reference each other in a cycle: {exc.args[1]}") from None
    return {n: models[n] for n in order}


def render(model: Model, models: dict[str, Model], sources: dict[tuple[str, str], str]) -> str:
    def ref(m: re.Match) -> str:
        return models[m.group(1)].relation

    def source(m: re.Match) -> str:
        key = (m.group(1), m.group(2))
        if key not in sources:
            raise ModelError(f"{model.path}: source{key} is not provided")
        return sources[key]

    return SOURCE.sub(source, REF.sub(ref, model.sql))


def build(
    con: duckdb.DuckDBPyConnection,
    models: dict[str, Model],
    sources: dict[tuple[str, str], str],
    currency: str,
    seconds: dict[str, float] | None = None,
) -> dict[str, int]:
    """Create every model in order on an open connection (inside the caller's transaction);
    return the row count of each table, and fill `seconds` with each model's build time."""
    rows: dict[str, int] = {}
    for layer in LAYERS:
        con.execute(f"create schema if not exists {layer}")
    for m in models.values():
        body = render(m, models, sources).strip().rstrip(";")
        kind = m.materialization
        t0 = time.perf_counter()
        try:
            # A model switched between view and table replaces the old kind.
            if _existing_kind(con, m) not in (None, kind):
                con.execute(f"drop {'view' if kind == 'table' else 'table'} {m.relation}")
            con.execute(f"create or replace {kind} {m.relation} as\n{body}")
        except duckdb.Error as exc:
            raise ModelError(f"{m.path.name}: {exc}") from exc
        if seconds is not None:
            seconds[m.name] = round(time.perf_counter() - t0, 3)
        comment = m.description.strip()
        if m.layer == "marts":
            comment += f" Money columns (*_cost) are in {currency}."
        con.execute(f"comment on {kind} {m.relation} is '{_quote(comment)}'")
        for col, text in m.columns.items():
            con.execute(f"comment on column {m.relation}.{col} is '{_quote(text)}'")
        if kind == "table":
            rows[m.name] = con.execute(f"select count(*) from {m.relation}").fetchone()[0]
    return rows


def _existing_kind(con: duckdb.DuckDBPyConnection, m: Model) -> str | None:
    found = con.execute(
        "select 'view' from duckdb_views() where schema_name = ? and view_name = ? "
        "union all select 'table' from duckdb_tables() where schema_name = ? and table_name = ?",
        [m.layer, m.name, m.layer, m.name],
    ).fetchone()
    return found[0] if found else None


def _quote(text: str) -> str:
    return text.replace("'", "''")


def grain_violations(con: duckdb.DuckDBPyConnection, m: Model) -> int:
    if not m.grain:
        return 0
    cols = ", ".join(m.grain)
    return con.execute(
        f"select count(*) from (select {cols} from {m.relation} group by all having count(*) > 1)"
    ).fetchone()[0]


def null_violations(con: duckdb.DuckDBPyConnection, m: Model) -> dict[str, int]:
    out = {}
    for col in m.not_null:
        n = con.execute(f"select count(*) from {m.relation} where {col} is null").fetchone()[0]
        if n:
            out[col] = n
    return out


def undocumented_columns(con: duckdb.DuckDBPyConnection, m: Model) -> list[str]:
    cols = [r[0] for r in con.execute(f"describe {m.relation}").fetchall()]
    return [c for c in cols if c not in m.columns]
