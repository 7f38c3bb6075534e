"""``market sql`` is a read-only sandbox: every escape is refused and leaves no trace.

Each escape test asserts both that the query is refused and that nothing happened (no file
created, the lake partition byte-for-byte unchanged). Two layers refuse: the statement allow-list
(:class:`ForbiddenQueryError`) and the locked DuckDB configuration (``duckdb.Error``); the
``connect()`` tests prove the second layer holds on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.cli import main
from resources.lake import ParquetLake
from resources.warehouse import DuckDBWarehouse, ForbiddenQueryError, LakeFileWarning

ROWS = {"AAPL": 5, "MSFT": 3, "^GSPC": 4}
REFUSED = (ForbiddenQueryError, duckdb.Error)


def _bars(symbol: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": symbol,
            "date": [date(2024, 1, 1) + timedelta(days=d) for d in range(n)],
            "close": [100.0 + d for d in range(n)],
        }
    )


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    """A lake with three raw_ohlcv partitions, a features asset, an unpartitioned context asset,
    plus files a view must not expose: a cache folder and a CSV inside an asset folder."""
    lake = ParquetLake(base_dir=str(tmp_path / "data" / "lake"))
    for symbol, n in ROWS.items():
        lake.write("raw_ohlcv", _bars(symbol, n), symbol)
        lake.write(
            "features",
            _bars(symbol, n).select("symbol", "date", ret=pl.col("close").pct_change()),
            symbol,
        )
    lake.write(
        "market_context",
        pl.DataFrame({"date": [date(2024, 1, 1), date(2024, 1, 2)], "vix": [13.2, 14.0]}),
    )
    lake.write("_walk_forward_cache", pl.DataFrame({"secret": ["cache"]}), "AAPL")
    (Path(lake.base_dir) / "raw_ohlcv" / "notes.csv").write_text("secret\nlake-note\n")
    return Path(lake.base_dir)


@pytest.fixture
def warehouse(lake_dir: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(lake_dir=str(lake_dir))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the lake, holding a Parquet file no query may read."""
    folder = tmp_path / "outside"
    folder.mkdir()
    pl.DataFrame({"secret": ["outside"]}).write_parquet(folder / "secret.parquet")
    return folder


def _snapshot(lake_dir: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(lake_dir.rglob("*")) if p.is_file()}


def _assert_lake_intact(warehouse: DuckDBWarehouse, before: dict[str, bytes]) -> None:
    assert _snapshot(Path(warehouse.lake_dir)) == before
    counts = warehouse.query("SELECT symbol, count(*) AS n FROM raw_ohlcv GROUP BY symbol")
    assert dict(counts.iter_rows()) == ROWS


# --- reading files outside the views --------------------------------------------------------


def test_read_csv_of_etc_passwd_is_refused(warehouse):
    with pytest.raises(duckdb.PermissionException):
        warehouse.query("SELECT * FROM read_csv('/etc/passwd')")


def test_read_text_of_etc_passwd_is_refused(warehouse):
    with pytest.raises(duckdb.PermissionException):
        warehouse.query("SELECT content FROM read_text('/etc/passwd')")


def test_read_blob_of_etc_passwd_is_refused(warehouse):
    with pytest.raises(duckdb.PermissionException):
        warehouse.query("SELECT content FROM read_blob('/etc/passwd')")


@pytest.mark.parametrize("pattern", ["/*", "{lake}/*", "{lake}/raw_ohlcv/*"])
def test_glob_is_refused_even_inside_the_lake(warehouse, lake_dir, pattern):
    with pytest.raises(duckdb.PermissionException):
        warehouse.query(f"SELECT * FROM glob('{pattern.format(lake=lake_dir)}')")


def test_read_parquet_outside_the_lake_is_refused(warehouse, outside):
    with pytest.raises(duckdb.PermissionException):
        warehouse.query(f"SELECT * FROM read_parquet('{outside / 'secret.parquet'}')")


