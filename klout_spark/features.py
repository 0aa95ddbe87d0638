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
from klout_spark.date_vectors import (
    REVERSE_SUFFIX,
    DateVectors,
    at_slot,
    combined_with_reverse,
    flag_at_slot,
)
from klout_spark.errors import InputError, require_columns

LONGEST_WINDOW = max(S.FEATURE_WINDOWS)
# Decayed engagement is summed in whole units of 2^-30 (about 1e-9): integer sums are exact, so
# their order (partitioning, the dates computed together) cannot change a bit of the result.
DECAYED_UNITS = float(2**30)
# Column of the dates an engager is genuine on (see genuine_dates_by_engager).
GENUINE_DATES = "_genuine_dates"


EPOCH = date(1970, 1, 1)
# Largest exponent of 2 the decayed window sums use (doubles overflow past 2^1023).
MAX_DECAY_EXPONENT = 900


def decay_block_days(half_life_days: float) -> int:
    """Length of the calendar blocks that fix the base of the decayed window sums.

    As long as the exponents stay below ``MAX_DECAY_EXPONENT`` (for the default
    half-life of 14 days, blocks of about 34 years), and never below the longest
    window.
    """
    return max(LONGEST_WINDOW, int(half_life_days * MAX_DECAY_EXPONENT) - LONGEST_WINDOW)


def day_index(day: Column) -> Column:
    """Days since 1970-01-01: the ordering key of every trailing window."""
    return F.datediff(day, F.lit("1970-01-01").cast("date"))


def is_engagement(event_type: Column) -> Column:
    return event_type.isin(list(S.ENGAGEMENT_TYPES))


def events_between(events: DataFrame, *, start: date, end: date) -> DataFrame:
    """Events with ``start <= event_date <= end`` (both inclusive)."""
    return events.filter(F.col(C.EVENT_DATE).between(F.lit(start), F.lit(end)))


def as_of_frame(spark: SparkSession, as_of_dates: Sequence[date]) -> DataFrame:
    """One row per distinct date of ``as_of_dates``: column ``as_of`` (the spine of a multi-date pass)."""
    if not as_of_dates:
        raise InputError("as_of_dates must not be empty")
    schema = T.StructType([T.StructField(C.AS_OF, T.DateType(), nullable=False)])
    return spark.createDataFrame([(d,) for d in sorted(set(as_of_dates))], schema)


def in_trailing_window(as_of: Column, day: Column, window_days: int) -> Column:
    """``as_of``'s trailing ``window_days`` window holds ``day``: ``as_of - window_days < day <= as_of``."""
    return (as_of >= day) & (as_of < F.date_add(day, window_days))


def genuine_in_window(as_of: Column, window_days: int) -> Column:
    """On ``as_of`` the row's engager is genuine (its ``_genuine_dates`` hold it) and its ``event_date`` in the window.

    For rows joined to :func:`genuine_dates_by_engager`.
    """
    return F.array_contains(GENUINE_DATES, as_of) & in_trailing_window(as_of, F.col(C.EVENT_DATE), window_days)


def genuine_dates_by_engager(flags: DataFrame, as_of_dates: Sequence[date]) -> DataFrame:
    """``network``, ``actor_id`` and the list of dates of ``as_of_dates`` on which that account is genuine.

    One row per account genuine on at least one of the dates (``flags``:
    ``as_of``, ``network``, ``user_id``, ``is_genuine``).
    """
    return (
        flags.filter(F.col(S.IS_GENUINE) & F.col(C.AS_OF).isin(sorted(set(as_of_dates))))
        .groupBy(C.NETWORK, F.col(C.USER_ID).alias(C.ACTOR_ID))
        .agg(F.collect_list(C.AS_OF).alias(GENUINE_DATES))
    )


