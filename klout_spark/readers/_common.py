"""Pieces shared by the format readers: timestamp parsing, hashtags, the event struct, line explosion.

Every reader is a pure transform ``lines -> events``: it takes a DataFrame with
``value`` (one line of text) plus lineage columns and returns the lineage
columns, every ``CANONICAL_EVENT_SCHEMA`` column, ``reason``, ``raw`` and
``_event_index``. A good line gives one or more rows (``reason`` null,
``_event_index`` 0, 1, ...); a bad line gives exactly one row (``reason`` set,
``_event_index`` 0, ``raw`` = the line cut to ``max_raw_chars``). So counting
the rows with ``_event_index == 0`` counts input lines, whatever a line expands to.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import columns as C
from klout_spark import schemas

EVENT_INDEX = "_event_index"
CORRUPT = "_corrupt_record"
# from_json options: a malformed document keeps its text in CORRUPT instead of failing the read.
PERMISSIVE = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
_EPOCH = r"^\s*-?\d+(\.\d+)?\s*$"


def string_struct(*names: str) -> T.StructType:
    """A struct of nullable string fields: nested JSON read as raw text, to check its type before parsing."""
    return T.StructType([T.StructField(n, T.StringType(), True) for n in names])


def parse_timestamp(text: Column) -> Column:
    """Parse ISO-8601 (``Z`` or an offset) or epoch seconds to a UTC timestamp; null if neither."""
    is_epoch = text.rlike(_EPOCH)
    return F.when(is_epoch, F.timestamp_seconds(F.trim(text).try_cast("double"))).otherwise(
        F.trim(text).try_cast("timestamp")
    )


def parse_epoch_seconds(text: Column) -> Column:
    """Epoch seconds given as a JSON number or a numeric string; null for anything else."""
    return F.when(text.rlike(_EPOCH), F.timestamp_seconds(F.trim(text).try_cast("double")))


def parse_twitter_time(text: Column) -> Column:
    """Parse Twitter v1.1 ``created_at`` (``Wed Aug 27 13:08:45 +0000 2008``) to UTC.

    Spark 3+ datetime patterns cannot parse a day-of-week (``EEE``) without the
    legacy parser policy, and the weekday adds nothing, so it is dropped first.
    """
    without_weekday = F.regexp_replace(F.trim(text), r"^[A-Za-z]{3}\s+", "")
    return F.try_to_timestamp(without_weekday, F.lit("MMM dd HH:mm:ss Z yyyy"))


def normalize_hashtag(tag: Column) -> Column:
    return F.lower(F.regexp_replace(F.trim(tag), r"^#+", ""))


def normalized_hashtags(raw_json: Column) -> Column:
    """Parse a JSON array of hashtags; lowercase them and drop a leading ``#``."""
    parsed = F.from_json(raw_json, T.ArrayType(T.StringType()))
    return F.transform(parsed, normalize_hashtag)


def is_json_object(raw: Column) -> Column:
    """The raw JSON text of a field (read as a string) is an object."""
    return F.ltrim(raw).startswith("{")


def is_json_array(raw: Column) -> Column:
    """The raw JSON text of a field (read as a string) is an array."""
    return F.ltrim(raw).startswith("[")


def first_reason_of(rows: Column) -> Column:
    """The first non-null ``reason`` among ``rows`` (``array<struct<reason, ...>>``), or null."""
    return F.try_element_at(F.filter(rows, lambda x: x["reason"].isNotNull()), F.lit(1))["reason"]


def event_struct(**values: Column) -> Column:
    """A struct with every canonical field, in schema order; fields not given are typed nulls."""
    unknown = set(values) - set(schemas.CANONICAL_EVENT_SCHEMA.fieldNames())
    if unknown:
        raise ValueError(f"event_struct: unknown canonical fields {sorted(unknown)}")
    return F.struct(
        *[
            (values[f.name] if f.name in values else F.lit(None)).cast(f.dataType).alias(f.name)
            for f in schemas.CANONICAL_EVENT_SCHEMA.fields
        ]
    )


def first_reason(checks: list[tuple[Column, str]]) -> Column:
    """The code of the first failed check, or null when all pass."""
    return F.coalesce(*[F.when(failed, F.lit(code)) for failed, code in checks])


def explode_line_events(
    lines: DataFrame, *, events: Column, reason: Column, max_raw_chars: int, keep_raw: Column | None = None
) -> DataFrame:
    """Turn one row per line into one row per event (good line) or one row (bad line).

    Parameters
    ----------
    lines
        Requires ``value``; every other column is passed through.
    events
        ``array<struct>`` of canonical events of the line (as from :func:`event_struct`).
    reason
        Line-level reason code; null for a good line. A good line with no events
        is quarantined as ``no_events``, so no line disappears.
    keep_raw
        Optional condition under which ``raw`` is kept for a good row too (rows
        that a later step may still reject, e.g. an unresolved parent).
    """
    line_reason = F.coalesce(reason, F.when(F.coalesce(F.size(events), F.lit(0)) <= 0, F.lit("no_events")))
    empty = F.array(event_struct())
    passthrough = [c for c in lines.columns if c != "value"]
    exploded = lines.select(
        *passthrough,
        F.col("value"),
        line_reason.alias(C.REASON),
        F.posexplode(F.when(line_reason.isNull(), events).otherwise(empty)).alias(EVENT_INDEX, "_event"),
    )
    raw_wanted = F.col(C.REASON).isNotNull()
    if keep_raw is not None:
        raw_wanted = raw_wanted | keep_raw
    fields = schemas.CANONICAL_EVENT_SCHEMA.fieldNames()
    return exploded.select(
        *passthrough,
        *[F.col(f"_event.{name}").alias(name) for name in fields],
        C.REASON,
        F.when(raw_wanted, F.substring("value", 1, max_raw_chars)).alias(C.RAW),
        F.col(EVENT_INDEX).cast("long").alias(EVENT_INDEX),
    )


