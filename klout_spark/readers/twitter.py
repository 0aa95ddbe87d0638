"""Twitter API v1.1 tweet JSON -> canonical events.

A line holds one tweet object, a JSON array of tweets, or a search response
(``{"statuses": [...], "search_metadata": ...}``). Each tweet gives:

- its own event, ``tw:t:<id>``: a ``reshare`` if it has ``retweeted_status``
  (subject = the original's author, parent = the original), else a ``reply`` if
  ``in_reply_to_status_id_str`` is set (subject = ``in_reply_to_user_id_str``),
  else a ``quote`` if it embeds ``quoted_status``, else a ``post``;
- one ``mention`` per distinct ``entities.user_mentions[].id_str``
  (``tw:m:<id>:<user>``), except the author, the original author of a retweet
  and the replied-to account of a reply (v1.1 puts those in ``user_mentions``
  although they are the retweet's / reply's subject, not a mention; a reply
  that names its target a second time does mention it);
- a ``profile`` snapshot of ``user`` at the tweet's time (``tw:profile:<user>:<id>``).

Ids map like the generator's: tweet ``id_str`` ``N`` -> post ``tw:p:N``, user
``id_str`` ``K`` -> ``tw:u:K``. Numeric ids given as JSON numbers are read
through their text, so no precision is lost. A line is the unit of
accounting: if any tweet of an array is bad, the whole line is quarantined
with that tweet's reason. Stream control messages (``delete``, ``limit``,
``scrub_geo``, ...) are quarantined as ``not_a_tweet``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import columns as C
from klout_spark import schemas
from klout_spark.readers._common import (
    CORRUPT,
    PERMISSIVE,
    TWITTER,
    event_struct,
    explode_line_events,
    first_reason,
    first_reason_of,
    is_json_array,
    is_json_object,
    normalize_hashtag,
    parse_twitter_time,
    string_struct,
    tweet_event_type,
    tweet_mentions,
    twitter_post_id,
    twitter_user_id,
)

NETWORK = TWITTER
_S = T.StringType()
_CONTROL_KEYS = ("delete", "limit", "scrub_geo", "status_withheld", "user_withheld", "disconnect", "warning")


# Nested objects are read as raw text first, so a wrong type is told apart from a missing one.
_LINE_SCHEMA = T.StructType([T.StructField("statuses", _S, True), T.StructField(CORRUPT, _S, True)])
_TWEET_SCHEMA = T.StructType(
    [
        *string_struct(
            "id_str", "created_at", "text", "full_text", "user", "entities", "extended_tweet",
            "in_reply_to_status_id_str", "in_reply_to_user_id_str", "retweeted_status", "quoted_status",
            *_CONTROL_KEYS,
        ).fields,
        T.StructField(CORRUPT, _S, True),
    ]
)
_USER_SCHEMA = string_struct(
    "id_str", "followers_count", "friends_count", "listed_count", "statuses_count", "verified", "created_at"
)
_EMBEDDED_SCHEMA = T.StructType([T.StructField("id_str", _S), T.StructField("user", string_struct("id_str"))])
_ENTITIES_SCHEMA = T.StructType(
    [
        T.StructField("hashtags", T.ArrayType(string_struct("text")), True),
        T.StructField("user_mentions", T.ArrayType(string_struct("id_str")), True),
    ]
)
_EXTENDED_SCHEMA = T.StructType([T.StructField("full_text", _S), T.StructField("entities", _S)])
_COUNTS = {
    "followers_count": C.FOLLOWERS_COUNT,
    "friends_count": C.FOLLOWING_COUNT,
    "listed_count": C.LISTED_COUNT,
    "statuses_count": C.POSTS_COUNT,
}


def _tweet(raw: Column) -> Column:
    """A struct ``(reason, events)`` for the raw JSON text of one tweet."""
    t = F.from_json(raw, _TWEET_SCHEMA, PERMISSIVE)
    user = F.from_json(t["user"], _USER_SCHEMA)
    retweeted = F.from_json(t["retweeted_status"], _EMBEDDED_SCHEMA)
    quoted = F.from_json(t["quoted_status"], _EMBEDDED_SCHEMA)
    extended = F.from_json(t["extended_tweet"], _EXTENDED_SCHEMA)
    entities_raw = F.coalesce(extended["entities"], t["entities"])
    entities = F.from_json(entities_raw, _ENTITIES_SCHEMA)
    ts = parse_twitter_time(t["created_at"])
    account_created = parse_twitter_time(user["created_at"])
    counts = {canonical: F.trim(user[name]).try_cast("long") for name, canonical in _COUNTS.items()}
    verified = F.lower(F.trim(user["verified"])).try_cast("boolean")
    is_control = F.coalesce(*[t[key].isNotNull() for key in _CONTROL_KEYS], F.lit(False))
    is_retweet = t["retweeted_status"].isNotNull()
    is_reply = ~is_retweet & t["in_reply_to_status_id_str"].isNotNull()
    is_quote = ~is_retweet & ~is_reply & t["quoted_status"].isNotNull()

    checks: list[tuple[Column, str]] = [
        (t.isNull() | t[CORRUPT].isNotNull() | ~is_json_object(raw), "malformed_json"),
        (is_control & t["id_str"].isNull(), "not_a_tweet"),
        (t["id_str"].isNull(), "missing_field:id_str"),
        (t["created_at"].isNull(), "missing_field:created_at"),
        (ts.isNull(), "bad_timestamp"),
        (t["user"].isNull(), "missing_field:user"),
        (~is_json_object(t["user"]), "bad_type:user"),
        (user["id_str"].isNull(), "missing_field:user.id_str"),
        (t["entities"].isNotNull() & ~is_json_object(t["entities"]), "bad_type:entities"),
        (entities_raw.isNotNull() & entities.isNull(), "bad_type:entities"),
        (is_retweet & ~is_json_object(t["retweeted_status"]), "bad_type:retweeted_status"),
        (is_retweet & retweeted["id_str"].isNull(), "missing_field:retweeted_status.id_str"),
        (is_retweet & retweeted["user"]["id_str"].isNull(), "missing_field:retweeted_status.user.id_str"),
        (is_reply & t["in_reply_to_user_id_str"].isNull(), "missing_field:in_reply_to_user_id_str"),
        (t["quoted_status"].isNotNull() & ~is_json_object(t["quoted_status"]), "bad_type:quoted_status"),
        (is_quote & quoted["user"]["id_str"].isNull(), "missing_field:quoted_status.user.id_str"),
        *[
            (user[name].isNotNull() & counts[canonical].isNull(), f"bad_type:user.{name}")
            for name, canonical in _COUNTS.items()
        ],
        (user["verified"].isNotNull() & verified.isNull(), "bad_type:user.verified"),
        (user["created_at"].isNotNull() & account_created.isNull(), "bad_type:user.created_at"),
    ]
    reason = first_reason(checks)

    tweet_id = t["id_str"]
    actor = twitter_user_id(user["id_str"])
    event_type = tweet_event_type(is_retweet=is_retweet, is_reply=is_reply, is_quote=is_quote)
    subject_raw = (
        F.when(is_retweet, retweeted["user"]["id_str"])
        .when(is_reply, t["in_reply_to_user_id_str"])
        .when(is_quote, quoted["user"]["id_str"])
    )
    parent_raw = (
        F.when(is_retweet, retweeted["id_str"])
        .when(is_reply, t["in_reply_to_status_id_str"])
        .when(is_quote, quoted["id_str"])
    )
    hashtags = F.transform(
        F.filter(entities["hashtags"], lambda h: h["text"].isNotNull()), lambda h: normalize_hashtag(h["text"])
    )
    own = event_struct(
        event_id=F.concat(F.lit("tw:t:"), tweet_id),
        network=F.lit(NETWORK),
        event_type=event_type,
        event_ts=ts,
        actor_id=actor,
        subject_id=twitter_user_id(subject_raw),
        post_id=twitter_post_id(tweet_id),
        parent_post_id=twitter_post_id(parent_raw),
        text=F.coalesce(extended["full_text"], t["full_text"], t["text"]),
        hashtags=hashtags,
    )
    mention_ids = F.transform(F.coalesce(entities["user_mentions"], F.array()), lambda m: m["id_str"])
    mentions = tweet_mentions(
        mention_ids, tweet_id=tweet_id, author=user["id_str"], subject=subject_raw,
        is_retweet=is_retweet, is_reply=is_reply, ts=ts,
    )
    profile = event_struct(
        event_id=F.concat(F.lit("tw:profile:"), user["id_str"], F.lit(":"), tweet_id),
        network=F.lit(NETWORK),
        event_type=F.lit(schemas.PROFILE),
        event_ts=ts,
        actor_id=actor,
        account_created_at=account_created,
        verified=verified,
        **counts,
    )
    events = F.concat(F.array(own), mentions, F.array(profile))
    return F.struct(reason.alias("reason"), events.alias("events"))


def parse_twitter_lines(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse Twitter v1.1 lines into canonical events (see the module docstring).

    Requires ``value`` (blank lines removed); other columns are passed through.
    Returns them plus the canonical columns, ``reason``, ``raw`` and ``_event_index``.
    Reasons: ``malformed_json``, ``not_a_tweet``, ``no_events`` (an empty array),
    ``missing_field:<f>``, ``bad_type:<f>``, ``bad_timestamp``.
    """
    value = F.col("value")
    line = F.from_json(value, _LINE_SCHEMA, PERMISSIVE)
    array_items = F.from_json(value, T.ArrayType(_S))
    statuses = F.from_json(line["statuses"], T.ArrayType(_S))
    is_array = is_json_array(value)
    is_search = ~is_array & line["statuses"].isNotNull()
    items = F.when(is_array, array_items).when(is_search, statuses).otherwise(F.array(value))
    line_malformed = (is_array & array_items.isNull()) | (is_search & statuses.isNull())
    tweets = F.col("_tweets")
    reason = F.when(line_malformed, F.lit("malformed_json")).otherwise(first_reason_of(tweets))
    events = F.flatten(F.transform(tweets, lambda x: x["events"]))
    return explode_line_events(
        lines.withColumn("_tweets", F.transform(F.coalesce(items, F.array()), _tweet)),
        events=events, reason=reason, max_raw_chars=max_raw_chars,
    ).drop("_tweets")
