"""Twitter API v2 reader: hand-built responses (field layout as documented for v2) -> exact events."""

import json
from datetime import datetime

import pytest

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.ingest import ingest_files
from klout_spark.readers import EVENT_INDEX, TWITTER_V2, detect_format, parse_twitter_v2_lines


def user(uid, username, *, followers=10, following=5, tweets=100, listed=1, verified=False,
         created="2009-05-01T08:30:00.000Z"):
    return {
        "id": uid, "username": username, "name": username.title(), "created_at": created, "verified": verified,
        "public_metrics": {"followers_count": followers, "following_count": following,
                           "tweet_count": tweets, "listed_count": listed},
    }


ALICE = user("11", "alice", followers=1200, following=80, tweets=4567, listed=31, verified=True)
BOB = user("22", "bob")
CAROL = user("33", "carol", created="2015-12-31T23:59:59.000Z")


def tweet(tid, author, text, *, created, refs=(), mentions=(), hashtags=(), reply_to=None, **extra):
    body = {
        "id": tid, "text": text, "author_id": author["id"], "created_at": created, "conversation_id": tid,
        "lang": "en", "public_metrics": {"retweet_count": 2, "reply_count": 1, "like_count": 7, "quote_count": 0},
        "entities": {
            "mentions": [{"start": text.find("@" + u["username"]), "end": text.find("@" + u["username"]) + 1
                          + len(u["username"]), "username": u["username"], "id": u["id"]} for u in mentions],
            "hashtags": [{"start": text.find("#" + h), "end": text.find("#" + h) + 1 + len(h), "tag": h}
                         for h in hashtags],
        },
        **extra,
    }
    if refs:
        body["referenced_tweets"] = [{"type": kind, "id": ref} for kind, ref in refs]
    if reply_to is not None:
        body["in_reply_to_user_id"] = reply_to
    return body


POST = tweet("1500000000000000001", ALICE, "Spring is here @bob #Birds #migration",
             created="2022-03-01T12:00:00.000Z", mentions=(BOB,), hashtags=("Birds", "migration"))
REPLY = tweet("1500000000000000002", BOB, "@alice lovely, cc @carol", created="2022-03-01T13:15:30.000Z",
              refs=(("replied_to", POST["id"]),), mentions=(ALICE, CAROL), reply_to=ALICE["id"],
              conversation_id=POST["id"])
RETWEET = tweet("1500000000000000003", CAROL, "RT @alice: Spring is here @bob #Birds #migration",
                created="2022-03-02T00:30:00.000Z", refs=(("retweeted", POST["id"]),), mentions=(ALICE, BOB),
                hashtags=("Birds", "migration"))
QUOTE = tweet("1500000000000000004", BOB, "so true @carol https://t.co/abc", created="2022-03-02T01:00:00.000Z",
              refs=(("quoted", POST["id"]),), mentions=(CAROL,))


def response(tweets, *, users=(ALICE, BOB, CAROL), included=(POST,)):
    return json.dumps({
        "data": list(tweets),
        "includes": {"users": list(users), "tweets": list(included)},
        "meta": {"newest_id": tweets[-1].get("id") if tweets else None, "result_count": len(tweets)},
    })


def _parse(spark, lines):
    frame = spark.createDataFrame([(i + 1, line) for i, line in enumerate(lines)], "source_line long, value string")
    return parse_twitter_v2_lines(frame, max_raw_chars=60).collect()


def _events(rows):
    return {
        (r[C.EVENT_TYPE], r[C.EVENT_ID], r[C.ACTOR_ID], r[C.SUBJECT_ID], r[C.POST_ID], r[C.PARENT_POST_ID], r[C.EVENT_TS])
        for r in rows
        if r[C.EVENT_TYPE] != "profile"
    }


def _ts(text):
    return datetime.fromisoformat(text)


