"""The Great Expectations gate: suites, the quarantine split, GE/split agreement, the gate message.

GE runs cost seconds each, so one mixed batch (good rows plus one crafted bad
row per expectation) is validated once per suite and shared by the tests.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import great_expectations as gx
import pytest
from great_expectations.expectations.row_conditions import Column as GxColumn
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import columns as C
from klout_spark.errors import DataQualityError, MissingColumnsError
from klout_spark.quality import (
    QuarantineTranslationError,
    ValidationOutcome,
    _check_translation,
    bronze_events_suite,
    expectation_name,
    gate,
    row_failure_predicates,
    run_great_expectations,
    scores_suite,
    silver_events_suite,
    unique_without_duplicates,
    validate_bronze_events,
    validate_scores,
    validate_silver_events,
    validate_suite,
)
from klout_spark.schemas import BRONZE_EVENTS_SCHEMA, SCORES_SCHEMA
from tests.factories import persistent_rdd_ids

RUN_TS = datetime(2024, 5, 1, 12, 0, 0)
MIN_DATE = date(2006, 1, 1)
TOLERANCE_H = 24.0
MAX_TS = RUN_TS + timedelta(hours=TOLERANCE_H)
TS = datetime(2024, 4, 30, 10, 0, 0)

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
WITHIN_RECORD = "expect_select_column_values_to_be_unique_within_record"


def event(line: int, **overrides):
    """A valid bronze post by actor 'a', identified by ``source_line``; ``overrides`` break it."""
    row = {
        C.EVENT_ID: f"e{line}",
        C.NETWORK: "twitter",
        C.EVENT_TYPE: "post",
        C.EVENT_TS: TS,
        C.ACTOR_ID: "a",
        C.SUBJECT_ID: None,
        C.POST_ID: f"p{line}",
        C.PARENT_POST_ID: None,
        C.TEXT: "hello #birds",
        C.HASHTAGS: ["birds"],
        C.FOLLOWERS_COUNT: None,
        C.FOLLOWING_COUNT: None,
        C.LISTED_COUNT: None,
        C.POSTS_COUNT: None,
        C.ACCOUNT_CREATED_AT: None,
        C.VERIFIED: None,
        C.SHARE_COUNT: None,
        C.SOURCE_PATH: "dump.jsonl",
        C.SOURCE_CHECKSUM: "sha",
        C.SOURCE_LINE: line,
        C.BATCH_ID: "b1",
        C.INGESTED_AT: RUN_TS,
        C.EVENT_DATE: TS.date(),
    }
    unknown = set(overrides) - set(row)
    assert not unknown, unknown
    row.update(overrides)
    return tuple(row[name] for name in BRONZE_EVENTS_SCHEMA.fieldNames())


def interaction(line: int, kind: str, **overrides):
    defaults = {C.EVENT_TYPE: kind, C.SUBJECT_ID: "b", C.PARENT_POST_ID: "p0", C.POST_ID: f"p{line}"}
    return event(line, **{**defaults, **overrides})


PROFILE = {C.EVENT_TYPE: "profile", C.POST_ID: None, C.TEXT: None, C.HASHTAGS: None}
GOOD_ROWS = [
    event(1),
    interaction(2, "reply"),
    interaction(3, "reshare"),
    interaction(4, "quote"),
    interaction(5, "like", **{C.POST_ID: None}),
    interaction(6, "mention", **{C.PARENT_POST_ID: None}),
    interaction(7, "follow", **{C.PARENT_POST_ID: None, C.POST_ID: None}),
    interaction(8, "unfollow", **{C.PARENT_POST_ID: None, C.POST_ID: None}),
    interaction(9, "list_add", **{C.PARENT_POST_ID: None, C.POST_ID: None}),
    # A self-reply (a thread) and a self-like are real activity, not bad data.
    interaction(10, "reply", **{C.SUBJECT_ID: "a"}),
    interaction(11, "like", **{C.SUBJECT_ID: "a", C.POST_ID: None}),
    # Profile snapshots: counts may be absent (null) or zero.
    event(
        12, **PROFILE, **{C.FOLLOWERS_COUNT: 0, C.FOLLOWING_COUNT: 10, C.LISTED_COUNT: 0, C.POSTS_COUNT: 3}
    ),
    event(13, **PROFILE),
    # The range is inclusive at both ends.
    event(14, **{C.EVENT_TS: datetime(2006, 1, 1)}),
    event(15, **{C.EVENT_TS: MAX_TS}),
]

# expectation name -> source lines of rows crafted to fail it and nothing else.
BAD_ROWS = {
    f"{NOT_NULL}:event_id": [event(101, **{C.EVENT_ID: None})],
    f"{NOT_NULL}:network": [event(102, **{C.NETWORK: None})],
    f"{NOT_NULL}:event_type": [event(103, **{C.EVENT_TYPE: None})],
    f"{IN_SET}:event_type": [event(104, **{C.EVENT_TYPE: "retweet"})],
    f"{NOT_NULL}:actor_id": [event(105, **{C.ACTOR_ID: None})],
    f"{NOT_NULL}:event_ts": [event(106, **{C.EVENT_TS: None})],
    f"{BETWEEN}:event_ts": [
        event(107, **{C.EVENT_TS: datetime(2005, 12, 31, 23, 59, 59)}),
        event(108, **{C.EVENT_TS: MAX_TS + timedelta(seconds=1)}),
    ],
    f"{NOT_NULL}:subject_id": [interaction(109, "mention", **{C.SUBJECT_ID: None, C.PARENT_POST_ID: None})],
    f"{WITHIN_RECORD}:actor_id,subject_id": [
        interaction(110, "follow", **{C.SUBJECT_ID: "a", C.PARENT_POST_ID: None, C.POST_ID: None})
    ],
    f"{NOT_NULL}:parent_post_id": [interaction(111, "reply", **{C.PARENT_POST_ID: None})],
    f"{NOT_NULL}:post_id": [event(112, **{C.POST_ID: None})],
    f"{BETWEEN}:followers_count": [event(113, **PROFILE, **{C.FOLLOWERS_COUNT: -1})],
    f"{BETWEEN}:following_count": [event(114, **PROFILE, **{C.FOLLOWING_COUNT: -1})],
    f"{BETWEEN}:listed_count": [event(115, **PROFILE, **{C.LISTED_COUNT: -3})],
    f"{BETWEEN}:posts_count": [event(116, **PROFILE, **{C.POSTS_COUNT: -1})],
    f"{BETWEEN}:share_count": [event(117, **{C.SHARE_COUNT: -2})],
}
# Fails event_id and actor_id: the reason is the first in suite order.
DOUBLE_BAD = event(201, **{C.EVENT_ID: None, C.ACTOR_ID: None})
ALL_BAD = [row for rows in BAD_ROWS.values() for row in rows] + [DOUBLE_BAD]
LINE = BRONZE_EVENTS_SCHEMA.fieldNames().index(C.SOURCE_LINE)


def _validate(df, results_dir=None, run_id="run-1"):
    return validate_bronze_events(
        df,
        run_id=run_id,
        run_ts=RUN_TS,
        min_event_date=MIN_DATE,
        future_tolerance_hours=TOLERANCE_H,
        results_dir=results_dir,
    )


@pytest.fixture(scope="module")
def suite():
    return bronze_events_suite(
        min_event_ts=datetime(2006, 1, 1), max_event_ts=RUN_TS + timedelta(hours=TOLERANCE_H)
    )


@pytest.fixture(scope="module")
def mixed_batch(spark):
    return spark.createDataFrame(GOOD_ROWS + ALL_BAD, BRONZE_EVENTS_SCHEMA)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("validation"))


@pytest.fixture(scope="module")
def mixed(mixed_batch, results_dir):
    outcome = validate_bronze_events(
        mixed_batch,
        run_id="run-1",
        run_ts=RUN_TS,
        min_event_date=MIN_DATE,
        future_tolerance_hours=TOLERANCE_H,
        results_dir=results_dir,
        keep_cached=True,
    )
    yield outcome
    outcome.release()


@pytest.fixture(scope="module")
def mixed_reasons(mixed) -> dict[int, str]:
    return _reasons_by_line(mixed)


@pytest.fixture(scope="module")
def good(spark) -> ValidationOutcome:
    return _validate(spark.createDataFrame(GOOD_ROWS, BRONZE_EVENTS_SCHEMA))


def _reasons_by_line(outcome: ValidationOutcome) -> dict[int, str]:
    return {
        row[C.SOURCE_LINE]: row[C.REASON]
        for row in outcome.rejected.select(C.SOURCE_LINE, C.REASON).collect()
    }


# ------------------------------------------------------------------ the suite


def test_every_bronze_expectation_has_a_crafted_bad_row(suite):
    assert [expectation_name(e) for e in suite.expectations] == list(BAD_ROWS)


def test_suite_range_bounds_are_utc_and_inclusive(suite):
    between_ts = next(e for e in suite.expectations if expectation_name(e) == f"{BETWEEN}:event_ts")
    assert between_ts.min_value == datetime(2006, 1, 1, tzinfo=UTC)
    assert between_ts.max_value == datetime(2024, 5, 2, 12, tzinfo=UTC)
    assert not between_ts.strict_min and not between_ts.strict_max


# ------------------------------------------------------------------ each expectation, bad and good


@pytest.mark.parametrize("name", list(BAD_ROWS))
def test_each_expectation_fails_on_its_bad_rows_with_its_name_as_reason(mixed, mixed_reasons, name):
    entry = mixed.summary[name]
    expected_lines = {row[LINE] for row in BAD_ROWS[name]}
    double = 1 if name in (f"{NOT_NULL}:event_id", f"{NOT_NULL}:actor_id") else 0
    assert entry["success"] is False
    assert entry["unexpected_count"] == len(expected_lines) + double
    quarantined = {line for line, reason in mixed_reasons.items() if reason == name}
    assert quarantined - {DOUBLE_BAD[LINE]} == expected_lines


def test_good_rows_pass_every_expectation(good):
    assert good.success is True
    assert (good.rows_in, good.rows_rejected, good.failure_fraction) == (len(GOOD_ROWS), 0, 0.0)
    assert all(entry["success"] and entry["unexpected_count"] == 0 for entry in good.summary.values())
    assert good.rejected.count() == 0
    assert good.results_path is None


def test_reason_is_the_first_failing_expectation_in_suite_order(mixed_reasons):
    assert mixed_reasons[DOUBLE_BAD[LINE]] == f"{NOT_NULL}:event_id"


def test_split_is_a_partition_with_the_input_columns(mixed, mixed_batch):
    assert mixed.success is False
    assert mixed.rows_in == len(GOOD_ROWS) + len(ALL_BAD)
    assert mixed.rows_rejected == len(ALL_BAD) == mixed.rejected.count()
    assert math.isclose(mixed.failure_fraction, len(ALL_BAD) / mixed.rows_in)
    assert mixed.valid.columns == mixed_batch.columns
    assert mixed.rejected.columns == [*mixed_batch.columns, C.REASON]
    assert sorted(r[C.SOURCE_LINE] for r in mixed.valid.collect()) == sorted(row[LINE] for row in GOOD_ROWS)
    assert mixed.rejected.filter(F.col(C.REASON).isNull()).count() == 0


def test_nulls_only_fail_the_expectations_that_forbid_them(mixed):
    valid_lines = {r[C.SOURCE_LINE] for r in mixed.valid.select(C.SOURCE_LINE).collect()}
    # Null profile counts, a post without subject or parent, a mention without parent: all valid.
    assert {1, 6, 13} <= valid_lines
    # A null event_type is reported once (not-null), not again by the in-set check.
    assert mixed.summary[f"{IN_SET}:event_type"]["unexpected_count"] == 1
    # A null event_ts is reported by not-null only, not by the range check.
    assert mixed.summary[f"{BETWEEN}:event_ts"]["unexpected_count"] == 2


def test_split_predicates_count_exactly_what_ge_counts(mixed, mixed_batch, suite):
    predicates = row_failure_predicates(suite)
    counts = mixed_batch.agg(
        *[F.count(F.when(p, 1)).alias(str(i)) for i, (_, p) in enumerate(predicates)]
    ).first()
    ours = {name: counts[str(i)] for i, (name, _) in enumerate(predicates)}
    assert ours == {name: entry["unexpected_count"] for name, entry in mixed.summary.items()}


def test_aware_run_ts_is_the_same_instant(suite):
    aware = bronze_events_suite(
        min_event_ts=datetime(2006, 1, 1, tzinfo=UTC),
        max_event_ts=datetime(2024, 5, 2, 14, tzinfo=timezone(timedelta(hours=2))),
    )
    assert [e.configuration.kwargs for e in aware.expectations] == [
        e.configuration.kwargs for e in suite.expectations
    ]


# ------------------------------------------------------------------ results kept


def test_results_json_and_data_docs_are_written_per_run(mixed, results_dir):
    assert mixed.results_path == f"{results_dir}/run-1/bronze_events.json"
    written = json.loads(open(mixed.results_path).read())
    assert written["success"] is False
    assert len(written["results"]) == len(BAD_ROWS)
    assert written["meta"]["run_id"]["run_name"] == "run-1"
    assert {r["expectation_config"]["meta"]["name"] for r in written["results"]} == set(BAD_ROWS)
    # SUMMARY, never COMPLETE: no full unexpected lists or row indexes.
    assert all("unexpected_list" not in r["result"] for r in written["results"])
    docs = f"{results_dir}/run-1/data_docs/bronze_events/index.html"
    assert "bronze_events" in open(docs).read()


def test_a_failing_batch_keeps_samples_of_its_failing_values(mixed):
    written = json.loads(open(mixed.results_path).read())
    failing = [r["result"] for r in written["results"] if r["result"]["unexpected_count"]]
    assert failing and all(r["partial_unexpected_list"] for r in failing)


def _spark_jobs(spark, action) -> tuple[object, int]:
    """``action()``'s result and the number of Spark jobs it ran."""
    group = f"jobs-{uuid.uuid4()}"
    sc = spark.sparkContext
    sc.setJobGroup(group, group)
    try:
        return action(), len(sc.statusTracker().getJobIdsForGroup(group))
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


