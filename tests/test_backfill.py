"""Backfill: the same tables as day-by-day runs, resumable after a crash, idempotent; per-date locks."""

import math
from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from klout_spark import catalog, locks, pipeline, scoring
from klout_spark import columns as C
from klout_spark.errors import InputError
from klout_spark.generate import generate_dump
from klout_spark.pipeline import Pipeline, backfill, pending_chunks, run_daily

END = date(2026, 10, 31)
# Eight dates, so that the last one has a score 7 days before it (score_delta_7d).
DATES = [END - timedelta(days=n) for n in range(7, -1, -1)]
# Daily runs of a date depend on no other date but the one 7 days before (the delta), so daily
# runs of the first date (in the first chunk, with the ingest) and the last (in the second chunk,
# with a delta) stand for daily runs of all eight, at a quarter of the cost.
DAILY_DATES = [DATES[0], DATES[7]]

# Columns that legitimately differ between runs.
RUN_COLUMNS = {C.RUN_ID}
# Floating-point results of aggregations whose summation order follows Spark's
# partitioning (PageRank and what derives from it): equal to ~1e-12, not bit for bit.
SUMMED = {C.PAGERANK, C.WEIGHT, C.CONTRIBUTION}


class Crash(RuntimeError):
    pass


def _table(lake, table, dates=None):
    frame = lake.read(table)
    if dates is not None and C.AS_OF in frame.columns:
        frame = frame.filter(F.col(C.AS_OF).isin(dates))
    columns = [c for c in frame.columns if c not in RUN_COLUMNS]
    rows = frame.select(*columns).collect()
    key_columns = [c for c in columns if c not in SUMMED]
    return {tuple(r[c] for c in key_columns): tuple(r[c] for c in columns if c in SUMMED) for r in rows}


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):  # noqa: ARG001 - the session must exist first
    from tests.conftest import test_settings

    root = tmp_path_factory.mktemp("backfill")
    dump = root / "dump"
    generate_dump(dump, events=10_000, seed=5, days=12, end_date=END)

    daily_settings = test_settings(str(root / "daily"), "lake.database=bf_daily")
    for n, as_of in enumerate(DAILY_DATES):
        run_daily(Pipeline.open(daily_settings), as_of=as_of, inputs=[str(dump)] if n == 0 else [])

    # Chunks of 4 dates; the second chunk crashes in its score stage, after writing its scores.
    settings = test_settings(str(root / "backfill"), "lake.database=bf_range", "run.backfill_chunk_days=4")
    real_topics = scoring.score_topics_by_as_of
    calls = []

    def crashing_topics(events, flags, dates, **params):
        calls.append(list(dates))
        if len(calls) == 2:
            raise Crash("simulated crash in the second chunk")
        return real_topics(events, flags, dates, **params)

    scoring.score_topics_by_as_of = crashing_topics
    try:
        with pytest.raises(Crash):
            backfill(Pipeline.open(settings), start=DATES[0], end=DATES[-1], inputs=[str(dump)])
    finally:
        scoring.score_topics_by_as_of = real_topics
    resumed_pipeline = Pipeline.open(settings)
    resumed = backfill(resumed_pipeline, start=DATES[0], end=DATES[-1])
    scores_after_resume = _table(resumed_pipeline.lake, catalog.SCORES)
    run_ids = {r[0] for r in resumed_pipeline.lake.read(catalog.SCORES).select(C.RUN_ID).distinct().collect()}
    again = backfill(Pipeline.open(settings), start=DATES[0], end=DATES[-1])
    return dict(
        daily=Pipeline.open(daily_settings).lake, backfill=resumed_pipeline.lake, settings=settings,
        calls=calls, resumed=resumed, again=again, scores_after_resume=scores_after_resume, run_ids=run_ids,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "table",
    [catalog.SCORES, catalog.USER_FEATURES, catalog.NETWORK_RANK, catalog.ENGAGEMENT_EDGES,
     catalog.SCORE_TOPICS, catalog.SCORE_EXPLAIN, catalog.USER_DAILY],
)
def test_backfill_gives_the_tables_of_day_by_day_runs(lakes, table):
    daily, ranged = _table(lakes["daily"], table, DAILY_DATES), _table(lakes["backfill"], table, DAILY_DATES)
    assert daily, table
    assert set(ranged) == set(daily)
    for key, values in daily.items():
        for got, want in zip(ranged[key], values, strict=True):
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-15), (table, key, got, want)


