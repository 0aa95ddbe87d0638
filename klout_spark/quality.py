"""Great Expectations suites and the gate that splits a batch into clean and quarantined rows.

The suites below are the single source of truth for what a valid row is. Great
Expectations (GX Core 1.x, ephemeral context, Spark data source) runs them on
the whole batch and gives the verdict and the counts; the quarantine split is
not a second copy of the rules but a translation of the same expectation
objects (type + kwargs + row condition) into Spark predicates
(:func:`row_failure_predicates`). Every validation checks that, for every
expectation, the rows our predicate flags are exactly as many as GE's
``unexpected_count``, so the two can never drift apart silently.

Layout of what a validation keeps (when ``results_dir`` is given)::

    <results_dir>/<run_id>/<suite>.json              GE's validation result (SUMMARY format)
    <results_dir>/<run_id>/data_docs/<suite>/index.html   GE Data Docs for that result
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from pathlib import Path
from time import perf_counter
from typing import Any

import great_expectations as gx
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.row_conditions import (
    AndCondition,
    ComparisonCondition,
    Condition,
    NullityCondition,
    Operator,
    OrCondition,
    PassThroughCondition,
    deserialize_row_condition,
)
from great_expectations.expectations.row_conditions import Column as GxColumn
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark.catalog import (  # suite names are the table names
    BRONZE_EVENTS,
    NETWORK_RANK,
    SCORES,
    SILVER_EVENTS,
    SILVER_PROFILES,
    USER_FEATURES,
)
from klout_spark.errors import (
    DataQualityError,
    InputError,
    QuarantineTranslationError,
    require_columns,
)
from klout_spark.schemas import (
    AUTHORED_TYPES,
    EVENT_TYPES,
    FEATURE_MEASURES,
    FOLLOW,
    INTERACTION_TYPES,
    IS_INACTIVE,
    IS_SPAM_LIKE,
    POST_ENGAGEMENT_TYPES,
    UNFOLLOW,
)

log = logging.getLogger(__name__)


PROFILE_COUNT_COLUMNS: tuple[str, ...] = (
    C.FOLLOWERS_COUNT,
    C.FOLLOWING_COUNT,
    C.LISTED_COUNT,
    C.POSTS_COUNT,
)
# Interactions that cannot target their own actor. Self-replies (threads),
# self-quotes, self-reshares, self-likes and self-mentions are real, common
# activity: they are valid data (propagate drops them as self-loops), so they
# are not quarantined. A self-follow is impossible on every network we read.
SELF_INTERACTION_FORBIDDEN_TYPES: tuple[str, ...] = (FOLLOW, UNFOLLOW)
SCORE_RANGE = (1.0, 100.0)
SUB_SCORE_RANGE = (0.0, 100.0)
SUB_SCORE_COLUMNS: tuple[str, ...] = (C.TRUE_REACH, C.AMPLIFICATION, C.NETWORK_IMPACT)

# SUMMARY gives counts plus at most 20 sample values per expectation. Never
# COMPLETE: it collects every failing row to the driver.
RESULT_FORMAT = "SUMMARY"
# The same counts without the samples, for a batch in which our own count found no
# failing row: GE looks for samples with a filter and `limit(20)`, which reads the
# whole batch when nothing fails (a uniqueness check groups it again), and a limit
# of 0 reads nothing. The samples would be empty either way.
RESULT_FORMAT_NO_SAMPLES = {"result_format": RESULT_FORMAT, "partial_unexpected_count": 0}
_DATASOURCE = "klout"
_OVERRIDE_KEY = "validate.max_failure_fraction"


@dataclass(frozen=True)
class ValidationOutcome:
    """What a validation found, and the batch split into clean and quarantined rows.

    Attributes
    ----------
    valid
        Rows that pass every row-level expectation, with the input's columns.
    rejected
        Rows that fail at least one: the input's columns plus ``reason``, the name
        of the first failing expectation in suite order (see :func:`expectation_name`).
    success
        GE's overall verdict on the batch (``False`` as soon as one row fails).
    rows_in, rows_rejected, failure_fraction
        Batch size, quarantined rows, and their ratio (``0.0`` for an empty batch).
    results_path
        The GE result JSON written for this validation, or ``None``.
    summary
        ``{name: {"expectation_type", "success", "element_count", "unexpected_count",
        "unexpected_percent", "error"}}`` in suite order; JSON-serialisable.
    seconds
        Wall time spent checking: the per-expectation counts of the split and GE's
        run (reading the batch into the cache counts too unless the caller had
        cached and materialised it). What validation adds to a stage.
    """

    valid: DataFrame
    rejected: DataFrame
    success: bool
    rows_in: int
    rows_rejected: int
    failure_fraction: float
    results_path: str | None
    summary: dict
    seconds: float = 0.0
    _cached: DataFrame | None = field(default=None, repr=False, compare=False)

    def failing(self) -> dict[str, dict]:
        """The summary entries of the expectations that failed (or could not be evaluated)."""
        return {name: entry for name, entry in self.summary.items() if not entry["success"]}

    def release(self) -> None:
        """Unpersist the input batch kept cached by ``keep_cached=True`` (no-op otherwise)."""
        if self._cached is not None:
            self._cached.unpersist()


# --------------------------------------------------------------------------- names


def expectation_name(expectation: Any) -> str:
    """Stable name of an expectation, used as the quarantine ``reason``.

    ``meta["name"]`` when the suite sets one (ours always do), otherwise
    ``<expectation_type>:<column>`` (or ``:<col1>,<col2>`` for multi-column ones).
    Accepts an ``Expectation`` or the ``ExpectationConfiguration`` of a result.
    """
    meta = getattr(expectation, "meta", None) or {}
    if meta.get("name"):
        return str(meta["name"])
    configuration = getattr(expectation, "configuration", expectation)
    return _derived_name(configuration.type, configuration.kwargs)


def _derived_name(expectation_type: str, kwargs: Mapping[str, Any]) -> str:
    if kwargs.get("column") is not None:
        return f"{expectation_type}:{kwargs['column']}"
    if kwargs.get("column_list"):
        return f"{expectation_type}:{','.join(kwargs['column_list'])}"
    if kwargs.get("column_A") is not None:
        return f"{expectation_type}:{kwargs['column_A']},{kwargs['column_B']}"
    return expectation_type


def _named(expectation: Any) -> Any:
    expectation.meta = {**(expectation.meta or {}), "name": expectation_name(expectation)}
    return expectation


def _suite(name: str, expectations: Sequence[Any]) -> gx.ExpectationSuite:
    named = [_named(expectation) for expectation in expectations]
    labels = [expectation_name(expectation) for expectation in named]
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(f"suite {name!r}: several expectations are named {duplicated}; set meta['name']")
    # The constructor, unlike add_expectation, needs no active data context; it
    # logs and skips an invalid expectation, so make sure none was dropped.
    suite = gx.ExpectationSuite(name=name, expectations=named)
    kept = [expectation_name(expectation) for expectation in suite.expectations]
    if kept != labels:
        raise ValueError(f"suite {name!r}: GE rejected {sorted(set(labels) - set(kept))}")
    return suite


# --------------------------------------------------------------------------- suites


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are UTC throughout klout-spark (the session time zone is UTC).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def bronze_events_suite(*, min_event_ts: datetime, max_event_ts: datetime) -> gx.ExpectationSuite:
    """Row-level expectations on a batch of ``bronze_events`` (order = quarantine priority).

    Parameters
    ----------
    min_event_ts, max_event_ts
        Inclusive range of a plausible ``event_ts`` (naive values are UTC): the
        configured earliest date, and the run's time plus the future tolerance.

    Returns
    -------
    great_expectations.ExpectationSuite
        Named ``bronze_events``; every expectation carries ``meta["name"]``.
    """
    low, high = _utc(min_event_ts), _utc(max_event_ts)
    if low > high:
        raise InputError(f"bronze_events_suite: min_event_ts {low} is after max_event_ts {high}")
    event_type = GxColumn(C.EVENT_TYPE)
    E = gx.expectations
    return _suite(
        BRONZE_EVENTS,
        [
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_ID),
            E.ExpectColumnValuesToNotBeNull(column=C.NETWORK),
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_TYPE),
            E.ExpectColumnValuesToBeInSet(column=C.EVENT_TYPE, value_set=list(EVENT_TYPES)),
            E.ExpectColumnValuesToNotBeNull(column=C.ACTOR_ID),
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_TS),
            E.ExpectColumnValuesToBeBetween(column=C.EVENT_TS, min_value=low, max_value=high),
            E.ExpectColumnValuesToNotBeNull(
                column=C.SUBJECT_ID, row_condition=event_type.is_in(INTERACTION_TYPES)
            ),
            # GE has no "a != b" pair expectation; "values unique within the record"
            # over (actor, subject) is exactly that, and counts per row.
            E.ExpectSelectColumnValuesToBeUniqueWithinRecord(
                column_list=[C.ACTOR_ID, C.SUBJECT_ID],
                ignore_row_if="any_value_is_missing",
                row_condition=event_type.is_in(SELF_INTERACTION_FORBIDDEN_TYPES),
            ),
            E.ExpectColumnValuesToNotBeNull(
                column=C.PARENT_POST_ID, row_condition=event_type.is_in(POST_ENGAGEMENT_TYPES)
            ),
            E.ExpectColumnValuesToNotBeNull(column=C.POST_ID, row_condition=event_type.is_in(AUTHORED_TYPES)),
            *[E.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in PROFILE_COUNT_COLUMNS],
            E.ExpectColumnValuesToBeBetween(column=C.SHARE_COUNT, min_value=0),
        ],
    )


def silver_events_suite() -> gx.ExpectationSuite:
    """Expectations on ``silver_events``: ids present and unique, enums in set, interactions complete."""
    event_type = GxColumn(C.EVENT_TYPE)
    E = gx.expectations
    return _suite(
        SILVER_EVENTS,
        [
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_ID),
            E.ExpectColumnValuesToBeUnique(column=C.EVENT_ID),
            E.ExpectColumnValuesToNotBeNull(column=C.NETWORK),
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_TYPE),
            E.ExpectColumnValuesToBeInSet(column=C.EVENT_TYPE, value_set=list(EVENT_TYPES)),
            E.ExpectColumnValuesToNotBeNull(column=C.ACTOR_ID),
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_TS),
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_DATE),
            E.ExpectColumnValuesToNotBeNull(
                column=C.SUBJECT_ID, row_condition=event_type.is_in(INTERACTION_TYPES)
            ),
        ],
    )


def scores_suite() -> gx.ExpectationSuite:
    """Expectations on ``scores``: keys present and unique, score in 1..100, sub-scores in 0..100.

    ``between`` also rejects NaN (Spark orders NaN above every number).
    """
    E = gx.expectations
    return _suite(
        SCORES,
        [
            E.ExpectColumnValuesToNotBeNull(column=C.USER_ID),
            E.ExpectColumnValuesToNotBeNull(column=C.NETWORK),
            E.ExpectColumnValuesToNotBeNull(column=C.AS_OF),
            E.ExpectCompoundColumnsToBeUnique(column_list=[C.AS_OF, C.NETWORK, C.USER_ID]),
            E.ExpectColumnValuesToNotBeNull(column=C.SCORE),
            E.ExpectColumnValuesToBeBetween(
                column=C.SCORE, min_value=SCORE_RANGE[0], max_value=SCORE_RANGE[1]
            ),
            *[
                E.ExpectColumnValuesToBeBetween(
                    column=name, min_value=SUB_SCORE_RANGE[0], max_value=SUB_SCORE_RANGE[1]
                )
                for name in SUB_SCORE_COLUMNS
            ],
            E.ExpectColumnValuesToBeBetween(column=C.PERCENTILE, min_value=0.0, max_value=100.0),
            E.ExpectColumnValuesToBeBetween(column=C.RANK, min_value=1),
        ],
    )


def silver_profiles_suite() -> gx.ExpectationSuite:
    """Expectations on ``silver_profiles`` rows: ids present, counts non-negative (nulls allowed)."""
    E = gx.expectations
    return _suite(
        SILVER_PROFILES,
        [
            E.ExpectColumnValuesToNotBeNull(column=C.EVENT_ID),
            E.ExpectColumnValuesToNotBeNull(column=C.NETWORK),
            E.ExpectColumnValuesToNotBeNull(column=C.USER_ID),
            *[E.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in PROFILE_COUNT_COLUMNS],
        ],
    )


# Long form of the window features, one row per (account, measure): 13 measures x
# 4 checks as wide columns would be 52 expectations, and GE costs ~0.35 s per
# expectation whatever the data size; in long form the same rules are 4.
MEASURE = "measure"
WINDOW_7D, WINDOW_30D, WINDOW_90D, WINDOW_DECAYED = "value_7d", "value_30d", "value_90d", "value_decayed"


def user_feature_windows(features: DataFrame) -> DataFrame:
    """``user_features`` in long form: the ids, the flags, and one row per measure.

    Requires ``as_of``, ``network``, ``user_id``, ``is_inactive``, ``is_spam_like`` and
    ``<measure>_7d|_30d|_90d|_decayed`` for every measure in ``FEATURE_MEASURES``.
    Returns those ids and flags plus ``measure``, ``value_7d``, ``value_30d``,
    ``value_90d``, ``value_decayed``.
    """
    windows = [
        F.struct(
            F.lit(measure).alias(MEASURE),
            *[
                _col(f"{measure}_{suffix}").alias(alias)
                for suffix, alias in (
                    ("7d", WINDOW_7D), ("30d", WINDOW_30D), ("90d", WINDOW_90D), ("decayed", WINDOW_DECAYED)
                )
            ],
        )
        for measure in FEATURE_MEASURES
    ]
    ids = [C.AS_OF, C.NETWORK, C.USER_ID, IS_INACTIVE, IS_SPAM_LIKE]
    return features.select(*ids, F.explode(F.array(*windows)).alias("_w")).select(*ids, "_w.*")


def user_features_suite() -> gx.ExpectationSuite:
    """Expectations on :func:`user_feature_windows` of a ``user_features`` slice.

    Ids and flags present; one row per (as_of, network, user_id), checked on the rows
    of the first measure (every account has a row for each); every window sum
    non-negative and nested (7d <= 30d <= 90d); decayed sums non-negative.
    """
    E = gx.expectations

    def nested(longer: str, shorter: str) -> Any:
        return E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=longer, column_B=shorter, or_equal=True, ignore_row_if="either_value_is_missing"
        )

    return _suite(
        USER_FEATURES,
        [
            E.ExpectColumnValuesToNotBeNull(column=C.AS_OF),
            E.ExpectColumnValuesToNotBeNull(column=C.NETWORK),
            E.ExpectColumnValuesToNotBeNull(column=C.USER_ID),
            E.ExpectColumnValuesToNotBeNull(column=IS_INACTIVE),
            E.ExpectColumnValuesToNotBeNull(column=IS_SPAM_LIKE),
            # Every account has a row for each measure, so one measure's rows show the
            # same duplicates as all of them, in a fraction of the rows.
            E.ExpectCompoundColumnsToBeUnique(
                column_list=[C.AS_OF, C.NETWORK, C.USER_ID],
                row_condition=GxColumn(MEASURE) == FEATURE_MEASURES[0],
            ),
            E.ExpectColumnValuesToNotBeNull(column=WINDOW_7D),
            E.ExpectColumnValuesToBeBetween(column=WINDOW_7D, min_value=0.0),
            nested(WINDOW_30D, WINDOW_7D),
            nested(WINDOW_90D, WINDOW_30D),
            E.ExpectColumnValuesToBeBetween(column=WINDOW_DECAYED, min_value=0.0),
        ],
    )


def network_rank_suite() -> gx.ExpectationSuite:
    """Expectations on a ``network_rank`` slice: keys present and unique, PageRank in [0, 1], trust >= 0.

    The [0, 1] range also rejects NaN (Spark orders NaN above every number). The
    mass (PageRank sums to 1 per as_of) is table-level: see :func:`rank_mass_failures`.
    """
    E = gx.expectations
    return _suite(
        NETWORK_RANK,
        [
            E.ExpectColumnValuesToNotBeNull(column=C.AS_OF),
            E.ExpectColumnValuesToNotBeNull(column=C.NETWORK),
            E.ExpectColumnValuesToNotBeNull(column=C.USER_ID),
            E.ExpectCompoundColumnsToBeUnique(column_list=[C.AS_OF, C.NETWORK, C.USER_ID]),
            E.ExpectColumnValuesToNotBeNull(column=C.PAGERANK),
            E.ExpectColumnValuesToBeBetween(column=C.PAGERANK, min_value=0.0, max_value=1.0),
            E.ExpectColumnValuesToBeBetween(column=C.TRUST, min_value=0.0),
        ],
    )


# --------------------------------------------------------------------------- suite -> Spark predicates


def _col(name: str) -> Column:
    # Backticks, as GE quotes identifiers: a dot in a name is not a struct access.
    return F.col("`" + name.replace("`", "``") + "`")


def _literal(value: Any, *, where: str) -> Column:
    if isinstance(value, Mapping):
        raise NotImplementedError(
            f"{where}: suite parameters ({value}) are not supported by the quarantine split"
        )
    return F.lit(value)


def _condition_column(
    condition: Condition | str | None, condition_parser: str | None, *, where: str
) -> Column:
    """Spark column for a GE row condition, with GE's Spark semantics (a row is in when it is TRUE)."""
    if condition is None:
        return F.lit(True)
    if isinstance(condition, Mapping):
        condition = deserialize_row_condition(condition)
    if isinstance(condition, str):
        if condition_parser != "spark":
            raise NotImplementedError(f"{where}: row_condition parser {condition_parser!r} is not supported")
        return F.expr(condition)
    if isinstance(condition, PassThroughCondition):
        return F.expr(condition.pass_through_filter)
    if isinstance(condition, NullityCondition):
        column = _col(condition.column.name)
        return column.isNull() if condition.is_null else column.isNotNull()
    if isinstance(condition, AndCondition | OrCondition):
        parts = [_condition_column(part, condition_parser, where=where) for part in condition.conditions]
        return reduce(Column.__and__ if isinstance(condition, AndCondition) else Column.__or__, parts)
    if isinstance(condition, ComparisonCondition):
        column, op, value = _col(condition.column.name), Operator(condition.operator), condition.parameter
        if op in (Operator.IN, Operator.NOT_IN):
            members = column.isin(list(value))
            return members if op == Operator.IN else ~members
        comparisons = {
            Operator.EQUAL: Column.__eq__,
            Operator.NOT_EQUAL: Column.__ne__,
            Operator.LESS_THAN: Column.__lt__,
            Operator.LESS_THAN_OR_EQUAL: Column.__le__,
            Operator.GREATER_THAN: Column.__gt__,
            Operator.GREATER_THAN_OR_EQUAL: Column.__ge__,
        }
        return comparisons[op](column, _literal(value, where=where))
    raise NotImplementedError(f"{where}: row condition {condition!r} is not supported")


