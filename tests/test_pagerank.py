"""Weighted, personalized PageRank: both executions against networkx and each other."""

from __future__ import annotations

from datetime import date

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import columns as C
from klout_spark import pagerank as pr
from klout_spark import pipeline
from klout_spark.config import load_settings
from klout_spark.errors import MissingColumnsError
from tests.factories import persistent_rdd_ids

EDGE_SCHEMA = T.StructType(
    [
        T.StructField(C.SRC, T.StringType()),
        T.StructField(C.DST, T.StringType()),
        T.StructField(C.WEIGHT, T.DoubleType()),
    ]
)
TELEPORT_SCHEMA = T.StructType(
    [T.StructField(C.NODE, T.StringType()), T.StructField(C.TRUST, T.DoubleType())]
)
DAMPING = 0.85


# --------------------------------------------------------------------------- graphs


def _rows_of(graph: nx.Graph, prefix: str = "") -> list[tuple[str, str, float]]:
    """Directed weighted edge rows; an undirected graph gives both directions."""
    directed = graph.to_directed() if not graph.is_directed() else graph
    return [
        (f"{prefix}{u}", f"{prefix}{v}", float(data.get("weight", 1.0)))
        for u, v, data in directed.edges(data=True)
    ]


def _uneven_trust(nodes: list[str], seed: int) -> dict[str, float]:
    """Non-uniform trust with about a third of the nodes at 0."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.1, 2.0, len(nodes)) * (rng.uniform(size=len(nodes)) > 0.33)
    values[0] = 1.0  # never all zero
    return {node: float(value) for node, value in zip(nodes, values, strict=True)}


def _generated_rows(prefix: str = "") -> list[tuple[str, str, float]]:
    """300 nodes: weighted, directed, 30 dangling nodes, two self-loops and duplicate rows."""
    rng = np.random.default_rng(7)
    rows = []
    for source in range(270):
        for target in rng.choice(300, size=rng.integers(1, 9), replace=False):
            rows.append((f"{prefix}n{source}", f"{prefix}n{target}", float(rng.lognormal(0.0, 1.0))))
    rows += [(f"{prefix}n5", f"{prefix}n5", 2.0), (f"{prefix}n9", f"{prefix}n9", 0.5)]
    rows += [(src, dst, 0.25) for src, dst, _ in rows[:20]]  # duplicate pairs: weights add up
    return rows


def _real_graphs() -> dict[str, list[tuple[str, str, float]]]:
    return {
        "karate": _rows_of(nx.karate_club_graph()),
        "les_miserables": _rows_of(nx.les_miserables_graph()),
        "florentine": _rows_of(nx.florentine_families_graph()),
        "davis": _rows_of(nx.davis_southern_women_graph()),
    }


def _rows_of_prefixed(name: str, rows: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    return [(f"{name}:{src}", f"{name}:{dst}", weight) for src, dst, weight in rows]


def _graph_rows(name: str) -> list[tuple[str, str, float]]:
    return _generated_rows() if name == "generated" else _real_graphs()[name]


def _nodes_of(rows: list[tuple[str, str, float]]) -> list[str]:
    return sorted({src for src, _, _ in rows} | {dst for _, dst, _ in rows})


def _networkx_ranks(
    rows: list[tuple[str, str, float]], trust: dict[str, float], damping: float
) -> dict[str, float]:
    graph = nx.DiGraph()
    graph.add_nodes_from(_nodes_of(rows))
    for src, dst, weight in rows:
        previous = graph.get_edge_data(src, dst, default={"weight": 0.0})["weight"]
        graph.add_edge(src, dst, weight=previous + weight)
    return nx.pagerank(graph, alpha=damping, personalization=trust, weight="weight", tol=1e-12, max_iter=1000)


# --------------------------------------------------------------------------- helpers


def _frames(spark, rows, trust):
    edges = spark.createDataFrame(rows, EDGE_SCHEMA)
    teleport = spark.createDataFrame(sorted(trust.items()), TELEPORT_SCHEMA)
    return edges, teleport


def _ranks(result: pr.PageRankResult) -> dict[str, float]:
    return {row[C.NODE]: row[C.PAGERANK] for row in result.ranks.collect()}


def _l1(left: dict[str, float], right: dict[str, float]) -> float:
    assert set(left) == set(right)
    return sum(abs(left[node] - right[node]) for node in left)


@pytest.fixture(scope="module")
def union_case(spark):
    """The four networkx graphs and the generated one as components of one graph (about 460 nodes).

    The distributed path runs once on it (not once per graph), to keep the suite fast.
    """
    rows = [row for name, graph_rows in _real_graphs().items() for row in _rows_of_prefixed(name, graph_rows)]
    rows += _generated_rows(prefix="generated:")
    trust = _uneven_trust(_nodes_of(rows), seed=11)
    edges, teleport = _frames(spark, rows, trust)
    return rows, trust, edges, teleport


# An L1 residual r bounds the distance to the fixed point by r * damping / (1 - damping):
# with damping 0.7 and tol 1e-7, within 2.4e-7. Both are chosen for speed (the distributed
# path costs about 0.2 s an iteration on a tiny graph): 37 iterations here, against 119 with
# damping 0.85 and tol 1e-10 (the bipartite Davis graph converges slowest). The per-graph
# tests of the local path use damping 0.85.
UNION_DAMPING = 0.7
UNION_TOL = 1e-7


@pytest.fixture(scope="module")
def union_local(union_case):
    _, _, edges, teleport = union_case
    return pr.pagerank(edges, teleport, damping=UNION_DAMPING, tol=UNION_TOL, method="local")


@pytest.fixture(scope="module")
def union_distributed(union_case):
    _, _, edges, teleport = union_case
    return pr.pagerank(edges, teleport, damping=UNION_DAMPING, tol=UNION_TOL, method="distributed")


# --------------------------------------------------------------------------- against networkx


@pytest.mark.parametrize("name", ["karate", "les_miserables", "florentine", "davis", "generated"])
def test_local_matches_networkx(spark, name):
    rows = _graph_rows(name)
    trust = _uneven_trust(_nodes_of(rows), seed=3)
    edges, teleport = _frames(spark, rows, trust)

    result = pr.pagerank(edges, teleport, damping=DAMPING, tol=1e-10, method="local")

    assert result.method == "local"
    assert result.converged
    assert _l1(_ranks(result), _networkx_ranks(rows, trust, DAMPING)) < 1e-6


def test_distributed_matches_networkx_on_all_graphs(union_case, union_distributed):
    rows, trust, _, _ = union_case

    assert union_distributed.method == "distributed"
    assert union_distributed.converged
    assert _l1(_ranks(union_distributed), _networkx_ranks(rows, trust, UNION_DAMPING)) < 1e-6


def test_local_matches_networkx_on_all_graphs(union_case, union_local):
    rows, trust, _, _ = union_case

    assert _l1(_ranks(union_local), _networkx_ranks(rows, trust, UNION_DAMPING)) < 1e-6


def test_local_and_distributed_agree(union_local, union_distributed):
    assert _l1(_ranks(union_local), _ranks(union_distributed)) < 1e-9
    assert union_local.iterations == union_distributed.iterations
    assert np.allclose(union_local.residuals, union_distributed.residuals, rtol=1e-6, atol=1e-13)
    assert (union_local.node_count, union_local.edge_count) == (
        union_distributed.node_count,
        union_distributed.edge_count,
    )


def test_counts_sum_duplicate_pairs(union_case, union_local):
    rows, _, _, _ = union_case

    assert union_local.node_count == len(_nodes_of(rows))
    assert union_local.edge_count == len({(src, dst) for src, dst, _ in rows}) < len(rows)


def test_ranks_frame_contract(union_distributed):
    ranks = union_distributed.ranks

    assert [(field.name, field.dataType) for field in ranks.schema.fields] == [
        (C.NODE, T.StringType()),
        (C.PAGERANK, T.DoubleType()),
    ]
    values = _ranks(union_distributed)
    assert len(values) == ranks.count() == union_distributed.node_count
    assert sum(values.values()) == pytest.approx(1.0, abs=1e-9)


def test_ranks_built_on_the_driver_are_read_from_an_rdd(spark, union_local):
    """A LocalRelation would carry the rank rows inside every plan built on them (the ranks of
    a 30-date backfill at L: 354 s to solve, cache, check and write, against 212 s from an RDD)."""
    setting = "spark.sql.execution.arrow.localRelationThreshold"
    before = spark.conf.get(setting)
    frame = pr.frame_from_arrow(spark, pa.table({C.NODE: ["a", "b"], C.PAGERANK: [0.25, 0.75]}))

    assert sorted(map(tuple, frame.collect())) == [("a", 0.25), ("b", 0.75)]
    assert spark.conf.get(setting) == before
    for ranks in (frame, union_local.ranks):
        plan = ranks._jdf.queryExecution().optimizedPlan().toString()
        assert "LogicalRDD" in plan and "LocalRelation" not in plan, plan


def test_a_frame_from_arrow_has_a_partition_per_million_rows_not_per_batch(spark, monkeypatch):
    """A write makes a file per partition and date: a partition per Arrow batch made small files."""
    monkeypatch.setattr(pr, "FRAME_ROWS_PER_PARTITION", 2_500)
    with pr._session_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", "100"):
        frames = {rows: pr.frame_from_arrow(spark, pa.table({"x": np.arange(rows)})) for rows in (0, 999, 5_001)}
    assert {rows: frame.rdd.getNumPartitions() for rows, frame in frames.items()} == {0: 1, 999: 1, 5_001: 3}
    assert frames[5_001].agg(F.sum("x")).first()[0] == sum(range(5_001))


def test_scipy_reference_matches_networkx():
    rows = _generated_rows()
    nodes = _nodes_of(rows)
    trust = _uneven_trust(nodes, seed=5)
    index = {node: position for position, node in enumerate(nodes)}
    src = np.array([index[s] for s, _, _ in rows])
    dst = np.array([index[d] for _, d, _ in rows])
    weight = np.array([w for _, _, w in rows])

    solved = pr.scipy_power_iteration(
        src, dst, weight, np.array([trust[n] for n in nodes]), damping=DAMPING, tol=1e-10, max_iter=200
    )

    expected = _networkx_ranks(rows, trust, DAMPING)
    assert solved.converged
    assert _l1(dict(zip(nodes, solved.ranks, strict=True)), expected) < 1e-6


# --------------------------------------------------------------------------- worked by hand


def _chain(spark):
    """a -> b -> {c: 3 (two rows), d: 1}; c and d dangling; e isolated with trust 0; trust on a only.

    With damping 1/5 and m = x_c + x_d the dangling mass (all sent back to a, the only trusted node):
    x_a = m/5 + 4/5, x_b = x_a/5, x_c = (3/4) x_b/5, x_d = (1/4) x_b/5, so m = x_b/5 = x_a/25,
    x_a = 4/5 / (1 - 1/125) = 25/31 and x = (25/31, 5/31, 3/124, 1/124, 0).
    """
    edges = spark.createDataFrame(
        [("a", "b", 1.0), ("b", "c", 1.0), ("b", "c", 2.0), ("b", "d", 1.0)], EDGE_SCHEMA
    )
    teleport = spark.createDataFrame([("a", 1.0), ("e", 0.0)], TELEPORT_SCHEMA)
    return edges, teleport


CHAIN_DAMPING = 0.2
CHAIN_RANKS = {"a": 25 / 31, "b": 5 / 31, "c": 3 / 124, "d": 1 / 124, "e": 0.0}


@pytest.mark.parametrize("method", ["local", "distributed"])
def test_chain_worked_by_hand(spark, method):
    edges, teleport = _chain(spark)

    result = pr.pagerank(edges, teleport, damping=CHAIN_DAMPING, tol=1e-13, method=method)

    assert result.converged
    assert (result.node_count, result.edge_count) == (5, 3)
    assert _ranks(result) == pytest.approx(CHAIN_RANKS, abs=1e-13)


def test_textbook_loop_computes_the_same_iterations(spark):
    edges, teleport = _chain(spark)

    textbook = pr.textbook_pagerank(edges, teleport, damping=CHAIN_DAMPING, iterations=3)
    local = pr.pagerank(edges, teleport, damping=CHAIN_DAMPING, tol=1e-14, max_iter=3, method="local")

    assert len(textbook.iteration_seconds) == 3
    assert _ranks(textbook) == pytest.approx(_ranks(local), abs=1e-15)


# --------------------------------------------------------------------------- iterations and residuals


@pytest.fixture(scope="module")
def karate(spark):
    rows = _rows_of(nx.karate_club_graph())
    trust = _uneven_trust(_nodes_of(rows), seed=3)
    return _frames(spark, rows, trust)


def test_max_iter_stops_without_converging(karate):
    edges, teleport = karate

    result = pr.pagerank(edges, teleport, tol=1e-10, max_iter=2, method="local")

    assert not result.converged
    assert result.iterations == 2
    assert len(result.residuals) == 2
    assert result.residuals[-1] >= 1e-10
    assert sum(_ranks(result).values()) == pytest.approx(1.0, abs=1e-12)


def test_residuals_shrink_to_below_tol(union_local, union_distributed):
    for result in (union_local, union_distributed):
        residuals = np.array(result.residuals)
        assert residuals[-1] < UNION_TOL <= residuals[-2]
        # Power iteration contracts by a factor `damping` per step (in L1), up to a transient.
        assert np.all(residuals[5:] <= residuals[:-5])
        assert len(result.iteration_seconds) == result.iterations == len(residuals)


def test_checkpoint_every_keeps_the_iterates_and_releases_the_rest(spark, karate):
    edges, teleport = karate
    before = persistent_rdd_ids(spark)

    # Iterations 1, 2 and 4 are persisted, 3 and 5 (the last) checkpointed.
    sparse = pr.pagerank_distributed(
        edges, teleport, damping=DAMPING, tol=1e-10, max_iter=5, checkpoint_every=3, layout="joined"
    )

    # What remains is what `ranks` needs: the node-id checkpoint and the final state.
    assert len(persistent_rdd_ids(spark) - before) <= 2
    local = pr.pagerank(edges, teleport, tol=1e-10, max_iter=5, method="local")
    assert sparse.residuals == pytest.approx(local.residuals, rel=1e-9)
    assert _l1(_ranks(sparse), _ranks(local)) < 1e-12


@pytest.mark.parametrize("layout", ["joined", "blocks"])
def test_each_distributed_layout_matches_local(spark, karate, layout):
    """Also: of the blocks layout only the node-id checkpoint that ``ranks`` reads stays cached."""
    edges, teleport = karate
    before = persistent_rdd_ids(spark)

    distributed = pr.pagerank_distributed(edges, teleport, damping=DAMPING, tol=1e-10, max_iter=6, layout=layout)

    if layout == "blocks":
        assert len(persistent_rdd_ids(spark) - before) <= 1
    local = pr.pagerank(edges, teleport, tol=1e-10, max_iter=6, method="local")
    assert distributed.residuals == pytest.approx(local.residuals, rel=1e-9)
    assert _l1(_ranks(distributed), _ranks(local)) < 1e-12
    assert (distributed.node_count, distributed.edge_count) == (local.node_count, local.edge_count)


def test_blocks_layout_refuses_more_nodes_than_it_broadcasts(karate, monkeypatch):
    edges, teleport = karate
    monkeypatch.setattr(pr, "BROADCAST_MAX_NODES", 10)

    with pytest.raises(ValueError, match="34 nodes is over BROADCAST_MAX_NODES=10"):
        pr.pagerank_distributed(edges, teleport, damping=DAMPING, tol=1e-10, max_iter=2, layout="blocks")
    with pytest.raises(ValueError, match="'layout' must be one of"):
        pr.pagerank_distributed(edges, teleport, damping=DAMPING, tol=1e-10, max_iter=2, layout="rows")


def test_auto_goes_distributed_above_local_max_edges(spark, karate):
    """Also: max_iter stops the distributed path, and it restores adaptive execution."""
    edges, teleport = karate
    key = "spark.sql.adaptive.enabled"
    previous = spark.conf.get(key)
    spark.conf.set(key, "true")
    try:
        distributed = pr.pagerank(edges, teleport, tol=1e-10, max_iter=2, local_max_edges=10)
        assert spark.conf.get(key) == "true"
    finally:
        spark.conf.set(key, previous)

    assert distributed.method == "distributed"
    assert not distributed.converged
    assert distributed.iterations == len(distributed.residuals) == 2
    local = pr.pagerank(edges, teleport, tol=1e-10, max_iter=2, local_max_edges=10_000)
    assert local.method == "local"
    assert distributed.residuals == pytest.approx(local.residuals, rel=1e-9)
    assert _l1(_ranks(distributed), _ranks(local)) < 1e-12


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("method", ["local", "distributed"])
def test_zero_total_trust_is_an_error(spark, method):
    edges, _ = _chain(spark)
    teleport = spark.createDataFrame([("a", 0.0), ("b", 0.0)], TELEPORT_SCHEMA)

    with pytest.raises(ValueError, match="'teleport' has total 'trust' 0"):
        pr.pagerank(edges, teleport, method=method)


def test_teleport_without_graph_nodes_is_an_error(spark):
    edges, _ = _chain(spark)
    teleport = spark.createDataFrame([], TELEPORT_SCHEMA)

    with pytest.raises(ValueError, match="'teleport'"):
        pr.pagerank(edges, teleport, method="local")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "gpu"}, "'method' must be one of"),
        ({"damping": 1.0}, r"'damping' must be in \[0, 1\)"),
        ({"damping": -0.1}, r"'damping' must be in \[0, 1\)"),
        ({"damping": float("nan")}, r"'damping' must be in \[0, 1\)"),
        ({"tol": 0.0}, "'tol' must be > 0"),
        ({"max_iter": 0}, "'max_iter' must be an int >= 1"),
        ({"checkpoint_every": 0}, "'checkpoint_every' must be an int >= 1"),
        ({"local_max_edges": -1}, "'local_max_edges' must be an int >= 0"),
    ],
)
def test_bad_parameters_are_errors(spark, kwargs, message):
    edges, teleport = _chain(spark)

    with pytest.raises(ValueError, match=message):
        pr.pagerank(edges, teleport, **kwargs)


@pytest.mark.parametrize(("method", "weight"), [("local", 0.0), ("local", None), ("distributed", -1.0)])
def test_non_positive_or_null_weight_is_an_error(spark, method, weight):
    edges = spark.createDataFrame([("a", "b", 1.0), ("b", "a", weight)], EDGE_SCHEMA)
    teleport = spark.createDataFrame([("a", 1.0)], TELEPORT_SCHEMA)

    with pytest.raises(ValueError, match="non-positive 'weight'"):
        pr.pagerank(edges, teleport, method=method)


def test_null_node_id_is_an_error(spark):
    edges = spark.createDataFrame([("a", "b", 1.0), ("b", None, 1.0)], EDGE_SCHEMA)
    teleport = spark.createDataFrame([("a", 1.0)], TELEPORT_SCHEMA)

    with pytest.raises(ValueError, match="null node id"):
        pr.pagerank(edges, teleport, method="local")


def test_negative_trust_is_an_error(spark):
    edges, _ = _chain(spark)
    teleport = spark.createDataFrame([("a", 1.0), ("b", -0.5)], TELEPORT_SCHEMA)

    with pytest.raises(ValueError, match="negative 'trust'"):
        pr.pagerank(edges, teleport, method="local")


def test_missing_column_is_an_error(spark):
    edges, teleport = _chain(spark)

    with pytest.raises(MissingColumnsError, match=r"missing columns \['weight'\]"):
        pr.pagerank(edges.drop(C.WEIGHT), teleport, method="local")


# --------------------------------------------------------------------------- many graphs in one pass


def _keyed_frames(spark, graphs: dict[str, list[tuple[str, str, float]]]):
    """``edges`` and ``teleport`` of graphs keyed by ``as_of`` (a string here), and each graph's trust."""
    trusts = {key: _uneven_trust(_nodes_of(rows), seed=n) for n, (key, rows) in enumerate(graphs.items())}
    edges = spark.createDataFrame(
        [(key, *row) for key, rows in graphs.items() for row in rows], "as_of string, src string, dst string, weight double"
    )
    teleport = spark.createDataFrame(
        [(key, node, value) for key, trust in trusts.items() for node, value in sorted(trust.items())],
        "as_of string, node string, trust double",
    )
    return edges, teleport, trusts


