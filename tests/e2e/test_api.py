"""The HTTP API through a real uvicorn server (`market serve` in a subprocess) on a small lake.

The lake is built once for the module by `market materialize` over six symbols (^GSPC, ^VIX,
AAPL, MSFT, JPM, XOM; tiny models), with a hand-written `pattern_insights` table beside it.
Every request goes over a socket with urllib: status codes, symbol validation, /predict equal to
the `signals` row, TreeSHAP contributions adding up to the margin, the registry listing, the
champion reload after an alias move, the token rule, and 503 on a lake with nothing in it.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.support.api_server import api_server, request
from tests.support.processes import isolated_env, run_market
from tests.support.universes import SMALL_UNIVERSE, small_universe

pytestmark = pytest.mark.slow

INSIGHT_COLUMNS = {
    "scope": pl.String,
    "symbol": pl.String,
    "event": pl.String,
    "label": pl.String,
    "horizon": pl.Int64,
    "n_events": pl.Int64,
    "mean_return": pl.Float64,
    "median_return": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p_up": pl.Float64,
    "p_reversal": pl.Float64,
    "mean_abs_return": pl.Float64,
    "baseline_mean": pl.Float64,
    "p_value": pl.Float64,
    "q_value": pl.Float64,
    "discovery_mean": pl.Float64,
    "discovery_p": pl.Float64,
    "holdout_mean": pl.Float64,
    "holdout_p": pl.Float64,
    "holdout_n": pl.Int64,
    "persists": pl.Boolean,
    "insight": pl.Boolean,
    "verdict": pl.String,
    "first_date": pl.Date,
    "last_date": pl.Date,
    "split_date": pl.Date,
}
PROBABILITIES = ["p_down", "p_neutral", "p_up", "p_bear", "p_sideways", "p_bull", "p_highvol"]


def insight_row(scope: str, symbol: str, horizon: int, insight: bool, q: float) -> dict:
    return {
        "scope": scope,
        "symbol": symbol,
        "event": "down_streak_3",
        "label": "after 3 consecutive down closes",
        "horizon": horizon,
        "n_events": 80,
        "mean_return": 0.004 if insight else 0.0005,
        "median_return": 0.003,
        "ci_low": 0.001 if insight else -0.002,
        "ci_high": 0.007,
        "p_up": 0.61,
        "p_reversal": 0.61,
        "mean_abs_return": 0.012,
        "baseline_mean": 0.0006,
        "p_value": q / 4,
        "q_value": q,
        "discovery_mean": 0.004,
        "discovery_p": 0.01,
        "holdout_mean": 0.003 if insight else float("nan"),
        "holdout_p": 0.03,
        "holdout_n": 20,
        "persists": insight,
        "insight": insight,
        "verdict": "a real edge" if insight else "no edge",
        "first_date": date(2018, 3, 1),
        "last_date": date(2026, 5, 20),
        "split_date": date(2024, 1, 2),
    }


def write_insights(path: Path) -> None:
    rows = [
        insight_row("symbol", "AAPL", 1, False, 0.6),
        insight_row("symbol", "AAPL", 5, True, 0.01),
        insight_row("symbol", "AAPL", 20, False, 0.4),
        insight_row("symbol", "MSFT", 1, False, 0.9),
        insight_row("equities", "EQUITIES", 1, True, 0.02),
    ]
    pl.DataFrame(rows, schema=INSIGHT_COLUMNS).write_parquet(path)


@pytest.fixture(scope="module")
def lake_env(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("api")
    env = isolated_env(tmp, MARKET_UNIVERSE=small_universe(tmp))
    env.pop("MARKET_API_TOKEN", None)
    run = run_market(env, "materialize", timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    write_insights(tmp / "data" / "lake" / "pattern_insights.parquet")
    return env


@pytest.fixture(scope="module")
def server(lake_env) -> str:
    with api_server(lake_env) as url:
        yield url


def get(url: str, path: str, **kwargs) -> tuple[int, dict]:
    status, body = request(url, path, **kwargs)
    assert isinstance(body, dict) and "data_date" in body, (path, status, body)
    return status, body


def test_health_signals_and_data_date_on_every_body(server, lake_env):
    status, health = get(server, "/health")
    assert status == 200, health
    assert health["status"] == "ok" and health["data_date"] is not None
    assert set(health["champions"]) == {
        "direction_xgboost",
        "direction_lstm",
        "direction_ensemble",
        "volatility_garch",
        "volatility_lstm",
        "regime_random_forest",
    }
    assert health["universe"]["size"] == len(SMALL_UNIVERSE)
    assert health["universe"]["file"] == lake_env["MARKET_UNIVERSE"]

    status, listing = get(server, "/signals")
    assert status == 200 and listing["count"] == len(SMALL_UNIVERSE)
    assert {r["symbol"] for r in listing["signals"]} == set(SMALL_UNIVERSE)
    status, one = get(server, "/signals/AAPL")
    assert status == 200 and one["signal"]["symbol"] == "AAPL"
    # an index by its URL-encoded caret, or without it
    for spelled in ("%5EGSPC", "GSPC"):
        status, index = get(server, f"/signals/{spelled}")
        assert status == 200 and index["symbol"] == "^GSPC", index
    status, docs = request(server, "/openapi.json")
    assert status == 200 and "/predict/{symbol}" in docs["paths"]


@pytest.mark.parametrize("endpoint", ["signals", "predict", "explain", "insights"])
def test_symbols_are_checked_before_anything_is_read(server, lake_env, endpoint):
    status, body = get(server, f"/{endpoint}/ZZZZ")
    assert status == 404 and lake_env["MARKET_UNIVERSE"] in body["detail"], body
    for malformed in ("..%2F..%2Fetc", "AAPL;DROP", "AAPL%00", "%2E%2E"):
        status, body = get(server, f"/{endpoint}/{malformed}")
        assert status == 422, (malformed, body)
        assert "invalid symbol" in body["detail"]


def test_predict_equals_the_signals_row(server):
    _, listing = get(server, "/signals")
    for stored in listing["signals"]:
        symbol = stored["symbol"].replace("^", "%5E")
        status, predicted = get(server, f"/predict/{symbol}")
        assert status == 200, predicted
        live = predicted["signal"]
        assert live["date"] == stored["date"] == predicted["date"]
        for key in ("signal", "regime", "stale", "halted", "data_date", "run_date"):
            assert live[key] == stored[key], (stored["symbol"], key)
        for key in [*PROBABILITIES, "vol_forecast", "position", "edge", "confidence"]:
            assert math.isclose(live[key], stored[key], rel_tol=0, abs_tol=1e-9), (
                stored["symbol"],
                key,
                live[key],
                stored[key],
            )
        champions = predicted["champions"]
        assert len(champions) == 6
        assert set(champions["regime_random_forest"]["outputs"]) == set(PROBABILITIES[3:])
        assert "vol_forecast" in champions["volatility_garch"]["outputs"]


def test_an_operator_halt_holds_every_prediction_at_once(server, lake_env):
    """`market halt` (the control file) turns /predict into HOLD on the next request, with the
    models' outputs kept, exactly as the signals asset serves under a halt (quant.signals)."""
    from resources.control import OperatorControl

    control = OperatorControl(root=str(Path(lake_env["MARKET_DATA_DIR"]) / "control"))
    _, before = get(server, "/predict/AAPL")
    control.halt("api test", "pytest")
    try:
        _, held = get(server, "/predict/AAPL")
    finally:
        control.resume("pytest")
    assert held["signal"]["signal"] == "HOLD" and held["signal"]["position"] == 0.0
    assert held["signal"]["halted"] is True and "api test" in held["halt"]
    assert held["signal"]["p_up"] == before["signal"]["p_up"]
    _, after = get(server, "/predict/AAPL")
    assert after["signal"] == before["signal"] and after["halt"] is None


