"""The kill harness in CI (2 kill points), its pure parts, and concurrent writers: two daily runs started
together, then a daily run started together with an overlapping backfill."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from klout_spark import catalog
from klout_spark import columns as C
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
           "04:14:26 INFO klout_spark.runs: stage validate: done in 62.3 s\n"
           "04:16:30 INFO klout_spark.runs: stage features: done for 1 date(s) 2026-10-31..2026-10-31 in 113.8 s\n"
           "04:26:30 INFO klout_spark.runs: stage score: done for 30 date(s) 2026-10-02..2026-10-31 in 259.3 s\n")
    assert R.stage_durations(log) == {"ingest": 46.0, "validate": 62.3, "features": 113.8, "score": 259.3}


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
@pytest.mark.reliability
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


def _cli(command: str, root: str, *args: str) -> list[str]:
    overrides = [x for o in (f"lake.root={root}", *R.RUN_OVERRIDES) for x in ("--set", o)]
    return [sys.executable, "-m", "klout_spark.cli", command, *args, *overrides]


def _start_logged(command: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _table_rows(root: str, table: str) -> list[dict]:
    from deltalake import DeltaTable

    return DeltaTable(catalog.table_path(root, table)).to_pyarrow_table().to_pylist()


def _scores_by_date(root: str) -> dict[date, Counter]:
    """Digests of the ``scores`` rows of each ``as_of`` (run ids and write times left out)."""
    out: dict[date, Counter] = {}
    for row in _table_rows(root, catalog.SCORES):
        out.setdefault(row[C.AS_OF], Counter())[R.row_digest(row)] += 1
    return out


@pytest.mark.slow
def test_two_daily_runs_then_a_daily_run_and_an_overlapping_backfill_started_together(tmp_path):
    """Two writers started together, twice, on one lakehouse; every process finishes or stops clearly.

    1. Two ``run --as-of D`` on a fresh lakehouse (both create the tables and ingest): both finish
       with consistent tables, or one stops with "another run is writing"; no row twice anywhere.
    2. On the lakehouse step 1 scored, ``backfill --force --start D-1 --end D`` and ``run --as-of D``.
       Both may finish (one after the other), or one stops with "another run is writing as_of D" /
       "... writing a validate" (the writer lock a run holds throughout and a backfill for its
       validate), or "... writing as_of D: run ..." (the date lock of D a backfill holds while it
       computes). Either way every date written is there exactly once per account, and D's scores
       are step 1's (both recompute D: the backfill is forced).
    """
    dump = R.small_dump(tmp_path / "dump", seed=8)
    day = max(date.fromisoformat(p.name) for p in Path(dump).iterdir() if p.name[:1].isdigit())
    lake = str(tmp_path / "lake")

    codes, texts = _together(tmp_path, {
        "first": _cli("run", lake, "--input", dump, "--as-of", str(day), "--no-report"),
        "second": _cli("run", lake, "--input", dump, "--as-of", str(day), "--no-report"),
    })
    for name, code in codes.items():
        assert code == 0 or "another run is writing" in texts[name], (name, code, texts[name][-3000:])
    assert 0 in codes.values(), "neither run finished"
    _assert_no_row_twice(lake)
    scored = _scores_by_date(lake)
    assert set(scored) == {day} and len(scored[day]) > 100, sorted(scored)

    codes, texts = _together(tmp_path, {  # the backfill first: it may pass validate and hold D's date lock
        "backfill": _cli("backfill", lake, "--force", "--start", str(day - timedelta(days=1)), "--end", str(day)),
        "run": _cli("run", lake, "--as-of", str(day), "--no-report"),
    })
    print(codes, {name: [line for line in text.splitlines() if "another run" in line][-1:] for name, text in texts.items()})
    refused = re.compile(r"error: another run is writing (as_of \d{4}-\d\d-\d\d|a validate) ")
    for name, code in codes.items():
        if code != 0:
            assert code == 1 and refused.search(texts[name]), (name, code, texts[name][-3000:])
    assert 0 in codes.values(), "neither run finished"

    scores = _scores_by_date(lake)
    written = {day} | ({day - timedelta(days=1)} if codes["backfill"] == 0 else set())
    assert written <= set(scores), (sorted(scores), codes)
    for as_of in scores:  # each date's rows once per account, none duplicated
        keys = Counter((r[C.NETWORK], r[C.USER_ID]) for r in _table_rows(lake, catalog.SCORES) if r[C.AS_OF] == as_of)
        assert keys and max(keys.values()) == 1, as_of
    assert scores[day] == scored[day]
    _assert_no_row_twice(lake)
    assert _table_rows(lake, catalog.RUN_LOCKS) == []  # no date lock left behind


def _together(tmp_path: Path, commands: dict[str, list[str]]) -> tuple[dict[str, int], dict[str, str]]:
    """Start ``commands`` half a second apart, wait for all; their exit codes and logs by name."""
    processes = {}
    for name, command in commands.items():
        processes[name] = _start_logged(command, tmp_path / f"{name}.log")
        time.sleep(0.5)
    codes = {name: p.wait(timeout=1800) for name, p in processes.items()}
    return codes, {name: (tmp_path / f"{name}.log").read_text(errors="replace") for name in commands}


def _assert_no_row_twice(root: str) -> None:
    """No table holds a row twice (rows compared without run ids and write times)."""
    duplicated = {t: sum(n - 1 for n in c.values() if n > 1) for t, c in R.lakehouse_digests(root).items()}
    assert not any(duplicated.values()), duplicated


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


def test_a_killed_runs_lock_row_is_not_a_partial_view_but_other_rows_are(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    root = str(tmp_path / "lake")
    write_deltalake(catalog.table_path(root, catalog.RUN_LOCKS), pa.table({"as_of": ["2026-10-31"], "run_id": ["r1"]}))
    write_deltalake(catalog.table_path(root, catalog.SCORES), pa.table({"user_id": ["a"], "score": [50.0]}))
    clean = {catalog.SCORES: Counter([R.row_digest({"user_id": "b", "score": 50.0})])}
    assert R.partial_tables(root, clean) == (catalog.SCORES,)
    clean[catalog.SCORES] = Counter([R.row_digest({"user_id": "a", "score": 50.0})])
    assert R.partial_tables(root, clean) == ()