def test_graphs_keyed_by_date_are_each_solved_as_if_alone(spark):
    """Four graphs (two dates share node names) in one pass: each matches networkx and its own solo run bit for bit."""
    graphs = {
        "2026-10-01": _real_graphs()["karate"],
        "2026-10-02": _generated_rows(),
        "2026-10-03": _real_graphs()["florentine"],
        "2026-10-04": _real_graphs()["karate"][:60],  # the same names as the first date, another graph
    }
    edges, teleport, trusts = _keyed_frames(spark, graphs)

    keyed = pr.pagerank_local_by_key(edges, teleport, key=C.AS_OF, damping=DAMPING, tol=1e-12, max_iter=1000)

    assert sorted(keyed.results) == sorted(graphs)
    all_ranks = {(row[C.AS_OF], row[C.NODE]): row[C.PAGERANK] for row in keyed.ranks.collect()}
    for key, rows in graphs.items():
        alone = pr.pagerank_local(*_frames(spark, rows, trusts[key]), damping=DAMPING, tol=1e-12, max_iter=1000)
        mine = {node: rank for (at, node), rank in all_ranks.items() if at == key}
        assert mine == _ranks(alone)  # the same bits as the graph solved alone
        assert _ranks(keyed.results[key]) == mine
        assert keyed.results[key].residuals == alone.residuals
        assert keyed.results[key].node_count == len(_nodes_of(rows)) == alone.node_count
        assert _l1(mine, _networkx_ranks(rows, trusts[key], DAMPING)) < 1e-9


