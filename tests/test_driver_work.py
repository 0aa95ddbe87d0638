"""Batches of dates for work on the driver: grouped by size, the next one collected while the caller works."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from functools import partial

import pytest

from klout_spark.driver_work import batches_by_size, prefetched

DAY = date(2026, 3, 1)


def test_dates_are_grouped_up_to_the_size_limit_in_order():
    counts = {DAY + timedelta(days=d): n for d, n in enumerate([3, 4, 9, 2, 2, 11, 1])}
    groups, too_large = batches_by_size(counts, max_size=10)
    days = [[(day - DAY).days for day in group] for group in groups]
    assert days == [[0, 1], [2], [3, 4, 6]]
    assert [(day - DAY).days for day in too_large] == [5]
    assert batches_by_size({}, max_size=10) == ([], [])


def test_the_next_call_runs_while_the_caller_holds_a_result_and_no_further(spark):
    started = [threading.Event() for _ in range(4)]

    def call(i: int) -> int:
        started[i].set()
        return i

    got = []
    for result in prefetched(spark, (partial(call, i) for i in range(4))):
        if result + 1 < 4:
            # Would time out if the calls took turns with the caller.
            assert started[result + 1].wait(timeout=30), f"call {result + 1} did not start while {result} was held"
        if result + 2 < 4:
            assert not started[result + 2].is_set()
        got.append(result)
    assert got == [0, 1, 2, 3]
    assert list(prefetched(spark, [])) == []


def test_a_failed_call_raises_where_its_result_was_due(spark):
    def fail() -> int:
        raise ValueError("collect failed")

    results = prefetched(spark, [lambda: 1, fail, lambda: 3])
    assert next(results) == 1
    with pytest.raises(ValueError, match="collect failed"):
        next(results)


def test_calls_carry_the_callers_spark_local_properties(spark):
    sc = spark.sparkContext
    sc.setLocalProperty("klout.test.batch", "backfill-7")
    try:
        seen = list(prefetched(spark, [lambda: sc.getLocalProperty("klout.test.batch")] * 2))
    finally:
        sc.setLocalProperty("klout.test.batch", None)
    assert seen == ["backfill-7", "backfill-7"]
