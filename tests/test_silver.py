"""Promotion to silver: one row per event id, the earliest ingested (file, line) kept."""

from datetime import datetime

import pytest

from klout_spark.silver import first_per_event_id

COLUMNS = "event_id string, ingested_at timestamp, source_checksum string, source_line long, payload string"
EARLY, LATE = datetime(2026, 10, 1, 8), datetime(2026, 10, 2, 8)


def _events(spark, rows):
    return spark.createDataFrame(rows, COLUMNS)


def _kept(frame):
    return sorted((r.event_id, r.payload) for r in frame.collect())


def test_a_batch_without_repeated_ids_keeps_every_row(spark):
    events = _events(spark, [("a", EARLY, "f1", 1, "a1"), ("b", EARLY, "f1", 2, "b1"), ("c", LATE, "f2", 1, "c1")])
    assert _kept(first_per_event_id(events)) == [("a", "a1"), ("b", "b1"), ("c", "c1")]


# 2 repeated ids: broadcast with room to spare, broadcast at the limit, and the window over every row.
@pytest.mark.parametrize("broadcast_max_ids", [100, 2, 1])
def test_a_repeated_id_keeps_its_earliest_ingested_file_and_line(spark, broadcast_max_ids):
    events = _events(spark, [
        ("a", LATE, "f0", 1, "a-later-ingest"),
        ("a", EARLY, "f2", 1, "a-greater-checksum"),
        ("a", EARLY, "f1", 9, "a-first"),
        ("a", EARLY, "f1", 10, "a-later-line"),
        ("b", EARLY, "f1", 2, "b-first"),
        ("b", LATE, "f1", 2, "b-later-ingest"),
        ("c", LATE, "f3", 7, "c-once"),
    ])
    kept = first_per_event_id(events, broadcast_max_ids=broadcast_max_ids)
    assert _kept(kept) == [("a", "a-first"), ("b", "b-first"), ("c", "c-once")]
    assert kept.columns == events.columns