@pytest.mark.parametrize("table", ["presence", "unique"])
def test_driver_numbering_is_dense_in_key_then_name_order(monkeypatch, table):
    if table == "unique":  # force the sort-based branch
        monkeypatch.setattr(pr, "_PRESENCE_SLOTS_PER_ROW", 0)
        monkeypatch.setattr(pr, "_PRESENCE_MIN_SLOTS", 0)
    edge_keys = pa.chunked_array([[2, 1], [2]])  # several chunks, as a collect gives them
    names = (pa.chunked_array([["b", "a"], ["c"]]), pa.chunked_array([["a"], ["c", "b"]]), pa.chunked_array([["Z"]]))

    numbered = pr.numbered_on_driver(names=names, keys=(edge_keys, edge_keys, pa.chunked_array([[1]])))

    # Key 1 holds a, c and Z; key 2 holds a, b and c; byte order puts "Z" before "a", as Spark sorts.
    assert numbered.graphs == [(1, 0, 3), (2, 3, 3)]
    assert numbered.key_of_id.to_pylist() == [1, 1, 1, 2, 2, 2]
    assert numbered.node_of_id.to_pylist() == ["Z", "a", "c", "a", "b", "c"]
    src, dst, teleport = (ids.tolist() for ids in numbered.ids)
    assert (src, dst, teleport) == ([4, 1, 5], [3, 2, 4], [0])
    assert all(ids.dtype == np.int32 for ids in numbered.ids)


