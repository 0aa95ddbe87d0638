"""The kill harness in CI (2 kill points), its pure parts, and two daily runs started together."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest

from klout_spark import reliability as R

ROOT = Path(__file__).resolve().parents[1]


def test_kill_points_are_seeded_and_cover_every_stage():
    seconds = {stage: 10.0 for stage in R.STAGES}
    points = R.kill_points(10, seed=3, stage_seconds=seconds)
    assert points == R.kill_points(10, seed=3, stage_seconds=seconds)
    assert points != R.kill_points(10, seed=4, stage_seconds=seconds)
    assert Counter(p.stage for p in points) == {stage: 2 for stage in R.STAGES}
    assert all(0.0 <= p.delay_s <= 9.5 for p in points)


def test_stage_durations_come_from_the_run_log():
    log = ("04:13:24 INFO klout_spark.runs: stage ingest: done in 46.0 s (rows in 9)\n"
           "04:14:26 INFO klout_spark.runs: stage validate: done in 62.3 s\n")
    assert R.stage_durations(log) == {"ingest": 46.0, "validate": 62.3}


def test_row_digests_ignore_run_ids_and_write_times_but_nothing_else():
    row = {"as_of": date(2026, 10, 31), "user_id": "a", "score": 50.123456789012, "run_id": "r1",
           "committed_at": datetime(2026, 1, 1), "hashtags": ["x"]}
    same = {**row, "run_id": "r2", "committed_at": datetime(2027, 1, 1), "score": 50.123456789013}
    assert R.row_digest(row) == R.row_digest(same)
    assert R.row_digest(row) != R.row_digest({**row, "score": 50.2})
    assert R.row_digest(row) != R.row_digest({**row, "hashtags": ["y"]})


def test_differences_count_lost_and_duplicated_rows():
    clean = {"scores": Counter({"a": 1, "b": 1}), "runs_like": Counter({"c": 1})}
    after = {"scores": Counter({"a": 2}), "runs_like": Counter({"c": 1})}
    lost, extra = R.differences(clean, after)
    assert lost == {"runs_like": 0, "scores": 1} and extra == {"runs_like": 0, "scores": 1}


@pytest.mark.slow
def test_kill_harness_two_points_no_loss_no_duplicates(tmp_path):
    dump = R.small_dump(tmp_path / "dump", seed=5)
    lines = []
    report = R.run_harness(dump, str(tmp_path / "work"), n=2, seed=5, kills_per_rerun=2, progress=lines.append)
    print("\n" + "\n".join(lines) + "\n" + R.format_report(report))
    assert report.clean_rows["scores"] > 100 and report.clean_rows["bronze_events"] > 2000
    assert report.injected >= 1, "no kill landed inside the run"
    assert [g.rerun_exit for g in report.groups] == [0]
    assert report.rows_lost == 0 and report.rows_duplicated == 0
    assert report.partial_views == 0
    assert report.ok


@pytest.mark.slow
def test_two_daily_runs_for_the_same_as_of_started_together(tmp_path):
    """Both finish with consistent tables, or one stops with a clear 'another run' error."""
    dump = R.small_dump(tmp_path / "dump", seed=6)
    root = str(tmp_path / "lake")
    command = R.run_command(dump, root)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = [tmp_path / f"run-{i}.log" for i in range(2)]
    processes = []
    for log in logs:
        with log.open("wb") as out:
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        time.sleep(0.5)
    codes = [p.wait(timeout=1800) for p in processes]
    texts = [log.read_text(errors="replace") for log in logs]
    for code, text in zip(codes, texts, strict=True):
        assert code == 0 or "another run is writing" in text, text[-3000:]
    assert 0 in codes, "neither run finished"
    digests = R.lakehouse_digests(root)
    # No row twice anywhere (every table's rows are distinct once run ids and write times are left out).
    duplicated = {t: sum(n - 1 for n in c.values() if n > 1) for t, c in digests.items()}
    assert not any(duplicated.values()), duplicated
    # A third run changes nothing.
    assert subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=1800).returncode == 0
    lost, extra = R.differences(digests, R.lakehouse_digests(root))
    assert not any(lost.values()) and not any(extra.values()), (lost, extra)


def test_writer_lock_stops_a_second_writer_and_dies_with_its_holder(tmp_path):
    from klout_spark.errors import ConcurrentRunError
    from klout_spark.io import writer_lock

    root = str(tmp_path / "lake")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom klout_spark.io import writer_lock\n"
         "with writer_lock(sys.argv[1], run_id='run-A', what='as_of 2026-10-31'):\n"
         "    print('held', flush=True); time.sleep(600)",
         root],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConcurrentRunError, match=r"another run is writing as_of 2026-10-31 in .* \(run run-A, pid"):
            with writer_lock(root, run_id="run-B", what="as_of 2026-10-31"):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs in the holder
        holder.wait()
    with writer_lock(root, run_id="run-C", what="as_of 2026-10-31"):
        with writer_lock(root, run_id="run-C", what="as_of 2026-10-31"):  # reentrant within a process
            pass


def test_the_stage_at_a_kill_is_the_last_one_started():
    log = "stage ingest: started\nstage ingest: done in 3.0 s\nstage validate: started\n"
    assert R.stage_at_kill(log) == "validate" and R.stage_at_kill("starting Spark") is None
