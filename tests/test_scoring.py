import math
from datetime import timedelta

import pytest
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark import scoring
from tests.factories import AS_OF, days_ago, event, events_df

PARAMS = dict(
    weights=(0.4, 0.2, 0.4),
    reach_followers_weight=0.1,
    reach_listed_weight=0.2,
    reach_mutual_weight=0.25,
    reach_full_engagers=20000.0,
    amplification_prior_posts=5.0,
    amplification_prior_rate=0.1,
    impact_full_ratio=1000.0,
    model_version="test",
    run_id="r1",
)


def _features(spark, rows):
    """rows: (user, genuine_engagers_30d, followers, listed, posts_30d, amplified_posts_30d)."""
    full = []
    for user, engagers, followers, listed, posts, amplified in rows:
        values = {f.name: 0.0 for f in S.USER_FEATURES_SCHEMA.fields if f.dataType.typeName() == "double"}
        values.update({
            C.AS_OF: AS_OF, C.NETWORK: "twitter", C.USER_ID: user, S.ACTIVE_DAYS_30D: 1,
            C.FOLLOWERS_COUNT: followers, C.FOLLOWING_COUNT: 0, C.LISTED_COUNT: listed, S.ACCOUNT_AGE_DAYS: 100,
            C.VERIFIED: False, S.IS_INACTIVE: False, S.IS_SPAM_LIKE: False, S.GENUINE_ENGAGERS_30D: engagers,
            S.IS_NEW_ACCOUNT: False, S.IS_FOLLOWER_BOOSTED: False, S.MUTUAL_ENGAGERS_30D: 0,
            S.AMPLIFIED_POSTS_30D: amplified, S.GENUINE_RESHARES_30D: 0, "posts_sent_30d": float(posts),
        })
        full.append(tuple(values[f.name] for f in S.USER_FEATURES_SCHEMA.fields))
    return spark.createDataFrame(full, S.USER_FEATURES_SCHEMA)


def _ranks(spark, ranks):
    rows = [(AS_OF, "twitter", u, 1.0, r) for u, r in ranks.items()]
    return spark.createDataFrame(rows, S.NETWORK_RANK_SCHEMA)


def _scores(spark, features, ranks, previous=None):
    previous = previous if previous is not None else spark.createDataFrame([], S.SCORES_SCHEMA)
    result = scoring.account_scores(features, ranks, previous, AS_OF, **PARAMS)
    assert result.columns == S.SCORES_SCHEMA.fieldNames()
    return {r.user_id: r for r in result.collect()}


def test_subscores_follow_the_documented_curves(spark):
    features = _features(spark, [("a", 99, 999, 9, 10, 4), ("b", 0, 0, 0, 0, 0)])
    scores = _scores(spark, features, _ranks(spark, {"a": 0.75, "b": 0.25}))
    a, b = scores["a"], scores["b"]
    reach = 100 * (math.log(100) + 0.1 * math.log(1000) + 0.2 * math.log(10)) / math.log(20001)
    assert a.true_reach == pytest.approx(reach, abs=1e-4)
    assert a.amplification == pytest.approx(100 * (4 + 0.5) / (10 + 5), abs=1e-4)
    assert b.amplification == pytest.approx(10.0, abs=1e-4)  # no posts: the prior rate
    mean = 0.5
    assert a.network_impact == pytest.approx(100 * math.log1p(0.75 / mean) / math.log(1001), abs=1e-4)
    combined = 0.4 * a.true_reach + 0.2 * a.amplification + 0.4 * a.network_impact
    assert a.score == pytest.approx(1 + 0.99 * combined, abs=1e-3)
    assert (a.rank, b.rank) == (1, 2)
    assert (a.percentile, b.percentile) == (100.0, 0.0)
    assert a.model_version == "test" and a.score_delta_7d is None


def test_scores_stay_in_range_for_extreme_inputs(spark):
    features = _features(spark, [("huge", 10**9, 10**12, 10**9, 1, 50), ("none", 0, None, None, 0, 0)])
    scores = _scores(spark, features, _ranks(spark, {"huge": 1.0}))
    for row in scores.values():
        assert 1.0 <= row.score <= 100.0
        for sub in (row.true_reach, row.amplification, row.network_impact):
            assert 0.0 <= sub <= 100.0
    assert scores["huge"].true_reach == 100.0
    assert scores["none"].network_impact == 0.0  # not in the graph


def test_score_delta_compares_with_seven_days_earlier(spark):
    features = _features(spark, [("a", 10, 0, 0, 1, 1)])
    ranks = _ranks(spark, {"a": 1.0})
    today = _scores(spark, features, ranks)["a"].score
    week_ago = spark.createDataFrame(
        [(AS_OF - timedelta(days=7), "twitter", "a", 20.0, 0.0, 0.0, 0.0, 1, 50.0, None, "test", "old")],
        S.SCORES_SCHEMA,
    )
    assert _scores(spark, features, ranks, week_ago)["a"].score_delta_7d == pytest.approx(today - 20.0, abs=1e-3)


def test_unchanged_activity_gives_an_unchanged_score(spark):
    features = _features(spark, [("a", 40, 100, 1, 5, 2), ("b", 3, 10, 0, 2, 0)])
    first = _scores(spark, features, _ranks(spark, {"a": 0.6, "b": 0.4}))["a"].score
    # Other accounts changing does not re-percentile 'a': its curve depends on its own numbers.
    more = _features(spark, [("a", 40, 100, 1, 5, 2), ("b", 3, 10, 0, 2, 0), ("c", 5000, 0, 0, 9, 9)])
    second = _scores(spark, more, _ranks(spark, {"a": 0.6, "b": 0.4, "c": 0.5}))["a"]
    assert second.true_reach == _scores(spark, features, _ranks(spark, {"a": 0.6, "b": 0.4}))["a"].true_reach
    assert abs(second.score - first) < 5  # only network impact moves, through the network mean


