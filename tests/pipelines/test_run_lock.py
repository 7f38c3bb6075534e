"""Two `market` commands that launch runs on one data folder: the second is refused at once
with who holds it; other folders and read-only commands are not held up."""

import json
import os

from pipelines.cli import main
from pipelines.run_lock import HOLDER_NAME, exclusive_runs


def test_a_second_run_command_is_refused_while_one_holds_the_folder(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("MARKET_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with exclusive_runs(data, "materialize"):
        holder = json.loads((data / HOLDER_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "materialize"
        for argv in (["nightly"], ["walk-forward"], ["materialize", "--symbols", "AAPL"]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert f"`market materialize` (pid {os.getpid()}, since" in err
            assert str(data) in err and "Wait for it to finish" in err
        # a read-only command is not held up (here: nothing stored yet, its own error)
        assert main(["report"]) == 2
        assert "has not been materialized" in capsys.readouterr().err
        # another data folder is independent
        with exclusive_runs(tmp_path / "other", "nightly"):
            pass
    with exclusive_runs(data, "nightly"):  # released when the first finished
        pass