def _between(column: Column, exp: Any, *, where: str) -> Column:
    if exp.min_value is None and exp.max_value is None:
        raise ValueError(f"{where}: min_value and max_value are both None")
    bounds = []
    if exp.min_value is not None:
        low = _literal(exp.min_value, where=where)
        bounds.append(column > low if exp.strict_min else column >= low)
    if exp.max_value is not None:
        high = _literal(exp.max_value, where=where)
        bounds.append(column < high if exp.strict_max else column <= high)
    return reduce(Column.__and__, bounds)


def _rows_kept(columns: Sequence[str], ignore_row_if: str, *, where: str) -> Column:
    missing = [_col(name).isNull() for name in columns]
    # Multicolumn expectations and column-pair ones spell the same options differently.
    if ignore_row_if in ("all_values_are_missing", "both_values_are_missing"):
        return ~reduce(Column.__and__, missing)
    if ignore_row_if in ("any_value_is_missing", "either_value_is_missing"):
        return ~reduce(Column.__or__, missing)
    if ignore_row_if in ("never", "neither"):
        return F.lit(True)
    raise NotImplementedError(f"{where}: ignore_row_if={ignore_row_if!r} is not supported")


def _duplicated(keys: Sequence[Column], in_domain: Column) -> Column:
    # GE computes the window over the domain rows only (after row_condition and null filtering).
    peers = F.count(F.when(in_domain, F.lit(1))).over(Window.partitionBy(F.struct(*keys)))
    return peers > 1


