"""Per-date vectors: one row carries a value for each ``as_of`` of a multi-date pass.

Counting something per ``as_of`` over trailing windows could copy each row
into every ``as_of`` whose window holds it, then group: the rows grow with
the number of dates. Instead a row carries a vector with one slot per date
(the dates sorted), vectors are combined element-wise when rows are grouped,
and only the final result is exploded to one row per date. With one date the
vectors have one slot, so a daily run and a backfill run the same code.

A yes/no per date is a *flag vector*: one bit per date, packed into
``ceil(dates / 63)`` longs, combined with a bitwise OR and counted per date
only where counts are needed. A grouping that carries flags holds a long per
63 dates instead of a long per date: the grouping of many million
(engager, author) pairs that ``user_features`` needs is that much lighter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from klout_spark import columns as C

SLOT = "_slot"
BITS_PER_WORD = 63  # bit 63 is the sign: a literal 1 << 63 is not a long


class DateVectors:
    """Helpers for vectors over the sorted distinct ``as_of_dates``."""

    def __init__(self, as_of_dates: Sequence[date]) -> None:
        self.dates = sorted(set(as_of_dates))
        self.slots = len(self.dates)
        self.every_date = F.array(*[F.lit(d) for d in self.dates])
        self.words = -(-self.slots // BITS_PER_WORD)

    def per_date(self, value: Callable[[Column], Column]) -> Column:
        """A vector: ``value(as_of)`` for each date.

        One expression per slot with the date as a literal, not a ``transform``
        lambda: Spark compiles these, while it interprets lambdas row by row.
        """
        return F.array(*[value(F.lit(day)) for day in self.dates])

    def zipped(self, left: Column, right: Column, merge: Callable[[Column, Column], Column]) -> Column:
        """A vector: ``merge(left[i], right[i])`` for each slot (compiled, as :meth:`per_date`)."""
        return F.array(*[merge(left[slot], right[slot]) for slot in range(self.slots)])

    def summed(self, vectors: Column, dtype: str = "long") -> Column:
        """Aggregate: the element-wise sum of a group's vectors of ``dtype`` (zeros for an empty group).

        One plain ``sum`` per slot, so the group's vectors are never gathered
        (a ``collect_list`` folded with ``zip_with`` held every group in memory
        and spilled). Pass a column, not an expression: the vector is read
        once per slot.
        """
        return F.array(*[F.coalesce(F.sum(vectors[slot]), F.lit(0).cast(dtype)) for slot in range(self.slots)])

    def flags(self, flag: Callable[[Column], Column]) -> Column:
        """A flag vector: the bit of each date set where ``flag(as_of)`` holds (compiled, as :meth:`per_date`)."""
        words = []
        for word in range(self.words):
            first = word * BITS_PER_WORD
            bits = [
                F.when(flag(F.lit(day)), F.lit(1 << bit).cast("long")).otherwise(F.lit(0).cast("long"))
                for bit, day in enumerate(self.dates[first : first + BITS_PER_WORD])
            ]
            words.append(sum(bits[1:], bits[0]))
        return F.array(*words)

    def both(self, left: Column, right: Column) -> Column:
        """The flag vector set where both ``left`` and ``right`` are."""
        return F.array(*[left[word].bitwiseAND(right[word]) for word in range(self.words)])

    def any_of(self, flags: Column) -> Column:
        """Aggregate: the flag vector set where any of a group's vectors is (none for an empty group)."""
        return F.array(*[F.coalesce(F.bit_or(flags[word]), F.lit(0).cast("long")) for word in range(self.words)])

    def count_flags(self, flags: Column) -> Column:
        """Aggregate: a long vector, for each date how many of a group's flag vectors are set."""
        return F.array(
            *[
                F.coalesce(F.sum(_bit(flags[slot // BITS_PER_WORD], slot % BITS_PER_WORD)), F.lit(0).cast("long"))
                for slot in range(self.slots)
            ]
        )

    def explode(self) -> Column:
        """A generator column: one row per slot (column ``_slot``); pair with :meth:`as_of`."""
        return F.explode(F.sequence(F.lit(0), F.lit(self.slots - 1))).alias(SLOT)

    def as_of(self) -> Column:
        """The date of the row's ``_slot``, as column ``as_of``."""
        return self.every_date[F.col(SLOT)].alias(C.AS_OF)


Aggregate = Callable[[Column], Column]
REVERSE_SUFFIX = "_back"


def combined_with_reverse(
    rows: DataFrame,
    *,
    key: str,
    source: str,
    target: str,
    merges: Mapping[str, Aggregate],
    own: Mapping[str, Aggregate] | None = None,
) -> DataFrame:
    """``rows`` combined per directed pair, each pair also carrying its reverse pair's vectors.

    Parameters
    ----------
    rows
        Columns ``key``, ``source``, ``target`` (a pair's ends, never equal)
        and the vector columns named in ``merges`` and ``own``.
    merges
        Vector column -> the aggregate that combines a group's vectors of it
        (:meth:`DateVectors.any_of`, or :meth:`DateVectors.summed` with its
        type bound); it must give a vector of zeros for a group
        whose vectors are all null.
    own
        Vector columns combined as ``merges`` are, but for the pair only: the
        reverse pair's are not carried (so neither held nor copied).

    Returns
    -------
    DataFrame
        One row per (``key``, ``source``, ``target``) present in ``rows``: each
        vector of ``merges`` and ``own`` combined over the pair's rows, and as
        ``<vector>_back`` each of ``merges`` of the reverse pair (target to
        source), zeros when the reverse pair has no rows.

    Notes
    -----
    Grouping per pair, then left-joining the groups to themselves with the ends
    swapped, computes the groups twice (once for each side of the join) and
    sorts both sides. Here the rows of both directions are combined into one row
    per unordered pair (a vector per direction), which is then split in two.
    """
    combined = {**merges, **(own or {})}
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
            for name in combined
        ],
    )
    unordered = by_direction.groupBy(key, lower, upper).agg(
        *[F.count(f"_rows{suffix}").alias(f"_rows{suffix}") for suffix, _ in directions],
        *[
            aggregate(F.col(f"{name}{suffix}")).alias(f"{name}{suffix}")
            for suffix, _ in directions
            for name, aggregate in combined.items()
        ],
    )

    def direction(src: str, dst: str, mine: str, other: str) -> Column:
        return F.struct(
            (F.col(f"_rows{mine}") > 0).alias("_present"),
            F.col(src).alias(source),
            F.col(dst).alias(target),
            *[F.col(f"{name}{mine}").alias(name) for name in combined],
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


def flag_at(flags: Column, slot: Column) -> Column:
    """1 where flag vector ``flags`` is set at ``slot``, else 0 (a long)."""
    return _bit(flags[(slot / BITS_PER_WORD).cast("int")], (slot % BITS_PER_WORD).cast("int"))


def _bit(word: Column, bit: Column | int) -> Column:
    # F.shiftright takes a Python int only; the SQL function takes a column too.
    return F.call_function("shiftright", word, F.lit(bit) if isinstance(bit, int) else bit).bitwiseAND(
        F.lit(1).cast("long")
    )


def flag_at_slot(flags: str) -> Column:
    """1 where flag vector column ``flags`` is set at the row's ``_slot``, else 0."""
    return flag_at(F.col(flags), F.col(SLOT))

