"""Per-date vectors: combined in groups, exploded to one row per date."""

from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark.date_vectors import DateVectors, at_slot, combined_with_reverse, larger, plus
from tests.factories import AS_OF, days_ago


def test_vectors_combine_per_group_and_explode_to_one_row_per_date(spark):
    vectors = DateVectors([AS_OF, days_ago(2), days_ago(1), AS_OF])  # sorted, duplicates dropped
    assert vectors.dates == [days_ago(2), days_ago(1), AS_OF] and vectors.slots == 3
    rows = spark.createDataFrame(
        [("a", days_ago(2)), ("a", days_ago(2)), ("a", AS_OF), ("b", days_ago(1))], f"key string, {C.EVENT_DATE} date"
    )
    # 1 on the dates from the row's day on (a window of 2 days).
    in_window = vectors.counts(lambda day: (day >= F.col(C.EVENT_DATE)) & (day < F.date_add(F.col(C.EVENT_DATE), 2)))
    combined = rows.groupBy("key").agg(
        vectors.combined(in_window, plus).alias("total"), vectors.combined(in_window, larger).alias("any")
    )
    got = {
        (r.key, r.as_of): (r.total, r.any)
        for r in combined.select("*", vectors.explode())
        .select("key", vectors.as_of(), at_slot("total").alias("total"), at_slot("any").alias("any"))
        .collect()
    }
    assert got == {
        ("a", days_ago(2)): (2, 1), ("a", days_ago(1)): (2, 1), ("a", AS_OF): (1, 1),
        ("b", days_ago(2)): (0, 0), ("b", days_ago(1)): (1, 1), ("b", AS_OF): (1, 1),
    }


def test_zipped_and_zeros_work_slot_by_slot(spark):
    vectors = DateVectors([days_ago(1), AS_OF])
    row = (
        spark.range(1)
        .select(F.array(F.lit(2), F.lit(0)).alias("a"), F.array(F.lit(3), F.lit(5)).alias("b"))
        .select(
            vectors.zipped(F.col("a"), F.col("b"), lambda x, y: x * y).alias("product"),
            vectors.zeros().alias("zeros"),
        )
        .first()
    )
    assert (row.product, row.zeros) == ([6, 0], [0, 0])


def test_pairs_are_combined_with_their_reverse_pairs(spark):
    """Each directed pair once, its vectors combined, and its reverse pair's as ``<name>_back``."""
    vectors = DateVectors([days_ago(1), AS_OF])
    rows = spark.createDataFrame(
        [
            ("t", "x", "y", [1, 0], [0.5, 0.0]),
            ("t", "x", "y", [1, 1], [0.25, 2.0]),  # x->y twice: summed, and larger of the flags
            ("t", "y", "x", [0, 1], [0.0, 4.0]),  # the reverse of x->y, below x in the order
            ("t", "z", "a", [1, 1], [1.0, 1.0]),  # no a->z: zeros back
            ("r", "y", "x", [1, 0], [3.0, 0.0]),  # another network: not x->y's reverse
        ],
        "network string, src string, dst string, seen array<bigint>, weight array<double>",
    )
    got = {
        (r.network, r.src, r.dst): (r.seen, r.weight, r.seen_back, r.weight_back)
        for r in combined_with_reverse(
            rows, vectors, key="network", source="src", target="dst",
            merges={"seen": (larger, "long"), "weight": (plus, "double")},
        ).collect()
    }
    assert got == {
        ("t", "x", "y"): ([1, 1], [0.75, 2.0], [0, 1], [0.0, 4.0]),
        ("t", "y", "x"): ([0, 1], [0.0, 4.0], [1, 1], [0.75, 2.0]),
        ("t", "z", "a"): ([1, 1], [1.0, 1.0], [0, 0], [0.0, 0.0]),
        ("r", "y", "x"): ([1, 0], [3.0, 0.0], [0, 0], [0.0, 0.0]),
    }
