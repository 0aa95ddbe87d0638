"""Twitter API v1.1 reader: hand-built tweets (field layout as documented for v1.1) -> exact events."""

import json
from datetime import datetime

import pytest

from klout_spark import columns as C
from klout_spark.readers import EVENT_INDEX, detect_format, parse_twitter_lines


def user(uid, name, *, followers=10, friends=5, listed=1, statuses=100, verified=False,
         created="Tue Mar 13 09:00:00 +0000 2007"):
    return {
        "id": int(uid), "id_str": uid, "name": name.title(), "screen_name": name, "location": None,
        "followers_count": followers, "friends_count": friends, "listed_count": listed,
        "favourites_count": 0, "statuses_count": statuses, "verified": verified, "created_at": created,
        "protected": False, "lang": None,
    }


ALICE = user("11", "alice", followers=120, friends=80, listed=3, statuses=456, verified=True)
BOB = user("22", "bob")
CAROL = user("33", "carol")


def mention(u, start):
    return {"id": int(u["id_str"]), "id_str": u["id_str"], "screen_name": u["screen_name"],
            "name": u["name"], "indices": [start, start + 1 + len(u["screen_name"])]}


def tweet(tid, author, text, *, created="Wed Aug 27 13:08:45 +0000 2008", hashtags=(), mentions=(), **extra):
    return {
        "created_at": created, "id": int(tid), "id_str": tid, "text": text, "source": "web",
        "truncated": False, "user": author,
        "in_reply_to_status_id": None, "in_reply_to_status_id_str": None,
        "in_reply_to_user_id": None, "in_reply_to_user_id_str": None, "in_reply_to_screen_name": None,
        "geo": None, "coordinates": None, "place": None, "is_quote_status": False,
        "retweet_count": 0, "favorite_count": 0,
        "entities": {
            "hashtags": [{"text": h, "indices": [0, len(h) + 1]} for h in hashtags],
            "urls": [], "symbols": [], "user_mentions": list(mentions),
        },
        "favorited": False, "retweeted": False, "lang": "en",
        **extra,
    }


POST = tweet("1000", ALICE, "Hello @bob #Birds #aviation", hashtags=("Birds", "aviation"), mentions=(mention(BOB, 6),))
REPLY = tweet(
    "1001", BOB, "@alice lovely birds @carol", created="Wed Aug 27 14:00:00 +0000 2008",
    mentions=(mention(ALICE, 0), mention(CAROL, 20)),
    in_reply_to_status_id=1000, in_reply_to_status_id_str="1000",
    in_reply_to_user_id=11, in_reply_to_user_id_str="11", in_reply_to_screen_name="alice",
)
RETWEET = tweet(
    "1002", CAROL, "RT @alice: Hello @bob #Birds #aviation", created="Thu Aug 28 00:30:00 +0000 2008",
    hashtags=("Birds", "aviation"), mentions=(mention(ALICE, 3), mention(BOB, 17)), retweeted_status=POST,
)
QUOTE = tweet(
    "1003", BOB, "so true @carol https://t.co/x", created="Thu Aug 28 01:00:00 +0000 2008",
    mentions=(mention(CAROL, 8),), is_quote_status=True, quoted_status_id=1000, quoted_status_id_str="1000",
    quoted_status=POST,
)


def _parse(spark, lines):
    frame = spark.createDataFrame([(i + 1, line) for i, line in enumerate(lines)], "source_line long, value string")
    return parse_twitter_lines(frame, max_raw_chars=60).collect()


def _events(rows):
    return {
        (r[C.EVENT_TYPE], r[C.EVENT_ID], r[C.ACTOR_ID], r[C.SUBJECT_ID], r[C.POST_ID], r[C.PARENT_POST_ID], r[C.EVENT_TS])
        for r in rows
    }


