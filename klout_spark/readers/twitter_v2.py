"""Twitter API v2 responses -> canonical events.

A line holds one response: ``{"data": [tweet, ...], "includes": {"users":
[...], "tweets": [...]}, "meta": {...}}`` (a search or timeline page), or a
single-tweet lookup whose ``data`` is one tweet object. Each tweet in ``data``
gives, with the same ids as the v1.1 reader (so both APIs' copies of a tweet
are one event):

- its own event ``tw:t:<id>``: a ``reshare`` if ``referenced_tweets`` has a
  ``retweeted`` entry, else a ``reply`` if it has ``replied_to``, else a
  ``quote`` if it has ``quoted``, else a ``post``; the parent post is the
  referenced tweet. The subject is the referenced tweet's ``author_id``, looked
  up in ``includes.tweets`` (or in ``data`` itself); a reply whose parent is in
  neither falls back to ``in_reply_to_user_id``;
- one ``mention`` per distinct ``entities.mentions[].id`` (the id looked up by
  ``username`` in ``includes.users`` when a mention lacks it), except the
  author, the original author of a retweet and the replied-to account of a
  reply, as in the v1.1 reader (v2's text of a retweet or reply starts with
  that ``@name`` too; a reply that names its target twice does mention it);
- nothing more: v2 tweets carry no user object.

Each user of ``includes.users`` gives one ``profile`` snapshot (counts from its
``public_metrics``, null when the response did not ask for them). A response
is fetched after its newest tweet, so the snapshot is dated at the line's
newest ``created_at`` and named ``tw:profile:<user>:<that tweet's id>``.

Decisions, as in the v1.1 reader: a line is the unit of accounting, so a bad
tweet (or a bad included user) quarantines its whole line with the first
reason found; a reshare or quote whose referenced tweet is not in the response
cannot name its subject and is quarantined as ``missing_field:includes.tweets``
(a v1.1 retweet always embeds its original, so this is the v2 form of
``missing_field:retweeted_status.user.id_str``). A response without ``data``
(an error or an empty page) is quarantined as ``missing_field:data``; ``data:
[]`` as ``no_events``.
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
    string_struct,
    tweet_event_type,
    tweet_mentions,
    twitter_post_id,
    twitter_user_id,
)

NETWORK = TWITTER
_S = T.StringType()
_ISO_DATE = r"^\s*\d{4}-\d{2}-\d{2}[T ]"


# Nested objects are read as raw text first, so a wrong type is told apart from a missing one.
_LINE_SCHEMA = T.StructType([*string_struct("data", "includes", "meta", "errors").fields, T.StructField(CORRUPT, _S)])
_INCLUDES_SCHEMA = string_struct("users", "tweets")
_TWEET_SCHEMA = T.StructType(
    [
        *string_struct(
            "id", "text", "author_id", "created_at", "conversation_id", "in_reply_to_user_id",
            "referenced_tweets", "entities", "public_metrics", "note_tweet",
        ).fields,
        T.StructField(CORRUPT, _S, True),
    ]
)
_TWEET_KEY_SCHEMA = string_struct("id", "author_id")
_REFERENCE_SCHEMA = string_struct("type", "id")
_ENTITIES_SCHEMA = T.StructType(
    [
        T.StructField("hashtags", T.ArrayType(string_struct("tag")), True),
        T.StructField("mentions", T.ArrayType(string_struct("username", "id")), True),
    ]
)
_USER_SCHEMA = string_struct("id", "username", "created_at", "verified", "public_metrics")
_USER_METRICS = {
    "followers_count": C.FOLLOWERS_COUNT,
    "following_count": C.FOLLOWING_COUNT,
    "listed_count": C.LISTED_COUNT,
    "tweet_count": C.POSTS_COUNT,
}
_USER_METRICS_SCHEMA = string_struct(*_USER_METRICS)
_TWEET_METRICS_SCHEMA = string_struct("retweet_count", "reply_count", "like_count", "quote_count")
# Reference types in the order that decides a tweet's event type, as in the v1.1 reader.
_RETWEETED, _REPLIED_TO, _QUOTED = "retweeted", "replied_to", "quoted"


def _iso_time(text: Column) -> Column:
    """v2 ``created_at`` (ISO 8601, ``2022-03-01T12:00:00.000Z``) as UTC; null for anything else."""
    return F.when(text.rlike(_ISO_DATE), F.trim(text).try_cast("timestamp"))


def _count(text: Column) -> Column:
    """A non-negative-looking integer count; null for a non-integer (a JSON number's text is kept as is)."""
    return F.when(F.trim(text).rlike(r"^-?\d+$"), F.trim(text).try_cast("long"))


def _reference(refs: Column, kind: str) -> Column:
    """The id of the first reference of ``kind`` (null when there is none)."""
    return F.try_element_at(F.filter(refs, lambda r: r["type"] == kind), F.lit(1))["id"]


def _author_of(known: Column, tweet_id: Column) -> Column:
    """``author_id`` of ``tweet_id`` among ``known`` (``array<struct<id, author_id>>``), or null."""
    found = F.filter(known, lambda k: (k["id"] == tweet_id) & k["author_id"].isNotNull())
    return F.try_element_at(found, F.lit(1))["author_id"]


def _tweet(raw: Column, *, known: Column, users: Column) -> Column:
    """A struct ``(reason, ts, id, events)`` for the raw JSON text of one tweet of ``data``."""
    t = F.from_json(raw, _TWEET_SCHEMA, PERMISSIVE)
    refs = F.from_json(t["referenced_tweets"], T.ArrayType(_REFERENCE_SCHEMA))
    entities = F.from_json(t["entities"], _ENTITIES_SCHEMA)
    ts = _iso_time(t["created_at"])
    retweeted, replied_to, quoted = (_reference(refs, k) for k in (_RETWEETED, _REPLIED_TO, _QUOTED))
    is_retweet = retweeted.isNotNull()
    is_reply = ~is_retweet & replied_to.isNotNull()
    is_quote = ~is_retweet & ~is_reply & quoted.isNotNull()
    parent_raw = F.when(is_retweet, retweeted).when(is_reply, replied_to).when(is_quote, quoted)
    parent_author = _author_of(known, parent_raw)
    subject_raw = F.when(is_reply, F.coalesce(parent_author, t["in_reply_to_user_id"])).when(
        is_retweet | is_quote, parent_author
    )

    checks: list[tuple[Column, str]] = [
        (t.isNull() | t[CORRUPT].isNotNull() | ~is_json_object(raw), "malformed_json"),
        (t["id"].isNull(), "missing_field:id"),
        (t["author_id"].isNull(), "missing_field:author_id"),
        (t["created_at"].isNull(), "missing_field:created_at"),
        (ts.isNull(), "bad_timestamp"),
        (t["referenced_tweets"].isNotNull() & (~is_json_array(t["referenced_tweets"]) | refs.isNull()),
         "bad_type:referenced_tweets"),
        (F.exists(F.coalesce(refs, F.array()), lambda r: r["id"].isNull()), "missing_field:referenced_tweets.id"),
        (t["entities"].isNotNull() & (~is_json_object(t["entities"]) | entities.isNull()), "bad_type:entities"),
        (t["public_metrics"].isNotNull() & (~is_json_object(t["public_metrics"])
                                            | F.from_json(t["public_metrics"], _TWEET_METRICS_SCHEMA).isNull()),
         "bad_type:public_metrics"),
        (is_reply & subject_raw.isNull(), "missing_field:in_reply_to_user_id"),
        ((is_retweet | is_quote) & subject_raw.isNull(), "missing_field:includes.tweets"),
    ]
    reason = first_reason(checks)

    tweet_id = t["id"]
    actor = twitter_user_id(t["author_id"])
    event_type = tweet_event_type(is_retweet=is_retweet, is_reply=is_reply, is_quote=is_quote)
    hashtags = F.transform(
        F.filter(entities["hashtags"], lambda h: h["tag"].isNotNull()), lambda h: normalize_hashtag(h["tag"])
    )
    note_text = F.get_json_object(t["note_tweet"], "$.text")
    own = event_struct(
        event_id=F.concat(F.lit("tw:t:"), tweet_id),
        network=F.lit(NETWORK),
        event_type=event_type,
        event_ts=ts,
        actor_id=actor,
        subject_id=twitter_user_id(subject_raw),
        post_id=twitter_post_id(tweet_id),
        parent_post_id=twitter_post_id(parent_raw),
        text=F.coalesce(note_text, t["text"]),
        hashtags=hashtags,
    )
    # A mention without an id is resolved by its username among the included users.
    mention_ids = F.transform(
        F.coalesce(entities["mentions"], F.array()),
        lambda m: F.coalesce(
            m["id"],
            F.try_element_at(
                F.filter(users, lambda u: F.lower(u["username"]) == F.lower(m["username"])), F.lit(1)
            )["id"],
        ),
    )
    mentions = tweet_mentions(
        mention_ids, tweet_id=tweet_id, author=t["author_id"], subject=subject_raw,
        is_retweet=is_retweet, is_reply=is_reply, ts=ts,
    )
    events = F.concat(F.array(own), mentions)
    return F.struct(reason.alias("reason"), ts.alias("ts"), tweet_id.alias("id"), events.alias("events"))


def _user(raw: Column) -> Column:
    """A struct ``(reason, id, username, created, verified, <counts>)`` for one included user."""
    u = F.from_json(raw, _USER_SCHEMA)
    metrics = F.from_json(u["public_metrics"], _USER_METRICS_SCHEMA)
    counts = {canonical: _count(metrics[name]) for name, canonical in _USER_METRICS.items()}
    created = _iso_time(u["created_at"])
    verified = F.lower(F.trim(u["verified"])).try_cast("boolean")
    checks: list[tuple[Column, str]] = [
        (u.isNull() | ~is_json_object(raw), "bad_type:includes.users"),
        (u["id"].isNull(), "missing_field:includes.users.id"),
        (u["public_metrics"].isNotNull() & (~is_json_object(u["public_metrics"]) | metrics.isNull()),
         "bad_type:includes.users.public_metrics"),
        *[
            (metrics[name].isNotNull() & counts[canonical].isNull(), f"bad_type:includes.users.public_metrics.{name}")
            for name, canonical in _USER_METRICS.items()
        ],
        (u["verified"].isNotNull() & verified.isNull(), "bad_type:includes.users.verified"),
        (u["created_at"].isNotNull() & created.isNull(), "bad_type:includes.users.created_at"),
    ]
    return F.struct(
        first_reason(checks).alias("reason"),
        u["id"].alias("id"),
        u["username"].alias("username"),
        created.alias("created"),
        verified.alias("verified"),
        *[value.alias(canonical) for canonical, value in counts.items()],
    )


def _profile(user: Column, *, ts: Column, tweet_id: Column) -> Column:
    return event_struct(
        event_id=F.concat(F.lit("tw:profile:"), user["id"], F.lit(":"), tweet_id),
        network=F.lit(NETWORK),
        event_type=F.lit(schemas.PROFILE),
        event_ts=ts,
        actor_id=twitter_user_id(user["id"]),
        account_created_at=user["created"],
        verified=user["verified"],
        **{canonical: user[canonical] for canonical in _USER_METRICS.values()},
    )


def parse_twitter_v2_lines(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse Twitter API v2 response lines into canonical events (see the module docstring).

    Requires ``value`` (blank lines removed); other columns are passed through.
    Returns them plus the canonical columns, ``reason``, ``raw`` and ``_event_index``.
    Reasons: ``malformed_json``, ``missing_field:<f>``, ``bad_type:<f>``,
    ``bad_timestamp``, ``no_events`` (``data: []``).
    """
    line = F.from_json(F.col("value"), _LINE_SCHEMA, PERMISSIVE)
    data_raw = line["data"]
    data_is_array = is_json_array(data_raw)
    data_items = F.when(data_is_array, F.from_json(data_raw, T.ArrayType(_S))).when(
        is_json_object(data_raw), F.array(data_raw)
    )
    includes = F.from_json(line["includes"], _INCLUDES_SCHEMA)
    included_tweets = F.from_json(includes["tweets"], T.ArrayType(_TWEET_KEY_SCHEMA))
    included_users = F.from_json(includes["users"], T.ArrayType(_S))
    line_checks: list[tuple[Column, str]] = [
        (line.isNull() | line[CORRUPT].isNotNull() | ~is_json_object(F.col("value")), "malformed_json"),
        (data_raw.isNull(), "missing_field:data"),
        (data_items.isNull(), "bad_type:data"),
        (line["includes"].isNotNull() & (~is_json_object(line["includes"]) | includes.isNull()),
         "bad_type:includes"),
        (includes["users"].isNotNull() & (~is_json_array(includes["users"]) | included_users.isNull()),
         "bad_type:includes.users"),
        (includes["tweets"].isNotNull() & (~is_json_array(includes["tweets"]) | included_tweets.isNull()),
         "bad_type:includes.tweets"),
    ]
    staged = lines.withColumn("_line_reason", first_reason(line_checks)).withColumn(
        "_items", F.coalesce(data_items, F.array())
    )
    # Referenced tweets are looked up among the included tweets and the page's own tweets.
    known = F.concat(
        F.coalesce(included_tweets, F.array()),
        F.transform(F.col("_items"), lambda item: F.from_json(item, _TWEET_KEY_SCHEMA)),
    )
    staged = staged.withColumn("_known", known).withColumn(
        "_users", F.transform(F.coalesce(included_users, F.array()), _user)
    )
    staged = staged.withColumn(
        "_tweets",
        F.transform(F.col("_items"), lambda item: _tweet(item, known=F.col("_known"), users=F.col("_users"))),
    )
    tweets, users = F.col("_tweets"), F.col("_users")
    reason = F.coalesce(F.col("_line_reason"), first_reason_of(tweets), first_reason_of(users))
    newest = F.array_max(F.transform(tweets, lambda x: F.struct(x["ts"].alias("ts"), x["id"].alias("id"))))
    profiles = F.transform(
        F.filter(users, lambda u: u["id"].isNotNull()),
        lambda u: _profile(u, ts=newest["ts"], tweet_id=newest["id"]),
    )
    events = F.concat(F.flatten(F.transform(tweets, lambda x: x["events"])), profiles)
    # An empty page has no tweets: it is no_events (null events), whatever users it includes.
    events = F.when(F.size(tweets) > 0, events)
    return explode_line_events(staged, events=events, reason=reason, max_raw_chars=max_raw_chars).drop(
        "_line_reason", "_items", "_known", "_users", "_tweets"
    )
