"""A locked SQLite MLflow store is waited out with backoff, then named; a read-only one is named.

SQLite lets one process write at a time: while another process holds a write transaction on the
MLflow store (another ``market`` command, an MLflow UI, ``mlflow gc``), a statement waits for
SQLite's busy timeout and then fails with "database is locked", wrapped by SQLAlchemy
(``OperationalError``) and by MLflow (``MlflowException``). Every MLflow call the project makes
through ``MlflowTracking`` goes through ``call``:

- locked: retried with exponential backoff (0.5 s doubling, at most 8 s between attempts), one
  WARNING per retry naming the store, for ``MARKET_MLFLOW_LOCK_WAIT_S`` seconds in all (default
  60); then ``StoreLockedError`` names the file, how long it stayed locked, who may hold it and
  what to do;
- read-only ("attempt to write a readonly database", or an ``OSError`` EROFS / EACCES / EPERM):
  not retried, ``StoreReadOnlyError`` names the file and the fix at once;
- anything else passes through unchanged, at once.

MLflow sets a 20 s busy timeout on every session of a SQLite store, which would make one attempt
outlast the whole budget's granularity; for the stores passed to ``bound_busy_wait`` it is
rewritten to ``min(5 s, budget)`` (pysqlite's own default), so the waiting is done here, with
warnings, within the budget.
"""

from __future__ import annotations

import contextvars
import errno
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import tenacity

from resources import settings

LOGGER = logging.getLogger(__name__)

LOCKED_MESSAGES = ("database is locked", "database table is locked")
READ_ONLY_MESSAGES = ("attempt to write a readonly database",)
READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
ATTEMPT_BUSY_S = 5.0  # one attempt's wait inside SQLite (pysqlite's default busy timeout)
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.5, 8.0

T = TypeVar("T")


class StoreLockedError(RuntimeError):
    """The MLflow store stayed locked by another process's write transaction past the budget."""


class StoreReadOnlyError(RuntimeError):
    """The MLflow store (or the folder it lives in) cannot be written."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then its causes and contexts (each once)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def is_locked(error: BaseException) -> bool:
    """A locked SQLite database, however wrapped (the message survives every wrapper)."""
    if isinstance(error, StoreLockedError | StoreReadOnlyError):
        return False  # already decided by an inner call
    return any(
        message in str(link).lower() for link in _chain(error) for message in LOCKED_MESSAGES
    )


def read_only_cause(error: BaseException) -> BaseException | None:
    """The innermost link of the chain that says the store cannot be written, if any (the
    sqlite3 or OS error itself, not its wrappers)."""
    if isinstance(error, StoreLockedError | StoreReadOnlyError):
        return None
    found = None
    for link in _chain(error):
        if (isinstance(link, OSError) and link.errno in READ_ONLY_ERRNOS) or any(
            message in str(link).lower() for message in READ_ONLY_MESSAGES
        ):
            found = link
    return found


def database_of(uri: str) -> str | None:
    """The file of a ``sqlite:///`` store (as SQLAlchemy spells it), None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return uri.removeprefix("sqlite:///").split("?", 1)[0]