def _in_scope(exp: Any, where: str) -> Column:
    """The rows ``exp``'s row condition selects (all rows without one; never NULL)."""
    return F.coalesce(_condition_column(exp.row_condition, exp.condition_parser, where=where), F.lit(False))


def _uniqueness(exp: Any, where: str) -> tuple[list[Column], Column] | None:
    """The key columns and the domain (the rows it checks) of a uniqueness expectation; None for other kinds."""
    kind = exp.expectation_type
    if kind == "expect_column_values_to_be_unique":
        return [_col(exp.column)], _in_scope(exp, where) & _col(exp.column).isNotNull()
    if kind == "expect_compound_columns_to_be_unique":
        names = list(exp.column_list)
        return [_col(name) for name in names], _in_scope(exp, where) & _rows_kept(names, exp.ignore_row_if, where=where)
    return None


def unique_without_duplicates(df: DataFrame, suite: gx.ExpectationSuite) -> frozenset[str]:
    """The names of ``suite``'s uniqueness expectations that no key of ``df`` breaks.

    One aggregation per uniqueness expectation: its domain rows grouped by its
    key, looking for a key with more than one row. Cheaper than the window that
    flags the duplicated rows themselves, which must shuffle and sort every row of
    ``df`` (in a 30-date backfill at L, 67M long ``user_features`` rows) and which
    :func:`row_failure_predicates` can then leave out.
    """
    clean = []
    for exp in suite.expectations:
        name = expectation_name(exp)
        uniqueness = _uniqueness(exp, where=f"suite {suite.name!r}, expectation {name!r}")
        if uniqueness is None:
            continue
        keys, in_domain = uniqueness
        repeated = df.filter(in_domain).groupBy(*keys).agg(F.count(F.lit(1)).alias("_rows")).filter("_rows > 1")
        if repeated.isEmpty():
            clean.append(name)
    return frozenset(clean)


