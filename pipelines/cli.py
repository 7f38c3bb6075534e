"""``market``: the pipeline from a terminal, for people who don't open the web UI.

    market materialize [--symbols AAPL MSFT] [--no-train]   ingest, validate, features, models
    market nightly [--as-of 2020-04-15]                      the nightly run (what the schedule does)
    market replay --from 2024-07-01 --to 2024-12-31          nightly + drift sensor over history
    market walk-forward [--all]                              the walk-forward record
    market predict AAPL [MSFT ...]                           today's signal per symbol
    market report                                            test metrics beside baselines
    market backtest                                          the signals' backtest vs benchmarks
    market summary                                              what the lake holds
    market sql "SELECT ..."                                     DuckDB over the lake
    market warehouse [PATH]                                     write a DuckDB file of views
    market serve [--host 127.0.0.1] [--port 8000]               the HTTP API (docs/SERVING.md)
    market restore SYMBOL [...]                                 rewrite raw_ohlcv from the raw landing
    market gc [--keep 5] [--days 90] [--dry-run]                retention: versions, landing receipts
    market backup DIR                                           copies of the SQLite stores
    market halt [--reason TEXT]                                 serve HOLD everywhere until resumed
    market resume                                               lift the halt
    market champion list                                        champion, challenger, pin per model
    market champion pin MODEL [VERSION] [--reason TEXT]         make VERSION champion and keep it
    market champion unpin MODEL                                 let promotion replace it again
    market champion rollback MODEL [VERSION] [--reason TEXT]    back to the previous champion
    market champion audit                                       every operator action, oldest first

Operator commands take --user (default: the login name); each one is audited in
<data>/control/audit.jsonl.

Runs go to the Dagster instance in $DAGSTER_HOME, so they show up in `make ui`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from resources import settings

settings.disable_telemetry()


SUMMARY_COUNTS = {
    "ohlcv": "ohlcv_rows",
    "ohlcv_quarantine": "quarantined",
    "features": "feature_rows",
    "market_context": "context_rows",
}


def freshness_context():
    """The configured source's run date and staleness threshold (MarketData of the local
    deployment, from the environment)."""
    from assets.partitions import UNIVERSE
    from resources import build_resources

    market_data = build_resources()["market_data"]
    return market_data.run_date(UNIVERSE), market_data.max_sessions_behind


def summary_freshness(ohlcv_last):
    """``sessions_behind`` and ``stale`` per symbol of ``ohlcv_last`` (symbol, data_date: the
    last validated bar) against the configured run date, on each symbol's exchange calendar."""
    import polars as pl

    from assets.partitions import UNIVERSE
    from quant.freshness import freshness

    run_date, threshold = freshness_context()
    calendars = {i.symbol: i.calendar for i in UNIVERSE.instruments}
    known = ohlcv_last.filter(pl.col("symbol").is_in(list(calendars)))
    return freshness(known, calendars, run_date, threshold).select(
        "symbol", "sessions_behind", "stale"
    )


