"""The top engagers of an account's PageRank inflow: the Spark and driver paths agree."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from klout_spark import inflow
from klout_spark import schemas as S
from klout_spark.pagerank import _session_conf

DAY = date(2026, 3, 1)


def _graph(spark, *, dates: int, seed: int):
    """Random edges and ranks over two networks; equal ranks and weights make ties in flow."""
    rng = random.Random(seed)
    edges, ranks = [], []
    for d in range(dates):
        as_of = DAY + timedelta(days=d)
        for network in ("twitter", "reddit"):
            users = [f"u{i}" for i in range(40)]
            for user in users:
                ranks.append((as_of, network, user, 1.0, rng.choice([0.01, 0.02, 0.05, rng.random() / 10])))
            pairs = {(rng.choice(users), rng.choice(users)) for _ in range(100 * (d + 1))}  # dates grow
            for src, dst in sorted(pairs):
                if src != dst:
                    edges.append((as_of, network, src, dst, 1, rng.choice([1.0, 2.0, 0.5 + rng.random()])))
            # An engager without a rank row sends nothing (the join with the ranks is inner).
            edges.append((as_of, network, "unranked", "u0", 1, 9.0))
    return (
        spark.createDataFrame(edges, S.ENGAGEMENT_EDGES_SCHEMA),
        spark.createDataFrame(ranks, S.NETWORK_RANK_SCHEMA),
    )


def _rows(df):
    return sorted((r.as_of, r.network, r.user_id, r.position, r.contributor_id, r.contribution) for r in df.collect())


def _assert_same(got, want):
    assert [row[:5] for row in got] == [row[:5] for row in want]
    assert [row[5] for row in got] == pytest.approx([row[5] for row in want], rel=1e-12)


def test_driver_cut_gives_the_spark_rows_ties_and_all(spark):
    edges, ranks = _graph(spark, dates=3, seed=7)
    spark_rows = _rows(inflow.top_shares(edges, ranks, damping=0.85, top_k=5))
    driver_rows = _rows(inflow.top_shares_on_driver(edges, ranks, damping=0.85, top_k=5))

    _assert_same(driver_rows, spark_rows)
    # One partition, not one per Arrow batch (see klout_spark.pagerank.frame_from_arrow).
    with _session_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", "100"):
        assert inflow.top_shares_on_driver(edges, ranks, damping=0.85, top_k=5).rdd.getNumPartitions() == 1
    accounts = {row[:3] for row in spark_rows}
    assert len(accounts) > 200  # of the 240 accounts of the 3 dates and 2 networks
    assert max(row[3] for row in spark_rows) == 5
    assert all(row[4] != "unranked" for row in spark_rows)
    # The inputs have ties in flow, so the byte-order tie-break is exercised.
    flows = [(row[:3], row[5]) for row in spark_rows]
    assert len(set(flows)) < len(flows)


def test_shares_are_of_the_whole_inflow(spark):
    edges = spark.createDataFrame(
        [(DAY, "twitter", "big", "a", 1, 1.0), (DAY, "twitter", "small", "a", 1, 0.5)], S.ENGAGEMENT_EDGES_SCHEMA
    )
    ranks = spark.createDataFrame(
        [(DAY, "twitter", "big", 1.0, 0.6), (DAY, "twitter", "small", 1.0, 0.2), (DAY, "twitter", "a", 1.0, 0.2)],
        S.NETWORK_RANK_SCHEMA,
    )
    share_big = 0.6 / (0.6 + 0.2 * 0.5)
    for cut in (inflow.top_shares, inflow.top_shares_on_driver):
        rows = _rows(cut(edges, ranks, damping=0.85, top_k=1))
        assert rows == [(DAY, "twitter", "a", 1, "big", pytest.approx(share_big, rel=1e-12))], cut.__name__


def test_an_account_whose_engagers_have_no_rank_mass_lists_none(spark):
    edges = spark.createDataFrame(
        [(DAY, "twitter", "bot", "a", 1, 1.0), (DAY, "twitter", "b", "c", 1, 1.0)], S.ENGAGEMENT_EDGES_SCHEMA
    )
    ranks = spark.createDataFrame(
        [(DAY, "twitter", "bot", 0.0, 0.0), (DAY, "twitter", "b", 1.0, 0.5),
         (DAY, "twitter", "a", 1.0, 0.25), (DAY, "twitter", "c", 1.0, 0.25)],
        S.NETWORK_RANK_SCHEMA,
    )
    for cut in (inflow.top_shares, inflow.top_shares_on_driver):
        rows = _rows(cut(edges, ranks, damping=0.85, top_k=5))
        assert rows == [(DAY, "twitter", "c", 1, "b", 1.0)], cut.__name__


def test_dates_are_grouped_up_to_the_edge_limit_in_order():
    counts = {DAY + timedelta(days=d): n for d, n in enumerate([3, 4, 9, 2, 2, 11, 1])}
    groups, too_large = inflow.driver_batches(counts, max_edges=10)
    days = [[(day - DAY).days for day in group] for group in groups]
    assert days == [[0, 1], [2], [3, 4, 6]]
    assert [(day - DAY).days for day in too_large] == [5]
    assert inflow.driver_batches({}, max_edges=10) == ([], [])


# 0: all in Spark; 500: the first two dates (about 200 and 400 edges) on the driver, the others in Spark.
@pytest.mark.parametrize("driver_max_edges", [0, 500, 10**9])
def test_any_split_between_driver_and_spark_gives_the_same_rows(spark, driver_max_edges):
    edges, ranks = _graph(spark, dates=4, seed=11)
    want = _rows(inflow.top_shares(edges, ranks, damping=0.85, top_k=3))
    got = _rows(inflow.top_shares_by_size(edges, ranks, damping=0.85, top_k=3, driver_max_edges=driver_max_edges))
    _assert_same(got, want)