def _violation(exp: Any, where: str, *, known_unique: bool = False) -> Column:
    """Column TRUE when a row is an 'unexpected' row of ``exp`` (null-safe: never NULL).

    ``known_unique``: ``exp`` is a uniqueness expectation that the batch is known
    to pass (:func:`unique_without_duplicates`), so no row is flagged.
    """
    kind = exp.expectation_type
    uniqueness = _uniqueness(exp, where)
    if uniqueness is not None:
        keys, in_domain = uniqueness
        return F.lit(False) if known_unique else F.coalesce(in_domain & _duplicated(keys, in_domain), F.lit(False))
    in_scope = _in_scope(exp, where)
    if kind == "expect_column_values_to_not_be_null":
        # GE's not-null check is the only map expectation that keeps null rows in its domain.
        flagged = in_scope & _col(exp.column).isNull()
    elif kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_be_between"):
        column = _col(exp.column)
        in_domain = in_scope & column.isNotNull()
        if kind == "expect_column_values_to_be_in_set":
            passes = F.lit(True) if exp.value_set is None else column.isin(list(exp.value_set))
            flagged = in_domain & ~passes
        else:
            flagged = in_domain & ~_between(column, exp, where=where)
    elif kind == "expect_select_column_values_to_be_unique_within_record":
        names = list(exp.column_list)
        in_domain = in_scope & _rows_kept(names, exp.ignore_row_if, where=where)
        pairs = [_col(a).eqNullSafe(_col(b)) for i, a in enumerate(names) for b in names[i + 1 :]]
        flagged = in_domain & reduce(Column.__or__, pairs)
    elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
        column_a, column_b = _col(exp.column_A), _col(exp.column_B)
        in_domain = in_scope & _rows_kept([exp.column_A, exp.column_B], exp.ignore_row_if, where=where)
        passes = column_a >= column_b if exp.or_equal else column_a > column_b
        # GE counts a row whose comparison is NULL (one side missing, kept by
        # ignore_row_if) as neither expected nor unexpected: coalesce below drops it.
        flagged = in_domain & ~passes
    else:
        raise NotImplementedError(
            f"{where}: expectation type {kind!r} has no row-level Spark translation; "
            "add one to klout_spark.quality._violation (and a faithfulness test) before using it in a gated suite"
        )
    return F.coalesce(flagged, F.lit(False))


def row_failure_predicates(
    suite: gx.ExpectationSuite, *, known_unique: frozenset[str] = frozenset()
) -> list[tuple[str, Column]]:
    """Translate every expectation of ``suite`` into a Spark predicate, in suite order.

    Parameters
    ----------
    suite
        A GE suite whose expectations are all row-level (column map or multicolumn map).
    known_unique
        Names of uniqueness expectations the batch is known to pass
        (:func:`unique_without_duplicates`): their predicate is FALSE, with no window.

    Returns
    -------
    list of (str, Column)
        ``(expectation_name, column)`` where the column is TRUE exactly for the rows
        GE counts in that expectation's ``unexpected_count`` (never NULL). ``mostly``
        is ignored: it changes GE's verdict, not which rows are unexpected.

    Raises
    ------
    NotImplementedError
        An expectation type, row-condition form or suite parameter has no translation.
    """
    predicates = []
    for exp in suite.expectations:
        name = expectation_name(exp)
        where = f"suite {suite.name!r}, expectation {name!r}"
        predicates.append((name, _violation(exp, where, known_unique=name in known_unique)))
    return predicates


def _referenced_columns(suite: gx.ExpectationSuite) -> list[str]:
    names: list[str] = []
    for exp in suite.expectations:
        kwargs = exp.configuration.kwargs
        names += [kwargs["column"]] if kwargs.get("column") else list(kwargs.get("column_list") or [])
        names += [kwargs[key] for key in ("column_A", "column_B") if kwargs.get(key)]
        condition = kwargs.get("row_condition")
        names += _condition_columns(
            deserialize_row_condition(condition) if isinstance(condition, dict) else condition
        )
    return list(dict.fromkeys(names))


def _condition_columns(condition: Any) -> list[str]:
    if isinstance(condition, AndCondition | OrCondition):
        return [name for part in condition.conditions for name in _condition_columns(part)]
    if isinstance(condition, ComparisonCondition | NullityCondition):
        return [condition.column.name]
    return []  # strings and pass-through filters: Spark reports unknown columns itself


