"""Weighted, personalized PageRank over the engagement graph: one contract, two executions.

The "Network Impact" sub-score is the fixed point of a trust-personalized,
weighted PageRank (TrustRank style). :func:`pagerank` computes it with the
semantics of ``networkx.pagerank(G, alpha=damping, personalization=trust,
weight="weight", dangling=None)`` and picks one of two executions by graph size:

- :func:`pagerank_local`: the edges cross to the driver as Arrow batches in
  one collect, the driver maps the ids to dense integers (Arrow's hash
  dictionary), and the power iteration runs as SciPy sparse matrix-vector
  products. :func:`pagerank_local_by_key` does the same for many graphs keyed
  by a column (the ``as_of`` dates of a backfill) in one collect.
- :func:`pagerank_distributed`: the edges stay in the executors, for graphs
  that do not fit the driver. Up to :data:`BROADCAST_MAX_NODES` nodes they are
  cached as sparse blocks and each iteration ships the blocks the rank vector
  (``"blocks"``); beyond, ranks and edges are DataFrames joined each
  iteration (``"joined"``). :func:`pagerank_distributed_by_key` solves many
  keyed graphs in one pass of the blocks layout.

Both return a :class:`PageRankResult` and agree to 1e-9 (L1) on the same graph.
:func:`textbook_pagerank` (the naive DataFrame loop) and
:func:`scipy_power_iteration` (a bare SciPy reference on arrays) exist for the
benchmark.

The math, for node set V (edge endpoints plus teleport nodes), N = |V|::

    W[u, v]  = w(u, v) / sum_out(u)           (duplicate (u, v) rows summed)
    p        = trust / sum(trust)              (missing nodes: trust 0)
    x_0      = 1 / N                           (networkx's default nstart)
    x_{k+1}  = d * (x_k W + m_k p) + (1 - d) p,  m_k = sum of x_k over dangling nodes
    r_{k+1}  = || x_{k+1} - x_k ||_1           (stop when r < tol)
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial, reduce
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from klout_spark import columns as C
from klout_spark.errors import require_columns

log = logging.getLogger(__name__)

METHODS = ("auto", "local", "distributed")
FRAME_ROWS_PER_PARTITION = 1_000_000  # see frame_from_arrow
LAYOUTS = ("auto", "blocks", "joined")

#: Distributed path: when the graph has at most this many nodes, the "blocks"
#: layout ships the rank vector to the executors each iteration (8 bytes a
#: node; the driver holds a few such vectors) and the edges stay in their
#: blocks. Above it, the "joined" layout keeps the ranks in a DataFrame
#: co-partitioned with the edges by source.
BROADCAST_MAX_NODES = 2_000_000
#: Blocks layout: at most about this many edge rows per block (a block is one
#: row of arrays, about 16 bytes an edge; more blocks than shuffle partitions
#: when the edges need it).
BLOCK_MAX_EDGES = 4_000_000

# Internal column names; the leading underscore keeps them clear of caller columns.
_ID = "_id"
_SRC_ID = "_src_id"
_DST_ID = "_dst_id"
_W = "_w"
_X = "_x"
_X_PREV = "_x_prev"
_P = "_p"
_DANGLING = "_dangling"
_CONTRIB = "_contrib"
_MID = "_mid"
_BAD = "_bad"
_SELF = "_self"
_KEY = "_graph"
_NODES = "_nodes"
_INDPTR = "_indptr"
_INDICES = "_indices"
_DATA = "_data"
_PAIRS = "_pairs"
_Y = "_y"
_BLOCK_SCHEMA = (
    f"{_NODES} array<int>, {_INDPTR} array<bigint>, {_INDICES} array<int>, {_DATA} array<double>, "
    f"{_PAIRS} array<bigint>"
)
_PRODUCT_SCHEMA = f"{_NODES} array<int>, {_Y} array<double>"

# monotonically_increasing_id() = partition index << 33 | row index within the partition.
_ROW_BITS = 33


@dataclass(frozen=True)
class PageRankResult:
    """What a PageRank run returns, whichever execution computed it.

    Attributes
    ----------
    ranks
        Columns ``node`` (string) and ``pagerank`` (double); one row per node of
        the graph (edge endpoints and teleport nodes); the ranks sum to 1.
    iterations
        Power iterations run.
    residuals
        L1 change of the rank vector at every iteration, in order.
    converged
        Whether the last residual fell below ``tol`` (``False`` after ``max_iter``).
    method
        ``"local"`` or ``"distributed"`` (``"textbook"`` for :func:`textbook_pagerank`).
    node_count, edge_count
        Nodes, and distinct ``(src, dst)`` pairs after summing duplicates.
    iteration_seconds
        Wall time of every iteration, in order (for benchmarks and run logs).
    """

    ranks: DataFrame
    iterations: int
    residuals: tuple[float, ...]
    converged: bool
    method: str
    node_count: int
    edge_count: int
    iteration_seconds: tuple[float, ...] = ()


class PowerIteration(NamedTuple):
    """Result of :func:`scipy_power_iteration` on integer-id arrays."""

    ranks: np.ndarray
    residuals: tuple[float, ...]
    converged: bool
    edge_count: int
    iteration_seconds: tuple[float, ...]


# --------------------------------------------------------------------------- entry point


def pagerank(
    edges: DataFrame,
    teleport: DataFrame,
    *,
    damping: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 200,
    method: str = "auto",
    local_max_edges: int = 20_000_000,
    checkpoint_every: int = 1,
) -> PageRankResult:
    """Weighted, personalized PageRank of ``edges`` with teleport vector ``teleport``.

    Parameters
    ----------
    edges
        Columns ``src``, ``dst`` (node ids, cast to string) and ``weight``
        (double, > 0). Several rows for one ``(src, dst)`` are summed. Self-loops
        count like any edge (as in networkx).
    teleport
        Columns ``node`` and ``trust`` (double, >= 0): the personalization
        vector, normalized to sum 1 here. Nodes absent from it have trust 0;
        its nodes that have no edge are part of the graph (isolated). Several
        rows for one node are summed.
    damping
        Probability of following an edge, in ``[0, 1)``.
    tol
        Stop when the L1 change of the rank vector falls below this (> 0).
    max_iter
        At most this many iterations (>= 1); then ``converged`` is ``False``.
    method
        ``"local"``, ``"distributed"`` or ``"auto"``: local when the number of
        edge rows is at most ``local_max_edges``.
    local_max_edges
        Size guard of the local path, in edge rows (before duplicates are summed).
    checkpoint_every
        Distributed path only: cut the lineage every this many iterations.

    Returns
    -------
    PageRankResult

    Raises
    ------
    ValueError
        An unknown ``method``; ``damping``, ``tol``, ``max_iter``,
        ``local_max_edges`` or ``checkpoint_every`` out of range; a missing
        column; a null node id; a weight that is null, NaN or <= 0; a trust that
        is null, NaN or negative; a total trust of 0.

    Notes
    -----
    Semantics are those of ``networkx.pagerank(G, alpha=damping,
    personalization=trust, weight="weight", dangling=None)``: transition
    probability ``w(u, v) / sum_out(u)``, the mass of dangling nodes (no
    out-weight) is redistributed by the teleport vector, and the iteration starts
    from the uniform vector ``1 / N``, so iteration counts are comparable. One
    difference: networkx stops when the L1 change is below ``N * tol``; this
    function stops when it is below ``tol`` (a tolerance that does not loosen as
    the graph grows). Pass ``tol / N`` to networkx to run the same iterations.

    ``"auto"`` counts the edge rows (one scan of ``edges``) to choose. The
    local path reads ``edges`` once (its collect), the joined layout twice
    (once to index the node ids, once to map the edges to them), the blocks
    layout three times (also for the out-weights): persist ``edges`` first if
    it is expensive to compute.

    The local path's ``ranks`` is built from the driver's Arrow table. The
    distributed path's is lazy: it joins the final rank vector back to the
    node ids, both held as local checkpoints (executor memory and disk, not
    reliable storage) for as long as ``ranks`` is referenced. Write it out or
    persist it.

    Examples
    --------
    >>> edges = spark.createDataFrame([("a", "b", 1.0), ("b", "c", 2.0)], "src string, dst string, weight double")
    >>> teleport = spark.createDataFrame([("a", 1.0)], "node string, trust double")
    >>> result = pagerank(edges, teleport, damping=0.85)
    >>> result.method, result.node_count, result.edge_count
    ('local', 3, 2)
    """
    _check_parameters(damping=damping, tol=tol, max_iter=max_iter, checkpoint_every=checkpoint_every)
    if method not in METHODS:
        raise ValueError(f"'method' must be one of {METHODS}, got {method!r}")
    if not isinstance(local_max_edges, int) or local_max_edges < 0:
        raise ValueError(f"'local_max_edges' must be an int >= 0, got {local_max_edges!r}")
    if method == "auto":
        require_columns(edges, (C.SRC, C.DST, C.WEIGHT), where="pagerank(edges)")
        edge_rows = edges.count()
        method = "local" if edge_rows <= local_max_edges else "distributed"
        log.info("pagerank: %d edge rows, local_max_edges=%d -> %s path", edge_rows, local_max_edges, method)
    if method == "local":
        return pagerank_local(edges, teleport, damping=damping, tol=tol, max_iter=max_iter)
    return pagerank_distributed(
        edges, teleport, damping=damping, tol=tol, max_iter=max_iter, checkpoint_every=checkpoint_every
    )


# --------------------------------------------------------------------------- local path


def pagerank_local(
    edges: DataFrame, teleport: DataFrame, *, damping: float, tol: float, max_iter: int
) -> PageRankResult:
    """PageRank on the driver: integer edge arrays via Arrow, SciPy sparse power iteration.

    Parameters
    ----------
    edges, teleport, damping, tol, max_iter
        As in :func:`pagerank`.

    Returns
    -------
    PageRankResult
        With ``method="local"``.

    Raises
    ------
    ValueError
        As in :func:`pagerank`.

    Notes
    -----
    One graph of :func:`pagerank_local_by_key` (see there). There is no size
    guard here: :func:`pagerank` applies ``local_max_edges``.
    """
    keyed = pagerank_local_by_key(
        edges.withColumn(_KEY, F.lit(0)), teleport.withColumn(_KEY, F.lit(0)), key=_KEY,
        damping=damping, tol=tol, max_iter=max_iter,
    )
    if 0 not in keyed.results:
        raise ValueError(_zero_trust_message("pagerank_local", 0.0))
    return keyed.results[0]


@dataclass(frozen=True)
class KeyedPageRank:
    """PageRank of many graphs at once, one per value of a key column.

    Attributes
    ----------
    ranks
        Columns ``<key>``, ``node``, ``pagerank``: the ranks of every graph
        (each graph's ranks sum to 1).
    results
        Per key value, that graph's :class:`PageRankResult` (its ``ranks`` is
        the slice of ``ranks``).
    """

    ranks: DataFrame
    results: dict[Any, PageRankResult]


def pagerank_local_by_key(
    edges: DataFrame, teleport: DataFrame, *, key: str, damping: float, tol: float, max_iter: int
) -> KeyedPageRank:
    """PageRank of every graph in ``edges`` keyed by ``key`` (e.g. ``as_of``), on the driver, in one pass.

    Parameters
    ----------
    edges
        ``key``, ``src``, ``dst``, ``weight``: the edges of all graphs.
    teleport
        ``key``, ``node``, ``trust``: the teleport vector of each graph.
    key
        The column that names the graph a row belongs to.
    damping, tol, max_iter
        As in :func:`pagerank`; the same for every graph.

    Returns
    -------
    KeyedPageRank
        Only keys that have at least one node appear.

    Raises
    ------
    ValueError
        As in :func:`pagerank`; a graph whose trust sums to 0 is named by its key.

    Notes
    -----
    Two Spark jobs: ``edges`` and ``teleport`` are collected as they are, as
    Arrow batches (``key``, the ids as strings, the weights), with no shuffle.
    The driver numbers the ``(key, node)`` pairs densely in ``(key, node)``
    order with Arrow's hash dictionary and NumPy (:func:`numbered_on_driver`),
    so each graph's ids form one contiguous range and a node's id within its
    graph does not depend on the other graphs: a graph solved alone or with
    others gives the same bits. Each graph is solved by
    :func:`scipy_power_iteration` (duplicate pairs are summed by its CSR
    build); all ranks go back to Spark as one Arrow table with their keys and
    node ids (:func:`frame_from_arrow`), so ``ranks`` holds no reference to the input.

    Driver memory: the collected batches (about 20 bytes an edge plus its two
    ids' characters), numbering arrays while the ids are numbered (about 50
    bytes an edge), then the int32 ids and weights (16 bytes an edge) and
    SciPy's CSR copy of one graph at a time (12 bytes an edge). The collect counts
    against ``spark.driver.maxResultSize``. There is no size guard here: the
    caller bounds the total edge rows.
    """
    _check_parameters(damping=damping, tol=tol, max_iter=max_iter, checkpoint_every=1)
    edges, teleport = _validated_inputs(edges, teleport, where="pagerank_local", keys=(key,))
    spark = edges.sparkSession
    started = time.perf_counter()
    edge_table = edges.toArrow()
    teleport_table = teleport.toArrow()
    collected = time.perf_counter()
    numbered = numbered_on_driver(
        names=(edge_table.column(C.SRC), edge_table.column(C.DST), teleport_table.column(C.NODE)),
        keys=(edge_table.column(key), edge_table.column(key), teleport_table.column(key)),
    )
    if numbered.node_count >= 2**31:
        raise ValueError(
            f"pagerank_local: {numbered.node_count} nodes do not fit int32 ids; use method='distributed'"
        )
    weight = to_numpy(edge_table.column(C.WEIGHT), np.float64)
    trust_values = to_numpy(teleport_table.column(C.TRUST), np.float64)
    key_type = edges.schema[key].dataType
    del edge_table, teleport_table
    _check_weights(weight, where="pagerank_local(edges)")
    _check_trust(trust_values, where="pagerank_local(teleport)")
    src, dst, trust_ids = numbered.ids
    trust = np.bincount(trust_ids, weights=trust_values, minlength=numbered.node_count)
    numbered_at = time.perf_counter()
    solved_ranks, solved = _solve_graphs(
        src, dst, weight, trust, numbered.graphs, key=key, damping=damping, tol=tol, max_iter=max_iter
    )
    ranked = pa.table({key: numbered.key_of_id, C.NODE: numbered.node_of_id, C.PAGERANK: solved_ranks})
    ranks = frame_from_arrow(spark, ranked).select(F.col(key).cast(key_type).alias(key), C.NODE, C.PAGERANK)
    log.info(
        "pagerank_local: %d graph(s), %d nodes, %d edges, iterations %s; collect %.2f s, numbering %.2f s, "
        "scipy %.2f s",
        len(numbered.graphs),
        numbered.node_count,
        sum(r.edge_count for r in solved),
        "/".join(str(len(r.residuals)) for r in solved),
        collected - started,
        numbered_at - collected,
        time.perf_counter() - numbered_at,
    )
    return _keyed_results(ranks, numbered.graphs, solved, key=key, method="local")


class DriverNumbering(NamedTuple):
    """Dense ids of ``(key, node)`` pairs, as :func:`numbered_on_driver` gives them."""

    ids: tuple[np.ndarray, ...]  # per input name column, the id of every row (int32)
    graphs: list[tuple[Any, int, int]]  # per key in id order: (value, first id, nodes)
    key_of_id: pa.Array  # the key value of every id
    node_of_id: pa.Array  # the node name of every id

    @property
    def node_count(self) -> int:
        return len(self.node_of_id)


# Numbering uses a presence table of all (key, name) slots while it has at most this many slots per name
# occurrence, or this minimum; beyond, np.unique (a sort).
_PRESENCE_SLOTS_PER_ROW = 2
_PRESENCE_MIN_SLOTS = 1_000_000


def numbered_on_driver(
    *, names: tuple[pa.ChunkedArray, ...], keys: tuple[pa.ChunkedArray, ...]
) -> DriverNumbering:
    """Number the ``(key, name)`` pairs of Arrow columns densely, in ``(key, name)`` order.

    ``names[i]`` and ``keys[i]`` are the name and key of the same rows (the
    edges' ``src``, their ``dst``, the teleport's ``node``). Names and keys are each
    hashed once (Arrow's dictionary encoding) and their dictionaries sorted
    (byte order, as Spark orders strings; a null key last); a pair's code is
    ``key rank * names + name rank``, and the codes present are numbered by a
    cumulative sum over a presence table (or ``np.unique`` when that table
    would be large). Raises ``ValueError`` on a null name.
    """
    if any(column.null_count for column in names):
        raise ValueError(
            f"null node id: '{C.SRC}'/'{C.DST}' of edges or '{C.NODE}' of teleport is null (every id must be set)"
        )
    name_dictionary, name_rank = _ranked_dictionary(
        pa.chunked_array([chunk for column in names for chunk in column.chunks], type=names[0].type)
    )
    key_dictionary, key_rank = _ranked_dictionary(
        pa.chunked_array([chunk for column in keys for chunk in column.chunks], type=keys[0].type)
    )
    width = max(len(name_dictionary), 1)
    space = len(key_dictionary) * width
    code = key_rank.astype(np.int64 if space >= 2**31 else np.int32) * width + name_rank
    if space <= max(_PRESENCE_SLOTS_PER_ROW * len(code), _PRESENCE_MIN_SLOTS):
        present = np.zeros(space, dtype=bool)
        present[code] = True
        codes = np.flatnonzero(present)
        dense = np.cumsum(present, dtype=code.dtype)[code] - 1
        del present
    else:
        codes, dense = np.unique(code, return_inverse=True)
    dense = dense.astype(np.int32) if len(codes) < 2**31 else dense
    key_of_code, name_of_code = np.divmod(codes, width)
    counts = np.bincount(key_of_code, minlength=len(key_dictionary))
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
    key_values = key_dictionary.to_pylist()
    graphs = [(key_values[k], int(firsts[k]), int(counts[k])) for k in np.flatnonzero(counts)]
    bounds = np.cumsum([len(column) for column in names])
    return DriverNumbering(
        ids=tuple(np.split(dense, bounds[:-1])),
        graphs=graphs,
        key_of_id=key_dictionary.take(pa.array(key_of_code)),
        node_of_id=name_dictionary.take(pa.array(name_of_code)),
    )


def _ranked_dictionary(values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The distinct values sorted (nulls last), and each row's position among them (int32)."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    if encoded.num_chunks:
        dictionary = encoded.chunk(0).dictionary
        indices = np.concatenate([chunk.indices.to_numpy() for chunk in encoded.chunks])
    else:
        dictionary, indices = pa.array([], type=values.type), np.zeros(0, dtype=np.int32)
    order = pc.array_sort_indices(dictionary, null_placement="at_end").to_numpy()
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return dictionary.take(pa.array(order)), rank[indices]


def _ranks_frame(
    spark: SparkSession, ranks: np.ndarray, node_ids: DataFrame, node_count: int, keys: list[str]
) -> DataFrame:
    """``(*keys, node, pagerank)`` from the ranks in id order, joined to the int ``_id`` of ``node_ids``."""
    ranked = pa.table({_ID: pa.array(np.arange(node_count, dtype=np.int32)), C.PAGERANK: ranks})
    return (
        frame_from_arrow(spark, ranked)
        .join(_maybe_broadcast(node_ids, node_count), on=_ID, how="inner")
        .select(*keys, C.NODE, C.PAGERANK)
    )


def _keyed_results(
    ranks: DataFrame, graphs: list[tuple[Any, int, int]], solved: list[PowerIteration], *, key: str | None, method: str
) -> KeyedPageRank:
    """Each graph's :class:`PageRankResult` (its slice of ``ranks``), keyed by its key value."""
    results = {
        value: PageRankResult(
            ranks=ranks.filter(F.col(key) == F.lit(value)).drop(key) if key is not None else ranks,
            iterations=len(result.residuals),
            residuals=result.residuals,
            converged=result.converged,
            method=method,
            node_count=count,
            edge_count=result.edge_count,
            iteration_seconds=result.iteration_seconds,
        )
        for (value, _, count), result in zip(graphs, solved, strict=True)
    }
    return KeyedPageRank(ranks=ranks, results=results)


def _solve_graphs(
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    trust: np.ndarray,
    graphs: list[tuple[Any, int, int]],
    *,
    key: str,
    damping: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, list[PowerIteration]]:
    """:func:`scipy_power_iteration` on each graph's id range; all ranks in id order, and each graph's result."""
    bounds = np.array([0, len(src)])
    if len(graphs) > 1:
        # Edges grouped by graph, in collected order within each (both ends of an edge are in one graph's range).
        firsts = np.array([first for _, first, _ in graphs], dtype=np.int64)
        graph_of_edge = np.searchsorted(firsts, src, side="right") - 1
        order = np.argsort(graph_of_edge, kind="stable")
        src, dst, weight = src[order], dst[order], weight[order]
        bounds = np.concatenate([[0], np.cumsum(np.bincount(graph_of_edge, minlength=len(graphs)))])
        del order, graph_of_edge
    ranks = np.empty(len(trust))
    solved: list[PowerIteration] = []
    for index, (value, first, count) in enumerate(graphs):
        part = slice(bounds[index], bounds[index + 1])
        graph_trust = trust[first:first + count]
        if not graph_trust.sum() > 0:
            where = "pagerank_local" if key == _KEY else f"pagerank_local({key}={value})"
            raise ValueError(_zero_trust_message(where, float(graph_trust.sum())))
        result = scipy_power_iteration(
            src[part] - first, dst[part] - first, weight[part], graph_trust,
            damping=damping, tol=tol, max_iter=max_iter,
        )
        ranks[first:first + count] = result.ranks
        solved.append(result)
    return ranks, solved


def scipy_power_iteration(
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    trust: np.ndarray,
    *,
    damping: float,
    tol: float,
    max_iter: int,
) -> PowerIteration:
    """Bare SciPy power iteration on dense integer ids: the reference kernel.

    Parameters
    ----------
    src, dst
        Integer arrays, node ids in ``[0, len(trust))``; one entry per edge row.
    weight
        Positive edge weights; rows with the same ``(src, dst)`` are summed.
    trust
        Non-negative teleport weight of every node (length N), normalized here.
    damping, tol, max_iter
        As in :func:`pagerank`.

    Returns
    -------
    PowerIteration
        ``ranks`` (length N, float64), ``residuals``, ``converged``,
        ``edge_count`` (distinct pairs) and ``iteration_seconds``.

    Raises
    ------
    ValueError
        If ``trust`` sums to 0 or the parameters are out of range.

    Notes
    -----
    Builds ``W^T`` in CSR (rows = destinations) with each weight divided by its
    source's out-weight, so that each iteration is one CSR matrix-vector product
    ``W^T x`` plus two vector operations. :func:`pagerank_local` runs exactly
    this function, so the benchmark's local-vs-SciPy ratio measures the Spark
    and Arrow overhead alone.
    """
    _check_parameters(damping=damping, tol=tol, max_iter=max_iter, checkpoint_every=1)
    node_count = len(trust)
    total_trust = float(np.sum(trust))
    if not total_trust > 0:
        raise ValueError(
            f"'trust' must have a positive sum (the teleport vector is normalized), got {total_trust}"
        )
    p = np.asarray(trust, dtype=np.float64) / total_trust
    out_weight = np.bincount(src, weights=weight, minlength=node_count)
    dangling = np.flatnonzero(out_weight == 0)
    transition_t = sp.csr_array((weight / out_weight[src], (dst, src)), shape=(node_count, node_count))
    transition_t.sum_duplicates()
    x = np.full(node_count, 1.0 / node_count)
    residuals: list[float] = []
    seconds: list[float] = []
    converged = False
    for _ in range(max_iter):
        tick = time.perf_counter()
        x_next = transition_t @ x
        x_next *= damping
        x_next += (damping * float(x[dangling].sum()) + (1.0 - damping)) * p
        residual = float(np.abs(x_next - x).sum())
        x = x_next
        residuals.append(residual)
        seconds.append(time.perf_counter() - tick)
        if residual < tol:
            converged = True
            break
    return PowerIteration(x, tuple(residuals), converged, int(transition_t.nnz), tuple(seconds))


# --------------------------------------------------------------------------- distributed path


def pagerank_distributed(
    edges: DataFrame,
    teleport: DataFrame,
    *,
    damping: float,
    tol: float,
    max_iter: int,
    checkpoint_every: int = 1,
    layout: str = "auto",
) -> PageRankResult:
    """PageRank with the edges distributed over the executors, for graphs that do not fit the driver.

    Parameters
    ----------
    edges, teleport, damping, tol, max_iter
        As in :func:`pagerank`.
    checkpoint_every
        ``"joined"`` layout only: cut the lineage with an eager local
        checkpoint every this many iterations (and always at the last one); the
        states in between are persisted. A local checkpoint costs what a persist
        costs, so 1 (the default) is also the fastest.
    layout
        ``"blocks"``, ``"joined"`` or ``"auto"``: blocks when the graph has at
        most :data:`BROADCAST_MAX_NODES` nodes (the rank vector is then shipped
        to the executors each iteration), joined otherwise.

    Returns
    -------
    PageRankResult
        With ``method="distributed"``.

    Raises
    ------
    ValueError
        As in :func:`pagerank`; an unknown ``layout``; ``"blocks"`` on a graph
        over :data:`BROADCAST_MAX_NODES` nodes.

    Notes
    -----
    Two layouts, one contract; the edges never come to the driver in either.

    ``"blocks"`` (the layout :func:`pagerank_distributed_by_key` runs for many
    graphs): the edges are shuffled once by destination into blocks, each a
    sparse matrix in one row of arrays, kept as a local checkpoint; an
    iteration broadcasts the rank vector divided by the out-weights (8 bytes a
    node) and every block returns the new in-link sums of its destinations (one
    SciPy matrix-vector product per block, in the executors' Python workers),
    so an iteration is one Spark job and no edge row moves. The driver holds
    a few vectors of one value per node (out-weights, trust, ranks), never edges.

    ``"joined"``: the rank vector is a DataFrame too, for graphs whose node
    vector should not pass through the driver. Node ids are numbered densely
    as longs. One job builds the *transitions* table with a single shuffle of
    the edges: one row per ``(src, dst)`` pair (duplicates summed) with
    ``weight / out-weight of src``, plus one *self row* per node holding its
    trust (summed over teleport rows) and its dangling flag; the same job
    checks the weights and trusts and counts pairs, nodes, dangling nodes and
    the total trust (an ``Observation``). The table is kept as a local
    checkpoint, partitioned and sorted by source like the rank vector, so the
    join of an iteration needs no shuffle and no sort; only the per-partition
    partial sums are shuffled by destination.

    One joined iteration is one join and one aggregation, and one Spark job.
    The self row brings each node's previous rank (for the residual), its
    trust and its dangling flag through the same ``groupBy``, so every plan
    reads the previous rank vector exactly once and every node gets a row even
    without in-links. Teleport and dangling mass enter as one scalar literal,
    ``(damping * dangling_mass + 1 - damping) / total_trust``. The residual and
    the next dangling mass come out of the same job (an ``Observation`` on
    checkpointing iterations, an aggregate over the freshly persisted state
    otherwise).

    Lineage: between checkpoints a joined plan grows by one join per
    iteration, never doubles (the textbook loop reads the ranks twice, so its
    recomputation doubles every iteration without a checkpoint). When a
    checkpoint is written, the persisted states and the previous checkpoint are
    released at once (``DataFrame.unpersist`` does not free a local
    checkpoint's blocks), so memory and time per iteration stay flat. A blocks
    iteration has no lineage to grow: its plan is the checkpointed blocks and
    one ``mapInArrow``.

    Adaptive query execution is switched off for the session while this runs
    (and restored after): a local checkpoint written under AQE forgets its
    partitioning, and every iteration would then shuffle the edges again.

    Local checkpoints live in executor storage, not reliable storage: losing an
    executor mid-run fails the run (rerun it). The returned ``ranks`` holds the
    final state and the node ids as local checkpoints; everything else is
    released before returning.
    """
    _check_parameters(damping=damping, tol=tol, max_iter=max_iter, checkpoint_every=checkpoint_every)
    if layout not in LAYOUTS:
        raise ValueError(f"'layout' must be one of {LAYOUTS}, got {layout!r}")
    edges, teleport = _validated_inputs(edges, teleport, where="pagerank_distributed")
    spark = edges.sparkSession
    with _adaptive_execution_off(spark):
        node_ids, node_count = _indexed_nodes(edges, teleport)
        if layout == "blocks" or (layout == "auto" and node_count <= BROADCAST_MAX_NODES):
            _check_broadcastable(node_count)
            keyed = _blocked(
                edges, teleport, node_ids, [(None, 0, node_count)], keys=[], damping=damping, tol=tol,
                max_iter=max_iter,
            )
            return keyed.results[None]
        return _distributed(
            edges, teleport, node_ids, node_count, damping=damping, tol=tol, max_iter=max_iter,
            checkpoint_every=checkpoint_every,
        )


def pagerank_distributed_by_key(
    edges: DataFrame,
    teleport: DataFrame,
    *,
    key: str,
    damping: float,
    tol: float,
    max_iter: int,
    checkpoint_every: int = 1,
) -> KeyedPageRank:
    """PageRank of every graph in ``edges`` keyed by ``key`` (e.g. ``as_of``), distributed, in one pass.

    Parameters
    ----------
    edges, teleport, key, damping, tol, max_iter
        As in :func:`pagerank_local_by_key`.
    checkpoint_every
        As in :func:`pagerank_distributed` (used only when the graphs are solved one by one).

    Returns
    -------
    KeyedPageRank
        Only keys that have at least one node appear; each graph's result is
        the one :func:`pagerank_local_by_key` gives (same iterations, ranks
        within 1e-9 L1).

    Raises
    ------
    ValueError
        As in :func:`pagerank`; a graph whose trust sums to 0 is named by its key.

    Notes
    -----
    The ``"blocks"`` layout of :func:`pagerank_distributed` on the union of the
    graphs: nodes are numbered densely in ``(key, node)`` order, so each graph
    is one contiguous id range and the matrix is block diagonal. Each
    iteration is one Spark job for all graphs; dangling mass, teleport and
    residual are per graph (vector operations on the driver over each range),
    and a graph whose residual falls below ``tol`` keeps its ranks from then
    on while the others iterate, so its ranks and iteration count do not
    depend on the graphs solved with it.

    When all graphs together have more than :data:`BROADCAST_MAX_NODES` nodes,
    each key is solved on its own by :func:`pagerank_distributed` instead.
    """
    _check_parameters(damping=damping, tol=tol, max_iter=max_iter, checkpoint_every=checkpoint_every)
    edges, teleport = _validated_inputs(edges, teleport, where="pagerank_distributed", keys=(key,))
    with _adaptive_execution_off(edges.sparkSession):
        node_ids, graphs = _indexed_keyed_nodes(edges, teleport, key)
        node_count = sum(count for _, _, count in graphs)
        if node_count <= BROADCAST_MAX_NODES:
            return _blocked(
                edges, teleport, node_ids, graphs, keys=[key], damping=damping, tol=tol, max_iter=max_iter
            )
    log.info(
        "pagerank_distributed: %d graphs with %d nodes in all, over BROADCAST_MAX_NODES=%d: one graph at a time",
        len(graphs), node_count, BROADCAST_MAX_NODES,
    )
    results = {
        value: pagerank_distributed(
            edges.filter(F.col(key) == F.lit(value)).drop(key),
            teleport.filter(F.col(key) == F.lit(value)).drop(key),
            damping=damping,
            tol=tol,
            max_iter=max_iter,
            checkpoint_every=checkpoint_every,
        )
        for value, _, _ in graphs
    }
    per_key = [r.ranks.select(F.lit(value).alias(key), C.NODE, C.PAGERANK) for value, r in results.items()]
    return KeyedPageRank(ranks=reduce(DataFrame.unionByName, per_key), results=results)


def _check_broadcastable(node_count: int) -> None:
    if node_count > BROADCAST_MAX_NODES:
        raise ValueError(
            f"pagerank_distributed: {node_count} nodes is over BROADCAST_MAX_NODES={BROADCAST_MAX_NODES}, "
            "the most the 'blocks' layout ships to the executors each iteration; use layout='joined' "
            "(one graph at a time)"
        )


def _blocked(
    edges: DataFrame,
    teleport: DataFrame,
    node_ids: DataFrame,
    graphs: list[tuple[Any, int, int]],
    *,
    keys: list[str],
    damping: float,
    tol: float,
    max_iter: int,
) -> KeyedPageRank:
    """The blocks layout on graphs numbered as ``graphs`` says (``(key value, first id, nodes)``, in id order)."""
    spark = edges.sparkSession
    node_count = sum(count for _, _, count in graphs)
    node_ids = node_ids.select(*keys, C.NODE, F.col(_ID).cast("int").alias(_ID))
    pairs = _edges_with_ids(edges, node_ids, node_count, keys=keys)
    out_weight, edge_rows = _out_weights(pairs, node_count)
    trust_rows = _teleport_with_ids(teleport, node_ids, node_count, keys=keys).toArrow()
    trust_values = to_numpy(trust_rows.column(C.TRUST), np.float64)
    _check_trust(trust_values, where="pagerank_distributed(teleport)")
    trust = np.bincount(to_numpy(trust_rows.column(_ID), np.int64), weights=trust_values, minlength=node_count)
    firsts = np.array([first for _, first, _ in graphs], dtype=np.int64)
    for value, first, count in graphs:
        total = float(trust[first:first + count].sum())
        if not total > 0:
            where = "pagerank_distributed" if not keys else f"pagerank_distributed({keys[0]}={value})"
            raise ValueError(_zero_trust_message(where, total))
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    block_count = max(partitions, -(-edge_rows // BLOCK_MAX_EDGES))
    blocks = (
        pairs.repartition(block_count, _DST_ID)
        .mapInArrow(partial(_edge_blocks, node_count=node_count, firsts=firsts), _BLOCK_SCHEMA)
        .localCheckpoint(eager=True)
    )
    try:
        pair_counts = blocks.select(_PAIRS).toArrow().column(_PAIRS).to_pylist()
        edge_counts = np.sum([np.asarray(c, dtype=np.int64) for c in pair_counts], axis=0) if pair_counts else (
            np.zeros(len(graphs), dtype=np.int64)
        )
        ranks, solved = _iterate_blocks(
            blocks, out_weight, trust, graphs, edge_counts, damping=damping, tol=tol, max_iter=max_iter
        )
    finally:
        _release_checkpoint(blocks)
    key = keys[0] if keys else None
    ranked = _ranks_frame(spark, ranks, node_ids, node_count, keys)
    longest = max(solved, key=lambda result: len(result.iteration_seconds)).iteration_seconds
    log.info(
        "pagerank_distributed: %d graph(s), %d nodes, %d edges in %d blocks, iterations %s, %.3f s/iteration",
        len(graphs), node_count, int(edge_counts.sum()), block_count,
        "/".join(str(len(r.residuals)) for r in solved), float(np.mean(longest)),
    )
    return _keyed_results(ranked, graphs, solved, key=key, method="distributed")


def _out_weights(pairs: DataFrame, node_count: int) -> tuple[np.ndarray, int]:
    """Every node's out-weight (one job; 0 for dangling nodes) and the number of edge rows.

    Raises ValueError on a null, NaN or non-positive weight.
    """
    per_source = pairs.groupBy(_SRC_ID).agg(
        F.sum(_W).alias(_W),
        F.count(F.lit(1)).alias("rows"),
        F.sum(_is_bad_weight(F.col(_W)).cast("int")).alias(_BAD),
    ).toArrow()
    bad = int(pc.sum(per_source.column(_BAD)).as_py() or 0)
    if bad:
        raise ValueError(
            f"pagerank_distributed(edges): {bad} rows have a null, NaN or non-positive '{C.WEIGHT}'; "
            "every weight must be > 0"
        )
    out_weight = np.zeros(node_count)
    out_weight[to_numpy(per_source.column(_SRC_ID), np.int64)] = to_numpy(per_source.column(_W), np.float64)
    return out_weight, int(pc.sum(per_source.column("rows")).as_py() or 0)


def _edge_blocks(batches: Iterator[pa.RecordBatch], *, node_count: int, firsts: np.ndarray) -> Iterator[pa.RecordBatch]:
    """One partition of ``(_src_id, _dst_id, _w)`` -> one block row: the CSR matrix of its destinations' in-edges.

    Rows of the matrix are the block's destinations (``_nodes``, ascending),
    columns all node ids; duplicate pairs are summed. ``_pairs`` counts the
    distinct pairs of each graph (``firsts`` = the graphs' first ids).
    """
    batches = [batch for batch in batches if batch.num_rows]
    if not batches:
        return
    table = pa.Table.from_batches(batches)
    src = to_numpy(table.column(_SRC_ID), np.int32)
    dst = to_numpy(table.column(_DST_ID), np.int32)
    weight = to_numpy(table.column(_W), np.float64)
    del table
    nodes, rows = np.unique(dst, return_inverse=True)
    matrix = sp.csr_array((weight, (rows, src)), shape=(len(nodes), node_count))
    matrix.sum_duplicates()
    graph_of_node = np.searchsorted(firsts, nodes, side="right") - 1
    pairs = np.bincount(graph_of_node, weights=np.diff(matrix.indptr), minlength=len(firsts)).astype(np.int64)
    yield pa.RecordBatch.from_arrays(
        [
            _one_list(nodes.astype(np.int32)),
            _one_list(matrix.indptr.astype(np.int64)),
            _one_list(matrix.indices.astype(np.int32)),
            _one_list(matrix.data),
            _one_list(pairs),
        ],
        names=[_NODES, _INDPTR, _INDICES, _DATA, _PAIRS],
    )


def _block_products(batches: Iterator[pa.RecordBatch], *, scaled_ranks: Any) -> Iterator[pa.RecordBatch]:
    """Each block's in-link sums ``M z`` for the broadcast ``z`` = rank / out-weight: ``(_nodes, _y)``."""
    z = scaled_ranks.value
    for batch in batches:
        for row in range(batch.num_rows):
            nodes = batch.column(_NODES)[row].values
            matrix = sp.csr_array(
                (
                    batch.column(_DATA)[row].values.to_numpy(),
                    batch.column(_INDICES)[row].values.to_numpy(),
                    batch.column(_INDPTR)[row].values.to_numpy(),
                ),
                shape=(len(nodes), len(z)),
            )
            yield pa.RecordBatch.from_arrays(
                [pa.ListArray.from_arrays(pa.array([0, len(nodes)], pa.int32()), nodes), _one_list(matrix @ z)],
                names=[_NODES, _Y],
            )


def _one_list(values: np.ndarray) -> pa.ListArray:
    """A one-row Arrow list column holding ``values``."""
    return pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), pa.array(values))


def _iterate_blocks(
    blocks: DataFrame,
    out_weight: np.ndarray,
    trust: np.ndarray,
    graphs: list[tuple[Any, int, int]],
    edge_counts: np.ndarray,
    *,
    damping: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, list[PowerIteration]]:
    """Power iterations of all graphs together; a converged graph stops moving. Ranks in id order, per-graph results."""
    sc = blocks.sparkSession.sparkContext
    node_count = len(trust)
    firsts = np.array([first for _, first, _ in graphs], dtype=np.int64)
    counts = np.array([count for _, _, count in graphs], dtype=np.int64)
    p = trust / np.repeat(np.add.reduceat(trust, firsts), counts)
    dangling = out_weight == 0
    inverse_out = np.divide(1.0, out_weight, out=np.zeros(node_count), where=~dangling)
    x = np.repeat(1.0 / counts, counts)
    active = np.ones(len(graphs), dtype=bool)
    residuals: list[list[float]] = [[] for _ in graphs]
    seconds: list[list[float]] = [[] for _ in graphs]
    for step in range(1, max_iter + 1):
        tick = time.perf_counter()
        scaled = sc.broadcast(x * inverse_out)
        try:
            products = blocks.mapInArrow(partial(_block_products, scaled_ranks=scaled), _PRODUCT_SCHEMA).toArrow()
        finally:
            scaled.destroy()
        y = np.zeros(node_count)
        if products.num_rows:
            y[_list_values(products, _NODES, np.int64)] = _list_values(products, _Y, np.float64)
        mass = np.add.reduceat(np.where(dangling, x, 0.0), firsts)
        x_next = y * damping
        x_next += np.repeat(damping * mass + (1.0 - damping), counts) * p
        change = np.add.reduceat(np.abs(x_next - x), firsts)
        x = np.where(np.repeat(active, counts), x_next, x)
        elapsed = time.perf_counter() - tick
        moving = np.flatnonzero(active)
        for index in moving:
            residuals[index].append(float(change[index]))
            seconds[index].append(elapsed)
        active[moving] = ~(change[moving] < tol)
        log.info(
            "pagerank_distributed: iteration %d residual %.6e, %d of %d graphs still moving (%.2f s)",
            step, float(change[moving].max()), int(active.sum()), len(graphs), elapsed,
        )
        if not active.any():
            break
    solved = [
        PowerIteration(
            x[first:first + count], tuple(residuals[index]), not active[index], int(edge_counts[index]),
            tuple(seconds[index]),
        )
        for index, (_, first, count) in enumerate(graphs)
    ]
    return x, solved


def _list_values(table: pa.Table, column: str, dtype: type) -> np.ndarray:
    return np.concatenate(
        [chunk.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False) for chunk in table.column(column).chunks]
    )


