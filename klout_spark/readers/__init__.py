"""Input formats: each a pure transform from raw lines to canonical event rows.

Contract (see :mod:`klout_spark.readers._common`): a reader takes ``value`` (one
line, blank lines removed) plus lineage columns, and returns the lineage
columns, every ``CANONICAL_EVENT_SCHEMA`` column, ``reason``, ``raw`` and
``_event_index``. A line that yields several events (a tweet: the tweet, its
mentions, a profile snapshot) gives several rows with ``reason`` null; a line
that fails gives one row with its reason. Accounting is per input line:
``rows_read`` counts lines (rows with ``_event_index == 0``), a good line counts
once in ``rows_ok`` however many events it yields, a bad line once in
``rows_quarantined``.

Formats (``--format``): ``canonical`` (by file name: JSON lines, ``.csv`` with a
header, or ``.parquet``), ``twitter`` (API v1.1 tweet JSON), ``twitter_v2``
(API v2 responses, one per line), ``reddit`` (Pushshift ndjson), ``facebook``
(Graph API feed responses), ``linkedin`` (member archive CSVs in a
``linkedin-archive-<member>`` folder, logged as ``linkedin_archive``, or API
social-action JSON), or ``auto``: each file's format is detected from its first
non-blank lines (:func:`detect_format`), from the whole document for a
pretty-printed JSON file, or from its name for a LinkedIn archive, and recorded
in ``ingest_log.format``.
"""

from __future__ import annotations

import json

from klout_spark.readers._common import EVENT_INDEX
from klout_spark.readers.canonical import (
    parquet_rows_as_lines,
    parse_canonical_csv_lines,
    parse_canonical_lines,
    parse_canonical_parquet,
)
from klout_spark.readers.facebook import parse_facebook_lines
from klout_spark.readers.linkedin import archive_kind, parse_linkedin_archive, parse_linkedin_lines
from klout_spark.readers.reddit import parse_reddit_lines
from klout_spark.readers.twitter import parse_twitter_lines
from klout_spark.readers.twitter_v2 import parse_twitter_v2_lines

CANONICAL = "canonical"
CANONICAL_CSV = "canonical_csv"
CANONICAL_PARQUET = "canonical_parquet"
TWITTER = "twitter"
TWITTER_V2 = "twitter_v2"
REDDIT = "reddit"
FACEBOOK = "facebook"
LINKEDIN = "linkedin"
LINKEDIN_ARCHIVE = "linkedin_archive"
# What --format accepts.
FORMAT_CHOICES: tuple[str, ...] = ("auto", CANONICAL, TWITTER, TWITTER_V2, REDDIT, FACEBOOK, LINKEDIN)
# Formats whose records are JSON text lines, with their parsers.
LINE_PARSERS = {
    CANONICAL: parse_canonical_lines,
    TWITTER: parse_twitter_lines,
    TWITTER_V2: parse_twitter_v2_lines,
    REDDIT: parse_reddit_lines,
    FACEBOOK: parse_facebook_lines,
    LINKEDIN: parse_linkedin_lines,
}
# JSON formats whose file may also be one pretty-printed document (read whole).
DOCUMENT_FORMATS: tuple[str, ...] = (FACEBOOK, LINKEDIN)

__all__ = [
    "CANONICAL",
    "CANONICAL_CSV",
    "CANONICAL_PARQUET",
    "DOCUMENT_FORMATS",
    "EVENT_INDEX",
    "FACEBOOK",
    "FORMAT_CHOICES",
    "LINE_PARSERS",
    "LINKEDIN",
    "LINKEDIN_ARCHIVE",
    "REDDIT",
    "TWITTER",
    "TWITTER_V2",
    "archive_kind",
    "detect_document",
    "detect_format",
    "parquet_rows_as_lines",
    "parse_canonical_csv_lines",
    "parse_canonical_lines",
    "parse_canonical_parquet",
    "parse_facebook_lines",
    "parse_linkedin_archive",
    "parse_linkedin_lines",
    "parse_reddit_lines",
    "parse_twitter_lines",
    "parse_twitter_v2_lines",
]


def detect_format(line: str) -> str | None:
    """The JSON-lines format of one line, or None if this line does not tell.

    canonical: ``event_id`` and ``event_type``; twitter: ``id_str`` and ``user``,
    a JSON array, or a search response (``statuses``); twitter_v2: a response
    with ``data`` and ``includes``, or ``data`` whose tweets have ``author_id``;
    reddit: ``author`` and ``subreddit``.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, list):
        return TWITTER if record and all(isinstance(r, dict) for r in record) else None
    if not isinstance(record, dict):
        return None
    if "event_id" in record and "event_type" in record:
        return CANONICAL
    if ("id_str" in record and "user" in record) or "statuses" in record:
        return TWITTER
    if "data" in record and ("includes" in record or _v2_tweets(record["data"])):
        return TWITTER_V2
    if "author" in record and "subreddit" in record:
        return REDDIT
    return _detect_social(record)


def _detect_social(record: dict) -> str | None:
    """facebook: a ``data`` list of objects with ``created_time``; linkedin: social actions
    (an ``urn:li:`` ``actor`` and an ``object``), alone or as ``elements`` of a response."""
    data = record.get("data")
    if isinstance(data, list) and any(isinstance(p, dict) and "created_time" in p for p in data):
        return FACEBOOK
    elements = record.get("elements")
    items = elements if isinstance(elements, list) else [record]
    if any(isinstance(e, dict) and str(e.get("actor", "")).startswith("urn:li:") and "object" in e for e in items):
        return LINKEDIN
    return None


def detect_document(text: str) -> str | None:
    """The format of a whole pretty-printed JSON document (one saved API response), or None."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return _detect_social(record) if isinstance(record, dict) else None


def _v2_tweets(data: object) -> bool:
    """``data`` of a v2 response: a tweet object, or a non-empty list of them, with ``author_id``."""
    tweets = data if isinstance(data, list) else [data]
    return bool(tweets) and all(isinstance(t, dict) and "author_id" in t for t in tweets)