def with_rejection_reason(df: DataFrame, suite: gx.ExpectationSuite) -> DataFrame:
    """Add ``reason``: the name of the first expectation of ``suite`` the row fails, NULL if none.

    Requires the columns the suite references; adds ``reason`` (string).
    """
    flagged, flags = _with_flags(df, suite)
    return flagged.drop(*flags.values())


def _check_batch(df: DataFrame, suite: gx.ExpectationSuite) -> None:
    """``df`` has every column ``suite`` references, and no ``reason`` column yet."""
    require_columns(df, _referenced_columns(suite), where=f"{suite.name} validation")
    if C.REASON in df.columns:
        raise InputError(f"{suite.name} validation: the input already has a '{C.REASON}' column")


def _with_flags(
    df: DataFrame, suite: gx.ExpectationSuite, *, known_unique: frozenset[str] = frozenset()
) -> tuple[DataFrame, dict[str, str]]:
    """``df`` plus one boolean column per expectation and ``reason``; returns the flag column per name."""
    _check_batch(df, suite)
    predicates = row_failure_predicates(suite, known_unique=known_unique)
    flags = {name: f"__failed_{i}" for i, (name, _) in enumerate(predicates)}
    # Flags are materialised as columns so that they are counted (and cached) once,
    # and so that window-based predicates (uniqueness) never sit inside an aggregate.
    with_flags = df.select("*", *[predicate.alias(flags[name]) for name, predicate in predicates])
    reasons = [F.when(F.col(flags[name]), F.lit(name)) for name, _ in predicates]
    return with_flags.withColumn(C.REASON, F.coalesce(*reasons, F.lit(None).cast("string"))), flags


# --------------------------------------------------------------------------- running GE


def _run_directory(results_dir: str | None, run_id: str) -> Path | None:
    if results_dir is None:
        return None
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", ".."):
        raise InputError(f"run_id {run_id!r} cannot name a results folder")
    if "://" in results_dir and not results_dir.startswith("file:"):
        raise InputError(f"results_dir {results_dir!r}: only local paths are supported for GE results so far")
    local = results_dir.removeprefix("file://").removeprefix("file:")
    return Path(local).expanduser().resolve() / run_id


def run_great_expectations(
    df: DataFrame,
    suite: gx.ExpectationSuite,
    *,
    run_id: str,
    run_time: datetime,
    results_dir: str | None,
    data_docs: bool = True,
    samples: bool = True,
) -> tuple[Any, str | None]:
    """Validate ``df`` against ``suite`` with GE on Spark; keep the result JSON and (optionally) Data Docs.

    ``samples=False`` asks GE for the counts alone (:data:`RESULT_FORMAT_NO_SAMPLES`):
    for a batch known to have no failing row.

    Returns
    -------
    (ExpectationSuiteValidationResult, str or None)
        GE's result (SUMMARY format) and the path of the JSON written, if any.

    Notes
    -----
    A fresh ephemeral context per call: nothing is shared between runs or threads.
    The data source is created with ``persist=False`` (GE's default persists every
    batch and never releases it); callers cache ``df`` themselves.
    """
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_or_update_spark(name=_DATASOURCE, persist=False)
        .add_dataframe_asset(name=suite.name)
        .add_batch_definition_whole_dataframe(f"{suite.name}_batch")
    )
    result_format = RESULT_FORMAT if samples else RESULT_FORMAT_NO_SAMPLES
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite.name}_validation", data=batch_definition, suite=suite)
    )
    run_dir = _run_directory(results_dir, run_id)
    ge_run_id = RunIdentifier(run_name=run_id, run_time=_utc(run_time))
    if run_dir is None or not data_docs:
        result = definition.run(batch_parameters={"dataframe": df}, result_format=result_format, run_id=ge_run_id)
        return result, (None if run_dir is None else _write_result(run_dir, suite.name, result))

    # A Data Docs site costs ~4 MB per run: validate.data_docs turns it off.
    docs_dir = run_dir / "data_docs" / suite.name
    context.add_data_docs_site(
        site_name=f"{suite.name}_docs",
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        },
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite.name}_checkpoint",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format=result_format,
        )
    )
    checkpoint_result = checkpoint.run(batch_parameters={"dataframe": df}, run_id=ge_run_id)
    (result,) = checkpoint_result.run_results.values()
    results_path = _write_result(run_dir, suite.name, result)
    log.info("%s: Data Docs in %s", suite.name, docs_dir / "index.html")
    return result, results_path


