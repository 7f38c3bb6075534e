"""Where the project keeps things, and which environment variables change that.

| variable          | default                | meaning                                        |
|-------------------|------------------------|------------------------------------------------|
| MARKET_DATA_DIR   | <project>/data         | lake, raw landing, caches, reports              |
| MARKET_SAMPLE_DIR | <project>/data/sample  | the bundled sample                              |
| MARKET_SOURCE     | sample                 | sample, csv or yahoo                            |
| MARKET_START      | 2018-01-01             | first date fetched                              |
| MARKET_AS_OF      | (none: everything)     | replay history as known on this date            |
| MARKET_CSV_DIR    | <data>/csv             | the csv source's directory                      |
| MARKET_UNIVERSE   | config/universe.yaml   | the universe file (see quant.universe)          |
| MARKET_MODEL_PROFILE | full                 | full, or quick (tiny models, every step: smoke tests) |
| MLFLOW_TRACKING_URI | sqlite:///<data>/mlflow/mlflow.db | MLflow tracking + registry store |
| MLFLOW_ARTIFACT_ROOT | <data>/mlflow/artifacts | where local runs keep their artifacts         |
| OPTUNA_STORAGE    | sqlite:///<data>/optuna/optuna.db | Optuna studies (a Postgres URL for several workers) |
| MLFLOW_UI_URL     | http://127.0.0.1:5000  | base of the run links in the asset pages        |
| MARKET_STALE_AFTER_SESSIONS | 2            | a symbol more sessions behind the run date than this is stale (quant.freshness) |
| MARKET_ALERT_WEBHOOK | (none)              | POST every alert as JSON to this URL (resources.alerts) |
| MARKET_ALERT_SMTP | (none)                 | host:port of an SMTP server for alert e-mails    |
| MARKET_ALERT_EMAIL_TO | (none)             | comma-separated recipients of alert e-mails     |
| DAGSTER_UI_URL    | http://127.0.0.1:3000  | base of the run links in alerts                 |
| MARKET_GC_KEEP_VERSIONS | 5                | `market gc`: newest model versions kept per model (served ones always) |
| MARKET_GC_LANDING_DAYS | 90                | `market gc`: landing receipts older than this are folded into one snapshot |
| MARKET_MLFLOW_LOCK_WAIT_S | 60             | how long an MLflow call waits out a locked SQLite store (resources.store_retry) |
| DAGSTER_HOME      | <project>/.dagster     | the Dagster instance (its SQLite stores are backed up by `market backup`) |
| MARKET_CASH_RATE  | 0.0                    | annual cash rate (decimal, 0.04 = 4 %): every backtest Sharpe is in excess of it |
| MARKET_API_TOKEN  | (none)                 | `market serve`: bearer token every HTTP request must carry; required off loopback |
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_START = "2018-01-01"


def data_dir() -> Path:
    return Path(os.environ.get("MARKET_DATA_DIR") or PROJECT_ROOT / "data")


def sample_dir() -> Path:
    return Path(os.environ.get("MARKET_SAMPLE_DIR") or PROJECT_ROOT / "data" / "sample")


def lake_dir() -> Path:
    return data_dir() / "lake"


def raw_dir() -> Path:
    return data_dir() / "raw"


def cache_dir() -> Path:
    return data_dir() / "cache"


def csv_dir() -> Path:
    return Path(os.environ.get("MARKET_CSV_DIR") or data_dir() / "csv")


def mlflow_tracking_uri() -> str:
    default = f"sqlite:///{data_dir().resolve() / 'mlflow' / 'mlflow.db'}"
    return os.environ.get("MLFLOW_TRACKING_URI") or default


def mlflow_artifact_root() -> Path:
    return Path(os.environ.get("MLFLOW_ARTIFACT_ROOT") or data_dir() / "mlflow" / "artifacts")


def mlflow_ui_url() -> str:
    return os.environ.get("MLFLOW_UI_URL") or "http://127.0.0.1:5000"


def optuna_storage_url() -> str:
    default = f"sqlite:///{data_dir().resolve() / 'optuna' / 'optuna.db'}"
    return os.environ.get("OPTUNA_STORAGE") or default


def stale_after_sessions() -> int:
    """How many exchange sessions a symbol's last bar may lag the run date and still be fresh.

    ``MARKET_STALE_AFTER_SESSIONS`` (a whole number >= 0); unset: quant.freshness's default (2:
    one unpublished session of the run date plus one session of vendor lag).
    """
    from quant.freshness import DEFAULT_MAX_SESSIONS_BEHIND

    raw = os.environ.get("MARKET_STALE_AFTER_SESSIONS")
    if raw in (None, ""):
        return DEFAULT_MAX_SESSIONS_BEHIND
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"MARKET_STALE_AFTER_SESSIONS must be a whole number >= 0, got {raw!r}")
    return value


def _whole_number(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number >= 0, got {raw!r}")
    return int(raw)


def gc_keep_versions() -> int:
    """Newest model versions `market gc` keeps per registered model (MARKET_GC_KEEP_VERSIONS)."""
    return _whole_number("MARKET_GC_KEEP_VERSIONS", 5)


def gc_landing_days() -> int:
    """Age in days after which landing receipts are compacted (MARKET_GC_LANDING_DAYS)."""
    return _whole_number("MARKET_GC_LANDING_DAYS", 90)


def mlflow_lock_wait_s() -> int:
    """Seconds an MLflow call keeps retrying a locked SQLite store before it raises
    ``StoreLockedError`` (MARKET_MLFLOW_LOCK_WAIT_S; 0: one attempt, no retry)."""
    return _whole_number("MARKET_MLFLOW_LOCK_WAIT_S", 60)


def cash_rate() -> float:
    """The annual cash (risk-free) rate the backtest's Sharpe ratios are in excess of, as a
    decimal (``MARKET_CASH_RATE``: 0.04 for 4 %); unset: 0.0, i.e. the Sharpe of raw returns.
    A value that is not a number, or whose magnitude is 1 or more (a percentage typed as ``4``),
    is refused."""
    raw = os.environ.get("MARKET_CASH_RATE")
    if raw in (None, ""):
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and abs(value) < 1.0):
        raise ValueError(
            f"MARKET_CASH_RATE must be an annual rate as a decimal (0.04 for 4 %), got {raw!r}"
        )
    return value


def dagster_home() -> Path:
    """The Dagster instance's folder."""
    return Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster")