def test_path_traversal_out_of_the_lake_is_refused(warehouse, lake_dir, outside):
    climbing = f"{lake_dir}/raw_ohlcv/../../../outside/secret.parquet"
    assert Path(climbing).resolve() == (outside / "secret.parquet").resolve()
    with pytest.raises(duckdb.PermissionException):
        warehouse.query(f"SELECT * FROM read_parquet('{climbing}')")
    with pytest.raises(duckdb.PermissionException):
        warehouse.query(f"SELECT * FROM read_csv('{lake_dir}/../../../../../etc/passwd')")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{lake}/raw_ohlcv/notes.csv')",
        "SELECT * FROM read_text('{lake}/raw_ohlcv/notes.csv')",
        "SELECT * FROM read_parquet('{lake}/_walk_forward_cache/AAPL.parquet')",
    ],
)
def test_lake_files_no_view_covers_are_refused(warehouse, lake_dir, sql):
    with pytest.raises(duckdb.PermissionException):
        warehouse.query(sql.format(lake=lake_dir))


def test_a_symlink_out_of_the_lake_is_not_exposed(warehouse, lake_dir, outside):
    link = lake_dir / "raw_ohlcv" / "EVIL.parquet"
    link.symlink_to(outside / "secret.parquet")
    seen: list[str] = []
    symbols = warehouse.query("SELECT DISTINCT symbol FROM raw_ohlcv", on_warning=seen.append)
    assert sorted(symbols["symbol"]) == sorted(ROWS)
    assert any(str(link) in note and "outside the lake" in note for note in seen)
    with pytest.raises(duckdb.PermissionException):
        warehouse.query(f"SELECT * FROM read_parquet('{link}')", on_warning=seen.append)


def test_python_variables_are_not_scanned(warehouse):
    secret_frame = pl.DataFrame({"secret": ["in-process"]})  # noqa: F841 (DuckDB would find it)
    with pytest.raises(duckdb.CatalogException):
        warehouse.query("SELECT * FROM secret_frame")