def _write_result(run_dir: Path, suite_name: str, result: Any) -> str:
    run_dir.mkdir(parents=True, exist_ok=True)
    results_path = run_dir / f"{suite_name}.json"
    results_path.write_text(json.dumps(result.to_json_dict(), indent=2, sort_keys=True))
    log.info("%s: GE results in %s", suite_name, results_path)
    return str(results_path)


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """GE reports an exception either flat or keyed by the metric that raised it."""
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info["raised_exception"] else None
    messages = [
        str(item.get("exception_message"))
        for item in info.values()
        if isinstance(item, Mapping) and item.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def _summary(result: Any, suite: gx.ExpectationSuite) -> dict[str, dict]:
    """Per expectation, in suite order (GE lists its results in an order of its own)."""
    by_name = {expectation_name(item.expectation_config): item for item in result.results}
    summary: dict[str, dict] = {}
    for expectation in suite.expectations:
        name = expectation_name(expectation)
        item = by_name.get(name)
        details = (item.result if item is not None else None) or {}
        summary[name] = {
            "expectation_type": expectation.expectation_type,
            "success": bool(item is not None and item.success),
            "element_count": details.get("element_count"),
            "unexpected_count": details.get("unexpected_count"),
            "unexpected_percent": details.get("unexpected_percent"),
            "error": "GE returned no result" if item is None else _exception_message(item.exception_info),
        }
    return summary


def validate_suite(
    df: DataFrame,
    suite: gx.ExpectationSuite,
    *,
    run_id: str,
    run_time: datetime,
    results_dir: str | None,
    keep_cached: bool = False,
    data_docs: bool = True,
    cache: bool = True,
) -> ValidationOutcome:
    """Run ``suite`` on ``df`` with GE and split ``df`` into valid and rejected rows in one pass.

    Parameters
    ----------
    df
        The batch; must have every column the suite references.
    suite
        Row-level expectations only (see :func:`row_failure_predicates`).
    run_id, run_time
        Identify the run in GE's result and name the results folder.
    results_dir
        Where to keep ``<run_id>/<suite>.json`` and ``<run_id>/data_docs/<suite>/``; ``None`` keeps nothing.
    data_docs
        Build the Data Docs site too (only when ``results_dir`` is given).
    keep_cached
        When this call had to cache ``df``, leave it cached so that writing ``valid`` and
        ``rejected`` does not recompute the input; call :meth:`ValidationOutcome.release`
        when done. A ``df`` the caller cached stays cached either way (its owner releases it).
    cache
        ``False``: never cache ``df`` (for a batch derived cheaply from a cached frame).

    Returns
    -------
    ValidationOutcome

    Raises
    ------
    MissingColumnsError
        ``df`` lacks a column the suite needs.
    QuarantineTranslationError
        For some expectation our split flags a different number of rows than GE counts.

    Notes
    -----
    ``df`` is cached once (unless already cached). Each uniqueness expectation's keys are
    grouped first (:func:`unique_without_duplicates`): when no key repeats, its rows need
    no window to be flagged. One aggregation then counts the rows,
    the quarantined rows and each expectation's flagged rows, then GE validates the
    same cached data (its own data-source caching is off). GE looks for samples of
    failing values only when that count found some (see :data:`RESULT_FORMAT_NO_SAMPLES`).
    ``valid`` and ``rejected`` are lazy filters of ``df`` on the same predicates;
    nothing else is materialised.
    """
    _check_batch(df, suite)
    # A batch the caller cached is neither cached twice nor released under them.
    we_cached = cache and not _is_cached(df)
    if we_cached:
        df.persist()
    started = perf_counter()
    try:
        labelled, flags = _with_flags(df, suite, known_unique=unique_without_duplicates(df, suite))
        counts = labelled.agg(
            F.count(F.lit(1)).alias("rows_in"),
            F.count(C.REASON).alias("rows_rejected"),
            *[F.count(F.when(F.col(flag), F.lit(1))).alias(flag) for flag in flags.values()],
        ).first()
        result, results_path = run_great_expectations(
            df, suite, run_id=run_id, run_time=run_time, results_dir=results_dir, data_docs=data_docs,
            samples=any(counts[flag] for flag in flags.values()),
        )
        summary = _summary(result, suite)
        _check_translation(suite.name, summary, {name: counts[flag] for name, flag in flags.items()})
        seconds = perf_counter() - started
    except BaseException:
        if we_cached:
            df.unpersist()
        raise
    keep = we_cached and keep_cached
    if we_cached and not keep_cached:
        df.unpersist()
    rows_in, rows_rejected = int(counts["rows_in"]), int(counts["rows_rejected"])
    return ValidationOutcome(
        valid=labelled.filter(F.col(C.REASON).isNull()).select(*df.columns),
        rejected=labelled.filter(F.col(C.REASON).isNotNull()).select(*df.columns, C.REASON),
        success=bool(result.success),
        rows_in=rows_in,
        rows_rejected=rows_rejected,
        failure_fraction=rows_rejected / rows_in if rows_in else 0.0,
        results_path=results_path,
        summary=summary,
        seconds=seconds,
        _cached=df if keep else None,
    )


def _is_cached(df: DataFrame) -> bool:
    # storageLevel asks Spark's cache manager: any frame with the same plan counts.
    level = df.storageLevel
    return level.useMemory or level.useDisk or level.useOffHeap


def _check_translation(suite_name: str, summary: dict[str, dict], flagged: dict[str, int]) -> None:
    disagreements = [
        f"{name}: GE counts {entry['unexpected_count']}, the split flags {flagged[name]}"
        for name, entry in summary.items()
        if entry["error"] is None
        and entry["unexpected_count"] is not None
        and entry["unexpected_count"] != flagged[name]
    ]
    if disagreements:
        raise QuarantineTranslationError(
            f"{suite_name}: the quarantine split disagrees with Great Expectations ({'; '.join(disagreements)}); "
            "fix klout_spark.quality._violation for these expectation types"
        )


# --------------------------------------------------------------------------- entry points per table


def validate_bronze_events(
    df: DataFrame,
    *,
    run_id: str,
    run_ts: datetime,
    min_event_date: date,
    future_tolerance_hours: float,
    results_dir: str | None,
    keep_cached: bool = False,
    data_docs: bool = True,
) -> ValidationOutcome:
    """Validate a batch of ``bronze_events`` and split it into clean and quarantined rows.

    ``event_ts`` must lie within [``min_event_date`` 00:00 UTC, ``run_ts`` +
    ``future_tolerance_hours``]. See :func:`validate_suite` for the rest.

    Examples
    --------
    >>> outcome = validate_bronze_events(batch, run_id="r1", run_ts=datetime(2024, 5, 1),
    ...     min_event_date=date(2006, 1, 1), future_tolerance_hours=24, results_dir=None)
    >>> gate(outcome, max_failure_fraction=0.05, table="bronze_events")
    """
    if future_tolerance_hours < 0:
        raise InputError(f"future_tolerance_hours must be >= 0, got {future_tolerance_hours}")
    suite = bronze_events_suite(
        min_event_ts=datetime.combine(min_event_date, time.min, tzinfo=UTC),
        max_event_ts=_utc(run_ts) + timedelta(hours=future_tolerance_hours),
    )
    return validate_suite(
        df, suite, run_id=run_id, run_time=run_ts, results_dir=results_dir, keep_cached=keep_cached,
        data_docs=data_docs,
    )


def validate_silver_events(
    df: DataFrame, *, run_id: str, results_dir: str | None, run_ts: datetime | None = None
) -> ValidationOutcome:
    """Validate ``silver_events`` (or the batch about to be merged into it) with :func:`silver_events_suite`."""
    return validate_suite(
        df,
        silver_events_suite(),
        run_id=run_id,
        run_time=run_ts or datetime.now(UTC),
        results_dir=results_dir,
    )


def validate_scores(
    df: DataFrame, *, run_id: str, results_dir: str | None, run_ts: datetime | None = None, data_docs: bool = True
) -> ValidationOutcome:
    """Validate a ``scores`` slice with :func:`scores_suite`."""
    return validate_suite(
        df, scores_suite(), run_id=run_id, run_time=run_ts or datetime.now(UTC), results_dir=results_dir,
        data_docs=data_docs,
    )


def validate_silver_profiles(
    df: DataFrame, *, run_id: str, results_dir: str | None, run_ts: datetime | None = None, data_docs: bool = True
) -> ValidationOutcome:
    """Validate profile rows about to be merged into ``silver_profiles`` with :func:`silver_profiles_suite`."""
    return validate_suite(
        df, silver_profiles_suite(), run_id=run_id, run_time=run_ts or datetime.now(UTC),
        results_dir=results_dir, data_docs=data_docs,
    )


def validate_user_features(
    df: DataFrame, *, run_id: str, results_dir: str | None, run_ts: datetime | None = None, data_docs: bool = True
) -> ValidationOutcome:
    """Validate a ``user_features`` slice: :func:`user_features_suite` on its :func:`user_feature_windows`.

    ``valid`` and ``rejected`` of the outcome are in long form (one row per account and measure).
    When ``df`` is cached, the long form is not: exploding the cached rows again for each
    pass costs less than caching 13 rows per account (a 30-date backfill at L: 67M rows,
    validated in 55-58 s instead of 83 s).
    """
    return validate_suite(
        user_feature_windows(df), user_features_suite(), run_id=run_id, run_time=run_ts or datetime.now(UTC),
        results_dir=results_dir, data_docs=data_docs, cache=not _is_cached(df),
    )


def validate_network_rank(
    df: DataFrame, *, run_id: str, results_dir: str | None, run_ts: datetime | None = None, data_docs: bool = True
) -> ValidationOutcome:
    """Validate a ``network_rank`` slice with :func:`network_rank_suite` (row-level checks only)."""
    return validate_suite(
        df, network_rank_suite(), run_id=run_id, run_time=run_ts or datetime.now(UTC),
        results_dir=results_dir, data_docs=data_docs,
    )


# --------------------------------------------------------------------------- the gate

OVERRIDE_FLAG = "--allow-bad-data"
_OVERRIDE_HINT = (
    f"To run anyway (e.g. a backfill of a known-bad day), rerun with {OVERRIDE_FLAG} 'REASON': "
    "the failure becomes a warning and the reason is recorded in the runs table (validate stage)."
)


@dataclass(frozen=True)
class CheckFailure:
    """A table-level check that failed: which check, on which table, the numbers.

    ``message`` says what failed and where; ``details`` holds the numbers (JSON-serialisable).
    """

    check: str
    table: str
    message: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"check": self.check, "table": self.table, "message": self.message, **self.details}


