"""Validation: the data contract as checks on ``raw_ohlcv``, and the validated ``ohlcv``.

Per symbol, in this order within a run (one step covers every symbol of the run):
1. ``raw_ohlcv_contract`` evaluates the five rules on each raw partition and records one verdict
   per rule and symbol partition: an ERROR means the symbol is blocked, a WARN that isolated bad
   bars were quarantined.
2. ``ohlcv`` / ``ohlcv_quarantine``: the adjusted bars that pass, and the bars set aside with
   rule and reason. The asset is the gate, symbol by symbol: it re-applies the rules and writes
   only the symbols that pass; a blocked symbol's stored partition stays as it was, so one bad
   symbol never stops the others (the nightly and range runs go on to signals without it). The
   step fails only when no symbol of the run passes.
3. ``ohlcv_expectations``: the same contract as a Great Expectations suite on the result, with
   Data Docs under ``data/reports/great_expectations``, one verdict per symbol partition.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from assets.metadata import BAR_SCHEMA, column_schema
from assets.partition_checks import check_outputs, partition_evaluation
from assets.partitions import UNIVERSE, symbol_partitions
from quant.validation import RULES, ValidationReport, validate_bars
from quant.validation.expectations import run_expectations
from resources.lake import LakeReadError, ParquetLake, remedy

RULE_DESCRIPTIONS = {
    "completeness": "< 5% of exchange sessions missing in every trailing year (NYSE / NSE calendar); "
    "incomplete early history is quarantined, an incomplete recent year blocks.",
    "ohlc_logic": "high >= max(open, close), low <= min(open, close), high >= low, prices > 0 and present; "
    "a few bad bars are quarantined, many block.",
    "price_sanity": "no adjusted daily move beyond ±50% (±200% for volatility indices): catches "
    "unadjusted splits.",
    "volume_sanity": "volume > 0 on trading days for equities; indices are exempt by asset class.",
    "temporal_integrity": "unique dates, none in the future, bars only on exchange sessions (index "
    "bars with trading on special sessions are kept and listed).",
}

RAW_CONTRACT_SPECS = [
    dg.AssetCheckSpec(
        rule,
        asset="raw_ohlcv",
        # the gate is ``ohlcv`` itself, per symbol: a blocking check would stop every symbol
        blocking=False,
        partitions_def=symbol_partitions,
        description=RULE_DESCRIPTIONS[rule],
    )
    for rule in RULES
]


def today() -> date:
    """The date bars may not be later than (UTC: never ahead of any exchange's local date)."""
    return datetime.now(UTC).date()


def validate_symbol(raw: pl.DataFrame, symbol: str) -> ValidationReport:
    """Run the contract on one symbol's raw bars."""
    return validate_bars(raw, UNIVERSE.get(symbol), today())


def _severity(name: str) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if name == "ERROR" else dg.AssetCheckSeverity.WARN


def _metadata(report: ValidationReport, rule: str, path: str) -> dict[str, object]:
    result = report.results[rule]
    meta: dict[str, object] = {"summary": result.summary, "symbol": report.symbol, "file": path}
    for key, value in result.metadata.items():
        meta[key] = dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
    meta["quarantined_by_this_rule"] = report.quarantine.filter(pl.col("rule") == rule).height
    if result.blocks:
        meta["what_to_do"] = report.remedy
    return meta


def _unreadable(symbol: str, error: LakeReadError) -> ValidationReport:
    """A verdict for a symbol whose raw partition cannot be read: blocked on every rule."""
    return ValidationReport.unreadable(symbol, str(error), remedy("raw_ohlcv", symbol))


def contract_reports(lake: ParquetLake, symbols: list[str]) -> dict[str, ValidationReport]:
    """The contract's verdict on each symbol's stored raw partition (an unreadable file
    blocks that symbol alone)."""
    reports = {}
    for symbol in symbols:
        try:
            raw = lake.read("raw_ohlcv", symbol)
        except LakeReadError as error:
            reports[symbol] = _unreadable(symbol, error)
            continue
        reports[symbol] = validate_symbol(raw, symbol)
    return reports


@dg.multi_asset_check(
    specs=RAW_CONTRACT_SPECS,
    name="raw_ohlcv_contract",
    description="The OHLCV data contract on raw bars: five rules, one verdict per rule and symbol.",
)
def raw_ohlcv_contract(
    context: dg.AssetCheckExecutionContext, lake: ParquetLake
) -> Iterator[object]:
    for symbol, report in contract_reports(lake, list(context.partition_keys)).items():
        path = str(lake.path("raw_ohlcv", symbol))
        for rule in RULES:
            result = report.results[rule]
            yield partition_evaluation(
                "raw_ohlcv",
                rule,
                symbol,
                result.passed,
                _severity(result.severity),
                f"{symbol}: {result.summary}",
                _metadata(report, rule, path),
            )
    yield from check_outputs("raw_ohlcv", RULES)


@dg.multi_asset(
    outs={
        "ohlcv": dg.AssetOut(
            io_manager_key="lake_io_manager",
            description="Validated, de-duplicated, split/dividend-adjusted daily bars (raw kept as raw_*).",
            kinds={"polars", "parquet"},
            owners=["team:data-engineering"],
            tags={"layer": "validation"},
            metadata={
                "dagster/column_schema": column_schema(
                    {
                        **BAR_SCHEMA,
                        "adj_factor": ("float64", "adj_close / close applied to the prices"),
                        "factor_source": ("string", "reported, carried_forward, backfilled, none"),
                    }
                ),
                "dagster/column_lineage": dg.TableColumnLineage(
                    deps_by_column={
                        c: [dg.TableColumnDep(asset_key=dg.AssetKey("raw_ohlcv"), column_name=c)]
                        for c in ("open", "high", "low", "close", "volume")
                    }
                ),
            },
        ),
        "ohlcv_quarantine": dg.AssetOut(
            io_manager_key="lake_io_manager",
            description="Raw bars set aside by validation, each with the rule and the reason.",
            kinds={"polars", "parquet"},
            owners=["team:data-engineering"],
            tags={"layer": "validation"},
            metadata={
                "dagster/column_schema": column_schema(
                    {
                        **BAR_SCHEMA,
                        "rule": ("string", "the contract rule that set the bar aside"),
                        "reason": ("string", "why, in words"),
                    }
                )
            },
        ),
    },
    deps=["raw_ohlcv"],
    partitions_def=symbol_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="validation",
    code_version="2",
)
def ohlcv(context: dg.AssetExecutionContext, lake: ParquetLake):
    """Adjusted bars for the symbols that pass the contract; quarantined bars beside them.
    A blocked symbol is left as it was stored."""
    reports = contract_reports(lake, list(context.partition_keys))
    passed = {s: r for s, r in reports.items() if not r.blocked}
    blocked = [r for r in reports.values() if r.blocked]
    for report in blocked:
        context.log.error(report.error_message(str(lake.path("raw_ohlcv", report.symbol))))
    if not passed:
        raise dg.Failure(
            description="validation blocked every symbol of the run, nothing written:\n"
            + "\n".join(r.error_message(str(lake.path("raw_ohlcv", r.symbol))) for r in blocked),
            metadata={"blocked_symbols": [r.symbol for r in blocked]},
        )
    for report in blocked:
        kept = lake.read_if_readable("ohlcv", report.symbol)
        status = f"BLOCKED by {', '.join(report.blocking_rules)}: the stored partition is kept" + (
            f" ({kept.height} rows through {kept['date'].max()})"
            if kept is not None
            else " (none stored yet)"
        )
        for asset in ("ohlcv", "ohlcv_quarantine"):
            context.add_asset_metadata(
                {"status": status, "blocked": True, "what_to_do": report.remedy},
                asset_key=asset,
                partition_key=report.symbol,
            )
    for symbol, report in passed.items():
        clean = report.clean
        context.add_asset_metadata(
            {
                "status": "validated",
                "blocked": False,
                "dagster/row_count": clean.height,
                "first_date": str(clean["date"].min()),
                "last_date": str(clean["date"].max()),
                "quarantined_rows": report.quarantine.height,
                "repaired_duplicates": report.repaired_duplicates,
                "factor_sources": dg.MetadataValue.json(
                    {s: n for s, n in clean.group_by("factor_source").len().iter_rows()}
                ),
            },
            asset_key="ohlcv",
            partition_key=symbol,
        )
        context.add_asset_metadata(
            {
                "dagster/row_count": report.quarantine.height,
                "by_rule": dg.MetadataValue.json(
                    {r: n for r, n in report.quarantine.group_by("rule").len().iter_rows()}
                ),
            },
            asset_key="ohlcv_quarantine",
            partition_key=symbol,
        )
    yield dg.Output({s: r.clean for s, r in passed.items()}, output_name="ohlcv")
    yield dg.Output({s: r.quarantine for s, r in passed.items()}, output_name="ohlcv_quarantine")


def gx_docs_dir(lake: ParquetLake, symbol: str) -> Path:
    """Data Docs live beside the lake, one site per symbol: ``<data>/reports/great_expectations/<slug>``.

    One site per symbol also means validation runs in parallel processes never rewrite the same
    index page.
    """
    return Path(lake.base_dir).parent / "reports" / "great_expectations" / UNIVERSE.get(symbol).slug


EXPECTATIONS = "ohlcv_expectations"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            EXPECTATIONS,
            asset="ohlcv",
            blocking=False,
            partitions_def=symbol_partitions,
            description="The contract as a Great Expectations suite on the validated bars, "
            "with Data Docs (one verdict per symbol).",
        )
    ],
    name=EXPECTATIONS,
)
def ohlcv_expectations(
    context: dg.AssetCheckExecutionContext, lake: ParquetLake
) -> Iterator[object]:
    for symbol in context.partition_keys:
        try:
            bars = lake.read("ohlcv", symbol)
        except LakeReadError as error:
            yield partition_evaluation(
                "ohlcv",
                EXPECTATIONS,
                symbol,
                False,
                dg.AssetCheckSeverity.ERROR,
                f"{symbol}: no validated bars to check ({error})",
                {"symbol": symbol},
            )
            continue
        outcome = run_expectations(bars, UNIVERSE.get(symbol), gx_docs_dir(lake, symbol))
        metadata: dict[str, object] = {
            "symbol": symbol,
            "expectations_evaluated": outcome.evaluated,
            "failed_expectations": dg.MetadataValue.json(outcome.failed),
        }
        if outcome.docs_index:
            metadata["data_docs"] = dg.MetadataValue.url(outcome.docs_index.as_uri())
        if outcome.docs_page:
            metadata["validation_page"] = dg.MetadataValue.path(str(outcome.docs_page))
        yield partition_evaluation(
            "ohlcv",
            EXPECTATIONS,
            symbol,
            outcome.success,
            dg.AssetCheckSeverity.ERROR,
            f"{symbol}: all expectations met"
            if outcome.success
            else f"{symbol}: {len(outcome.failed)} expectation(s) failed",
            metadata,
        )
    yield from check_outputs("ohlcv", [EXPECTATIONS])
