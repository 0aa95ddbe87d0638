"""Property-based tests: no input line crashes a reader or breaks the accounting identity.

Every reader (canonical JSON lines, canonical CSV, Twitter v1.1, Twitter API v2,
Reddit Pushshift, Facebook Graph feed pages, LinkedIn API social actions, LinkedIn
archive CSV records) gets batches of generated lines: arbitrary text, arbitrary
bytes decoded as Spark decodes them (UTF-8 with replacement), and valid records
mutated (fields deleted, replaced by any JSON value, cells replaced, dropped or
added, the text cut or spliced). For every batch:

- the transform runs (Spark raises nothing);
- each input line yields exactly one row with ``_event_index == 0``, so
  ``rows_read == rows_ok + rows_quarantined == lines``;
- a bad line is exactly one row, with a reason and its raw text cut to ``max_raw_chars``;
- every good row carries the fields downstream stages key on.

Facebook and LinkedIn API documents differ on purpose: their unit of accounting
is a record of the page (a post of ``data``, an element of ``elements``), not the
line, so a readable page of ``n`` records yields ``n`` head rows and a line may mix
good and bad records. For them the check is that a line yields exactly as many
heads as it holds records (counted here with Python's ``json``: the entries of
a non-empty ``data`` / ``elements`` list, else 1) and that each bad record is one row.

One DataFrame per example keeps the Spark jobs few (the file runs in well under a minute).
"""

from __future__ import annotations

import copy
import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark.readers import (
    EVENT_INDEX,
    parse_canonical_csv_lines,
    parse_canonical_lines,
    parse_facebook_lines,
    parse_linkedin_archive,
    parse_linkedin_lines,
    parse_reddit_lines,
    parse_twitter_lines,
    parse_twitter_v2_lines,
)
from klout_spark.readers.linkedin import CONNECTIONS, SHARES
from tests import test_readers_twitter_v2 as V2
from tests.test_readers_facebook import COUNT_POST, PAGE, PHOTO_POST
from tests.test_readers_linkedin import ANA_POST, BEN_POST, COMMENTS_RESPONSE, LIKES_RESPONSE, feed
from tests.test_readers_reddit import FIRST, HERON
from tests.test_readers_twitter import POST, REPLY, RETWEET

MAX_RAW = 40
EXAMPLES = settings(
    max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

CANONICAL_GOOD = [
    {"event_id": "e1", "network": "twitter", "event_type": "post", "event_ts": "2026-10-01T12:00:00Z",
     "actor_id": "tw:u:1", "post_id": "tw:p:1", "text": "hello", "hashtags": ["Birds"]},
    {"event_id": 42, "network": "reddit", "event_type": "reply", "event_ts": 1790000000,
     "actor_id": 7, "subject_id": "rd:u:8", "post_id": "rd:p:9", "parent_post_id": "rd:p:1"},
    {"event_id": "p1", "network": "twitter", "event_type": "profile", "event_ts": "2026-10-01T12:00:00+02:00",
     "actor_id": "tw:u:1", "followers_count": 10, "following_count": "3", "listed_count": 0,
     "posts_count": 5, "verified": True, "account_created_at": "2010-01-01T00:00:00Z"},
]
TWITTER_GOOD = [POST, REPLY, RETWEET, [POST, REPLY], {"statuses": [RETWEET], "search_metadata": {}}]
REDDIT_GOOD = [FIRST, HERON]
TWITTER_V2_GOOD = [
    {"data": [V2.POST, V2.REPLY, V2.RETWEET, V2.QUOTE], "includes": {"users": [V2.ALICE, V2.BOB, V2.CAROL],
                                                                    "tweets": [V2.POST]}, "meta": {"result_count": 4}},
    {"data": V2.REPLY, "includes": {"users": [V2.BOB]}},
    {"data": [V2.POST]},
]
FACEBOOK_GOOD = [PAGE, {"data": [PHOTO_POST]}, {"data": [COUNT_POST, PHOTO_POST, PHOTO_POST], "paging": {}}]
LINKEDIN_GOOD = [
    COMMENTS_RESPONSE,
    {**LIKES_RESPONSE, "elements": LIKES_RESPONSE["elements"][:1]},
    COMMENTS_RESPONSE["elements"][1],
]
ARCHIVE_GOOD = {
    SHARES: (
        ["Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility"],
        [
            ["2023-05-02 09:30:00", feed(ANA_POST), "Spring survey.\n\nThanks, \"Harbour Trust\" #Birding", "", "",
             "MEMBER_NETWORK"],
            ["2023-05-03 10:00:00", feed("urn:li:activity:7059000000000000002"), "", feed(BEN_POST, encoded=False),
             "", "PUBLIC"],
        ],
    ),
    CONNECTIONS: (
        ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"],
        [
            ["Ben", "Okoro", "https://www.linkedin.com/in/ben-okoro", "", "Harbour Trust", "Warden", "01 Mar 2019"],
            ["Chloe", "Ng", "https://www.linkedin.com/in/chloe-ng-77", "c@example.org", "Ng, Patel & Co", "Partner",
             "5 Feb 2021"],
        ],
    ),
}
CSV_HEADER = ["event_id", "network", "event_type", "event_ts", "actor_id", "subject_id", "post_id",
              "hashtags", "followers_count", "verified"]
CSV_GOOD = [
    ["c1", "twitter", "post", "2026-10-01T12:00:00Z", "tw:u:1", "", "tw:p:9", "birds;owls", "", ""],
    ["c2", "twitter", "like", "1790000000", "tw:u:2", "tw:u:1", "", "", "", ""],
    ["c3", "twitter", "profile", "2026-10-01T12:00:00Z", "tw:u:1", "", "", "", "12", "true"],
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)


def _spark_line(text: str) -> str | None:
    """The line as Spark's text reader would hand it over (split on newlines, blank lines dropped)."""
    line = text.replace("\r", " ").replace("\n", " ")
    return line if line.strip(" ") else None


def _paths(node, prefix=(), depth=3):
    """Every key / index path into a JSON value, up to ``depth`` levels."""
    if depth == 0:
        return
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key), depth - 1)


