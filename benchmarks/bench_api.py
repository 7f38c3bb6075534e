"""Latency of the HTTP API (pipelines/api.py): p50 / p95 / p99 of ``GET /predict/{symbol}`` and
``GET /signals`` at concurrency 1 and 16, over a bounded number of requests each.

    .venv/bin/python benchmarks/bench_api.py                 # starts `market serve` on the lake
    .venv/bin/python benchmarks/bench_api.py --url http://127.0.0.1:8000 --requests 1000

Without ``--url`` it starts the server itself (a free loopback port, the current environment:
the default data folder after `make run`) and stops it afterwards. Each client thread keeps one
HTTP/1.1 connection open (as a real client would); a request's latency is from sending it to
having read the whole body, measured in the client. ``MARKET_API_TOKEN``, when set, is sent as
the bearer token. Prints a markdown table (quoted in docs/SERVING.md). Not a test: never run
under pytest.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def started_server(timeout_s: float = 180):
    """`market serve` on a free port in its own session; yields its URL once /health is 200."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="bench_api_", suffix=".log")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "market"), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except urllib.error.HTTPError as error:
                detail = error.read()[:500]
                raise SystemExit(
                    f"the server answers /health with {error.code}: {detail}"
                ) from None
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"the server did not start:\n{log.read()[-3000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def run(url: str, path: str, requests: int, concurrency: int, headers: dict) -> list[float]:
    """Latencies (seconds) of ``requests`` GETs of ``path`` spread over ``concurrency``
    threads, each with its own keep-alive connection; a non-200 answer aborts."""
    target = urllib.parse.urlsplit(url)
    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in shares]
    failures: list[str] = []
    start = threading.Barrier(concurrency)

    def client(i: int) -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        start.wait()
        try:
            for _ in range(shares[i]):
                began = time.perf_counter()
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                latencies[i].append(time.perf_counter() - began)
                if response.status != 200:
                    failures.append(f"{path}: {response.status} {body[:300]!r}")
                    return
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(failures[0])
    return [t for part in latencies for t in part]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def measure(url: str, symbol: str, requests: int, levels: list[int]) -> list[dict]:
    token = os.environ.get("MARKET_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    quoted = urllib.parse.quote(symbol, safe="")
    paths = [f"/predict/{quoted}", "/signals"]
    for path in paths:  # warm-up: connections, the first request of each route
        run(url, path, 20, 1, headers)
    rows = []
    for path in paths:
        for concurrency in levels:
            began = time.perf_counter()
            latencies = run(url, path, requests, concurrency, headers)
            wall = time.perf_counter() - began
            ms = [t * 1000 for t in latencies]
            rows.append(
                {
                    "endpoint": f"GET {urllib.parse.unquote(path)}",
                    "concurrency": concurrency,
                    "requests": len(ms),
                    "p50": percentile(ms, 50),
                    "p95": percentile(ms, 95),
                    "p99": percentile(ms, 99),
                    "mean": statistics.fmean(ms),
                    "throughput": len(ms) / wall,
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| endpoint | concurrency | requests | p50 ms | p95 ms | p99 ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['endpoint']}` | {r['concurrency']} | {r['requests']} | {r['p50']:.1f} | "
            f"{r['p95']:.1f} | {r['p99']:.1f} | {r['throughput']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start one on the lake)")
    parser.add_argument("--symbol", default="AAPL", help="the symbol of /predict")
    parser.add_argument("--requests", type=int, default=500, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    if args.url:
        rows = measure(args.url.rstrip("/"), args.symbol, args.requests, args.concurrency)
    else:
        with started_server() as url:
            rows = measure(url, args.symbol, args.requests, args.concurrency)
    print(table(rows))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
