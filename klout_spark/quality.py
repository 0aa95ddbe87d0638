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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from pathlib import Path
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
from klout_spark.errors import (
    DataQualityError,
    InputError,
    QuarantineTranslationError,
    require_columns,
)
from klout_spark.schemas import (
    AUTHORED_TYPES,
    EVENT_TYPES,
    FOLLOW,
    INTERACTION_TYPES,
    POST_ENGAGEMENT_TYPES,
    UNFOLLOW,
)

log = logging.getLogger(__name__)

BRONZE_EVENTS = "bronze_events"
SILVER_EVENTS = "silver_events"
SCORES = "scores"

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
    """

    valid: DataFrame
    rejected: DataFrame
    success: bool
    rows_in: int
    rows_rejected: int
    failure_fraction: float
    results_path: str | None
    summary: dict
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
    if ignore_row_if == "all_values_are_missing":
        return ~reduce(Column.__and__, missing)
    if ignore_row_if == "any_value_is_missing":
        return ~reduce(Column.__or__, missing)
    if ignore_row_if == "never":
        return F.lit(True)
    raise NotImplementedError(f"{where}: ignore_row_if={ignore_row_if!r} is not supported")


def _duplicated(partition: Column, in_domain: Column) -> Column:
    # GE computes the window over the domain rows only (after row_condition and null filtering).
    peers = F.count(F.when(in_domain, F.lit(1))).over(Window.partitionBy(partition))
    return peers > 1


def _violation(exp: Any, where: str) -> Column:
    """Column TRUE when a row is an 'unexpected' row of ``exp`` (null-safe: never NULL)."""
    kind = exp.expectation_type
    in_scope = F.coalesce(
        _condition_column(exp.row_condition, exp.condition_parser, where=where), F.lit(False)
    )
    if kind == "expect_column_values_to_not_be_null":
        # GE's not-null check is the only map expectation that keeps null rows in its domain.
        flagged = in_scope & _col(exp.column).isNull()
    elif kind in (
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_unique",
    ):
        column = _col(exp.column)
        in_domain = in_scope & column.isNotNull()
        if kind == "expect_column_values_to_be_in_set":
            passes = F.lit(True) if exp.value_set is None else column.isin(list(exp.value_set))
            flagged = in_domain & ~passes
        elif kind == "expect_column_values_to_be_between":
            flagged = in_domain & ~_between(column, exp, where=where)
        else:
            flagged = in_domain & _duplicated(column, in_domain)
    elif kind in (
        "expect_select_column_values_to_be_unique_within_record",
        "expect_compound_columns_to_be_unique",
    ):
        names = list(exp.column_list)
        in_domain = in_scope & _rows_kept(names, exp.ignore_row_if, where=where)
        if kind == "expect_select_column_values_to_be_unique_within_record":
            pairs = [_col(a).eqNullSafe(_col(b)) for i, a in enumerate(names) for b in names[i + 1 :]]
            flagged = in_domain & reduce(Column.__or__, pairs)
        else:
            flagged = in_domain & _duplicated(F.struct(*[_col(name) for name in names]), in_domain)
    else:
        raise NotImplementedError(
            f"{where}: expectation type {kind!r} has no row-level Spark translation; "
            "add one to klout_spark.quality._violation (and a faithfulness test) before using it in a gated suite"
        )
    return F.coalesce(flagged, F.lit(False))


def row_failure_predicates(suite: gx.ExpectationSuite) -> list[tuple[str, Column]]:
    """Translate every expectation of ``suite`` into a Spark predicate, in suite order.

    Parameters
    ----------
    suite
        A GE suite whose expectations are all row-level (column map or multicolumn map).

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
        predicates.append((name, _violation(exp, where=f"suite {suite.name!r}, expectation {name!r}")))
    return predicates


def _referenced_columns(suite: gx.ExpectationSuite) -> list[str]:
    names: list[str] = []
    for exp in suite.expectations:
        kwargs = exp.configuration.kwargs
        names += [kwargs["column"]] if kwargs.get("column") else list(kwargs.get("column_list") or [])
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


