"""Stage 4 inputs: the engagement graph and the trust (teleport) vector, as of a date.

Edges point from the engager to the author (``src`` engaged with ``dst``), so
PageRank mass flows to accounts that influential accounts engage with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import ConfigError
from klout_spark.features import events_by_genuine_as_of, with_as_of

# Node keys join network and user id, since user ids are unique only within a network.
NODE_SEPARATOR = "\t"


def node_key(network: Column, user_id: Column) -> Column:
    return F.concat_ws(NODE_SEPARATOR, network, user_id)


def split_node_key(node: Column) -> tuple[Column, Column]:
    parts = F.split(node, NODE_SEPARATOR, 2)
    return parts.getItem(0).alias(C.NETWORK), parts.getItem(1).alias(C.USER_ID)


def type_weight(event_type: Column, weights: Mapping[str, float]) -> Column:
    """The configured weight of one interaction of ``event_type`` (0 for types not listed)."""
    if not weights:
        raise ConfigError("propagate.type_weights must name at least one event type")
    mapping = F.create_map(*[x for name, w in sorted(weights.items()) for x in (F.lit(name), F.lit(float(w)))])
    return F.coalesce(mapping[event_type], F.lit(0.0))


def engagement_edges(events: DataFrame, flags: DataFrame, as_of: date, **params) -> DataFrame:
    """Weighted engager -> author edges as of ``as_of``.

    The one-date form of :func:`engagement_edges_by_as_of` (same keyword
    parameters; ``flags`` may lack ``as_of``).
    """
    return engagement_edges_by_as_of(events, with_as_of(flags, as_of), [as_of], **params)


def engagement_edges_by_as_of(
    events: DataFrame,
    flags: DataFrame,
    as_of_dates: Sequence[date],
    *,
    window_days: int,
    half_life_days: float,
    type_weights: Mapping[str, float],
    reciprocal_discount: float,
) -> DataFrame:
    """Weighted engager -> author edges as of every date of ``as_of_dates``.

    Parameters
    ----------
    events
        ``silver_events``; interactions in the ``window_days`` up to each ``as_of`` are used.
    flags
        ``as_of``, ``network``, ``user_id``, ``is_genuine``: only engagers genuine
        as of a date give edges for that date (not spam-like, inactive or new:
        see :func:`klout_spark.features.genuine`).
    type_weights
        Weight per interaction type; each interaction also decays with half-life
        ``half_life_days`` by its age at ``as_of``, and is divided by the number
        of interactions its engager made that day.
    reciprocal_discount
        A pair engaging each other keeps this fraction of the smaller direction's
        weight in both directions (pods trade engagement; audiences don't).

    Returns
    -------
    DataFrame
        ``ENGAGEMENT_EDGES_SCHEMA`` columns; ``weight`` is normalized so that each
        engager's out-weights sum to 1 per ``as_of`` (one account cannot pour
        unbounded mass into a target); self-loops and zero weights are removed.

    Notes
    -----
    Interactions are first counted per pair, type and day (exact integers), so
    each date's window expands those counts, not the raw events.
    """
    interactions = (
        events.filter(F.col(C.SUBJECT_ID).isNotNull() & (F.col(C.SUBJECT_ID) != F.col(C.ACTOR_ID)))
        .withColumn("_type_weight", type_weight(F.col(C.EVENT_TYPE), type_weights))
        .filter(F.col("_type_weight") > 0)
    )
    daily_pairs = interactions.groupBy(
        C.NETWORK, C.ACTOR_ID, C.SUBJECT_ID, C.EVENT_TYPE, "_type_weight", C.EVENT_DATE
    ).agg(F.count(F.lit(1)).alias(C.INTERACTIONS))
    # The more an engager acts in a day, the less each act counts: a whole day's
    # count, the same for every as_of whose window holds that day.
    engager_day = Window.partitionBy(C.NETWORK, C.ACTOR_ID, C.EVENT_DATE)
    daily_pairs = daily_pairs.withColumn("_acts_that_day", F.sum(C.INTERACTIONS).over(engager_day))
    age = F.datediff(F.col(C.AS_OF), F.col(C.EVENT_DATE))
    weighted = (
        events_by_genuine_as_of(daily_pairs, flags, as_of_dates, window_days=window_days)
        .withColumn(
            C.WEIGHT,
            F.col(C.INTERACTIONS) * F.col("_type_weight") * F.pow(F.lit(0.5), age / half_life_days)
            / F.col("_acts_that_day"),
        )
    )
    pairs = weighted.groupBy(
        C.AS_OF, C.NETWORK, F.col(C.ACTOR_ID).alias(C.SRC), F.col(C.SUBJECT_ID).alias(C.DST)
    ).agg(F.sum(C.INTERACTIONS).alias(C.INTERACTIONS), F.sum(C.WEIGHT).alias(C.WEIGHT))
    reverse = pairs.select(
        C.AS_OF, C.NETWORK, F.col(C.DST).alias(C.SRC), F.col(C.SRC).alias(C.DST),
        F.col(C.WEIGHT).alias("reverse_weight"),
    )
    returned = F.least(F.col(C.WEIGHT), F.coalesce(F.col("reverse_weight"), F.lit(0.0)))
    discounted = (
        pairs.join(reverse, on=[C.AS_OF, C.NETWORK, C.SRC, C.DST], how="left")
        .withColumn(C.WEIGHT, F.col(C.WEIGHT) - (1.0 - reciprocal_discount) * returned)
        .filter(F.col(C.WEIGHT) > 0)
    )
    out_total = F.sum(C.WEIGHT).over(Window.partitionBy(C.AS_OF, C.NETWORK, C.SRC))
    return discounted.select(
        C.AS_OF,
        C.NETWORK,
        C.SRC,
        C.DST,
        C.INTERACTIONS,
        (F.col(C.WEIGHT) / out_total).alias(C.WEIGHT),
    )


def trust_vector(features: DataFrame, *, flagged_trust: float, full_age_days: float) -> DataFrame:
    """Teleport weight per account (TrustRank style), before normalization.

    Older accounts are trusted more (up to ``full_age_days``), verified accounts
    twice as much, flagged (spam-like, inactive or new) accounts ``flagged_trust``
    times as much. Unknown age counts as half of full age.

    Returns ``network``, ``user_id``, ``trust`` (after ``as_of`` when ``features`` has it).
    """
    # least/greatest skip nulls, so the unknown age is handled first.
    age = F.col(S.ACCOUNT_AGE_DAYS)
    age_share = F.when(age.isNull(), 0.5).otherwise(
        F.least(F.greatest(age / full_age_days, F.lit(0.0)), F.lit(1.0))
    )
    base = F.lit(0.1) + 0.9 * age_share
    verified = F.when(F.coalesce(F.col(C.VERIFIED), F.lit(False)), 2.0).otherwise(1.0)
    is_flagged = F.col(S.IS_SPAM_LIKE) | F.col(S.IS_INACTIVE) | F.coalesce(F.col(S.IS_NEW_ACCOUNT), F.lit(False))
    flagged = F.when(is_flagged, flagged_trust).otherwise(1.0)
    # Stored features carry as_of (one row per account and date): keep it as a key.
    keys = [c for c in (C.AS_OF, C.NETWORK, C.USER_ID) if c in features.columns]
    return features.select(*keys, (base * verified * flagged).alias(C.TRUST))
