"""The Yahoo source against Yahoo's chart API replayed at the HTTP layer (see tests/support)."""

from datetime import date

import polars as pl
import pytest

from resources.sources import DeliveryMode, EmptyResponseError, YahooSource
from resources.sources.yahoo import NetworkUnreachableError, network_problem
from tests.support.yahoo_replay import YahooReplayAdapter, replay_session


@pytest.fixture
def replay():
    return YahooReplayAdapter()


def make_source(replay, tmp_path, sleeps=None, **kwargs):
    return YahooSource(
        tmp_path / "cache",
        start=kwargs.pop("start", date(2024, 1, 1)),
        as_of=kwargs.pop("as_of", date(2024, 2, 29)),
        session=replay_session(replay),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        **kwargs,
    )


def test_first_fetch_asks_for_the_whole_window(replay, tmp_path, sample_panel):
    delivery = make_source(replay, tmp_path).fetch("AAPL")
    bars = delivery.bars
    assert delivery.mode is DeliveryMode.SNAPSHOT
    assert bars["date"].min() == date(2024, 1, 2) and bars["date"].max() == date(2024, 2, 29)
    expected = sample_panel.filter(
        (pl.col("symbol") == "AAPL")
        & pl.col("date").is_between(date(2024, 1, 1), date(2024, 2, 29))
    ).sort("date")
    assert bars.height == expected.height == 41
    assert bars["close"].to_list() == pytest.approx(expected["close"].to_list(), rel=1e-12)
    assert bars["adj_close"].to_list() == pytest.approx(expected["adj_close"].to_list(), rel=1e-12)
    (request,) = replay.chart_requests("AAPL")
    assert request["interval"] == ["1d"]


def test_incremental_fetch_asks_only_since_the_last_stored_bar_with_overlap(replay, tmp_path):
    source = make_source(replay, tmp_path, overlap_days=5)
    delivery = source.fetch("AAPL", last_stored=date(2024, 2, 20))
    assert delivery.mode is DeliveryMode.INCREMENTAL
    assert delivery.requested_start == date(2024, 2, 15)
    assert delivery.bars["date"].min() == date(2024, 2, 15)
    assert delivery.bars.height == 10
    (request,) = replay.chart_requests("AAPL")
    asked_from = pl.from_epoch(pl.Series([int(request["period1"][0])]), time_unit="s")[0].date()
    assert asked_from == date(2024, 2, 15)


def test_empty_answer_is_an_error_after_retries(replay, tmp_path):
    replay.empty.add("^VIX")
    sleeps: list[float] = []
    with pytest.raises(EmptyResponseError, match=r"\^VIX: Yahoo gave no bars .* after 3 attempts"):
        make_source(replay, tmp_path, sleeps=sleeps, retries=2, backoff_s=0.5).fetch("^VIX")
    assert sleeps == [0.5, 1.0]  # exponential backoff


def test_transient_5xx_then_success(replay, tmp_path):
    # yfinance retries a >=400 answer once itself; three 5xx make our retry loop step in.
    replay.fail_next("AAPL", 503, 502, 500)
    sleeps: list[float] = []
    delivery = make_source(replay, tmp_path, sleeps=sleeps).fetch("AAPL")
    assert delivery.bars.height == 41
    assert len(sleeps) == 1
    assert len(replay.chart_requests("AAPL")) == 4


def test_answers_are_cached_on_disk(replay, tmp_path):
    source = make_source(replay, tmp_path)
    first = source.fetch("AAPL")
    second = source.fetch("AAPL")
    assert first.details["cache"] == "miss" and second.details["cache"] == "hit"
    assert second.bars.equals(first.bars)
    assert len(replay.chart_requests("AAPL")) == 1
    expired = make_source(replay, tmp_path, cache_ttl_s=0)
    assert expired.fetch("AAPL").details["cache"] == "miss"


def test_an_unreachable_network_is_named_not_called_a_delisted_symbol(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    offline = YahooSource(tmp_path, endpoint=("127.0.0.1", port), retries=0)
    with pytest.raises(NetworkUnreachableError) as raised:
        offline.fetch("AAPL")
    message = str(raised.value)
    assert message.startswith("AAPL: network unreachable: cannot connect to 127.0.0.1:")
    assert "refused" in message.lower() and "delisted" in message  # says why it is not that
    assert network_problem("127.0.0.1", port) is not None
