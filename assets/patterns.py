"""Evaluation: ``pattern_insights``, the pattern oracle's table. What followed each market event
(streaks, gaps, RSI zones, breakouts, 2-sigma moves, volume and VIX spikes, the calendar), per
symbol and pooled over the equities, with its doubt: block-bootstrap intervals, HAC p-values,
Benjamini–Hochberg q-values over every cell and an out-of-sample check. The work is in
``quant.patterns``; docs/SERVING.md, "pattern_insights", describes the rules.

Measured on the bundled sample (26 symbols, 2018-01 .. 2026-08, ~2,100 sessions each, 400
resamples) on the 2-core machine with the other core busy: events ~1 s, study ~4 s, the step
4.8 s (its ``seconds`` metadata): 2,976 cells, 2,891 tested, 1 insight.
"""

import time

import dagster as dg
import polars as pl

from assets.metadata import column_schema, md
from assets.partitions import UNIVERSE
from quant.patterns.events import EVENTS, detect_events, spec_from_universe
from quant.patterns.study import INSIGHT_COLUMNS, INSIGHT_SCHEMA, StudyConfig, study

TOP_SHOWN = 15
_TYPES = {pl.String: "string", pl.Int64: "int64", pl.Float64: "float64", pl.Boolean: "bool"}
_TYPES[pl.Date] = "date"


class PatternConfig(dg.Config):
    # bootstrap draws per cell for the 95 % interval of the mean (seeded: same data, same CIs)
    resamples: int = 400
    seed: int = 0
    # under this many events a cell has no p-value and reads "too few events"
    min_events: int = 20


def _schema() -> dg.TableSchema:
    return column_schema(
        {
            name: (_TYPES[type(dtype)], INSIGHT_COLUMNS[name])
            for name, dtype in INSIGHT_SCHEMA.items()
        }
    )


def _top(table: pl.DataFrame) -> tuple[str, pl.DataFrame]:
    """(what is shown, the rows): the insights by q-value, else the lowest q-values."""
    insights = table.filter(pl.col("insight"))
    title = "insights, lowest q first"
    if insights.is_empty():
        insights, title = table.drop_nulls("q_value"), "no insight: the lowest q-values"
    shown = insights.sort("q_value", "p_value").head(TOP_SHOWN)
    return title, shown.select(
        "scope",
        "symbol",
        "event",
        "horizon",
        "n_events",
        *[
            pl.col(c).round(5)
            for c in ("mean_return", "ci_low", "ci_high", "baseline_mean", "holdout_mean")
        ],
        *[pl.col(c).round(6) for c in ("p_value", "q_value", "holdout_p")],
        "verdict",
    )


@dg.asset(
    ins={"ohlcv": dg.AssetIn("ohlcv")},
    io_manager_key="lake_io_manager",
    group_name="evaluation",
    kinds={"polars", "parquet"},
    owners=["team:quant-research"],
    tags={"layer": "evaluation"},
    code_version="1",
    description="Conditional event studies: for each (scope, symbol, event, horizon 1/5/20 "
    "sessions) the forward log returns after the event, their mean with a moving-block "
    "bootstrap 95 % interval, the symbol's unconditional mean over the same period, a HAC "
    "(Newey–West) p-value of the difference, its Benjamini–Hochberg q-value over every cell, "
    "and whether the effect persists out of sample (the last 30 % of sessions). insight = "
    "q < 0.05 and persists. Scope 'equities' pools every equity (symbol EQUITIES).",
    metadata={"dagster/column_schema": _schema()},
)
def pattern_insights(
    context: dg.AssetExecutionContext, config: PatternConfig, ohlcv: pl.DataFrame
) -> pl.DataFrame:
    """The event study of the whole validated panel in one vectorized pass."""
    started = time.perf_counter()
    bars = ohlcv.select("symbol", "date", "open", "high", "low", "close", "volume")
    spec = spec_from_universe(UNIVERSE)
    events = detect_events(bars, spec)
    table = study(
        bars,
        events,
        StudyConfig(
            equities=tuple(sorted(spec.equities)),
            resamples=config.resamples,
            seed=config.seed,
            min_events=config.min_events,
        ),
    )
    seconds = time.perf_counter() - started
    tested = int(table["p_value"].is_not_null().sum())
    insights = int(table["insight"].sum())
    discoveries = int((table["q_value"] < 0.05).sum())
    title, top = _top(table)
    context.add_output_metadata(
        {
            "dagster/row_count": table.height,
            "first_date": str(bars["date"].min()),
            "last_date": str(bars["date"].max()),
            "symbols": bars["symbol"].n_unique(),
            "events_detected": events.height,
            "event_kinds": len(EVENTS),
            "cells": table.height,
            "cells_tested": tested,
            "insights": insights,
            "verdict": f"{insights} insight{'s' if insights != 1 else ''} out of {tested:,} "
            "cells after BH at 5 % and a holdout check",
            "bh_discoveries": discoveries,
            "expected_false_discoveries": round(0.05 * discoveries, 2),
            "false_discovery_note": f"Benjamini–Hochberg at 5 % over {tested:,} tested cells: of "
            f"the {discoveries} cells with q < 0.05, about {0.05 * discoveries:.2f} are expected "
            "to be false (at most 5 %); an insight must also persist in the holdout.",
            "top_insights": md(top, 5),
            "top_insights_shown": title,
            "returns": "log returns, from the event's close to the close h sessions later",
            "seconds": round(seconds, 2),
        }
    )
    return table
