"""Klout's known faults, each shown fixed: engagement that games the score counts for little.

Small worlds go through the real model (features -> edges -> PageRank -> scores)
with the settings of conf/base.yaml. The one-post topic ("aviaries") case lives in
test_scoring.py and the point-in-time case in test_features.py.
"""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark import features, graph, pagerank, scoring
from klout_spark import schemas as S
from klout_spark.config import load_settings
from tests.factories import AS_OF, days_ago, event, events_df, profile, profiles_df

CONF = load_settings("local")
OLD = days_ago(800)


def world_features(spark, events, profiles=()):
    frame = events_df(spark, events)
    f = CONF.features
    return features.user_features(
        spark, features.user_daily(frame), frame, profiles_df(spark, list(profiles)), AS_OF,
        half_life_days=f.half_life_days, inactive_days=f.inactive_days,
        spam_max_engagements_per_day=f.spam_max_engagements_per_day, spam_max_follows_30d=f.spam_max_follows_30d,
        spam_min_follow_back=f.spam_min_follow_back, spam_min_output_30d=f.spam_min_output_30d,
        spam_max_response_rate=f.spam_max_response_rate, new_account_days=f.new_account_days,
        boost_min_follows_30d=f.boost_min_follows_30d, boost_max_follows_per_engager=f.boost_max_follows_per_engager,
    )


def world_scores(spark, events, profiles=()):
    """Score every account of a small world with the configured model; returns user_id -> scores row."""
    frame = events_df(spark, events)
    feats = world_features(spark, events, profiles).cache()
    p, s = CONF.propagate, CONF.score
    edges = graph.engagement_edges(
        frame, features.genuine_flags(feats), AS_OF, window_days=p.window_days, half_life_days=p.half_life_days,
        type_weights=p.type_weights, reciprocal_discount=p.reciprocal_discount,
    )
    trust = graph.trust_vector(feats, flagged_trust=p.flagged_trust, full_age_days=p.trust_full_age_days)
    result = pagerank.pagerank(
        edges.select(F.col(C.SRC), F.col(C.DST), C.WEIGHT),
        trust.select(F.col(C.USER_ID).alias(C.NODE), C.TRUST),
        damping=p.damping, tol=1e-12, max_iter=p.max_iter, method="local",
    )
    ranks = (
        result.ranks.select(F.lit("twitter").alias(C.NETWORK), F.col(C.NODE).alias(C.USER_ID), C.PAGERANK)
        .join(trust, on=[C.NETWORK, C.USER_ID], how="left")
        .fillna(0.0, subset=[C.TRUST])
    )
    scores = scoring.account_scores(
        feats, ranks, spark.createDataFrame([], S.SCORES_SCHEMA), AS_OF,
        weights=(s.weights.true_reach, s.weights.amplification, s.weights.network_impact),
        reach_followers_weight=s.reach_followers_weight, reach_listed_weight=s.reach_listed_weight,
        reach_mutual_weight=s.reach_mutual_weight, reach_full_engagers=s.reach_full_engagers,
        amplification_prior_posts=s.amplification_prior_posts, amplification_prior_rate=s.amplification_prior_rate,
        impact_full_ratio=s.impact_full_ratio, model_version="test", run_id="r",
    )
    rows = {r.user_id: r for r in scores.collect()}
    feats.unpersist()
    return rows


def audience(name: str, n: int, *, day_offset: int = 1) -> list[tuple]:
    """``n`` ordinary, old accounts that each post once (so they are active) on ``day_offset`` days ago."""
    return [event(f"{name}{i}-post", S.POST, f"{name}{i}", post_id=f"{name}{i}-p", day=days_ago(day_offset))
            for i in range(n)]


def posts(author: str, n: int) -> list[tuple]:
    return [event(f"{author}-p{k}", S.POST, author, post_id=f"{author}-p{k}", day=days_ago(k + 1)) for k in range(n)]


def test_engagement_spread_over_many_posts_counts_more_than_on_one_post(spark):
    events = posts("spread", 6) + posts("single", 6) + audience("f", 6)
    events += [event(f"s{i}", S.RESHARE, f"f{i}", "spread", post_id=f"s{i}", parent=f"spread-p{i}") for i in range(6)]
    events += [event(f"o{i}", S.RESHARE, f"f{i}", "single", post_id=f"o{i}", parent="single-p0") for i in range(6)]
    rows = world_scores(spark, events)
    spread, single = rows["spread"], rows["single"]
    assert spread.true_reach == pytest.approx(single.true_reach)  # same six engagers
    assert spread.amplification > single.amplification
    assert spread.score > single.score


