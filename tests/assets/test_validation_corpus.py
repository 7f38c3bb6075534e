"""The bad-input corpus through the csv source, ingestion and validation on a real instance.

Each case asserts the verdict of every rule (which one fails, at which severity, and that the
others pass), whether ``ohlcv`` was written, and what went to quarantine.
"""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import make_resources
from tests.support.validation_runs import check_verdicts, ingest, validate

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
PASS = (True, "ERROR")
OK_WARN = (True, "WARN")
RULE_DEFAULTS = {
    "completeness": PASS,
    "ohlc_logic": OK_WARN,
    "price_sanity": PASS,
    "volume_sanity": OK_WARN,
    "temporal_integrity": OK_WARN,
}


def expect(**failing: tuple[bool, str]) -> dict[str, tuple[bool, str]]:
    return {**RULE_DEFAULTS, **failing}


# case -> (symbol, expected rule verdicts, ohlcv written?, quarantined rows by rule)
CASES = {
    "clean": ("AAPL", expect(), True, {}),
    "unadjusted_split": ("AAPL", expect(price_sanity=(False, "ERROR")), False, None),
    "high_below_low": ("AAPL", expect(ohlc_logic=(False, "WARN")), True, {"ohlc_logic": 1}),
    "negative_price": ("AAPL", expect(ohlc_logic=(False, "WARN")), True, {"ohlc_logic": 1}),
    "nan_close": ("AAPL", expect(ohlc_logic=(False, "WARN")), True, {"ohlc_logic": 1}),
    "systemic_bad_ohlc": ("AAPL", expect(ohlc_logic=(False, "ERROR")), False, None),
    # a session without volume is not a trade print: quarantined, not kept with a warning
    "zero_volume_equity": (
        "AAPL",
        expect(volume_sanity=(False, "WARN")),
        True,
        {"volume_sanity": 1},
    ),
    "zero_volume_index": ("^GSPC", expect(), True, {}),
    "duplicated_dates": ("AAPL", expect(temporal_integrity=(False, "ERROR")), False, None),
    "weekend_bar": (
        "AAPL",
        expect(temporal_integrity=(False, "WARN")),
        True,
        {"temporal_integrity": 1},
    ),
    "ten_percent_missing": ("AAPL", expect(completeness=(False, "ERROR")), False, None),
    "exact_duplicate_rows": ("AAPL", expect(), True, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_case(case, instance, data_dir):
    symbol, verdicts, writes_ohlcv, quarantined = CASES[case]
    resources = make_resources(data_dir, source="csv", csv_dir=str(CORPUS / case), start=None)
    assert ingest(symbol, resources, instance).success
    result = validate(symbol, resources, instance)
    got = check_verdicts(result)
    assert {k: got[k] for k in verdicts} == verdicts, got
    lake = resources["lake"]
    assert lake.exists("ohlcv", symbol) is writes_ohlcv
    if writes_ohlcv:
        assert result.success
        assert got["ohlcv_expectations"] == (True, "ERROR")
        stored = lake.read("ohlcv", symbol)
        raw = lake.read("raw_ohlcv", symbol)
        quarantine = lake.read("ohlcv_quarantine", symbol)
        assert dict(quarantine.group_by("rule").len().iter_rows()) == quarantined
        assert stored.height == raw.unique().height - quarantine.height
        assert stored["date"].is_unique().all()
    else:
        # ohlcv is the gate: the only symbol of the run is blocked, so nothing is written and
        # the step says which symbol, file and rule, and what to do
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert failure.step_key == "ohlcv"
        description = failure.step_failure_data.user_failure_data.description
        failed = [
            rule
            for rule, (passed, severity) in verdicts.items()
            if severity == "ERROR" and not passed
        ]
        assert (
            f"{symbol} in {lake.path('raw_ohlcv', symbol)}: rule {failed[0]} failed" in description
        )
        assert "what to do:" in description and f"--symbols {symbol}" in description


def evaluation_of(case: str, check_name: str, instance, data_dir):
    """Ingest and validate one corpus case; the named check's evaluation."""
    resources = make_resources(data_dir, source="csv", csv_dir=str(CORPUS / case), start=None)
    ingest("AAPL", resources, instance)
    result = validate("AAPL", resources, instance)
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == check_name)


def test_exact_duplicates_are_repaired_and_counted(instance, data_dir):
    evaluation = evaluation_of("exact_duplicate_rows", "temporal_integrity", instance, data_dir)
    assert evaluation.metadata["exact_duplicates_repaired"].value == 3


def test_error_metadata_names_the_rule_the_rows_and_the_threshold(instance, data_dir):
    evaluation = evaluation_of("unadjusted_split", "price_sanity", instance, data_dir)
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert (
        meta["symbol"] == "AAPL" and meta["threshold_abs_return"] == 0.5 and meta["violations"] == 1
    )
    assert meta["examples"][0]["date"] == "2023-09-01"
    assert meta["examples"][0]["return"] == pytest.approx(-0.75, abs=0.02)
    assert "2023-09-01" in meta["summary"] and "unadjusted split" in meta["summary"]


def test_future_dated_bar_blocks(instance, data_dir, tmp_path):
    clean = pl.read_csv(CORPUS / "clean" / "AAPL.csv", try_parse_dates=True)
    ahead = datetime.now(UTC).date() + timedelta(days=30)
    future = clean.tail(1).with_columns(pl.lit(ahead).alias("Date"))
    (tmp_path / "csv").mkdir()
    pl.concat([clean, future]).write_csv(tmp_path / "csv" / "AAPL.csv")
    resources = make_resources(data_dir, source="csv", csv_dir=str(tmp_path / "csv"), start=None)
    ingest("AAPL", resources, instance)
    result = validate("AAPL", resources, instance)
    assert check_verdicts(result)["temporal_integrity"] == (False, "ERROR")
    assert not resources["lake"].exists("ohlcv", "AAPL")


@pytest.mark.parametrize(
    "case, message",
    [
        ("column_of_strings", "line 2, column 'volume': 'n/a' is not a number"),
        ("empty_file", "the file is empty"),
    ],
)
def test_unreadable_files_stop_at_ingestion(case, message, instance, data_dir):
    resources = make_resources(data_dir, source="csv", csv_dir=str(CORPUS / case), start=None)
    result = ingest("AAPL", resources, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert message in failure.step_failure_data.error.message + str(
        failure.step_failure_data.user_failure_data.description
    )
    assert not resources["lake"].exists("raw_ohlcv", "AAPL")


def test_every_corpus_defect_class_is_covered():
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders == set(CASES) | {"column_of_strings", "empty_file"}
    assert len(folders - {"clean"}) + 1 >= 12  # + the future date, built at test time


def test_quarantine_is_queryable_in_duckdb(instance, data_dir):
    resources = make_resources(
        data_dir, source="csv", csv_dir=str(CORPUS / "weekend_bar"), start=None
    )
    ingest("AAPL", resources, instance)
    validate("AAPL", resources, instance)
    rows = (
        resources["warehouse"].query("SELECT date, rule, reason FROM ohlcv_quarantine").to_dicts()
    )
    assert rows == [
        {"date": date(2023, 10, 14), "rule": "temporal_integrity", "reason": "not a NYSE session"}
    ]
