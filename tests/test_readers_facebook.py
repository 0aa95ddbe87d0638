"""Facebook Graph API feed reader: hand-written feed pages -> exact events; damaged posts -> quarantine."""

import json
from datetime import datetime

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.ingest import ingest_files
from klout_spark.readers import EVENT_INDEX, parse_facebook_lines

PAGE_ID = "1029384756"
CLUB = {"id": PAGE_ID, "name": "Harbour Birding Club"}
ANA = {"id": "5551", "name": "Ana Lima"}
BEN = {"id": "5552", "name": "Ben Okoro"}

COUNT_POST = {
    "id": f"{PAGE_ID}_2001",
    "created_time": "2019-03-01T12:00:00+0000",
    "from": CLUB,
    "message": "Spring count this Saturday with Ana Lima! #Birding #spring",
    "message_tags": [{"id": "5551", "name": "Ana Lima", "type": "user", "offset": 32, "length": 8}],
    "shares": {"count": 7},
    "reactions": {
        "data": [{**ANA, "type": "LOVE"}, {**BEN, "type": "LIKE"}],
        "paging": {"cursors": {"before": "QVFIUk1", "after": "QVFIUlp"}},
    },
    "comments": {
        "data": [
            {
                "id": "2001_3001",
                "from": BEN,
                "created_time": "2019-03-01T13:30:00+0000",
                "message": "Count me in",
                "comments": {
                    "data": [
                        {
                            "id": "2001_3002",
                            "from": CLUB,
                            "created_time": "2019-03-01T14:00:00+0000",
                            "message": "Great, see you at the pier",
                        }
                    ]
                },
            }
        ],
        "paging": {"cursors": {"before": "MQZDZD", "after": "MQZDZD"}},
    },
}
PHOTO_POST = {
    "id": f"{PAGE_ID}_2002",
    "created_time": "2019-03-02T08:15:00+0000",
    "from": CLUB,
    "message": "Photos from the count are up",
}
PAGING = {
    "cursors": {"before": "QVFIUkx", "after": "QVFIUmF"},
    "next": f"https://graph.facebook.com/v19.0/{PAGE_ID}/feed?limit=2&after=QVFIUmF",
}
PAGE = {"data": [COUNT_POST, PHOTO_POST], "paging": PAGING}


def _parse(spark, *lines):
    frame = spark.createDataFrame([(line,) for line in lines], "value string")
    return parse_facebook_lines(frame, max_raw_chars=10_000).collect()


def test_posts_comments_replies_reactions_and_tags_become_events(spark):
    rows = _parse(spark, json.dumps(PAGE))
    got = {
        r[C.EVENT_ID]: (r[C.EVENT_TYPE], r[C.ACTOR_ID], r[C.SUBJECT_ID], r[C.POST_ID], r[C.PARENT_POST_ID],
                        r[C.EVENT_TS])
        for r in rows
    }
    noon = datetime(2019, 3, 1, 12)
    assert got == {
        "fb:post:1029384756_2001": ("post", "fb:u:1029384756", None, "fb:p:1029384756_2001", None, noon),
        "fb:tag:1029384756_2001:5551": ("mention", "fb:u:1029384756", "fb:u:5551", "fb:p:1029384756_2001", None,
                                        noon),
        "fb:react:1029384756_2001:5551": ("like", "fb:u:5551", "fb:u:1029384756", None, "fb:p:1029384756_2001",
                                          noon),
        "fb:react:1029384756_2001:5552": ("like", "fb:u:5552", "fb:u:1029384756", None, "fb:p:1029384756_2001",
                                          noon),
        "fb:comment:2001_3001": ("reply", "fb:u:5552", "fb:u:1029384756", "fb:p:2001_3001",
                                 "fb:p:1029384756_2001", datetime(2019, 3, 1, 13, 30)),
        "fb:comment:2001_3002": ("reply", "fb:u:1029384756", "fb:u:5552", "fb:p:2001_3002", "fb:p:2001_3001",
                                 datetime(2019, 3, 1, 14)),
        "fb:post:1029384756_2002": ("post", "fb:u:1029384756", None, "fb:p:1029384756_2002", None,
                                    datetime(2019, 3, 2, 8, 15)),
    }
    by_id = {r[C.EVENT_ID]: r for r in rows}
    post = by_id["fb:post:1029384756_2001"]
    # The share count is kept on the post as a number; no reshare events are invented.
    assert post[C.SHARE_COUNT] == 7 and not any(r[C.EVENT_TYPE] == "reshare" for r in rows)
    assert post[C.HASHTAGS] == ["birding", "spring"] and post[C.TEXT] == COUNT_POST["message"]
    assert by_id["fb:post:1029384756_2002"][C.SHARE_COUNT] is None
    assert by_id["fb:comment:2001_3002"][C.TEXT] == "Great, see you at the pier"
    assert {r[C.NETWORK] for r in rows} == {"facebook"} and {r[C.REASON] for r in rows} == {None}
    # Two posts: two records, each counted once by the ingest accounting.
    assert sorted(r[EVENT_INDEX] for r in rows if r[EVENT_INDEX] == 0) == [0, 0]


