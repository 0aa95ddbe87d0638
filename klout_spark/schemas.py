"""Schemas of every table klout-spark writes, as ``StructType`` constants.

Readers, transforms (in their final ``select``) and tests all use these, so a
table's shape is stated once. Event types are enumerated here too, because the
validation suite, the features and the edge weights all depend on the same set.
"""

from __future__ import annotations

from pyspark.sql import types as T

from klout_spark import columns as C

# Event types of the canonical format. 'profile' rows carry a profile snapshot
# of the actor instead of an interaction.
POST = "post"
REPLY = "reply"
RESHARE = "reshare"
QUOTE = "quote"
MENTION = "mention"
LIKE = "like"
FOLLOW = "follow"
UNFOLLOW = "unfollow"
LIST_ADD = "list_add"
PROFILE = "profile"

INTERACTION_TYPES: tuple[str, ...] = (REPLY, RESHARE, QUOTE, MENTION, LIKE, FOLLOW, UNFOLLOW, LIST_ADD)
EVENT_TYPES: tuple[str, ...] = (POST, *INTERACTION_TYPES, PROFILE)
# Interactions that engage with the subject's content (they count toward reach).
ENGAGEMENT_TYPES: tuple[str, ...] = (REPLY, RESHARE, QUOTE, MENTION, LIKE)
# Interactions that point at one of the subject's posts.
POST_ENGAGEMENT_TYPES: tuple[str, ...] = (REPLY, RESHARE, QUOTE, LIKE)
# Event types that create a post of the actor's own.
AUTHORED_TYPES: tuple[str, ...] = (POST, REPLY, RESHARE, QUOTE)

_S = T.StringType()
_TS = T.TimestampType()
_L = T.LongType()
_D = T.DoubleType()


def _f(name: str, dtype: T.DataType, nullable: bool = True) -> T.StructField:
    return T.StructField(name, dtype, nullable=nullable)


# The canonical event, as parsed from any input format (before lineage columns).
CANONICAL_EVENT_SCHEMA = T.StructType(
    [
        _f(C.EVENT_ID, _S),
        _f(C.NETWORK, _S),
        _f(C.EVENT_TYPE, _S),
        _f(C.EVENT_TS, _TS),
        _f(C.ACTOR_ID, _S),
        _f(C.SUBJECT_ID, _S),
        _f(C.POST_ID, _S),
        _f(C.PARENT_POST_ID, _S),
        _f(C.TEXT, _S),
        _f(C.HASHTAGS, T.ArrayType(_S, containsNull=True)),
        _f(C.FOLLOWERS_COUNT, _L),
        _f(C.FOLLOWING_COUNT, _L),
        _f(C.LISTED_COUNT, _L),
        _f(C.POSTS_COUNT, _L),
        _f(C.ACCOUNT_CREATED_AT, _TS),
        _f(C.VERIFIED, T.BooleanType()),
        _f(C.SHARE_COUNT, _L),
    ]
)

BRONZE_EVENTS_SCHEMA = T.StructType(
    [
        *CANONICAL_EVENT_SCHEMA.fields,
        _f(C.SOURCE_PATH, _S, False),
        _f(C.SOURCE_CHECKSUM, _S, False),
        _f(C.SOURCE_LINE, _L, False),
        _f(C.BATCH_ID, _S, False),
        _f(C.INGESTED_AT, _TS, False),
        _f(C.EVENT_DATE, T.DateType(), False),
    ]
)

INGEST_LOG_SCHEMA = T.StructType(
    [
        _f(C.PATH, _S, False),
        _f(C.SIZE_BYTES, _L, False),
        _f(C.MODIFIED_AT, _TS, False),
        _f(C.SOURCE_CHECKSUM, _S, False),
        _f(C.FORMAT, _S, False),
        _f(C.BATCH_ID, _S, False),
        _f(C.ROWS_READ, _L, False),
        _f(C.ROWS_OK, _L, False),
        _f(C.ROWS_QUARANTINED, _L, False),
        _f(C.COMMITTED_AT, _TS, False),
    ]
)

QUARANTINE_SCHEMA = T.StructType(
    [
        _f(C.STAGE, _S, False),
        _f(C.REASON, _S, False),
        _f(C.RAW, _S),
        _f(C.EVENT_ID, _S),
        _f(C.SOURCE_PATH, _S),
        _f(C.SOURCE_CHECKSUM, _S),
        _f(C.SOURCE_LINE, _L),
        _f(C.BATCH_ID, _S, False),
        _f(C.RUN_ID, _S, False),
        _f(C.QUARANTINED_AT, _TS, False),
    ]
)

SILVER_EVENTS_SCHEMA = T.StructType(
    [
        _f(C.EVENT_ID, _S, False),
        _f(C.NETWORK, _S, False),
        _f(C.EVENT_TYPE, _S, False),
        _f(C.EVENT_TS, _TS, False),
        _f(C.ACTOR_ID, _S, False),
        _f(C.SUBJECT_ID, _S),
        _f(C.POST_ID, _S),
        _f(C.PARENT_POST_ID, _S),
        _f(C.TEXT, _S),
        _f(C.HASHTAGS, T.ArrayType(_S, containsNull=True)),
        _f(C.BATCH_ID, _S, False),
        _f(C.EVENT_DATE, T.DateType(), False),
    ]
)