def enforce(failures: Sequence[CheckFailure], *, allow_bad_data: str | None, context: str) -> list[dict]:
    """Stop on table-level failures, or with an override turn them into warnings.

    Parameters
    ----------
    failures
        The failed checks (none: nothing happens).
    allow_bad_data
        The reason given with ``--allow-bad-data``; ``None`` (or blank) means no override.
    context
        Where the checks ran, for the message (e.g. ``"validate for as_of 2024-05-01"``).

    Returns
    -------
    list of dict
        The overridden failures (``CheckFailure.to_dict`` plus ``override_reason``), to record in ``runs``.

    Raises
    ------
    DataQualityError
        Listing every failure and how to override, when there is no override.
    """
    if not failures:
        return []
    reason = (allow_bad_data or "").strip()
    if not reason:
        lines = [f"Table-level data quality checks failed ({context}); the run stops here:"]
        lines += [f"  - {failure.check}: {failure.message}" for failure in failures]
        lines.append(f"  {_OVERRIDE_HINT}")
        raise DataQualityError("\n".join(lines))
    for failure in failures:
        log.warning("%s: %s failed, overridden (%s %r): %s", context, failure.check, OVERRIDE_FLAG, reason,
                    failure.message)
    return [{**failure.to_dict(), "override_reason": reason} for failure in failures]


def gate(
    outcome: ValidationOutcome,
    *,
    max_failure_fraction: float,
    table: str,
    upstream_rejected: int = 0,
    allow_bad_data: str | None = None,
    threshold_key: str = _OVERRIDE_KEY,
) -> CheckFailure | None:
    """Stop the run when too much of a batch failed validation.

    Passes when the quarantined fraction is at most ``max_failure_fraction`` and
    every expectation could be evaluated; the failing rows are then quarantined,
    not fatal.

    Parameters
    ----------
    upstream_rejected
        Rows of the same batch already quarantined before this validation (at
        ingest: unparseable records); they count in the fraction, on both sides.
    allow_bad_data
        An override reason: a fraction over the threshold is then logged and returned,
        not raised. Expectations that could not be evaluated always raise.
    threshold_key
        The setting that holds ``max_failure_fraction``, named in the message.

    Returns
    -------
    CheckFailure or None
        The overridden failure, or ``None`` when the batch passed.

    Raises
    ------
    DataQualityError
        Naming ``table``, each failing expectation with its counts, the fraction
        against the threshold, where the GE results are, and the overrides.
    """
    if not 0.0 <= max_failure_fraction <= 1.0:
        raise InputError(f"max_failure_fraction must be within [0, 1], got {max_failure_fraction}")
    if upstream_rejected < 0:
        raise InputError(f"upstream_rejected must be >= 0, got {upstream_rejected}")
    failing = outcome.failing()
    errors = {name: entry for name, entry in failing.items() if entry["error"]}
    rows_total = outcome.rows_in + upstream_rejected
    rejected_total = outcome.rows_rejected + upstream_rejected
    fraction = rejected_total / rows_total if rows_total else 0.0
    over = fraction > max_failure_fraction
    if not over and not errors:
        if failing or upstream_rejected:
            log.warning(
                "%s: %d of %d rows quarantined (%.2f%%, threshold %.2f%%); failing: %s",
                table,
                rejected_total,
                rows_total,
                100 * fraction,
                100 * max_failure_fraction,
                ", ".join(failing) or "(ingest only)",
            )
        return None
    upstream = f" or were quarantined at ingest ({upstream_rejected} rows)" if upstream_rejected else ""
    what = (
        f"{rejected_total} of {rows_total} rows ({100 * fraction:.2f}%) failed row-level expectations{upstream}, "
        f"above the threshold {threshold_key}={max_failure_fraction:g} ({100 * max_failure_fraction:.2f}%)."
    )
    lines = [f"Data quality gate failed for {table}:"]
    if over:
        lines.append(f"  {what}")
    if errors:
        lines.append(f"  {len(errors)} expectation(s) could not be evaluated.")
    lines.append("  Failing expectations:")
    for name, entry in failing.items():
        if entry["error"]:
            lines.append(f"    - {name}: error: {entry['error']}")
        else:
            percent = entry["unexpected_percent"]
            share = f" ({percent:.2f}% of the rows in its scope)" if percent is not None else ""
            lines.append(f"    - {name}: {entry['unexpected_count']} unexpected{share}")
    if outcome.results_path:
        lines.append(f"  GE results: {outcome.results_path}")
    if over and not errors:
        needed = math.ceil(fraction * 10_000) / 10_000
        if allow_bad_data and allow_bad_data.strip():
            failure = CheckFailure(
                check="failure_fraction",
                table=table,
                message=f"{table}: {what}",
                details={
                    "rows": rows_total,
                    "rows_quarantined": rejected_total,
                    "rows_quarantined_at_ingest": upstream_rejected,
                    "fraction": fraction,
                    "threshold": max_failure_fraction,
                    "failing": sorted(failing),
                    "results_path": outcome.results_path,
                },
            )
            log.warning("%s; overridden (%s %r)", "\n".join(lines), OVERRIDE_FLAG, allow_bad_data.strip())
            return failure
        lines.append(
            f"  To accept this batch anyway (e.g. a backfill of a known-bad day), rerun with "
            f"--set {threshold_key}={needed:g} or with {OVERRIDE_FLAG} 'REASON' (recorded in runs); "
            "failing rows still go to quarantine."
        )
    raise DataQualityError("\n".join(lines))


