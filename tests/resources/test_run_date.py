"""``MarketData.run_date``: the date freshness is judged against, per source."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.conftest import make_resources


def test_the_sample_runs_on_its_equities_last_session_unless_as_of_is_set(data_dir):
    assert make_resources(data_dir)["market_data"].run_date() == date(2026, 5, 29)
    replay = make_resources(data_dir, as_of="2024-03-15")["market_data"]
    assert replay.run_date() == date(2024, 3, 15)


def test_live_sources_run_on_today_utc(data_dir):
    for source in ("csv", "yahoo"):
        market_data = make_resources(data_dir, source=source)["market_data"]
        assert market_data.run_date() == datetime.now(UTC).date()
    pinned = make_resources(data_dir, source="csv", as_of="2025-01-31")["market_data"]
    assert pinned.run_date() == date(2025, 1, 31)


def test_the_threshold_setting(data_dir, monkeypatch):
    market_data = make_resources(data_dir)["market_data"]
    monkeypatch.delenv("MARKET_STALE_AFTER_SESSIONS", raising=False)
    assert market_data.max_sessions_behind == 2
    monkeypatch.setenv("MARKET_STALE_AFTER_SESSIONS", "0")
    assert market_data.max_sessions_behind == 0
    monkeypatch.setenv("MARKET_STALE_AFTER_SESSIONS", "-1")
    with pytest.raises(ValueError, match="MARKET_STALE_AFTER_SESSIONS"):
        _ = market_data.max_sessions_behind
    configured = market_data.model_copy(update={"stale_after_sessions": 5})
    assert configured.max_sessions_behind == 5  # the launchpad's value wins over the setting