def _with_flags(df: DataFrame, suite: gx.ExpectationSuite) -> tuple[DataFrame, dict[str, str]]:
    """``df`` plus one boolean column per expectation and ``reason``; returns the flag column per name."""
    require_columns(df, _referenced_columns(suite), where=f"{suite.name} validation")
    if C.REASON in df.columns:
        raise InputError(f"{suite.name} validation: the input already has a '{C.REASON}' column")
    predicates = row_failure_predicates(suite)
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
) -> tuple[Any, str | None]:
    """Validate ``df`` against ``suite`` with GE on Spark; keep the result JSON and Data Docs.

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
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite.name}_validation", data=batch_definition, suite=suite)
    )
    run_dir = _run_directory(results_dir, run_id)
    ge_run_id = RunIdentifier(run_name=run_id, run_time=_utc(run_time))
    if run_dir is None:
        return definition.run(
            batch_parameters={"dataframe": df}, result_format=RESULT_FORMAT, run_id=ge_run_id
        ), None

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
            result_format=RESULT_FORMAT,
        )
    )
    checkpoint_result = checkpoint.run(batch_parameters={"dataframe": df}, run_id=ge_run_id)
    (result,) = checkpoint_result.run_results.values()
    run_dir.mkdir(parents=True, exist_ok=True)
    results_path = run_dir / f"{suite.name}.json"
    results_path.write_text(json.dumps(result.to_json_dict(), indent=2, sort_keys=True))
    log.info("%s: GE results in %s, Data Docs in %s", suite.name, results_path, docs_dir / "index.html")
    return result, str(results_path)


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
    keep_cached
        When this call had to cache ``df``, leave it cached so that writing ``valid`` and
        ``rejected`` does not recompute the input; call :meth:`ValidationOutcome.release`
        when done. A ``df`` the caller cached stays cached either way (its owner releases it).

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
    ``df`` is cached once (unless already cached): one aggregation counts the rows,
    the quarantined rows and each expectation's flagged rows, then GE validates the
    same cached data (its own data-source caching is off). ``valid`` and ``rejected``
    are lazy filters of ``df`` on the same predicates; nothing else is materialised.
    """
    labelled, flags = _with_flags(df, suite)
    # storageLevel asks Spark's cache manager (any frame with the same plan counts),
    # so a batch the caller cached is neither cached twice nor released under them.
    level = df.storageLevel
    we_cached = not (level.useMemory or level.useDisk or level.useOffHeap)
    if we_cached:
        df.persist()
    try:
        counts = labelled.agg(
            F.count(F.lit(1)).alias("rows_in"),
            F.count(C.REASON).alias("rows_rejected"),
            *[F.count(F.when(F.col(flag), F.lit(1))).alias(flag) for flag in flags.values()],
        ).first()
        result, results_path = run_great_expectations(
            df, suite, run_id=run_id, run_time=run_time, results_dir=results_dir
        )
        summary = _summary(result, suite)
        _check_translation(suite.name, summary, {name: counts[flag] for name, flag in flags.items()})
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
        _cached=df if keep else None,
    )


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
        df, suite, run_id=run_id, run_time=run_ts, results_dir=results_dir, keep_cached=keep_cached
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
    df: DataFrame, *, run_id: str, results_dir: str | None, run_ts: datetime | None = None
) -> ValidationOutcome:
    """Validate a ``scores`` slice with :func:`scores_suite`."""
    return validate_suite(
        df, scores_suite(), run_id=run_id, run_time=run_ts or datetime.now(UTC), results_dir=results_dir
    )


# --------------------------------------------------------------------------- the gate


def gate(outcome: ValidationOutcome, *, max_failure_fraction: float, table: str) -> None:
    """Stop the run when too much of a batch failed validation.

    Passes when the quarantined fraction is at most ``max_failure_fraction`` and
    every expectation could be evaluated; the failing rows are then quarantined,
    not fatal.

    Raises
    ------
    DataQualityError
        Naming ``table``, each failing expectation with its counts, the fraction
        against the threshold, where the GE results are, and the override.
    """
    if not 0.0 <= max_failure_fraction <= 1.0:
        raise InputError(f"max_failure_fraction must be within [0, 1], got {max_failure_fraction}")
    failing = outcome.failing()
    errors = {name: entry for name, entry in failing.items() if entry["error"]}
    over = outcome.failure_fraction > max_failure_fraction
    if not over and not errors:
        if failing:
            log.warning(
                "%s: %d of %d rows quarantined (%.2f%%, threshold %.2f%%); failing: %s",
                table,
                outcome.rows_rejected,
                outcome.rows_in,
                100 * outcome.failure_fraction,
                100 * max_failure_fraction,
                ", ".join(failing),
            )
        return
    lines = [f"Data quality gate failed for {table}:"]
    if over:
        lines.append(
            f"  {outcome.rows_rejected} of {outcome.rows_in} rows ({100 * outcome.failure_fraction:.2f}%) failed "
            f"row-level expectations, above the threshold {_OVERRIDE_KEY}={max_failure_fraction:g} "
            f"({100 * max_failure_fraction:.2f}%)."
        )
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
        needed = math.ceil(outcome.failure_fraction * 10_000) / 10_000
        lines.append(
            f"  To accept this batch anyway (e.g. a backfill of a known-bad day), rerun with "
            f"--set {_OVERRIDE_KEY}={needed:g}; failing rows still go to quarantine."
        )
    raise DataQualityError("\n".join(lines))