class _DropLockedTracebacks(logging.Filter):
    """MLflow logs every failed SQLite statement with its traceback at ERROR; a locked store's
    attempts are reported here instead (one WARNING per retry, then ``StoreLockedError``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not is_locked(error)


logging.getLogger("mlflow.store.db.utils").addFilter(_DropLockedTracebacks())


def attempt_busy_ms() -> int:
    """How long one SQLite statement waits for a lock before it fails (and is retried)."""
    return int(min(ATTEMPT_BUSY_S, settings.mlflow_lock_wait_s()) * 1000)


# MLflow runs exactly this on every session of a SQLite store (mlflow.store.db.utils)
_MLFLOW_BUSY_PRAGMA = "PRAGMA busy_timeout = 20000;"
_BOUNDED: set[str] = set()


def _bounded_busy_wait(conn, cursor, statement, parameters, context, executemany):
    if statement == _MLFLOW_BUSY_PRAGMA and conn.engine.url.database in _BOUNDED:
        statement = f"PRAGMA busy_timeout = {attempt_busy_ms()};"
    return statement, parameters


def bound_busy_wait(uri: str) -> None:
    """Bound the time one statement waits on a lock in this SQLite store to ``attempt_busy_ms``
    (idempotent; other databases, Dagster's and Optuna's included, are left as they are)."""
    database = database_of(uri)
    if database is None or database in _BOUNDED:
        return
    if not _BOUNDED:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", _bounded_busy_wait, retval=True)
    _BOUNDED.add(database)


def locked_message(store: str, seconds: float, attempts: int, operation: str) -> str:
    return (
        f"MLflow store {store} stayed locked for {seconds:.0f} s ({attempts} attempt{'s' * (attempts != 1)} at "
        f"{operation}): another process holds a write transaction on it (another `market` "
        "command, or an MLflow UI / `mlflow gc` running on the same data folder). Let it finish "
        "or stop it, then rerun; MARKET_MLFLOW_LOCK_WAIT_S (now "
        f"{settings.mlflow_lock_wait_s()} s) sets how long to wait."
    )


def read_only_message(store: str, cause: BaseException) -> str:
    where = getattr(cause, "filename", None)
    detail = f"{cause}" if where is None or str(where) in str(cause) else f"{cause} ({where})"
    return (
        f"MLflow store {store} is read-only: {detail}. MLflow cannot write its runs and models "
        "there. Make the data folder writable (a read-write mount; write permission for this "
        "user on the folder and on the database file), or point MARKET_DATA_DIR / "
        "MLFLOW_TRACKING_URI at a writable location."
    )


_INSIDE = contextvars.ContextVar("inside_store_retry", default=False)


def call(store: str, operation: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``operation(*args, **kwargs)``, retried while ``store`` is locked (see the module).

    A call made inside another one is attempted once: the outermost call retries, so budgets
    do not multiply."""
    if _INSIDE.get():
        return operation(*args, **kwargs)
    name = getattr(operation, "__qualname__", None) or repr(operation)
    budget = settings.mlflow_lock_wait_s()

    def warn(state: tenacity.RetryCallState) -> None:
        LOGGER.warning(
            "MLflow store %s is locked (another process holds a write transaction); "
            "%s retried in %.1f s (attempt %d, waiting up to %d s in all)",
            store,
            name,
            state.next_action.sleep if state.next_action else 0.0,
            state.attempt_number + 1,
            budget,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_locked),
        wait=tenacity.wait_exponential(
            multiplier=FIRST_BACKOFF_S, min=FIRST_BACKOFF_S, max=MAX_BACKOFF_S
        ),
        stop=tenacity.stop_before_delay(budget),
        before_sleep=warn,
        reraise=False,
    )
    started = time.monotonic()
    token = _INSIDE.set(True)
    try:
        return retrying(operation, *args, **kwargs)
    except tenacity.RetryError as spent:
        attempts = spent.last_attempt.attempt_number
        raise StoreLockedError(
            locked_message(store, time.monotonic() - started, attempts, name)
        ) from spent.last_attempt.exception()
    except Exception as error:
        cause = read_only_cause(error)
        if cause is not None:
            raise StoreReadOnlyError(read_only_message(store, cause)) from error
        raise
    finally:
        _INSIDE.reset(token)


class RetryingClient:
    """An ``MlflowClient`` whose every method call goes through ``call`` (attributes that are
    not callable are passed through)."""

    def __init__(self, client: Any, store: str) -> None:
        self._client = client
        self._store = store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not callable(value):
            return value
        return functools.wraps(value)(functools.partial(call, self._store, value))

    def __repr__(self) -> str:
        return f"RetryingClient({self._client!r}, store={self._store!r})"