def test_a_clean_batch_is_validated_without_looking_for_samples(spark, suite, tmp_path):
    batch = spark.createDataFrame(GOOD_ROWS, BRONZE_EVENTS_SCHEMA).cache()
    try:
        def ge(samples: bool):
            return _spark_jobs(spark, lambda: run_great_expectations(
                batch, suite, run_id=f"s{samples}", run_time=RUN_TS, results_dir=None, samples=samples
            )[0])

        (with_samples, jobs_with), (without, jobs_without) = ge(True), ge(False)
        outcome = validate_suite(batch, suite, run_id="clean", run_time=RUN_TS, results_dir=str(tmp_path))
    finally:
        batch.unpersist()
    # Looking for samples of failing values reads the whole batch again per expectation.
    assert jobs_without < jobs_with
    assert [r.result["unexpected_count"] for r in without.results] == [
        r.result["unexpected_count"] for r in with_samples.results
    ]
    # The gate asked GE for no samples: its results lack the counts of sampled values.
    written = json.loads(open(outcome.results_path).read())
    assert outcome.success and all(r["result"]["unexpected_count"] == 0 for r in written["results"])
    assert not any("partial_unexpected_counts" in r["result"] for r in written["results"])
    assert all("partial_unexpected_counts" in r.result for r in with_samples.results)


