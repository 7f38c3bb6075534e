"""``market``: the pipeline from a terminal, for people who don't open the web UI.

    market materialize [--symbols AAPL ^GSPC] [--job pipeline]   one run over all symbols
    market summary                                              what the lake holds
    market sql "SELECT ..."                                     DuckDB over the lake
    market warehouse [PATH]                                     write a DuckDB file of views

Runs go to the Dagster instance in $DAGSTER_HOME, so they show up in `make ui`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from resources import settings

settings.disable_telemetry()

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


def _pipeline_job():
    from pipelines.definitions import defs

    return defs.resolve_job_def("pipeline")


def _ingest_job():
    from pipelines.definitions import defs

    return defs.resolve_job_def("ingest")


JOB_FACTORIES = {"pipeline": _pipeline_job, "ingest": _ingest_job}


def materialize(symbols: list[str] | None, job_name: str = "pipeline", in_process: bool = True):
    """Launch ONE run of ``job_name`` over ``symbols`` (default: the whole universe).

    The run covers the symbols as a partition range, which single-run assets execute in one step.
    Returns the Dagster execution result.
    """
    import dagster as dg

    from assets.partitions import UNIVERSE

    keys = UNIVERSE.symbols
    chosen = keys if not symbols else [UNIVERSE.get(s).symbol for s in symbols]
    positions = sorted(keys.index(s) for s in chosen)
    if positions != list(range(positions[0], positions[-1] + 1)):
        raise SystemExit(
            f"symbols {chosen} are not contiguous in the universe order; one run covers a range "
            "(launch several runs, or use the UI's partition picker)"
        )
    tags = {PARTITION_RANGE_START: keys[positions[0]], PARTITION_RANGE_END: keys[positions[-1]]}
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if in_process:
        run_config["execution"] = {"config": {"in_process": {}}}
    instance = dg.DagsterInstance.get()
    return dg.execute_job(
        dg.reconstructable(JOB_FACTORIES[job_name]),
        instance=instance,
        tags=tags,
        run_config=run_config,
        raise_on_error=False,
    )


def lake_summary():
    """Per-symbol rows and date range of raw_ohlcv, straight from the lake through DuckDB."""
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(lake_dir=str(settings.lake_dir()))
    return warehouse.query(
        "SELECT symbol, count(*) AS rows, min(date) AS first_date, max(date) AS last_date "
        "FROM raw_ohlcv GROUP BY symbol ORDER BY symbol"
    )


def _cmd_materialize(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    result = materialize(args.symbols, args.job, in_process=not args.multiprocess)
    elapsed = time.perf_counter() - started
    if not result.success:
        failures = [e for e in result.all_events if e.is_failure]
        for event in failures:
            print(event.message, file=sys.stderr)
        print(f"run {result.run_id} FAILED after {elapsed:.1f}s", file=sys.stderr)
        return 1
    summary = lake_summary()
    print(summary.to_pandas().to_string(index=False))
    print(
        f"\nrun {result.run_id}: {summary.height} symbols, {summary['rows'].sum():,} rows, "
        f"{summary['first_date'].min()} .. {summary['last_date'].max()}, in {elapsed:.1f}s"
    )
    print(f"lake: {settings.lake_dir()}   raw landing: {settings.raw_dir()}")
    print("next: `make ui` and open http://127.0.0.1:3000 (Assets → raw_ohlcv), or")
    print('      `.venv/bin/market sql "SELECT * FROM raw_ohlcv LIMIT 5"`')
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    try:
        print(lake_summary().to_pandas().to_string(index=False))
    except Exception as exc:  # duckdb says "Table ... does not exist" before the first run
        print(f"nothing to summarize yet ({exc}); run `make run` first", file=sys.stderr)
        return 1
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(lake_dir=str(settings.lake_dir()))
    print(warehouse.query(args.query).to_pandas().to_string(index=False))
    return 0


def _cmd_warehouse(args: argparse.Namespace) -> int:
    import duckdb

    from resources.warehouse import register_lake_views

    path = Path(args.path or settings.data_dir() / "warehouse.duckdb")
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        views = register_lake_views(con, settings.lake_dir())
    print(f"{path}: views {', '.join(views) or '(none: the lake is empty)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="market", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("materialize", help="run the pipeline over the universe in one run")
    p.add_argument("--symbols", nargs="*", help="a contiguous subset of the universe")
    p.add_argument("--job", choices=sorted(JOB_FACTORIES), default="pipeline")
    p.add_argument("--multiprocess", action="store_true", help="one process per step (as the UI)")
    p.set_defaults(func=_cmd_materialize)
    sub.add_parser("summary", help="rows and dates per symbol in the lake").set_defaults(
        func=_cmd_summary
    )
    p = sub.add_parser("sql", help="run a DuckDB query over the lake views")
    p.add_argument("query")
    p.set_defaults(func=_cmd_sql)
    p = sub.add_parser("warehouse", help="write a DuckDB file holding views over the lake")
    p.add_argument("path", nargs="?")
    p.set_defaults(func=_cmd_warehouse)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
