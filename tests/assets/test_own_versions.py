"""A report scores only the model versions its own run trained (real Dagster runs on a real
instance; another run rewriting the predictions mid-run is a real second run)."""

import dagster as dg
import polars as pl
from dagster._core.test_utils import create_run_for_test

from assets.own_versions import ForeignVersionError, foreign_versions, require_own_versions

NAME = "direction_xgboost"


def predictions(version: str) -> pl.DataFrame:
    return pl.DataFrame({"symbol": ["AAPL"], "model_version": [version]})


def trained(version: str) -> dg.AssetsDefinition:
    @dg.asset(name=NAME)
    def model(context: dg.AssetExecutionContext) -> pl.DataFrame:
        context.add_output_metadata({"model_version": version})
        return predictions(version)

    return model


def materialize(instance: dg.DagsterInstance, version: str) -> str:
    result = dg.materialize([trained(version)], instance=instance)
    assert result.success
    return result.run_id


def test_own_versions_pass_and_a_rewrite_by_another_run_is_named(instance):
    mine = materialize(instance, "3")
    assert foreign_versions(instance, mine, {NAME: predictions("3")}) == []

    other = materialize(instance, "4")
    problems = foreign_versions(instance, mine, {NAME: predictions("4")})
    assert problems == [
        f"{NAME}: its predictions were rewritten by run {other} after this run {mine} trained it"
    ]
    # the other run is consistent with itself
    assert foreign_versions(instance, other, {NAME: predictions("4")}) == []


def test_a_frame_holding_another_version_than_this_run_recorded_is_refused(instance):
    mine = materialize(instance, "3")
    problems = foreign_versions(instance, mine, {NAME: predictions("2")})
    assert problems == [
        f"{NAME}: the stored predictions are version(s) 2, this run trained version 3"
    ]


def test_a_report_run_that_trained_nothing_scores_what_is_stored(instance):
    materialize(instance, "3")
    report_only = create_run_for_test(instance, job_name="report")
    assert foreign_versions(instance, report_only.run_id, {NAME: predictions("3")}) == []


def test_the_report_step_fails_when_another_run_rewrites_the_predictions_mid_run(instance):
    model = trained("3")

    @dg.asset(ins={NAME: dg.AssetIn(NAME)})
    def report(context: dg.AssetExecutionContext, **frames: pl.DataFrame) -> None:
        # a second run on the same instance retrains between this run's training and scoring
        assert dg.materialize([trained("4")], instance=context.instance).success
        require_own_versions(context, frames)

    result = dg.materialize([model, report], instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.cause.message
    assert ForeignVersionError.__name__ in message
    assert "refuses to score versions this run did not train" in message
    assert "rewritten by run" in message


def test_without_a_rewrite_the_report_step_succeeds(instance):
    @dg.asset(ins={NAME: dg.AssetIn(NAME)})
    def report(context: dg.AssetExecutionContext, **frames: pl.DataFrame) -> None:
        require_own_versions(context, frames)

    assert dg.materialize([trained("3"), report], instance=instance).success