def test_a_batch_derived_from_a_cached_frame_can_be_left_uncached(spark, suite):
    def kept(cache: bool) -> set[int]:
        before = persistent_rdd_ids(spark)
        outcome = validate_suite(
            spark.createDataFrame(GOOD_ROWS, BRONZE_EVENTS_SCHEMA), suite, run_id="c", run_time=RUN_TS,
            results_dir=None, keep_cached=True, cache=cache,
        )
        try:
            assert outcome.rows_in == len(GOOD_ROWS)
            return persistent_rdd_ids(spark) - before
        finally:
            outcome.release()

    assert kept(cache=True)
    assert kept(cache=False) == set()


def test_summary_is_in_suite_order_and_json_serialisable(mixed):
    assert list(mixed.summary) == list(BAD_ROWS)
    assert json.loads(json.dumps(mixed.summary)) == mixed.summary


# ------------------------------------------------------------------ the gate


def test_gate_stops_a_batch_over_the_threshold_with_a_clear_message(mixed):
    with pytest.raises(DataQualityError, match="bronze_events") as raised:
        gate(mixed, max_failure_fraction=0.05, table="bronze_events")
    message = str(raised.value)
    assert "validate.max_failure_fraction=0.05" in message
    assert f"{mixed.rows_rejected} of {mixed.rows_in} rows" in message
    assert f"{NOT_NULL}:actor_id: 2 unexpected" in message
    assert f"{BETWEEN}:event_ts: 2 unexpected" in message
    assert mixed.results_path in message
    needed = math.ceil(mixed.failure_fraction * 10_000) / 10_000
    assert f"--set validate.max_failure_fraction={needed:g}" in message
    # The suggested override does let the batch through.
    gate(mixed, max_failure_fraction=needed, table="bronze_events")