def lake_summary():
    """Per symbol: raw, validated and quarantined rows, the date range, and how many sessions of
    its exchange calendar the last validated bar is behind the run date (``stale`` beyond the
    threshold; quant/freshness.py). DuckDB over the lake."""
    import polars as pl

    from resources.warehouse import DuckDBWarehouse

    with DuckDBWarehouse(lake_dir=str(settings.lake_dir())).connect() as con:
        summary = con.sql(
            "SELECT symbol, count(*) AS raw_rows, min(date) AS first_date, max(date) AS last_date "
            "FROM raw_ohlcv GROUP BY symbol"
        ).pl()
        views = {
            v
            for (v,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        for view, column in SUMMARY_COUNTS.items():
            if view in views:
                counts = con.sql(
                    f"SELECT symbol, count(*) AS {column} FROM {view} GROUP BY symbol"
                ).pl()
                summary = summary.join(counts, on="symbol", how="left").with_columns(
                    pl.col(column).fill_null(0)
                )
        fresh = []
        if "ohlcv" in views:
            last = con.sql("SELECT symbol, max(date) AS data_date FROM ohlcv GROUP BY symbol").pl()
            summary = summary.join(summary_freshness(last), on="symbol", how="left")
            fresh = ["sessions_behind", "stale"]
    counted = [c for c in SUMMARY_COUNTS.values() if c in summary.columns]
    columns = ["symbol", "raw_rows", *counted, "first_date", "last_date", *fresh]
    return summary.select(columns).sort("symbol")


def _cmd_materialize(args: argparse.Namespace) -> int:
    from pipelines.runner import failure_messages, run_pipeline

    if args.symbols and len(set(args.symbols)) != len(args.symbols):
        repeated = sorted({s for s in args.symbols if args.symbols.count(s) > 1})
        print(f"error: --symbols lists {repeated} more than once", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        outcome = run_pipeline(
            args.symbols, train=not args.no_train, replace_history=args.replace_history
        )
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    if not outcome.ingest.success:
        for message in failure_messages(outcome.ingest):
            print(message, file=sys.stderr)
        print(f"ingestion run {outcome.ingest.run_id} FAILED after {elapsed:.1f}s", file=sys.stderr)
        return 1
    summary = lake_summary()
    print(summary.to_pandas().to_string(index=False))
    print(
        f"\ningestion run {outcome.ingest.run_id}: {summary.height} symbols, "
        f"{summary['raw_rows'].sum():,} rows, {summary['first_date'].min()} .. "
        f"{summary['last_date'].max()}; {len(outcome.validations)} symbols validated "
        f"({len({r.run_id for r in outcome.validations.values()})} run(s)); {elapsed:.1f}s in all"
    )
    for run in outcome.features:
        print(f"features run {run.run_id}: {'ok' if run.success else 'FAILED'}")
    if outcome.context is not None:
        print(
            f"market_context run {outcome.context.run_id}: {'ok' if outcome.context.success else 'FAILED'}"
        )
    else:
        print("market_context skipped: not every symbol of the universe has validated bars")
    for label, run in (
        ("labels", outcome.labels),
        ("sweep + retrain", outcome.retrain),
        ("monitor", outcome.monitor),
    ):
        if run is not None:
            print(f"{label} run {run.run_id}: {'ok' if run.success else 'FAILED'}")
    if outcome.retrain is not None and outcome.retrain.success:
        print_model_report()
        print_signals(read_asset("signals"))
    if outcome.monitor is not None and outcome.monitor.success:
        _print_monitoring(outcome.monitor)
    for symbol, problems in outcome.not_ingested.items():
        print(f"NOT INGESTED {symbol} (its stored partition is kept):", file=sys.stderr)
        for message in problems:
            print(f"  {message}", file=sys.stderr)
    if outcome.blocked:
        failed_runs: dict[str, tuple[str, ...]] = {}
        for symbol in outcome.blocked:
            verdict = outcome.validations[symbol]
            if not verdict.refused:  # the run failed before judging it: say why, once
                failed_runs.setdefault(verdict.run_id, verdict.problems)
                continue
            print(f"BLOCKED {symbol}:", file=sys.stderr)
            for message in verdict.problems:
                print(f"  {message}", file=sys.stderr)
        for run_id, problems in failed_runs.items():
            print(f"FAILED validate run {run_id} (no symbol judged):", file=sys.stderr)
            for message in problems:
                print(f"  {message}", file=sys.stderr)
        return 1
    if outcome.not_ingested:
        return 1
    if outcome.downstream_failures:
        for run in outcome.downstream_failures:
            print(f"FAILED run {run.run_id} ({run.dagster_run.job_name}):", file=sys.stderr)
            for message in failure_messages(run):
                print(f"  {message}", file=sys.stderr)
        return 1
    print(f"lake: {settings.lake_dir()}   raw landing: {settings.raw_dir()}")
    print("next: `make ui` and open http://127.0.0.1:3000 (Assets → raw_ohlcv), or")
    print('      `.venv/bin/market sql "SELECT * FROM raw_ohlcv LIMIT 5"`')
    return 0


HEADLINE_METRICS = ["accuracy", "balanced_accuracy", "log_loss", "rank_ic", "qlike", "mz_r2"]


class MissingMaterialization(RuntimeError):
    """An asset the command reads has not been materialized yet."""


def read_asset(name: str):
    """The stored frame of an unpartitioned asset, or a clear error saying how to make it."""
    import polars as pl

    path = settings.lake_dir() / f"{name}.parquet"
    if not path.exists():
        raise MissingMaterialization(
            f"`{name}` has not been materialized in {settings.lake_dir()}; run `make run` "
            "(or the `retrain` job) first"
        )
    return pl.read_parquet(path)


def print_model_report() -> None:
    """The out-of-sample headline: the walk-forward record per year and overall (each model
    beside its baseline, with the gap's p-value), then the latest models on one window (rolling
    mode: the validation window, scored by the selection models; fixed mode: the test split)."""
    import polars as pl

    report = read_asset("model_report")
    if report.is_empty():
        print("model_report holds no scores (too few test rows when it last ran)")
        return
    if "scope" not in report.columns:  # written before the walk-forward record joined it
        report = report.with_columns(
            pl.lit("latest_window").alias("scope"), pl.lit("all").alias("period")
        )
    original = report
    report = report.with_columns(
        pl.when(pl.col("source") == pl.col("model"))
        .then(pl.lit("score"))
        .otherwise(pl.col("source"))
        .alias("source")
    )
    with pl.Config(
        tbl_rows=200,
        tbl_cols=12,
        fmt_str_lengths=30,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=200,
        float_precision=4,
    ):
        _print_scoreboard(original)
        record = report.filter(pl.col("scope") == "walk_forward")
        if not record.is_empty():
            print(
                "\nwalk-forward record (refit every step sessions on earlier labels only): each "
                "model's score beside its baseline; p = one-sided paired test that it is better"
            )
            extras = ["p_value_vs_baseline", "rank_ic"]
            keys = ["model", "period"]
            own = pl.col("source") == "score"
            score = record.filter(own & ~pl.col("metric").is_in(extras)).select(
                *keys, "metric", pl.col("value").alias("score")
            )
            base = record.filter(~own).select(
                *keys, pl.col("source").alias("baseline"), pl.col("value").alias("baseline_score")
            )
            tests = record.filter(pl.col("metric").is_in(extras)).pivot(
                on="metric", index=keys, values="value"
            )
            table = score.join(base, on=keys).join(tests, on=keys, how="left")
            print(table.sort("model", pl.col("period") == "all", "period"))
        headline = report.filter(
            (pl.col("scope") == "latest_window") & pl.col("metric").is_in(HEADLINE_METRICS)
        )
        for (family,), rows in headline.group_by("family", maintain_order=True):
            print(
                f"\n{family}: latest models, out of sample (validation window, selection "
                "models), each model's score beside its baselines"
            )
            print(rows.pivot(on="source", index=["model", "metric"], values="value"))


def _print_scoreboard(report) -> None:
    """The honest scoreboard first: cross-sectional IC over the equities, then every model
    beside the per-symbol baselines with raw and Holm-adjusted p-values, per group."""
    import polars as pl

    board = report.filter(pl.col("scope") == "scoreboard")
    if board.is_empty() or "group" not in board.columns:
        return
    ic = board.filter(pl.col("metric").str.contains(r"^(IC|ICIR|Rank IC|Rank ICIR|Rank IC t) "))
    ic = ic.filter(~pl.col("metric").str.contains(":") & (pl.col("source") == pl.col("model")))
    if not ic.is_empty():
        print(
            "scoreboard: cross-sectional IC per date over the equities of P(up) - P(down) "
            "with the forward return (qlib's form; t: Newey-West)"
        )
        split = ic.with_columns(
            pl.col("metric").str.extract(r"^(.*) (\d+d)$", 1).alias("measure"),
            pl.col("metric").str.extract(r" (\d+d)$", 1).alias("horizon"),
        )
        print(split.pivot(on="measure", index=["model", "horizon"], values="value"))
    scored = board.filter(pl.col("metric").str.contains(":p_holm_vs_"))
    rows = []
    for row in scored.iter_rows(named=True):
        metric, rest = row["metric"].split(":p_holm_vs_")
        key = (pl.col("model") == row["model"]) & (pl.col("group") == row["group"])
        mine = board.filter(key)

        def value(source: str, name: str, mine=mine) -> float | None:
            found = mine.filter((pl.col("source") == source) & (pl.col("metric") == name))
            return found["value"][0] if found.height else None

        rows.append(
            {
                "group": row["group"],
                "model": row["model"],
                "metric": metric,
                "baseline": rest,
                "score": value(row["model"], metric),
                "baseline_score": value(rest, metric) if rest != "zero" else 0.0,
                "p_raw": value(row["model"], f"{metric}:p_raw_vs_{rest}"),
                "p_holm": row["value"],
            }
        )
    if rows:
        table = pl.DataFrame(rows, infer_schema_length=None)
        print(
            "\nscoreboard: each model per symbol, averaged within its group, beside the "
            "baselines a sceptic would pick; p one-sided (model better), Holm over the board"
        )
        print(table.sort(pl.col("group") != "equities", "group", "model", "metric", "baseline"))


def _print_monitoring(result) -> None:
    from pipelines.replay import monitoring_summary

    share, decayed = monitoring_summary(result)
    print(f"feature_drift: drift share {share if share is None else round(share, 3)}")
    print(f"model_health: {'DECAYED' if decayed else 'ok' if decayed is not None else 'n/a'}")


def _cmd_nightly(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipelines.runner import failure_messages, run_nightly

    drift = {
        "reference_start": args.reference_start,
        "reference_end": args.reference_end,
        "current_end": args.drift_end or args.as_of,
    }
    started = time.perf_counter()
    result = run_nightly(dg.DagsterInstance.get(), as_of=args.as_of, drift=drift)
    status = "ok" if result.success else "FAILED"
    print(f"nightly run {result.run_id}: {status} in {time.perf_counter() - started:.1f}s")
    if not result.success:
        for message in failure_messages(result):
            print(f"  {message}", file=sys.stderr)
        return 1
    _print_monitoring(result)
    return 0


def _cmd_walk_forward(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipelines import runner
    from quant.walk_forward import ALL_FAMILIES, FAST_FAMILIES

    config: dict[str, object] = {"models": list(ALL_FAMILIES if args.all else FAST_FAMILIES)}
    if args.step:
        config["step"] = args.step
    run_config = {**runner.RUN_CONFIG, "ops": {"walk_forward": {"config": config}}}
    started = time.perf_counter()
    result = runner.execute(runner.walk_forward_job, {}, dg.DagsterInstance.get(), run_config)
    elapsed = time.perf_counter() - started
    if not result.success:
        print(f"walk_forward run {result.run_id} FAILED after {elapsed:.0f}s", file=sys.stderr)
        for message in runner.failure_messages(result):
            print(f"  {message}", file=sys.stderr)
        return 1
    (event,) = result.asset_materializations_for_node("walk_forward")
    meta = event.metadata
    print(f"walk_forward run {result.run_id}: ok in {elapsed:.0f}s")
    print(
        f"record {meta['first_date'].value} .. {meta['last_date'].value} "
        f"({meta['years_covered'].value} years), {meta['refits'].value} refits "
        f"({meta['refits_computed'].value} computed, {meta['refits_from_cache'].value} cached); "
        f"seconds per model {meta['seconds_per_model'].value}"
    )
    print(meta["yearly_scores"].value)
    print(meta["verdict"].value)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from datetime import date

    from pipelines.replay import ReplayLog, replay, replay_table

    def echo(step) -> None:
        share = "-" if step.drift_share is None else f"{step.drift_share:.3f}"
        launched = ", ".join(step.launched)
        decided = ", ".join(
            f"{d['model']} v{d['challenger']} {d['status']}" for d in step.decisions
        )
        print(
            f"{step.as_of}  nightly {'ok' if step.nightly_ok else 'FAILED'}  drift {share}  "
            f"decayed {step.decayed}  {step.sensor}  {launched}  "
            f"window {step.windows.get('train_end', '-')}/{step.windows.get('validation_end', '-')}"
            f"  shadow: {decided or '-'}  ({step.seconds:.0f}s)",
            flush=True,
        )

    log = ReplayLog(settings.data_dir() / "replay_steps.jsonl")
    if not args.resume and log.path.exists():
        log.path.unlink()
    print(f"replaying every {args.every}th session {args.start} .. {args.end}", flush=True)
    started = time.perf_counter()
    steps = replay(
        date.fromisoformat(args.start),
        date.fromisoformat(args.end),
        every=args.every,
        launch=not args.no_launch,
        echo=echo,
        log=log,
    )
    table = replay_table(steps)
    out = log.path.with_name("replay.md")
    out.write_text(table + "\n")
    print(
        f"\n{table}\n\nreplay: {len(steps)} steps in {time.perf_counter() - started:.0f}s; "
        f"table in {out}"
    )
    return 0 if all(s.nightly_ok for s in steps) else 1


SIGNAL_VIEW = [
    "symbol",
    "date",
    "signal",
    "confidence",
    "position",
    "p_up",
    "p_neutral",
    "p_down",
    "vol_forecast",
    "regime",
    "data_date",
    "stale",
]


def stale_lines(frame) -> list[str]:
    """One line per stale signal row: its last bar, how many sessions of its calendar behind
    the run date it was served on, and that the signal was held. Signals stored before the
    freshness columns existed give none."""
    import polars as pl

    from assets.partitions import UNIVERSE
    from quant.freshness import stale_note

    needed = {"stale", "data_date", "run_date", "sessions_behind"}
    if frame.is_empty() or not needed <= set(frame.columns):
        return []
    lines = []
    for row in frame.filter(pl.col("stale")).iter_rows(named=True):
        calendar = UNIVERSE.get(row["symbol"]).calendar if row["symbol"] in UNIVERSE else "?"
        lines.append(
            stale_note({**row, "calendar": calendar}, row["run_date"], "signal held (HOLD)")
        )
    return lines


def print_signals(frame) -> None:
    import polars as pl

    if frame.is_empty():
        print("\nno signals: the registry has no champions yet")
        return
    print("\nsignals: latest session of each symbol (champions; rule in quant/signals.py)")
    with pl.Config(
        tbl_rows=100,
        tbl_cols=14,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=220,
        float_precision=3,
    ):
        print(frame.select(c for c in SIGNAL_VIEW if c in frame.columns))
    for line in stale_lines(frame):
        print(line)


def _cmd_predict(args: argparse.Namespace) -> int:
    import polars as pl

    from assets.partitions import UNIVERSE

    try:
        for symbol in args.symbols:
            UNIVERSE.get(symbol)
        frame = read_asset("signals")
    except (KeyError, ValueError, MissingMaterialization) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen = frame.filter(pl.col("symbol").is_in(args.symbols)) if not frame.is_empty() else frame
    missing = sorted(set(args.symbols) - set(chosen["symbol"].to_list()))
    if missing:
        print(f"error: no signal stored for {missing} (blocked or not yet scored)", file=sys.stderr)
        return 1
    print_signals(chosen)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        print_model_report()
    except MissingMaterialization as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    """Answer a plain-English question about a market pattern from ``pattern_insights``: the
    question is parsed by fixed rules (quant/patterns/ask.py), never used in a path or a query."""
    import polars as pl

    from quant.patterns.ask import AskError, InsightsSchemaError, answer, parse
    from quant.universe import UniverseError, load_universe

    try:
        universe = load_universe()
        names = {i.symbol: i.name for i in universe.instruments}
        query = parse(args.question, universe.symbols, names=names, source=universe.source)
    except (AskError, UniverseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        reply = answer(query, read_asset("pattern_insights"))
    except MissingMaterialization:
        print(
            f"error: the `pattern_insights` table is not in {settings.lake_dir()} yet; "
            "run `make run` first",
            file=sys.stderr,
        )
        return 2
    except (InsightsSchemaError, pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"error: `pattern_insights` cannot be used ({first}); run `make run` first",
            file=sys.stderr,
        )
        return 2
    print(reply.text)
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    import polars as pl

    from quant.backtest import performance_table
    from resources import settings

    try:
        daily = read_asset("backtest")
        cash_rate = settings.cash_rate()
    except (MissingMaterialization, ValueError) as exc:  # ValueError: a bad MARKET_CASH_RATE
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "window" not in daily.columns:  # written before the walk-forward record joined it
        daily = daily.with_columns(pl.lit("validation").alias("window"))
    if "lag" not in daily.columns:  # written before the execution lag was reported
        daily = daily.with_columns(pl.lit(0, pl.Int64).alias("lag"))
    names = {
        "strategy_net": "strategy (net of costs)",
        "strategy_gross": "strategy (gross)",
        "sp500_buy_and_hold": "S&P 500 buy and hold",
        "equal_weight": "equal weight",
    }
    labels = {"walk_forward": "the walk-forward record, per year", "live": "live: what was served"}
    print(
        "Sharpe in excess of a cash rate of "
        + ("0 % (Sharpe of raw returns)" if cash_rate == 0 else f"{cash_rate * 100:.2f} % a year")
        + " (MARKET_CASH_RATE); ir_vs_equal_weight: information ratio against equal weight"
    )
    with pl.Config(
        tbl_rows=100,
        tbl_cols=13,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=220,
        float_precision=4,
        fmt_str_lengths=30,
    ):
        for (window, lag), part in daily.group_by("window", "lag", maintain_order=True):
            record = window == "walk_forward"
            label = labels.get(window, "the latest models' window")
            if lag:
                label += f", traded {lag} session late"
            print(
                f"\nbacktest {part['date'].min()} .. {part['date'].max()} ({label}, daily rebalanced)"
            )
            table = performance_table(
                part.sort("date"), by_year=record, cash_rate=cash_rate
            ).with_columns(pl.col("portfolio").replace(names))
            print(table)
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    try:
        summary = lake_summary()
    except ValueError as exc:  # a bad setting (MARKET_STALE_AFTER_SESSIONS, MARKET_AS_OF)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # duckdb says "Table ... does not exist" before the first run
        print(f"nothing to summarize yet ({exc}); run `make run` first", file=sys.stderr)
        return 1
    print(summary.to_pandas().to_string(index=False))
    if "stale" in summary.columns:
        run_date, threshold = freshness_context()
        print(
            f"\nsessions_behind: exchange sessions after the last validated bar, up to the run "
            f"date {run_date}; stale beyond {threshold} (MARKET_STALE_AFTER_SESSIONS)"
        )
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    """One read-only SELECT over the lake views (see resources.warehouse for the sandbox).

    Files left out of a view (corrupt, truncated) are reported on stderr before the query runs;
    a refused statement or a DuckDB error is one line on stderr and exit code 2.
    """
    import duckdb

    from resources.warehouse import DuckDBWarehouse, ForbiddenQueryError

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    warehouse = DuckDBWarehouse(lake_dir=str(settings.lake_dir()))
    try:
        frame = warehouse.query(args.query, on_warning=warn)
    except ForbiddenQueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {first_line}", file=sys.stderr)
        return 2
    print(frame.to_pandas().to_string(index=False))
    return 0


def _cmd_gc(args: argparse.Namespace) -> int:
    """Retention: old unserved model versions and their artifacts, old landing receipts."""
    from resources import build_resources
    from resources.retention import gc

    resources = build_resources()
    done = gc(
        resources["mlflow_tracking"],
        resources["operator_control"],
        resources["landing"],
        keep_versions=settings.gc_keep_versions() if args.keep is None else args.keep,
        landing_days=settings.gc_landing_days() if args.days is None else args.days,
        dry_run=args.dry_run,
    )
    print(("would remove: " if args.dry_run else "removed: ") + done.describe())
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    """Consistent copies of the SQLite stores (safe while runs write)."""
    import sqlite3

    from resources.backup import backup_stores

    destination = Path(args.destination)
    try:
        done = backup_stores(settings.sqlite_store_roots(), destination)
    except (sqlite3.Error, OSError) as exc:
        print(f"error: backup into {destination} failed: {exc}", file=sys.stderr)
        return 1
    for item in done:
        print(f"{item.source} -> {item.copy} ({item.pages} pages, integrity ok)")
    print(
        f"{len(done)} database(s) backed up into {destination}. To restore: stop the web UI, the "
        "daemon and every run, then copy each file back to the path it came from."
    )
    return 0


def _iso_date(text: str) -> str:
    """An ISO date argument (YYYY-MM-DD), checked before anything runs: a one-line error."""
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _symbol(text: str) -> str:
    """A symbol argument of the universe (a one-line error for anything else)."""
    from assets.partitions import UNIVERSE

    try:
        return UNIVERSE.get(text).symbol
    except (KeyError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc).strip("'\"")) from None


def _cmd_restore(args: argparse.Namespace) -> int:
    """Rewrite raw_ohlcv partitions from the raw landing (a lost or corrupt file)."""
    from assets.partitions import UNIVERSE
    from resources import build_resources

    resources = build_resources()
    lake, landing = resources["lake"], resources["landing"]
    source = args.source or resources["market_data"].source
    status = 0
    for symbol in args.symbols:
        try:
            UNIVERSE.get(symbol)
            bars = landing.rebuild(source, symbol)
        except (KeyError, ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        path = lake.write("raw_ohlcv", bars, symbol)
        print(
            f"{symbol}: restored {bars.height} rows ({bars['date'].min()} .. "
            f"{bars['date'].max()}) from the {source} landing into {path}; re-validate with "
            f"`market materialize --symbols {symbol}`"
        )
    return status


def _cmd_warehouse(args: argparse.Namespace) -> int:
    import duckdb

    from resources.warehouse import register_lake_views

    path = Path(args.path or settings.data_dir() / "warehouse.duckdb")
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        views = register_lake_views(con, settings.lake_dir())
    print(f"{path}: views {', '.join(views) or '(none: the lake is empty)'}")
    return 0


def _operator_resources():
    """The MLflow tracking and operator-control resources of the local deployment."""
    from resources import build_resources

    resources = build_resources()
    return resources["mlflow_tracking"], resources["operator_control"]


def _default_user() -> str:
    """The login name, for the audit trail (``unknown`` where the system cannot tell)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _print_table(rows: list[dict], columns: list[str]) -> None:
    import polars as pl

    frame = pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")
    with pl.Config(
        tbl_rows=1000,
        tbl_cols=12,
        fmt_str_lengths=60,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=200,
    ):
        print(frame)


def _operator_action(action) -> int:
    """Run one operator action; bad input (unknown model or version, nothing to resume) is
    reported on stderr with exit code 2."""
    try:
        message = action()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(message)
    return 0


def _cmd_halt(args: argparse.Namespace) -> int:
    _, control = _operator_resources()

    def halt() -> str:
        control.halt(args.reason, args.user)
        return f"trading HALTED by {args.user}: every signal is HOLD until `market resume`"

    return _operator_action(halt)


def _cmd_resume(args: argparse.Namespace) -> int:
    _, control = _operator_resources()

    def resume() -> str:
        control.resume(args.user)
        return f"trading resumed by {args.user}: the next signals run serves the rule again"

    return _operator_action(resume)


def _cmd_champion_pin(args: argparse.Namespace) -> int:
    tracking, control = _operator_resources()

    def pin() -> str:
        version = control.pin(tracking, args.model, args.version, args.user, args.reason)
        return f"{args.model}: version {version} is champion and pinned"

    return _operator_action(pin)


def _cmd_champion_unpin(args: argparse.Namespace) -> int:
    tracking, control = _operator_resources()

    def unpin() -> str:
        version = control.unpin(tracking, args.model, args.user, args.reason)
        return f"{args.model}: version {version} unpinned (promotion may replace it again)"

    return _operator_action(unpin)


def _cmd_champion_rollback(args: argparse.Namespace) -> int:
    tracking, control = _operator_resources()

    def rollback() -> str:
        version = control.rollback(tracking, args.model, args.version, args.user, args.reason)
        return f"{args.model}: champion rolled back to version {version}"

    return _operator_action(rollback)


def _cmd_champion_list(args: argparse.Namespace) -> int:
    from quant.models import MODEL_FAMILIES
    from resources.mlflow_tracking import CHALLENGER, CHAMPION

    tracking, control = _operator_resources()
    rows = []
    for name, family in MODEL_FAMILIES.items():
        champion = tracking.version_by_alias(name, CHAMPION)
        challenger = tracking.version_by_alias(name, CHALLENGER)
        pinned = control.pinned(name)
        rows.append(
            {
                "model": name,
                "family": family,
                "champion": "-" if champion is None else str(champion.version),
                "challenger": "-" if challenger is None else str(challenger.version),
                "pinned": "-" if pinned is None else f"yes (version {pinned})",
            }
        )
    _print_table(rows, ["model", "family", "champion", "challenger", "pinned"])
    halt = control.halted()
    if halt is None:
        print("trading: active")
    else:
        print(f"trading: HALTED since {halt['at']} by {halt['user']}: {halt['reason'] or '-'}")
    return 0


AUDIT_COLUMNS = ["at", "user", "action", "model", "version", "previous_version", "reason"]


def _cmd_champion_audit(args: argparse.Namespace) -> int:
    _, control = _operator_resources()
    records = control.audit()
    if not records:
        print("no operator actions recorded yet")
        return 0
    rows = [{c: "" if r.get(c) is None else str(r[c]) for c in AUDIT_COLUMNS} for r in records]
    _print_table(rows, AUDIT_COLUMNS)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """The HTTP API (pipelines/api.py) under uvicorn. Off a loopback address it needs
    MARKET_API_TOKEN: without one it refuses to start (checked before anything is loaded)."""
    import ipaddress

    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and settings.api_token() is None:
        print(
            f"error: refusing to serve on {args.host} without MARKET_API_TOKEN (set it, or bind "
            "to 127.0.0.1)",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from pipelines.api import create_app

    app = create_app(reload_check_s=args.reload_check_s)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _add_operator_arguments(p: argparse.ArgumentParser, reason: bool = True) -> None:
    p.add_argument("--user", default=_default_user(), help="who acts (default: login name)")
    if reason:
        p.add_argument("--reason", default="", help="why, for the audit trail")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="market", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("materialize", help="run the pipeline over the universe in one run")
    p.add_argument(
        "--symbols",
        nargs="+",
        type=_symbol,
        help="a contiguous subset of the universe (each symbol once)",
    )
    p.add_argument(
        "--replace-history",
        action="store_true",
        help="accept deliveries that drop stored dates (a source's corrected history); "
        "without it such a delivery is refused and the stored partition kept",
    )
    p.add_argument("--no-train", action="store_true", help="stop after features and market context")
    p.set_defaults(func=_cmd_materialize)
    p = sub.add_parser("nightly", help="one nightly run over the universe (as the schedule)")
    p.add_argument(
        "--as-of", type=_iso_date, help="replay the data as known on this date (sample/csv)"
    )
    p.add_argument(
        "--reference-start", type=_iso_date, help="drift reference start (default: training start)"
    )
    p.add_argument(
        "--reference-end", type=_iso_date, help="drift reference end (default: end of training)"
    )
    p.add_argument(
        "--drift-end",
        type=_iso_date,
        help="end of the drift window (default: --as-of, or the latest)",
    )
    p.set_defaults(func=_cmd_nightly)
    p = sub.add_parser("replay", help="the nightly run and the drift sensor, session by session")
    p.add_argument("--from", dest="start", required=True, type=_iso_date)
    p.add_argument("--to", dest="end", required=True, type=_iso_date)
    p.add_argument("--every", type=int, default=21, help="replay every Nth NYSE session")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a replay that stopped (its replay_steps.jsonl)",
    )
    p.add_argument(
        "--no-launch", action="store_true", help="show what the sensor requests, run nothing"
    )
    p.set_defaults(func=_cmd_replay)
    p = sub.add_parser("walk-forward", help="build the walk-forward record (cached per block)")
    p.add_argument("--all", action="store_true", help="every family, the LSTMs included")
    p.add_argument("--step", type=int, help="sessions between refits (default 63)")
    p.set_defaults(func=_cmd_walk_forward)
    p = sub.add_parser("predict", help="today's signal for one or more symbols")
    p.add_argument("symbols", nargs="+")
    p.set_defaults(func=_cmd_predict)
    sub.add_parser("report", help="out-of-sample metrics beside baselines").set_defaults(
        func=_cmd_report
    )
    p = sub.add_parser("ask", help="a question about a market pattern, answered with numbers")
    p.add_argument("question", help='e.g. "What happens to AAPL after three green candles?"')
    p.set_defaults(func=_cmd_ask)
    sub.add_parser("backtest", help="the signals' backtest beside its benchmarks").set_defaults(
        func=_cmd_backtest
    )
    sub.add_parser("summary", help="rows and dates per symbol in the lake").set_defaults(
        func=_cmd_summary
    )
    p = sub.add_parser("sql", help="run a DuckDB query over the lake views")
    p.add_argument("query")
    p.set_defaults(func=_cmd_sql)
    p = sub.add_parser(
        "restore", help="rewrite raw_ohlcv partitions from the raw landing (lost or corrupt files)"
    )
    p.add_argument("symbols", nargs="+")
    p.add_argument("--source", help="the landing's source folder (default: the configured source)")
    p.set_defaults(func=_cmd_restore)
    p = sub.add_parser(
        "gc", help="remove old unserved model versions and fold old landing receipts"
    )
    p.add_argument("--keep", type=int, help="newest versions kept per model (default: 5)")
    p.add_argument("--days", type=int, help="landing receipts older than this are folded")
    p.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    p.set_defaults(func=_cmd_gc)
    p = sub.add_parser(
        "backup", help="consistent copies of the SQLite stores (Dagster, MLflow, Optuna)"
    )
    p.add_argument("destination")
    p.set_defaults(func=_cmd_backup)
    p = sub.add_parser("warehouse", help="write a DuckDB file holding views over the lake")
    p.add_argument("path", nargs="?")
    p.set_defaults(func=_cmd_warehouse)
    p = sub.add_parser("serve", help="the HTTP API (docs/SERVING.md) on http://HOST:PORT")
    p.add_argument("--host", default="127.0.0.1", help="off loopback MARKET_API_TOKEN is required")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--reload-check-s",
        type=float,
        default=5.0,
        help="seconds between run-date checks (and alias checks against a tracking server)",
    )
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.set_defaults(func=_cmd_serve)
    p = sub.add_parser("halt", help="serve HOLD (position 0) for every symbol until resumed")
    _add_operator_arguments(p)
    p.set_defaults(func=_cmd_halt)
    p = sub.add_parser("resume", help="lift the halt")
    _add_operator_arguments(p, reason=False)
    p.set_defaults(func=_cmd_resume)
    champion = sub.add_parser("champion", help="champion models: list, pin, unpin, roll back")
    verbs = champion.add_subparsers(dest="champion_command", required=True)
    p = verbs.add_parser("list", help="champion, challenger and pin of every model")
    p.set_defaults(func=_cmd_champion_list)
    p = verbs.add_parser("pin", help="make VERSION (default: the champion) champion, pinned")
    p.add_argument("model")
    p.add_argument("version", nargs="?")
    _add_operator_arguments(p)
    p.set_defaults(func=_cmd_champion_pin)
    p = verbs.add_parser("unpin", help="release the pin (automatic promotion resumes)")
    p.add_argument("model")
    _add_operator_arguments(p)
    p.set_defaults(func=_cmd_champion_unpin)
    p = verbs.add_parser("rollback", help="champion back to VERSION (default: the previous one)")
    p.add_argument("model")
    p.add_argument("version", nargs="?")
    _add_operator_arguments(p)
    p.set_defaults(func=_cmd_champion_rollback)
    p = verbs.add_parser("audit", help="the operator audit trail, oldest first")
    p.set_defaults(func=_cmd_champion_audit)
    return parser


# the commands that launch runs on the instance and write the lake: one at a time per data folder
EXCLUSIVE = {"materialize", "nightly", "walk-forward", "replay"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in EXCLUSIVE:
        return args.func(args)
    from pipelines.run_lock import RunLockBusyError, exclusive_runs

    try:
        with exclusive_runs(settings.data_dir(), args.command):
            return args.func(args)
    except RunLockBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
