"""The HTTP API (FastAPI, served by uvicorn: ``market serve``): signals, live predictions of the
champions, their explanations, the model registry and the pattern insights, over the lake and
the MLflow registry of the local deployment (``resources.build_resources``).

Endpoints (docs/SERVING.md; OpenAPI at ``/docs``). Every JSON body, errors included, carries
``data_date``: the latest session in the lake (the newest ``features`` row), null before any.

- ``GET /health``: status, data_date, run_date, the loaded champions {name: version}, the
  universe (size, file).
- ``GET /signals``, ``GET /signals/{symbol}``: the ``signals`` lake table (assets/serving.py).
- ``GET /predict/{symbol}``: each loaded champion's outputs and the combined signal, computed by
  this server from its cached feature window and its loaded champions with the functions of
  ``assets/serving.py`` and ``quant/signals.py`` (soft vote, rule, regime gate, freshness HOLD,
  operator halt): for the same data and champions it equals the ``signals`` row.
- ``GET /explain/{symbol}``: TreeSHAP contributions of the XGBoost champion's P(Up) margin for
  the symbol's latest row (top 10 by magnitude, the rest summed, the bias).
- ``GET /models``: registered models, their versions, aliases, training windows and scores.
- ``GET /insights/{symbol}``: the symbol's ``pattern_insights`` rows, insights first.
- ``POST /ask``: a question about the patterns, answered by ``quant.patterns.ask``.

Symbols are checked before anything reads a path or a query: the strict ticker pattern
(``quant.universe.validate_symbol``; malformed: 422), then the universe (unknown: 404 naming the
universe file). An index may be named without its caret (``GSPC`` for ``^GSPC``) when that is
unambiguous. A lake table never materialized gives 503 "run `make run` first".

Caching. At start-up the server reads the lake tables it serves, loads every champion and
scores the whole universe's window (the last ``HISTORY_SESSIONS`` sessions of each symbol) in
one batch, exactly as the ``signals`` asset does; a request then only looks its symbol up. One
batch, not one symbol at a time, because the models are batch-size sensitive at float32
precision (an LSTM scoring one symbol alone differs by up to ~1e-7): one batch reproduces the
asset's numbers to the last bit.

Reload. Before answering, each request stats the lake files the server reads and the MLflow
SQLite store (a few dozen ``stat`` calls, microseconds):

- a lake file changed: the lake part is read again and the universe re-scored;
- the store file changed (its stat, or SQLite's file change counter, which every committed write
  bumps even within one timestamp tick): the champion aliases
  are read (one registry query, ~15 ms); a model whose ``champion`` alias moved is loaded
  (seconds) and the universe re-scored, all before this request is answered, so the first
  request after an alias move already reports the new version;
- a tracking server without a local file: the aliases are read at most every
  ``reload_check_s`` seconds (``market serve --reload-check-s``, default 5);
- the run date (freshness) is recomputed at most every ``reload_check_s`` seconds.

The request that notices a change does the reload; requests arriving meanwhile are answered
from the previous snapshot (never a half-built one). The operator halt is read per request.

Authentication. With ``MARKET_API_TOKEN`` set (resources.settings), every request must carry
``Authorization: Bearer <token>`` (compared in constant time; 401 otherwise). Without it there
is no authentication, which ``market serve`` allows on a loopback address only.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from assets.partitions import UNIVERSE
from assets.serving import (
    HISTORY_SESSIONS,
    SignalConfig,
    champion_outputs,
    halt_note,
    mean_volatility,
    missing_families,
    of_family,
    with_freshness,
)
from quant.dataset import KEYS, MODEL_FEATURES
from quant.labels import Direction
from quant.models import MODEL_FAMILIES
from quant.monitoring.drift import current_window
from quant.signals import combine, halt_all, latest, soft_vote
from quant.universe import InvalidSymbolError, Universe, validate_symbol
from resources import build_resources, settings
from resources.lake import LakePartitionMissingError, LakeReadError
from resources.mlflow_tracking import CHAMPION, Champion, load_champions

log = logging.getLogger("uvicorn.error")  # shown with uvicorn's own lines

RUN_FIRST = "run `make run` first"
MAX_QUESTION_CHARS = 500
TOP_FEATURES = 10
XGBOOST_CHAMPION = "direction_xgboost"
EQUITIES = "EQUITIES"  # the pooled scope of pattern_insights (not a ticker)
LAKE_TABLES = ("market_context", "signals", "pattern_insights", "model_report")
WINDOW_TAGS = (
    "split_mode",
    "train_start",
    "train_end",
    "validation_start",
    "validation_end",
    "data_as_of",
)
_FROM_SETTINGS = object()


class ApiError(Exception):
    """An answer other than 200: status, a one-line detail and optional extra fields."""

    def __init__(self, status: int, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: dates as ISO strings, NaN and infinities as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, pl.DataFrame):
        return [jsonable(r) for r in value.iter_rows(named=True)]
    return str(value)


def rows_of(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [jsonable(r) for r in frame.iter_rows(named=True)]


def resolve_symbol(universe: Universe, raw: str, extra: tuple[str, ...] = ()) -> str:
    """The universe symbol ``raw`` names: the strict ticker pattern first (422), then the
    universe (404 naming its file); an index's caret may be left out when unambiguous."""
    try:
        validate_symbol(raw)
    except InvalidSymbolError as error:
        raise ApiError(422, str(error)) from None
    if raw in universe or raw in extra:
        return raw
    by_slug = [i.symbol for i in universe.instruments if i.is_index and i.slug == raw]
    if len(by_slug) == 1:
        return by_slug[0]
    raise ApiError(
        404,
        f"symbol {raw!r} is not in the universe ({universe.source}, {len(universe)} symbols)",
    )


