"""The replay's record: resumable step log and the table it renders."""

from datetime import date

from pipelines.replay import (
    ReplayLog,
    ReplayStep,
    replay_sessions,
    replay_table,
    sessions_to_replay,
)


def step(as_of: str, **extra) -> ReplayStep:
    return ReplayStep(as_of, True, 0.12, 0.18, False, **extra)


def test_sessions_step_on_the_nyse_calendar():
    sessions = replay_sessions(date(2024, 7, 1), date(2024, 12, 31), every=21)
    assert sessions[:3] == ["2024-07-01", "2024-07-31", "2024-08-29"]  # July 4th is closed
    assert len(sessions) == 7


def test_a_resumed_replay_continues_after_the_last_step_with_its_cursor(tmp_path):
    log = ReplayLog(tmp_path / "replay" / "steps.jsonl")
    log.append(step("2024-07-01", cursor='{"feature_drift": 5}', launched=["retrain ok"]))
    log.append(step("2024-07-31", cursor='{"feature_drift": 9}'))
    done = log.steps()
    assert [s.as_of for s in done] == ["2024-07-01", "2024-07-31"]
    assert done[-1].cursor == '{"feature_drift": 9}' and done[0].launched == ["retrain ok"]
    sessions = replay_sessions(date(2024, 7, 1), date(2024, 12, 31), every=21)
    assert sessions_to_replay(sessions, done) == sessions[2:]
    assert sessions_to_replay(sessions, []) == sessions


def test_the_table_shows_windows_and_every_decision_with_its_numbers():
    decided = {
        "model": "direction_xgboost",
        "metric": "log_loss",
        "challenger": "2",
        "status": "rejected",
        "kind": "refresh",
        "challenger_score": 1.0312,
        "champion_score": 1.0101,
        "p_value": 0.012,
        "shadow_window": "2024-08-01 .. 2024-09-27",
    }
    windows = {
        "train_start": "2018-10-16",
        "train_end": "2024-01-31",
        "validation_start": "2024-02-01",
        "validation_end": "2024-07-31",
        "data_as_of": "2024-08-28",
    }
    table = replay_table(
        [step("2024-08-28", launched=["retrain ok"], windows=windows, decisions=[decided])]
    )
    lines = table.splitlines()
    assert lines[2] == (
        "| 2024-08-28 | 0.12 (0.18) | retrain ok | 2018-10-16 .. 2024-01-31 | "
        "2024-02-01 .. 2024-07-31 | 1 decided: 0 promoted, rejected direction_xgboost v2 | 0 |"
    )
    decision = next(line for line in lines if line.startswith("| 2024-08-28 | direction_xgboost"))
    assert decision == (
        "| 2024-08-28 | direction_xgboost | v2 | refresh | log_loss | 1.0312 | 1.0101 | "
        "0.0120 | 2024-08-01 .. 2024-09-27 | **rejected** |"
    )