def test_posts_replies_retweets_quotes_mentions_and_profiles(spark):
    rows = _parse(spark, [json.dumps(t) for t in (POST, REPLY, RETWEET, QUOTE)])
    assert all(r[C.REASON] is None for r in rows)
    t0, t1, t2, t3 = (datetime(2008, 8, 27, 13, 8, 45), datetime(2008, 8, 27, 14), datetime(2008, 8, 28, 0, 30),
                      datetime(2008, 8, 28, 1))
    non_profile = _events(r for r in rows if r[C.EVENT_TYPE] != "profile")
    assert non_profile == {
        ("post", "tw:t:1000", "tw:u:11", None, "tw:p:1000", None, t0),
        ("mention", "tw:m:1000:22", "tw:u:11", "tw:u:22", "tw:p:1000", None, t0),
        # The replied-to account's auto-mention is the reply's subject, not a mention.
        ("reply", "tw:t:1001", "tw:u:22", "tw:u:11", "tw:p:1001", "tw:p:1000", t1),
        ("mention", "tw:m:1001:33", "tw:u:22", "tw:u:33", "tw:p:1001", None, t1),
        # A retweet's mention of the original author is dropped; other mentions stay.
        ("reshare", "tw:t:1002", "tw:u:33", "tw:u:11", "tw:p:1002", "tw:p:1000", t2),
        ("mention", "tw:m:1002:22", "tw:u:33", "tw:u:22", "tw:p:1002", None, t2),
        ("quote", "tw:t:1003", "tw:u:22", "tw:u:11", "tw:p:1003", "tw:p:1000", t3),
        ("mention", "tw:m:1003:33", "tw:u:22", "tw:u:33", "tw:p:1003", None, t3),
    }
    post = next(r for r in rows if r[C.EVENT_ID] == "tw:t:1000")
    assert post[C.HASHTAGS] == ["birds", "aviation"] and post[C.TEXT] == POST["text"]
    assert post[C.NETWORK] == "twitter"
    profiles = {r[C.EVENT_ID]: r for r in rows if r[C.EVENT_TYPE] == "profile"}
    assert set(profiles) == {"tw:profile:11:1000", "tw:profile:22:1001", "tw:profile:33:1002", "tw:profile:22:1003"}
    alice = profiles["tw:profile:11:1000"]
    assert (alice[C.ACTOR_ID], alice[C.EVENT_TS], alice[C.FOLLOWERS_COUNT], alice[C.FOLLOWING_COUNT],
            alice[C.LISTED_COUNT], alice[C.POSTS_COUNT], alice[C.VERIFIED], alice[C.ACCOUNT_CREATED_AT]) == (
        "tw:u:11", t0, 120, 80, 3, 456, True, datetime(2007, 3, 13, 9))
    # One line, several events: the first row of each line carries index 0.
    assert sorted(r[EVENT_INDEX] for r in rows if r["source_line"] == 1) == [0, 1, 2]


def test_array_and_search_response_lines_explode_to_their_tweets(spark):
    extended = tweet("1004", CAROL, "Short text…", truncated=True, extended_tweet={
        "full_text": "Short text and the long rest #Owls", "display_text_range": [0, 34],
        "entities": {"hashtags": [{"text": "Owls", "indices": [29, 34]}], "urls": [], "user_mentions": []},
    })
    search = {"statuses": [extended], "search_metadata": {"count": 1, "max_id_str": "1004", "query": "owls"}}
    rows = _parse(spark, [json.dumps([POST, REPLY]), json.dumps(search), json.dumps([])])
    by_line = {}
    for r in rows:
        by_line.setdefault(r["source_line"], []).append(r)
    assert {r[C.EVENT_ID] for r in by_line[1]} == {
        "tw:t:1000", "tw:m:1000:22", "tw:profile:11:1000", "tw:t:1001", "tw:m:1001:33", "tw:profile:22:1001"}
    assert sorted(r[EVENT_INDEX] for r in by_line[1]) == list(range(6))
    own = next(r for r in by_line[2] if r[C.EVENT_ID] == "tw:t:1004")
    assert own[C.TEXT] == "Short text and the long rest #Owls" and own[C.HASHTAGS] == ["owls"]
    (empty,) = by_line[3]
    assert empty[C.REASON] == "no_events" and empty[C.RAW] == "[]"


def test_numeric_ids_keep_every_digit_and_offsets_become_utc(spark):
    big = tweet("1234567890123456789", BOB, "big id", created="Sat Oct 31 23:59:59 +0000 2026")
    line = json.dumps(big).replace('"id_str": "1234567890123456789"', '"id_str": 1234567890123456789')
    (own, profile) = _parse(spark, [line])
    assert own[C.POST_ID] == "tw:p:1234567890123456789"
    assert own[C.EVENT_TS] == datetime(2026, 10, 31, 23, 59, 59) and profile[C.EVENT_TYPE] == "profile"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (json.dumps(POST), "twitter"),
        (json.dumps([POST]), "twitter"),
        (json.dumps({"statuses": [], "search_metadata": {}}), "twitter"),
        (json.dumps({"author": "x", "subreddit": "y", "id": "1"}), "reddit"),
        (json.dumps({"event_id": "e", "event_type": "post"}), "canonical"),
        ("not json", None),
        (json.dumps({"delete": {"status": {"id_str": "1"}}}), None),
    ],
)
def test_detect_format_from_one_line(line, expected):
    assert detect_format(line) == expected