def test_a_page_of_posts_replies_retweets_quotes_with_mentions_and_profiles(spark):
    rows = _parse(spark, [response([POST, REPLY, RETWEET, QUOTE])])
    assert all(r[C.REASON] is None for r in rows)
    p, t = "tw:p:15000000000000000", "tw:t:15000000000000000"
    assert _events(rows) == {
        ("post", t + "01", "tw:u:11", None, p + "01", None, _ts("2022-03-01 12:00:00")),
        ("mention", "tw:m:1500000000000000001:22", "tw:u:11", "tw:u:22", p + "01", None, _ts("2022-03-01 12:00:00")),
        # The reply's leading @alice is its subject, not a mention; @carol is.
        ("reply", t + "02", "tw:u:22", "tw:u:11", p + "02", p + "01", _ts("2022-03-01 13:15:30")),
        ("mention", "tw:m:1500000000000000002:33", "tw:u:22", "tw:u:33", p + "02", None, _ts("2022-03-01 13:15:30")),
        # The retweet's subject is the original's author (from includes.tweets); @bob stays a mention.
        ("reshare", t + "03", "tw:u:33", "tw:u:11", p + "03", p + "01", _ts("2022-03-02 00:30:00")),
        ("mention", "tw:m:1500000000000000003:22", "tw:u:33", "tw:u:22", p + "03", None, _ts("2022-03-02 00:30:00")),
        ("quote", t + "04", "tw:u:22", "tw:u:11", p + "04", p + "01", _ts("2022-03-02 01:00:00")),
        ("mention", "tw:m:1500000000000000004:33", "tw:u:22", "tw:u:33", p + "04", None, _ts("2022-03-02 01:00:00")),
    }
    by_id = {r[C.EVENT_ID]: r for r in rows}
    assert by_id[t + "01"][C.HASHTAGS] == ["birds", "migration"]
    assert by_id[t + "01"][C.TEXT] == "Spring is here @bob #Birds #migration"
    assert by_id[t + "02"][C.HASHTAGS] == []
    # One line: counted once (index 0), every event carries the line's number.
    assert sorted(r[EVENT_INDEX] for r in rows) == list(range(11))
    assert {r.source_line for r in rows} == {1}


def test_one_profile_per_included_user_dated_at_the_newest_tweet(spark):
    rows = _parse(spark, [response([POST, QUOTE, REPLY])])
    profiles = {r[C.ACTOR_ID]: r for r in rows if r[C.EVENT_TYPE] == "profile"}
    assert set(profiles) == {"tw:u:11", "tw:u:22", "tw:u:33"}
    alice = profiles["tw:u:11"]
    assert alice[C.EVENT_ID] == "tw:profile:11:1500000000000000004"
    assert alice[C.EVENT_TS] == _ts("2022-03-02 01:00:00")
    assert (alice[C.FOLLOWERS_COUNT], alice[C.FOLLOWING_COUNT], alice[C.POSTS_COUNT], alice[C.LISTED_COUNT]) == (
        1200, 80, 4567, 31)
    assert alice[C.VERIFIED] is True and alice[C.ACCOUNT_CREATED_AT] == _ts("2009-05-01 08:30:00")
    assert profiles["tw:u:33"][C.ACCOUNT_CREATED_AT] == _ts("2015-12-31 23:59:59")
    assert profiles["tw:u:22"][C.VERIFIED] is False and profiles["tw:u:22"][C.FOLLOWERS_COUNT] == 10
    assert all(p[C.SUBJECT_ID] is None and p[C.POST_ID] is None for p in profiles.values())


def test_single_tweet_lookup_and_fallbacks(spark):
    # Lookup of one reply whose parent is not in the response: the subject is in_reply_to_user_id.
    lookup = json.dumps({"data": {**REPLY, "entities": {"mentions": [{"start": 0, "end": 6, "username": "alice"},
                                                                    {"start": 19, "end": 25, "username": "Carol"}]}},
                         "includes": {"users": [BOB, CAROL]}})
    # No includes at all, numeric ids given as JSON numbers, no user.fields metrics.
    bare = json.dumps({"data": [{"id": 1500000000000000009, "text": "hi", "author_id": 44,
                                 "created_at": "2022-03-03T10:00:00Z"}]})
    rows = _parse(spark, [lookup, bare])
    assert all(r[C.REASON] is None for r in rows)
    assert _events(rows) == {
        ("reply", "tw:t:1500000000000000002", "tw:u:22", "tw:u:11", "tw:p:1500000000000000002",
         "tw:p:1500000000000000001", _ts("2022-03-01 13:15:30")),
        # A mention without an id is found by username (case-insensitive) among the included users;
        # @alice is not included, so it has no id and (being the reply's target anyway) no event.
        ("mention", "tw:m:1500000000000000002:33", "tw:u:22", "tw:u:33", "tw:p:1500000000000000002", None,
         _ts("2022-03-01 13:15:30")),
        ("post", "tw:t:1500000000000000009", "tw:u:44", None, "tw:p:1500000000000000009", None,
         _ts("2022-03-03 10:00:00")),
    }
    profile_ids = sorted(r[C.EVENT_ID] for r in rows if r[C.EVENT_TYPE] == "profile")
    assert profile_ids == ["tw:profile:22:1500000000000000002", "tw:profile:33:1500000000000000002"]