def test_driver_numbering_of_nothing_is_empty():
    empty = pa.chunked_array([], type=pa.string())
    keys = pa.chunked_array([], type=pa.date32())

    numbered = pr.numbered_on_driver(names=(empty, empty), keys=(keys, keys))

    assert numbered.graphs == [] and numbered.node_count == 0
    assert [len(ids) for ids in numbered.ids] == [0, 0]


@pytest.mark.parametrize("solve", [pr.pagerank_local_by_key, pr.pagerank_distributed_by_key])
def test_a_keyed_graph_without_trust_is_named(spark, solve):
    edges = spark.createDataFrame(
        [("a", "x", "y", 1.0), ("b", "x", "y", 1.0)], "as_of string, src string, dst string, weight double"
    )
    teleport = spark.createDataFrame([("a", "x", 1.0), ("b", "x", 0.0)], "as_of string, node string, trust double")
    where = solve.__name__.removesuffix("_by_key")
    with pytest.raises(ValueError, match=rf"{where}\(as_of=b\).*total 'trust' 0.0"):
        solve(edges, teleport, key=C.AS_OF, damping=DAMPING, tol=1e-10, max_iter=100)


def _keyed_ranks(keyed: pr.KeyedPageRank) -> dict[tuple[str, str], float]:
    return {(row[C.AS_OF], row[C.NODE]): row[C.PAGERANK] for row in keyed.ranks.collect()}