def test_explain_contributions_add_up_to_the_margin(server):
    status, explained = get(server, "/explain/AAPL")
    assert status == 200, explained
    features = explained["features"]
    assert len(features) >= 5
    magnitudes = [abs(f["contribution"]) for f in features]
    assert magnitudes == sorted(magnitudes, reverse=True)
    total = (
        sum(f["contribution"] for f in features)
        + explained["other_features_contribution"]
        + explained["bias"]
    )
    assert math.isclose(total, explained["margin"], abs_tol=1e-4)
    margins = explained["margins"]
    assert margins["up"] == explained["margin"]
    softmax_up = math.exp(margins["up"]) / sum(math.exp(m) for m in margins.values())
    assert math.isclose(softmax_up, explained["p_up"], abs_tol=1e-5)
    # the same model, the same row as /predict's direction_xgboost output
    _, predicted = get(server, "/predict/AAPL")
    xgb = predicted["champions"]["direction_xgboost"]
    assert explained["model"]["version"] == xgb["version"]
    assert math.isclose(explained["p_up"], xgb["outputs"]["p_up"], abs_tol=1e-6)


def test_models_lists_every_champion_with_its_window_and_scores(server):
    status, body = get(server, "/models")
    assert status == 200
    by_name = {m["name"]: m for m in body["models"]}
    for name, version in body["champions"].items():
        model = by_name[name]
        assert model["aliases"]["champion"] == version
        served = next(v for v in model["versions"] if v["version"] == version)
        assert served["served"] and "champion" in served["aliases"]
        assert served["training_window"]["train_start"] and served["training_window"]["data_as_of"]
        assert served["promotion"]["shadow_status"] == "promoted"
        if name == "direction_xgboost":  # its own out-of-sample scores (model_report)
            assert served["scores"]["log_loss"] > 0


