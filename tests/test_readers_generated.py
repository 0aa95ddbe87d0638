"""The platform readers agree with the canonical dump of the same synthetic world.

The generator writes one simulated world either as canonical events or in a
platform's own format; what the platform can express must come back as the
same events (type, actor, subject, post, parent, time).
"""

import pytest
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark.generate import generate_dump
from klout_spark.ingest import resolve_parent_authors
from klout_spark.readers import parse_canonical_lines, parse_reddit_lines, parse_twitter_lines

KEY = (C.EVENT_TYPE, C.ACTOR_ID, C.SUBJECT_ID, C.POST_ID, C.PARENT_POST_ID, C.EVENT_TS)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    return {fmt: generate_dump(root / fmt, events=10_000, days=2, seed=5, fmt=fmt).files
            for fmt in ("canonical", "twitter", "reddit")}


def _lines(spark, files):
    return spark.read.text(list(files)).filter(F.length(F.trim("value")) > 0)


def _canonical(spark, files, network, types):
    parsed = parse_canonical_lines(_lines(spark, files), max_raw_chars=10)
    return parsed.filter((F.col(C.NETWORK) == network) & F.col(C.EVENT_TYPE).isin(*types))


def test_twitter_dump_gives_the_canonical_twitter_events(spark, dumps):
    types = ("post", "reply", "reshare", "quote", "mention")
    expected = {tuple(r) for r in _canonical(spark, dumps["canonical"], "twitter", types).select(*KEY).collect()}
    parsed = parse_twitter_lines(_lines(spark, dumps["twitter"]), max_raw_chars=10)
    rows = parsed.filter(F.col(C.EVENT_TYPE).isin(*types) | F.col(C.REASON).isNotNull()).select(
        *KEY, C.REASON).collect()
    assert [r for r in rows if r[C.REASON] is not None] == []
    got = {tuple(r)[:-1] for r in rows}
    assert len(expected) > 1000
    assert got == expected


def test_reddit_dump_gives_the_canonical_reddit_events(spark, dumps):
    types = ("post", "reply", "reshare")
    canonical = _canonical(spark, dumps["canonical"], "reddit", types)
    parsed = parse_reddit_lines(_lines(spark, dumps["reddit"]), max_raw_chars=400)
    known = parsed.filter(F.col(C.REASON).isNull()).select(C.POST_ID, C.ACTOR_ID)
    resolved = resolve_parent_authors(parsed, known, max_raw_chars=400).select(*KEY, C.REASON).collect()
    expected = {tuple(r) for r in canonical.select(*KEY).collect()}
    assert {r[C.REASON] for r in resolved} <= {None, "unknown_parent"}
    got = {tuple(r)[:-1] for r in resolved if r[C.REASON] is None}
    unresolved = {tuple(r)[:2] + tuple(r)[3:-1] for r in resolved if r[C.REASON] is not None}
    assert len(got) > 500
    # Everything resolved is a canonical event; what is not resolved replies to a post before the window.
    assert got <= expected
    assert {e[:2] + e[3:] for e in expected - got} == unresolved
