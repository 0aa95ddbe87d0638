"""Reddit Pushshift reader: hand-built submissions/comments -> exact events; parents resolved across files."""

import json
from datetime import datetime

from pyspark.sql import functions as F

from klout_spark import catalog, ingest
from klout_spark import columns as C
from klout_spark.ingest import ingest_files
from klout_spark.readers import parse_reddit_lines

T0 = 1790000000  # 2026-09-21 14:13:20 UTC


def submission(sid, author, author_id36, created, *, subreddit="birding", title="Saw a heron", **extra):
    return {
        "id": sid, "name": f"t3_{sid}", "author": author, "author_fullname": f"t2_{author_id36}",
        "author_created_utc": 1500000000, "subreddit": subreddit, "subreddit_id": "t5_2qh1i",
        "subreddit_name_prefixed": f"r/{subreddit}", "title": title, "selftext": "", "created_utc": created,
        "num_comments": 0, "score": 1, "over_18": False, "permalink": f"/r/{subreddit}/comments/{sid}/x/",
        **extra,
    }


def comment(cid, author, author_id36, created, parent, link, *, body="Nice!", subreddit="birding"):
    return {
        "id": cid, "name": f"t1_{cid}", "author": author, "author_fullname": f"t2_{author_id36}",
        "parent_id": parent, "link_id": link, "subreddit": subreddit, "subreddit_id": "t5_2qh1i",
        "body": body, "created_utc": created, "score": 1, "controversiality": 0, "gilded": 0,
    }


# base36: k1 = 721, m0 = 792, m1 = 793, t2_5 = 5, t2_h = 17, t2_z = 35
HERON = submission("k1", "Otter_Sunny_5", "5", T0)
FIRST = comment("m0", "Heron_Blue_17", "h", str(T0 + 100), "t3_k1", "t3_k1")  # created_utc as a string
SECOND = comment("m1", "Otter_Sunny_5", "5", T0 + 86400, "t1_m0", "t3_k1", body="Thanks u/Heron_Blue_17")
CROSSPOST = submission("k2", "Crow_Z_35", "z", T0 + 86500, subreddit="Birds", crosspost_parent="t3_k1",
                       crosspost_parent_list=[])
ORPHAN = comment("m2", "Crow_Z_35", "z", T0 + 86600, "t1_zzzz", "t3_zzz")
DELETED = {**comment("m3", "[deleted]", "z", T0 + 86700, "t3_k1", "t3_k1"), "author_fullname": None}


def test_submissions_and_comments_map_to_posts_and_replies(spark):
    frame = spark.createDataFrame([(json.dumps(r),) for r in (HERON, FIRST, SECOND, CROSSPOST)], "value string")
    rows = {r[C.EVENT_ID]: r for r in parse_reddit_lines(frame, max_raw_chars=50).collect()}
    got = {
        k: (r[C.EVENT_TYPE], r[C.ACTOR_ID], r[C.SUBJECT_ID], r[C.POST_ID], r[C.PARENT_POST_ID], r[C.EVENT_TS],
            r[C.HASHTAGS], r[C.REASON])
        for k, r in rows.items()
    }
    assert got == {
        "rd:t3_k1": ("post", "rd:u:5", None, "rd:p:721", None, datetime(2026, 9, 21, 14, 13, 20), ["birding"], None),
        "rd:t1_m0": ("reply", "rd:u:17", None, "rd:p:792", "rd:p:721", datetime(2026, 9, 21, 14, 15), ["birding"],
                     None),
        "rd:t1_m1": ("reply", "rd:u:5", None, "rd:p:793", "rd:p:792", datetime(2026, 9, 22, 14, 13, 20),
                     ["birding"], None),
        "rd:t3_k2": ("reshare", "rd:u:35", None, "rd:p:722", "rd:p:721", datetime(2026, 9, 22, 14, 15),
                     ["birds"], None),
    }
    # Replies keep their raw text until their subject is resolved.
    assert rows["rd:t1_m0"][C.RAW] is not None and rows["rd:t3_k1"][C.RAW] is None
    assert rows["rd:t3_k1"][C.TEXT] == "Saw a heron" and rows["rd:t1_m1"][C.TEXT] == "Thanks u/Heron_Blue_17"


def _two_days(tmp_path) -> tuple[str, str]:
    """Day 1: the heron post and a reply to it; day 2: a reply to that reply, a crosspost, an orphan, a deleted author."""
    days = []
    for day, records in (("2026-09-21", (HERON, FIRST)), ("2026-09-22", (SECOND, CROSSPOST, ORPHAN, DELETED))):
        path = tmp_path / "rs" / day / "RC.ndjson"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        days.append(str(path))
    return days[0], days[1]


def test_reply_subjects_resolve_within_a_batch_and_across_days(lake, tmp_path):
    day1, day2 = _two_days(tmp_path)
    first = ingest_files(lake, [day1], run_id="r1", fmt="auto", max_raw_chars=1000)
    second = ingest_files(lake, [day2], run_id="r2", fmt="auto", max_raw_chars=1000)

    assert [(a.format, a.rows_read, a.rows_ok, a.rows_quarantined) for a in first.accounts + second.accounts] == [
        ("reddit", 2, 2, 0), ("reddit", 4, 2, 2)]
    bronze = {r.event_id: (r.subject_id, r.event_date.isoformat()) for r in lake.read(catalog.BRONZE_EVENTS).collect()}
    assert bronze == {
        "rd:t3_k1": (None, "2026-09-21"),
        "rd:t1_m0": ("rd:u:5", "2026-09-21"),  # parent in the same file
        "rd:t1_m1": ("rd:u:17", "2026-09-22"),  # parent ingested the day before
        "rd:t3_k2": ("rd:u:5", "2026-09-22"),  # crosspost: the original's author
    }
    quarantine = {(q.reason, q.source_line) for q in lake.read(catalog.QUARANTINE).collect()}
    assert quarantine == {("unknown_parent", 3), ("deleted_author", 4)}
    orphan_raw = next(q.raw for q in lake.read(catalog.QUARANTINE).collect() if q.reason == "unknown_parent")
    assert json.loads(orphan_raw)["id"] == "m2"
    log = {r.path: r.format for r in lake.read(catalog.INGEST_LOG).collect()}
    assert set(log.values()) == {"reddit"}


def test_a_batch_reads_the_known_posts_once(lake, spark, tmp_path, monkeypatch):
    day1, day2 = _two_days(tmp_path)
    ingest_files(lake, [day1], run_id="r1", fmt="auto", max_raw_chars=1000)
    reads = spark.sparkContext.accumulator(0)

    def counted(value):
        reads.add(1)
        return value

    known_posts = ingest._known_posts
    monkeypatch.setattr(
        ingest, "_known_posts",
        lambda lake, batch: known_posts(lake, batch).withColumn(C.ACTOR_ID, F.udf(counted, "string")(C.ACTOR_ID)),
    )
    ingest_files(lake, [day2], run_id="r2", fmt="auto", max_raw_chars=1000)
    # Day 1's two posts from bronze and the batch's three authored rows (the deleted author's is
    # quarantined by the reader), each read once: no write of the batch resolves its parents again.
    assert reads.value == 5
    assert {r.event_id for r in lake.read(catalog.BRONZE_EVENTS).collect()} == {
        "rd:t3_k1", "rd:t1_m0", "rd:t1_m1", "rd:t3_k2"}