@pytest.mark.slow
def test_scores_cover_every_date_and_carry_the_delta_of_7_days_before(lakes):
    scores = lakes["backfill"].read(catalog.SCORES)
    assert sorted(r[0] for r in scores.select(C.AS_OF).distinct().collect()) == DATES
    with_delta = scores.filter(F.col(C.SCORE_DELTA_7D).isNotNull())
    assert {r[0] for r in with_delta.select(C.AS_OF).distinct().collect()} == {DATES[-1]}
    assert with_delta.count() > 10


@pytest.mark.slow
def test_a_rerun_after_a_crash_computes_only_the_uncommitted_dates(lakes):
    assert lakes["calls"][:2] == [DATES[:4], DATES[4:]]
    resumed = lakes["resumed"]
    assert resumed.skipped == tuple(DATES[:4])
    assert resumed.computed == tuple(DATES[4:])
    assert resumed.chunks == ((DATES[4], DATES[7]),)


@pytest.mark.slow
def test_a_second_backfill_is_a_no_op(lakes):
    again = lakes["again"]
    assert again.computed == () and again.skipped == tuple(DATES)
    lake = lakes["backfill"]
    assert _table(lake, catalog.SCORES) == lakes["scores_after_resume"]
    assert {r[0] for r in lake.read(catalog.SCORES).select(C.RUN_ID).distinct().collect()} == lakes["run_ids"]


@pytest.mark.slow
def test_runs_hold_one_row_per_date_and_stage(lakes):
    runs = lakes["backfill"].read(catalog.RUNS).filter(F.col(C.STAGE) == "score")
    by_status = {}
    for row in runs.collect():
        by_status.setdefault(row.status, set()).add(row.as_of)
    assert by_status["failed"] == set(DATES[4:])
    assert by_status["succeeded"] == set(DATES)
    assert not lakes["backfill"].read(catalog.RUN_LOCKS).collect()  # every lock released, even after the crash


def test_pending_dates_are_cut_into_consecutive_chunks():
    d = date(2026, 1, 1)
    days = [d + timedelta(days=n) for n in (0, 1, 2, 3, 4, 7, 8, 10)]
    chunks = pending_chunks(days, chunk_days=3)
    assert [(c[0].day, c[-1].day) for c in chunks] == [(1, 3), (4, 5), (8, 9), (11, 11)]


def test_stages_refuse_dates_that_are_not_consecutive():
    with pytest.raises(InputError, match="consecutive"):
        pipeline.consecutive_dates([date(2026, 1, 1), date(2026, 1, 3)])


def test_a_date_lock_stops_a_second_writer_until_released_or_stale(lake, monkeypatch):
    day = date(2026, 10, 31)
    locks.acquire(lake, "run-a", [day], ttl_minutes=60)
    with pytest.raises(locks.LockError, match=f"another run is writing as_of {day}: run run-a"):
        locks.acquire(lake, "run-b", [day - timedelta(days=1), day], ttl_minutes=60)
    # The loser holds nothing, not even the date nobody else held.
    assert {(r.as_of, r.run_id) for r in lake.read(catalog.RUN_LOCKS).collect()} == {(day, "run-a")}
    locks.release(lake, "run-a", [day])
    with locks.as_of_lock(lake, "run-b", [day], ttl_minutes=60):
        assert [r.run_id for r in lake.read(catalog.RUN_LOCKS).collect()] == ["run-b"]
    assert lake.read(catalog.RUN_LOCKS).count() == 0

    # A crashed run's lock: taken over once expired ...
    locks.acquire(lake, "crashed", [day], ttl_minutes=1e-6)
    locks.acquire(lake, "run-c", [day], ttl_minutes=60)
    # ... or at once when its process on this host is gone.
    monkeypatch.setattr(locks, "_process_alive", lambda _pid: False)
    locks.acquire(lake, "run-d", [day], ttl_minutes=60)
    assert [r.run_id for r in lake.read(catalog.RUN_LOCKS).collect()] == ["run-d"]
