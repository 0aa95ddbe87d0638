"""Per-date vectors: one row carries a value for each ``as_of`` of a multi-date pass.

Counting something per ``as_of`` over trailing windows could copy each row
into every ``as_of`` whose window holds it, then group: the rows grow with
the number of dates. Instead a row carries a vector with one slot per date
(the dates sorted), vectors are combined element-wise when rows are grouped,
and only the final result is exploded to one row per date. With one date the
vectors have one slot, so a daily run and a backfill run the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from klout_spark import columns as C

SLOT = "_slot"


class DateVectors:
    """Helpers for vectors over the sorted distinct ``as_of_dates``."""

    def __init__(self, as_of_dates: Sequence[date]) -> None:
        self.dates = sorted(set(as_of_dates))
        self.slots = len(self.dates)
        self.every_date = F.array(*[F.lit(d) for d in self.dates])

    def per_date(self, value: Callable[[Column], Column]) -> Column:
        """A vector: ``value(as_of)`` for each date.

        One expression per slot with the date as a literal, not a ``transform``
        lambda: Spark compiles these, while it interprets lambdas row by row.
        """
        return F.array(*[value(F.lit(day)) for day in self.dates])

    def counts(self, flag: Callable[[Column], Column]) -> Column:
        """A long vector: 1 where ``flag(as_of)`` holds, else 0."""
        return self.per_date(lambda day: F.when(flag(day), 1).otherwise(0).cast("long"))

    def zipped(self, left: Column, right: Column, merge: Callable[[Column, Column], Column]) -> Column:
        """A vector: ``merge(left[i], right[i])`` for each slot (compiled, as :meth:`per_date`)."""
        return F.array(*[merge(left[slot], right[slot]) for slot in range(self.slots)])

    def zeros(self, dtype: str = "long") -> Column:
        """A vector of zeros of type ``dtype`` (``long`` or ``double``)."""
        return F.array_repeat(F.lit(0).cast(dtype), self.slots)

    def combined(self, vectors: Column, merge: Callable[[Column, Column], Column], dtype: str = "long") -> Column:
        """Aggregate: the element-wise ``merge`` (:func:`larger` or :func:`plus`) of a group's vectors of ``dtype``.

        One plain ``max`` or ``sum`` per slot, so the group's vectors are never
        gathered (a ``collect_list`` folded with ``zip_with`` held every group
        in memory and spilled). Pass a column, not an expression: the vector
        is read once per slot.
        """
        aggregate = {plus: F.sum, larger: F.max}[merge]
        return F.array(*[F.coalesce(aggregate(vectors[slot]), F.lit(0).cast(dtype)) for slot in range(self.slots)])

    def explode(self) -> Column:
        """A generator column: one row per slot (column ``_slot``); pair with :meth:`as_of`."""
        return F.explode(F.sequence(F.lit(0), F.lit(self.slots - 1))).alias(SLOT)

    def as_of(self) -> Column:
        """The date of the row's ``_slot``, as column ``as_of``."""
        return self.every_date[F.col(SLOT)].alias(C.AS_OF)


Merge = Callable[[Column, Column], Column]
REVERSE_SUFFIX = "_back"


def combined_with_reverse(
    rows: DataFrame,
    vectors: DateVectors,
    *,
    key: str,
    source: str,
    target: str,
    merges: Mapping[str, tuple[Merge, str]],
) -> DataFrame:
    """``rows`` combined per directed pair, each pair also carrying its reverse pair's vectors.

    Parameters
    ----------
    rows
        Columns ``key``, ``source``, ``target`` (a pair's ends, never equal)
        and the vector columns named in ``merges``.
    merges
        Vector column -> (merge, dtype), as :meth:`DateVectors.combined` takes them.

    Returns
    -------
    DataFrame
        One row per (``key``, ``source``, ``target``) present in ``rows``: each
        vector of ``merges`` combined over the pair's rows, and as
        ``<vector>_back`` the same of the reverse pair (target to source), zeros
        when the reverse pair has no rows.

    Notes
    -----
    Grouping per pair, then left-joining the groups to themselves with the ends
    swapped, computes the groups twice (once for each side of the join) and
    sorts both sides. Here the rows of both directions are combined into one row
    per unordered pair (a vector per direction), which is then split in two.
    """
    lower, upper = "_lower", "_upper"
    forward = F.col(source) < F.col(target)
    directions = (("_forward", True), ("_reverse", False))
    by_direction = rows.select(
        key,
        F.least(source, target).alias(lower),
        F.greatest(source, target).alias(upper),
        *[F.when(forward == is_forward, 1).alias(f"_rows{suffix}") for suffix, is_forward in directions],
        *[
            F.when(forward == is_forward, F.col(name)).alias(f"{name}{suffix}")
            for suffix, is_forward in directions
            for name in merges
        ],
    )
    unordered = by_direction.groupBy(key, lower, upper).agg(
        *[F.count(f"_rows{suffix}").alias(f"_rows{suffix}") for suffix, _ in directions],
        *[
            vectors.combined(F.col(f"{name}{suffix}"), merge, dtype=dtype).alias(f"{name}{suffix}")
            for suffix, _ in directions
            for name, (merge, dtype) in merges.items()
        ],
    )

    def direction(src: str, dst: str, own: str, other: str) -> Column:
        return F.struct(
            (F.col(f"_rows{own}") > 0).alias("_present"),
            F.col(src).alias(source),
            F.col(dst).alias(target),
            *[F.col(f"{name}{own}").alias(name) for name in merges],
            *[F.col(f"{name}{other}").alias(f"{name}{REVERSE_SUFFIX}") for name in merges],
        )

    both = F.array(direction(lower, upper, "_forward", "_reverse"), direction(upper, lower, "_reverse", "_forward"))
    return (
        unordered.select(key, F.explode(both).alias("_pair"))
        .filter(F.col("_pair._present"))
        .select(key, "_pair.*")
        .drop("_present")
    )


def at_slot(vector: str) -> Column:
    """The value of column ``vector`` at the row's ``_slot``."""
    return F.col(vector)[F.col(SLOT)]


def plus(a: Column, b: Column) -> Column:
    return a + b


def larger(a: Column, b: Column) -> Column:
    return F.greatest(a, b)
