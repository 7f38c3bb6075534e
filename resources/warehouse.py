"""The DuckDB warehouse: read-only SQL over the lake, in a sandbox.

Views, not tables: each lake asset becomes a view over its Parquet files, so the warehouse
always sees the latest materializations and no asset ever writes into a shared DuckDB file
(DuckDB allows a single writer process; parallel steps would fight over its lock).

What the sandbox guarantees to :meth:`DuckDBWarehouse.query` (what ``market sql`` runs), with two
independent layers:

1. **Statement allow-list.** DuckDB's own parser splits the text; exactly one statement of type
   ``SELECT`` runs (``WITH`` CTEs, ``FROM``-first queries, ``UNION``, window functions,
   ``DESCRIBE``/``SUMMARIZE``/``SHOW`` parse as ``SELECT``). Anything else (``COPY``, ``ATTACH``,
   ``INSTALL``/``LOAD``, ``SET``/``RESET``/``PRAGMA``, ``CREATE``/``DROP``/``ALTER``,
   ``INSERT``/``UPDATE``/``DELETE``, ``EXPORT DATABASE``, ``CALL``, ``EXPLAIN`` (``EXPLAIN
   ANALYZE`` would run its statement), a second statement after ``;``) raises
   :class:`ForbiddenQueryError` before anything is executed.
2. **Locked configuration** (:func:`lock_down`, applied after the views are registered):
   ``enable_external_access=false`` with ``allowed_paths`` = exactly the readable Parquet files
   behind the views (resolved, inside the lake) and no ``allowed_directories``;
   ``temp_directory=''`` (DuckDB otherwise lets queries at its temp directory);
   ``autoinstall_known_extensions=false``, ``autoload_known_extensions=false``;
   ``python_enable_replacements=false`` (no scanning of the caller's Python variables);
   ``lock_configuration=true`` (no ``SET``/``RESET``/``PRAGMA`` can undo any of it). So even a
   ``SELECT`` reads no other file: not ``read_csv``/``read_text``/``read_blob``/``read_parquet``/
   ``glob`` of ``/etc/passwd``, of a path that climbs out with ``..``, nor of files inside the lake
   that no view covers; no network, no extensions, and ``getenv`` does not exist.

Both layers are needed: ``allowed_paths`` does not tell reads from writes, and
``COPY ... TO '<lake>/raw_ohlcv/AAPL.parquet' (FORMAT parquet, USE_TMP_FILE false)`` passes the
locked configuration and truncates that partition; only the statement check stops it.

**Corrupt files.** Before the views are created every Parquet file's footer is checked (``PAR1``
magic at both ends, a footer length that fits, a footer pyarrow can parse: microseconds a file).
A bad file is left out of its view, with a warning naming the asset, the path, the symbol and the
fix; the other partitions stay queryable. An asset with no readable file gets no view (and a
warning). Files that are symlinks pointing outside the lake are left out the same way.

Not guaranteed: resource limits (a huge cross join still costs memory and CPU), and a file whose
footer is sound but whose data pages are damaged still fails at query time (DuckDB names the
file). :meth:`DuckDBWarehouse.connect` hands trusted code the locked connection (layer 2) without
the statement check. ``register_lake_views`` on its own (``market warehouse``: the user's own
DuckDB file for the ``duckdb`` CLI) creates the same views, corrupt files left out, but does not
lock that connection.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq

PARQUET_MAGIC = b"PAR1"

WarningHandler = Callable[[str], None]


class ForbiddenQueryError(ValueError):
    """The SQL handed to the sandbox is not a single read-only SELECT."""


class LakeFileWarning(UserWarning):
    """A lake file was left out of its view (corrupt, truncated, or pointing outside the lake)."""


@dataclass(frozen=True)
class LakeScan:
    """What the views will cover: ``{view: (readable files...)}`` plus a warning per bad file."""

    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    patterns: dict[str, str] = field(default_factory=dict)
    clean: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()

    @property
    def views(self) -> list[str]:
        return list(self.files)

    @property
    def readable_files(self) -> list[str]:
        return [path for paths in self.files.values() for path in paths]


def _lake_entries(lake_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(view_name, entry)`` for every asset folder or single-file asset in the lake."""
    if not lake_dir.exists():
        return
    for entry in sorted(lake_dir.iterdir()):
        name = entry.stem if entry.is_file() else entry.name
        if not name.isidentifier() or name.startswith("_"):
            continue
        folder = entry.is_dir() and any(entry.glob("*.parquet"))
        if folder or (entry.is_file() and entry.suffix == ".parquet"):
            yield name, entry