def test_distributed_pass_over_keyed_graphs_matches_the_local_pass(spark):
    """Graphs converge after different iteration counts; each keeps its own, as in the local pass."""
    graphs = {
        "2026-10-01": _real_graphs()["karate"],
        "2026-10-02": _generated_rows(),
        "2026-10-03": _real_graphs()["davis"],  # bipartite: the slowest to converge
        "2026-10-04": _real_graphs()["karate"][:60],  # the same names as the first date, another graph
    }
    edges, teleport, _ = _keyed_frames(spark, graphs)
    params = {"key": C.AS_OF, "damping": UNION_DAMPING, "tol": UNION_TOL, "max_iter": 1000}

    distributed = pr.pagerank_distributed_by_key(edges, teleport, **params)
    local = pr.pagerank_local_by_key(edges, teleport, **params)

    assert sorted(distributed.results) == sorted(graphs)
    assert len({local.results[key].iterations for key in graphs}) > 1
    for key in graphs:
        mine, theirs = distributed.results[key], local.results[key]
        assert mine.method == "distributed" and mine.converged
        assert mine.iterations == theirs.iterations
        assert mine.residuals == pytest.approx(theirs.residuals, rel=1e-6, abs=1e-13)
        assert (mine.node_count, mine.edge_count) == (theirs.node_count, theirs.edge_count)
        assert _l1(_ranks(mine), _ranks(theirs)) < 1e-12
    all_mine, all_theirs = _keyed_ranks(distributed), _keyed_ranks(local)
    assert all_mine.keys() == all_theirs.keys()
    assert max(abs(all_mine[k] - all_theirs[k]) for k in all_mine) < 1e-12


