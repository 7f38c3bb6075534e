"""Operator controls on real files and a real temporary MLflow registry: halt/resume, pins,
rollbacks, the audit trail and the errors an operator can run into."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from resources.control import OperatorControl, previous_champion
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking
from tests.support.registry import register


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> MlflowTracking:
    """One registry for the module (creating its schema costs seconds); each test uses its
    own registered model names."""
    root = tmp_path_factory.mktemp("mlflow")
    return MlflowTracking(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=str(root / "artifacts")
    )


@pytest.fixture
def control(tmp_path) -> OperatorControl:
    return OperatorControl(root=str(tmp_path / "control"))


def champion(tracking: MlflowTracking, name: str) -> str:
    return str(tracking.version_by_alias(name, CHAMPION).version)


def test_halt_and_resume_are_state_and_audit(control):
    assert control.halted() is None and control.audit() == []
    control.halt("exchange outage", "alice")
    halt = control.halted()
    assert halt["reason"] == "exchange outage" and halt["user"] == "alice"
    assert datetime.fromisoformat(halt["at"]).tzinfo is not None
    state = json.loads(control.state_path.read_text())
    assert state["halt"] == halt
    control.resume("bob")
    assert control.halted() is None
    with pytest.raises(ValueError, match="not halted"):
        control.resume("bob")
    lines = control.audit_path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["action"] == "halt" and first["user"] == "alice"
    assert first["reason"] == "exchange outage" and first["model"] is None
    assert second["action"] == "resume" and second["user"] == "bob"
    assert set(first) == {"at", "user", "action", "model", "version", "previous_version", "reason"}
    assert control.audit() == [first, second]
    assert not list(control.state_path.parent.glob("*.tmp"))  # atomic writes leave nothing


def test_pin_makes_the_version_champion_and_unpin_releases_it(tracking, control):
    name = "direction_xgboost"
    v1, v2 = register(tracking, name, "direction"), register(tracking, name, "direction")
    tracking.set_alias(name, CHAMPION, v1)
    tracking.set_alias(name, CHALLENGER, v2)
    assert control.pinned(name) is None

    assert control.pin(tracking, name, v2, "carol", "keep the tested one") == v2
    assert champion(tracking, name) == v2 and control.pinned(name) == v2
    assert tracking.version_by_alias(name, CHALLENGER) is None  # it is the champion now
    client = tracking.client()
    assert client.get_model_version(name, v2).tags["pinned"] == "true"
    assert client.get_registered_model(name).tags["pinned_version"] == v2
    record = control.audit()[-1]
    assert record | {"at": None} == {
        "at": None,
        "user": "carol",
        "action": "pin",
        "model": name,
        "version": v2,
        "previous_version": v1,
        "reason": "keep the tested one",
    }
    history = control.state()["champion_history"][name]
    assert [(h["version"], h["previous_version"]) for h in history] == [(v2, v1)]

    assert control.pin(tracking, name, None, "carol") == v2  # default: the current champion
    assert control.unpin(tracking, name, "dave") == v2
    assert control.pinned(name) is None and champion(tracking, name) == v2
    assert "pinned" not in client.get_model_version(name, v2).tags
    assert "pinned_version" not in client.get_registered_model(name).tags
    with pytest.raises(ValueError, match="not pinned"):
        control.unpin(tracking, name, "dave")
    assert [r["action"] for r in control.audit()] == ["pin", "pin", "unpin"]


def test_rollback_returns_to_the_champion_before_the_current_one(tracking, control):
    name = "direction_lstm"
    v1, v2, v3 = (register(tracking, name, "direction") for _ in range(3))
    tracking.set_alias(name, CHAMPION, v1)
    control.pin(tracking, name, v3, "erin")
    assert control.rollback(tracking, name, None, "erin", "v3 misbehaves") == v1
    assert champion(tracking, name) == v1
    assert control.pinned(name) == v1  # still pinned, now to the version rolled back to
    with pytest.raises(ValueError, match="already the champion"):
        control.rollback(tracking, name, v1, "erin")
    assert control.rollback(tracking, name, v2, "erin") == v2  # an explicit version
    history = control.state()["champion_history"][name]
    assert [h["version"] for h in history] == [v3, v1, v2]
    rollbacks = [r for r in control.audit() if r["action"] == "rollback"]
    assert [(r["version"], r["previous_version"]) for r in rollbacks] == [(v1, v3), (v2, v1)]
    assert rollbacks[0]["reason"] == "v3 misbehaves"


def test_rollback_after_automatic_promotions_reads_the_mlflow_tags(tracking, control):
    name = "volatility_garch"
    v1, v2, v3 = (register(tracking, name, "volatility") for _ in range(3))
    client = tracking.client()
    # what automatic promotion leaves behind: v1 first champion (the older reason-only tag),
    # v2 rejected and v3 promoted in shadow
    client.set_model_version_tag(name, v1, "promotion", "no champion yet")
    client.set_model_version_tag(name, v2, "shadow_status", "rejected")
    client.set_model_version_tag(name, v2, "promotion", "challenger qlike 0.3 does not beat")
    client.set_model_version_tag(name, v3, "shadow_status", "promoted")
    tracking.set_alias(name, CHAMPION, v3)
    assert control.rollback(tracking, name, None, "frank") == v1
    assert champion(tracking, name) == v1
    assert client.get_model_version(name, v1).tags["champion_previous"] == v3


def test_rollback_without_an_earlier_champion_says_which_model(tracking, control):
    name = "regime_random_forest"
    tracking.set_alias(name, CHAMPION, register(tracking, name, "regime"))
    with pytest.raises(ValueError, match="no earlier champion of regime_random_forest"):
        control.rollback(tracking, name, None, "gina")
    assert control.audit() == []  # a refused action changes nothing and records nothing


def test_unknown_models_and_versions_are_refused(tracking, control):
    name = "volatility_lstm"
    version = register(tracking, name, "volatility")
    with pytest.raises(ValueError, match=r"unknown model 'nosuch'.*direction_xgboost"):
        control.pin(tracking, "nosuch", None, "hal")
    with pytest.raises(ValueError, match="unknown model 'nosuch'"):
        control.rollback(tracking, "nosuch", "1", "hal")
    with pytest.raises(ValueError, match="unknown model 'nosuch'"):
        control.unpin(tracking, "nosuch", "hal")
    with pytest.raises(ValueError, match="volatility_lstm has no champion"):
        control.pin(tracking, name, None, "hal")
    with pytest.raises(ValueError, match="volatility_lstm has no version 99"):
        control.pin(tracking, name, "99", "hal")
    with pytest.raises(ValueError, match="must be a number"):
        control.pin(tracking, name, "latest", "hal")
    with pytest.raises(ValueError, match="direction_ensemble has no version 1"):
        control.pin(tracking, "direction_ensemble", "1", "hal")  # never registered
    tracking.set_alias(name, CHAMPION, version)
    with pytest.raises(ValueError, match="volatility_lstm has no version 7"):
        control.rollback(tracking, name, "7", "hal")
    assert control.audit() == [] and control.pinned(name) is None


def test_previous_champion_on_a_timeline():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    automatic = [(t, "1", None), (t + day, "3", None)]
    assert previous_champion(automatic, "3") == "1"
    assert previous_champion(automatic, "1") is None
    # an operator change names its predecessor; an unknown current falls back to the last known
    assert previous_champion([*automatic, (t + 2 * day, "2", "3")], "2") == "3"
    assert previous_champion(automatic, "5") == "3"
    assert previous_champion([], "1") is None