def _damaged(post_changes=None, **top):
    post = {**PHOTO_POST, "id": f"{PAGE_ID}_2999", **(post_changes or {})}
    return {**post, **top}


def test_damaged_pages_and_posts_are_quarantined_with_reasons(spark):
    no_from_comment = {"id": "2999_1", "created_time": "2019-03-02T09:00:00+0000", "message": "anonymous"}
    deep_reply_without_id = {
        "id": "2999_2", "from": ANA, "created_time": "2019-03-02T09:00:00+0000",
        "comments": {"data": [{"from": BEN, "created_time": "2019-03-02T10:00:00+0000"}]},
    }
    bad_posts = [
        {k: v for k, v in PHOTO_POST.items() if k != "created_time"},
        _damaged(created_time="last Saturday"),
        _damaged(**{"from": "Harbour Birding Club"}),
        _damaged(shares={"count": "many"}),
        _damaged(comments={"data": [no_from_comment]}),
        _damaged(comments={"data": [deep_reply_without_id]}),
        _damaged(reactions={"data": [{"name": "Nobody", "type": "LIKE"}]}),
    ]
    lines = [
        '{"data": [{"id": "1_2", "created_time": ',  # cut off
        json.dumps({"paging": PAGING}),
        json.dumps({"data": [], "paging": {"previous": "https://graph.facebook.com/..."}}),
        json.dumps({"data": {"id": "not a list"}}),
        json.dumps({"data": [PHOTO_POST, *bad_posts, None]}),
    ]
    rows = _parse(spark, *lines)
    reasons = [r[C.REASON] for r in rows if r[C.REASON] is not None]
    assert reasons == [
        "malformed_json",
        "missing_field:data",
        "no_events",
        "bad_type:data",
        "missing_field:created_time",
        "bad_timestamp",
        "bad_type:from",
        "bad_type:shares",
        "missing_field:comments.from",
        "missing_field:comments.comments.id",
        "missing_field:reactions.id",
        "bad_type:data",
    ]
    good = [r[C.EVENT_ID] for r in rows if r[C.REASON] is None]
    assert good == ["fb:post:1029384756_2002"]
    # Every record (page or post) is one head row: 4 bad pages + 9 posts (one of them null).
    assert sum(1 for r in rows if r[EVENT_INDEX] == 0) == 13
    # A bad post keeps its own JSON as raw, not the whole page's.
    bad_shares = next(r for r in rows if r[C.REASON] == "bad_type:shares")
    assert json.loads(bad_shares[C.RAW])["shares"] == {"count": "many"}


def test_ingest_ndjson_and_pretty_printed_pages_exactly_once(lake, tmp_path):
    folder = tmp_path / "fb"
    folder.mkdir()
    (folder / "feed-page-1.ndjson").write_text(
        json.dumps(PAGE) + "\n" + json.dumps({"data": [_damaged(created_time="soon")]}) + "\n"
    )
    later = {**PHOTO_POST, "id": f"{PAGE_ID}_2003", "created_time": "2019-03-03T10:00:00+0000",
             "reactions": {"data": [{**ANA, "type": "WOW"}]}}
    (folder / "feed-page-2.json").write_text(json.dumps({"data": [later], "paging": PAGING}, indent=2))

    summary = ingest_files(lake, [str(folder)], run_id="r1", fmt="auto", max_raw_chars=1000)
    again = ingest_files(lake, [str(folder)], run_id="r2", fmt="auto", max_raw_chars=1000)

    accounts = sorted((a.path.rsplit("/", 1)[1], a.format, a.rows_read, a.rows_ok, a.rows_quarantined)
                      for a in summary.accounts)
    assert accounts == [("feed-page-1.ndjson", "facebook", 3, 2, 1), ("feed-page-2.json", "facebook", 1, 1, 0)]
    assert again.accounts == () and again.files_skipped == 2
    bronze = {(r.event_id, r.source_line, r.event_date.isoformat()) for r in lake.read(catalog.BRONZE_EVENTS).collect()}
    assert {e for e in bronze if "_2003" in e[0]} == {
        ("fb:post:1029384756_2003", 1, "2019-03-03"),
        ("fb:react:1029384756_2003:5551", 1, "2019-03-03"),
    }
    assert len(bronze) == 9
    quarantine = [(q.reason, q.source_line) for q in lake.read(catalog.QUARANTINE).collect()]
    assert quarantine == [("bad_timestamp", 2)]


def test_feed_pages_are_detected_from_a_line_or_a_whole_document():
    from klout_spark.readers import detect_document, detect_format

    assert detect_format(json.dumps(PAGE)) == "facebook"
    assert detect_format("{") is None and detect_document(json.dumps(PAGE, indent=2)) == "facebook"
    # The page after the last one has an empty data list: it does not tell.
    assert detect_format(json.dumps({"data": [], "paging": {}})) is None
