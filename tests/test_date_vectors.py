"""Per-date vectors: combined in groups, exploded to one row per date."""

from functools import partial

from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark.date_vectors import DateVectors, at_slot, combined_with_reverse, flag_at_slot
from tests.factories import AS_OF, days_ago


def test_vectors_sum_per_group_and_explode_to_one_row_per_date(spark):
    vectors = DateVectors([AS_OF, days_ago(2), days_ago(1), AS_OF])  # sorted, duplicates dropped
    assert vectors.dates == [days_ago(2), days_ago(1), AS_OF] and vectors.slots == 3
    rows = spark.createDataFrame(
        [("a", days_ago(2), 1.5), ("a", days_ago(2), 1.0), ("a", AS_OF, 4.0), ("b", days_ago(1), 0.5)],
        f"key string, {C.EVENT_DATE} date, value double",
    )
    # The row's value on the dates from its day on (a window of 2 days).
    in_window = vectors.per_date(
        lambda day: F.when((day >= F.col(C.EVENT_DATE)) & (day < F.date_add(F.col(C.EVENT_DATE), 2)), F.col("value"))
        .otherwise(0.0)
    )
    summed = rows.groupBy("key").agg(vectors.summed(in_window, dtype="double").alias("total"))
    got = {
        (r.key, r.as_of): r.total
        for r in summed.select("*", vectors.explode()).select("key", vectors.as_of(), at_slot("total").alias("total"))
        .collect()
    }
    assert got == {
        ("a", days_ago(2)): 2.5, ("a", days_ago(1)): 2.5, ("a", AS_OF): 4.0,
        ("b", days_ago(2)): 0.0, ("b", days_ago(1)): 0.5, ("b", AS_OF): 0.5,
    }


def test_zipped_works_slot_by_slot(spark):
    vectors = DateVectors([days_ago(1), AS_OF])
    row = (
        spark.range(1)
        .select(F.array(F.lit(2), F.lit(0)).alias("a"), F.array(F.lit(3), F.lit(5)).alias("b"))
        .select(vectors.zipped(F.col("a"), F.col("b"), lambda x, y: x * y).alias("product"))
        .first()
    )
    assert row.product == [6, 0]


def test_flag_vectors_pack_a_bit_per_date_and_combine_and_count_per_group(spark):
    """Flags over 70 dates (two words): OR-ed and counted per group, read back at each row's slot."""
    dates = [days_ago(n) for n in range(69, -1, -1)]
    vectors = DateVectors(dates)
    assert vectors.words == 2
    rows = spark.createDataFrame(
        [("a", days_ago(69)), ("a", days_ago(69)), ("a", days_ago(2)), ("b", days_ago(0))],
        f"key string, {C.EVENT_DATE} date",
    )
    # Set on the dates from the row's day on, for 3 days: a's first rows set slots 0-2, its third 67-69.
    in_window = vectors.flags(lambda day: (day >= F.col(C.EVENT_DATE)) & (day < F.date_add(F.col(C.EVENT_DATE), 3)))
    late = vectors.flags(lambda day: day >= F.lit(days_ago(1)))  # slots 68 and 69
    per_key = rows.groupBy("key").agg(
        vectors.any_of(in_window).alias("any"),
        vectors.count_flags(in_window).alias("n"),
        vectors.count_flags(vectors.both(in_window, late)).alias("late"),
        vectors.any_of(F.when(F.lit(False), in_window)).alias("none"),
    )
    got = {
        (r.key, r.as_of): (r.any, r.n, r.late)
        for r in per_key.select("*", vectors.explode())
        .select("key", vectors.as_of(), flag_at_slot("any").alias("any"), at_slot("n").alias("n"),
                at_slot("late").alias("late"))
        .filter("any = 1 or n > 0 or late > 0")
        .collect()
    }
    assert got == {
        ("a", days_ago(69)): (1, 2, 0), ("a", days_ago(68)): (1, 2, 0), ("a", days_ago(67)): (1, 2, 0),
        ("a", days_ago(2)): (1, 1, 0), ("a", days_ago(1)): (1, 1, 1), ("a", days_ago(0)): (1, 1, 1),
        ("b", days_ago(0)): (1, 1, 1),
    }
    assert {tuple(r.none) for r in per_key.collect()} == {(0, 0)}


def test_pairs_are_combined_with_their_reverse_pairs(spark):
    """Each directed pair once, its vectors combined, and its reverse pair's as ``<name>_back``."""
    vectors = DateVectors([days_ago(1), AS_OF])
    rows = spark.createDataFrame(
        [
            ("t", "x", "y", [1], [0.5, 0.0]),
            ("t", "x", "y", [3], [0.25, 2.0]),  # x->y twice: flags OR-ed, weights summed
            ("t", "y", "x", [2], [0.0, 4.0]),  # the reverse of x->y, below x in the order
            ("t", "z", "a", [3], [1.0, 1.0]),  # no a->z: nothing back
            ("r", "y", "x", [1], [3.0, 0.0]),  # another network: not x->y's reverse
        ],
        "network string, src string, dst string, seen array<bigint>, weight array<double>",
    )
    got = {
        (r.network, r.src, r.dst): (r.seen, r.weight, r.seen_back, r.weight_back)
        for r in combined_with_reverse(
            rows, key="network", source="src", target="dst",
            merges={"seen": vectors.any_of, "weight": partial(vectors.summed, dtype="double")},
        ).collect()
    }
    assert got == {
        ("t", "x", "y"): ([3], [0.75, 2.0], [2], [0.0, 4.0]),
        ("t", "y", "x"): ([2], [0.0, 4.0], [3], [0.75, 2.0]),
        ("t", "z", "a"): ([3], [1.0, 1.0], [0], [0.0, 0.0]),
        ("r", "y", "x"): ([1], [3.0, 0.0], [0], [0.0, 0.0]),
    }


def test_own_vectors_are_combined_per_pair_without_the_reverse(spark):
    """``own`` vectors are combined per directed pair like ``merges``, with no ``<name>_back``."""
    vectors = DateVectors([days_ago(1), AS_OF])
    rows = spark.createDataFrame(
        [
            ("t", "x", "y", [1], [2, 0]),
            ("t", "x", "y", [2], [1, 5]),
            ("t", "y", "x", [1], [7, 7]),
        ],
        "network string, src string, dst string, seen array<bigint>, n array<bigint>",
    )
    pairs = combined_with_reverse(
        rows, key="network", source="src", target="dst",
        merges={"seen": vectors.any_of}, own={"n": vectors.summed},
    )
    assert sorted(pairs.columns) == ["dst", "n", "network", "seen", "seen_back", "src"]
    assert {(r.src, r.dst): (r.seen, r.seen_back, r.n) for r in pairs.collect()} == {
        ("x", "y"): ([3], [1], [3, 5]),
        ("y", "x"): ([1], [3], [7, 7]),
    }
