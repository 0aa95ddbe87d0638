import gzip
import json
from datetime import datetime

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.errors import InputError
from klout_spark.ingest import (
    batch_id_for,
    ingest_files,
    only_committed,
    parse_canonical_lines,
    with_line_numbers,
)

GOOD_POST = {
    "event_id": "e1", "network": "twitter", "event_type": "post", "event_ts": "2026-10-01T12:00:00Z",
    "actor_id": "u1", "post_id": "p1", "text": "hello", "hashtags": ["#Birds", "aviation"],
}
GOOD_LIKE = {
    "event_id": "e2", "network": "twitter", "event_type": "like", "event_ts": "2026-10-01T13:30:00+02:00",
    "actor_id": "u2", "subject_id": "u1", "parent_post_id": "p1",
}


def _lines(spark, texts):
    return spark.createDataFrame([(t,) for t in texts], "value string")


def _parse(spark, texts):
    return parse_canonical_lines(_lines(spark, texts), max_raw_chars=40).collect()


def test_good_lines_parse_to_typed_utc_events(spark):
    rows = _parse(spark, [json.dumps(GOOD_POST), json.dumps(GOOD_LIKE)])
    post, like = rows
    assert post[C.REASON] is None and post[C.RAW] is None
    assert post[C.EVENT_TS] == datetime(2026, 10, 1, 12, 0, 0)
    assert post[C.HASHTAGS] == ["birds", "aviation"]  # lowercased, '#' dropped
    assert like[C.EVENT_TS] == datetime(2026, 10, 1, 11, 30, 0)  # +02:00 converted to UTC
    assert (like[C.SUBJECT_ID], like[C.PARENT_POST_ID]) == ("u1", "p1")


def test_profile_line_types_counts_booleans_and_epoch_seconds(spark):
    line = json.dumps({
        "event_id": "p", "network": "reddit", "event_type": "profile", "event_ts": 1790000000,
        "actor_id": 17, "followers_count": "12", "verified": True, "account_created_at": "2020-01-01T00:00:00Z",
    })
    (row,) = _parse(spark, [line])
    assert row[C.REASON] is None
    assert row[C.ACTOR_ID] == "17"  # numeric ids become strings
    assert row[C.FOLLOWERS_COUNT] == 12 and row[C.VERIFIED] is True
    assert row[C.EVENT_TS] == datetime(2026, 9, 21, 14, 13, 20)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json at all", "malformed_json"),
        ('{"event_id": "x", "network": "twitter"', "malformed_json"),
        ("[1, 2, 3]", "malformed_json"),
        ("{}", "missing_field:event_id"),
        (json.dumps({**GOOD_POST, "event_id": ""}), "missing_field:event_id"),
        (json.dumps({k: v for k, v in GOOD_POST.items() if k != "network"}), "missing_field:network"),
        (json.dumps({k: v for k, v in GOOD_POST.items() if k != "actor_id"}), "missing_field:actor_id"),
        (json.dumps({k: v for k, v in GOOD_POST.items() if k != "event_type"}), "missing_field:event_type"),
        (json.dumps({k: v for k, v in GOOD_POST.items() if k != "event_ts"}), "missing_field:event_ts"),
        (json.dumps({**GOOD_POST, "event_ts": "yesterday"}), "bad_timestamp"),
        (json.dumps({**GOOD_POST, "hashtags": "birds"}), "bad_type:hashtags"),
        (json.dumps({**GOOD_POST, "followers_count": "many"}), "bad_type:followers_count"),
        (json.dumps({**GOOD_POST, "verified": "perhaps"}), "bad_type:verified"),
        (json.dumps({**GOOD_POST, "account_created_at": "long ago"}), "bad_type:account_created_at"),
    ],
)
def test_bad_lines_get_a_reason_and_keep_their_raw_text(spark, line, reason):
    (row,) = _parse(spark, [line])
    assert row[C.REASON] == reason
    assert row[C.RAW] == line[:40]


def test_line_numbers_follow_split_offsets_and_read_order(spark):
    rows = [("f1", 0, 10, "a"), ("f1", 0, 11, "b"), ("f1", 100, 5, "c"), ("f2", 0, 7, "d")]
    schema = "source_path string, block_start long, ordinal long, value string"
    numbered = with_line_numbers(spark.createDataFrame(rows, schema))
    got = {(r.source_path, r.value): r.source_line for r in numbered.collect()}
    assert got == {("f1", "a"): 1, ("f1", "b"): 2, ("f1", "c"): 3, ("f2", "d"): 1}