def lake_views(lake_dir: Path) -> dict[str, str]:
    """``{view_name: parquet_glob}`` for every asset in the lake."""
    return {
        name: str(entry.resolve() / "*.parquet") if entry.is_dir() else str(entry.resolve())
        for name, entry in _lake_entries(lake_dir)
    }


def parquet_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable Parquet file, or None: a cheap check of its footer only."""
    try:
        size = path.stat().st_size
        if size < 12:
            return f"only {size} bytes, too small to be a Parquet file (truncated)"
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(size - 8)
            tail = handle.read(8)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if head != PARQUET_MAGIC:
        return "does not start with the Parquet magic PAR1 (not a Parquet file)"
    if tail[4:] != PARQUET_MAGIC:
        return "does not end with the Parquet magic PAR1 (truncated or still being written)"
    if int.from_bytes(tail[:4], "little") > size - 12:
        return "its footer is longer than the file (truncated)"
    try:
        pq.read_metadata(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged footer
        return f"its footer cannot be parsed ({str(exc).splitlines()[0]})"
    return None


class _SymbolNames:
    """File slug → symbol (``GSPC`` → ``^GSPC``) through the universe, the slug where unknown."""

    def __init__(self) -> None:
        self._by_slug: dict[str, str] | None = None

    def __call__(self, slug: str) -> str:
        if self._by_slug is None:
            try:
                from quant.universe import load_universe

                self._by_slug = {inst.slug: inst.symbol for inst in load_universe().instruments}
            except Exception:  # no or a broken universe file: the slug is the best name left
                self._by_slug = {}
        return self._by_slug.get(slug, slug)


def scan_lake(lake_dir: Path) -> LakeScan:
    """Every asset's readable Parquet files, each checked with :func:`parquet_problem`."""
    lake_dir = Path(lake_dir)
    if not lake_dir.exists():
        return LakeScan()
    root = lake_dir.resolve()
    symbol_of = _SymbolNames()
    files: dict[str, tuple[str, ...]] = {}
    patterns: dict[str, str] = {}
    clean: set[str] = set()
    notes: list[str] = []
    for name, entry in _lake_entries(lake_dir):
        partitioned = entry.is_dir()
        candidates = sorted(entry.glob("*.parquet")) if partitioned else [entry]
        good: list[str] = []
        for path in candidates:
            if path.name.startswith("."):
                continue
            real = path.resolve()
            if not real.is_relative_to(root):
                problem = f"is a link to {real}, outside the lake {root}"
            elif not real.is_file():
                problem = "is not a regular file"
            else:
                problem = parquet_problem(real)
            if problem is None:
                good.append(str(real))
                continue
            if partitioned:
                symbol = symbol_of(path.stem)
                where = f"{path} (symbol {symbol})"
                fix = (
                    f"re-materialize that symbol (market materialize --symbols {symbol}), "
                    "or restore it from the raw landing"
                )
            else:
                where, fix = str(path), "re-materialize that asset (market materialize)"
            notes.append(f"{name}: left out {where}: {problem}; {fix}")
        if not good:
            notes.append(f"{name}: no readable Parquet file, so there is no {name} view")
            continue
        files[name] = tuple(good)
        patterns[name] = str(entry.resolve() / "*.parquet") if partitioned else good[0]
        if len(good) == len(candidates):
            clean.add(name)
    return LakeScan(files, patterns, frozenset(clean), tuple(notes))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _emit(on_warning: WarningHandler | None, scan: LakeScan, stacklevel: int) -> None:
    for note in scan.warnings:
        if on_warning is None:
            warnings.warn(note, LakeFileWarning, stacklevel=stacklevel + 1)
        else:
            on_warning(note)


def _create_views(con: duckdb.DuckDBPyConnection, scan: LakeScan, *, pin_files: bool) -> None:
    for name, paths in scan.files.items():
        if pin_files or name not in scan.clean:
            source = "[" + ", ".join(_literal(p) for p in paths) + "]"
        else:  # a clean asset keeps its glob: partitions written later show up in a saved file
            source = _literal(scan.patterns[name])
        con.execute(
            f'CREATE OR REPLACE VIEW "{name}" AS '
            f"SELECT * FROM read_parquet({source}, union_by_name = true)"
        )


