"""A real ``market serve`` (uvicorn) in a subprocess, and plain urllib requests to it."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import BIN, PROJECT_ROOT, free_port, stop_group, wait_for_http


@contextmanager
def api_server(env: dict[str, str], *args: str, timeout_s: float = 120) -> Iterator[str]:
    """``market serve`` on a free loopback port with ``env``; yields its base URL once it
    answers (any status: a token server answers 401). Started in its own session and stopped
    with SIGTERM to its process group."""
    port = free_port()
    log = Path(env["MARKET_DATA_DIR"]).parent / f"serve-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "market"), "serve", "--port", str(port), "--log-level", "warning", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(proc, f"{url}/health", log, timeout_s, "server")
        yield url
    finally:
        stop_group(proc)


def request(
    url: str,
    path: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """(status, JSON body) of a GET (a POST with ``body``); an error status is returned, not
    raised. ``path`` is sent as given (already URL-encoded)."""
    data = None if body is None else json.dumps(body).encode()
    sent = {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}
    req = urllib.request.Request(f"{url}{path}", data=data, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
