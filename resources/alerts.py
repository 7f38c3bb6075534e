"""Alerts: telling someone that a run failed, a symbol is blocked or stale, or a champion changed.

``Alerts.send`` always writes one line to the Python logger ``market.alerts`` (level WARNING:
``alert <kind> | <subject> | <message>``). Where configured it also

- POSTs the alert as JSON (``kind``, ``subject``, ``message``, ``details``, ``at``) to a webhook
  (``MARKET_ALERT_WEBHOOK``), with a short timeout and a few attempts, waiting exponentially
  longer between them (tenacity); a 5xx / 408 / 429 answer, a refused connection or a time-out
  is retried, any other 4xx is not (the same request would be refused again);
- sends it as an e-mail through an SMTP server (``MARKET_ALERT_SMTP`` = host:port,
  ``MARKET_ALERT_EMAIL_TO``), once.

A channel that stays down never raises into the caller (a sensor): the failure is logged as one
ERROR line naming the URL or server and the cause. The sensors are in pipelines/alerts.py.
"""

import json
import logging
import smtplib
import socket
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

import dagster as dg
import tenacity
from pydantic import Field

LOGGER = logging.getLogger("market.alerts")
RUN_FAILED, SYMBOL_BLOCKED, SYMBOL_STALE, CHAMPION_CHANGED = (
    "run_failed",
    "symbol_blocked",
    "symbol_stale",
    "champion_changed",
)
RETRIED_STATUSES = frozenset({408, 429})  # plus every 5xx


@dataclass(frozen=True)
class Alert:
    """One notification: what happened (``kind``), in a line (``subject``), in words
    (``message``), the facts behind it (``details``, JSON-able) and when (``at``, UTC ISO)."""

    kind: str
    subject: str
    message: str
    details: dict = field(default_factory=dict)
    at: str = ""

    def payload(self) -> dict:
        """The JSON body the webhook receives."""
        return asdict(self)

    def log_line(self) -> str:
        """The alert as one log line (newlines folded: one alert, one line)."""
        return " | ".join([f"alert {self.kind}", _one_line(self.subject), _one_line(self.message)])


def _one_line(text: str) -> str:
    return " / ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _retried(error: BaseException) -> bool:
    """Whether another attempt may succeed: the server failed or was unreachable, not the
    request."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in RETRIED_STATUSES
    return isinstance(error, urllib.error.URLError | OSError)


def describe_failure(error: BaseException, timeout_seconds: float) -> str:
    """Why a delivery failed, in words an operator can act on (refused, timed out, HTTP status)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (nothing listening)"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"timed out after {timeout_seconds:g} s"
    return f"{type(reason).__name__}: {reason}"


class Alerts(dg.ConfigurableResource):
    """The notifier the alert sensors use: a log line always, the webhook and e-mail when set.

    ``attempts`` webhook attempts at most, the first wait ``backoff_seconds``, doubling each
    time (at most ``max_backoff_seconds``); each attempt waits ``timeout_seconds`` for an answer.
    The defaults bound one undeliverable alert to about 10 s, so a sensor tick with its three
    kinds stays well inside Dagster's 60 s sensor time-out. ``dagster_ui_url``: the base of the
    run links in ``run_failed`` alerts.
    """

    webhook_url: str | None = None
    smtp_server: str | None = None
    email_to: list[str] = Field(default_factory=list)
    email_from: str = "market-alerts@localhost"
    attempts: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    timeout_seconds: float = 3.0
    dagster_ui_url: str = "http://127.0.0.1:3000"

    def send(self, kind: str, subject: str, message: str, details: dict | None = None) -> Alert:
        """Log the alert, then deliver it to every configured channel; never raises for a
        channel that is down (that is logged as an error). Returns the alert sent."""
        alert = Alert(
            kind,
            subject,
            message,
            dict(details or {}),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        LOGGER.warning(alert.log_line())
        if self.webhook_url:
            self.post(alert)
        if self.smtp_server and self.email_to:
            self.mail(alert)
        return alert

    def run_url(self, run_id: str) -> str:
        """The run's page in the Dagster UI."""
        return f"{self.dagster_ui_url.rstrip('/')}/runs/{run_id}"

    def post(self, alert: Alert) -> bool:
        """POST the alert as JSON to the webhook, retrying with exponential backoff; False (and
        an ERROR line naming the URL and the cause) when every attempt failed."""
        url = str(self.webhook_url)
        body = json.dumps(alert.payload(), default=str).encode()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "market-mlops-alerts"},
        )
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.attempts)),
            wait=tenacity.wait_exponential(
                multiplier=self.backoff_seconds, max=self.max_backoff_seconds
            ),
            retry=tenacity.retry_if_exception(_retried),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, urllib.request.urlopen(request, timeout=self.timeout_seconds) as r:
                    r.read()
        except Exception as error:  # whatever it is, the caller (a sensor) must go on
            tries = retrying.statistics.get("attempt_number", 1)
            LOGGER.error(
                "alert %s not delivered to webhook %s after %d attempt(s): %s",
                alert.kind,
                url,
                tries,
                describe_failure(error, self.timeout_seconds),
            )
            return False
        return True

    def mail(self, alert: Alert) -> bool:
        """Send the alert as an e-mail through ``smtp_server`` (host:port), once; False (and an
        ERROR line naming the server and the cause) when it could not be sent."""
        host, _, port = str(self.smtp_server).rpartition(":")
        message = EmailMessage()
        message["Subject"] = f"[market] {alert.kind}: {_one_line(alert.subject)}"
        message["From"] = self.email_from
        message["To"] = ", ".join(self.email_to)
        message.set_content(
            f"{alert.message}\n\nat: {alert.at}\n\n{json.dumps(alert.details, indent=2, default=str)}\n"
        )
        try:
            with smtplib.SMTP(host or "localhost", int(port), timeout=self.timeout_seconds) as smtp:
                smtp.send_message(message)
        except Exception as error:  # whatever it is, the caller (a sensor) must go on
            LOGGER.error(
                "alert %s not e-mailed through %s: %s",
                alert.kind,
                self.smtp_server,
                describe_failure(error, self.timeout_seconds),
            )
            return False
        return True