def _flags(spark, genuine, flagged=()):
    rows = [("twitter", u, True) for u in genuine] + [("twitter", u, False) for u in flagged]
    return spark.createDataFrame(rows, "network string, user_id string, is_genuine boolean")


def _topics(spark, events, flags, **overrides):
    params = dict(window_days=90, min_posts=3, min_engagers=5, max_per_user=5, full_engagers=20000.0, run_id="r")
    params.update(overrides)
    result = scoring.score_topics(events_df(spark, events), flags, AS_OF, **params)
    assert result.columns == S.SCORE_TOPICS_SCHEMA.fieldNames()
    return {(r.user_id, r.topic): (r.topic_posts, r.topic_engagers) for r in result.collect()}


def test_one_post_never_makes_a_topic_the_aviaries_case(spark):
    fans = [f"f{i}" for i in range(30)]
    events = [event("av", S.POST, "a", post_id="p-av", hashtags=["aviaries"], day=days_ago(5))]
    events += [event(f"l{i}", S.LIKE, fan, "a", parent="p-av") for i, fan in enumerate(fans)]
    for n in range(3):
        events.append(event(f"t{n}", S.POST, "a", post_id=f"p{n}", hashtags=["aviation"], day=days_ago(n + 1)))
        events += [event(f"e{n}{i}", S.RESHARE, fan, "a", post_id=f"r{n}{i}", parent=f"p{n}")
                   for i, fan in enumerate(fans[:6])]
    topics = _topics(spark, events, _flags(spark, fans + ["a"]))
    assert topics == {("a", "aviation"): (3, 6)}


def test_topic_evidence_counts_only_genuine_engagers(spark):
    events = []
    for n in range(3):
        events.append(event(f"t{n}", S.POST, "a", post_id=f"p{n}", hashtags=["spam"], day=days_ago(n + 1)))
        events += [event(f"b{n}{i}", S.LIKE, f"bot{i}", "a", parent=f"p{n}") for i in range(10)]
    bots = [f"bot{i}" for i in range(10)]
    assert _topics(spark, events, _flags(spark, ["a"], flagged=bots)) == {}
    assert _topics(spark, events, _flags(spark, ["a", *bots])) == {("a", "spam"): (3, 10)}


def test_explain_names_top_engagers_by_pagerank_flow_and_top_posts(spark):
    edges = spark.createDataFrame(
        [(AS_OF, "twitter", "big", "a", 1, 1.0), (AS_OF, "twitter", "small", "a", 1, 0.5)],
        S.ENGAGEMENT_EDGES_SCHEMA,
    )
    ranks = _ranks(spark, {"big": 0.6, "small": 0.2, "a": 0.2})
    events = [event("1", S.LIKE, "big", "a", parent="p1"), event("2", S.LIKE, "small", "a", parent="p1"),
              event("3", S.RESHARE, "small", "a", parent="p2", post_id="r")]
    result = scoring.score_explain(
        edges, ranks, events_df(spark, events), _flags(spark, ["big", "small", "a"]), AS_OF,
        damping=0.85, top_k=5, run_id="r",
    )
    assert result.columns == S.SCORE_EXPLAIN_SCHEMA.fieldNames()
    rows = sorted((r.contributor_kind, r.position, r.contributor_id, r.contribution) for r in result.collect())
    share_big = 0.6 / (0.6 + 0.2 * 0.5)
    assert rows == [
        ("engager", 1, "big", pytest.approx(share_big, abs=1e-6)),
        ("engager", 2, "small", pytest.approx(1 - share_big, abs=1e-6)),
        ("post", 1, "p1", 2.0),
        ("post", 2, "p2", 1.0),
    ]
    engager_total = result.filter(F.col(C.CONTRIBUTOR_KIND) == "engager").agg(F.sum(C.CONTRIBUTION)).first()[0]
    assert engager_total == pytest.approx(1.0, abs=1e-5)

    # A share is of the whole inflow, also for the engagers the top-k cut leaves out.
    top_one = scoring.score_explain(
        edges, ranks, events_df(spark, events), _flags(spark, ["big", "small", "a"]), AS_OF,
        damping=0.85, top_k=1, run_id="r",
    )
    kept = sorted((r.contributor_kind, r.contributor_id, r.contribution) for r in top_one.collect())
    assert kept == [("engager", "big", pytest.approx(share_big, abs=1e-6)), ("post", "p1", 2.0)]


def test_person_score_is_the_best_linked_account(spark):
    scores = spark.createDataFrame(
        [(AS_OF, "twitter", "t1", 40.0, 0.0, 0.0, 0.0, 1, 0.0, None, "v", "r"),
         (AS_OF, "reddit", "r1", 55.0, 0.0, 0.0, 0.0, 1, 0.0, None, "v", "r"),
         (AS_OF, "reddit", "r2", 90.0, 0.0, 0.0, 0.0, 1, 0.0, None, "v", "r")],
        S.SCORES_SCHEMA,
    )
    identities = spark.createDataFrame(
        [("alice", "twitter", "t1"), ("alice", "reddit", "r1")], S.IDENTITIES_SCHEMA
    )
    (row,) = scoring.person_scores(scores, identities, model_version="v", run_id="r").collect()
    assert (row.person_id, row.score, row.accounts) == ("alice", 55.0, 2)