def test_keyed_graphs_over_the_broadcast_limit_are_solved_one_by_one(spark, monkeypatch):
    graphs = {"2026-10-01": _real_graphs()["florentine"], "2026-10-02": _real_graphs()["karate"]}
    edges, teleport, _ = _keyed_frames(spark, graphs)
    params = {"key": C.AS_OF, "damping": DAMPING, "tol": 1e-10, "max_iter": 4}
    monkeypatch.setattr(pr, "BROADCAST_MAX_NODES", 20)  # 15 + 34 nodes: florentine in blocks, karate joined

    distributed = pr.pagerank_distributed_by_key(edges, teleport, **params)
    local = pr.pagerank_local_by_key(edges, teleport, **params)

    for key in graphs:
        assert distributed.results[key].residuals == pytest.approx(local.results[key].residuals, rel=1e-9)
        assert _l1(_ranks(distributed.results[key]), _ranks(local.results[key])) < 1e-12
    all_mine, all_theirs = _keyed_ranks(distributed), _keyed_ranks(local)
    assert all_mine.keys() == all_theirs.keys()
    assert max(abs(all_mine[k] - all_theirs[k]) for k in all_mine) < 1e-12


@pytest.mark.parametrize(("method", "layout"), [("local", None), ("distributed", "blocks"), ("distributed", "joined")])
def test_a_graph_of_isolated_nodes_ranks_by_trust(spark, method, layout):
    """No edge at all (every block partition empty): every node is dangling, so the ranks are the teleport vector."""
    edges = spark.createDataFrame([], EDGE_SCHEMA)
    teleport = spark.createDataFrame([("a", 1.0), ("b", 3.0)], TELEPORT_SCHEMA)

    if layout is None:
        result = pr.pagerank(edges, teleport, tol=1e-12, method=method)
    else:
        result = pr.pagerank_distributed(edges, teleport, damping=DAMPING, tol=1e-12, max_iter=10, layout=layout)

    assert result.converged and result.iterations == 2
    assert (result.node_count, result.edge_count) == (2, 0)
    assert _ranks(result) == pytest.approx({"a": 0.25, "b": 0.75}, abs=1e-15)


