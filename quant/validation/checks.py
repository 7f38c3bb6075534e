"""The data contract for daily bars: five rules, and what happens to bars that break them.

``validate_bars`` judges one symbol's raw delivery and splits it into the bars that go on
(adjusted, in ``clean``) and the bars that are set aside (``quarantine``, each with its rule and
reason). Every rule reports ERROR (the symbol is blocked: what it would feed models is corrupt)
or WARN (isolated bad bars were quarantined; the rest is fine), with the counts, the first
offending dates and values, and the threshold, so a person can act on it.

What is repaired, quarantined or blocked:

| defect                                   | rule               | action                   |
|------------------------------------------|--------------------|--------------------------|
| exact duplicate rows                     | temporal_integrity | repaired (one kept)      |
| same date twice with different values    | temporal_integrity | ERROR, rows quarantined  |
| a date after today                       | temporal_integrity | ERROR, rows quarantined  |
| bar on a non-session, unexplained        | temporal_integrity | WARN, quarantined        |
| index bar on a non-session, with trading | temporal_integrity | kept, listed as special  |
| high<low, price<=0, missing price, ...   | ohlc_logic         | WARN + quarantine if few, ERROR if systemic |
| adjusted move beyond the threshold       | price_sanity       | ERROR (split / broken series) |
| equity volume missing or <= 0            | volume_sanity      | WARN if few (kept), ERROR if systemic; indices exempt |
| incomplete early history                 | completeness       | WARN, early bars quarantined |
| incomplete recent year / too short       | completeness       | ERROR                    |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from quant.bars import BAR_COLUMNS, BAR_SCHEMA, PRICE_COLUMNS, conform_bars
from quant.universe import AssetClass, Instrument
from quant.validation.adjust import adjust_prices
from quant.validation.calendars import exchange_sessions
from quant.validation.rules import (
    COMPLETENESS,
    DEFAULT_RULES,
    ERROR,
    OHLC_LOGIC,
    PRICE_SANITY,
    RULES,
    TEMPORAL_INTEGRITY,
    VOLUME_SANITY,
    WARN,
    ValidationRules,
)

QUARANTINE_COLUMNS = ("rule", "reason")
QUARANTINE_SCHEMA = {**BAR_SCHEMA, "rule": pl.String(), "reason": pl.String()}


@dataclass
class RuleResult:
    """The verdict of one rule on one symbol."""

    rule: str
    passed: bool
    severity: str
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return not self.passed and self.severity == ERROR


@dataclass
class ValidationReport:
    """All rule verdicts for one symbol, and the bars split into clean and quarantined."""

    symbol: str
    results: dict[str, RuleResult]
    clean: pl.DataFrame
    quarantine: pl.DataFrame
    repaired_duplicates: int
    advice: str | None = None  # replaces the default remedy (e.g. for an unreadable file)

    @property
    def blocked(self) -> bool:
        return any(r.blocks for r in self.results.values())

    @property
    def blocking_rules(self) -> list[str]:
        return [name for name, r in self.results.items() if r.blocks]

    @property
    def remedy(self) -> str:
        """What an operator does about a blocked symbol."""
        if self.advice:
            return self.advice
        return (
            f"fix the source's data for {self.symbol} (or wait for a corrected delivery) and "
            f"re-materialize it (`market materialize --symbols {self.symbol}`); its stored "
            "validated bars stay in use meanwhile, and every delivery is kept in the raw landing"
        )

    def error_message(self, path: str | None = None) -> str:
        """One line per blocking rule: symbol, file, rule, what is wrong, the offending rows,
        and what to do."""
        where = f" in {path}" if path else ""
        by_summary: dict[str, list[str]] = {}
        for name in self.blocking_rules:
            by_summary.setdefault(self.results[name].summary, []).append(name)
        lines = []
        for summary, names in by_summary.items():
            rows = offending_rows(self.results[names[0]])
            listed = f"; rows: {', '.join(rows)}" if rows else ""
            rule = f"rule {names[0]}" if len(names) == 1 else f"rules {', '.join(names)}"
            lines.append(f"{self.symbol}{where}: {rule} failed: {summary}{listed}")
        return "\n".join([*lines, f"  what to do: {self.remedy}"]) if lines else ""

    @classmethod
    def unreadable(cls, symbol: str, message: str, advice: str | None = None) -> ValidationReport:
        """The verdict on a partition that cannot be read: blocked on every rule."""
        verdicts = {r: RuleResult(r, False, ERROR, message, {"rows": 0}) for r in RULES}
        empty = pl.DataFrame(schema={k: v for k, v in BAR_SCHEMA.items()})
        return cls(symbol, verdicts, adjust_prices(empty), empty_quarantine(), 0, advice)


def offending_rows(result: RuleResult, limit: int = 5) -> list[str]:
    """The first dates a rule's metadata lists as offending (examples, future or missing)."""
    dates: list[str] = []
    for key in (
        "examples",
        "conflicting_examples",
        "future_dates",
        "non_session_examples",
        "missing_examples",
    ):
        for item in result.metadata.get(key) or []:
            value = item.get("date") if isinstance(item, dict) else item
            if value is not None and str(value) not in dates:
                dates.append(str(value))
    return dates[:limit]