def test_line_numbers_map_the_file_uri_to_its_path_once_per_split(spark):
    rows = [("u1", 0, 3, "a"), ("u1", 50, 9, "b"), ("u1", 50, 10, "c"), ("u2", 0, 4, "d")]
    schema = "_file string, block_start long, ordinal long, value string"
    numbered = with_line_numbers(
        spark.createDataFrame(rows, schema), source_path=lambda uri: F.concat(F.lit("/dump/"), uri)
    )
    assert numbered.columns == ["source_path", "value", "source_line"]
    got = {(r.source_path, r.value): r.source_line for r in numbered.collect()}
    assert got == {("/dump/u1", "a"): 1, ("/dump/u1", "b"): 2, ("/dump/u1", "c"): 3, ("/dump/u2", "d"): 1}


def _write_dump(path, records, *, gz=False):
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def test_ingest_accounts_for_every_line_and_is_exactly_once(lake, tmp_path):
    dump = tmp_path / "dump"
    _write_dump(dump / "2026-10-01" / "a.jsonl.gz", [GOOD_POST, GOOD_LIKE, "", "garbage"], gz=True)
    _write_dump(dump / "2026-10-02" / "b.jsonl", [{**GOOD_LIKE, "event_id": "e3"}, "{}"])
    (dump / "notes.txt").write_text("not a dump file")

    first = ingest_files(lake, [str(dump)], run_id="r1", fmt="auto", max_raw_chars=100)
    assert first.files_found == 2
    assert [(a.rows_read, a.rows_ok, a.rows_quarantined) for a in first.accounts] == [(3, 2, 1), (2, 1, 1)]

    bronze = lake.read(catalog.BRONZE_EVENTS)
    assert sorted(r.event_id for r in bronze.collect()) == ["e1", "e2", "e3"]
    quarantine = lake.read(catalog.QUARANTINE).orderBy(C.SOURCE_PATH).collect()
    assert [(q.reason, q.source_line) for q in quarantine] == [("malformed_json", 4), ("missing_field:event_id", 2)]
    log = lake.read(catalog.INGEST_LOG).collect()
    assert all(r.rows_read == r.rows_ok + r.rows_quarantined for r in log)
    assert {r.batch_id for r in log} == {first.batch_id}

    again = ingest_files(lake, [str(dump)], run_id="r2", fmt="auto", max_raw_chars=100)
    assert again.batch_id is None and again.files_skipped == 2
    assert lake.read(catalog.BRONZE_EVENTS).count() == 3

    # The same bytes under another name are the same file.
    (dump / "copy").mkdir()
    (dump / "copy" / "b-renamed.jsonl").write_bytes((dump / "2026-10-02" / "b.jsonl").read_bytes())
    renamed = ingest_files(lake, [str(dump)], run_id="r3", fmt="auto", max_raw_chars=100)
    assert renamed.batch_id is None and renamed.files_skipped == 3


def test_rerun_after_a_crash_removes_uncommitted_rows(lake, tmp_path):
    path = _write_dump(tmp_path / "d" / "a.jsonl", [GOOD_POST, GOOD_LIKE, "garbage"])
    first = ingest_files(lake, [str(path)], run_id="r1", fmt="auto", max_raw_chars=100)
    # Simulate a crash after bronze and quarantine were written but before the ingest_log commit.
    lake.delete(catalog.INGEST_LOG, F.lit(True))
    rerun = ingest_files(lake, [str(path)], run_id="r2", fmt="auto", max_raw_chars=100)
    checksum = first.accounts[0].checksum
    assert rerun.batch_id != first.batch_id
    bronze = lake.read(catalog.BRONZE_EVENTS).collect()
    assert sorted((r.event_id, r.batch_id) for r in bronze) == [("e1", rerun.batch_id), ("e2", rerun.batch_id)]
    assert [(q.reason, q.batch_id) for q in lake.read(catalog.QUARANTINE).collect()] == [
        ("malformed_json", rerun.batch_id)]
    assert [(r.source_checksum, r.batch_id) for r in lake.read(catalog.INGEST_LOG).collect()] == [
        (checksum, rerun.batch_id)]


def test_rerun_after_a_crash_removes_stale_quarantine_rows_of_a_file_without_good_lines(lake, tmp_path):
    path = _write_dump(tmp_path / "d" / "a.jsonl", ["garbage", "{}"])
    first = ingest_files(lake, [str(path)], run_id="r1", fmt="auto", max_raw_chars=100)
    # A crash before the commit: the attempt's quarantine rows stay (it wrote no bronze rows).
    lake.delete(catalog.INGEST_LOG, F.lit(True))
    rerun = ingest_files(lake, [str(path)], run_id="r2", fmt="auto", max_raw_chars=100)
    assert sorted((q.reason, q.batch_id) for q in lake.read(catalog.QUARANTINE).collect()) == [
        ("malformed_json", rerun.batch_id), ("missing_field:event_id", rerun.batch_id)]
    assert rerun.batch_id != first.batch_id and lake.read(catalog.BRONZE_EVENTS).count() == 0