# --- what the server holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class LakeView:
    """The lake tables the server serves from, read once per change of their files."""

    fingerprint: tuple
    data_date: date | None = None
    window: pl.DataFrame | None = None  # features + context, last HISTORY_SESSIONS per symbol
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    signal_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # table -> why it is unreadable
    left_out: tuple[str, ...] = ()  # symbols whose features are not readable


@dataclass(frozen=True)
class Scored:
    """The universe scored in one batch: the combined signals (before freshness and halt) and
    each champion's outputs on each symbol's signal row."""

    today: pl.DataFrame
    outputs: dict[str, dict[str, dict[str, Any]]]  # symbol -> model -> outputs
    latest_rows: dict[str, pl.DataFrame]  # symbol -> its signal-date row of the window


@dataclass(frozen=True)
class Snapshot:
    """Everything one request reads; replaced whole on a reload, never mutated."""

    lake: LakeView
    store_fingerprint: tuple
    aliases: dict[str, str]
    champions: dict[str, Champion]
    registry_problem: str | None
    scored: Scored | None
    scoring_problem: str | None
    run_date: date | None
    threshold: int
    served: dict[str, dict[str, Any]]  # symbol -> signal row as served (not halted)
    served_halted: dict[str, dict[str, Any]]  # the same under an operator halt
    loaded_at: str

    @property
    def versions(self) -> dict[str, str]:
        return {n: c.version for n, c in self.champions.items()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    # the inode too: an atomic rewrite (rename) within one timestamp tick keeps mtime and size
    return (found.st_ino, found.st_mtime_ns, found.st_size)


def _store_stamp(path: str) -> tuple | None:
    """The store file's stat and SQLite's file change counter (header bytes 24-27, bumped by
    every committed write in rollback-journal mode, MLflow's): file timestamps are as coarse as
    the kernel tick, so two writes a few milliseconds apart can share mtime and size."""
    found = _stat(path)
    if found is None:
        return None
    try:
        with open(path, "rb") as handle:
            header = handle.read(28)
    except OSError:
        return found
    return (*found, int.from_bytes(header[24:28], "big")) if len(header) == 28 else found


class ApiState:
    """The resources, the current snapshot and the reload rule (module docstring)."""

    def __init__(self, resources: Mapping[str, object], reload_check_s: float = 5.0) -> None:
        self.lake = resources["lake"]
        self.tracking = resources["mlflow_tracking"]
        self.market_data = resources["market_data"]
        self.control = resources["operator_control"]
        self.universe: Universe = UNIVERSE
        self.reload_check_s = reload_check_s
        self.rule = SignalConfig().rule()
        uri = self.tracking.tracking_uri
        self.store_file = (
            Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
        )
        # the files whose change the per-request check looks for (as strings: os.stat is all
        # it does with them)
        self._lake_files = [str(self.lake.path("features", s)) for s in self.universe.symbols] + [
            str(self.lake.path(t)) for t in LAKE_TABLES
        ]
        self._store_files = []
        if self.store_file is not None:
            wal = self.store_file.with_name(self.store_file.name + "-wal")
            self._store_files = [str(self.store_file), str(wal)]
        self._lock = threading.Lock()
        self._last_periodic = -math.inf
        self._models_cache: tuple[tuple, float, list] | None = None
        self.snapshot: Snapshot | None = None
        self.reloads = 0

    # ---- the per-request check -----------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._refresh()

    def current(self) -> Snapshot:
        """The snapshot to answer from, after the cheap change check (module docstring)."""
        if self._lock.acquire(blocking=False):
            try:
                self._refresh()
            except Exception:  # an unforeseen failure while reloading: keep serving the last
                log.exception("reload failed; answering from the previous snapshot")
            finally:
                self._lock.release()
        return self.snapshot

    def lake_fingerprint(self) -> tuple:
        return tuple(_stat(p) for p in self._lake_files)

    def store_fingerprint(self) -> tuple:
        if not self._store_files:
            return ("server",)
        return tuple(_store_stamp(p) for p in self._store_files)

    def _refresh(self) -> None:
        old = self.snapshot
        now = time.monotonic()
        periodic = now - self._last_periodic >= self.reload_check_s
        if periodic:
            self._last_periodic = now
        lake_fp = self.lake_fingerprint()
        store_fp = self.store_fingerprint()
        lake = old.lake if old is not None and old.lake.fingerprint == lake_fp else None
        registry_due = (
            old is None
            or store_fp != old.store_fingerprint
            or (self.store_file is None and periodic)
        )
        if old is not None and lake is not None and not registry_due and not periodic:
            return  # nothing changed: the common case
        started = time.perf_counter()
        if lake is None:
            lake = self._read_lake(lake_fp)
        if old is None:
            aliases, champions, registry_problem = {}, {}, None
            run_date, threshold = None, settings.stale_after_sessions()
        else:
            aliases, champions, registry_problem = old.aliases, old.champions, old.registry_problem
            run_date, threshold = old.run_date, old.threshold
        if registry_due:
            aliases, champions, registry_problem = self._read_registry(aliases, champions)
        run_problem = None
        if periodic or run_date is None:
            try:
                run_date = self.market_data.run_date(self.universe)
                threshold = self.market_data.max_sessions_behind
            except (OSError, ValueError) as error:
                run_problem = f"the run date cannot be determined: {error}"
        rescore = (
            old is None
            or lake.window is not old.lake.window
            or champions.keys() != old.champions.keys()
            or any(champions[n] is not old.champions[n] for n in champions)
        )
        if rescore:
            scored, scoring_problem = self._score(lake, champions)
        else:
            scored, scoring_problem = old.scored, old.scoring_problem
        if not rescore and run_date == old.run_date and threshold == old.threshold:
            served, served_halted = old.served, old.served_halted
        elif scored is not None and run_date is not None:
            served, served_halted = self._serve(scored, run_date, threshold)
        else:
            served, served_halted = {}, {}
        self.snapshot = Snapshot(
            lake=lake,
            store_fingerprint=store_fp,
            aliases=aliases,
            champions=champions,
            registry_problem=registry_problem,
            scored=scored,
            scoring_problem=scoring_problem or run_problem,
            run_date=run_date,
            threshold=threshold,
            served=served,
            served_halted=served_halted,
            loaded_at=old.loaded_at if old is not None and not rescore else _now(),
        )
        if old is not None and (rescore or served is not old.served):
            self.reloads += 1
            log.info(
                "reloaded in %.2f s: champions %s, data_date %s, run_date %s",
                time.perf_counter() - started,
                self.snapshot.versions,
                lake.data_date,
                run_date,
            )

    # ---- reading the lake and the registry -----------------------------------------------------

    def _read_lake(self, fingerprint: tuple) -> LakeView:
        problems: dict[str, str] = {}
        tables: dict[str, pl.DataFrame] = {}
        for name in LAKE_TABLES:
            try:
                frame = self.lake.read_if_exists(name)
            except LakeReadError as error:
                problems[name] = str(error)
                continue
            if frame is not None:
                tables[name] = frame
        features, left_out = None, []
        try:
            features, left_out = self.lake.read_available("features", self.universe.symbols)
        except LakePartitionMissingError:  # nothing materialized yet: served as 503
            features, left_out = None, []
        except LakeReadError as error:
            problems["features"] = str(error)
        window, data_date = None, None
        context = tables.get("market_context")
        if features is not None and not features.is_empty():
            data_date = features["date"].max()
            if context is not None:
                # the panel the signals asset scores (assets/serving.py), same columns, same rows
                columns = [c for c in MODEL_FEATURES if c in context.columns]
                panel = features.join(context.select(*KEYS, *columns), on=KEYS, how="left")
                window = current_window(panel, HISTORY_SESSIONS)
        signal_rows = {}
        if "signals" in tables:
            signal_rows = {r["symbol"]: r for r in rows_of(tables["signals"])}
        return LakeView(
            fingerprint=fingerprint,
            data_date=data_date,
            window=window,
            tables=tables,
            signal_rows=signal_rows,
            problems=problems,
            left_out=tuple(left_out),
        )

    def _read_aliases(self) -> dict[str, str]:
        """The ``champion`` version of every known model, in one registry query."""
        if self.store_file is not None and not self.store_file.exists():
            return {}  # no store yet: never create one from a reader
        found = {}
        for model in self.tracking.client().search_registered_models(max_results=1000):
            version = (model.aliases or {}).get(CHAMPION)
            if model.name in MODEL_FAMILIES and version is not None:
                found[model.name] = str(version)
        return found

    def _read_registry(
        self, aliases: dict[str, str], champions: dict[str, Champion]
    ) -> tuple[dict[str, str], dict[str, Champion], str | None]:
        """The aliases as they are now and the champions behind them: those whose alias did
        not move are kept as loaded, the others loaded (``load_champions``)."""
        try:
            now = self._read_aliases()
        except Exception as error:  # a locked or unreachable store: keep serving what is loaded
            return aliases, champions, f"the MLflow registry cannot be read: {error}"
        kept = {n: c for n, c in champions.items() if now.get(n) == c.version}
        moved = {n: MODEL_FAMILIES[n] for n in now if n not in kept}
        problem = None
        if moved:
            try:
                kept.update(load_champions(self.tracking, moved))
            except Exception as error:
                problem = f"champion(s) {sorted(moved)} cannot be loaded: {error}"
        return now, {n: kept[n] for n in MODEL_FAMILIES if n in kept}, problem

    def _score(
        self, lake: LakeView, champions: dict[str, Champion]
    ) -> tuple[Scored | None, str | None]:
        """The universe's window scored by the champions and combined, as the signals asset
        does (assets/serving.py: the same functions, in the same order)."""
        if lake.window is None or lake.window.is_empty():
            return None, None
        missing = missing_families(champions)
        if missing:
            return None, (
                f"no champion for {missing} in the MLflow registry ({self.tracking.store()}): "
                f"{RUN_FIRST}"
            )
        try:
            outputs = champion_outputs(champions, lake.window)
            direction = soft_vote(
                of_family(champions, outputs, "direction", exclude=("direction_ensemble",))
            )
            volatility = mean_volatility(of_family(champions, outputs, "volatility"))
            (regime,) = of_family(champions, outputs, "regime")
            today = latest(combine(direction, volatility, regime, self.rule))
        except Exception as error:
            log.exception("scoring failed")
            return None, f"the champions could not score the lake's window: {error}"
        keys = today.select(KEYS)
        per_symbol: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in today["symbol"]}
        for name, frame in outputs.items():
            for row in frame.join(keys, on=KEYS, how="semi").iter_rows(named=True):
                symbol = row.pop("symbol")
                row.pop("date")
                per_symbol[symbol][name] = jsonable(row)
        rows = lake.window.join(keys, on=KEYS, how="semi")
        latest_rows = {s: part for (s,), part in rows.partition_by("symbol", as_dict=True).items()}
        return Scored(today, per_symbol, latest_rows), None

    def _serve(
        self, scored: Scored, run_date: date, threshold: int
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The signals as the asset serves them on ``run_date``: stale symbols held, and the
        same under an operator halt."""
        served, _ = with_freshness(scored.today, run_date, threshold)
        plain = served.with_columns(pl.lit(False).alias("halted"))
        halted = halt_all(served)
        return (
            {r["symbol"]: r for r in rows_of(plain)},
            {r["symbol"]: r for r in rows_of(halted)},
        )

    # ---- answers -------------------------------------------------------------------------------

    def halt(self) -> dict | None:
        return self.control.halted()

    def models(self, snapshot: Snapshot) -> list[dict[str, Any]]:
        """The registry listing, cached while the store file, the lake and the loaded
        champions are unchanged (against a tracking server: for reload_check_s)."""
        key = (snapshot.store_fingerprint, id(snapshot.lake), tuple(snapshot.versions.items()))
        cached = self._models_cache
        fresh = cached is not None and (
            self.store_file is not None or time.monotonic() - cached[1] < self.reload_check_s
        )
        if fresh and cached[0] == key:
            return cached[2]
        listing = self._list_models(snapshot)
        self._models_cache = (key, time.monotonic(), listing)
        return listing

    def _list_models(self, snapshot: Snapshot) -> list[dict[str, Any]]:
        if self.store_file is not None and not self.store_file.exists():
            return []
        client = self.tracking.client()
        report = snapshot.lake.tables.get("model_report")
        listing = []
        for model in sorted(
            client.search_registered_models(max_results=1000), key=lambda m: m.name
        ):
            if "'" in model.name:
                continue  # not one of ours, and not safe in the filter string
            versions = client.search_model_versions(f"name='{model.name}'", max_results=1000)
            aliases = {a: str(n) for a, n in sorted((model.aliases or {}).items())}
            # a searched version does not carry its aliases: the registered model has them
            by_version: dict[str, list[str]] = {}
            for alias, number in aliases.items():
                by_version.setdefault(number, []).append(alias)
            entries = []
            for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
                tags = dict(v.tags or {})
                entries.append(
                    {
                        "version": str(v.version),
                        "aliases": by_version.get(str(v.version), []),
                        "served": snapshot.versions.get(model.name) == str(v.version),
                        "run_id": v.run_id,
                        "status": v.status,
                        "created_at": datetime.fromtimestamp(
                            v.creation_timestamp / 1000, UTC
                        ).isoformat(timespec="seconds"),
                        "training_window": {k: tags.get(k) for k in WINDOW_TAGS},
                        "config_hash": tags.get("config_hash"),
                        "promotion": {
                            k: t
                            for k, t in sorted(tags.items())
                            if k not in WINDOW_TAGS and k != "config_hash"
                        },
                        "scores": _report_scores(report, model.name, str(v.version)),
                    }
                )
            listing.append(
                {
                    "name": model.name,
                    "family": MODEL_FAMILIES.get(model.name),
                    "aliases": aliases,
                    "versions": entries,
                }
            )
        return listing


def _report_scores(report: pl.DataFrame | None, name: str, version: str) -> dict[str, float]:
    """The version's own out-of-sample scores in ``model_report`` (latest window)."""
    if report is None or not {"model", "version", "source", "metric", "value"} <= set(
        report.columns
    ):
        return {}
    rows = report.filter(
        (pl.col("model") == name) & (pl.col("version") == version) & (pl.col("source") == name)
    )
    if "scope" in rows.columns:
        rows = rows.filter(pl.col("scope") == "latest_window")
    if "group" in rows.columns:
        rows = rows.filter(pl.col("group").is_null())
    return {r["metric"]: jsonable(r["value"]) for r in rows.iter_rows(named=True)}


# --- the app ------------------------------------------------------------------------------------


class Question(BaseModel):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="a question about the patterns, e.g. 'what happens to AAPL after a gap up?'",
    )