def _examples(frame: pl.DataFrame, columns: list[str], limit: int) -> list[dict[str, Any]]:
    rows = frame.select(columns).head(limit).to_dicts()
    return [{k: (str(v) if isinstance(v, date) else v) for k, v in row.items()} for row in rows]


def _quarantined(frame: pl.DataFrame, rule: str, reason: pl.Expr | str) -> pl.DataFrame:
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return frame.with_columns(
        pl.lit(rule).alias("rule"), reason_expr.cast(pl.String).alias("reason")
    )


def _dates(frame: pl.DataFrame, limit: int) -> list[str]:
    return [str(d) for d in frame.get_column("date").head(limit)]


def validate_bars(
    raw: pl.DataFrame,
    instrument: Instrument,
    today: date,
    rules: ValidationRules = DEFAULT_RULES,
) -> ValidationReport:
    """Judge one symbol's raw bars against the contract (see the module docstring)."""
    symbol = instrument.symbol
    bars = conform_bars(raw).filter(pl.col("symbol") == symbol)
    results: dict[str, RuleResult] = {}
    quarantine: list[pl.DataFrame] = []
    n = rules.examples

    if bars.is_empty():
        verdicts = {r: RuleResult(r, False, ERROR, "no bars delivered", {"rows": 0}) for r in RULES}
        return ValidationReport(symbol, verdicts, adjust_prices(bars), empty_quarantine(), 0)

    # -- temporal integrity --------------------------------------------------------------------
    deduped = bars.unique(maintain_order=True)
    repaired = bars.height - deduped.height
    conflicting = deduped.filter(pl.col("date").is_duplicated())
    future = deduped.filter(pl.col("date") > today)
    kept = deduped.filter(~pl.col("date").is_duplicated() & (pl.col("date") <= today))
    first, last = kept["date"].min(), kept["date"].max()
    sessions = (
        exchange_sessions(instrument.calendar, first, last)
        if first is not None
        else pl.Series("date", [], dtype=pl.Date)
    )
    off_session = kept.filter(~pl.col("date").is_in(sessions.implode()))
    trading = (pl.col("high") > pl.col("low")) & pl.all_horizontal(
        [pl.col(c).is_not_null() for c in PRICE_COLUMNS]
    )
    explained = (
        off_session.filter(trading)
        if instrument.asset_class is AssetClass.INDEX
        else off_session.clear()
    )
    unexplained = off_session.join(explained.select("date"), on="date", how="anti")
    kept = kept.join(unexplained.select("date"), on="date", how="anti")
    quarantine += [
        _quarantined(
            conflicting, TEMPORAL_INTEGRITY, "the same date delivered twice with different values"
        ),
        _quarantined(future, TEMPORAL_INTEGRITY, f"dated after today ({today})"),
        _quarantined(unexplained, TEMPORAL_INTEGRITY, f"not a {instrument.calendar} session"),
    ]
    temporal_meta = {
        "rows_delivered": bars.height,
        "exact_duplicates_repaired": repaired,
        "conflicting_duplicate_dates": conflicting["date"].n_unique(),
        "conflicting_examples": _examples(
            conflicting, ["date", "open", "high", "low", "close", "volume"], n
        ),
        "future_dates": _dates(future, n),
        "future_rows": future.height,
        "today": str(today),
        "non_session_bars_quarantined": unexplained.height,
        "non_session_examples": _dates(unexplained, n),
        "special_sessions_kept": _dates(explained, 50),
        "calendar": instrument.calendar,
    }
    if conflicting.height or future.height:
        problems = []
        if conflicting.height:
            problems.append(
                f"{conflicting['date'].n_unique()} date(s) delivered twice with different values (first {conflicting['date'][0]})"
            )
        if future.height:
            problems.append(
                f"{future.height} bar(s) dated after {today} (first {future['date'][0]})"
            )
        results[TEMPORAL_INTEGRITY] = RuleResult(
            TEMPORAL_INTEGRITY, False, ERROR, "; ".join(problems), temporal_meta
        )
    elif unexplained.height:
        results[TEMPORAL_INTEGRITY] = RuleResult(
            TEMPORAL_INTEGRITY,
            False,
            WARN,
            f"{unexplained.height} bar(s) on non-sessions quarantined (first {unexplained['date'][0]})",
            temporal_meta,
        )
    else:
        results[TEMPORAL_INTEGRITY] = RuleResult(
            TEMPORAL_INTEGRITY,
            True,
            WARN,
            f"{kept.height} bars in order, unique and on sessions",
            temporal_meta,
        )

    # -- OHLC logic ------------------------------------------------------------------------------
    o, h, lo, c = (pl.col(x) for x in PRICE_COLUMNS)
    missing = pl.any_horizontal([pl.col(x).is_null() | pl.col(x).is_nan() for x in PRICE_COLUMNS])
    reason = (
        pl.when(missing)
        .then(pl.lit("missing or NaN price"))
        .when(pl.min_horizontal(o, h, lo, c) <= 0)
        .then(pl.lit("price <= 0"))
        .when(h < lo)
        .then(pl.lit("high < low"))
        .when(h < pl.max_horizontal(o, c))
        .then(pl.lit("high < max(open, close)"))
        .when(lo > pl.min_horizontal(o, c))
        .then(pl.lit("low > min(open, close)"))
    )
    judged = kept.with_columns(reason.alias("reason"))
    bad_bars = judged.filter(pl.col("reason").is_not_null())
    kept = judged.filter(pl.col("reason").is_null()).drop("reason")
    quarantine.append(bad_bars.with_columns(pl.lit(OHLC_LOGIC).alias("rule")))
    limit = rules.isolated_limit(judged.height)
    ohlc_meta = {
        "bad_bars": bad_bars.height,
        "rows_checked": judged.height,
        "isolated_limit": limit,
        "by_reason": {r: k for r, k in bad_bars.group_by("reason").len().iter_rows()},
        "examples": _examples(bad_bars, ["date", "open", "high", "low", "close", "reason"], n),
    }
    if bad_bars.is_empty():
        results[OHLC_LOGIC] = RuleResult(
            OHLC_LOGIC, True, WARN, "every bar is consistent", ohlc_meta
        )
    else:
        severity = WARN if bad_bars.height <= limit else ERROR
        results[OHLC_LOGIC] = RuleResult(
            OHLC_LOGIC,
            False,
            severity,
            f"{bad_bars.height} inconsistent bar(s) (limit for isolated bars: {limit}); first "
            f"{bad_bars['date'][0]}: {bad_bars['reason'][0]}",
            ohlc_meta,
        )

    # -- completeness (on what is left) ----------------------------------------------------------
    completeness, early = _completeness(kept, sessions, rules, instrument)
    results[COMPLETENESS] = completeness
    if early.height:
        cut = completeness.metadata["usable_from"]
        quarantine.append(
            _quarantined(early, COMPLETENESS, f"early history before {cut} is incomplete")
        )
        kept = kept.filter(pl.col("date") >= date.fromisoformat(cut))

    # -- price sanity (adjusted) -----------------------------------------------------------------
    adjusted = adjust_prices(kept)
    threshold = rules.return_threshold(instrument)
    moves = adjusted.with_columns(
        (pl.col("close") / pl.col("close").shift(1) - 1).alias("return"),
        pl.col("close").shift(1).alias("previous_close"),
    )
    jumps = moves.filter(pl.col("return").abs() > threshold)
    price_meta = {
        "threshold_abs_return": threshold,
        "max_abs_return": moves["return"].abs().max(),
        "violations": jumps.height,
        "examples": _examples(jumps, ["date", "previous_close", "close", "return"], n),
        "factor_sources": {s: k for s, k in adjusted.group_by("factor_source").len().iter_rows()},
    }
    if jumps.height:
        first_jump = jumps.row(0, named=True)
        results[PRICE_SANITY] = RuleResult(
            PRICE_SANITY,
            False,
            ERROR,
            f"{jumps.height} adjusted daily move(s) beyond ±{threshold:.0%}; first {first_jump['date']}: "
            f"{first_jump['previous_close']:.4g} -> {first_jump['close']:.4g} ({first_jump['return']:+.1%}), "
            "an unadjusted split or a broken series",
            price_meta,
        )
    else:
        results[PRICE_SANITY] = RuleResult(
            PRICE_SANITY,
            True,
            ERROR,
            f"largest adjusted move {price_meta['max_abs_return'] or 0:.1%}",
            price_meta,
        )

    # -- volume sanity ---------------------------------------------------------------------------
    # A negative volume is impossible for any instrument; an equity bar without volume on a
    # session is not a trade print either. Both are quarantined, never kept with a warning.
    volume = pl.col("volume")
    negative = volume < 0
    absent = volume.is_null() | volume.is_nan() | (volume <= 0)
    impossible = negative if instrument.asset_class is AssetClass.INDEX else absent
    no_volume = adjusted.filter(impossible)
    volume_meta = {
        "asset_class": instrument.asset_class.value,
        "rows_without_volume": no_volume.height,
        "examples": _dates(no_volume, n),
    }
    if no_volume.height:
        quarantine.append(
            _quarantined(
                kept.join(no_volume.select("date"), on="date", how="semi"),
                VOLUME_SANITY,
                pl.when(pl.col("volume") < 0)
                .then(pl.lit("negative volume"))
                .otherwise(pl.lit("no volume on a session")),
            )
        )
        adjusted = adjusted.join(no_volume.select("date"), on="date", how="anti")
        limit = rules.isolated_limit(kept.height)
        severity = WARN if no_volume.height <= limit else ERROR
        results[VOLUME_SANITY] = RuleResult(
            VOLUME_SANITY,
            False,
            severity,
            f"{no_volume.height} session(s) with negative or no volume quarantined (limit for "
            f"isolated days: {limit}); first {no_volume['date'][0]}",
            {**volume_meta, "isolated_limit": limit},
        )
    elif instrument.asset_class is AssetClass.INDEX:
        results[VOLUME_SANITY] = RuleResult(
            VOLUME_SANITY,
            True,
            WARN,
            "indices may report no volume (exempt); none is negative",
            {**volume_meta, "exempt": True},
        )
    else:
        results[VOLUME_SANITY] = RuleResult(
            VOLUME_SANITY, True, WARN, "volume on every trading day", volume_meta
        )

    parts = [q.select(*BAR_COLUMNS, *QUARANTINE_COLUMNS) for q in quarantine if q.height]
    quarantined = pl.concat([empty_quarantine(), *parts], how="vertical_relaxed")
    return ValidationReport(
        symbol, {r: results[r] for r in RULES}, adjusted, quarantined.sort("date"), repaired
    )