DAMAGED = {
    "malformed_json": response([POST])[:-7],
    "missing_field:data": json.dumps({"errors": [{"title": "Not Found Error", "resource_id": "9"}]}),
    "no_events": json.dumps({"data": [], "meta": {"result_count": 0}, "includes": {"users": [ALICE]}}),
    "bad_type:data": json.dumps({"data": "1500000000000000001", "includes": {}}),
    "bad_type:includes": json.dumps({"data": [POST], "includes": ["users"]}),
    "missing_field:author_id": response([{k: v for k, v in POST.items() if k != "author_id"}]),
    "missing_field:id": response([{k: v for k, v in POST.items() if k != "id"}]),
    "missing_field:created_at": response([{k: v for k, v in POST.items() if k != "created_at"}]),
    "bad_timestamp": response([{**POST, "created_at": "Tue Mar 01 12:00:00 +0000 2022"}]),
    "bad_type:referenced_tweets": response([{**REPLY, "referenced_tweets": {"type": "replied_to"}}]),
    "missing_field:referenced_tweets.id": response([{**REPLY, "referenced_tweets": [{"type": "replied_to"}]}]),
    "bad_type:entities": response([{**POST, "entities": "none"}]),
    "bad_type:public_metrics": response([{**POST, "public_metrics": [1, 2]}]),
    # A reply with neither its parent in the response nor in_reply_to_user_id cannot name its subject.
    "missing_field:in_reply_to_user_id": response(
        [{k: v for k, v in REPLY.items() if k != "in_reply_to_user_id"}], included=()),
    "missing_field:includes.tweets": response([RETWEET], included=()),
    "missing_field:includes.users.id": response([POST], users=[{"username": "ghost"}]),
    "bad_type:includes.users.public_metrics.followers_count": response(
        [POST], users=[{**ALICE, "public_metrics": {**ALICE["public_metrics"], "followers_count": "many"}}]),
    "bad_type:includes.users.verified": response([POST], users=[{**ALICE, "verified": "yes please"}]),
}


def test_damaged_responses_are_quarantined_whole_with_their_reason(spark):
    reasons = list(DAMAGED)
    # A good tweet next to a bad one: the line is the unit of accounting.
    lines = [DAMAGED[r] for r in reasons] + [response([POST, {**QUOTE, "created_at": "yesterday"}])]
    rows = _parse(spark, lines)
    assert len(rows) == len(lines)
    got = {r.source_line: r[C.REASON] for r in rows}
    assert got == {**{i + 1: reason for i, reason in enumerate(reasons)}, len(lines): "bad_timestamp"}
    assert all(r[C.EVENT_ID] is None and r[EVENT_INDEX] == 0 for r in rows)
    assert all(r[C.RAW] == lines[r.source_line - 1][:60] for r in rows)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"data": [POST], "includes": {"users": [ALICE]}}, TWITTER_V2),
        ({"data": POST}, TWITTER_V2),
        ({"data": [], "includes": {}}, TWITTER_V2),
        ({"data": [{"id": "1"}]}, None),
        ({"id_str": "1", "user": {}}, "twitter"),
    ],
)
def test_detect_format(record, expected):
    assert detect_format(json.dumps(record)) == expected


def test_ingest_detects_v2_and_accounts_per_line(lake, tmp_path):
    dump = tmp_path / "dump" / "v2.jsonl"
    dump.parent.mkdir()
    dump.write_text("\n".join([response([POST, REPLY]), DAMAGED["missing_field:includes.tweets"], ""]) + "\n")
    summary = ingest_files(lake, [str(dump.parent)], run_id="r1", fmt="auto", max_raw_chars=100)
    (account,) = summary.accounts
    assert (account.format, account.rows_read, account.rows_ok, account.rows_quarantined) == (TWITTER_V2, 2, 1, 1)
    bronze = lake.read(catalog.BRONZE_EVENTS).collect()
    assert sorted(r[C.EVENT_TYPE] for r in bronze) == ["mention", "mention", "post", "profile", "profile",
                                                       "profile", "reply"]
    assert {str(r[C.EVENT_DATE]) for r in bronze if r[C.EVENT_TYPE] != "profile"} == {"2022-03-01"}
    (bad,) = lake.read(catalog.QUARANTINE).collect()
    assert (bad[C.REASON], bad[C.SOURCE_LINE]) == ("missing_field:includes.tweets", 2)
