"""SIGKILL the ingest process at several points; a rerun gives exactly a clean run's bronze."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klout_spark import catalog
from klout_spark.generate import generate_dump

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KILL_AFTER_SECONDS = (5.0, 15.0)  # during start-up and read, then during the writes


def _ingest(lake_root: Path, dump: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "klout_spark.cli", "ingest", str(dump),
        "--set", f"lake.root={lake_root}",
        "--set", "spark.master=local[2]",
        "--set", "spark.conf.spark.sql.shuffle.partitions=2",
        "--set", "spark.conf.spark.ui.enabled=false",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _bronze(spark, lake_root: Path):
    """Bronze rows without their attempt's batch id, after checking they all carry the committed one."""
    def load(table):
        return spark.read.format("delta").load(catalog.table_path(str(lake_root), table))

    rows = load(catalog.BRONZE_EVENTS).select("event_id", "source_checksum", "source_line", "batch_id").collect()
    committed = {(r.source_checksum, r.batch_id) for r in load(catalog.INGEST_LOG).collect()}
    assert {(r.source_checksum, r.batch_id) for r in rows} <= committed, "bronze holds uncommitted rows"
    return sorted(tuple(r)[:3] for r in rows)


def test_sigkill_at_any_point_then_rerun_equals_a_clean_run(spark, tmp_path):
    dump = tmp_path / "dump"
    generate_dump(dump, events=10_000, days=2, seed=11, fmt="twitter", dirty_rate=0.02)
    clean = tmp_path / "clean"
    assert _ingest(clean, dump).wait(timeout=600) == 0
    expected = _bronze(spark, clean)
    assert len(expected) > 2_000 and len(set(expected)) == len(expected)
    for delay in KILL_AFTER_SECONDS:
        lake = tmp_path / f"killed-{delay:g}"
        process = _ingest(lake, dump)
        time.sleep(delay)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        assert _ingest(lake, dump).wait(timeout=600) == 0, f"rerun after a kill at {delay}s failed"
        assert _bronze(spark, lake) == expected, f"bronze differs after a kill at {delay}s"
