"""Replay Yahoo Finance at the HTTP layer: a ``requests`` transport adapter serving recorded
chart-API answers, sliced by ``period1``/``period2`` the way Yahoo slices them.

yfinance accepts a ``requests.Session``; mounting this adapter on it means yfinance's own code
(cookie, crumb, timezone probe, chart request, parsing) runs unchanged, and only the bytes on the
wire come from files. Faults are scripted per symbol: a queue of HTTP status codes to answer
before the recorded data, or an "empty" flag for Yahoo's no-rows answer.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yahoo"
_DOWN_PAGE = b"<html><body><h1>Will be right back...</h1></body></html>"


def _response(
    request: requests.PreparedRequest, status: int, body: bytes, content_type: str
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers = CaseInsensitiveDict({"Content-Type": content_type})
    response.url = request.url
    response.request = request
    response.encoding = "utf-8"
    response.reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "Error")
    return response


class YahooReplayAdapter(BaseAdapter):
    """Answers Yahoo's endpoints from recorded chart JSON; records every request it saw."""

    def __init__(self, fixtures: Path = FIXTURES) -> None:
        super().__init__()
        self.fixtures = fixtures
        self.seen: list[str] = []
        self.faults: dict[str, deque[int]] = defaultdict(deque)
        self.empty: set[str] = set()

    # -- scripting ---------------------------------------------------------------------------
    def fail_next(self, symbol: str, *statuses: int) -> None:
        """Answer the next chart requests for ``symbol`` with these HTTP status codes."""
        self.faults[symbol].extend(statuses)

    def chart_requests(self, symbol: str) -> list[dict[str, list[str]]]:
        """Query parameters of every chart request made for ``symbol`` (timezone probes excluded)."""
        out = []
        for url in self.seen:
            parsed = urlparse(url)
            if unquote(parsed.path) == f"/v8/finance/chart/{symbol}":
                params = parse_qs(parsed.query)
                if "period1" in params:
                    out.append(params)
        return out

    # -- transport ---------------------------------------------------------------------------
    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        self.seen.append(request.url)
        parsed = urlparse(request.url)
        if parsed.netloc == "fc.yahoo.com":
            return _response(request, 404, b"", "text/html")
        if parsed.path == "/v1/test/getcrumb":
            return _response(request, 200, b"replayCrumb1", "text/plain")
        if parsed.path.startswith("/v8/finance/chart/"):
            symbol = unquote(parsed.path.removeprefix("/v8/finance/chart/"))
            return self._chart(request, symbol, parse_qs(parsed.query))
        return _response(
            request,
            404,
            b'{"finance":{"result":null,"error":{"code":"Not Found"}}}',
            "application/json",
        )

    def close(self) -> None:
        pass

    def _chart(self, request, symbol: str, params: dict[str, list[str]]) -> requests.Response:
        if "period1" in params and self.faults[symbol]:
            status = self.faults[symbol].popleft()
            return _response(request, status, _DOWN_PAGE, "text/html")
        path = self.fixtures / f"chart_{symbol.lstrip('^')}.json"
        if not path.exists():
            body = {
                "chart": {
                    "result": None,
                    "error": {
                        "code": "Not Found",
                        "description": "No data found, symbol may be delisted",
                    },
                }
            }
            return _response(request, 404, json.dumps(body).encode(), "application/json")
        recorded = json.loads(path.read_text())
        answer = copy.deepcopy(recorded)
        result = answer["chart"]["result"][0]
        stamps = result["timestamp"]
        if params.get("range") == ["1d"]:
            keep = [len(stamps) - 1]
        else:
            lo = int(params.get("period1", ["-9999999999"])[0])
            hi = int(params.get("period2", ["9999999999"])[0])
            keep = [i for i, ts in enumerate(stamps) if lo <= ts < hi]
        if symbol in self.empty and "period1" in params:
            keep = []
        if not keep:
            # Yahoo's answer for a window without sessions: metadata, no timestamps, empty quote.
            result.pop("timestamp")
            result["indicators"] = {"quote": [{}], "adjclose": [{}]}
            result.pop("events", None)
        else:
            result["timestamp"] = [stamps[i] for i in keep]
            quote = result["indicators"]["quote"][0]
            for key in list(quote):
                quote[key] = [quote[key][i] for i in keep]
            adj = result["indicators"]["adjclose"][0]
            adj["adjclose"] = [adj["adjclose"][i] for i in keep]
            if "events" in result:
                lo_ts, hi_ts = result["timestamp"][0], result["timestamp"][-1]
                result["events"]["dividends"] = {
                    k: v
                    for k, v in result["events"]["dividends"].items()
                    if lo_ts <= int(k) <= hi_ts
                }
        return _response(request, 200, json.dumps(answer).encode(), "application/json")


def replay_session(adapter: YahooReplayAdapter) -> requests.Session:
    """A ``requests`` session whose every http(s) request goes to ``adapter``."""
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
