"""One `market` command that launches runs at a time per data folder.

Two such commands at once on one instance race each other: on a fresh folder over MLflow's
schema creation, on a warm one over the same lake files and model versions (the last writer
wins, and a report scores the other command's versions). The lock lives in the data folder, so
replays and tests with their own folders are independent; a second command is refused at once
with who holds the lock, since when, and what to do. Runs the daemon launches wait in Dagster's
run queue instead (dagster.yaml's concurrency limits).
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME, HOLDER_NAME = ".market-run.lock", ".market-run.holder"


class RunLockBusyError(RuntimeError):
    """Another `market` command is running on this data folder."""


def _holder(folder: Path) -> str:
    try:
        held = json.loads((folder / HOLDER_NAME).read_text())
    except (OSError, ValueError):
        return "another `market` command"
    return f"`market {held.get('command', '?')}` (pid {held.get('pid', '?')}, since {held.get('since', '?')})"


@contextmanager
def exclusive_runs(data_dir: Path, command: str) -> Iterator[None]:
    """Hold the data folder's run lock for the duration of ``command``, or refuse at once."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(data_dir / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunLockBusyError(
            f"{_holder(data_dir)} is running on {data_dir}; two commands at once would race "
            "over the same lake files and model versions. Wait for it to finish (or stop it), "
            "then run this again"
        ) from None
    try:
        holder = {"command": command, "pid": os.getpid(), "since": datetime.now(UTC).isoformat()}
        (data_dir / HOLDER_NAME).write_text(json.dumps(holder))
        yield
    finally:
        lock.release()
