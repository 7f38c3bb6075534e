"""The notifier against real local servers: the JSON it posts, its retries, and channels down."""

import logging
import time

import pytest

from resources import settings
from resources.alerts import Alerts
from tests.support.webhook import free_port, smtp_sink, webhook_server

FAST = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.02}


@pytest.fixture
def alert_log(caplog):
    caplog.set_level(logging.WARNING, logger="market.alerts")
    return caplog


def lines(caplog, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "market.alerts" and r.levelno == level
    ]


def test_an_alert_is_logged_in_one_line_and_posted_as_json(alert_log):
    with webhook_server() as hook:
        alert = Alerts(webhook_url=hook.url).send(
            "symbol_blocked", "1 symbol(s) blocked: MSFT", "MSFT: price_sanity\n(split)", {"n": 1}
        )
    assert len(hook.received) == 1
    payload = hook.received[0]
    assert set(payload) == {"kind", "subject", "message", "details", "at"}
    assert payload["kind"] == "symbol_blocked" and payload["details"] == {"n": 1}
    assert payload["subject"] == "1 symbol(s) blocked: MSFT" and payload["at"] == alert.at
    assert lines(alert_log, logging.WARNING) == [
        "alert symbol_blocked | 1 symbol(s) blocked: MSFT | MSFT: price_sanity / (split)"
    ]
    assert lines(alert_log, logging.ERROR) == []


def test_without_a_webhook_the_alert_is_only_logged(alert_log):
    Alerts().send("run_failed", "nightly run 1234 failed", "ohlcv: ValueError: disk full")
    assert lines(alert_log, logging.WARNING) == [
        "alert run_failed | nightly run 1234 failed | ohlcv: ValueError: disk full"
    ]


def test_a_server_error_is_retried_with_backoff_until_it_answers(alert_log):
    with webhook_server() as hook:
        hook.statuses = [500, 500]
        started = time.monotonic()
        delivered = Alerts(webhook_url=hook.url, attempts=3, **FAST).post(
            Alerts().send("run_failed", "s", "m")
        )
    assert delivered
    assert len(hook.received) == 3  # two 500s, then the 200
    assert time.monotonic() - started < 2
    assert lines(alert_log, logging.ERROR) == []


def test_a_webhook_that_stays_down_is_logged_as_an_error_naming_the_status(alert_log):
    with webhook_server() as hook:
        hook.statuses = [503] * 5
        Alerts(webhook_url=hook.url, attempts=3, **FAST).send("run_failed", "s", "m")
    assert len(hook.received) == 3
    (error,) = lines(alert_log, logging.ERROR)
    assert hook.url in error and "HTTP 503" in error and "3 attempt" in error


def test_a_refused_request_is_not_retried(alert_log):
    with webhook_server() as hook:
        hook.statuses = [404]
        Alerts(webhook_url=hook.url, attempts=3, **FAST).send("run_failed", "s", "m")
    assert len(hook.received) == 1  # the same request would be refused again
    (error,) = lines(alert_log, logging.ERROR)
    assert "HTTP 404" in error and "1 attempt" in error


def test_nothing_listening_logs_an_error_naming_the_url_and_never_raises(alert_log):
    url = f"http://127.0.0.1:{free_port()}/hook"
    alert = Alerts(webhook_url=url, attempts=3, **FAST).send("run_failed", "s", "m")
    assert alert.kind == "run_failed"
    (error,) = lines(alert_log, logging.ERROR)
    assert url in error and "refused" in error and "3 attempt" in error
    assert lines(alert_log, logging.WARNING) == ["alert run_failed | s | m"]


def test_a_webhook_that_does_not_answer_times_out(alert_log):
    with webhook_server() as hook:
        hook.delay = 5
        started = time.monotonic()
        Alerts(webhook_url=hook.url, attempts=2, timeout_seconds=0.2, **FAST).send(
            "run_failed", "s", "m"
        )
        elapsed = time.monotonic() - started
    (error,) = lines(alert_log, logging.ERROR)
    assert hook.url in error and "timed out after 0.2 s" in error and "2 attempt" in error
    assert elapsed < 3


def test_an_alert_is_e_mailed_through_the_smtp_server(alert_log):
    with smtp_sink() as (server, messages):
        Alerts(smtp_server=server, email_to=["ops@example.org", "me@example.org"]).send(
            "symbol_stale", "1 symbol(s) stale: ^VIX", "^VIX: last bar 2026-05-01", {"x": 1}
        )
    (message,) = messages
    assert "Subject: [market] symbol_stale: 1 symbol(s) stale: ^VIX" in message
    assert "To: ops@example.org, me@example.org" in message
    assert "^VIX: last bar 2026-05-01" in message
    assert lines(alert_log, logging.ERROR) == []


def test_an_smtp_server_that_is_down_is_logged_and_never_raises(alert_log):
    server = f"127.0.0.1:{free_port()}"
    Alerts(smtp_server=server, email_to=["ops@example.org"]).send("run_failed", "s", "m")
    (error,) = lines(alert_log, logging.ERROR)
    assert server in error and "refused" in error


def test_settings_read_the_alert_channels(monkeypatch):
    monkeypatch.setenv("MARKET_ALERT_WEBHOOK", "http://hooks.example/x")
    monkeypatch.setenv("MARKET_ALERT_SMTP", "mail.example:2525")
    monkeypatch.setenv("MARKET_ALERT_EMAIL_TO", "a@example.org, b@example.org,")
    monkeypatch.setenv("DAGSTER_UI_URL", "http://dagster.example:3000/")
    assert settings.alert_webhook() == "http://hooks.example/x"
    assert settings.alert_smtp() == "mail.example:2525"
    assert settings.alert_email_to() == ["a@example.org", "b@example.org"]
    alerts = Alerts(dagster_ui_url=settings.dagster_ui_url())
    assert alerts.run_url("abc") == "http://dagster.example:3000/runs/abc"
    monkeypatch.setenv("MARKET_ALERT_SMTP", "mail.example")
    with pytest.raises(ValueError, match="host:port"):
        settings.alert_smtp()
    for name in ("MARKET_ALERT_WEBHOOK", "MARKET_ALERT_SMTP", "MARKET_ALERT_EMAIL_TO"):
        monkeypatch.delenv(name)
    assert settings.alert_webhook() is None and settings.alert_smtp() is None
    assert settings.alert_email_to() == []
