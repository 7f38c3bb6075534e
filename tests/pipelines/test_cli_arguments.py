"""Argument errors are one line and exit 2 before anything runs (no run, no traceback)."""

import pytest

from pipelines.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["materialize", "--symbols"], "--symbols: expected at least one argument"),
        (["materialize", "--symbols", "AAPL", "NOPE"], "symbol 'NOPE' is not in the universe"),
        (["nightly", "--as-of", "2026-13-01"], "'2026-13-01' is not a date (YYYY-MM-DD)"),
        (["nightly", "--drift-end", "soon"], "'soon' is not a date"),
        (["replay", "--from", "x", "--to", "2024-01-01"], "--from: 'x' is not a date"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_a_symbol_listed_twice_is_named_not_called_not_contiguous(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["materialize", "--symbols", "AAPL", "MSFT", "AAPL"]) == 2
    err = capsys.readouterr().err
    assert "--symbols lists ['AAPL'] more than once" in err and "contiguous" not in err
