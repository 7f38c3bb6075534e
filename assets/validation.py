"""Validation: the data contract as blocking checks on ``raw_ohlcv``, and the validated ``ohlcv``.

Per symbol, in this order within a run:
1. ``raw_ohlcv_contract`` evaluates the five rules on the raw partition. Each is a blocking
   check: an ERROR stops ``ohlcv`` for that symbol, so its stored partition is never replaced by
   bad data. WARN results (isolated bad bars) do not block; those bars go to quarantine.
2. ``ohlcv`` / ``ohlcv_quarantine``: the adjusted bars that pass, and the bars set aside with
   rule and reason. The asset re-applies the rules itself and refuses a blocked symbol, so it is
   safe even when launched without the checks.
3. ``ohlcv_expectations``: the same contract as a Great Expectations suite on the result, with
   Data Docs under ``data/reports/great_expectations``.

Per-symbol isolation needs per-symbol runs: the ``validate`` job is run once per symbol (``make
run`` and the nightly do that), so one bad symbol fails its own run while the others carry on.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from assets.metadata import BAR_SCHEMA, column_schema
from assets.partitions import UNIVERSE, symbol_partitions
from quant.validation import RULES, ValidationReport, validate_bars
from quant.validation.expectations import run_expectations
from resources.lake import ParquetLake

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
        blocking=True,
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


def _metadata(report: ValidationReport, rule: str) -> dict[str, object]:
    result = report.results[rule]
    meta: dict[str, object] = {"summary": result.summary, "symbol": report.symbol}
    for key, value in result.metadata.items():
        meta[key] = dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
    meta["quarantined_by_this_rule"] = report.quarantine.filter(pl.col("rule") == rule).height
    return meta


@dg.multi_asset_check(
    specs=RAW_CONTRACT_SPECS,
    name="raw_ohlcv_contract",
    description="The OHLCV data contract on raw bars (five blocking rules).",
)
def raw_ohlcv_contract(
    context: dg.AssetCheckExecutionContext, lake: ParquetLake
) -> Iterator[dg.AssetCheckResult]:
    symbols = context.partition_keys
    reports = [validate_symbol(lake.read("raw_ohlcv", s), s) for s in symbols]
    for rule in RULES:
        if len(reports) == 1:
            (report,) = reports
            result = report.results[rule]
            yield dg.AssetCheckResult(
                check_name=rule,
                passed=result.passed,
                severity=_severity(result.severity),
                metadata=_metadata(report, rule),
                description=result.summary,
            )
            continue
        # A run over several symbols can only block all of them together; per-symbol isolation
        # comes from per-symbol runs. The table says which symbol failed and why.
        failing = [r for r in reports if not r.results[rule].passed]
        worst = "ERROR" if any(r.results[rule].blocks for r in failing) else "WARN"
        yield dg.AssetCheckResult(
            check_name=rule,
            passed=not failing,
            severity=_severity(worst),
            metadata={
                "symbols_checked": len(reports),
                "symbols_failing": [r.symbol for r in failing],
                "by_symbol": dg.MetadataValue.md(
                    "| symbol | passed | severity | summary |\n|---|---|---|---|\n"
                    + "\n".join(
                        f"| {r.symbol} | {r.results[rule].passed} | {r.results[rule].severity} | "
                        f"{r.results[rule].summary} |"
                        for r in reports
                    )
                ),
            },
        )


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
    ins={"raw": dg.AssetIn("raw_ohlcv")},
    partitions_def=symbol_partitions,
    group_name="validation",
    code_version="1",
)
def ohlcv(context: dg.AssetExecutionContext, raw: pl.DataFrame):
    """Adjusted bars for the symbols that pass the contract; quarantined bars beside them."""
    symbols = context.partition_keys
    frames = {s: raw.filter(pl.col("symbol") == s) for s in symbols}
    reports = {s: validate_symbol(frames[s], s) for s in symbols}
    blocked = [r for r in reports.values() if r.blocked]
    if blocked:
        raise dg.Failure(
            description="validation blocked, nothing written:\n"
            + "\n".join(r.error_message() for r in blocked),
            metadata={"blocked_symbols": [r.symbol for r in blocked]},
        )
    for symbol, report in reports.items():
        clean = report.clean
        context.add_asset_metadata(
            {
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
    yield dg.Output({s: r.clean for s, r in reports.items()}, output_name="ohlcv")
    yield dg.Output({s: r.quarantine for s, r in reports.items()}, output_name="ohlcv_quarantine")


def gx_docs_dir(lake: ParquetLake, symbol: str) -> Path:
    """Data Docs live beside the lake, one site per symbol: ``<data>/reports/great_expectations/<slug>``.

    One site per symbol also means validation runs in parallel processes never rewrite the same
    index page.
    """
    return Path(lake.base_dir).parent / "reports" / "great_expectations" / UNIVERSE.get(symbol).slug


@dg.asset_check(
    asset="ohlcv",
    blocking=True,
    partitions_def=symbol_partitions,
    description="The contract as a Great Expectations suite on the validated bars, with Data Docs.",
)
def ohlcv_expectations(
    context: dg.AssetCheckExecutionContext, lake: ParquetLake
) -> dg.AssetCheckResult:
    outcomes = {
        s: run_expectations(lake.read("ohlcv", s), UNIVERSE.get(s), gx_docs_dir(lake, s))
        for s in context.partition_keys
    }
    failed = {s: o.failed for s, o in outcomes.items() if not o.success}
    last = next(iter(outcomes.values()))
    metadata: dict[str, object] = {
        "expectations_evaluated": last.evaluated,
        "symbols": list(outcomes),
        "failed_expectations": dg.MetadataValue.json(failed),
    }
    if last.docs_index:
        metadata["data_docs"] = dg.MetadataValue.url(last.docs_index.as_uri())
    if last.docs_page:
        metadata["validation_page"] = dg.MetadataValue.path(str(last.docs_page))
    return dg.AssetCheckResult(
        passed=not failed,
        metadata=metadata,
        description="all expectations met" if not failed else f"failed for {sorted(failed)}",
    )