def test_insights_of_a_symbol_insights_first(server):
    status, body = get(server, "/insights/AAPL")
    assert status == 200 and body["count"] == 3
    assert [r["insight"] for r in body["insights"]] == [True, False, False]
    assert body["insights"][1]["q_value"] < body["insights"][2]["q_value"]
    assert body["insights"][0]["holdout_mean"] == 0.003
    assert body["insights"][1]["holdout_mean"] is None  # NaN is null in JSON
    status, only = get(server, "/insights/AAPL?only_insights=true")
    assert status == 200 and only["count"] == 1 and only["insights"][0]["horizon"] == 5
    status, pooled = get(server, "/insights/EQUITIES")
    assert status == 200 and pooled["count"] == 1
    status, none = get(server, "/insights/JPM")
    assert status == 200 and none["count"] == 0


def test_ask(server, lake_env):
    pytest.importorskip("quant.patterns.ask")
    question = {"question": "What happens to AAPL after 3 red days in a row?"}
    status, body = get(server, "/ask", body=question)
    assert status == 200, body
    assert body["query"]["symbol"] == "AAPL" and body["query"]["event"] == "down_streak_3"
    assert body["answer"] and len(body["rows"]) == 3
    status, body = get(server, "/ask", body={"question": "tell me a joke"})
    assert status == 400 and body["question_forms"], body
    status, body = get(server, "/ask", body={"question": "What does TSLA do after 3 red days?"})
    assert status == 404 and lake_env["MARKET_UNIVERSE"] in body["detail"], body
    status, body = get(server, "/ask", body={"question": "x" * 501})
    assert status == 422, body
    assert "x" * 501 not in str(body)  # the refused input is not echoed


def test_a_moved_champion_alias_is_served_on_the_next_request(server, lake_env, monkeypatch):
    """Register a second version of the XGBoost champion (the same logged model) and move the
    alias to it with a plain MlflowClient: the very next request reports it, and the model
    behind it scores; moving the alias back is picked up the same way."""
    uri = f"sqlite:///{Path(lake_env['MARKET_DATA_DIR']) / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow
    from mlflow import MlflowClient

    # MLflow's registry resolves a `models:/m-…` source through the process-wide tracking URI,
    # which an earlier test in this process may have set to another store
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", uri)

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = "direction_xgboost"
    first = client.get_model_version_by_alias(name, "champion")
    second = client.create_model_version(
        name, source=first.source, run_id=first.run_id, model_id=first.model_id
    )
    _, before = get(server, "/predict/AAPL")
    client.set_registered_model_alias(name, "champion", second.version)

    _, health = get(server, "/health")
    assert health["champions"][name] == str(second.version)
    status, predicted = get(server, "/predict/AAPL")
    assert status == 200 and predicted["champions"][name]["version"] == str(second.version)
    # the same model under a new version: the same numbers
    assert predicted["signal"]["p_up"] == before["signal"]["p_up"]
    _, listing = get(server, "/models")
    versions = next(m for m in listing["models"] if m["name"] == name)["versions"]
    assert [v["version"] for v in versions if v["served"]] == [str(second.version)]

    client.set_registered_model_alias(name, "champion", first.version)
    _, explained = get(server, "/explain/AAPL")
    assert explained["model"]["version"] == str(first.version)


def test_token_rule_and_an_empty_lake(tmp_path, lake_env):
    """Off loopback without a token: refused at once (exit 2, one line). With a token: every
    request needs the header. On a data folder with nothing materialized: 503, never 500."""
    env = {**lake_env, "MARKET_DATA_DIR": str(tmp_path / "empty")}
    env.pop("MARKET_API_TOKEN", None)
    refused = run_market(env, "serve", "--host", "0.0.0.0", "--port", "1", timeout=60)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "MARKET_API_TOKEN" in refused.stderr

    token = "s3cret-token-for-the-test"
    with api_server({**env, "MARKET_API_TOKEN": token}) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            status, body = get(url, "/health", headers=headers)
            assert status == 401, (headers, body)
        auth = {"Authorization": f"Bearer {token}"}
        status, _ = request(url, "/openapi.json", headers=auth)
        assert status == 200
        status, body = get(url, "/models", headers=auth)
        assert status == 200 and body["models"] == [] and body["data_date"] is None
        for path in ("/health", "/signals", "/predict/AAPL", "/explain/AAPL", "/insights/AAPL"):
            status, body = get(url, path, headers=auth)
            assert status == 503 and "run `make run` first" in body["detail"], (path, body)
    assert not (tmp_path / "empty" / "mlflow").exists()  # a reader never creates the store