def register_lake_views(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    *,
    on_warning: WarningHandler | None = None,
    pin_files: bool = False,
) -> list[str]:
    """Create (or replace) one view per lake asset on ``con``; returns the view names.

    Corrupt files are left out of their view and reported through ``on_warning`` (default: a
    :class:`LakeFileWarning`). A view over a clean folder reads its glob, unless ``pin_files``
    (the sandbox pins the exact files it allows).
    """
    scan = scan_lake(Path(lake_dir))
    _emit(on_warning, scan, stacklevel=2)  # the caller of register_lake_views
    _create_views(con, scan, pin_files=pin_files)
    return scan.views


_LOCKDOWN_CHECK = {
    "enable_external_access": "false",
    "lock_configuration": "true",
    "allowed_directories": "[]",
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "python_enable_replacements": "false",
}


def lock_down(con: duckdb.DuckDBPyConnection, readable_files: list[str]) -> None:
    """Lock ``con`` so it can read ``readable_files`` and nothing else, for good."""
    paths = ", ".join(_literal(p) for p in readable_files)
    for setting in (
        "SET temp_directory = ''",  # else DuckDB allows its temp directory (./.tmp) for any use
        f"SET allowed_paths = [{paths}]::VARCHAR[]",
        "SET allowed_directories = []::VARCHAR[]",
        "SET python_enable_replacements = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(setting)
    names = ", ".join(_literal(n) for n in _LOCKDOWN_CHECK)
    found = dict(
        con.execute(f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})").fetchall()
    )
    wrong = {k: found.get(k) for k, v in _LOCKDOWN_CHECK.items() if found.get(k) != v}
    if wrong:  # a DuckDB upgrade changed a setting's meaning: refuse rather than run unlocked
        raise RuntimeError(f"the DuckDB sandbox did not lock: {wrong}")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str, views: list[str]) -> object:
    """The one SELECT statement in ``sql`` (DuckDB's parser), or :class:`ForbiddenQueryError`."""
    statements = con.extract_statements(sql)
    if len(statements) == 1 and statements[0].type == duckdb.StatementType.SELECT:
        return statements[0]
    if not statements:
        got = "no statement"
    elif len(statements) == 1:
        got = f"a {statements[0].type.name} statement"
    else:
        kinds = ", ".join(s.type.name for s in statements)
        got = f"{len(statements)} statements ({kinds})"
    raise ForbiddenQueryError(
        "market sql runs one read-only SELECT over the lake's views: "
        f"{', '.join(views) or '(none: the lake is empty)'}; got {got}. "
        "WITH, DESCRIBE and SUMMARIZE are fine; COPY, ATTACH, INSTALL/LOAD, SET, PRAGMA, "
        "CREATE, DROP, EXPORT, CALL, EXPLAIN and a second statement after ';' are refused"
    )


class DuckDBWarehouse(dg.ConfigurableResource):
    """Opens sandboxed DuckDB connections with the lake registered as views.

    ``database`` defaults to an in-memory database; point it at a file to keep the views for the
    ``duckdb`` CLI (``make warehouse`` does that).
    """

    lake_dir: str
    database: str = ":memory:"

    @contextmanager
    def _open(
        self, on_warning: WarningHandler | None, stacklevel: int
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[str]]]:
        scan = scan_lake(Path(self.lake_dir))
        _emit(on_warning, scan, stacklevel=stacklevel)
        con = duckdb.connect(
            self.database,
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        try:
            _create_views(con, scan, pin_files=True)  # views first: they bind while files open
            lock_down(con, scan.readable_files)
            yield con, scan.views
        finally:
            con.close()

    @contextmanager
    def connect(
        self, on_warning: WarningHandler | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A locked connection (no file but the lake's, no config changes) for trusted SQL."""
        with self._open(on_warning, stacklevel=5) as (con, _views):  # contextlib frames twice
            yield con

    def query(
        self,
        sql: str,
        params: list | None = None,
        *,
        on_warning: WarningHandler | None = None,
    ) -> pl.DataFrame:
        """Run one read-only SELECT and return a polars DataFrame.

        Raises :class:`ForbiddenQueryError` for anything else; warnings about left-out files go
        to ``on_warning`` (default: :class:`LakeFileWarning`) before the query runs.
        """
        with self._open(on_warning, stacklevel=4) as (con, views):
            statement = check_read_only(con, sql, views)
            return con.sql(statement, params=params).pl()