def test_batch_ids_differ_per_attempt_not_per_file_order():
    assert batch_id_for(["b", "a"], attempt="x") == batch_id_for(["a", "b"], attempt="x")
    assert batch_id_for(["a", "b"], attempt="x") != batch_id_for(["a", "b"], attempt="y")
    assert len(batch_id_for(["a"], attempt="x")) == 16


def test_an_attempt_that_loses_the_race_for_a_file_removes_its_rows(lake, tmp_path, monkeypatch):
    """Two ingests read ingest_log before either committed: the second to commit must not duplicate."""
    import klout_spark.ingest as ingest

    a = _write_dump(tmp_path / "d" / "a.jsonl", [GOOD_POST, "garbage"])
    winner = ingest_files(lake, [str(a)], run_id="r1", fmt="auto", max_raw_chars=100)
    b = _write_dump(tmp_path / "d" / "b.jsonl", [{**GOOD_LIKE, "event_id": "e3"}])
    # The racer saw neither file committed, so it reads, writes and commits both.
    monkeypatch.setattr(ingest, "_not_yet_ingested", lambda _lake, files: list(files))
    racer = ingest_files(lake, [str(tmp_path / "d")], run_id="r2", fmt="auto", max_raw_chars=100)
    assert racer.files_found == 2 and racer.files_skipped == 1
    assert [(acc.path, acc.rows_read) for acc in racer.accounts] == [(str(b.resolve()), 1)]
    log = {r.path.rsplit("/", 1)[-1]: r.batch_id for r in lake.read(catalog.INGEST_LOG).collect()}
    assert log == {"a.jsonl": winner.batch_id, "b.jsonl": racer.batch_id}
    bronze = sorted((r.event_id, r.batch_id) for r in lake.read(catalog.BRONZE_EVENTS).collect())
    assert bronze == [("e1", winner.batch_id), ("e3", racer.batch_id)]
    quarantine = [(q.reason, q.batch_id) for q in lake.read(catalog.QUARANTINE).collect()]
    assert quarantine == [("malformed_json", winner.batch_id)]
    # Nothing of the file it lost was committed under the racer's batch.
    visible = ingest.only_committed(lake.read(catalog.BRONZE_EVENTS), lake.read(catalog.INGEST_LOG))
    assert sorted(r.event_id for r in visible.collect()) == ["e1", "e3"]


def test_only_committed_drops_rows_of_uncommitted_batch_file_pairs(spark):
    rows = spark.createDataFrame(
        [("e1", "b1", "s1"), ("e2", "b1", "s2"), ("e3", "b2", "s1"), ("e4", None, "s1")],
        "event_id string, batch_id string, source_checksum string",
    )
    log = spark.createDataFrame([("b1", "s1", "/a"), ("b2", "s2", "/b")], "batch_id string, source_checksum string, path string")
    assert sorted(r.event_id for r in only_committed(rows, log).collect()) == ["e1"]


def test_missing_path_and_wrong_file_kind_are_clear_errors(lake, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ingest_files(lake, [str(tmp_path / "absent")], run_id="r", fmt="auto", max_raw_chars=10)
    notes = tmp_path / "x.txt"
    notes.write_text("a,b\n")
    with pytest.raises(InputError, match="is not a dump file"):
        ingest_files(lake, [str(notes)], run_id="r", fmt="auto", max_raw_chars=10)
    with pytest.raises(InputError, match="format must be"):
        ingest_files(lake, [str(notes)], run_id="r", fmt="bogus", max_raw_chars=10)
    csv = tmp_path / "x.csv"
    csv.write_text("event_id,network\n")
    with pytest.raises(InputError, match="has no csv form"):
        ingest_files(lake, [str(csv)], run_id="r", fmt="twitter", max_raw_chars=10)


def test_bronze_schema_is_partitioned_by_event_date(lake, tmp_path):
    path = _write_dump(tmp_path / "d" / "a.jsonl", [GOOD_POST])
    ingest_files(lake, [str(path)], run_id="r1", fmt="auto", max_raw_chars=100)
    detail = lake.spark.sql(f"DESCRIBE DETAIL delta.`{lake.path(catalog.BRONZE_EVENTS)}`").first()
    assert detail.partitionColumns == [C.EVENT_DATE]
    assert lake.read(catalog.BRONZE_EVENTS).schema[C.EVENT_TS].dataType == T.TimestampType()