def parse_offset_time(text: Column) -> Column:
    """``2019-03-01T12:00:00+0000`` (an offset without a colon, as Facebook writes it), else ISO-8601 or epoch."""
    return F.coalesce(F.try_to_timestamp(F.trim(text), F.lit("yyyy-MM-dd'T'HH:mm:ssZ")), parse_timestamp(text))


def hashtags_in_text(text: Column) -> Column:
    """Distinct ``#tags`` written in free text, normalized; an empty array for no text."""
    found = F.regexp_extract_all(F.coalesce(text, F.lit("")), F.lit(r"(?<![\w&])#(\w+)"), 1)
    return F.array_distinct(F.transform(found, normalize_hashtag))


def explode_records(lines: DataFrame, *, items: Column, reason: Column, null_reason: str) -> DataFrame:
    """Split each document line (a page of results) into one row per record, the unit of accounting.

    ``items`` is the ``array<string>`` of the records' raw JSON; ``reason`` a
    document-level failure (null if the document is readable). A good document
    gives one row per record with ``value`` = the record; a bad or empty one
    (``no_events``) gives one row with ``value`` = the document and the reason
    in ``_doc_reason``, so it is counted and quarantined once. A JSON ``null``
    among the records is a record of its own with reason ``null_reason``.
    """
    doc_reason = F.coalesce(reason, F.when(F.coalesce(F.size(items), F.lit(0)) <= 0, F.lit("no_events")))
    passthrough = [c for c in lines.columns if c != "value"]
    unreadable = F.array(F.lit(None).cast("string"))
    split = lines.select(
        *passthrough,
        F.col("value").alias("_doc"),
        doc_reason.alias("_doc_reason"),
        F.explode(F.when(doc_reason.isNull(), items).otherwise(unreadable)).alias("value"),
    )
    null_record = F.col("_doc_reason").isNull() & F.col("value").isNull()
    return (
        split.withColumn("_doc_reason", F.when(null_record, F.lit(null_reason)).otherwise(F.col("_doc_reason")))
        .withColumn("value", F.coalesce(F.col("value"), F.col("_doc")))
        .drop("_doc")
    )


# Twitter, shared by the v1.1 and v2 readers: both APIs' copies of a tweet are one event.
TWITTER = "twitter"


def twitter_user_id(raw_id: Column) -> Column:
    return F.concat(F.lit("tw:u:"), raw_id)


def twitter_post_id(raw_id: Column) -> Column:
    return F.concat(F.lit("tw:p:"), raw_id)


def tweet_event_type(*, is_retweet: Column, is_reply: Column, is_quote: Column) -> Column:
    """``reshare``, else ``reply``, else ``quote``, else ``post`` (the flags need not exclude one another)."""
    return (
        F.when(is_retweet, F.lit(schemas.RESHARE))
        .when(is_reply, F.lit(schemas.REPLY))
        .when(is_quote, F.lit(schemas.QUOTE))
        .otherwise(F.lit(schemas.POST))
    )


def tweet_mentions(
    mention_ids: Column, *, tweet_id: Column, author: Column, subject: Column, is_retweet: Column,
    is_reply: Column, ts: Column,
) -> Column:
    """``mention`` events (``tw:m:<tweet>:<user>``) for the distinct raw user ids in ``mention_ids``.

    The author is never mentioned, nor the subject (raw id) of a retweet or a
    reply: both APIs list that account among the mentions although it is the
    retweet's / reply's subject. A reply's leading ``@target`` is one entry, so
    a reply that names its target a second time does mention it.
    """
    target_mentioned_twice = F.size(F.filter(mention_ids, lambda m: m == subject)) >= 2
    not_mentions = F.array(author, F.when(is_retweet | (is_reply & ~target_mentioned_twice), subject))
    mentioned = F.array_distinct(
        F.filter(mention_ids, lambda m: m.isNotNull() & ~F.coalesce(F.array_contains(not_mentions, m), F.lit(False)))
    )
    return F.transform(
        mentioned,
        lambda m: event_struct(
            event_id=F.concat(F.lit("tw:m:"), tweet_id, F.lit(":"), m),
            network=F.lit(TWITTER),
            event_type=F.lit(schemas.MENTION),
            event_ts=ts,
            actor_id=twitter_user_id(author),
            subject_id=twitter_user_id(m),
            post_id=twitter_post_id(tweet_id),
        ),
    )
