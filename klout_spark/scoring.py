"""Stage 5: features + network ranks -> ``scores``, ``score_topics``, ``score_explain``.

The model (``model_version``), with every constant from ``conf`` (``score.*``):

- **True Reach** (0-100): ``ln(1 + genuine engagers in 30 days)`` plus weak
  ``ln(1 + followers)`` and ``ln(1 + list memberships)`` terms, over
  ``ln(1 + reach_full_engagers)``. Bots, inactive and new accounts and the
  account itself never count as engagers; an engager the account engages back
  counts ``reach_mutual_weight`` (pods); followers do not count for an account
  flagged ``is_follower_boosted`` (bought followers).
- **Amplification** (0-100): the Bayesian-smoothed probability that a post of
  the account is reshared, quoted or replied to by a genuine engager in 30 days:
  ``(amplified + k*p0) / (posts + k)`` with prior rate ``p0`` over ``k`` pseudo-posts.
- **Network Impact** (0-100): the account's PageRank over the engagement graph
  relative to its network's mean over trusted accounts (trust > 0), ``ln(1 + ratio) / ln(1 + impact_full_ratio)``.
- **Score** (1-100): ``1 + 0.99 * weighted mean`` of the three sub-scores.

These are the *fixed curves*, used while no calibration is stored for the
``model_version``. ``klout-spark calibrate`` stores one (see
:mod:`klout_spark.calibration`): the same raw signals then go through
quantile-fitted curves, and the weighted mean through one more, before
``1 + 0.99 * x``. Either way every curve is a fixed function of the account's
own numbers (no daily re-percentiling), so a score moves only when the
account's activity moves.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark import inflow
from klout_spark import schemas as S
from klout_spark.calibration import SUB_SCORES, Calibration, combined_subscores
from klout_spark.date_vectors import DateVectors, at_slot
from klout_spark.features import (
    events_between,
    genuine,
    genuine_dates_by_engager,
    genuine_in_window,
    in_trailing_window,
    is_engagement,
    with_as_of,
)


def clamp_0_100(value: Column) -> Column:
    return F.least(F.greatest(value, F.lit(0.0)), F.lit(100.0))


def true_reach_raw(*, followers_weight: float, listed_weight: float, mutual_weight: float) -> Column:
    """Raw True Reach (log units) from ``genuine_engagers_30d``, ``mutual_engagers_30d``,
    ``followers_count`` and ``listed_count``.

    Mutual engagers (engaged back by the account) count ``mutual_weight`` each;
    the follower count is ignored when ``is_follower_boosted``.
    """
    engagers = F.col(S.GENUINE_ENGAGERS_30D) - (1.0 - mutual_weight) * F.col(S.MUTUAL_ENGAGERS_30D)
    followers = F.when(F.col(S.IS_FOLLOWER_BOOSTED), F.lit(0)).otherwise(
        F.coalesce(F.col(C.FOLLOWERS_COUNT), F.lit(0))
    )
    return (
        F.log1p(engagers)
        + followers_weight * F.log1p(followers)
        + listed_weight * F.log1p(F.coalesce(F.col(C.LISTED_COUNT), F.lit(0)))
    )


def amplification_rate(*, prior_posts: float, prior_rate: float) -> Column:
    """Smoothed share (0-1) of posts amplified by genuine engagers, from the 30-day post counts."""
    posts = F.col("posts_sent_30d") + F.col("replies_sent_30d") + F.col("quotes_sent_30d")
    amplified = F.least(F.col(S.AMPLIFIED_POSTS_30D).cast("double"), posts)
    return (amplified + prior_posts * prior_rate) / (posts + prior_posts)


def network_impact_raw() -> Column:
    """Raw Network Impact, ``ln(1 + pagerank / network_mean_pagerank)`` (0 outside the graph)."""
    return F.log1p(F.coalesce(F.col(C.PAGERANK) / F.col("network_mean_pagerank"), F.lit(0.0)))


def fixed_ceilings(*, reach_full_engagers: float, impact_full_ratio: float) -> dict[str, float]:
    """Raw value of each sub-score that the fixed curves map to 100."""
    return {
        C.TRUE_REACH: math.log1p(reach_full_engagers),
        C.AMPLIFICATION: 1.0,
        C.NETWORK_IMPACT: math.log1p(impact_full_ratio),
    }


def raw_signals(features: DataFrame, ranks: DataFrame, **params) -> DataFrame:
    """``network``, ``user_id``, ``is_genuine`` and the raw signal of each sub-score, one row per account.

    The one-date form of :func:`raw_signals_by_as_of` (same keyword parameters):
    ``features`` and ``ranks`` hold one ``as_of`` (with or without the column);
    the result has no ``as_of``.
    """
    marker = F.lit(date(1970, 1, 1))
    return raw_signals_by_as_of(
        features.drop(C.AS_OF).withColumn(C.AS_OF, marker), ranks.drop(C.AS_OF).withColumn(C.AS_OF, marker), **params
    ).drop(C.AS_OF)


def raw_signals_by_as_of(
    features: DataFrame,
    ranks: DataFrame,
    *,
    reach_followers_weight: float,
    amplification_prior_posts: float,
    amplification_prior_rate: float,
    reach_listed_weight: float,
    reach_mutual_weight: float,
) -> DataFrame:
    """``as_of``, ``network``, ``user_id``, ``is_genuine`` and the raw signal of each sub-score.

    One row per account and ``as_of`` of ``features`` (``features`` and ``ranks``
    carry ``as_of``; the network mean PageRank is per ``(as_of, network)``). The
    raw signals sit in the sub-score columns (``true_reach``, ``amplification``,
    ``network_impact``); the curves (fixed or calibrated) turn them into 0-100.
    """
    # The mean over trusted accounts only: accounts without trust (flagged, new) add
    # nodes but no mass, and must not inflate everyone's ratio (sybil farms).
    mean_rank = (
        ranks.filter(F.col(C.TRUST) > 0)
        .groupBy(C.AS_OF, C.NETWORK)
        .agg(F.avg(C.PAGERANK).alias("network_mean_pagerank"))
    )
    return (
        features.join(
            ranks.select(C.AS_OF, C.NETWORK, C.USER_ID, C.PAGERANK), on=[C.AS_OF, C.NETWORK, C.USER_ID], how="left"
        )
        .join(F.broadcast(mean_rank), on=[C.AS_OF, C.NETWORK], how="left")
        .select(
            C.AS_OF,
            C.NETWORK,
            C.USER_ID,
            genuine(F.col(S.IS_INACTIVE), F.col(S.IS_SPAM_LIKE), F.col(S.IS_NEW_ACCOUNT)).alias(S.IS_GENUINE),
            true_reach_raw(
                followers_weight=reach_followers_weight,
                listed_weight=reach_listed_weight,
                mutual_weight=reach_mutual_weight,
            ).alias(C.TRUE_REACH),
            amplification_rate(prior_posts=amplification_prior_posts, prior_rate=amplification_prior_rate).alias(
                C.AMPLIFICATION
            ),
            network_impact_raw().alias(C.NETWORK_IMPACT),
        )
    )


def account_scores(
    features: DataFrame, ranks: DataFrame, previous: DataFrame, as_of: date, **params
) -> DataFrame:
    """Score every account in ``features`` (one ``as_of``).

    The one-date form of :func:`account_scores_by_as_of` (same keyword
    parameters), with ``score_delta_7d`` filled in.

    Parameters
    ----------
    features
        ``user_features`` rows for ``as_of``.
    ranks
        ``network_rank`` rows for ``as_of`` (``network``, ``user_id``, ``pagerank``).
    previous
        ``scores`` rows of any dates; the row at ``as_of - 7`` gives ``score_delta_7d``.

    Returns
    -------
    DataFrame
        ``SCORES_SCHEMA`` columns.
    """
    scores = account_scores_by_as_of(with_as_of(features, as_of), with_as_of(ranks, as_of), **params)
    return with_score_delta_7d(scores, previous)


def account_scores_by_as_of(
    features: DataFrame,
    ranks: DataFrame,
    *,
    weights: tuple[float, float, float],
    reach_followers_weight: float,
    reach_listed_weight: float,
    reach_mutual_weight: float,
    reach_full_engagers: float,
    amplification_prior_posts: float,
    amplification_prior_rate: float,
    impact_full_ratio: float,
    model_version: str,
    run_id: str,
    calibration: Calibration | None = None,
) -> DataFrame:
    """Score every account of ``features`` for each of its ``as_of`` dates, without ``score_delta_7d``.

    ``features`` and ``ranks`` carry ``as_of``; sub-scores, ``rank`` and
    ``percentile`` are per ``(as_of, network)``. ``score_delta_7d`` is null here:
    :func:`with_score_delta_7d` fills it from the score history. ``calibration``
    (the stored one of ``model_version``, or ``None`` for the fixed curves) is
    applied alike to every date: its curves are fixed functions of the raw signals.
    ``weights`` of (true_reach, amplification, network_impact) are normalized here.

    Returns ``SCORES_SCHEMA`` columns.
    """
    raw = raw_signals_by_as_of(
        features,
        ranks,
        reach_followers_weight=reach_followers_weight,
        reach_listed_weight=reach_listed_weight,
        reach_mutual_weight=reach_mutual_weight,
        amplification_prior_posts=amplification_prior_posts,
        amplification_prior_rate=amplification_prior_rate,
    )
    if calibration is None:
        ceilings = fixed_ceilings(reach_full_engagers=reach_full_engagers, impact_full_ratio=impact_full_ratio)
        subscores = {c: clamp_0_100(100.0 * F.col(c) / ceilings[c]) for c in SUB_SCORES}
    else:
        subscores = {c: calibration.curves[c].apply(F.col(c)) for c in SUB_SCORES}
    calibrated = raw.select(C.AS_OF, C.NETWORK, C.USER_ID, *[subscores[c].alias(c) for c in SUB_SCORES])
    combined = combined_subscores({c: F.col(c) for c in SUB_SCORES}, weights)
    if calibration is not None:
        combined = calibration.curves[C.SCORE].apply(combined)
    best_first = Window.partitionBy(C.AS_OF, C.NETWORK).orderBy(F.col(C.SCORE).desc(), F.col(C.USER_ID))
    lowest_first = Window.partitionBy(C.AS_OF, C.NETWORK).orderBy(F.col(C.SCORE))
    return (
        calibrated.withColumn(C.SCORE, F.round(1.0 + 0.99 * clamp_0_100(combined), 4))
        .withColumn(C.RANK, F.row_number().over(best_first).cast("long"))
        .withColumn(C.PERCENTILE, F.round(100.0 * F.percent_rank().over(lowest_first), 4))
        .select(
            C.AS_OF,
            C.NETWORK,
            C.USER_ID,
            C.SCORE,
            F.round(C.TRUE_REACH, 4).alias(C.TRUE_REACH),
            F.round(C.AMPLIFICATION, 4).alias(C.AMPLIFICATION),
            F.round(C.NETWORK_IMPACT, 4).alias(C.NETWORK_IMPACT),
            C.RANK,
            C.PERCENTILE,
            F.lit(None).cast("double").alias(C.SCORE_DELTA_7D),
            F.lit(model_version).alias(C.MODEL_VERSION),
            F.lit(run_id).alias(C.RUN_ID),
        )
    )


def with_score_delta_7d(scores: DataFrame, history: DataFrame) -> DataFrame:
    """Set ``score_delta_7d``: the score minus the account's score 7 days before, from ``history``.

    ``history`` holds ``scores`` rows of any dates (the stored table, plus the
    rows being written when several dates are scored at once). Null when the
    account had no score then. Returns ``SCORES_SCHEMA`` columns.
    """
    week_ago = history.select(
        F.date_add(F.col(C.AS_OF), 7).alias(C.AS_OF), C.NETWORK, C.USER_ID, F.col(C.SCORE).alias("score_7d_ago")
    )
    delta = F.round(F.col(C.SCORE) - F.col("score_7d_ago"), 4)
    return (
        scores.drop(C.SCORE_DELTA_7D)
        .join(week_ago, on=[C.AS_OF, C.NETWORK, C.USER_ID], how="left")
        .withColumn(C.SCORE_DELTA_7D, delta)
        .select(*S.SCORES_SCHEMA.fieldNames())
    )


def _genuine_engagements_on_posts(
    events: DataFrame, flags: DataFrame, vectors: DateVectors, *, window_days: int
) -> DataFrame:
    """Engagements with each post by engagers genuine as of some date (not by its author), as vectors.

    One row per engagement event of the longest window (``network``, post
    ``parent_post_id``, author ``subject_id``, engager ``actor_id``), with
    ``_engagements``: a flag vector over the dates of ``vectors``, set where the
    event is in the trailing ``window_days`` of the date and its engager
    genuine on that date. Not grouped: each caller groups once, by what it
    counts (a grouping per (post, engager) here cost a shuffle of every
    engagement and saved few rows).
    """
    dates = vectors.dates
    genuine_dates = genuine_dates_by_engager(flags, dates)
    return (
        events_between(events, start=dates[0] - timedelta(days=window_days - 1), end=dates[-1])
        .filter(F.col(C.EVENT_TYPE).isin(list(S.POST_ENGAGEMENT_TYPES)) & F.col(C.PARENT_POST_ID).isNotNull())
        .filter(F.col(C.SUBJECT_ID) != F.col(C.ACTOR_ID))
        .join(genuine_dates, on=[C.NETWORK, C.ACTOR_ID], how="inner")
        .select(
            C.NETWORK, C.PARENT_POST_ID, C.SUBJECT_ID, C.ACTOR_ID,
            vectors.flags(lambda day: genuine_in_window(day, window_days)).alias("_engagements"),
        )
    )


def score_topics(events: DataFrame, flags: DataFrame, as_of: date, **params) -> DataFrame:
    """Topics an account is influential about, each backed by evidence (one ``as_of``).

    The one-date form of :func:`score_topics_by_as_of` (same keyword parameters;
    ``flags`` may lack ``as_of``).
    """
    return score_topics_by_as_of(events, with_as_of(flags, as_of), [as_of], **params)


def score_topics_by_as_of(
    events: DataFrame,
    flags: DataFrame,
    as_of_dates,
    *,
    window_days: int,
    min_posts: int,
    min_engagers: int,
    max_per_user: int,
    full_engagers: float,
    run_id: str,
) -> DataFrame:
    """Topics an account is influential about as of each date, each backed by evidence.

    A topic (hashtag) is kept only when at least ``min_posts`` of the account's
    posts on it in the ``window_days`` up to ``as_of`` were engaged by genuine
    engagers, and at least ``min_engagers`` distinct genuine engagers engaged
    them: one lucky post never makes a topic. ``flags`` carry ``as_of``.

    Returns ``SCORE_TOPICS_SCHEMA`` columns.
    """
    vectors = DateVectors(as_of_dates)
    dates = vectors.dates
    posts = (
        events_between(events, start=dates[0] - timedelta(days=window_days - 1), end=dates[-1])
        .filter(F.col(C.EVENT_TYPE).isin(list(S.AUTHORED_TYPES)) & F.col(C.POST_ID).isNotNull())
        .select(
            C.NETWORK,
            F.col(C.ACTOR_ID).alias(C.USER_ID),
            C.POST_ID,
            F.col(C.EVENT_DATE).alias("_posted"),
            F.explode(F.array_distinct(C.HASHTAGS)).alias(C.TOPIC),
        )
        .filter(F.length(C.TOPIC) > 0)
        .withColumn(
            "_post_in_window",
            vectors.flags(lambda day: in_trailing_window(day, F.col("_posted"), window_days)),
        )
    )
    engaged = _genuine_engagements_on_posts(events, flags, vectors, window_days=window_days).select(
        C.NETWORK, F.col(C.PARENT_POST_ID).alias(C.POST_ID), C.ACTOR_ID, "_engagements"
    )
    topic = [C.NETWORK, C.USER_ID, C.TOPIC]
    # Per engagement of a post on a topic: at each date, both the post and the genuine engagement in the
    # window? Each such row is evidence for its post and for its engager: counted distinct per topic by
    # one grouping per (topic, post or engager), then one per topic (as Spark counts two distinct columns).
    evidence = posts.join(engaged, on=[C.NETWORK, C.POST_ID], how="inner").select(
        *topic,
        vectors.both(F.col("_post_in_window"), F.col("_engagements")).alias("_evidence"),
        F.explode(
            F.array(
                F.struct(F.lit(True).alias("_is_post"), F.col(C.POST_ID).alias("_id")),
                F.struct(F.lit(False).alias("_is_post"), F.col(C.ACTOR_ID).alias("_id")),
            )
        ).alias("_item"),
    )
    per_item = (
        evidence.groupBy(*topic, "_item")
        .agg(vectors.any_of(F.col("_evidence")).alias("_evidence"))
        .select(
            *topic,
            F.when(F.col("_item._is_post"), F.col("_evidence")).alias("_posts"),
            F.when(~F.col("_item._is_post"), F.col("_evidence")).alias("_engagers"),
        )
    )
    per_topic = (
        per_item.groupBy(*topic)
        .agg(
            vectors.count_flags(F.col("_posts")).alias("_posts"),
            vectors.count_flags(F.col("_engagers")).alias("_engagers"),
        )
        .select("*", vectors.explode())
        .filter(at_slot("_posts") > 0)
        .select(
            vectors.as_of(), *topic,
            at_slot("_posts").alias(C.TOPIC_POSTS), at_slot("_engagers").alias(C.TOPIC_ENGAGERS),
        )
    )
    strongest_first = Window.partitionBy(C.AS_OF, C.NETWORK, C.USER_ID).orderBy(
        F.col(C.TOPIC_SCORE).desc(), F.col(C.TOPIC)
    )
    return (
        per_topic.filter((F.col(C.TOPIC_POSTS) >= min_posts) & (F.col(C.TOPIC_ENGAGERS) >= min_engagers))
        .withColumn(C.TOPIC_SCORE, clamp_0_100(100.0 * F.log1p(C.TOPIC_ENGAGERS) / math.log1p(full_engagers)))
        .withColumn("_n", F.row_number().over(strongest_first))
        .filter(F.col("_n") <= max_per_user)
        .select(
            C.AS_OF,
            C.NETWORK,
            C.USER_ID,
            C.TOPIC,
            C.TOPIC_POSTS,
            C.TOPIC_ENGAGERS,
            F.round(C.TOPIC_SCORE, 4).alias(C.TOPIC_SCORE),
            F.lit(run_id).alias(C.RUN_ID),
        )
    )


def score_explain(
    edges: DataFrame,
    ranks: DataFrame,
    events: DataFrame,
    flags: DataFrame,
    as_of: date,
    *,
    damping: float,
    top_k: int,
    run_id: str,
) -> DataFrame:
    """Why each score is what it is (one ``as_of``): the one-date form of :func:`score_explain_by_as_of`.

    ``edges`` and ``ranks`` are that date's, without ``as_of``; the engagers'
    shares come from :func:`klout_spark.inflow.top_shares`.
    """
    engagers = inflow.top_shares(with_as_of(edges, as_of), with_as_of(ranks, as_of), damping=damping, top_k=top_k)
    return score_explain_by_as_of(engagers, events, with_as_of(flags, as_of), [as_of], top_k=top_k, run_id=run_id)


def score_explain_by_as_of(
    engagers: DataFrame,
    events: DataFrame,
    flags: DataFrame,
    as_of_dates,
    *,
    top_k: int,
    run_id: str,
) -> DataFrame:
    """Why each score is what it is, as of each date: top contributing engagers and posts.

    - ``engager`` rows: the account's top engagers by PageRank flow and their
      shares of its inflow, as :mod:`klout_spark.inflow` gives them (``engagers``).
    - ``post`` rows: genuine engagements each of the account's posts drew in 30 days.

    ``flags`` carries ``as_of``. Returns ``SCORE_EXPLAIN_SCHEMA`` columns, at
    most ``top_k`` rows per kind per account and date.
    """
    vectors = DateVectors(as_of_dates)
    posts = (
        _genuine_engagements_on_posts(
            events.filter(is_engagement(F.col(C.EVENT_TYPE))), flags, vectors, window_days=30
        )
        .groupBy(C.NETWORK, F.col(C.SUBJECT_ID).alias(C.USER_ID), F.col(C.PARENT_POST_ID).alias(C.CONTRIBUTOR_ID))
        .agg(vectors.count_flags(F.col("_engagements")).alias("_engagements"))
        .select("*", vectors.explode())
        .filter(at_slot("_engagements") > 0)
        .select(
            vectors.as_of(), C.NETWORK, C.USER_ID, C.CONTRIBUTOR_ID,
            at_slot("_engagements").cast("double").alias(C.CONTRIBUTION),
        )
    )
    most_engaged_first = Window.partitionBy(C.AS_OF, C.NETWORK, C.USER_ID).orderBy(
        F.col(C.CONTRIBUTION).desc(), F.col(C.CONTRIBUTOR_ID)
    )
    top_posts = posts.withColumn(C.POSITION, F.row_number().over(most_engaged_first).cast("long")).filter(
        F.col(C.POSITION) <= top_k
    )
    return (
        engagers.withColumn(C.CONTRIBUTOR_KIND, F.lit("engager"))
        .unionByName(top_posts.withColumn(C.CONTRIBUTOR_KIND, F.lit("post")))
        .select(
            C.AS_OF,
            C.NETWORK,
            C.USER_ID,
            C.CONTRIBUTOR_KIND,
            C.CONTRIBUTOR_ID,
            C.POSITION,
            F.round(C.CONTRIBUTION, 6).alias(C.CONTRIBUTION),
            F.lit(run_id).alias(C.RUN_ID),
        )
    )


def person_scores(scores: DataFrame, identities: DataFrame, *, model_version: str, run_id: str) -> DataFrame:
    """One score per person who owns accounts on several networks: their best account's score.

    Returns ``PERSON_SCORES_SCHEMA`` columns; accounts without an identity row are not included.
    """
    return (
        scores.join(identities, on=[C.NETWORK, C.USER_ID], how="inner")
        .groupBy(C.AS_OF, C.PERSON_ID)
        .agg(F.max(C.SCORE).alias(C.SCORE), F.count(F.lit(1)).alias("accounts"))
        .select(
            C.AS_OF,
            C.PERSON_ID,
            C.SCORE,
            "accounts",
            F.lit(model_version).alias(C.MODEL_VERSION),
            F.lit(run_id).alias(C.RUN_ID),
        )
    )
