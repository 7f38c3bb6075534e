"""The same contract as a Great Expectations 1.x suite, with static Data Docs.

Run on the validated, adjusted bars: it is the independent second opinion that what leaves
validation satisfies the contract. Ephemeral context, no network, progress bars off.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from quant.universe import AssetClass, Instrument
from quant.validation.rules import DEFAULT_RULES, ValidationRules

SITE_NAME = "market_data_docs"


@dataclass(frozen=True)
class ExpectationOutcome:
    """What the suite found, and where its Data Docs page is."""

    success: bool
    evaluated: int
    failed: list[dict[str, Any]]
    docs_index: Path | None
    docs_page: Path | None


@cache
def _context(docs_dir: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=SITE_NAME,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": docs_dir,
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.data_sources.add_pandas("lake")
    return context


def build_suite(name: str, instrument: Instrument, rules: ValidationRules):
    """The contract for one instrument as an ExpectationSuite."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name)
    for column in ("date", "open", "high", "low", "close", "adj_factor"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="date"))
    for column in ("open", "high", "low", "close", "adj_factor"):
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, strict_min=True)
        )
    for a, b in (
        ("high", "low"),
        ("high", "open"),
        ("high", "close"),
        ("open", "low"),
        ("close", "low"),
    ):
        suite.add_expectation(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True)
        )
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(
            column="abs_return", min_value=0, max_value=rules.return_threshold(instrument)
        )
    )
    if instrument.asset_class is AssetClass.EQUITY:
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(
                column="volume", min_value=0, strict_min=True, mostly=1 - rules.isolated_share
            )
        )
    return suite


def run_expectations(
    bars: pl.DataFrame,
    instrument: Instrument,
    docs_dir: Path,
    rules: ValidationRules = DEFAULT_RULES,
) -> ExpectationOutcome:
    """Validate ``bars`` (one symbol, adjusted) and render the result into ``docs_dir``."""
    import great_expectations as gx

    docs_dir.mkdir(parents=True, exist_ok=True)
    context = _context(str(docs_dir.resolve()))
    key = instrument.slug.replace(".", "_").replace("-", "_").replace("=", "_")
    name = f"ohlcv_{key}"
    frame = bars.sort("date").with_columns(
        (pl.col("close") / pl.col("close").shift(1) - 1).abs().fill_null(0.0).alias("abs_return")
    )
    datasource = context.data_sources.get("lake")
    asset = next(
        (a for a in datasource.assets if a.name == name), None
    ) or datasource.add_dataframe_asset(name)
    batch = next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_dataframe(
        "all"
    )
    suite_name = f"{name}_contract"
    with contextlib.suppress(Exception):  # first run in this process: nothing to replace
        context.suites.delete(suite_name)
    suite = context.suites.add(build_suite(suite_name, instrument, rules))
    validation = gx.ValidationDefinition(name=f"{name}_validation", data=batch, suite=suite)
    checkpoint = gx.Checkpoint(
        name=f"{name}_checkpoint",
        validation_definitions=[validation],
        actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[SITE_NAME])],
    )
    validation = context.validation_definitions.add_or_update(validation)
    checkpoint = context.checkpoints.add_or_update(checkpoint)
    result = checkpoint.run(batch_parameters={"dataframe": frame.to_pandas()})
    (suite_result,) = result.run_results.values()
    failed = [
        {
            "expectation": r.expectation_config.type,
            "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
            "unexpected_count": r.result.get("unexpected_count"),
            "examples": [str(x) for x in (r.result.get("partial_unexpected_list") or [])[:5]],
        }
        for r in suite_result.results
        if not r.success
    ]
    pages = sorted(
        (docs_dir / "validations" / suite_name).rglob("*.html"), key=lambda p: p.stat().st_mtime
    )
    index = docs_dir / "index.html"
    return ExpectationOutcome(
        success=bool(suite_result.success),
        evaluated=int(suite_result.statistics["evaluated_expectations"]),
        failed=failed,
        docs_index=index if index.exists() else None,
        docs_page=pages[-1] if pages else None,
    )
