"""Bad input of every kind lands in quarantine with its reason; the batch goes on; accounts balance.

Kinds of damage covered here (plus the 14 canonical ones in test_ingest.py):
twitter: malformed line, broken array, stream control message, missing id_str /
created_at / user / user.id_str / in_reply_to_user_id_str / retweeted author,
garbage created_at, user or entities of the wrong type, a non-numeric count, a
bad tweet inside an array; reddit: deleted / removed / null author, missing
author / id / subreddit / created_utc, garbage created_utc, numeric id,
malformed parent_id, cut line; CSV: wrong cell count, empty required cell,
non-numeric count, bad timestamp; Parquet: a column of the wrong type; files:
truncated .gz, .bz2 and .zst, a non-gzip .gz, an unreadable Parquet file.
"""

import bz2
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.ingest import ingest_files
from klout_spark.readers import parse_reddit_lines, parse_twitter_lines
from tests.test_readers_reddit import FIRST, HERON
from tests.test_readers_twitter import ALICE, POST, REPLY, RETWEET

# .zst dumps are decompressed with the zstandard package (see klout_spark.io.stage_zstd).
zstandard = pytest.importorskip("zstandard")


def _without(record, *path):
    copy = json.loads(json.dumps(record))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _reasons(spark, parse, cases):
    frame = spark.createDataFrame([(i, line) for i, (line, _) in enumerate(cases)], "source_line long, value string")
    rows = parse(frame, max_raw_chars=30).collect()
    got = {}
    for r in rows:
        assert r[C.REASON] is None or r["_event_index"] == 0  # a bad line is exactly one row
        got.setdefault(r["source_line"], set()).add(r[C.REASON])
    return [got[i] for i in range(len(cases))], rows


TWITTER_CASES = [
    ('{"created_at": "Wed Aug 27 13:08:45 +0000 2008", "id_str": "1"', "malformed_json"),
    ('[{"id_str": "1"}, 5', "malformed_json"),
    ('[' + json.dumps(POST) + ', 5]', "malformed_json"),
    (json.dumps({"delete": {"status": {"id": 5, "id_str": "5", "user_id": 11, "user_id_str": "11"},
                            "timestamp_ms": "1219842525000"}}), "not_a_tweet"),
    (json.dumps(_without(POST, "id_str")), "missing_field:id_str"),
    (json.dumps(_without(POST, "created_at")), "missing_field:created_at"),
    (json.dumps({**POST, "created_at": "yesterday at noon"}), "bad_timestamp"),
    (json.dumps(_without(POST, "user")), "missing_field:user"),
    (json.dumps({**POST, "user": "alice"}), "bad_type:user"),
    (json.dumps(_without(POST, "user", "id_str")), "missing_field:user.id_str"),
    (json.dumps({**POST, "entities": "#Birds #aviation"}), "bad_type:entities"),
    (json.dumps({**REPLY, "in_reply_to_user_id_str": None}), "missing_field:in_reply_to_user_id_str"),
    (json.dumps({**RETWEET, "retweeted_status": _without(POST, "user", "id_str")}),
     "missing_field:retweeted_status.user.id_str"),
    (json.dumps({**POST, "user": {**ALICE, "followers_count": "many"}}), "bad_type:user.followers_count"),
    (json.dumps({**POST, "user": {**ALICE, "created_at": "a while ago"}}), "bad_type:user.created_at"),
    (json.dumps([POST, {**REPLY, "created_at": "soon"}]), "bad_timestamp"),
]

REDDIT_CASES = [
    (json.dumps({**FIRST, "author": "[deleted]"}), "deleted_author"),
    (json.dumps({**FIRST, "author": "[removed]"}), "deleted_author"),
    (json.dumps({**FIRST, "author": None}), "deleted_author"),
    (json.dumps(_without(FIRST, "author")), "missing_field:author"),
    (json.dumps(_without(HERON, "id")), "missing_field:id"),
    (json.dumps(_without(HERON, "subreddit")), "missing_field:subreddit"),
    (json.dumps(_without(HERON, "created_utc")), "missing_field:created_utc"),
    (json.dumps({**HERON, "created_utc": "last tuesday"}), "bad_timestamp"),
    (json.dumps({**HERON, "id": 721}), "bad_type:id"),
    (json.dumps({**FIRST, "parent_id": "k1"}), "bad_type:parent_id"),
    (json.dumps(FIRST)[:50], "malformed_json"),
]


