"""Who sends each account its PageRank: the largest shares of its inflow, per date.

An engager ``src`` sends ``dst`` the flow ``damping * pagerank(src) * weight(src -> dst)``
(the order of the product is fixed: both paths below give the same bits). An
account's inflow is the sum of the flows it receives; its top ``k`` engagers
are the ``k`` largest flows, ties broken by the engager's id (byte order), and
each is listed with its share of the whole inflow (also of the engagers the cut
leaves out). Accounts whose inflow is 0 list no engager.

Two paths give the same rows:

- :func:`top_shares`, in Spark: a window sort of every flow, for any size.
- :func:`top_shares_on_driver`: the edges and ranks collected as Arrow and cut
  with NumPy. At L a 30-date backfill sorted 91M flows in the window (a stage
  of 141 s that spilled 11.3 GB); the driver collects one date's 5.8M edges
  in about 2 s and numbers and cuts them in about 2 s more. The caller bounds
  the edges it collects (:func:`driver_batches`), as for the local PageRank.

Both take ``edges`` (``as_of``, ``network``, ``src``, ``dst``, ``weight``) and
``ranks`` (``as_of``, ``network``, ``user_id``, ``pagerank``) and return
``as_of``, ``network``, ``user_id``, ``contributor_id``, ``position`` (1 =
largest) and ``contribution`` (the share, unrounded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import date
from functools import reduce

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark.graph import node_key, split_node_key
from klout_spark.pagerank import frame_from_arrow, numbered_on_driver, to_numpy

log = logging.getLogger(__name__)

_FLOW = "_flow"
_INFLOW = "_inflow"


def top_shares(edges: DataFrame, ranks: DataFrame, *, damping: float, top_k: int) -> DataFrame:
    """The top ``top_k`` engagers of every account and date and their shares of its inflow, in Spark."""
    # One rank per account and date against some 16 in-edges per account: hashing the ranks
    # spares the sort of the edges that a sort-merge join needs (a 30-date backfill at L:
    # 416 s against 466 s for score_explain, one process each).
    sender_rank = ranks.select(C.AS_OF, C.NETWORK, F.col(C.USER_ID).alias(C.SRC), C.PAGERANK).hint("shuffle_hash")
    flow = (
        edges.join(sender_rank, on=[C.AS_OF, C.NETWORK, C.SRC], how="inner")
        .select(
            C.AS_OF,
            C.NETWORK,
            F.col(C.DST).alias(C.USER_ID),
            F.col(C.SRC).alias(C.CONTRIBUTOR_ID),
            (damping * F.col(C.PAGERANK) * F.col(C.WEIGHT)).alias(_FLOW),
        )
    )
    # Engagers are ranked by their flow and divided by the account's inflow after the top-k
    # cut: an aggregate and a join of k rows an account, where a window sum would buffer
    # every in-edge of an account (all dates of a chunk) in one task.
    inflow = flow.groupBy(C.AS_OF, C.NETWORK, C.USER_ID).agg(F.sum(_FLOW).alias(_INFLOW))
    largest_first = Window.partitionBy(C.AS_OF, C.NETWORK, C.USER_ID).orderBy(
        F.col(_FLOW).desc(), F.col(C.CONTRIBUTOR_ID)
    )
    return (
        flow.withColumn(C.POSITION, F.row_number().over(largest_first).cast("long"))
        .filter(F.col(C.POSITION) <= top_k)
        .join(inflow.filter(F.col(_INFLOW) > 0), on=[C.AS_OF, C.NETWORK, C.USER_ID], how="inner")
        .select(
            C.AS_OF, C.NETWORK, C.USER_ID, C.CONTRIBUTOR_ID, C.POSITION,
            (F.col(_FLOW) / F.col(_INFLOW)).alias(C.CONTRIBUTION),
        )
    )


def top_shares_on_driver(edges: DataFrame, ranks: DataFrame, *, damping: float, top_k: int) -> DataFrame:
    """:func:`top_shares` computed on the driver; the same rows.

    Two collects as Arrow (the edges and the ranks, with node keys as in
    ``propagate``), numbered per ``(as_of, node)`` by
    :func:`klout_spark.pagerank.numbered_on_driver` (in byte order, so id
    order breaks ties as Spark's string order does), then one ``np.lexsort``
    by account, flow (descending) and engager. Driver memory in Python: about
    110 bytes an edge at its peak (a date of 5.8M edges at L: 98 in NumPy,
    11 in Arrow), besides the JVM's copy of the rows while they are collected. The rows go back to Spark as
    one Arrow table (:func:`klout_spark.pagerank.frame_from_arrow`).
    """
    spark = edges.sparkSession
    key_type = edges.schema[C.AS_OF].dataType
    started = time.perf_counter()
    edge_table = edges.select(
        C.AS_OF,
        node_key(F.col(C.NETWORK), F.col(C.SRC)).alias(C.SRC),
        node_key(F.col(C.NETWORK), F.col(C.DST)).alias(C.DST),
        C.WEIGHT,
    ).toArrow()
    rank_table = ranks.select(
        C.AS_OF, node_key(F.col(C.NETWORK), F.col(C.USER_ID)).alias(C.NODE), C.PAGERANK
    ).toArrow()
    collected = time.perf_counter()
    numbered = numbered_on_driver(
        names=(edge_table.column(C.SRC), edge_table.column(C.DST), rank_table.column(C.NODE)),
        keys=(edge_table.column(C.AS_OF), edge_table.column(C.AS_OF), rank_table.column(C.AS_OF)),
    )
    weight = to_numpy(edge_table.column(C.WEIGHT), np.float64)
    pagerank = np.full(numbered.node_count, np.nan)
    src, dst, ranked = numbered.ids
    pagerank[ranked] = to_numpy(rank_table.column(C.PAGERANK), np.float64)
    del edge_table, rank_table, ranked

    sent = ~np.isnan(pagerank[src])  # the inner join with the ranks
    src, dst, weight = src[sent], dst[sent], weight[sent]
    flow = damping * pagerank[src] * weight
    inflow = np.bincount(dst, weights=flow, minlength=numbered.node_count)
    order = np.lexsort((src, -flow, dst))
    by_account = dst[order]
    starts = np.flatnonzero(np.concatenate([[True], by_account[1:] != by_account[:-1]]))
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order)))) + 1
    listed = (position <= top_k) & (inflow[by_account] > 0)
    kept, position = order[listed], position[listed]
    account, contributor = pa.array(dst[kept]), pa.array(src[kept])
    table = pa.table(
        {
            C.AS_OF: numbered.key_of_id.take(account),
            "_account": numbered.node_of_id.take(account),
            "_contributor": numbered.node_of_id.take(contributor),
            C.POSITION: position.astype(np.int64),
            C.CONTRIBUTION: flow[kept] / inflow[dst[kept]],
        }
    )
    log.info(
        "top_shares_on_driver: %d edges, %d rows kept; collect %.2f s, numbering and cut %.2f s",
        len(order), len(kept), collected - started, time.perf_counter() - collected,
    )
    network, user_id = split_node_key(F.col("_account"))
    return frame_from_arrow(spark, table).select(
        F.col(C.AS_OF).cast(key_type).alias(C.AS_OF),
        network,
        user_id,
        split_node_key(F.col("_contributor"))[1].alias(C.CONTRIBUTOR_ID),
        C.POSITION,
        C.CONTRIBUTION,
    )


def driver_batches(edge_counts: Mapping[date, int], *, max_edges: int) -> tuple[list[list[date]], list[date]]:
    """Dates grouped for :func:`top_shares_on_driver`, at most ``max_edges`` edges a group; and the dates too large.

    Groups follow the dates' order; a date with more than ``max_edges`` edges
    is left to :func:`top_shares`.
    """
    groups: list[list[date]] = []
    too_large: list[date] = []
    size = 0
    for as_of in sorted(edge_counts):
        count = edge_counts[as_of]
        if count > max_edges:
            too_large.append(as_of)
        elif groups and size + count <= max_edges:
            groups[-1].append(as_of)
            size += count
        else:
            groups.append([as_of])
            size = count
    return groups, too_large


def top_shares_by_size(
    edges: DataFrame, ranks: DataFrame, *, damping: float, top_k: int, driver_max_edges: int
) -> DataFrame:
    """:func:`top_shares` of all dates of ``edges``: on the driver in groups of dates of up to ``driver_max_edges`` edges.

    A date with more edges, or every date when ``driver_max_edges`` is 0, is
    cut in Spark. One aggregate job counts each date's edges first.
    """
    if driver_max_edges <= 0:
        return top_shares(edges, ranks, damping=damping, top_k=top_k)
    counts = {row[C.AS_OF]: row["n"] for row in edges.groupBy(C.AS_OF).agg(F.count(F.lit(1)).alias("n")).collect()}
    groups, too_large = driver_batches(counts, max_edges=driver_max_edges)
    parts = [
        top_shares_on_driver(
            edges.filter(F.col(C.AS_OF).isin(group)), ranks.filter(F.col(C.AS_OF).isin(group)),
            damping=damping, top_k=top_k,
        )
        for group in groups
    ]
    if too_large or not parts:
        in_spark = F.col(C.AS_OF).isin(too_large)
        parts.append(top_shares(edges.filter(in_spark), ranks.filter(in_spark), damping=damping, top_k=top_k))
    return reduce(DataFrame.unionByName, parts)
