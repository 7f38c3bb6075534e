"""``market ask``: the answer on stdout and exit 0; an unreadable question, a ticker outside the
universe or a lake without ``pattern_insights`` exit 2 with one message and no traceback."""

from __future__ import annotations

import math

import polars as pl
import pytest

from pipelines.cli import main
from quant.universe import DEFAULT_UNIVERSE_PATH


@pytest.fixture
def lake(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "lake").mkdir(parents=True)
    monkeypatch.setenv("MARKET_DATA_DIR", str(data))
    monkeypatch.setenv("MARKET_UNIVERSE", str(DEFAULT_UNIVERSE_PATH))
    return data / "lake"


def write_insights(lake) -> None:
    pl.DataFrame(
        {
            "scope": ["symbol", "equities"],
            "symbol": ["AAPL", "EQUITIES"],
            "event": ["up_streak_3", "volume_spike"],
            "label": ["3th consecutive higher close", "volume above 2x its 20-session mean"],
            "horizon": [1, 1],
            "n_events": [212, 4120],
            "mean_return": [math.log1p(0.0012), math.log1p(-0.0021)],
            "ci_low": [math.log1p(-0.0005), math.log1p(-0.0033)],
            "ci_high": [math.log1p(0.0029), math.log1p(-0.0009)],
            "p_up": [0.53, 0.46],
            "p_reversal": [0.47, None],
            "baseline_mean": [math.log1p(0.0008), math.log1p(0.0005)],
            "q_value": [0.81, 0.004],
            "holdout_n": [60, 900],
            "persists": [False, True],
            "insight": [False, True],
            "verdict": ["no clear pattern", "insight: tends to fall"],
        }
    ).write_parquet(lake / "pattern_insights.parquet")


def test_a_question_is_answered_with_the_numbers(lake, capsys):
    write_insights(lake)
    assert main(["ask", "What happens to AAPL after three consecutive green candles?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "After 3 consecutive up closes, AAPL's next session averaged +0.12 % (95 % CI −0.05 % "
        "to +0.29 %; up 53 % of 212 times) against its usual +0.08 %: no clear pattern "
        "(q = 0.81; the holdout did not confirm it). Over the next 5 sessions: no row"
    )
    assert main(["ask", "What's the average move after a volume spike tomorrow?"]) == 0
    assert "insight: tends to fall (q = 0.004; the holdout confirmed it)" in capsys.readouterr().out


def test_an_unreadable_question_lists_the_forms(lake, capsys):
    write_insights(lake)
    assert main(["ask", "../../etc/passwd"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert "Questions I understand:" in captured.err
    assert "When does momentum typically reverse?" in captured.err


def test_an_unknown_ticker_is_one_line_naming_the_universe_file(lake, capsys):
    assert main(["ask", "What happens to TSLA after a gap up?"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'TSLA' is not a symbol" in err
    assert str(DEFAULT_UNIVERSE_PATH) in err


def test_no_table_yet_says_run_make_run_first(lake, capsys):
    assert main(["ask", "When does momentum typically reverse?"]) == 2
    err = capsys.readouterr().err
    assert "run `make run` first" in err and "Traceback" not in err


def test_a_corrupt_table_is_one_message_not_a_traceback(lake, capsys):
    (lake / "pattern_insights.parquet").write_bytes(b"not parquet")
    assert main(["ask", "AAPL after a gap up"]) == 2
    err = capsys.readouterr().err
    assert "cannot be used" in err and "run `make run` first" in err
