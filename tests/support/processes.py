"""Start and stop real project processes (CLI, Dagster webserver) with an isolated environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from resources.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess whose Dagster instance and data live under ``tmp_path``."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKET_DATA_DIR": str(tmp_path / "data"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        # every model step runs, on tiny models: the suite tests wiring, not model quality
        "MARKET_MODEL_PROFILE": "quick",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]


@contextmanager
def dagster_webserver(env: dict[str, str], timeout_s: float = 90) -> Iterator[int]:
    """A real ``dagster-webserver`` over the project's workspace; yields its port.

    Started in its own session so SIGTERM reaches the whole process group on the way out.
    """
    port = free_port()
    log = Path(env["DAGSTER_HOME"]) / "webserver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "dagster-webserver"),
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(proc, f"http://127.0.0.1:{port}/server_info", log, timeout_s, "webserver")
        yield port
    finally:
        stop_group(proc)


def wait_for_http(proc: subprocess.Popen, url: str, log: Path, timeout_s: float, what: str) -> None:
    """Until ``url`` answers (any HTTP status counts); the process's log tail if it dies or
    does not answer in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.3)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it has not gone within 20 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def dagster_daemon(env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A real ``dagster-daemon`` (schedules, sensors, run queue) over the project's workspace,
    in its own session; stopped with its whole process group (launched runs included)."""
    log = Path(env["DAGSTER_HOME"]) / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_market(env: dict[str, str], *args: str, timeout: int = 420) -> subprocess.CompletedProcess:
    """The ``market`` CLI in a subprocess with ``env``, output captured."""
    return subprocess.run(
        [str(BIN / "market"), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