def test_twitter_damage_gets_its_reason_one_row_per_line(spark):
    got, rows = _reasons(spark, parse_twitter_lines, TWITTER_CASES)
    assert got == [{reason} for _, reason in TWITTER_CASES]
    assert all(r[C.RAW] is not None and len(r[C.RAW]) <= 30 for r in rows)


def test_reddit_damage_gets_its_reason(spark):
    got, _ = _reasons(spark, parse_reddit_lines, REDDIT_CASES)
    assert got == [{reason} for _, reason in REDDIT_CASES]


GOOD = {"event_id": "e1", "network": "twitter", "event_type": "post", "event_ts": "2026-10-01T12:00:00Z",
        "actor_id": "tw:u:1", "post_id": "tw:p:1"}


def _jsonl(events):
    return ("\n".join(json.dumps({**GOOD, "event_id": f"e{i}"}) for i in events) + "\n").encode()


@pytest.fixture()
def damaged_folder(tmp_path):
    d = tmp_path / "dump"
    d.mkdir()
    # A long-window zstd frame (as Pushshift writes) of canonical lines.
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31, enable_ldm=True)
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()  # no size: the window stays 2 GiB
    zst = stream.compress(_jsonl(range(100, 103))) + stream.flush()
    assert zstandard.get_frame_parameters(zst).window_size == 2**31
    (d / "a.jsonl.zst").write_bytes(zst)
    # Truncated streams: the readable prefix is kept, the cut line is malformed.
    many = _jsonl(range(200, 2200))
    whole = gzip.compress(many)
    (d / "b-truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    whole_bz2 = bz2.compress(many)
    (d / "c-truncated.jsonl.bz2").write_bytes(whole_bz2[: len(whole_bz2) // 2])
    (d / "d-truncated.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(many)[:2000])
    (d / "e-not-gzip.jsonl.gz").write_bytes(b"this was never gzip\n")
    (d / "f.csv").write_text(
        "event_id,network,event_type,event_ts,actor_id,post_id,hashtags,followers_count,extra\n"
        "c1,twitter,post,2026-10-01T12:00:00Z,tw:u:1,tw:p:9,\"[\"\"Birds\"\"]\",,x\n"
        "c2,twitter,post,2026-10-01T12:00:00Z,tw:u:1,tw:p:9,birds;owls,,\n"
        "c3,twitter,post,2026-10-01T12:00:00Z,,tw:p:9,,,\n"
        "c4,twitter,profile,2026-10-01T12:00:00Z,tw:u:1,,,lots,\n"
        "c5,twitter,post,soon,tw:u:1,tw:p:9,,,\n"
        "c6,twitter,post\n"
    )
    table = pa.table({
        "event_id": ["p1", "p2"], "network": ["reddit", "reddit"], "event_type": ["post", "profile"],
        "event_ts": pa.array([1790000000_000_000, None], pa.timestamp("us", tz="UTC")),
        "actor_id": ["rd:u:1", "rd:u:2"], "hashtags": [["Birds"], None],
        "followers_count": pa.array([None, 2.5], pa.float64()),
    })
    pq.write_table(table, d / "g.parquet")
    (d / "h-corrupt.parquet").write_bytes(b"PAR1 not really parquet")
    (d / "i-tweets.json").write_text("\n".join([json.dumps([POST, REPLY]), "", json.dumps(RETWEET), "{broken"]) + "\n")
    return d


def test_damaged_files_do_not_stop_the_batch_and_every_file_balances(lake, damaged_folder):
    summary = ingest_files(lake, [str(damaged_folder)], run_id="r1", fmt="auto", max_raw_chars=300)
    accounts = {a.path.rsplit("/", 1)[-1]: a for a in summary.accounts}
    assert all(a.rows_read == a.rows_ok + a.rows_quarantined for a in accounts.values())
    assert {n: (a.format, a.damage) for n, a in accounts.items()} == {
        "a.jsonl.zst": ("canonical", None),
        "b-truncated.jsonl.gz": ("canonical", "truncated_file"),
        "c-truncated.jsonl.bz2": ("canonical", "truncated_file"),
        "d-truncated.jsonl.zst": ("canonical", "truncated_file"),
        "e-not-gzip.jsonl.gz": ("canonical", "corrupt_file"),
        "f.csv": ("canonical_csv", None),
        "g.parquet": ("canonical_parquet", None),
        "h-corrupt.parquet": ("canonical_parquet", "corrupt_file"),
        "i-tweets.json": ("twitter", None),
    }
    assert (accounts["a.jsonl.zst"].rows_read, accounts["a.jsonl.zst"].rows_ok) == (3, 3)
    for name in ("b-truncated.jsonl.gz", "d-truncated.jsonl.zst"):
        # Some prefix kept, not all of it, plus the marker row for the lost rest (and maybe a cut line).
        assert 0 < accounts[name].rows_ok < 2000 and accounts[name].rows_quarantined in (1, 2)
    # bzip2 decodes whole 900 kB blocks: a cut first block leaves no readable prefix.
    assert accounts["c-truncated.jsonl.bz2"].rows_ok < 2000
    assert (accounts["e-not-gzip.jsonl.gz"].rows_read, accounts["e-not-gzip.jsonl.gz"].rows_quarantined) == (1, 1)
    assert (accounts["f.csv"].rows_read, accounts["f.csv"].rows_ok) == (6, 2)
    assert (accounts["g.parquet"].rows_read, accounts["g.parquet"].rows_ok) == (2, 1)
    # Lines, not events: the array line (two tweets, six events) counts once.
    assert (accounts["i-tweets.json"].rows_read, accounts["i-tweets.json"].rows_ok) == (3, 2)

    quarantine = lake.read(catalog.QUARANTINE).collect()
    by_file = {}
    for q in quarantine:
        by_file.setdefault(q.source_path.rsplit("/", 1)[-1], []).append((q.reason, q.source_line))
    assert sorted(by_file["f.csv"]) == [("bad_timestamp", 6), ("bad_type:followers_count", 5),
                                        ("malformed_csv", 7), ("missing_field:actor_id", 4)]
    assert by_file["g.parquet"] == [("bad_type:followers_count", 2)]
    assert by_file["i-tweets.json"] == [("malformed_json", 4)]
    assert by_file["h-corrupt.parquet"] == [("corrupt_file", None)]
    assert ("truncated_file", None) in by_file["b-truncated.jsonl.gz"]
    marker = next(q for q in quarantine if q.reason == "corrupt_file" and q.source_path.endswith(".gz"))
    assert marker.raw.startswith(marker.source_path)

    bronze = {r.event_id: r for r in lake.read(catalog.BRONZE_EVENTS).collect()}
    assert {"e100", "e101", "e102", "c1", "c2", "p1"} <= set(bronze)
    tweets = {k: (b.event_type, b.source_line) for k, b in bronze.items() if k.startswith("tw:")}
    assert tweets == {
        "tw:t:1000": ("post", 1), "tw:m:1000:22": ("mention", 1), "tw:profile:11:1000": ("profile", 1),
        "tw:t:1001": ("reply", 1), "tw:m:1001:33": ("mention", 1), "tw:profile:22:1001": ("profile", 1),
        "tw:t:1002": ("reshare", 3), "tw:m:1002:22": ("mention", 3), "tw:profile:33:1002": ("profile", 3),
    }
    assert bronze["c1"][C.HASHTAGS] == ["birds"] and bronze["c2"][C.HASHTAGS] == ["birds", "owls"]
    assert bronze["p1"][C.EVENT_TS].isoformat() == "2026-09-21T14:13:20" and bronze["p1"].source_line == 1
    log = {r.path.rsplit("/", 1)[-1]: r.format for r in lake.read(catalog.INGEST_LOG).collect()}
    assert log["g.parquet"] == "canonical_parquet" and log["a.jsonl.zst"] == "canonical"
    assert not (damaged_folder.parent / "lake" / "_staging").exists() or not any(
        (damaged_folder.parent / "lake" / "_staging").iterdir())