class BearerAuth:
    """Every request must carry ``Authorization: Bearer <token>`` (pure ASGI: it runs before
    routing, so it covers every path, the docs and unknown paths included)."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope["headers"]:
            if key == b"authorization":
                given = value
                break
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {
                "detail": "missing or wrong bearer token: send `Authorization: Bearer "
                "<MARKET_API_TOKEN>`",
                "data_date": None,  # nothing about the data before authentication
            },
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


def create_app(
    resources: Mapping[str, object] | None = None,
    reload_check_s: float = 5.0,
    token: object = _FROM_SETTINGS,
) -> FastAPI:
    """The API over ``resources`` (default: the local deployment's, ``build_resources()``).
    ``token``: the bearer token every request must carry (default: ``MARKET_API_TOKEN``; None:
    no authentication). The lake and the champions are loaded at start-up (lifespan)."""
    state = ApiState(resources or build_resources(), reload_check_s)
    secret = settings.api_token() if token is _FROM_SETTINGS else token

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await to_thread.run_sync(state.start)
        yield

    app = FastAPI(
        title="market API",
        version="1",
        description="Signals, live champion predictions, explanations, models and pattern "
        "insights over the lake and the MLflow registry (docs/SERVING.md). Every body carries "
        "`data_date`, the latest session in the lake.",
        lifespan=lifespan,
    )
    app.state.api = state
    if secret:
        app.add_middleware(BearerAuth, token=secret)

    def data_date() -> str | None:
        snapshot = state.snapshot
        return jsonable(snapshot.lake.data_date) if snapshot is not None else None

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        body = {"detail": error.detail, **jsonable(error.extra), "data_date": data_date()}
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        body = {"detail": error.detail, "data_date": data_date()}
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # the refused input is not echoed back (a question can be long; it is the caller's)
        errors = [{k: v for k, v in e.items() if k != "input"} for e in error.errors()]
        body = {"detail": jsonable_encoder(errors), "data_date": data_date()}
        return JSONResponse(body, status_code=422)

    def answer(snapshot: Snapshot, body: dict[str, Any]) -> JSONResponse:
        return JSONResponse({**body, "data_date": jsonable(snapshot.lake.data_date)})

    def need_window(snapshot: Snapshot) -> None:
        lake = snapshot.lake
        for table in ("features", "market_context"):
            if table in lake.problems:
                raise ApiError(503, lake.problems[table])
        if lake.window is None:
            raise ApiError(
                503, f"features and market_context have not been materialized yet: {RUN_FIRST}"
            )

    def need_table(snapshot: Snapshot, name: str) -> pl.DataFrame:
        if name in snapshot.lake.problems:
            raise ApiError(503, snapshot.lake.problems[name])
        frame = snapshot.lake.tables.get(name)
        if frame is None:
            raise ApiError(503, f"`{name}` has not been materialized yet: {RUN_FIRST}")
        return frame

    def need_scored(snapshot: Snapshot) -> Scored:
        need_window(snapshot)
        if snapshot.scored is None or not snapshot.served:
            problem = snapshot.scoring_problem or snapshot.registry_problem
            raise ApiError(503, problem or f"no champions loaded: {RUN_FIRST}")
        return snapshot.scored

    @app.get("/health", summary="status, data date, loaded champions, universe size")
    def health() -> JSONResponse:
        snapshot = state.current()
        need_window(snapshot)
        if not snapshot.champions:
            raise ApiError(
                503,
                snapshot.registry_problem
                or f"no champion in the MLflow registry ({state.tracking.store()}): {RUN_FIRST}",
            )
        problems = [
            p
            for p in (
                snapshot.scoring_problem,
                snapshot.registry_problem,
                *snapshot.lake.problems.values(),
                *(f"features left out: {why}" for why in snapshot.lake.left_out),
            )
            if p
        ]
        halt = state.halt()
        return answer(
            snapshot,
            {
                "status": "degraded" if problems else "ok",
                "problems": problems,
                "run_date": jsonable(snapshot.run_date),
                "champions": snapshot.versions,
                "universe": {"size": len(state.universe), "file": state.universe.source},
                "symbols_scored": len(snapshot.served),
                "halted": halt is not None,
                "loaded_at": snapshot.loaded_at,
                "reloads": state.reloads,
            },
        )

    @app.get("/signals", summary="the signals table: latest signal of every symbol")
    def signals() -> JSONResponse:
        snapshot = state.current()
        need_table(snapshot, "signals")
        rows = list(snapshot.lake.signal_rows.values())
        return answer(snapshot, {"count": len(rows), "signals": rows})

    @app.get("/signals/{symbol:path}", summary="one symbol's row of the signals table")
    def signal(symbol: str) -> JSONResponse:
        snapshot = state.current()
        chosen = resolve_symbol(state.universe, symbol)
        need_table(snapshot, "signals")
        row = snapshot.lake.signal_rows.get(chosen)
        if row is None:
            raise ApiError(404, f"no signal stored for {chosen} (blocked or not yet scored)")
        return answer(snapshot, {"symbol": chosen, "signal": row})

    @app.get(
        "/predict/{symbol:path}",
        summary="the champions' outputs and the combined signal, computed by this server",
    )
    def predict(symbol: str) -> JSONResponse:
        snapshot = state.current()
        chosen = resolve_symbol(state.universe, symbol)
        scored = need_scored(snapshot)
        halt = state.halt()
        rows = snapshot.served_halted if halt is not None else snapshot.served
        row = rows.get(chosen)
        if row is None:
            raise ApiError(
                404,
                f"no prediction for {chosen}: its features are not in the lake or too short "
                "for the models (blocked, or not yet materialized)",
            )
        champions = {
            name: {
                "family": champion.family,
                "version": champion.version,
                "outputs": scored.outputs[chosen].get(name, {}),
            }
            for name, champion in snapshot.champions.items()
        }
        return answer(
            snapshot,
            {
                "symbol": chosen,
                "date": row["date"],
                "signal": row,
                "champions": champions,
                "rule": vars(state.rule),
                "halt": halt_note(halt) if halt is not None else None,
                "loaded_at": snapshot.loaded_at,
            },
        )

    @app.get(
        "/explain/{symbol:path}",
        summary="TreeSHAP contributions to the XGBoost champion's P(Up) for the latest row",
    )
    def explain(symbol: str) -> JSONResponse:
        snapshot = state.current()
        chosen = resolve_symbol(state.universe, symbol)
        need_window(snapshot)
        champion = snapshot.champions.get(XGBOOST_CHAMPION)
        if champion is None:
            raise ApiError(
                503, f"no {XGBOOST_CHAMPION} champion in the MLflow registry: {RUN_FIRST}"
            )
        scored = snapshot.scored
        row = scored.latest_rows.get(chosen) if scored is not None else None
        if row is None:
            rows = snapshot.lake.window.filter(pl.col("symbol") == chosen)
            if rows.is_empty():
                raise ApiError(404, f"no features for {chosen} in the lake (blocked?)")
            row = rows.tail(1)
        return answer(snapshot, {"symbol": chosen, **explanation(champion, row)})

    @app.get("/models", summary="registered models, versions, aliases, windows and scores")
    def models() -> JSONResponse:
        snapshot = state.current()
        try:
            listing = state.models(snapshot)
        except Exception as error:
            raise ApiError(503, f"the MLflow registry cannot be read: {error}") from None
        return answer(snapshot, {"champions": snapshot.versions, "models": listing})

    @app.get("/insights/{symbol:path}", summary="the symbol's pattern_insights rows")
    def insights(symbol: str, only_insights: bool = False) -> JSONResponse:
        snapshot = state.current()
        chosen = resolve_symbol(state.universe, symbol, extra=(EQUITIES,))
        table = need_table(snapshot, "pattern_insights")
        rows = insight_rows(table, chosen, only_insights)
        return answer(
            snapshot,
            {
                "symbol": chosen,
                "count": rows.height,
                "insights": rows_of(rows),
            },
        )

    @app.post(
        "/ask",
        summary="a question about the patterns, answered from pattern_insights",
        responses={400: {"description": "unparsable: the detail lists the question forms"}},
    )
    def ask(body: Question) -> JSONResponse:
        snapshot = state.current()
        try:
            from quant.patterns import ask as asking
        except ImportError as error:
            raise ApiError(503, f"questions are not available in this build: {error}") from None
        universe = state.universe
        names = {i.symbol: i.name for i in universe.instruments}
        try:
            query = asking.parse(
                body.question, universe.symbols, names=names, source=universe.source
            )
        except asking.UnparsableQuestion as error:
            detail = str(error).splitlines()[0]
            raise ApiError(400, detail, question_forms=list(asking.QUESTION_FORMS)) from None
        except asking.UnknownSymbol as error:
            raise ApiError(404, str(error)) from None
        table = need_table(snapshot, "pattern_insights")
        try:
            result = asking.answer(query, table)
        except asking.InsightsSchemaError as error:
            raise ApiError(
                503, f"`pattern_insights` cannot be used ({error}): {RUN_FIRST}"
            ) from None
        return answer(
            snapshot,
            {
                "question": body.question,
                "query": jsonable(vars(query)),
                "answer": result.text,
                "rows": jsonable(result.rows),
            },
        )

    return app


def insight_rows(table: pl.DataFrame, symbol: str, only_insights: bool) -> pl.DataFrame:
    """``symbol``'s rows of ``pattern_insights``: the insights first, then by q-value."""
    rows = table.filter(pl.col("symbol").is_in([symbol, symbol.lstrip("^")]))
    if "insight" not in rows.columns:
        return rows
    if only_insights:
        rows = rows.filter(pl.col("insight").fill_null(False))
    order = [c for c in ("insight", "q_value", "event", "horizon") if c in rows.columns]
    descending = [c == "insight" for c in order]
    return rows.sort(order, descending=descending, nulls_last=True)


def explanation(champion: Champion, row: pl.DataFrame) -> dict[str, Any]:
    """TreeSHAP (XGBoost's ``pred_contribs``) of the champion's Up-class margin on ``row``,
    with the features prepared as the model's own ``predict_frame`` prepares them (the raw
    feature columns, nulls as NaN) and the same iterations (the best one and before)."""
    import xgboost as xgb

    model = champion.model
    classifier = model.classifier
    x = row.select(model.features).to_numpy()
    matrix = xgb.DMatrix(x, feature_names=classifier.feature_names)
    rounds = (0, classifier.best_iteration + 1)
    contributions = classifier.booster.predict(matrix, pred_contribs=True, iteration_range=rounds)
    margins = classifier.booster.predict(matrix, output_margin=True, iteration_range=rounds)
    proba = classifier.predict_proba(x)
    up = int(Direction.UP)
    values = contributions[0, up, :-1].astype(np.float64)
    bias = float(contributions[0, up, -1])
    order = np.argsort(-np.abs(values), kind="stable")
    top = order[:TOP_FEATURES]
    return {
        "date": jsonable(row["date"][0]),
        "model": {"name": champion.name, "version": champion.version},
        "target": "margin (log-odds before the softmax) of the Up class",
        "p_up": float(proba[0, up]),
        "margin": float(margins[0, up]),
        "margins": {d.name.lower(): float(margins[0, d.value]) for d in Direction},
        "bias": bias,
        "features": [
            {
                "feature": model.features[i],
                "value": jsonable(float(x[0, i])),
                "contribution": float(values[i]),
            }
            for i in top
        ],
        "other_features_contribution": float(values[order[TOP_FEATURES:]].sum()),
        "n_features": len(model.features),
    }