def test_gate_passes_under_the_threshold(mixed, good):
    gate(mixed, max_failure_fraction=1.0, table="bronze_events")
    gate(good, max_failure_fraction=0.0, table="bronze_events")


def test_gate_fails_when_an_expectation_could_not_be_evaluated(good):
    broken = dict(good.summary)
    name = f"{NOT_NULL}:event_id"
    broken[name] = {**broken[name], "success": False, "unexpected_count": None, "error": "boom"}
    outcome = ValidationOutcome(
        valid=good.valid,
        rejected=good.rejected,
        success=False,
        rows_in=good.rows_in,
        rows_rejected=0,
        failure_fraction=0.0,
        results_path=None,
        summary=broken,
    )
    with pytest.raises(DataQualityError, match=f"{name}: error: boom"):
        gate(outcome, max_failure_fraction=1.0, table="bronze_events")


# ------------------------------------------------------------------ guards


def test_a_split_that_disagrees_with_ge_is_an_error():
    summary = {f"{NOT_NULL}:event_id": {"unexpected_count": 2, "error": None}}
    with pytest.raises(QuarantineTranslationError, match="GE counts 2, the split flags 1"):
        _check_translation("bronze_events", summary, {f"{NOT_NULL}:event_id": 1})


def test_unsupported_expectation_type_is_named():
    suite = gx.ExpectationSuite(
        name="odd", expectations=[gx.expectations.ExpectColumnMeanToBeBetween(column=C.SCORE, min_value=1)]
    )
    with pytest.raises(NotImplementedError, match="expect_column_mean_to_be_between"):
        row_failure_predicates(suite)