SILVER_PROFILES_SCHEMA = T.StructType(
    [
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
        _f(C.SNAPSHOT_TS, _TS, False),
        _f(C.FOLLOWERS_COUNT, _L),
        _f(C.FOLLOWING_COUNT, _L),
        _f(C.LISTED_COUNT, _L),
        _f(C.POSTS_COUNT, _L),
        _f(C.ACCOUNT_CREATED_AT, _TS),
        _f(C.VERIFIED, T.BooleanType()),
        _f(C.EVENT_ID, _S, False),
        _f(C.BATCH_ID, _S, False),
    ]
)

# Which ingest batches validate has promoted into silver (its commit marker).
SILVER_BATCHES_SCHEMA = T.StructType(
    [
        _f(C.BATCH_ID, _S, False),
        _f(C.RUN_ID, _S, False),
        _f(C.ROWS_IN, _L, False),
        _f(C.ROWS_OK, _L, False),
        _f(C.ROWS_QUARANTINED, _L, False),
        _f(C.COMMITTED_AT, _TS, False),
    ]
)

# Per-user per-day counts. Sent counts are the actor's own activity, received
# counts are what other accounts did to the user.
PLURAL = {
    POST: "posts",
    REPLY: "replies",
    RESHARE: "reshares",
    QUOTE: "quotes",
    MENTION: "mentions",
    LIKE: "likes",
    FOLLOW: "follows",
    UNFOLLOW: "unfollows",
    LIST_ADD: "list_adds",
}
# (event type, column) pairs of the daily counts.
DAILY_SENT_BY_TYPE = tuple((t, f"{PLURAL[t]}_sent") for t in (POST, *INTERACTION_TYPES))
DAILY_RECEIVED_BY_TYPE = tuple((t, f"{PLURAL[t]}_received") for t in INTERACTION_TYPES)
DAILY_SENT = tuple(name for _, name in DAILY_SENT_BY_TYPE)
# What makes an account active: its own content and engagement. Following, unfollowing
# and list curation alone do not (dormant and bought accounts do nothing else).
ACTIVITY_SENT = tuple(name for t, name in DAILY_SENT_BY_TYPE if t in (POST, *ENGAGEMENT_TYPES))
DAILY_RECEIVED = tuple(name for _, name in DAILY_RECEIVED_BY_TYPE)
ENGAGERS = "engagers"
POSTS_ENGAGED = "posts_engaged"
ENGAGEMENTS_RECEIVED = "engagements_received"
ENGAGEMENTS_SENT = "engagements_sent"

USER_DAILY_SCHEMA = T.StructType(
    [
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
        _f(C.EVENT_DATE, T.DateType(), False),
        *[_f(name, _L, False) for name in DAILY_SENT],
        *[_f(name, _L, False) for name in DAILY_RECEIVED],
        _f(ENGAGEMENTS_SENT, _L, False),
        _f(ENGAGEMENTS_RECEIVED, _L, False),
        _f(ENGAGERS, _L, False),
        _f(POSTS_ENGAGED, _L, False),
    ]
)

# Windowed features: for each base measure, trailing sums over these windows
# plus an exponentially decayed sum over the longest window.
FEATURE_WINDOWS: tuple[int, ...] = (7, 30, 90)
FEATURE_MEASURES: tuple[str, ...] = (
    "posts_sent",
    "replies_sent",
    "quotes_sent",
    ENGAGEMENTS_SENT,
    ENGAGEMENTS_RECEIVED,
    "reshares_received",
    "replies_received",
    "quotes_received",
    "likes_received",
    "mentions_received",
    "follows_received",
    "unfollows_received",
    "follows_sent",
)
WINDOW_FEATURES: tuple[str, ...] = tuple(
    f"{m}_{w}d" for m in FEATURE_MEASURES for w in FEATURE_WINDOWS
) + tuple(f"{m}_decayed" for m in FEATURE_MEASURES)

ACTIVE_DAYS_30D = "active_days_30d"
ACCOUNT_AGE_DAYS = "account_age_days"
IS_INACTIVE = "is_inactive"
IS_SPAM_LIKE = "is_spam_like"
IS_GENUINE = "is_genuine"
IS_NEW_ACCOUNT = "is_new_account"
IS_FOLLOWER_BOOSTED = "is_follower_boosted"
MUTUAL_ENGAGERS_30D = "mutual_engagers_30d"
GENUINE_ENGAGERS_30D = "genuine_engagers_30d"
GENUINE_ENGAGEMENTS_DECAYED = "genuine_engagements_decayed"
AMPLIFIED_POSTS_30D = "amplified_posts_30d"
GENUINE_RESHARES_30D = "genuine_reshares_30d"

