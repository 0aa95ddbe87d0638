"""The metric maths of klout_spark.evaluation on tiny inline data."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F
from scipy.stats import spearmanr

from klout_spark import catalog
from klout_spark import evaluation as E
from klout_spark.errors import InputError

AS_OF = date(2026, 10, 31)
TW = "twitter"


def accounts(spark, rows):
    """rows: (user_id, latent, role) on twitter."""
    return spark.createDataFrame([(TW, u, float(x), r) for u, x, r in rows], E.ACCOUNTS_SCHEMA)


def test_flag_metrics_precision_recall_and_per_role(spark):
    truth = accounts(
        spark,
        [
            ("b1", 0, "spam_bot"), ("b2", 0, "spam_bot"),
            ("i1", 0, "inactive"), ("i2", 0, "inactive"), ("i3", 0, "inactive"),
            ("s1", 0, "sybil"),
            ("g1", 1, "genuine"), ("g2", 2, "genuine"), ("g3", 3, "genuine"),
        ],
    )
    flags = spark.createDataFrame(
        [
            (TW, "b1", True, False),   # bot flagged
            (TW, "b2", False, False),  # bot missed
            (TW, "i1", False, True),
            (TW, "i2", False, True),
            (TW, "i3", None, None),    # null flags count as not flagged
            (TW, "s1", True, False),   # sybil flagged: right, but not a must-flag role
            (TW, "g1", False, True),   # genuine flagged inactive: wrong
            (TW, "g2", False, False),
            (TW, "x9", True, False),   # unknown to the truth: a wrong flag
        ],
        "network string, user_id string, is_spam_like boolean, is_inactive boolean",
    )
    m = E.flag_metrics(flags, truth)
    assert m["flagged"] == 6
    assert m["must_flag"] == 5
    assert m["flag_recall"] == pytest.approx(3 / 5)
    assert m["flag_precision"] == pytest.approx(4 / 6)
    assert m["flag_precision_strict"] == pytest.approx(3 / 6)
    assert m["spam_recall"] == pytest.approx(1 / 2)
    assert m["spam_precision"] == pytest.approx(2 / 3)
    assert m["inactive_recall"] == pytest.approx(2 / 3)
    assert m["inactive_precision"] == pytest.approx(2 / 3)
    assert m["per_role"]["genuine"] == {
        "accounts": 2, "share_spam_like": 0.0, "share_inactive": 0.5, "share_flagged": 0.5, "share_new_account": 0.0
    }
    with_new = flags.withColumn("is_new_account", F.col("user_id") == "s1")
    assert E.flag_metrics(with_new, truth)["per_role"]["sybil"]["share_new_account"] == 1.0
    assert m["per_role"]["unknown"]["accounts"] == 1  # g3 has no features row: not counted anywhere
    assert sum(r["accounts"] for r in m["per_role"].values()) == 9


def test_topic_metrics_normalizes_and_counts_aviaries(spark):
    truth = spark.createDataFrame(
        [(TW, "a", "football"), (TW, "a", "music"), (TW, "b", "travel")], E.TOPICS_SCHEMA
    )
    assigned = spark.createDataFrame(
        [(TW, "a", "#Football"), (TW, "a", "politics"), (TW, "b", "travel"), (TW, "c", "aviaries")],
        "network string, user_id string, topic string",
    )
    m = E.topic_metrics(assigned, truth)
    assert (m["topic_rows"], m["topic_matches"], m["topic_accounts"], m["aviaries_topics"]) == (4, 2, 3, 1)
    assert m["topic_precision"] == pytest.approx(0.5)
    empty = E.topic_metrics(assigned.limit(0), truth)
    assert empty["topic_precision"] is None and empty["topic_rows"] == 0


def test_average_rank_shares_ties(spark):
    df = spark.createDataFrame([(10.0,), (20.0,), (20.0,), (5.0,), (20.0,)], "v double")
    ranks = sorted(r["r"] for r in E.with_average_rank(df, "v", "r").collect())
    assert ranks == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_spearman_matches_scipy_with_ties(spark):
    x = [1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 4.0, 9.0]
    y = [2.0, 1.0, 3.0, 3.0, 6.0, 5.0, 8.0, 7.0]
    df = spark.createDataFrame([(a, b) for a, b in zip(x, y, strict=True)] + [(None, 1.0)], "x double, y double")
    expected = spearmanr(x, y).statistic
    assert E.spearman(df, "x", "y") == pytest.approx(expected, abs=1e-12)
    assert E.spearman(df.select("x", (-df["x"]).alias("y")), "x", "y") == pytest.approx(-1.0)
    assert E.spearman(df.limit(1), "x", "y") is None


def test_influence_metrics_organic_correlation_and_fakes(spark):
    truth = accounts(
        spark,
        [
            ("g1", 1, "genuine"), ("g2", 2, "genuine"), ("p1", 3, "pod_member"), ("t1", 4, "sybil_target"),
            ("b1", 0, "spam_bot"), ("s1", 0, "sybil"), ("s2", 0, "sybil"), ("f1", 0, "bought_follower"),
        ],
    )
    scores = spark.createDataFrame(
        [
            (TW, "g1", 5.0), (TW, "g2", 30.0), (TW, "p1", 20.0), (TW, "t1", 60.0),
            (TW, "b1", 3.0), (TW, "s1", 12.5), (TW, "s2", 1.0), (TW, "f1", 50.0),
        ],
        "network string, user_id string, score double",
    )
    m = E.influence_metrics(scores, truth)
    # ranks of score among organic: 1, 3, 2, 4 against 1, 2, 3, 4
    assert m["spearman_latent"] == pytest.approx(spearmanr([5, 30, 20, 60], [1, 2, 3, 4]).statistic)
    assert m["organic_scored"] == 4
    assert m["bots_sybils_scored"] == 3
    assert m["bots_sybils_max_score"] == 12.5
    assert m["bots_sybils_share_under_10"] == pytest.approx(2 / 3)
    assert m["score_by_role"]["sybil"]["mean_score"] == pytest.approx(6.75)


def test_bought_follower_outrank_share_against_same_engagement_peers(spark):
    truth = accounts(
        spark,
        [("t", 1, "bought_follower_target"), ("p1", 1, "genuine"), ("p2", 1, "genuine"),
         ("p3", 1, "genuine"), ("p4", 1, "genuine"), ("q", 1, "pod_member")],
    )
    features = spark.createDataFrame(
        [(TW, "t", 4), (TW, "p1", 4), (TW, "p2", 4), (TW, "p3", 4), (TW, "p4", 9), (TW, "q", 4)],
        "network string, user_id string, genuine_engagers_30d long",
    )
    scores = spark.createDataFrame(
        [(TW, "t", 20.0), (TW, "p1", 10.0), (TW, "p2", 20.0), (TW, "p3", 30.0), (TW, "p4", 1.0), (TW, "q", 1.0)],
        "network string, user_id string, score double",
    )
    m = E.bought_follower_metrics(scores, features, truth)
    # peers p1..p3 (p4 has other engagement, q is not a genuine account): above, tie, below
    assert m["bought_targets"] == 1 and m["bought_target_peers"] == 3
    assert m["bought_outrank_share"] == pytest.approx(0.5)
    assert m["bought_peer_mean_score"] == pytest.approx(20.0)
    assert m["bought_follower_ok"] is True
    higher = scores.withColumn("score", F.when(F.col("user_id") == "t", 25.0).otherwise(F.col("score")))
    assert E.bought_follower_metrics(higher, features, truth)["bought_outrank_share"] == pytest.approx(2 / 3)
    assert E.bought_follower_metrics(higher, features, truth)["bought_follower_ok"] is False


def test_read_ground_truth_and_its_errors(spark, tmp_path):
    folder = tmp_path / "_ground_truth"
    folder.mkdir()
    (folder / "accounts.csv").write_text("network,user_id,latent_influence,role\ntwitter,tw:u:1,2.5,genuine\n")
    (folder / "topics.csv").write_text("network,user_id,topic\ntwitter,tw:u:1,music\n")
    truth = E.read_ground_truth(spark, str(folder))
    assert truth.accounts.collect()[0].asDict() == {
        "network": "twitter", "user_id": "tw:u:1", "latent_influence": 2.5, "role": "genuine"
    }
    assert truth.topics.count() == 1
    (folder / "topics.csv").write_text("network,user_id\ntwitter,tw:u:1\n")
    with pytest.raises(InputError, match="lacks columns"):
        E.read_ground_truth(spark, str(folder))
    with pytest.raises(InputError, match="does not exist"):
        E.read_ground_truth(spark, str(tmp_path / "nowhere"))


def test_evaluate_reads_the_as_of_slice(spark, tmp_path):
    lake = str(tmp_path / "lake")
    folder = tmp_path / "_ground_truth"
    folder.mkdir()
    (folder / "accounts.csv").write_text(
        "network,user_id,latent_influence,role\n"
        "twitter,g1,1,genuine\ntwitter,g2,2,genuine\ntwitter,g3,3,genuine\ntwitter,b1,0,spam_bot\n"
    )
    (folder / "topics.csv").write_text("network,user_id,topic\ntwitter,g3,music\n")
    old = date(2026, 10, 30)

    def write(table, ddl, rows):
        spark.createDataFrame(rows, ddl).write.format("delta").save(f"{lake}/{table}")

    write(
        catalog.USER_FEATURES,
        "as_of date, network string, user_id string, is_spam_like boolean, is_inactive boolean, "
        "genuine_engagers_30d long",
        [(AS_OF, TW, "g1", False, False, 1), (AS_OF, TW, "g2", False, False, 2),
         (AS_OF, TW, "g3", False, False, 3), (AS_OF, TW, "b1", True, False, 0),
         (old, TW, "g1", True, False, 0)],
    )
    write(
        catalog.SCORES,
        "as_of date, network string, user_id string, score double",
        [(AS_OF, TW, "g1", 10.0), (AS_OF, TW, "g2", 20.0), (AS_OF, TW, "g3", 30.0), (AS_OF, TW, "b1", 2.0),
         (old, TW, "g1", 99.0)],
    )
    write(
        catalog.SCORE_TOPICS,
        "as_of date, network string, user_id string, topic string",
        [(AS_OF, TW, "g3", "music"), (old, TW, "g1", "aviaries")],
    )
    m = E.evaluate(spark, lake, "klout", str(folder), AS_OF)
    assert m["flag_precision"] == 1.0 and m["flag_recall"] == 1.0
    assert m["topic_precision"] == 1.0 and m["aviaries_topics"] == 0
    assert m["spearman_latent"] == pytest.approx(1.0)
    assert m["bots_sybils_max_score"] == 2.0
    assert "Spearman(score, latent influence), organic" in E.format_report(m)
    with pytest.raises(InputError, match="no scores"):
        E.evaluate(spark, lake, "klout", str(folder), date(2026, 1, 1))
