"""A full disk (a real, tiny tmpfs; CI runs as root): the error says "No space left on device"
with the file, the stored file is unchanged, nothing half-written is left, and a run's failure
message carries the cause."""

import subprocess
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets import ingestion, validation
from pipelines.runner import failure_messages
from resources.atomic import DiskFullError
from resources.lake import ParquetLake
from tests.conftest import make_resources
from tests.support.runs import range_tags


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted for the test (mounting needs root, which CI has)."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)])
    assert done.returncode == 0, "mounting a tmpfs needs root (CI runs as root)"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave_bytes: int) -> None:
    """Occupy the filesystem until about ``leave_bytes`` are free."""
    import shutil

    free = shutil.disk_usage(mount).free
    (mount / "ballast").write_bytes(b"\0" * max(free - leave_bytes, 0))


def test_a_full_disk_names_the_cause_and_keeps_the_stored_file(small_disk):
    lake = ParquetLake(base_dir=str(small_disk / "lake"))
    lake.write("ohlcv", pl.DataFrame({"symbol": ["AAPL"], "x": [1.0]}), "AAPL")
    fill(small_disk, 16_384)
    big = pl.DataFrame({"symbol": "AAPL", "x": np.random.default_rng(0).random(400_000)})
    with pytest.raises(DiskFullError) as raised:
        lake.write("ohlcv", big, "AAPL")
    message = str(raised.value)
    assert "No space left on device writing" in message
    assert str(lake.path("ohlcv", "AAPL")) in message and "bytes free" in message
    assert "the stored file is unchanged" in message
    assert lake.read("ohlcv", "AAPL").height == 1  # the old file, whole
    assert not list((small_disk / "lake").rglob("*.tmp"))


def test_a_run_on_a_full_disk_fails_with_the_cause_in_its_message(small_disk, instance):
    resources = make_resources(small_disk, start="2023-01-01", as_of="2024-06-28")
    assets = [
        *dg.load_assets_from_modules([ingestion, validation]),
        *dg.load_asset_checks_from_modules([validation]),
    ]
    ingested = dg.materialize(
        assets,
        selection=["raw_ohlcv"],
        instance=instance,
        resources=resources,
        tags=range_tags("AAPL", "MSFT"),
    )
    assert ingested.success
    fill(small_disk, 8_192)
    result = dg.materialize(
        assets,
        selection=["ohlcv", "ohlcv_quarantine"],
        instance=instance,
        resources=resources,
        tags=range_tags("AAPL", "MSFT"),
        raise_on_error=False,
    )
    assert not result.success
    messages = "\n".join(failure_messages(result))
    assert "No space left on device writing" in messages and "ohlcv" in messages
    assert resources["lake"].read("raw_ohlcv", "AAPL").height > 300  # stored data intact