def sqlite_store_roots() -> dict[str, Path]:
    """The local SQLite stores by name: Dagster's instance, MLflow's and Optuna's databases
    (only the ``sqlite:///`` ones: a Postgres store is backed up by Postgres)."""
    roots = {"dagster": dagster_home()}
    for name, url in (("mlflow", mlflow_tracking_uri()), ("optuna", optuna_storage_url())):
        if url.startswith("sqlite:///"):
            roots[name] = Path(url.removeprefix("sqlite:///"))
    return roots


def alert_webhook() -> str | None:
    """The URL every alert is POSTed to as JSON (``MARKET_ALERT_WEBHOOK``); None: log only."""
    return os.environ.get("MARKET_ALERT_WEBHOOK") or None


def alert_smtp() -> str | None:
    """The SMTP server alert e-mails go through, ``host:port`` (``MARKET_ALERT_SMTP``); None:
    no e-mail. A value without a numeric port is refused here, at start-up, not at the first
    alert."""
    raw = os.environ.get("MARKET_ALERT_SMTP") or None
    if raw is None:
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"MARKET_ALERT_SMTP must be host:port, got {raw!r}")
    return raw


def alert_email_to() -> list[str]:
    """Who receives alert e-mails (``MARKET_ALERT_EMAIL_TO``, comma-separated); empty: nobody."""
    raw = os.environ.get("MARKET_ALERT_EMAIL_TO") or ""
    return [address.strip() for address in raw.split(",") if address.strip()]


def dagster_ui_url() -> str:
    """The Dagster UI's base URL, for the run links in alerts (``DAGSTER_UI_URL``)."""
    return os.environ.get("DAGSTER_UI_URL") or "http://127.0.0.1:3000"


def api_token() -> str | None:
    """The bearer token of the HTTP API (``MARKET_API_TOKEN``; pipelines/api.py). Set: every
    request must carry ``Authorization: Bearer <token>``; unset or empty: no authentication,
    which `market serve` allows on a loopback address only."""
    return os.environ.get("MARKET_API_TOKEN") or None


def disable_telemetry() -> None:
    """Keep MLflow and Dagster from phoning home (no network here, and no surprises anywhere)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
