"""The retrain/sweep rule: drift thresholds (calibrated or fixed), decay, and the calendar."""

import pytest

from quant.automation import (
    RETRAIN,
    SWEEP,
    DataProgress,
    Observation,
    TriggerPolicy,
    calendar_decision,
    decide,
    most_severe,
)

POLICY = TriggerPolicy(retrain_drift_share=0.3, severe_drift_share=0.5)


@pytest.mark.parametrize(
    ("share", "job"), [(0.1, None), (0.29, None), (0.3, RETRAIN), (0.49, RETRAIN), (0.5, SWEEP)]
)
def test_drift_share_thresholds(share, job):
    decision = decide(Observation("feature_drift", 7, drift_share=share), POLICY)
    assert decision.job == job
    assert f"{share:.2f}" in decision.reason


def test_decay_triggers_a_retrain_and_run_keys_are_deterministic():
    decayed = decide(Observation("model_health", 12, decayed=True), POLICY)
    assert decayed.job == RETRAIN and decayed.run_key == "retrain:model_health:12"
    assert decide(Observation("model_health", 12, decayed=False), POLICY).job is None
    again = decide(Observation("model_health", 12, decayed=True), POLICY)
    assert again.run_key == decayed.run_key


def test_the_most_severe_decision_wins_and_invalid_thresholds_are_refused():
    decisions = [
        decide(Observation("feature_drift", 1, drift_share=0.6), POLICY),
        decide(Observation("model_health", 2, decayed=True), POLICY),
        decide(Observation("feature_drift", 3, drift_share=0.1), POLICY),
    ]
    assert most_severe(decisions).job == SWEEP
    assert most_severe(decisions[2:]) is None
    with pytest.raises(ValueError, match="thresholds"):
        TriggerPolicy(retrain_drift_share=0.6, severe_drift_share=0.5)


def test_calibrated_thresholds_are_used_unless_fixed():
    reading = Observation(
        "feature_drift", 3, drift_share=0.4, retrain_threshold=0.35, severe_threshold=0.6
    )
    assert decide(reading, TriggerPolicy()).job == RETRAIN
    fixed = TriggerPolicy(retrain_drift_share=0.45, fixed=frozenset({"retrain"}))
    assert decide(reading, fixed).job is None
    assert decide(Observation("feature_drift", 4, drift_share=0.4), TriggerPolicy()).job == RETRAIN


def test_the_calendar_is_due_every_n_new_labeled_sessions_and_first_time():
    policy = TriggerPolicy(every_sessions=21)
    first = calendar_decision(DataProgress("2024-05-31", None, None), policy)
    assert first.job == RETRAIN and first.run_key == "retrain:calendar:2024-05-31"
    assert calendar_decision(DataProgress("2024-06-28", "2024-05-31", 20), policy) is None
    due = calendar_decision(DataProgress("2024-07-01", "2024-05-31", 21), policy)
    assert due.job == RETRAIN and "21 labeled sessions" in due.reason
    assert calendar_decision(DataProgress(None, "2024-05-31", None), policy) is None
    assert DataProgress("2024-05-31", "2024-05-31", 0).nothing_new