def test_getenv_is_refused(warehouse, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_SANDBOX_SECRET", "s3cr3t")
    with pytest.raises(duckdb.Error) as refused:
        warehouse.query("SELECT getenv('WAREHOUSE_SANDBOX_SECRET') AS v")
    assert "s3cr3t" not in str(refused.value)


# --- writing ---------------------------------------------------------------------------------


def test_copy_to_tmp_is_refused_and_writes_nothing(warehouse, tmp_path):
    target = tmp_path / "exfiltrated.csv"
    with pytest.raises(ForbiddenQueryError):
        warehouse.query(f"COPY (SELECT * FROM raw_ohlcv) TO '{target}'")
    assert not target.exists()


@pytest.mark.parametrize("options", ["FORMAT parquet", "FORMAT parquet, USE_TMP_FILE false"])
def test_copy_over_a_lake_partition_is_refused_and_keeps_every_row(warehouse, lake_dir, options):
    before = _snapshot(lake_dir)
    partition = lake_dir / "raw_ohlcv" / "AAPL.parquet"
    with pytest.raises(ForbiddenQueryError):
        warehouse.query(
            "COPY (SELECT * FROM raw_ohlcv WHERE symbol = 'AAPL' LIMIT 1) "
            f"TO '{partition}' ({options})"
        )
    assert pl.read_parquet(partition).height == ROWS["AAPL"]
    _assert_lake_intact(warehouse, before)


def test_several_statements_are_refused_and_none_runs(warehouse, tmp_path):
    target = tmp_path / "second.csv"
    with pytest.raises(ForbiddenQueryError, match="2 statements"):
        warehouse.query(f"SELECT 1; COPY (SELECT 1) TO '{target}'")
    assert not target.exists()


def test_attach_is_refused_and_creates_no_database(warehouse, tmp_path):
    target = tmp_path / "attached.duckdb"
    with pytest.raises(ForbiddenQueryError):
        warehouse.query(f"ATTACH '{target}' AS other")
    assert not target.exists()


def test_export_database_is_refused_and_writes_nothing(warehouse, tmp_path):
    target = tmp_path / "export"
    with pytest.raises(ForbiddenQueryError):
        warehouse.query(f"EXPORT DATABASE '{target}'")
    assert not target.exists()


@pytest.mark.parametrize("sql", ["INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL httpfs"])
def test_install_and_load_are_refused(warehouse, sql):
    with pytest.raises(ForbiddenQueryError):
        warehouse.query(sql)
    with warehouse.connect() as con:  # the locked configuration refuses it on its own too
        with pytest.raises(duckdb.Error):
            con.execute(sql)
        with pytest.raises(duckdb.PermissionException):  # so no remote file system either
            con.execute("SELECT * FROM read_parquet('https://example.com/x.parquet')")


@pytest.mark.parametrize(
    "sql",
    [
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET allowed_directories = ['/']",
        "PRAGMA enable_profiling",
        "SET VARIABLE leak = 1",
    ],
)
def test_configuration_changes_are_refused(warehouse, sql):
    with pytest.raises(ForbiddenQueryError):
        warehouse.query(sql)
    with pytest.raises(duckdb.PermissionException):  # and the next query is as locked as ever
        warehouse.query("SELECT * FROM read_csv('/etc/passwd')")


def test_create_table_is_refused_even_on_a_database_file(lake_dir, tmp_path):
    database = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(lake_dir=str(lake_dir), database=str(database))
    with pytest.raises(ForbiddenQueryError):
        warehouse.query("CREATE TABLE stolen AS SELECT * FROM raw_ohlcv")
    with pytest.raises(ForbiddenQueryError):
        warehouse.query("CREATE OR REPLACE VIEW raw_ohlcv AS SELECT 1 AS x")
    tables = warehouse.query("SELECT table_name FROM duckdb_tables()")
    assert tables.height == 0
    assert warehouse.query("SELECT count(*) FROM raw_ohlcv").item() == sum(ROWS.values())


def test_drop_view_is_refused_and_the_view_stays(warehouse, lake_dir):
    before = _snapshot(lake_dir)
    with pytest.raises(ForbiddenQueryError):
        warehouse.query("DROP VIEW raw_ohlcv")
    _assert_lake_intact(warehouse, before)


@pytest.mark.parametrize(
    "sql",
    [
        "CALL pragma_version()",
        "CHECKPOINT",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/explained.csv'",
        "DELETE FROM raw_ohlcv",
        "UPDATE raw_ohlcv SET close = 0",
        "CREATE MACRO leak() AS 1",
        "",
        "  ;  ",
    ],
)
def test_other_statements_are_refused(warehouse, sql):
    with pytest.raises(ForbiddenQueryError, match="one read-only SELECT"):
        warehouse.query(sql)


def test_the_refusal_names_the_views(warehouse):
    with pytest.raises(ForbiddenQueryError) as refused:
        warehouse.query("COPY (SELECT 1) TO '/tmp/x.csv'")
    message = str(refused.value)
    assert "market sql runs one read-only SELECT over the lake's views" in message
    assert "features, market_context, raw_ohlcv" in message
    assert "COPY" in message


def test_connect_alone_is_locked_too(warehouse, tmp_path):
    """The configuration layer holds without the statement check (defense in depth)."""
    target = tmp_path / "direct.csv"
    with warehouse.connect() as con:
        assert con.execute("SELECT count(*) FROM raw_ohlcv").fetchone()[0] == sum(ROWS.values())
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"COPY (SELECT 1) TO '{target}'")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error):
            con.execute("INSTALL httpfs")
    assert not target.exists()


# --- what still works ------------------------------------------------------------------------


def test_ordinary_selects_still_work(warehouse):
    joined = warehouse.query(
        "SELECT r.symbol, r.date, r.close, f.ret, c.vix FROM raw_ohlcv r "
        "JOIN features f USING (symbol, date) JOIN market_context c USING (date) "
        "WHERE r.symbol = 'AAPL' ORDER BY r.date"
    )
    assert joined.height == 2 and joined["vix"].to_list() == [13.2, 14.0]
    aggregate = warehouse.query(
        "SELECT symbol, count(*) AS n, max(close) AS top FROM raw_ohlcv "
        "GROUP BY symbol HAVING count(*) > 3 ORDER BY symbol"
    )
    assert aggregate.to_dicts() == [
        {"symbol": "AAPL", "n": 5, "top": 104.0},
        {"symbol": "^GSPC", "n": 4, "top": 103.0},
    ]
    cte = warehouse.query(
        "WITH last AS (SELECT symbol, max(date) AS d FROM raw_ohlcv GROUP BY symbol) "
        "SELECT count(*) FROM last WHERE d >= DATE '2024-01-04'"
    )
    assert cte.item() == 2
    window = warehouse.query(
        "SELECT symbol, date, close - lag(close) OVER (PARTITION BY symbol ORDER BY date) AS d "
        "FROM raw_ohlcv QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY date) = 2 "
        "ORDER BY symbol"
    )
    assert window["d"].to_list() == [1.0, 1.0, 1.0]
    assert warehouse.query("SELECT count(*) FROM raw_ohlcv WHERE close > ?", [102.0]).item() == 3
    assert "close" in warehouse.query("DESCRIBE raw_ohlcv")["column_name"].to_list()
    assert warehouse.query("FROM market_context SELECT max(vix)").item() == 14.0
    assert warehouse.query("SELECT 1 AS one;").item() == 1