# --------------------------------------------------------------------------- table-level checks

VOLUME_HISTORY_DAYS = 7
MIN_VOLUME_HISTORY_DAYS = 3


def daily_event_counts(events: DataFrame, *, start: date, end: date) -> dict[date, int]:
    """Events per ``event_date`` within [start, end] (one Spark aggregate; days without events are absent)."""
    require_columns(events, [C.EVENT_DATE], where="daily_event_counts")
    rows = (
        events.filter(F.col(C.EVENT_DATE).between(F.lit(start), F.lit(end)))
        .groupBy(C.EVENT_DATE)
        .agg(F.count(F.lit(1)).alias("events"))
        .collect()
    )
    return {row[C.EVENT_DATE]: int(row["events"]) for row in rows}


def volume_failure(
    counts: Mapping[date, int], *, as_of: date, min_ratio: float, table: str
) -> tuple[CheckFailure | None, dict]:
    """Whether ``as_of``'s volume is under ``min_ratio`` x the median of the 7 days before it.

    History starts at the first day with events: the days before it are not in
    the median, and with fewer than 3 days of history the check is skipped.
    Returns the failure (or ``None``) and the numbers, for ``runs``.
    """
    first = min((day for day, n in counts.items() if n > 0 and day < as_of), default=None)
    prior = [
        as_of - timedelta(days=k)
        for k in range(VOLUME_HISTORY_DAYS, 0, -1)
        if first is not None and as_of - timedelta(days=k) >= first
    ]
    today = counts.get(as_of, 0)
    facts: dict[str, Any] = {"as_of": as_of.isoformat(), "events": today, "history_days": len(prior)}
    if len(prior) < MIN_VOLUME_HISTORY_DAYS:
        facts["skipped"] = f"fewer than {MIN_VOLUME_HISTORY_DAYS} days of history"
        return None, facts
    median = statistics.median(counts.get(day, 0) for day in prior)
    facts.update(median_7d=median, min_ratio=min_ratio, ratio=(today / median) if median else None)
    if median == 0 or today >= min_ratio * median:
        return None, facts
    message = (
        f"{table} has {today} events on {as_of}, {100 * today / median:.1f}% of the median daily volume "
        f"{median:g} over the {len(prior)} days {prior[0]}..{prior[-1]}; the minimum is "
        f"validate.min_volume_ratio={min_ratio:g} ({min_ratio * median:g} events)."
    )
    return CheckFailure("volume", table, message, facts), facts


def missing_day_failure(
    counts: Mapping[date, int], *, as_of: date, max_gap_days: int, table: str
) -> tuple[CheckFailure | None, dict]:
    """Days without events among the ``max_gap_days`` days before ``as_of``, with events before and after.

    "Before" looks back as far as ``counts`` reaches; "after" includes ``as_of``.
    """
    active = sorted(day for day, n in counts.items() if n > 0)
    window = [as_of - timedelta(days=k) for k in range(max_gap_days, 0, -1)]
    missing = [
        day
        for day in window
        if counts.get(day, 0) == 0 and any(d < day for d in active) and any(day < d <= as_of for d in active)
    ]
    facts: dict[str, Any] = {"window": [window[0].isoformat(), window[-1].isoformat()] if window else [],
                             "missing_days": [day.isoformat() for day in missing]}
    if not missing:
        return None, facts
    message = (
        f"{table} has no events on {len(missing)} day(s) {', '.join(d.isoformat() for d in missing)} "
        f"within the {max_gap_days} days before as_of {as_of} (validate.max_gap_days={max_gap_days}), "
        "while earlier and later days have events: a dump is probably missing (ingest it, then rerun)."
    )
    return CheckFailure("missing_day", table, message, facts), facts


def silver_table_checks(
    events: DataFrame, *, as_of: date, min_volume_ratio: float, max_gap_days: int, table: str = SILVER_EVENTS
) -> tuple[list[CheckFailure], dict]:
    """The volume and missing-day checks of ``as_of`` on ``silver_events`` (one per-day count aggregate).

    Returns the failures and the facts (per-check numbers) to record in ``runs``.
    """
    if not 0.0 <= min_volume_ratio <= 1.0:
        raise InputError(f"min_volume_ratio must be within [0, 1], got {min_volume_ratio}")
    if max_gap_days < 0:
        raise InputError(f"max_gap_days must be >= 0, got {max_gap_days}")
    lookback = max(VOLUME_HISTORY_DAYS, max_gap_days) + VOLUME_HISTORY_DAYS
    counts = daily_event_counts(events, start=as_of - timedelta(days=lookback), end=as_of)
    volume, volume_facts = volume_failure(counts, as_of=as_of, min_ratio=min_volume_ratio, table=table)
    gap, gap_facts = missing_day_failure(counts, as_of=as_of, max_gap_days=max_gap_days, table=table)
    failures = [failure for failure in (volume, gap) if failure is not None]
    return failures, {"volume": volume_facts, "missing_day": gap_facts}


def rank_mass_failures(ranks: DataFrame, *, tolerance: float, table: str = NETWORK_RANK) -> list[CheckFailure]:
    """PageRank mass per ``as_of`` must be 1 within ``tolerance`` (one aggregate, one row per as_of)."""
    require_columns(ranks, [C.AS_OF, C.PAGERANK], where="rank_mass_failures")
    totals = ranks.groupBy(C.AS_OF).agg(F.sum(C.PAGERANK).alias("mass"), F.count(F.lit(1)).alias("nodes")).collect()
    failures = []
    for row in sorted(totals, key=lambda r: r[C.AS_OF]):
        mass = float(row["mass"]) if row["mass"] is not None else math.nan
        if not abs(mass - 1.0) <= tolerance:  # NaN fails too
            failures.append(
                CheckFailure(
                    "rank_mass",
                    table,
                    f"{table} for as_of {row[C.AS_OF]}: PageRank sums to {mass!r} over {row['nodes']} accounts, "
                    f"not 1 within validate.rank_mass_tolerance={tolerance:g}.",
                    {"as_of": row[C.AS_OF].isoformat(), "mass": mass, "nodes": int(row["nodes"])},
                )
            )
    return failures
