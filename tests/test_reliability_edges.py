"""Edge cases end to end, in one lakehouse, in order:

1. an empty dump (a 0-byte file): a clear error, nothing scored;
2. a one-account graph (one account, posts only, no edges): one score, all the PageRank mass;
3. a day with no events (as_of after the last event day), with
   - an account with only outgoing activity (likes, a reply, a mention; nobody engages it),
   - very long non-Latin text and non-Latin hashtags,
   - an id that is a JSON number in one file and a string in a CSV file: one account.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from pyspark.sql import functions as F

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.errors import StageOrderError
from klout_spark.pipeline import Pipeline, run_daily

pytestmark = pytest.mark.slow

DAY1, DAY2, EMPTY_DAY = date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1)
LONG_TEXT = ("日本語のテキスト 🙂 مرحبا بالعالم עברית Ελληνικά " * 2500).strip()


def _event(event_id, event_type, actor, day, **extra):
    return {"event_id": event_id, "network": "twitter", "event_type": event_type,
            "event_ts": f"{day.isoformat()}T{10 + len(str(event_id)) % 10:02d}:00:00Z", "actor_id": actor, **extra}


def _jsonl(path, events):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")


@pytest.fixture()
def pipeline(spark, settings):  # noqa: ARG001 - the shared session must exist first
    return Pipeline.open(settings)


def test_edge_cases_end_to_end_in_one_lakehouse(pipeline, tmp_path):
    lake = pipeline.lake
    # 1. An empty dump.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "nothing.jsonl").write_bytes(b"")
    with pytest.raises(StageOrderError, match="silver_events is empty: ingest and validate some events first"):
        run_daily(pipeline, as_of=None, inputs=[str(empty)])
    log = lake.read(catalog.INGEST_LOG).collect()
    assert [(r.rows_read, r.rows_ok, r.rows_quarantined) for r in log] == [(0, 0, 0)]
    assert not lake.exists(catalog.SCORES)

    # 2. A one-account graph.
    _jsonl(tmp_path / "day1" / "solo.jsonl", [
        _event("s1", "post", "solo", DAY1, post_id="p-s1"),
        _event("s2", "post", "solo", DAY1, post_id="p-s2"),
        _event("s3", "profile", "solo", DAY1, followers_count=3, following_count=1, listed_count=0,
               posts_count=2, account_created_at="2020-01-01T00:00:00Z", verified=False),
    ])
    first = run_daily(pipeline, as_of=None, inputs=[str(tmp_path / "day1")])
    assert first.as_of == DAY1 and first.scored == 1
    assert first.propagation.edge_count == 0
    ranks = lake.read(catalog.NETWORK_RANK).collect()
    assert [(r.user_id, round(r.pagerank, 9)) for r in ranks] == [("solo", 1.0)]
    solo = lake.read(catalog.SCORES).collect()
    assert [(r.user_id, r.rank) for r in solo] == [("solo", 1)] and 1.0 <= solo[0].score <= 100.0

    # 3. The next day's dump, scored on a day with no events.
    day2 = tmp_path / "day2"
    _jsonl(day2 / "events.jsonl", [
        _event("t1", "post", "star", DAY2, post_id="p-t1", text=LONG_TEXT, hashtags=["日本語", "#Ünïcode"]),
        _event(900001, "post", 12345, DAY2, post_id=777),  # numeric ids
        _event("o1", "like", "outgoing", DAY2, subject_id="star", parent_post_id="p-t1"),
        _event("o2", "reply", "outgoing", DAY2, subject_id="star", post_id="p-o2", parent_post_id="p-t1"),
        _event("o3", "mention", "outgoing", DAY2, subject_id="12345", post_id="p-o2"),
        _event("o4", "like", "outgoing", DAY2, subject_id="12345", parent_post_id="777"),
    ])
    (day2 / "more.csv").write_text(
        "event_id,network,event_type,event_ts,actor_id,post_id\n"
        f"900002,twitter,post,{DAY2.isoformat()}T15:00:00Z,12345,778\n",
        encoding="utf-8",
    )
    second = run_daily(pipeline, as_of=EMPTY_DAY, inputs=[str(day2)])
    assert second.as_of == EMPTY_DAY
    assert second.ingest.rows_read == 7 and second.ingest.rows_quarantined == 0

    scores = {r.user_id: r for r in lake.read(catalog.SCORES).filter(F.col(C.AS_OF) == EMPTY_DAY).collect()}
    assert set(scores) == {"solo", "star", "12345", "outgoing"}
    # The number in one file and the string in the other are one account with both posts.
    daily = lake.read(catalog.USER_DAILY).filter((F.col(C.USER_ID) == "12345") & (F.col(C.EVENT_DATE) == DAY2))
    assert [r.posts_sent for r in daily.collect()] == [2]
    # Only outgoing: it engages others, nobody engages it; it is scored, with the least reach.
    edges = lake.read(catalog.ENGAGEMENT_EDGES).filter(F.col(C.AS_OF) == EMPTY_DAY).collect()
    assert {(e.src, e.dst) for e in edges} == {("outgoing", "star"), ("outgoing", "12345")}
    assert scores["outgoing"].true_reach == min(s.true_reach for s in scores.values())
    assert scores["star"].network_impact > scores["outgoing"].network_impact
    # Long non-Latin text and hashtags survive intact.
    star = lake.read(catalog.SILVER_EVENTS).filter(F.col(C.EVENT_ID) == "t1").first()
    assert star.text == LONG_TEXT and len(star.text) == len(LONG_TEXT) > 90_000
    assert star.hashtags == ["日本語", "ünïcode"]
    # The earlier as_of is kept as history.
    assert lake.read(catalog.SCORES).filter(F.col(C.AS_OF) == DAY1).count() == 1
