"""Reddit Pushshift comment and submission ndjson -> canonical events.

One object per line, one event per object:

- a comment (it has ``parent_id``) is a ``reply``: event ``rd:t1_<id>``,
  parent post from ``parent_id`` (``t1_`` = a comment, ``t3_`` = a submission);
- a submission is a ``post`` (event ``rd:t3_<id>``), or a ``reshare`` when it
  is a crosspost (``crosspost_parent``);
- the subreddit becomes the event's hashtag; ``created_utc`` is epoch seconds,
  as a number or a numeric string.

Ids map like the generator's: a base-36 post id ``x`` (comment or submission)
-> ``rd:p:<x in base 10>``, ``author_fullname`` ``t2_k`` -> ``rd:u:<k in base 10>``.
Older dumps without ``author_fullname`` key the account by name,
``rd:name:<author>``. (Reddit numbers comments and submissions separately,
so on real data a comment and a submission can share ``rd:p:N``; the
generator does not distinguish them either.)

Decisions:

- ``[deleted]`` / ``[removed]`` / null authors are not accounts: the record is
  quarantined as ``deleted_author`` (counted, with its raw text, never lost).
- The subject of a reply or crosspost is the author of its parent, which a
  line does not carry: the reader leaves ``subject_id`` null and keeps ``raw``;
  :func:`klout_spark.ingest.resolve_parent_authors` fills it in Spark from the
  bronze events already ingested plus the current batch (any file, any day).
  A parent found nowhere sends the record to quarantine as ``unknown_parent``:
  validation requires a subject for replies, and a null subject in bronze would
  only move the loss one stage later. Re-ingesting a dump that contains the
  parent does not revive it (the file's checksum is already logged).
- Username mentions in text (``u/name``) carry no account id and are not extracted.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import schemas
from klout_spark.readers._common import (
    CORRUPT,
    PERMISSIVE,
    event_struct,
    explode_line_events,
    first_reason,
    normalize_hashtag,
    parse_epoch_seconds,
)

NETWORK = "reddit"
DELETED_AUTHORS = ("[deleted]", "[removed]")
_S = T.StringType()
_SCHEMA = T.StructType(
    [
        T.StructField(name, _S, True)
        for name in (
            "id", "author", "author_fullname", "parent_id", "link_id", "subreddit", "created_utc",
            "title", "selftext", "body", "crosspost_parent", CORRUPT,
        )
    ]
)
_BASE36 = r"^[0-9a-z]+$"


def post_id_from_base36(base36: Column) -> Column:
    return F.concat(F.lit("rd:p:"), F.conv(base36, 36, 10))


def _fullname_id(fullname: Column, prefixes: str) -> Column:
    """The base-36 part of a ``t1_``/``t3_`` fullname; null if it is not one."""
    return F.when(fullname.rlike(rf"^({prefixes})_[0-9a-z]+$"), F.regexp_extract(fullname, r"_([0-9a-z]+)$", 1))


def parse_reddit_lines(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse Pushshift lines into canonical events (see the module docstring).

    Requires ``value`` (blank lines removed); other columns are passed through.
    Returns them plus the canonical columns, ``reason``, ``raw`` (kept for
    replies and crossposts too, whose subject is resolved later) and
    ``_event_index``. Reasons: ``malformed_json``, ``missing_field:<f>``,
    ``deleted_author``, ``bad_type:<f>``, ``bad_timestamp``.
    """
    r = F.from_json(F.col("value"), _SCHEMA, PERMISSIVE)
    value = F.col("value")
    has_author_key = value.rlike(r'"author"\s*:')
    # A JSON number where Reddit writes a base-36 string would decode to another post.
    id_is_string = value.rlike(r'"id"\s*:\s*"')
    is_comment = r["parent_id"].isNotNull()
    is_crosspost = ~is_comment & r["crosspost_parent"].isNotNull()
    parent_b36 = F.when(is_comment, _fullname_id(r["parent_id"], "t1|t3")).when(
        is_crosspost, _fullname_id(r["crosspost_parent"], "t3")
    )
    ts = parse_epoch_seconds(r["created_utc"])
    author_b36 = _fullname_id(r["author_fullname"], "t2")
    checks: list[tuple[Column, str]] = [
        (r.isNull() | r[CORRUPT].isNotNull() | ~F.ltrim(value).startswith("{"), "malformed_json"),
        (r["id"].isNull(), "missing_field:id"),
        (~has_author_key, "missing_field:author"),
        (r["author"].isNull() | r["author"].isin(*DELETED_AUTHORS), "deleted_author"),
        (r["created_utc"].isNull(), "missing_field:created_utc"),
        (ts.isNull(), "bad_timestamp"),
        (r["subreddit"].isNull(), "missing_field:subreddit"),
        (~id_is_string | ~r["id"].rlike(_BASE36), "bad_type:id"),
        (is_comment & parent_b36.isNull(), "bad_type:parent_id"),
        (is_crosspost & parent_b36.isNull(), "bad_type:crosspost_parent"),
        (r["author_fullname"].isNotNull() & author_b36.isNull(), "bad_type:author_fullname"),
    ]
    actor = F.coalesce(
        F.concat(F.lit("rd:u:"), F.conv(author_b36, 36, 10)), F.concat(F.lit("rd:name:"), r["author"])
    )
    event_type = (
        F.when(is_comment, F.lit(schemas.REPLY))
        .when(is_crosspost, F.lit(schemas.RESHARE))
        .otherwise(F.lit(schemas.POST))
    )
    submission_text = F.concat_ws("\n\n", r["title"], F.nullif(r["selftext"], F.lit("")))
    event = event_struct(
        event_id=F.concat(F.lit("rd:"), F.when(is_comment, F.lit("t1_")).otherwise(F.lit("t3_")), r["id"]),
        network=F.lit(NETWORK),
        event_type=event_type,
        event_ts=ts,
        actor_id=actor,
        post_id=post_id_from_base36(r["id"]),
        parent_post_id=post_id_from_base36(parent_b36),
        text=F.when(is_comment, r["body"]).otherwise(submission_text),
        hashtags=F.array(normalize_hashtag(r["subreddit"])),
    )
    return explode_line_events(
        lines,
        events=F.array(event),
        reason=first_reason(checks),
        max_raw_chars=max_raw_chars,
        keep_raw=is_comment | is_crosspost,
    )