@st.composite
def mutated_json(draw, valid):
    record = copy.deepcopy(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(0, 3))):
        paths = list(_paths(record))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    return draw(_spliced(text))


@st.composite
def _spliced(draw, text: str):
    """``text`` unchanged, cut short, or with arbitrary text inserted somewhere."""
    how = draw(st.sampled_from(["keep", "keep", "cut", "insert"]))
    at = draw(st.integers(0, len(text)))
    if how == "cut":
        return text[:at]
    if how == "insert":
        return text[:at] + draw(st.text(max_size=20)) + text[at:]
    return text


@st.composite
def mutated_csv(draw, valid=CSV_GOOD):
    cells = list(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(cells) - 1))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            cells[at] = draw(st.text(max_size=20))
        elif action == "drop" and len(cells) > 1:
            del cells[at]
        else:
            cells.insert(at, draw(st.text(max_size=10)))
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return draw(_spliced(out.getvalue()))


noise = st.one_of(
    st.text(min_size=1, max_size=200),
    st.binary(min_size=1, max_size=200).map(lambda b: b.decode("utf-8", errors="replace")),
    st.sampled_from(["{}", "[]", "null", "[{}]", '{"a":', "[1,2]", '"text"', "0", "{" * 50, "\ufeff{}"]),
    st.text(alphabet="日本語עבריתالعربية🙂", min_size=1, max_size=5000),
)


def _lines(good):
    return st.lists(st.one_of(good, good, noise), min_size=1, max_size=40)


def _records_in(key):
    """How many records a document line holds: the entries of a non-empty ``key`` list, else 1 (a bad page)."""

    def count(line: str) -> int:
        try:
            doc = json.loads(line)
        except ValueError:
            return 1
        items = doc.get(key) if isinstance(doc, dict) else None
        return len(items) if isinstance(items, list) and items else 1

    return count


def _archive_record(text: str) -> str | None:
    """A CSV record as :func:`klout_spark.readers.linkedin.csv_records` hands it over (cells may hold newlines)."""
    return text if text.strip(" ") else None