def _two_dated_graphs(spark):
    """Karate on 2026-10-01 and Florentine families on 2026-10-02, keyed by ``as_of`` dates."""
    graphs = {date(2026, 10, 1): _real_graphs()["karate"], date(2026, 10, 2): _real_graphs()["florentine"]}
    edges, teleport, _ = _keyed_frames(spark, {str(day): rows for day, rows in graphs.items()})
    return graphs, edges.withColumn(C.AS_OF, F.to_date(C.AS_OF)), teleport.withColumn(C.AS_OF, F.to_date(C.AS_OF))


def test_propagate_solves_dates_one_by_one_above_local_max_edges(spark):
    """auto with more edge rows in all than ``local_max_edges``: each date alone, by its own size, same ranks."""
    graphs, edges, teleport = _two_dated_graphs(spark)
    karate_day, florentine_day = sorted(graphs)
    # One edge row fewer than karate's: karate goes distributed, Florentine (smaller) local.
    karate_edges = edges.filter(F.col(C.AS_OF) == F.lit(karate_day)).count()
    cfg = load_settings(
        "local", overrides=[f"propagate.local_max_edges={karate_edges - 1}", "propagate.tol=1.0e-10"]
    ).propagate

    results, ranks = pipeline._pagerank_by_date(edges, teleport, sorted(graphs), cfg)

    assert (results[karate_day].method, results[florentine_day].method) == ("distributed", "local")
    stored = {(row[C.AS_OF], row[C.NODE]): row[C.PAGERANK] for row in ranks.collect()}
    for day in graphs:
        alone = pr.pagerank(
            edges.filter(F.col(C.AS_OF) == F.lit(day)).drop(C.AS_OF),
            teleport.filter(F.col(C.AS_OF) == F.lit(day)).drop(C.AS_OF),
            damping=cfg.damping, tol=cfg.tol, method="local",
        )
        assert results[day].edge_count == alone.edge_count
        assert results[day].iterations == alone.iterations
        mine = {node: rank for (at, node), rank in stored.items() if at == day}
        assert _l1(mine, _ranks(alone)) < 1e-12


@pytest.mark.parametrize("method", ["local", "distributed"])
def test_propagate_solves_all_dates_of_a_chunk_in_one_pass(spark, method):
    """The pipeline's dispatch: ``method`` local or distributed, every date of the pass at once, the same ranks."""
    graphs, edges, teleport = _two_dated_graphs(spark)
    cfg = load_settings("local", overrides=[f"propagate.method={method}", "propagate.tol=1.0e-10"]).propagate

    results, ranks = pipeline._pagerank_by_date(edges, teleport, sorted(graphs), cfg)

    alone = {
        day: pr.pagerank(
            edges.filter(F.col(C.AS_OF) == F.lit(day)).drop(C.AS_OF),
            teleport.filter(F.col(C.AS_OF) == F.lit(day)).drop(C.AS_OF),
            damping=cfg.damping, tol=cfg.tol, method="local",
        )
        for day in graphs
    }
    stored = {(row[C.AS_OF], row[C.NODE]): row[C.PAGERANK] for row in ranks.collect()}
    for day in graphs:
        assert results[day].method == method
        assert results[day].iterations == alone[day].iterations
        mine = {node: rank for (at, node), rank in stored.items() if at == day}
        assert _l1(mine, _ranks(alone[day])) < 1e-12