def test_many_distinct_engagers_count_more_than_one_engager_repeating(spark):
    events = posts("crowd", 6) + posts("fan_club", 6) + audience("f", 6) + audience("superfan", 1)
    events += [event(f"c{i}", S.LIKE, f"f{i}", "crowd", parent=f"crowd-p{i}") for i in range(6)]
    events += [event(f"r{i}", S.LIKE, "superfan0", "fan_club", parent=f"fan_club-p{i}") for i in range(6)]
    rows = world_scores(spark, events)
    assert rows["crowd"].true_reach > rows["fan_club"].true_reach
    assert rows["crowd"].score > rows["fan_club"].score
    feats = {r.user_id: r for r in world_features(spark, events).collect()}
    # Six likes by one engager on one day weigh one like in total; six engagers' likes weigh six.
    assert feats["fan_club"].genuine_engagements_decayed == pytest.approx(1.0)
    assert feats["crowd"].genuine_engagements_decayed == pytest.approx(6.0)


def test_bought_followers_raise_the_flag_and_add_no_reach(spark):
    fresh = [profile(f"bought{i}", AS_OF, created=days_ago(10)) for i in range(120)]
    events = posts("buyer", 3) + posts("honest", 3) + audience("f", 2)
    events += [event(f"l{i}", S.LIKE, f"f{i}", who, parent=f"{who}-p0")
               for who in ("buyer", "honest") for i in range(2)]
    events += [event(f"b{i}", S.FOLLOW, f"bought{i}", "buyer", day=days_ago(5)) for i in range(120)]
    profiles = [*fresh, profile("buyer", AS_OF, followers=900, created=OLD),
                profile("honest", AS_OF, followers=30, created=OLD)]
    feats = {r.user_id: r for r in world_features(spark, events, profiles).collect()}
    assert feats["buyer"].is_follower_boosted and not feats["honest"].is_follower_boosted
    assert feats["bought0"].is_inactive  # following is not activity
    rows = world_scores(spark, events, profiles)
    assert rows["buyer"].true_reach < rows["honest"].true_reach  # 900 bought followers count for nothing
    assert rows["buyer"].score <= rows["honest"].score


def test_sybil_farm_moves_its_target_by_less_than_five_points(spark):
    base = posts("target", 5) + audience("f", 20) + posts("other", 5)
    base += [event(f"t{i}", S.LIKE, f"f{i}", "target", parent=f"target-p{i % 5}") for i in range(20)]
    base += [event(f"o{i}", S.RESHARE, f"f{i}", "other", post_id=f"o{i}", parent="other-p0") for i in range(8)]
    old_profiles = [profile("target", AS_OF, followers=150, created=OLD)]
    n = 1000
    farm = [profile(f"sy{i}", AS_OF, created=days_ago(6)) for i in range(n)]
    boost = []
    for i in range(n):
        boost += [
            event(f"sy{i}-p", S.POST, f"sy{i}", post_id=f"sy{i}-p", day=days_ago(3)),
            event(f"sy{i}-l", S.LIKE, f"sy{i}", "target", parent=f"target-p{i % 5}", day=days_ago(2)),
            event(f"sy{i}-r", S.RESHARE, f"sy{i}", "target", post_id=f"sy{i}-r", parent="target-p0", day=days_ago(2)),
            event(f"sy{i}-m", S.LIKE, f"sy{i}", f"sy{(i + 1) % n}", parent=f"sy{(i + 1) % n}-p", day=days_ago(1)),
            event(f"sy{i}-f", S.FOLLOW, f"sy{i}", "target", day=days_ago(4)),
        ]
    before = world_scores(spark, base, old_profiles)["target"].score
    after = world_scores(spark, base + boost, old_profiles + farm)
    assert abs(after["target"].score - before) < 5.0
    assert max(after[f"sy{i}"].score for i in range(0, n, 97)) < 10.0


def test_a_pod_gains_less_than_the_same_engagement_from_a_genuine_audience(spark):
    size = 50
    pod = [f"pod{i}" for i in range(size)]
    events = [event(f"{m}-post", S.POST, m, post_id=f"{m}-p", day=days_ago(2)) for m in pod]
    events += [event(f"{a}>{b}", S.RESHARE, a, b, post_id=f"{a}>{b}", parent=f"{b}-p")
               for a in pod for b in pod if a != b]
    # The control account draws as many reshares, one from each of size - 1 distinct fans it never engages.
    events += [event("star-post", S.POST, "star", post_id="star-p", day=days_ago(2))] + audience("fan", size - 1)
    events += [event(f"fan{i}>star", S.RESHARE, f"fan{i}", "star", post_id=f"fan{i}>star", parent="star-p")
               for i in range(size - 1)]
    rows = world_scores(spark, events)
    member, star = rows["pod0"], rows["star"]
    assert member.true_reach < star.true_reach
    assert member.network_impact < star.network_impact
    assert member.score < star.score