def _check_accounting(spark, parse, texts, *, records_of=None, as_input=_spark_line, **kwargs):
    """Parse one batch; assert the accounting identity and what good and bad rows must carry.

    ``records_of(line)`` is how many records (head rows) a line must yield; by
    default 1, and then a line is either all good rows or one bad row.
    """
    lines = [(i, line) for i, line in enumerate(map(as_input, texts)) if line is not None]
    if not lines:
        return
    frame = spark.createDataFrame(lines, "source_line long, value string")
    parsed = parse(frame, max_raw_chars=MAX_RAW, **kwargs)
    required = F.coalesce(*[F.col(c).isNull() for c in (C.EVENT_ID, C.NETWORK, C.EVENT_TYPE, C.EVENT_TS, C.ACTOR_ID)])
    per_line = parsed.groupBy("source_line").agg(
        F.count(F.when(F.col(EVENT_INDEX) == 0, 1)).alias("heads"),
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col(C.REASON).isNotNull(), 1)).alias("bad"),
        F.count(F.when(F.col(C.REASON).isNotNull() & (F.col(EVENT_INDEX) != 0), 1)).alias("bad_not_head"),
        F.count(F.when(F.col(C.REASON).isNotNull() & (F.length(C.RAW) > MAX_RAW), 1)).alias("raw_too_long"),
        F.count(F.when(F.col(C.REASON).isNotNull() & F.col(C.RAW).isNull(), 1)).alias("raw_missing"),
        F.count(F.when(F.col(C.REASON).isNull() & required, 1)).alias("good_without_keys"),
    )
    got = {r["source_line"]: r for r in per_line.collect()}
    assert sorted(got) == [i for i, _ in lines], "a line vanished or appeared"
    for i, line in lines:
        r = got[i]
        expected = 1 if records_of is None else records_of(line)
        assert r["heads"] == expected, f"line {line!r} counted {r['heads']} times, not {expected}"
        assert r["bad_not_head"] == 0, f"a bad record of {line!r} is more than one row"
        if records_of is None:
            assert r["bad"] in (0, r["rows"]) and (r["bad"] == 0 or r["rows"] == 1), f"line {line!r} mixes good and bad"
        assert r["raw_too_long"] == 0 and r["raw_missing"] == 0, f"raw text of bad line {line!r}"
        assert r["good_without_keys"] == 0, f"a good event of {line!r} lacks a key field"
    if records_of is None:
        ok = sum(1 for r in got.values() if r["bad"] == 0)
        quarantined = sum(1 for r in got.values() if r["bad"] == 1)
        assert ok + quarantined == len(lines)


@EXAMPLES
@given(texts=_lines(mutated_json(CANONICAL_GOOD)))
def test_canonical_json_lines_never_crash_and_always_balance(spark, texts):
    _check_accounting(spark, parse_canonical_lines, texts)


@EXAMPLES
@given(texts=_lines(mutated_csv()))
def test_canonical_csv_lines_never_crash_and_always_balance(spark, texts):
    _check_accounting(spark, parse_canonical_csv_lines, texts, header=CSV_HEADER)


@EXAMPLES
@given(texts=_lines(mutated_json(TWITTER_GOOD)))
def test_twitter_lines_never_crash_and_always_balance(spark, texts):
    _check_accounting(spark, parse_twitter_lines, texts)


@EXAMPLES
@given(texts=_lines(mutated_json(REDDIT_GOOD)))
def test_reddit_lines_never_crash_and_always_balance(spark, texts):
    _check_accounting(spark, parse_reddit_lines, texts)


@EXAMPLES
@given(texts=_lines(mutated_json(TWITTER_V2_GOOD)))
def test_twitter_v2_lines_never_crash_and_always_balance(spark, texts):
    _check_accounting(spark, parse_twitter_v2_lines, texts)


@EXAMPLES
@given(texts=_lines(mutated_json(FACEBOOK_GOOD)))
def test_facebook_pages_never_crash_and_count_each_post_once(spark, texts):
    _check_accounting(spark, parse_facebook_lines, texts, records_of=_records_in("data"))


@EXAMPLES
@given(texts=_lines(mutated_json(LINKEDIN_GOOD)))
def test_linkedin_social_actions_never_crash_and_count_each_element_once(spark, texts):
    _check_accounting(spark, parse_linkedin_lines, texts, records_of=_records_in("elements"))


@pytest.mark.parametrize("kind", [SHARES, CONNECTIONS])
@EXAMPLES
@given(data=st.data())
def test_linkedin_archive_records_never_crash_and_always_balance(spark, kind, data):
    header, rows = ARCHIVE_GOOD[kind]
    texts = data.draw(_lines(mutated_csv(rows)))
    _check_accounting(
        spark, parse_linkedin_archive, texts, as_input=_archive_record, kind=kind, header=header, member="ana-lima"
    )


def test_the_accounting_check_catches_a_reader_that_drops_a_line(spark):
    """The property check itself can fail: a reader that loses bad lines is caught."""

    def lossy(lines, *, max_raw_chars):
        return parse_canonical_lines(lines, max_raw_chars=max_raw_chars).filter(F.col(C.REASON).isNull())

    with pytest.raises(AssertionError, match="vanished"):
        _check_accounting(spark, lossy, [json.dumps(CANONICAL_GOOD[0]), "{broken"])