def _distributed(
    edges: DataFrame,
    teleport: DataFrame,
    node_ids: DataFrame,
    node_count: int,
    *,
    damping: float,
    tol: float,
    max_iter: int,
    checkpoint_every: int,
) -> PageRankResult:
    """The joined layout of :func:`pagerank_distributed` on nodes numbered by :func:`_indexed_nodes`."""
    partitions = int(edges.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    transitions, setup = _transitions(edges, teleport, node_ids, node_count, partitions=partitions)
    state = node_ids.select(_ID, F.lit(1.0 / node_count).alias(_X))
    dangling_mass = setup["dangling"] / node_count
    held: list[DataFrame] = []  # states persisted since the last checkpoint
    checkpoint: DataFrame | None = None
    residuals: list[float] = []
    seconds: list[float] = []
    run = uuid.uuid4().hex[:8]
    finished = False
    try:
        for step in range(1, max_iter + 1):
            tick = time.perf_counter()
            stepped = _next_state(
                state,
                transitions,
                damping=damping,
                dangling_mass=dangling_mass,
                total_trust=setup["trust"],
            )
            if step % checkpoint_every and step < max_iter:
                persisted, residual, dangling_mass = _persisted(stepped)
                held.append(persisted)
                state = persisted.select(_ID, _X)
                if residual < tol:
                    # The final state: pin it down, so that the states behind it can go.
                    state = state.localCheckpoint(eager=True)
            else:
                state, residual, dangling_mass = _checkpointed(stepped, name=f"pagerank_{run}_{step}")
            if step % checkpoint_every == 0 or step == max_iter or residual < tol:
                # ``state`` is a new checkpoint without lineage: everything before it can go.
                _release(held, checkpoint)
                held.clear()
                checkpoint = state
            residuals.append(residual)
            seconds.append(time.perf_counter() - tick)
            log.info("pagerank_distributed: iteration %d residual %.6e (%.2f s)", step, residual, seconds[-1])
            if residual < tol:
                break
        finished = True
    finally:
        _release_checkpoint(transitions)
        if not finished:
            _release(held, checkpoint)
    converged = residuals[-1] < tol
    ranks = state.join(_maybe_broadcast(node_ids, node_count), on=_ID, how="inner").select(
        F.col(C.NODE), F.col(_X).alias(C.PAGERANK)
    )
    log.info(
        "pagerank_distributed: %d nodes, %d edges, %d iterations, residual %.3g, converged=%s, %.2f s/iteration",
        node_count,
        setup["pairs"],
        len(residuals),
        residuals[-1],
        converged,
        sum(seconds) / len(seconds),
    )
    return PageRankResult(
        ranks=ranks,
        iterations=len(residuals),
        residuals=tuple(residuals),
        converged=converged,
        method="distributed",
        node_count=node_count,
        edge_count=setup["pairs"],
        iteration_seconds=tuple(seconds),
    )



def _adaptive_execution_off(spark: SparkSession) -> AbstractContextManager[None]:
    return _session_conf(spark, "spark.sql.adaptive.enabled", "false")


@contextmanager
def _session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a session setting for the block, then restore what it was."""
    previous = spark.conf.get(key)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        spark.conf.set(key, previous)


def frame_from_arrow(spark: SparkSession, table: pa.Table) -> DataFrame:
    """``table``, built on the driver, as a DataFrame read from an RDD of its Arrow batches.

    Below ``spark.sql.execution.arrow.localRelationThreshold`` (48 MB by
    default) ``createDataFrame`` would make a LocalRelation instead: the rows
    converted one by one on the driver and carried inside the plan, so that
    every query built on them plans and ships them again. In a 30-date backfill
    at L (a frame of 189k ranks a date), solving the dates, then caching,
    checking and writing their ranks took 354 s with LocalRelations and 212 s
    without: caching the union 39.4 s against 0.4 s, the Great Expectations
    checks on it 89.8 s against 21.0 s.

    The RDD has a partition per Arrow batch (10,000 rows by default), and a
    write makes a file per partition and date, so the frame is coalesced to a
    partition per ``FRAME_ROWS_PER_PARTITION`` rows: one date's ranks at L
    had made 19 files of ``network_rank``, 30 dates' top engagers 956 files of
    ``score_explain``.
    """
    with _session_conf(spark, "spark.sql.execution.arrow.localRelationThreshold", "0"):
        frame = spark.createDataFrame(table)
    return frame.coalesce(max(1, -(-table.num_rows // FRAME_ROWS_PER_PARTITION)))


def _transitions(
    edges: DataFrame,
    teleport: DataFrame,
    node_ids: DataFrame,
    node_count: int,
    *,
    partitions: int,
) -> tuple[DataFrame, dict[str, float]]:
    """The transitions table (a local checkpoint) and its counts, from one job.

    Columns ``(_src_id, _dst_id, _w, _p, _dangling)``. A pair row has ``_w`` =
    summed weight / source out-weight, null ``_p`` and ``_dangling``. A node's
    self row has ``_src_id = _dst_id`` = the node, null ``_w``, its summed trust
    in ``_p`` (not yet normalized) and its dangling flag.
    """
    is_self = F.col(_SELF)
    pair_rows = _edges_with_ids(edges, node_ids, node_count).select(
        _SRC_ID,
        _DST_ID,
        F.lit(False).alias(_SELF),
        F.col(_W),
        F.lit(None).cast("double").alias(C.TRUST),
        _is_bad_weight(F.col(_W)).cast("int").alias(_BAD),
    )
    trust_rows = _teleport_with_ids(teleport, node_ids, node_count).select(
        F.col(_ID).alias(_SRC_ID),
        F.col(_ID).alias(_DST_ID),
        F.lit(True).alias(_SELF),
        F.lit(None).cast("double").alias(_W),
        F.col(C.TRUST),
        _is_bad_trust(F.col(C.TRUST)).cast("int").alias(_BAD),
    )
    # Every node gets a self row, with or without edges or trust.
    node_rows = node_ids.select(
        F.col(_ID).alias(_SRC_ID),
        F.col(_ID).alias(_DST_ID),
        F.lit(True).alias(_SELF),
        F.lit(None).cast("double").alias(_W),
        F.lit(0.0).alias(C.TRUST),
        F.lit(0).alias(_BAD),
    )
    by_source = Window.partitionBy(_SRC_ID).rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    out_weight = F.sum(_W).over(by_source)  # self rows carry a null weight
    table = (
        pair_rows.unionByName(trust_rows)
        .unionByName(node_rows)
        .repartition(partitions, _SRC_ID)
        .groupBy(_SRC_ID, _DST_ID, _SELF)
        .agg(F.sum(_W).alias(_W), F.sum(C.TRUST).alias(C.TRUST), F.sum(_BAD).alias(_BAD))
        .select(
            _SRC_ID,
            _DST_ID,
            F.when(~is_self, F.try_divide(F.col(_W), out_weight)).alias(_W),
            F.when(is_self, F.col(C.TRUST)).alias(_P),
            F.when(is_self, out_weight.isNull()).alias(_DANGLING),
            _BAD,
        )
    )
    table = table.sortWithinPartitions(_SRC_ID)  # already sorted by the window: no extra work
    observation = Observation(f"pagerank_setup_{uuid.uuid4().hex[:8]}")
    transitions = (
        table.observe(
            observation,
            F.count_if(F.col(_P).isNull()).alias("pairs"),
            F.coalesce(F.sum(_BAD), F.lit(0)).alias("bad"),
            F.coalesce(F.sum(_P), F.lit(0.0)).alias("trust"),
            F.count_if(F.col(_DANGLING)).alias("dangling"),
        )
        .select(_SRC_ID, _DST_ID, _W, _P, _DANGLING)
        .localCheckpoint(eager=True)
    )
    setup = {name: value for name, value in observation.get.items()}
    problem = None
    if setup["bad"]:
        problem = (
            f"pagerank_distributed: {setup['bad']} rows of 'edges' or 'teleport' have a null, NaN or "
            f"non-positive '{C.WEIGHT}' (must be > 0) or a null, NaN or negative '{C.TRUST}' (must be >= 0)"
        )
    elif not setup["trust"] > 0:
        problem = _zero_trust_message("pagerank_distributed", float(setup["trust"]))
    if problem:
        _release_checkpoint(transitions)
        raise ValueError(problem)
    return transitions, setup


def _next_state(
    state: DataFrame,
    transitions: DataFrame,
    *,
    damping: float,
    dangling_mass: float,
    total_trust: float,
) -> DataFrame:
    """One power iteration: ``(_id, _x, _x_prev, _dangling)`` from the rank vector ``(_id, _x)``."""
    senders = state.select(F.col(_ID).alias(_SRC_ID), F.col(_X))
    is_self = F.col(_W).isNull()
    # Teleport and dangling mass both follow p = trust / total_trust: one scalar per iteration.
    per_trust = (damping * dangling_mass + (1.0 - damping)) / total_trust
    # The rank vector goes on the left: a self-join re-instances the right side's
    # relations, and a re-instanced copy of a persisted state no longer matches
    # its cache entry (the state would be recomputed). The transitions are a
    # checkpoint, data rather than a cache entry, so re-instancing them is free.
    return (
        senders.join(transitions, on=_SRC_ID, how="inner")
        .groupBy(_DST_ID)
        .agg(
            F.sum(F.col(_W) * F.col(_X)).alias(_CONTRIB),
            F.sum(F.when(is_self, F.col(_X))).alias(_X_PREV),
            F.max(_P).alias(_P),
            F.max(_DANGLING).alias(_DANGLING),
        )
        .select(
            F.col(_DST_ID).alias(_ID),
            (F.lit(damping) * F.coalesce(F.col(_CONTRIB), F.lit(0.0)) + F.lit(per_trust) * F.col(_P)).alias(
                _X
            ),
            F.col(_X_PREV),
            F.col(_DANGLING),
        )
    )


def _step_metrics() -> tuple[Column, Column]:
    residual = F.sum(F.abs(F.col(_X) - F.col(_X_PREV))).alias("residual")
    dangling_mass = F.coalesce(F.sum(F.when(F.col(_DANGLING), F.col(_X))), F.lit(0.0)).alias("dangling_mass")
    return residual, dangling_mass


def _checkpointed(stepped: DataFrame, *, name: str) -> tuple[DataFrame, float, float]:
    """Materialize ``(_id, _x)`` as a local checkpoint; the metrics come from the same job."""
    observation = Observation(name)
    state = stepped.observe(observation, *_step_metrics()).select(_ID, _X).localCheckpoint(eager=True)
    metrics = observation.get
    return state, float(metrics["residual"]), float(metrics["dangling_mass"])


def _persisted(stepped: DataFrame) -> tuple[DataFrame, float, float]:
    """Persist ``stepped``; its metrics come from the job that fills the cache."""
    persisted = stepped.persist(StorageLevel.MEMORY_AND_DISK)
    metrics = persisted.agg(*_step_metrics()).first()
    return persisted, float(metrics["residual"]), float(metrics["dangling_mass"])


def _release(persisted: list[DataFrame], checkpoint: DataFrame | None) -> None:
    for state in persisted:
        state.unpersist()
    if checkpoint is not None:
        _release_checkpoint(checkpoint)


def _release_checkpoint(df: DataFrame) -> None:
    """Free the blocks of a local checkpoint now (``DataFrame.unpersist`` leaves them to GC).

    ``df`` must be the frame ``localCheckpoint`` returned: its plan is the
    checkpointed ``LogicalRDD``.
    """
    plan = df._jdf.queryExecution().analyzed()  # noqa: SLF001
    if plan.nodeName() == "LogicalRDD":
        plan.rdd().unpersist(False)


# --------------------------------------------------------------------------- textbook loop


def textbook_pagerank(
    edges: DataFrame, teleport: DataFrame, *, damping: float, iterations: int
) -> PageRankResult:
    """The naive DataFrame PageRank loop, kept as the benchmark's baseline.

    Parameters
    ----------
    edges, teleport, damping
        As in :func:`pagerank`.
    iterations
        Exactly this many iterations are run (no convergence test).

    Returns
    -------
    PageRankResult
        With ``method="textbook"``, empty ``residuals``, ``converged=False``
        and ``edge_count`` = number of edge rows.

    Notes
    -----
    Per iteration: join the ranks to the (string-keyed, cached) normalized
    edges, ``groupBy(dst)`` the contributions, add the dangling mass back as a
    cross-joined scalar aggregate, and cut the lineage with an eager
    ``localCheckpoint``. The dangling term reads the ranks a second time, so
    without a checkpoint every iteration the recomputation doubles each round.
    Old checkpoints are left to the garbage collector, as in the textbook.
    """
    _check_parameters(damping=damping, tol=1.0, max_iter=iterations, checkpoint_every=1)
    edges, teleport = _validated_inputs(edges, teleport, where="textbook_pagerank")
    out_weight = edges.groupBy(C.SRC).agg(F.sum(C.WEIGHT).alias("out_weight"))
    normalized = (
        edges.join(out_weight, on=C.SRC, how="inner")
        .select(C.SRC, C.DST, (F.col(C.WEIGHT) / F.col("out_weight")).alias(C.WEIGHT))
        .cache()
    )
    names = (
        edges.select(F.explode(F.array(C.SRC, C.DST)).alias(C.NODE)).union(teleport.select(C.NODE)).distinct()
    )
    trust = teleport.groupBy(C.NODE).agg(F.sum(C.TRUST).alias(C.TRUST))
    total = trust.agg(F.sum(C.TRUST)).first()[0] or 0.0
    if not total > 0:
        raise ValueError(_zero_trust_message("textbook_pagerank", total))
    nodes = (
        names.join(trust, on=C.NODE, how="left")
        .join(out_weight, on=F.col(C.NODE) == F.col(C.SRC), how="left")
        .select(
            C.NODE,
            (F.coalesce(F.col(C.TRUST), F.lit(0.0)) / F.lit(total)).alias("p"),
            F.col("out_weight").isNull().alias("dangling"),
        )
        .cache()
    )
    node_count = nodes.count()
    edge_rows = normalized.count()
    ranks = nodes.select(C.NODE, F.lit(1.0 / node_count).alias(C.PAGERANK)).localCheckpoint(eager=True)
    seconds = []
    for _ in range(iterations):
        tick = time.perf_counter()
        received = (
            normalized.join(ranks.withColumnRenamed(C.NODE, C.SRC), on=C.SRC, how="inner")
            .groupBy(C.DST)
            .agg(F.sum(F.col(C.WEIGHT) * F.col(C.PAGERANK)).alias("received"))
        )
        dangling_mass = ranks.join(nodes.filter(F.col("dangling")), on=C.NODE, how="inner").agg(
            F.coalesce(F.sum(C.PAGERANK), F.lit(0.0)).alias("dangling_mass")
        )
        ranks = (
            nodes.join(received.withColumnRenamed(C.DST, C.NODE), on=C.NODE, how="left")
            .crossJoin(dangling_mass)
            .select(
                C.NODE,
                (
                    F.lit(damping)
                    * (F.coalesce(F.col("received"), F.lit(0.0)) + F.col("dangling_mass") * F.col("p"))
                    + F.lit(1.0 - damping) * F.col("p")
                ).alias(C.PAGERANK),
            )
            .localCheckpoint(eager=True)
        )
        seconds.append(time.perf_counter() - tick)
        log.info("textbook_pagerank: iteration %d (%.2f s)", len(seconds), seconds[-1])
    normalized.unpersist()
    nodes.unpersist()
    return PageRankResult(
        ranks=ranks,
        iterations=iterations,
        residuals=(),
        converged=False,
        method="textbook",
        node_count=node_count,
        edge_count=edge_rows,
        iteration_seconds=tuple(seconds),
    )


# --------------------------------------------------------------------------- shared helpers


def _check_parameters(*, damping: float, tol: float, max_iter: int, checkpoint_every: int) -> None:
    if not isinstance(damping, (int, float)) or not 0.0 <= damping < 1.0:
        raise ValueError(f"'damping' must be in [0, 1), got {damping!r}")
    if not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"'tol' must be > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"'max_iter' must be an int >= 1, got {max_iter!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"'checkpoint_every' must be an int >= 1, got {checkpoint_every!r}")


def _validated_inputs(
    edges: DataFrame, teleport: DataFrame, *, where: str, keys: Sequence[str] = ()
) -> tuple[DataFrame, DataFrame]:
    """The needed columns (``keys`` first, as they are), cast to the contract's types (ids as strings, weights as doubles)."""
    require_columns(edges, (*keys, C.SRC, C.DST, C.WEIGHT), where=f"{where}(edges)")
    require_columns(teleport, (*keys, C.NODE, C.TRUST), where=f"{where}(teleport)")
    return (
        edges.select(
            *keys,
            F.col(C.SRC).cast("string").alias(C.SRC),
            F.col(C.DST).cast("string").alias(C.DST),
            F.col(C.WEIGHT).cast("double").alias(C.WEIGHT),
        ),
        teleport.select(
            *keys, F.col(C.NODE).cast("string").alias(C.NODE), F.col(C.TRUST).cast("double").alias(C.TRUST)
        ),
    )


def _indexed_nodes(edges: DataFrame, teleport: DataFrame) -> tuple[DataFrame, int]:
    """``(node, _id)`` with ``_id`` dense in ``[0, N)``, and N.

    Notes
    -----
    The distinct node names get ``monotonically_increasing_id()`` (partition
    index in the high bits, row in partition in the low bits) and are
    materialized as a local checkpoint, which fixes those numbers. One small
    job counts the rows of every partition; the dense id is the partition's
    offset plus the row index. No single-partition window, no Python RDD.
    """
    names = (
        edges.select(F.explode(F.array(C.SRC, C.DST)).alias(C.NODE)).union(teleport.select(C.NODE)).distinct()
    )
    return _dense_ids(names, [C.NODE])


def _indexed_keyed_nodes(
    edges: DataFrame, teleport: DataFrame, key: str
) -> tuple[DataFrame, list[tuple[Any, int, int]]]:
    """``(key, node, _id)`` dense in ``(key, node)`` order, and per key ``(value, first _id, nodes)`` in id order.

    As :func:`_indexed_nodes`, on the distinct pairs sorted by key, then node:
    the ids of one key are contiguous, and their order within the key does not
    depend on the other keys.
    """
    names = (
        edges.select(key, F.explode(F.array(C.SRC, C.DST)).alias(C.NODE))
        .union(teleport.select(key, C.NODE))
        .distinct()
        .orderBy(key, C.NODE)
    )
    node_ids, _ = _dense_ids(names, [key, C.NODE])
    graphs = (
        node_ids.groupBy(key)
        .agg(F.min(_ID).alias("first"), F.count(F.lit(1)).alias("nodes"))
        .orderBy("first")
        .collect()
    )
    return node_ids, [(row[key], row["first"], row["nodes"]) for row in graphs]


def _dense_ids(names: DataFrame, columns: list[str]) -> tuple[DataFrame, int]:
    """``names`` (distinct rows of ``columns``) numbered densely in their current order: ``(*columns, _id)``, N."""
    numbered = names.select(*columns, F.monotonically_increasing_id().alias(_MID)).localCheckpoint(eager=True)
    part = F.shiftright(F.col(_MID), _ROW_BITS)
    counts = numbered.groupBy(part.alias("part")).agg(
        F.count(F.lit(1)).alias("rows"), F.count(C.NODE).alias("named")
    )
    per_part = {row["part"]: (row["rows"], row["named"]) for row in counts.collect()}
    unnamed = sum(rows - named for rows, named in per_part.values())
    if unnamed:
        raise ValueError(
            f"null node id: '{C.SRC}'/'{C.DST}' of edges or '{C.NODE}' of teleport is null (every id must be set)"
        )
    offsets = [0] * (max(per_part, default=-1) + 1)
    running = 0
    for index in range(len(offsets)):
        offsets[index] = running
        running += per_part.get(index, (0, 0))[0]
    row_in_part = F.col(_MID).bitwiseAND(F.lit((1 << _ROW_BITS) - 1))
    offset = F.element_at(F.array(*[F.lit(o) for o in offsets] or [F.lit(0)]), (part + 1).cast("int"))
    return numbered.select(*columns, (offset + row_in_part).alias(_ID)), running


def _maybe_broadcast(df: DataFrame, rows: int) -> DataFrame:
    return F.broadcast(df) if rows <= BROADCAST_MAX_NODES else df


def _edges_with_ids(
    edges: DataFrame, node_ids: DataFrame, node_count: int, *, keys: Sequence[str] = ()
) -> DataFrame:
    """``(_src_id, _dst_id, _w)``: every edge row with its endpoints' dense ids (nodes matched within ``keys``)."""
    sources = node_ids.select(*keys, F.col(C.NODE).alias(C.SRC), F.col(_ID).alias(_SRC_ID))
    targets = node_ids.select(*keys, F.col(C.NODE).alias(C.DST), F.col(_ID).alias(_DST_ID))
    return (
        edges.join(_maybe_broadcast(sources, node_count), on=[*keys, C.SRC], how="inner")
        .join(_maybe_broadcast(targets, node_count), on=[*keys, C.DST], how="inner")
        .select(_SRC_ID, _DST_ID, F.col(C.WEIGHT).alias(_W))
    )


def _teleport_with_ids(
    teleport: DataFrame, node_ids: DataFrame, node_count: int, *, keys: Sequence[str] = ()
) -> DataFrame:
    """``(_id, trust)``: every teleport row with its node's dense id (matched within ``keys``)."""
    return teleport.join(_maybe_broadcast(node_ids, node_count), on=[*keys, C.NODE], how="inner").select(
        _ID, C.TRUST
    )


def _is_bad_weight(weight: Column) -> Column:
    return weight.isNull() | F.isnan(weight) | (weight <= 0)


def _is_bad_trust(trust: Column) -> Column:
    return trust.isNull() | F.isnan(trust) | (trust < 0)


def to_numpy(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    if column.null_count:
        return column.to_numpy(zero_copy_only=False).astype(np.float64)
    return column.to_numpy().astype(dtype, copy=False)


def _check_weights(weight: np.ndarray, *, where: str) -> None:
    bad = int(np.count_nonzero(~(weight > 0)))  # NaN (null) compares False
    if bad:
        raise ValueError(
            f"{where}: {bad} rows have a null, NaN or non-positive '{C.WEIGHT}'; every weight must be > 0"
        )


def _check_trust(trust: np.ndarray, *, where: str) -> None:
    bad = int(np.count_nonzero(~(trust >= 0)))
    if bad:
        raise ValueError(f"{where}: {bad} rows have a null, NaN or negative '{C.TRUST}'")


def _zero_trust_message(where: str, total: float) -> str:
    return (
        f"{where}: 'teleport' has total '{C.TRUST}' {total} over the graph's nodes; the teleport vector "
        "is normalized to sum 1, so at least one node needs positive trust"
    )