# --- corrupt files ---------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_partition_is_left_out_with_a_warning(warehouse, lake_dir):
    broken = lake_dir / "raw_ohlcv" / "MSFT.parquet"
    _truncate(broken)
    seen: list[str] = []
    counts = warehouse.query(
        "SELECT symbol, count(*) AS n FROM raw_ohlcv GROUP BY symbol", on_warning=seen.append
    )
    assert dict(counts.iter_rows()) == {"AAPL": 5, "^GSPC": 4}
    (note,) = seen
    assert str(broken) in note and "symbol MSFT" in note and "raw_ohlcv" in note
    assert "re-materialize that symbol" in note and "raw landing" in note
    # the other views are untouched, and the broken file cannot be read directly either
    assert warehouse.query("SELECT count(*) FROM features", on_warning=seen.append).item() == 12
    with pytest.raises(duckdb.PermissionException):
        warehouse.query(f"SELECT * FROM read_parquet('{broken}')", on_warning=seen.append)


def test_a_corrupt_index_partition_names_its_symbol(warehouse, lake_dir):
    broken = lake_dir / "features" / "GSPC.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.warns(LakeFileWarning, match=r"symbol \^GSPC"):
        assert warehouse.query("SELECT count(DISTINCT symbol) FROM features").item() == 2


def test_an_asset_with_no_readable_file_gets_no_view(warehouse, lake_dir):
    _truncate(lake_dir / "market_context.parquet")
    seen: list[str] = []
    with warehouse.connect(on_warning=seen.append) as con:
        views = {v for (v,) in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert "market_context" not in views and {"raw_ohlcv", "features"} <= views
    assert any("no market_context view" in note for note in seen)
    assert any(str(lake_dir / "market_context.parquet") in note for note in seen)


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_env(lake_dir, monkeypatch) -> Path:
    monkeypatch.setenv("MARKET_DATA_DIR", str(lake_dir.parent))
    return lake_dir


def test_cli_refuses_a_copy_with_exit_code_2(cli_env, tmp_path, capsys):
    target = tmp_path / "cli.csv"
    assert main(["sql", f"COPY (SELECT * FROM raw_ohlcv) TO '{target}'"]) == 2
    captured = capsys.readouterr()
    assert "error: market sql runs one read-only SELECT" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not target.exists()


def test_cli_reports_a_sql_error_in_one_line(cli_env, capsys):
    assert main(["sql", "SELECT * FROM no_such_view"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no_such_view" in err


def test_cli_warns_about_a_corrupt_file_and_still_answers(cli_env, capsys):
    broken = cli_env / "raw_ohlcv" / "AAPL.parquet"
    _truncate(broken)
    assert main(["sql", "SELECT count(*) AS n FROM raw_ohlcv"]) == 0
    captured = capsys.readouterr()
    assert f"warning: raw_ohlcv: left out {broken} (symbol AAPL)" in captured.err
    assert str(ROWS["MSFT"] + ROWS["^GSPC"]) in captured.out


def test_market_console_script_refuses_a_copy(cli_env, tmp_path):
    script = Path(sys.executable).with_name("market")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]
    target = tmp_path / "script.csv"
    env = {**os.environ, "MARKET_DATA_DIR": str(cli_env.parent)}
    done = subprocess.run(
        [*command, "sql", f"COPY (SELECT 1) TO '{target}'"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert "read-only SELECT" in done.stderr and "Traceback" not in done.stderr
    assert not target.exists()
