"""The DuckDB warehouse: read-only SQL over the lake.

Views, not tables: each lake asset becomes a view over its Parquet files, so the warehouse
always sees the latest materializations and no asset ever writes into a shared DuckDB file
(DuckDB allows a single writer process; parallel steps would fight over its lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl


def lake_views(lake_dir: Path) -> dict[str, str]:
    """``{view_name: parquet_glob}`` for every asset in the lake."""
    views: dict[str, str] = {}
    if not lake_dir.exists():
        return views
    for entry in sorted(lake_dir.iterdir()):
        name = entry.stem if entry.is_file() else entry.name
        if not name.isidentifier() or name.startswith("_"):
            continue
        if entry.is_dir() and any(entry.glob("*.parquet")):
            views[name] = str(entry.resolve() / "*.parquet")
        elif entry.is_file() and entry.suffix == ".parquet":
            views[name] = str(entry.resolve())
    return views


def register_lake_views(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> list[str]:
    """Create (or replace) one view per lake asset on ``con``; returns the view names."""
    views = lake_views(lake_dir)
    for name, glob in views.items():
        literal = glob.replace("'", "''")
        con.execute(
            f'CREATE OR REPLACE VIEW "{name}" AS '
            f"SELECT * FROM read_parquet('{literal}', union_by_name = true)"
        )
    return list(views)


class DuckDBWarehouse(dg.ConfigurableResource):
    """Opens DuckDB connections with the lake registered as views.

    ``database`` defaults to an in-memory database; point it at a file to keep the views for the
    ``duckdb`` CLI (``make warehouse`` does that).
    """

    lake_dir: str
    database: str = ":memory:"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(self.database)
        try:
            register_lake_views(con, Path(self.lake_dir))
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """Run one query and return a polars DataFrame."""
        with self.connect() as con:
            return con.sql(sql, params=params).pl()