def test_missing_columns_are_reported_before_running_ge(spark):
    df = spark.createDataFrame([event(1)], BRONZE_EVENTS_SCHEMA).drop(C.ACTOR_ID)
    with pytest.raises(MissingColumnsError, match="actor_id"):
        _validate(df)


def _has_window(df) -> bool:
    return "Window" in df._jdf.queryExecution().optimizedPlan().toString()


def test_uniqueness_groups_the_keys_of_its_domain_first_and_windows_only_a_batch_with_repeats(spark):
    E = gx.expectations
    unique_a = "expect_column_values_to_be_unique:a"
    unique_ab = "expect_compound_columns_to_be_unique:a,b"
    suite = gx.ExpectationSuite(name="keys", expectations=[
        E.ExpectColumnValuesToBeUnique(column="a"),
        E.ExpectCompoundColumnsToBeUnique(column_list=["a", "b"], row_condition=GxColumn("m") == "x"),
    ])
    schema = "a string, b string, m string"
    # (k2, 1) repeats outside the compound check's domain (m = y); a repeats.
    repeats_out_of_domain = spark.createDataFrame([("k1", "1", "x"), ("k1", "2", "x"), ("k2", "1", "y"), ("k2", "1", "y")], schema)
    # (k1, null) repeats inside it: a key with a missing part is still a key.
    repeats_with_null = spark.createDataFrame([("k1", None, "x"), ("k1", None, "x"), ("k3", None, "y")], schema)
    clean = spark.createDataFrame([("k1", "1", "x"), ("k2", "1", "x"), ("k3", None, "y")], schema)
    assert unique_without_duplicates(repeats_out_of_domain, suite) == {unique_ab}
    assert unique_without_duplicates(repeats_with_null, suite) == set()
    assert unique_without_duplicates(clean, suite) == {unique_a, unique_ab}

    def validated(df):
        # validate_suite raises when its flags and GE's counts disagree.
        return validate_suite(df, suite, run_id="keys", run_time=RUN_TS, results_dir=None)

    outcomes = [validated(df) for df in (repeats_out_of_domain, repeats_with_null, clean)]
    counts = [{name: e["unexpected_count"] for name, e in o.summary.items()} for o in outcomes]
    assert counts == [{unique_a: 4, unique_ab: 0}, {unique_a: 2, unique_ab: 2}, {unique_a: 0, unique_ab: 0}]
    assert [o.rows_rejected for o in outcomes] == [4, 2, 0]
    assert [_has_window(o.rejected) for o in outcomes] == [True, True, False]