def empty_quarantine() -> pl.DataFrame:
    """A zero-row quarantine table: the raw bar columns plus rule and reason."""
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _completeness(
    kept: pl.DataFrame, sessions: pl.Series, rules: ValidationRules, instrument: Instrument
) -> tuple[RuleResult, pl.DataFrame]:
    """Missing sessions over trailing years; trims incomplete early history, blocks a bad recent year."""
    if kept.is_empty():
        return RuleResult(COMPLETENESS, False, ERROR, "no valid bars left", {}), kept.clear()
    expected = sessions.filter(sessions.is_between(kept["date"].min(), kept["date"].max()))
    present = expected.is_in(kept["date"].implode())
    missing_dates = expected.filter(~present)
    window = min(rules.completeness_window, len(expected))
    share = (~present).cast(pl.Float64).rolling_mean(window_size=window, min_samples=window)
    bad = share >= rules.max_missing_share
    meta: dict[str, Any] = {
        "calendar": instrument.calendar,
        "expected_sessions": len(expected),
        "present_sessions": int(present.sum()),
        "missing_sessions": len(missing_dates),
        "missing_share": round(len(missing_dates) / max(len(expected), 1), 5),
        "threshold_missing_share": rules.max_missing_share,
        "window_sessions": window,
        "worst_window_missing_share": round(float(share.max() or 0.0), 5),
        "missing_examples": [str(d) for d in missing_dates.head(rules.examples)],
        "usable_from": str(kept["date"].min()),
    }
    if not bad.any() and kept.height < rules.min_usable_sessions:
        return (
            RuleResult(
                COMPLETENESS,
                False,
                ERROR,
                f"only {kept.height} complete session(s) from {kept['date'].min()} to "
                f"{kept['date'].max()}: fewer than the {rules.min_usable_sessions} a model "
                "needs (a truncated delivery, or a listing too young)",
                meta,
            ),
            kept.clear(),
        )
    if not bad.any():
        return (
            RuleResult(
                COMPLETENESS,
                True,
                ERROR,
                f"{len(missing_dates)} of {len(expected)} sessions missing ({meta['missing_share']:.2%}); "
                f"no {window}-session window reaches {rules.max_missing_share:.0%}",
                meta,
            ),
            kept.clear(),
        )
    last_bad = int(bad.arg_true()[-1])
    holes_before = missing_dates.filter(missing_dates <= expected[last_bad])
    later = kept.filter(pl.col("date") > holes_before.max())
    usable = expected.filter(expected > holes_before.max())
    meta["usable_from"] = str(later["date"].min()) if later.height else None
    meta["usable_sessions"] = len(usable)
    if last_bad == len(expected) - 1 or len(usable) < rules.min_usable_sessions:
        return (
            RuleResult(
                COMPLETENESS,
                False,
                ERROR,
                f"{len(missing_dates)} of {len(expected)} sessions missing ({meta['missing_share']:.1%}); "
                f"the {window} sessions to {expected[last_bad]} miss {share[last_bad]:.1%} "
                f"(threshold {rules.max_missing_share:.0%}) and less than {rules.min_usable_sessions} "
                "complete sessions remain after them",
                meta,
            ),
            kept.clear(),
        )
    early = kept.filter(pl.col("date") < later["date"].min())
    return (
        RuleResult(
            COMPLETENESS,
            False,
            WARN,
            f"early history is incomplete (the {window} sessions to {expected[last_bad]} miss "
            f"{share[last_bad]:.1%}); {early.height} bars before {meta['usable_from']} quarantined",
            meta,
        ),
        early,
    )
