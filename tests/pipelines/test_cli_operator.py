"""``market halt|resume|champion ...`` in process, on a temporary data folder and registry."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from resources import build_resources
from tests.support.registry import register


@pytest.fixture
def env(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("MARKET_DATA_DIR", str(data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data / 'mlflow' / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_ARTIFACT_ROOT", raising=False)
    return data


def test_halt_resume_and_the_audit_table(env, capsys):
    assert main(["halt", "--reason", "bad feed", "--user", "alice"]) == 0
    assert "HALTED" in capsys.readouterr().out
    control = build_resources()["operator_control"]
    assert control.root == str(env / "control") and control.halted()["reason"] == "bad feed"

    assert main(["champion", "list"]) == 0
    out = capsys.readouterr().out
    assert "direction_xgboost" in out and "regime_random_forest" in out
    assert "trading: HALTED" in out and "bad feed" in out

    assert main(["resume", "--user", "bob"]) == 0
    assert control.halted() is None
    assert main(["resume"]) == 2
    assert "not halted" in capsys.readouterr().err

    assert main(["champion", "audit"]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "bob" in out and "halt" in out and "resume" in out
    assert [r["action"] for r in control.audit()] == ["halt", "resume"]


def test_champion_pin_list_rollback_and_bad_input(env, capsys):
    tracking = build_resources()["mlflow_tracking"]
    v1 = register(tracking, "direction_xgboost", "direction")
    v2 = register(tracking, "direction_xgboost", "direction")
    tracking.set_alias("direction_xgboost", "champion", v1)
    capsys.readouterr()

    assert (
        main(["champion", "pin", "direction_xgboost", v2, "--reason", "freeze", "--user", "x"]) == 0
    )
    assert f"version {v2} is champion and pinned" in capsys.readouterr().out
    assert main(["champion", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "direction_xgboost" in line)
    assert f"yes (version {v2})" in row and "trading: active" in out
    assert main(["champion", "unpin", "direction_xgboost"]) == 0
    assert main(["champion", "rollback", "direction_xgboost"]) == 0
    assert f"rolled back to version {v1}" in capsys.readouterr().out
    assert str(tracking.version_by_alias("direction_xgboost", "champion").version) == v1

    assert main(["champion", "pin", "nosuch_model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'nosuch_model'")
    assert main(["champion", "rollback", "direction_xgboost", "42"]) == 2
    assert "no version 42" in capsys.readouterr().err
    assert main(["champion", "audit"]) == 0
    out = capsys.readouterr().out
    assert "pin" in out and "unpin" in out and "rollback" in out and "freeze" in out