# ------------------------------------------------------------------ silver and scores


def test_silver_suite_rejects_duplicate_and_missing_ids(spark):
    rows = [event(1), event(2), event(3, **{C.EVENT_ID: "e2"}), event(4, **{C.EVENT_ID: None})]
    batch = spark.createDataFrame(rows, BRONZE_EVENTS_SCHEMA).cache()
    outcome = validate_silver_events(batch, run_id="r", results_dir=None)
    # A batch the caller cached is left cached for the caller to release.
    assert batch.storageLevel.useMemory
    batch.unpersist()
    assert outcome.success is False
    assert outcome.summary[f"{NOT_NULL}:event_id"]["unexpected_count"] == 1
    assert outcome.summary["expect_column_values_to_be_unique:event_id"]["unexpected_count"] == 2
    assert all(e["success"] for n, e in outcome.summary.items() if n.split(":")[1] != "event_id")
    assert _reasons_by_line(outcome) == {
        2: "expect_column_values_to_be_unique:event_id",
        3: "expect_column_values_to_be_unique:event_id",
        4: f"{NOT_NULL}:event_id",
    }
    assert [expectation_name(e) for e in silver_events_suite().expectations][:2] == [
        f"{NOT_NULL}:event_id",
        "expect_column_values_to_be_unique:event_id",
    ]


def _score(user: str, score=50.0, reach=10.0, amp=20.0, impact=30.0, rank=1, percentile=50.0):
    return (date(2024, 5, 1), "twitter", user, score, reach, amp, impact, rank, percentile, None, "m1", "r")


def test_scores_suite_checks_ranges_nan_and_key_uniqueness(spark, tmp_path):
    rows = [
        _score("ok1"),
        _score("ok2", score=1.0, reach=0.0, amp=100.0, impact=0.0, percentile=100.0),
        _score("low", score=0.5),
        _score("high", score=100.5),
        _score("nan", impact=math.nan),
        _score("neg", reach=-0.1),
        _score("amp", amp=100.01),
        _score("dup"),
        _score("dup"),
        _score("rank", rank=0),
        _score("pct", percentile=101.0),
    ]
    nullable = T.StructType([T.StructField(f.name, f.dataType, True) for f in SCORES_SCHEMA.fields])
    rows.append((date(2024, 5, 1), "twitter", None, 50.0, 1.0, 1.0, 1.0, 2, 1.0, None, "m1", "r"))
    cached_before = persistent_rdd_ids(spark)
    outcome = validate_scores(spark.createDataFrame(rows, nullable), run_id="r", results_dir=str(tmp_path))
    # Neither GE nor the split leaves cached data behind.
    assert persistent_rdd_ids(spark) - cached_before == set()
    assert outcome.results_path == f"{tmp_path}/r/scores.json"
    counts = {name: entry["unexpected_count"] for name, entry in outcome.summary.items()}
    assert counts == {
        f"{NOT_NULL}:user_id": 1,
        f"{NOT_NULL}:network": 0,
        f"{NOT_NULL}:as_of": 0,
        "expect_compound_columns_to_be_unique:as_of,network,user_id": 2,
        f"{NOT_NULL}:score": 0,
        f"{BETWEEN}:score": 2,
        f"{BETWEEN}:true_reach": 1,
        f"{BETWEEN}:amplification": 1,
        f"{BETWEEN}:network_impact": 1,
        f"{BETWEEN}:percentile": 1,
        f"{BETWEEN}:rank": 1,
    }
    assert [expectation_name(e) for e in scores_suite().expectations] == list(counts)
    assert sorted(r[C.USER_ID] for r in outcome.valid.collect()) == ["ok1", "ok2"]
    assert outcome.rows_rejected == len(rows) - 2