USER_FEATURES_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
        *[_f(name, _D, False) for name in WINDOW_FEATURES],
        _f(ACTIVE_DAYS_30D, _L, False),
        _f(C.FOLLOWERS_COUNT, _L),
        _f(C.FOLLOWING_COUNT, _L),
        _f(C.LISTED_COUNT, _L),
        _f(ACCOUNT_AGE_DAYS, _L),
        _f(C.VERIFIED, T.BooleanType()),
        _f(IS_INACTIVE, T.BooleanType(), False),
        _f(IS_SPAM_LIKE, T.BooleanType(), False),
        _f(IS_NEW_ACCOUNT, T.BooleanType(), False),
        _f(IS_FOLLOWER_BOOSTED, T.BooleanType(), False),
        _f(GENUINE_ENGAGERS_30D, _L, False),
        _f(MUTUAL_ENGAGERS_30D, _L, False),
        _f(GENUINE_ENGAGEMENTS_DECAYED, _D, False),
        _f(AMPLIFIED_POSTS_30D, _L, False),
        _f(GENUINE_RESHARES_30D, _L, False),
    ]
)

ENGAGEMENT_EDGES_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.NETWORK, _S, False),
        _f(C.SRC, _S, False),
        _f(C.DST, _S, False),
        _f(C.INTERACTIONS, _L, False),
        _f(C.WEIGHT, _D, False),
    ]
)

NETWORK_RANK_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
        _f(C.TRUST, _D, False),
        _f(C.PAGERANK, _D, False),
    ]
)

SCORES_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
        _f(C.SCORE, _D, False),
        _f(C.TRUE_REACH, _D, False),
        _f(C.AMPLIFICATION, _D, False),
        _f(C.NETWORK_IMPACT, _D, False),
        _f(C.RANK, _L, False),
        _f(C.PERCENTILE, _D, False),
        _f(C.SCORE_DELTA_7D, _D),
        _f(C.MODEL_VERSION, _S, False),
        _f(C.RUN_ID, _S, False),
    ]
)

PERSON_SCORES_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.PERSON_ID, _S, False),
        _f(C.SCORE, _D, False),
        _f("accounts", _L, False),
        _f(C.MODEL_VERSION, _S, False),
        _f(C.RUN_ID, _S, False),
    ]
)

SCORE_TOPICS_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
        _f(C.TOPIC, _S, False),
        _f(C.TOPIC_POSTS, _L, False),
        _f(C.TOPIC_ENGAGERS, _L, False),
        _f(C.TOPIC_SCORE, _D, False),
        _f(C.RUN_ID, _S, False),
    ]
)

SCORE_EXPLAIN_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
        _f(C.CONTRIBUTOR_KIND, _S, False),
        _f(C.CONTRIBUTOR_ID, _S, False),
        _f(C.POSITION, _L, False),
        _f(C.CONTRIBUTION, _D, False),
        _f(C.RUN_ID, _S, False),
    ]
)

IDENTITIES_SCHEMA = T.StructType(
    [
        _f(C.PERSON_ID, _S, False),
        _f(C.NETWORK, _S, False),
        _f(C.USER_ID, _S, False),
    ]
)

RUNS_SCHEMA = T.StructType(
    [
        _f(C.RUN_ID, _S, False),
        _f(C.AS_OF, T.DateType()),
        _f(C.STAGE, _S, False),
        _f(C.STARTED_AT, _TS, False),
        _f(C.ENDED_AT, _TS, False),
        _f(C.STATUS, _S, False),
        _f(C.ROWS_IN, _L),
        _f(C.ROWS_OUT, _L),
        _f(C.ITERATIONS, T.IntegerType()),
        _f(C.RESIDUAL, _D),
        _f(C.RESIDUALS, T.ArrayType(_D, containsNull=False)),
        _f(C.CONFIG_HASH, _S, False),
        _f(C.CODE_VERSION, _S, False),
        _f(C.MESSAGE, _S),
        _f(C.DETAILS, _S),
    ]
)

# One row per as_of a run is writing (see klout_spark.locks).
RUN_LOCKS_SCHEMA = T.StructType(
    [
        _f(C.AS_OF, T.DateType(), False),
        _f(C.RUN_ID, _S, False),
        _f("host", _S, False),
        _f("pid", _L, False),
        _f("acquired_at", _TS, False),
        _f("expires_at", _TS, False),
    ]
)

# score_calibration: one row per knot of each component's curve, per model_version.
COMPONENT = "component"
KNOT = "knot"
RAW_VALUE = "raw_value"
CALIBRATED_VALUE = "calibrated_value"
REFERENCE_AS_OF = "reference_as_of"
REFERENCE_ACCOUNTS = "reference_accounts"
CREATED_AT = "created_at"

SCORE_CALIBRATION_SCHEMA = T.StructType(
    [
        _f(C.MODEL_VERSION, _S, False),
        _f(COMPONENT, _S, False),
        _f(KNOT, T.IntegerType(), False),
        _f(RAW_VALUE, _D, False),
        _f(CALIBRATED_VALUE, _D, False),
        _f(REFERENCE_AS_OF, T.DateType(), False),
        _f(REFERENCE_ACCOUNTS, _L, False),
        _f(CREATED_AT, _TS, False),
        _f(C.RUN_ID, _S, False),
    ]
)
