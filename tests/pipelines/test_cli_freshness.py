"""``market predict`` and ``market summary`` say which symbols are stale, in process, on a
temporary lake written by hand (no pipeline run)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from pipelines.cli import main

RUN_DATE = date(2026, 5, 29)  # the sample's default run date: its equities' last session


@pytest.fixture
def lake(tmp_path, monkeypatch, sample_panel):
    data = tmp_path / "data"
    monkeypatch.setenv("MARKET_DATA_DIR", str(data))
    monkeypatch.delenv("MARKET_AS_OF", raising=False)
    monkeypatch.delenv("MARKET_SOURCE", raising=False)
    monkeypatch.delenv("MARKET_STALE_AFTER_SESSIONS", raising=False)
    root = data / "lake"
    for symbol in ("AAPL", "^DJI", "^NSEI"):
        bars = sample_panel.filter(pl.col("symbol") == symbol).tail(5)
        for asset in ("raw_ohlcv", "ohlcv"):
            (root / asset).mkdir(parents=True, exist_ok=True)
            bars.write_parquet(root / asset / f"{symbol.lstrip('^')}.parquet")
    return root


def signals_frame() -> pl.DataFrame:
    """Signals as the asset stores them (only the columns the CLI shows)."""
    return pl.DataFrame(
        {
            "symbol": ["AAPL", "^DJI"],
            "date": [RUN_DATE, date(2025, 7, 11)],
            "signal": ["BUY", "HOLD"],
            "confidence": [0.3, 0.4],
            "position": [0.5, 0.0],
            "p_up": [0.6, 0.7],
            "p_neutral": [0.1, 0.0],
            "p_down": [0.3, 0.3],
            "vol_forecast": [0.2, 0.2],
            "regime": ["Bull", "Bull"],
            "halted": [False, False],
            "data_date": [RUN_DATE, date(2025, 7, 11)],
            "run_date": [RUN_DATE, RUN_DATE],
            "sessions_behind": [0, 222],
            "stale": [False, True],
        }
    )


def test_predict_says_a_symbol_is_stale_and_held(lake, capsys):
    signals_frame().write_parquet(lake / "signals.parquet")
    assert main(["predict", "^DJI", "AAPL"]) == 0
    out = capsys.readouterr().out
    assert (
        "^DJI: data is stale — last bar 2025-07-11, 222 NYSE sessions behind the run date "
        "2026-05-29; signal held (HOLD)"
    ) in out
    assert "AAPL: data is stale" not in out and "data_date" in out and "stale" in out

    # signals stored before the freshness columns existed still print, without the notes
    old = signals_frame().drop("data_date", "run_date", "sessions_behind", "stale")
    old.write_parquet(lake / "signals.parquet")
    assert main(["predict", "^DJI"]) == 0
    assert "data is stale" not in capsys.readouterr().out


def test_summary_shows_sessions_behind_and_stale(lake, capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    header = lines["symbol"]
    assert header[-2:] == ["sessions_behind", "stale"]
    assert lines["AAPL"][-2:] == ["0", "False"]
    assert lines["^DJI"][-2:] == ["222", "True"]
    assert lines["^NSEI"][-2:] == ["32", "True"]
    assert "run date 2026-05-29; stale beyond 2 (MARKET_STALE_AFTER_SESSIONS)" in out


def test_the_threshold_comes_from_the_environment(lake, capsys, monkeypatch):
    monkeypatch.setenv("MARKET_STALE_AFTER_SESSIONS", "40")
    assert main(["summary"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line}
    assert lines["^NSEI"][-1] == "False" and lines["^DJI"][-1] == "True"
    monkeypatch.setenv("MARKET_STALE_AFTER_SESSIONS", "soon")
    assert main(["summary"]) == 2
    assert "MARKET_STALE_AFTER_SESSIONS must be a whole number >= 0" in capsys.readouterr().err
