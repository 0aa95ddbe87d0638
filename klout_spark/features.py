"""Stage 3: ``silver_events`` -> ``user_daily`` -> ``user_features`` (per ``as_of``).

Point-in-time correct: features for ``as_of = D`` read only events with
``event_date <= D`` (``event_ts < D + 1 day``), so a backfill of a past date
gives what a daily run on that date gave. Windows are trailing frames over a
day index, stated explicitly, and one pass computes any number of ``as_of``
dates from the same ``user_daily`` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import InputError, require_columns

LONGEST_WINDOW = max(S.FEATURE_WINDOWS)


def day_index(day: Column) -> Column:
    """Days since 1970-01-01: the ordering key of every trailing window."""
    return F.datediff(day, F.lit("1970-01-01").cast("date"))


def is_engagement(event_type: Column) -> Column:
    return event_type.isin(list(S.ENGAGEMENT_TYPES))


def events_between(events: DataFrame, *, start: date, end: date) -> DataFrame:
    """Events with ``start <= event_date <= end`` (both inclusive)."""
    return events.filter(F.col(C.EVENT_DATE).between(F.lit(start), F.lit(end)))


def user_daily(events: DataFrame) -> DataFrame:
    """One row per (network, user, day): what the user sent and what others did to them.

    Requires the ``silver_events`` columns; profile rows are ignored.
    Returns ``USER_DAILY_SCHEMA`` columns.
    """
    require_columns(events, [C.NETWORK, C.EVENT_TYPE, C.ACTOR_ID, C.SUBJECT_ID, C.EVENT_DATE], where="user_daily")
    interactions = events.filter(F.col(C.EVENT_TYPE) != S.PROFILE)
    sent = interactions.groupBy(C.NETWORK, F.col(C.ACTOR_ID).alias(C.USER_ID), C.EVENT_DATE).agg(
        *[_count_type(event_type, name) for event_type, name in S.DAILY_SENT_BY_TYPE],
        F.count(F.when(is_engagement(F.col(C.EVENT_TYPE)), 1)).alias(S.ENGAGEMENTS_SENT),
    )
    # Self-interactions (replying to oneself) are not engagement received.
    received_rows = interactions.filter(
        F.col(C.SUBJECT_ID).isNotNull() & (F.col(C.SUBJECT_ID) != F.col(C.ACTOR_ID))
    )
    engaged = is_engagement(F.col(C.EVENT_TYPE))
    received = received_rows.groupBy(C.NETWORK, F.col(C.SUBJECT_ID).alias(C.USER_ID), C.EVENT_DATE).agg(
        *[_count_type(event_type, name) for event_type, name in S.DAILY_RECEIVED_BY_TYPE],
        F.count(F.when(engaged, 1)).alias(S.ENGAGEMENTS_RECEIVED),
        F.count_distinct(F.when(engaged, F.col(C.ACTOR_ID))).alias(S.ENGAGERS),
        F.count_distinct(F.when(engaged, F.col(C.PARENT_POST_ID))).alias(S.POSTS_ENGAGED),
    )
    keys = [C.NETWORK, C.USER_ID, C.EVENT_DATE]
    counts = [f.name for f in S.USER_DAILY_SCHEMA.fields if f.name not in keys]
    return (
        sent.join(received, on=keys, how="full")
        .fillna(0, subset=counts)
        .select(*S.USER_DAILY_SCHEMA.fieldNames())
    )


def _count_type(event_type: str, alias: str) -> Column:
    return F.count(F.when(F.col(C.EVENT_TYPE) == event_type, 1)).alias(alias)


def windowed_features(
    daily: DataFrame, spark: SparkSession, as_of_dates: Sequence[date], *, half_life_days: float, inactive_days: int
) -> DataFrame:
    """Trailing 7/30/90-day sums and decayed sums of ``user_daily`` for each ``as_of``.

    Parameters
    ----------
    daily
        ``user_daily`` rows; only those with ``event_date <= as_of`` count for an ``as_of``.
    as_of_dates
        The dates to compute; one row per account active in the 90 days up to each.
    half_life_days
        Half-life of the ``*_decayed`` sums (over the 90-day frame).
    inactive_days
        Length of the window used for ``own_activity`` (the inactivity flag).

    Returns
    -------
    DataFrame
        ``as_of``, ``network``, ``user_id``, every ``WINDOW_FEATURES`` column,
        ``active_days_30d`` (days with any event sent) and ``own_activity``
        (posts and engagements sent in ``inactive_days``; follows alone are not activity).

    Notes
    -----
    A spine row (all counts zero) is added at each ``as_of`` for each account
    with activity in its window, so that every frame ends exactly at ``as_of``
    even on days the account did nothing. Decayed sums are computed as
    ``sum(x * 2^((day - base)/h)) * 2^(-(as_of - base)/h)`` over the frame, with
    ``base`` the earliest day of the run: exact, and no per-row exponent grows
    with the calendar.
    """
    if not as_of_dates:
        raise InputError("windowed_features: as_of_dates must not be empty")
    dates = sorted(set(as_of_dates))
    base_day = (dates[0] - timedelta(days=LONGEST_WINDOW)) - date(1970, 1, 1)
    as_of_df = spark.createDataFrame([(d,) for d in dates], T.StructType([T.StructField(C.AS_OF, T.DateType())]))
    in_range = daily.filter(
        F.col(C.EVENT_DATE).between(F.lit(dates[0] - timedelta(days=LONGEST_WINDOW - 1)), F.lit(dates[-1]))
    ).withColumn(C.DAY_INDEX, day_index(F.col(C.EVENT_DATE)))
    within_window = (F.col(C.EVENT_DATE) <= F.col(C.AS_OF)) & (
        F.col(C.EVENT_DATE) > F.date_sub(F.col(C.AS_OF), LONGEST_WINDOW)
    )
    spine = (
        in_range.select(C.NETWORK, C.USER_ID, C.EVENT_DATE)
        .join(F.broadcast(as_of_df), on=within_window, how="inner")
        .select(C.NETWORK, C.USER_ID, C.AS_OF)
        .distinct()
    )
    sent_total = sum((F.col(n) for n in S.DAILY_SENT), F.lit(0))
    activity_total = sum((F.col(n) for n in S.ACTIVITY_SENT), F.lit(0))
    measures = [*S.FEATURE_MEASURES, "sent_total", "activity_total"]
    facts = in_range.select(
        C.NETWORK,
        C.USER_ID,
        C.DAY_INDEX,
        *[F.col(m).cast("double").alias(m) for m in S.FEATURE_MEASURES],
        sent_total.cast("double").alias("sent_total"),
        activity_total.cast("double").alias("activity_total"),
        F.lit(None).cast("date").alias(C.AS_OF),
    )
    anchors = spine.select(
        C.NETWORK,
        C.USER_ID,
        day_index(F.col(C.AS_OF)).alias(C.DAY_INDEX),
        *[F.lit(0.0).alias(m) for m in measures],
        C.AS_OF,
    )
    by_user = Window.partitionBy(C.NETWORK, C.USER_ID).orderBy(C.DAY_INDEX)

    def trailing(days: int) -> Window:
        return by_user.rangeBetween(-(days - 1), Window.currentRow)

    growth = F.pow(F.lit(2.0), (F.col(C.DAY_INDEX) - base_day.days) / half_life_days)
    decay_to_as_of = F.pow(F.lit(2.0), -(F.col(C.DAY_INDEX) - base_day.days) / half_life_days)
    active_day = F.when(F.col("sent_total") > 0, 1.0).otherwise(0.0)
    windowed = facts.unionByName(anchors).select(
        C.AS_OF,
        C.NETWORK,
        C.USER_ID,
        *[
            F.sum(m).over(trailing(w)).alias(f"{m}_{w}d")
            for m in S.FEATURE_MEASURES
            for w in S.FEATURE_WINDOWS
        ],
        *[
            (F.sum(F.col(m) * growth).over(trailing(LONGEST_WINDOW)) * decay_to_as_of).alias(f"{m}_decayed")
            for m in S.FEATURE_MEASURES
        ],
        # Spine rows carry zeros, so counting days with activity counts real days only.
        F.sum(active_day).over(trailing(30)).cast("long").alias(S.ACTIVE_DAYS_30D),
        F.sum("activity_total").over(trailing(inactive_days)).alias("own_activity"),
    )
    return windowed.filter(F.col(C.AS_OF).isNotNull())


def latest_profiles(profiles: DataFrame, as_of: date) -> DataFrame:
    """The newest profile snapshot per account taken before the end of ``as_of``."""
    newest_first = Window.partitionBy(C.NETWORK, C.USER_ID).orderBy(
        F.col(C.SNAPSHOT_TS).desc(), F.col(C.EVENT_ID).desc()
    )
    return (
        profiles.filter(F.to_date(C.SNAPSHOT_TS) <= F.lit(as_of))
        .withColumn("_n", F.row_number().over(newest_first))
        .filter(F.col("_n") == 1)
        .select(
            C.NETWORK,
            C.USER_ID,
            C.FOLLOWERS_COUNT,
            C.FOLLOWING_COUNT,
            C.LISTED_COUNT,
            C.ACCOUNT_CREATED_AT,
            C.VERIFIED,
        )
    )


def with_quality_flags(
    features: DataFrame,
    *,
    spam_max_engagements_per_day: float,
    spam_max_follows_30d: int,
    spam_min_follow_back: float,
    spam_min_output_30d: float,
    spam_max_response_rate: float,
    new_account_days: int,
) -> DataFrame:
    """Add ``is_inactive``, ``is_spam_like``, ``is_new_account`` and ``is_genuine`` (none of them).

    Requires the windowed features, ``own_activity``, ``account_age_days`` and
    the profile columns.

    - Inactive: no posts and no engagement in the inactivity window (follows
      alone do not make an account active).
    - Spam-like: more engagements sent per active day than allowed; or mass
      following that few follow back (follow churn); or an unanswered
      broadcaster: at least ``spam_min_output_30d`` posts and engagements sent
      in 30 days, drawing fewer than ``spam_max_response_rate`` engagements
      received per item sent (bots spraying likes and mentions at random
      accounts; real people that active get answered).
    - New: an account younger than ``new_account_days`` (sybil farms and bought
      followers are fresh accounts). Unknown age is not new.

    Only genuine accounts' engagement counts toward anyone's reach, topics and rank.
    """
    per_active_day = F.col(f"{S.ENGAGEMENTS_SENT}_30d") / F.greatest(F.col(S.ACTIVE_DAYS_30D), F.lit(1))
    followers = F.coalesce(F.col(C.FOLLOWERS_COUNT), F.lit(0))
    following = F.coalesce(F.col(C.FOLLOWING_COUNT), F.col("follows_sent_30d"))
    follow_back = followers / F.greatest(following, F.lit(1))
    output = F.col(f"{S.ENGAGEMENTS_SENT}_30d") + F.col("posts_sent_30d")
    engagement_flood = per_active_day > spam_max_engagements_per_day
    follow_churn = (F.col("follows_sent_30d") > spam_max_follows_30d) & (follow_back < spam_min_follow_back)
    unanswered_broadcast = (output >= spam_min_output_30d) & (
        F.col(f"{S.ENGAGEMENTS_RECEIVED}_30d") < spam_max_response_rate * output
    )
    new_account = F.coalesce(F.col(S.ACCOUNT_AGE_DAYS) < new_account_days, F.lit(False))
    return (
        features.withColumn(S.IS_INACTIVE, F.col("own_activity") <= 0)
        .withColumn(S.IS_SPAM_LIKE, engagement_flood | follow_churn | unanswered_broadcast)
        .withColumn(S.IS_NEW_ACCOUNT, new_account)
        .withColumn(S.IS_GENUINE, genuine(F.col(S.IS_INACTIVE), F.col(S.IS_SPAM_LIKE), F.col(S.IS_NEW_ACCOUNT)))
    )


def genuine(is_inactive: Column, is_spam_like: Column, is_new_account: Column) -> Column:
    """An account whose engagement counts: not inactive, not spam-like, not new."""
    return ~is_inactive & ~is_spam_like & ~is_new_account


def with_follower_boost_flag(features: DataFrame, *, min_follows_30d: float, max_follows_per_engager: float) -> DataFrame:
    """Add ``is_follower_boosted``: followers rising with no engagement to match (bought followers).

    Requires ``follows_received_30d`` and ``genuine_engagers_30d``. Flagged when
    at least ``min_follows_30d`` new follows arrived in 30 days and more than
    ``max_follows_per_engager`` per genuine engager (plus one). A boosted
    account's follower count is not trusted (True Reach ignores it).
    """
    follows = F.col("follows_received_30d")
    boosted = (follows >= min_follows_30d) & (
        follows > max_follows_per_engager * (F.col(S.GENUINE_ENGAGERS_30D) + 1)
    )
    return features.withColumn(S.IS_FOLLOWER_BOOSTED, boosted)


def genuine_engagement(events: DataFrame, flags: DataFrame, as_of: date, *, half_life_days: float) -> DataFrame:
    """Engagement each account received from genuine engagers, as of ``as_of``.

    Parameters
    ----------
    events
        ``silver_events``; only engagement events up to ``as_of`` are used.
    flags
        ``network``, ``user_id``, ``is_genuine`` as of ``as_of`` (the engagers' flags).

    Returns
    -------
    DataFrame
        ``network``, ``user_id`` and ``genuine_engagers_30d`` (distinct),
        ``mutual_engagers_30d`` (those of them the account engaged in return in
        the same 30 days: pods trade engagement, audiences don't),
        ``amplified_posts_30d`` (distinct own posts reshared, quoted or replied
        to), ``genuine_reshares_30d`` and ``genuine_engagements_decayed`` (90
        days; each act weighs ``1 / acts of that engager that day``, so the more
        an engager acts in a day, the less each act counts).
    """
    engager_flags = flags.select(C.NETWORK, F.col(C.USER_ID).alias(C.ACTOR_ID), S.IS_GENUINE)
    window_start = as_of - timedelta(days=LONGEST_WINDOW - 1)
    all_engagements = events_between(events, start=window_start, end=as_of).filter(
        is_engagement(F.col(C.EVENT_TYPE)) & (F.col(C.SUBJECT_ID) != F.col(C.ACTOR_ID))
    )
    engager_day = Window.partitionBy(C.NETWORK, C.ACTOR_ID, C.EVENT_DATE)
    engagements = (
        all_engagements.withColumn("_acts_that_day", F.count(F.lit(1)).over(engager_day))
        .join(engager_flags, on=[C.NETWORK, C.ACTOR_ID], how="inner")
        .filter(F.col(S.IS_GENUINE))
    )
    in_30d = F.col(C.EVENT_DATE) > F.lit(as_of - timedelta(days=30))
    returned = (
        all_engagements.filter(in_30d)
        .select(C.NETWORK, F.col(C.ACTOR_ID).alias(C.SUBJECT_ID), F.col(C.SUBJECT_ID).alias(C.ACTOR_ID))
        .distinct()
        .withColumn("_returned", F.lit(True))
    )
    amplifying = F.col(C.EVENT_TYPE).isin(S.RESHARE, S.QUOTE, S.REPLY)
    resharing = F.col(C.EVENT_TYPE).isin(S.RESHARE, S.QUOTE)
    mutual = F.coalesce(F.col("_returned"), F.lit(False))
    age = F.datediff(F.lit(as_of), F.col(C.EVENT_DATE))
    return (
        engagements.join(returned, on=[C.NETWORK, C.SUBJECT_ID, C.ACTOR_ID], how="left")
        .groupBy(C.NETWORK, F.col(C.SUBJECT_ID).alias(C.USER_ID))
        .agg(
            F.count_distinct(F.when(in_30d, F.col(C.ACTOR_ID))).alias(S.GENUINE_ENGAGERS_30D),
            F.count_distinct(F.when(in_30d & mutual, F.col(C.ACTOR_ID))).alias(S.MUTUAL_ENGAGERS_30D),
            F.count_distinct(F.when(in_30d & amplifying, F.col(C.PARENT_POST_ID))).alias(S.AMPLIFIED_POSTS_30D),
            F.count(F.when(in_30d & resharing, 1)).alias(S.GENUINE_RESHARES_30D),
            F.sum(F.pow(F.lit(0.5), age / half_life_days) / F.col("_acts_that_day")).alias(
                S.GENUINE_ENGAGEMENTS_DECAYED
            ),
        )
    )


def user_features(
    spark: SparkSession,
    daily: DataFrame,
    events: DataFrame,
    profiles: DataFrame,
    as_of: date,
    *,
    half_life_days: float,
    inactive_days: int,
    spam_max_engagements_per_day: float,
    spam_max_follows_30d: int,
    spam_min_follow_back: float,
    spam_min_output_30d: float,
    spam_max_response_rate: float,
    new_account_days: int,
    boost_min_follows_30d: float,
    boost_max_follows_per_engager: float,
) -> DataFrame:
    """All features of every account active in the 90 days up to ``as_of``.

    Returns ``USER_FEATURES_SCHEMA`` columns.
    """
    windowed = windowed_features(daily, spark, [as_of], half_life_days=half_life_days, inactive_days=inactive_days)
    profile = latest_profiles(profiles, as_of)
    flagged = (
        windowed.join(profile, on=[C.NETWORK, C.USER_ID], how="left")
        .withColumn(S.ACCOUNT_AGE_DAYS, F.datediff(F.lit(as_of), F.to_date(C.ACCOUNT_CREATED_AT)).cast("long"))
        .transform(
            with_quality_flags,
            spam_max_engagements_per_day=spam_max_engagements_per_day,
            spam_max_follows_30d=spam_max_follows_30d,
            spam_min_follow_back=spam_min_follow_back,
            spam_min_output_30d=spam_min_output_30d,
            spam_max_response_rate=spam_max_response_rate,
            new_account_days=new_account_days,
        )
    )
    received = genuine_engagement(events, flagged, as_of, half_life_days=half_life_days)
    counts = [
        S.GENUINE_ENGAGERS_30D,
        S.MUTUAL_ENGAGERS_30D,
        S.AMPLIFIED_POSTS_30D,
        S.GENUINE_RESHARES_30D,
        S.GENUINE_ENGAGEMENTS_DECAYED,
    ]
    return (
        flagged.join(received, on=[C.NETWORK, C.USER_ID], how="left")
        .fillna(0, subset=counts)
        .transform(
            with_follower_boost_flag,
            min_follows_30d=boost_min_follows_30d,
            max_follows_per_engager=boost_max_follows_per_engager,
        )
        .select(*S.USER_FEATURES_SCHEMA.fieldNames())
    )


def genuine_flags(features: DataFrame) -> DataFrame:
    """``network``, ``user_id``, ``is_genuine`` from stored ``user_features`` rows."""
    flag = genuine(F.col(S.IS_INACTIVE), F.col(S.IS_SPAM_LIKE), F.col(S.IS_NEW_ACCOUNT))
    return features.select(C.NETWORK, C.USER_ID, flag.alias(S.IS_GENUINE))