def with_as_of(df: DataFrame, as_of: date) -> DataFrame:
    """``df`` with column ``as_of`` set to ``as_of`` when it has no such column (one-date callers)."""
    return df if C.AS_OF in df.columns else df.withColumn(C.AS_OF, F.lit(as_of))


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
    daily: DataFrame, as_of_dates: Sequence[date], *, half_life_days: float, inactive_days: int
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
    ``sum(x * 2^((day - base)/h)) * 2^(-(as_of - base)/h)`` over the frame:
    exact, and no per-row exponent grows with the calendar. ``base`` depends on
    ``as_of`` alone (the start of its calendar block of :func:`decay_block_days`
    days, minus 90), never on which other dates are computed with it, so one
    date computed alone (a daily run) or among many (a backfill) gives the same
    bits. Rows are windowed per account and block; a day near a block's end is
    also copied into the next block.
    """
    if not as_of_dates:
        raise InputError("windowed_features: as_of_dates must not be empty")
    dates = sorted(set(as_of_dates))
    block_days = decay_block_days(half_life_days)
    blocks = sorted({(d - EPOCH).days // block_days for d in dates})
    in_range = daily.filter(
        F.col(C.EVENT_DATE).between(F.lit(dates[0] - timedelta(days=LONGEST_WINDOW - 1)), F.lit(dates[-1]))
    ).withColumn(C.DAY_INDEX, day_index(F.col(C.EVENT_DATE)))
    # The (account, as_of) pairs with activity in the as_of's 90 days: a vector of flags per account,
    # exploded once, rather than each active day copied to every as_of whose window holds it.
    vectors = DateVectors(dates)
    active = vectors.flags(lambda day: in_trailing_window(day, F.col(C.EVENT_DATE), LONGEST_WINDOW))
    spine = (
        in_range.select(C.NETWORK, C.USER_ID, active.alias("_active"))
        .groupBy(C.NETWORK, C.USER_ID)
        .agg(vectors.any_of(F.col("_active")).alias("_active"))
        .select(C.NETWORK, C.USER_ID, "_active", vectors.explode())
        .filter(flag_at_slot("_active") == 1)
        .select(C.NETWORK, C.USER_ID, vectors.as_of())
    )
    sent_total = sum((F.col(n) for n in S.DAILY_SENT), F.lit(0))
    activity_total = sum((F.col(n) for n in S.ACTIVITY_SENT), F.lit(0))
    measures = [*S.FEATURE_MEASURES, "sent_total", "activity_total"]
    # A day counts for the as_of dates up to 89 days later: its own block and possibly the next.
    day_blocks = F.array_distinct(
        F.array(
            F.floor(F.col(C.DAY_INDEX) / block_days).cast("long"),
            F.floor((F.col(C.DAY_INDEX) + (LONGEST_WINDOW - 1)) / block_days).cast("long"),
        )
    )
    facts = in_range.select(
        C.NETWORK,
        C.USER_ID,
        C.DAY_INDEX,
        *[F.col(m).cast("double").alias(m) for m in S.FEATURE_MEASURES],
        sent_total.cast("double").alias("sent_total"),
        activity_total.cast("double").alias("activity_total"),
        F.lit(None).cast("date").alias(C.AS_OF),
        F.explode(day_blocks).alias("_block"),
    ).filter(F.col("_block").isin(blocks))
    anchors = spine.select(
        C.NETWORK,
        C.USER_ID,
        day_index(F.col(C.AS_OF)).alias(C.DAY_INDEX),
        *[F.lit(0.0).alias(m) for m in measures],
        C.AS_OF,
        F.floor(day_index(F.col(C.AS_OF)) / block_days).cast("long").alias("_block"),
    )
    by_user = Window.partitionBy(C.NETWORK, C.USER_ID, "_block").orderBy(C.DAY_INDEX)

    def trailing(days: int) -> Window:
        return by_user.rangeBetween(-(days - 1), Window.currentRow)

    base_day = F.col("_block") * block_days - LONGEST_WINDOW
    growth = F.pow(F.lit(2.0), (F.col(C.DAY_INDEX) - base_day) / half_life_days)
    decay_to_as_of = F.pow(F.lit(2.0), -(F.col(C.DAY_INDEX) - base_day) / half_life_days)
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


def latest_profiles_by_as_of(profiles: DataFrame, as_of_dates: DataFrame) -> DataFrame:
    """The newest profile snapshot per account and ``as_of`` of ``as_of_dates``, taken before the end of it.

    Each snapshot is the newest from its day until the day of the account's
    next snapshot (ordered by ``snapshot_ts``, then ``event_id``), so it is
    joined only to the dates of that span: never copied to every later date.
    """
    in_order = Window.partitionBy(C.NETWORK, C.USER_ID).orderBy(F.col(C.SNAPSHOT_TS), F.col(C.EVENT_ID))
    snapshot_day = F.to_date(C.SNAPSHOT_TS)
    kept = [C.FOLLOWERS_COUNT, C.FOLLOWING_COUNT, C.LISTED_COUNT, C.ACCOUNT_CREATED_AT, C.VERIFIED]
    spans = profiles.select(
        C.NETWORK,
        C.USER_ID,
        *kept,
        snapshot_day.alias("_from"),
        F.lead(snapshot_day).over(in_order).alias("_until"),
    )
    newest = (F.col(C.AS_OF) >= F.col("_from")) & (F.col("_until").isNull() | (F.col(C.AS_OF) < F.col("_until")))
    return spans.join(F.broadcast(as_of_dates), on=newest, how="inner").select(C.AS_OF, C.NETWORK, C.USER_ID, *kept)


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


def genuine_engagement_by_as_of(
    events: DataFrame, flags: DataFrame, as_of_dates: Sequence[date], *, half_life_days: float
) -> DataFrame:
    """Engagement each account received from genuine engagers, for every date of ``as_of_dates``.

    Parameters
    ----------
    events
        ``silver_events``; for each ``as_of`` only engagement events of the 90 days up to it are used.
    flags
        ``as_of``, ``network``, ``user_id``, ``is_genuine``: the engagers' flags as of each date.

    Returns
    -------
    DataFrame
        ``as_of``, ``network``, ``user_id`` and ``genuine_engagers_30d`` (distinct),
        ``mutual_engagers_30d`` (those of them the account engaged in return in
        the same 30 days up to ``as_of``: pods trade engagement, audiences don't),
        ``amplified_posts_30d`` (distinct own posts reshared, quoted or replied
        to), ``genuine_reshares_30d`` and ``genuine_engagements_decayed`` (90
        days; each act weighs ``1 / acts of that engager that day``, so the more
        an engager acts in a day, the less each act counts).

    Notes
    -----
    The dates are not expanded into rows: each row carries a vector with one
    slot per date of ``as_of_dates`` (in order). The engagements are counted
    per engager, author and day (with the engager's acts that whole day, which
    do not depend on ``as_of``); each such row gets its vectors (did it fall in
    the 30 days up to date *i* while its engager was genuine, its decayed
    weight at date *i*). The flags (a bit per date: see
    :mod:`klout_spark.date_vectors`) are combined per (author, engager), then
    counted per author; the sums are summed per author from the day rows
    directly. Only the result is exploded to one row per ``as_of``
    (an author gets a row for a date when a genuine engager engaged it in the
    90 days up to that date). So the work grows with the engagements, not with
    the engagements times the dates. The mutual pairs are taken per ``as_of``
    from its own 30-day window. Each term of the decayed sum is rounded up to
    a whole number of ``1 / DECAYED_UNITS`` and the terms are summed as
    integers: exact, so the value does not depend on how rows are partitioned
    or on which dates are computed together (a backfill and a daily run give
    the same bits), and a positive term never rounds to zero.
    """
    vectors = DateVectors(as_of_dates)
    dates = vectors.dates
    all_engagements = events_between(
        events, start=dates[0] - timedelta(days=LONGEST_WINDOW - 1), end=dates[-1]
    ).filter(is_engagement(F.col(C.EVENT_TYPE)) & (F.col(C.SUBJECT_ID) != F.col(C.ACTOR_ID)))
    # One shuffle by engager serves the day's count (partitioned by engager and day), the grouping
    # per (author, engager, day) and the join with the engager's flags (30 L dates: 77 s, not 82 s).
    by_engager = all_engagements.repartition(C.NETWORK, C.ACTOR_ID)
    genuine_dates = genuine_dates_by_engager(flags, dates)

    pair = [C.NETWORK, C.SUBJECT_ID, C.ACTOR_ID]

    def decayed_term(day: Column) -> Column:
        age = F.datediff(day, F.col(C.EVENT_DATE))
        return F.col("_n") * F.pow(F.lit(0.5), age / half_life_days) / F.col("_acts")

    engager_day = Window.partitionBy(C.NETWORK, C.ACTOR_ID, C.EVENT_DATE)
    pair_days = (
        by_engager.withColumn("_acts", F.count(F.lit(1)).over(engager_day))
        .groupBy(*pair, C.EVENT_DATE, "_acts")
        .agg(
            F.count(F.lit(1)).alias("_n"),
            F.count(F.when(F.col(C.EVENT_TYPE).isin(S.RESHARE, S.QUOTE), 1)).alias("_reshares"),
        )
        .join(genuine_dates, on=[C.NETWORK, C.ACTOR_ID], how="left")
        # An engager without flags is never genuine.
        .withColumn(GENUINE_DATES, F.coalesce(F.col(GENUINE_DATES), F.array().cast("array<date>")))
    )
    day_vectors = pair_days.select(
        *pair,
        vectors.flags(lambda day: genuine_in_window(day, 30)).alias("_genuine_30d"),
        vectors.flags(lambda day: in_trailing_window(day, F.col(C.EVENT_DATE), 30)).alias("_any_30d"),
        vectors.per_date(
            lambda day: F.when(genuine_in_window(day, 30), F.col("_reshares")).otherwise(0).cast("long")
        ).alias("_reshares_30d"),
        vectors.per_date(
            lambda day: F.when(
                genuine_in_window(day, LONGEST_WINDOW),
                F.ceil(decayed_term(day) * DECAYED_UNITS),
            ).otherwise(0).cast("long")
        ).alias("_decayed"),
    )
    # Sums need no pairs: summed per author straight from the day rows. So the day rows are computed
    # twice (Spark reuses no shuffle: pruning gives the two aggregates different inputs). Carrying the
    # sums through the pair grouping instead (`own` of combined_with_reverse) makes one pass: at L it
    # was 8-10 % faster for one date but 8-9 % slower for 30 dates, whose sums (a long per date) the
    # pair grouping then holds per pair. The backfill is the slower of the two, so the sums stay apart.
    sums = day_vectors.groupBy(C.NETWORK, C.SUBJECT_ID).agg(
        vectors.summed(F.col("_reshares_30d")).alias("_reshares"),
        vectors.summed(F.col("_decayed")).alias("_decayed"),
    )
    # Distinct engagers need one row per (author, engager), with flags only: engaged in the 30 days
    # up to each date while genuine? And did the author engage that engager in return in the same
    # 30 days (by anyone's flags: returning engagement is what pods do)? That is the reverse pair's
    # _any_30d.
    pairs = combined_with_reverse(
        day_vectors, key=C.NETWORK, source=C.SUBJECT_ID, target=C.ACTOR_ID,
        merges={"_genuine_30d": vectors.any_of, "_any_30d": vectors.any_of},
    )
    per_author = (
        pairs.withColumn("_mutual", vectors.both(F.col("_genuine_30d"), F.col("_any_30d" + REVERSE_SUFFIX)))
        .groupBy(C.NETWORK, C.SUBJECT_ID)
        .agg(
            vectors.count_flags(F.col("_genuine_30d")).alias("_engagers"),
            vectors.count_flags(F.col("_mutual")).alias("_mutual"),
        )
        # Both sides have the same authors: those of the day rows.
        .join(sums, on=[C.NETWORK, C.SUBJECT_ID], how="inner")
    )
    # Distinct own posts amplified per date: a vector per (author, post), then counted per author.
    amplified = (
        all_engagements.filter(F.col(C.EVENT_TYPE).isin(S.RESHARE, S.QUOTE, S.REPLY))
        .join(genuine_dates, on=[C.NETWORK, C.ACTOR_ID], how="inner")
        .withColumn("_posts", vectors.flags(lambda day: genuine_in_window(day, 30)))
        .groupBy(C.NETWORK, C.SUBJECT_ID, C.PARENT_POST_ID)
        .agg(vectors.any_of(F.col("_posts")).alias("_posts"))
        .groupBy(C.NETWORK, C.SUBJECT_ID)
        .agg(vectors.count_flags(F.col("_posts")).alias("_posts"))
        .select("*", vectors.explode())
        .filter(at_slot("_posts") > 0)
        .select(
            vectors.as_of(), C.NETWORK, F.col(C.SUBJECT_ID).alias(C.USER_ID),
            at_slot("_posts").alias(S.AMPLIFIED_POSTS_30D),
        )
    )
    return (
        per_author.select("*", vectors.explode())
        # A term of the decayed sum is positive exactly when a genuine engagement is in the 90 days.
        .filter(at_slot("_decayed") > 0)
        .select(
            vectors.as_of(),
            C.NETWORK,
            F.col(C.SUBJECT_ID).alias(C.USER_ID),
            at_slot("_engagers").alias(S.GENUINE_ENGAGERS_30D),
            at_slot("_mutual").alias(S.MUTUAL_ENGAGERS_30D),
            at_slot("_reshares").alias(S.GENUINE_RESHARES_30D),
            (at_slot("_decayed") / DECAYED_UNITS).alias(S.GENUINE_ENGAGEMENTS_DECAYED),
        )
        # Joined after the explode: indexing a vector that an outer join left null hit a
        # null-pointer error in Spark's generated code (coalescing it first is safe).
        .join(amplified, on=[C.AS_OF, C.NETWORK, C.USER_ID], how="left")
        .fillna(0, subset=[S.AMPLIFIED_POSTS_30D])
        .select(
            C.AS_OF, C.NETWORK, C.USER_ID, S.GENUINE_ENGAGERS_30D, S.MUTUAL_ENGAGERS_30D,
            S.AMPLIFIED_POSTS_30D, S.GENUINE_RESHARES_30D, S.GENUINE_ENGAGEMENTS_DECAYED,
        )
    )


def user_features(
    spark: SparkSession,
    daily: DataFrame,
    events: DataFrame,
    profiles: DataFrame,
    as_of: date,
    **params: float,
) -> DataFrame:
    """All features of every account active in the 90 days up to ``as_of``.

    The one-date form of :func:`user_features_by_as_of` (same parameters).
    Returns ``USER_FEATURES_SCHEMA`` columns.
    """
    return user_features_by_as_of(spark, daily, events, profiles, [as_of], **params)


def user_features_by_as_of(
    spark: SparkSession,
    daily: DataFrame,
    events: DataFrame,
    profiles: DataFrame,
    as_of_dates: Sequence[date],
    *,
    half_life_days: float,
    boost_min_follows_30d: float,
    boost_max_follows_per_engager: float,
    **flag_params: float,
) -> DataFrame:
    """All features of every account active in the 90 days up to each date of ``as_of_dates``, in one pass.

    :func:`flagged_features_by_as_of` then :func:`with_genuine_engagement`
    (``flag_params``: the former's quality-flag parameters). Returns
    ``USER_FEATURES_SCHEMA`` columns. The flagged rows are computed twice in
    this plan (they feed both the engagers' flags and the result): callers
    that run it on much data cache them between the two steps instead.
    """
    flagged = flagged_features_by_as_of(
        spark, daily, profiles, as_of_dates, half_life_days=half_life_days, **flag_params
    )
    return with_genuine_engagement(
        flagged,
        events,
        as_of_dates,
        half_life_days=half_life_days,
        boost_min_follows_30d=boost_min_follows_30d,
        boost_max_follows_per_engager=boost_max_follows_per_engager,
    )


def flagged_features_by_as_of(
    spark: SparkSession,
    daily: DataFrame,
    profiles: DataFrame,
    as_of_dates: Sequence[date],
    *,
    half_life_days: float,
    inactive_days: int,
    spam_max_engagements_per_day: float,
    spam_max_follows_30d: int,
    spam_min_follow_back: float,
    spam_min_output_30d: float,
    spam_max_response_rate: float,
    new_account_days: int,
) -> DataFrame:
    """Window features, profile and quality flags per ``(as_of, account)``: all but the engagement received.

    ``daily`` (``user_daily``) is read once for all dates. Returns the
    :func:`windowed_features` columns, the profile columns, ``account_age_days``
    and the :func:`with_quality_flags` flags.
    """
    windowed = windowed_features(daily, as_of_dates, half_life_days=half_life_days, inactive_days=inactive_days)
    profile = latest_profiles_by_as_of(profiles, as_of_frame(spark, as_of_dates))
    return (
        windowed.join(profile, on=[C.AS_OF, C.NETWORK, C.USER_ID], how="left")
        .withColumn(
            S.ACCOUNT_AGE_DAYS, F.datediff(F.col(C.AS_OF), F.to_date(C.ACCOUNT_CREATED_AT)).cast("long")
        )
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


def with_genuine_engagement(
    flagged: DataFrame,
    events: DataFrame,
    as_of_dates: Sequence[date],
    *,
    half_life_days: float,
    boost_min_follows_30d: float,
    boost_max_follows_per_engager: float,
) -> DataFrame:
    """``flagged`` (from :func:`flagged_features_by_as_of`) with the engagement received from genuine engagers.

    The engagers' flags are those of ``flagged``; adds the
    :func:`genuine_engagement_by_as_of` counts (0 without any) and the
    follower-boost flag. Returns ``USER_FEATURES_SCHEMA`` columns.
    """
    received = genuine_engagement_by_as_of(events, flagged, as_of_dates, half_life_days=half_life_days)
    counts = [
        S.GENUINE_ENGAGERS_30D,
        S.MUTUAL_ENGAGERS_30D,
        S.AMPLIFIED_POSTS_30D,
        S.GENUINE_RESHARES_30D,
        S.GENUINE_ENGAGEMENTS_DECAYED,
    ]
    return (
        flagged.join(received, on=[C.AS_OF, C.NETWORK, C.USER_ID], how="left")
        .fillna(0, subset=counts)
        .transform(
            with_follower_boost_flag,
            min_follows_30d=boost_min_follows_30d,
            max_follows_per_engager=boost_max_follows_per_engager,
        )
        .select(*S.USER_FEATURES_SCHEMA.fieldNames())
    )


def genuine_flags(features: DataFrame) -> DataFrame:
    """``as_of``, ``network``, ``user_id``, ``is_genuine`` from stored ``user_features`` rows.

    ``as_of`` is kept when ``features`` has it (stored rows always do).
    """
    flag = genuine(F.col(S.IS_INACTIVE), F.col(S.IS_SPAM_LIKE), F.col(S.IS_NEW_ACCOUNT))
    keys = [c for c in (C.AS_OF, C.NETWORK, C.USER_ID) if c in features.columns]
    return features.select(*keys, flag.alias(S.IS_GENUINE))
