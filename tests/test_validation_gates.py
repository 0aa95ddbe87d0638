"""Issue 5 gates: derived-table suites, table-level checks before features, the override, late events.

GE runs cost seconds each: every suite is validated once on a mixed batch (good
rows plus one crafted bad row per expectation) and once on its good rows, and
the outcomes are shared by the asserts. Ingest is simulated by landing rows in
``bronze_events`` / ``ingest_log`` / ``quarantine`` directly, so these tests
exercise validate on its own.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog, quality
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import DataQualityError, InputError
from klout_spark.io import Lakehouse
from klout_spark.pipeline import Pipeline, run_daily, stage_features, stage_validate
from klout_spark.runs import RunContext
from tests.conftest import test_settings

NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
COMPOUND = "expect_compound_columns_to_be_unique"
AS_OF = date(2026, 10, 31)
RUN_TS = datetime(2026, 11, 1, 6, 0, 0)


def _nullable(schema: T.StructType) -> T.StructType:
    return T.StructType([T.StructField(f.name, f.dataType, True) for f in schema.fields])


def _counts(outcome: quality.ValidationOutcome) -> dict[str, int]:
    return {name: entry["unexpected_count"] for name, entry in outcome.summary.items()}


def _validate_mixed(validate, spark, good, bad, schema):
    """One GE run of a suite on good + bad rows.

    Good rows pass when GE counts exactly the crafted bad rows per expectation
    (asserted by each test) and the split, which validate_suite checks against
    GE's counts for every expectation, keeps every good row valid.
    """
    return validate(spark.createDataFrame(good + bad, _nullable(schema)), run_id="r", results_dir=None)


# ------------------------------------------------------------------ user_features


def _features(user: str, *, measure: str = "likes_received", **cells):
    """A user_features row; every window 1 <= 2 <= 3, decayed 1.5; ``cells`` override columns."""
    row = {name: None for name in S.USER_FEATURES_SCHEMA.fieldNames()}
    row.update({C.AS_OF: AS_OF, C.NETWORK: "twitter", C.USER_ID: user, S.ACTIVE_DAYS_30D: 3,
                S.IS_INACTIVE: False, S.IS_SPAM_LIKE: False, S.GENUINE_ENGAGERS_30D: 1,
                S.IS_NEW_ACCOUNT: False, S.IS_FOLLOWER_BOOSTED: False, S.MUTUAL_ENGAGERS_30D: 0,
                S.GENUINE_ENGAGEMENTS_DECAYED: 1.0, S.AMPLIFIED_POSTS_30D: 0, S.GENUINE_RESHARES_30D: 0})
    for m in S.FEATURE_MEASURES:
        row.update({f"{m}_7d": 1.0, f"{m}_30d": 2.0, f"{m}_90d": 3.0, f"{m}_decayed": 1.5})
    row.update({name.replace("@", measure): value for name, value in cells.items()})
    return tuple(row[name] for name in S.USER_FEATURES_SCHEMA.fieldNames())


UF_GOOD = [
    _features("u1"),
    _features("u2", **{"@_7d": 0.0, "@_30d": 0.0, "@_90d": 0.0, "@_decayed": 0.0}),  # all zero is fine
    _features("u3", **{"@_7d": 2.0, "@_30d": 2.0, "@_90d": 2.0}),  # equal windows are nested
]
UF_BAD = {
    f"{NOT_NULL}:as_of": [_features("b1", **{C.AS_OF: None})],
    f"{NOT_NULL}:network": [_features("b2", **{C.NETWORK: None})],
    f"{NOT_NULL}:user_id": [_features(None)],
    f"{NOT_NULL}:is_inactive": [_features("b4", **{S.IS_INACTIVE: None})],
    f"{NOT_NULL}:is_spam_like": [_features("b5", **{S.IS_SPAM_LIKE: None})],
    f"{COMPOUND}:as_of,network,user_id": [_features("dup"), _features("dup")],
    f"{NOT_NULL}:value_7d": [_features("b7", **{"@_7d": None})],
    f"{BETWEEN}:value_7d": [_features("b8", **{"@_7d": -1.0, "@_30d": 0.0})],
    f"{PAIR}:value_30d,value_7d": [_features("b9", measure="posts_sent", **{"@_30d": 0.5})],
    f"{PAIR}:value_90d,value_30d": [_features("b10", measure="follows_sent", **{"@_90d": 1.9})],
    f"{BETWEEN}:value_decayed": [_features("b11", **{"@_decayed": -0.01})],
}


@pytest.fixture(scope="module")
def user_features_outcomes(spark):
    bad = [row for rows in UF_BAD.values() for row in rows]
    return _validate_mixed(quality.validate_user_features, spark, UF_GOOD, bad, S.USER_FEATURES_SCHEMA)


def test_user_features_each_expectation_fails_on_its_bad_row_and_passes_on_good_rows(user_features_outcomes):
    mixed = user_features_outcomes
    assert [quality.expectation_name(e) for e in quality.user_features_suite().expectations] == list(UF_BAD)
    measures = len(S.FEATURE_MEASURES)
    expected = {name: 1 for name in UF_BAD}
    # Null ids and flags repeat on every measure row of the account (long form).
    for name in list(UF_BAD)[:5]:
        expected[name] = measures
    # Uniqueness is checked on the rows of the first measure: the two rows of "dup".
    expected[f"{COMPOUND}:as_of,network,user_id"] = 2
    assert _counts(mixed) == expected
    assert all(not mixed.summary[name]["success"] for name in UF_BAD)
    assert mixed.rows_in == (len(UF_GOOD) + sum(map(len, UF_BAD.values()))) * measures
    valid_users = {r[C.USER_ID] for r in mixed.valid.select(C.USER_ID).collect()}
    assert {"u1", "u2", "u3"} <= valid_users
    assert mixed.valid.filter(F.col(C.USER_ID).isin("u1", "u2", "u3")).count() == len(UF_GOOD) * measures
    # The failing measure is named in the rejected long rows.
    rejected = {(r[C.USER_ID], r[quality.MEASURE]) for r in mixed.rejected.select(C.USER_ID, quality.MEASURE).collect()}
    assert {("b9", "posts_sent"), ("b10", "follows_sent"), ("b8", "likes_received")} <= rejected


def test_user_features_gate_stops_before_writing_and_names_the_setting(user_features_outcomes):
    mixed = user_features_outcomes
    with pytest.raises(DataQualityError, match=r"validate\.thresholds\.user_features=0") as raised:
        quality.gate(mixed, max_failure_fraction=0.0, table="user_features",
                     threshold_key="validate.thresholds.user_features")
    assert f"{PAIR}:value_30d,value_7d: 1 unexpected" in str(raised.value)


# ------------------------------------------------------------------ network_rank


def _rank(user, pagerank=0.25, trust=1.0, as_of=AS_OF, network="twitter"):
    return (as_of, network, user, trust, pagerank)


RANK_GOOD = [_rank("a"), _rank("b"), _rank("c", pagerank=0.5), _rank("d", pagerank=0.0, trust=0.0)]
RANK_BAD = {
    f"{NOT_NULL}:as_of": [_rank("n1", as_of=None)],
    f"{NOT_NULL}:network": [_rank("n2", network=None)],
    f"{NOT_NULL}:user_id": [_rank(None)],
    f"{COMPOUND}:as_of,network,user_id": [_rank("dup"), _rank("dup")],
    f"{NOT_NULL}:pagerank": [_rank("n5", pagerank=None)],
    f"{BETWEEN}:pagerank": [_rank("nan", pagerank=math.nan), _rank("neg", pagerank=-1e-9),
                            _rank("big", pagerank=1.5)],
    f"{BETWEEN}:trust": [_rank("t", trust=-0.5)],
}


@pytest.fixture(scope="module")
def network_rank_outcomes(spark):
    bad = [row for rows in RANK_BAD.values() for row in rows]
    return _validate_mixed(quality.validate_network_rank, spark, RANK_GOOD, bad, S.NETWORK_RANK_SCHEMA)


def test_network_rank_each_expectation_fails_on_its_bad_rows_and_passes_on_good_rows(network_rank_outcomes):
    mixed = network_rank_outcomes
    assert [quality.expectation_name(e) for e in quality.network_rank_suite().expectations] == list(RANK_BAD)
    assert _counts(mixed) == {name: len(rows) for name, rows in RANK_BAD.items()}
    assert sorted(r[C.USER_ID] for r in mixed.valid.collect()) == ["a", "b", "c", "d"]


def test_rank_mass_is_one_per_as_of_within_tolerance(spark):
    other = date(2026, 10, 30)
    ranks = spark.createDataFrame(
        [*RANK_GOOD, _rank("x", pagerank=0.6, as_of=other), _rank("y", pagerank=0.4 + 5e-7, as_of=other)],
        S.NETWORK_RANK_SCHEMA,
    )
    assert quality.rank_mass_failures(ranks, tolerance=1e-6) == []
    (failure,) = quality.rank_mass_failures(ranks, tolerance=1e-7)
    assert failure.check == "rank_mass" and failure.details["as_of"] == "2026-10-30"
    assert "validate.rank_mass_tolerance=1e-07" in failure.message
    short = spark.createDataFrame([_rank("a", pagerank=0.5)], S.NETWORK_RANK_SCHEMA)
    nan = spark.createDataFrame([_rank("a", pagerank=math.nan), _rank("b", pagerank=1.0)], S.NETWORK_RANK_SCHEMA)
    assert [f.details["mass"] for f in quality.rank_mass_failures(short, tolerance=1e-6)] == [0.5]
    assert math.isnan(quality.rank_mass_failures(nan, tolerance=1e-6)[0].details["mass"])
    with pytest.raises(DataQualityError, match="PageRank sums to 0.5 over 1 accounts"):
        quality.enforce(quality.rank_mass_failures(short, tolerance=1e-6), allow_bad_data=None, context="propagate")


# ------------------------------------------------------------------ silver_profiles


def _profile(user, event_id=None, network="twitter", **counts):
    values = {C.FOLLOWERS_COUNT: 5, C.FOLLOWING_COUNT: 3, C.LISTED_COUNT: 0, C.POSTS_COUNT: 7, **counts}
    return (network, user, datetime(2026, 10, 30, 9), values[C.FOLLOWERS_COUNT], values[C.FOLLOWING_COUNT],
            values[C.LISTED_COUNT], values[C.POSTS_COUNT], None, None, event_id or f"p-{user}", "b1")


PROFILE_GOOD = [_profile("a"), _profile("z", **{C.FOLLOWERS_COUNT: 0, C.POSTS_COUNT: None})]
PROFILE_BAD = {
    f"{NOT_NULL}:event_id": [_profile("e")[:9] + (None, "b1")],
    f"{NOT_NULL}:network": [_profile("n", network=None)],
    f"{NOT_NULL}:user_id": [_profile(None, event_id="p-none")],
    f"{BETWEEN}:followers_count": [_profile("f", **{C.FOLLOWERS_COUNT: -1})],
    f"{BETWEEN}:following_count": [_profile("g", **{C.FOLLOWING_COUNT: -2})],
    f"{BETWEEN}:listed_count": [_profile("l", **{C.LISTED_COUNT: -3})],
    f"{BETWEEN}:posts_count": [_profile("p", **{C.POSTS_COUNT: -4})],
}


def test_silver_profiles_each_expectation_fails_on_its_bad_row_and_passes_on_good_rows(spark):
    bad = [row for rows in PROFILE_BAD.values() for row in rows]
    mixed = _validate_mixed(quality.validate_silver_profiles, spark, PROFILE_GOOD, bad, S.SILVER_PROFILES_SCHEMA)
    assert [quality.expectation_name(e) for e in quality.silver_profiles_suite().expectations] == list(PROFILE_BAD)
    assert _counts(mixed) == {name: 1 for name in PROFILE_BAD}
    assert sorted(r[C.USER_ID] for r in mixed.valid.collect()) == ["a", "z"]


# ------------------------------------------------------------------ table-level checks (pure)


def _days(counts_by_offset: dict[int, int]) -> dict[date, int]:
    return {AS_OF - timedelta(days=k): n for k, n in counts_by_offset.items()}


def test_volume_check_needs_three_days_of_history_and_compares_to_the_median():
    steady = {k: 100 for k in range(1, 8)}
    failure, facts = quality.volume_failure(_days({**steady, 0: 9}), as_of=AS_OF, min_ratio=0.1, table="t")
    assert failure is not None and facts["median_7d"] == 100 and facts["events"] == 9
    assert quality.volume_failure(_days({**steady, 0: 10}), as_of=AS_OF, min_ratio=0.1, table="t")[0] is None
    # Two days of history only: not enough to judge.
    skipped, facts = quality.volume_failure(_days({1: 100, 2: 100, 0: 0}), as_of=AS_OF, min_ratio=0.1, table="t")
    assert skipped is None and facts["history_days"] == 2 and "skipped" in facts
    # Three days of history, one outlier: the median ignores it.
    assert quality.volume_failure(_days({1: 10_000, 2: 100, 3: 100, 0: 20}), as_of=AS_OF, min_ratio=0.1,
                                  table="t")[0] is None


def test_missing_day_needs_events_before_and_after():
    failure, facts = quality.missing_day_failure(_days({0: 5, 1: 5, 3: 5, 9: 5}), as_of=AS_OF, max_gap_days=7,
                                                 table="t")
    assert facts["missing_days"] == [(AS_OF - timedelta(days=k)).isoformat() for k in (7, 6, 5, 4, 2)]
    assert "validate.max_gap_days=7" in failure.message
    # No earlier events: the history just starts, nothing is missing.
    assert quality.missing_day_failure(_days({0: 5, 1: 5}), as_of=AS_OF, max_gap_days=7, table="t")[0] is None
    assert quality.missing_day_failure(_days({0: 5, 2: 5}), as_of=AS_OF, max_gap_days=0, table="t")[0] is None


def test_enforce_without_a_reason_is_an_error_and_with_one_returns_what_it_overrode():
    failure = quality.CheckFailure("volume", "silver_events", "low", {"events": 1})
    assert quality.enforce([], allow_bad_data=None, context="x") == []
    with pytest.raises(DataQualityError, match="--allow-bad-data"):
        quality.enforce([failure], allow_bad_data="  ", context="x")
    assert quality.enforce([failure], allow_bad_data="outage", context="x") == [
        {"check": "volume", "table": "silver_events", "message": "low", "events": 1, "override_reason": "outage"}
    ]


# ------------------------------------------------------------------ the validate stage on a lakehouse


@pytest.fixture()
def pipeline(spark, tmp_path):
    import uuid

    settings = test_settings(str(tmp_path / "lake"), f"lake.database=g_{uuid.uuid4().hex[:12]}")
    lake = Lakehouse(spark, settings.lake.root, settings.lake.database)
    return Pipeline(settings, spark, lake, RunContext.new(settings.config_hash()))


def _new_run(p: Pipeline) -> Pipeline:
    return Pipeline(p.settings, p.spark, p.lake, RunContext.new(p.settings.config_hash()))


def _silver(event_id, day, actor="a", event_type="post", subject=None):
    ts = datetime(day.year, day.month, day.day, 12)
    return (event_id, "twitter", event_type, ts, actor, subject, f"p-{event_id}", None, None, None, "b0", day)


def _land_silver(p: Pipeline, per_day: dict[date, int]) -> None:
    rows = [_silver(f"{day}-{i}", day) for day, n in per_day.items() for i in range(n)]
    p.lake.merge_new(p.spark.createDataFrame(rows, S.SILVER_EVENTS_SCHEMA), catalog.SILVER_EVENTS,
                     S.SILVER_EVENTS_SCHEMA, keys=[C.EVENT_ID], partition_by=[C.EVENT_DATE])


def _validate_row(p: Pipeline):
    runs = p.lake.read(catalog.RUNS).filter((F.col(C.RUN_ID) == p.run.run_id) & (F.col(C.STAGE) == "validate"))
    (row,) = runs.collect()
    return row


def test_low_volume_stops_the_run_before_features_and_the_override_is_recorded(pipeline):
    p = pipeline
    _land_silver(p, {AS_OF - timedelta(days=k): 20 for k in range(1, 8)} | {AS_OF: 1})
    with pytest.raises(DataQualityError) as raised:
        run_daily(p, as_of=AS_OF, inputs=[])
    message = str(raised.value)
    # What, where, the numbers, and how to override.
    assert "volume: silver_events has 1 events on 2026-10-31" in message
    assert "5.0% of the median daily volume 20 over the 7 days 2026-10-24..2026-10-30" in message
    assert "validate.min_volume_ratio=0.1 (2 events)" in message
    assert "--allow-bad-data 'REASON'" in message
    assert not p.lake.exists(catalog.USER_FEATURES)  # stopped before features
    failed = _validate_row(p)
    assert failed.status == "failed" and failed.as_of == AS_OF and "DataQualityError" in failed.message

    # The same check passes with the override, which the validate row records.
    q = _new_run(p)
    summary = stage_validate(q, as_of=AS_OF, allow_bad_data="backfill: feed outage on 2026-10-31")
    assert [item["check"] for item in summary.overridden] == ["volume"]
    row = _validate_row(q)
    assert row.status == "succeeded"
    assert row.message.startswith("--allow-bad-data 'backfill: feed outage on 2026-10-31': overrode volume:")
    details = json.loads(row.details)
    assert details["allow_bad_data"] == "backfill: feed outage on 2026-10-31"
    assert details["overridden"][0]["events"] == 1 and details["overridden"][0]["median_7d"] == 20
    assert details["table_checks"]["volume"]["ratio"] == pytest.approx(0.05)
    with pytest.raises(InputError, match="needs a reason"):
        stage_validate(q, as_of=AS_OF, allow_bad_data=" ")


def test_missing_day_stops_validate_with_the_day_and_passes_with_the_override(pipeline):
    p = pipeline
    gap = AS_OF - timedelta(days=3)
    _land_silver(p, {AS_OF - timedelta(days=k): 10 for k in range(0, 9) if k != 3})
    with pytest.raises(DataQualityError) as raised:
        stage_validate(p)  # as_of defaults to the last day with events
    message = str(raised.value)
    assert f"missing_day: silver_events has no events on 1 day(s) {gap}" in message
    assert "within the 7 days before as_of 2026-10-31 (validate.max_gap_days=7)" in message
    assert "validate for as_of 2026-10-31" in message and "--allow-bad-data" in message
    assert "volume" not in message.split("\n")[1]  # the volume itself is fine
    summary = stage_validate(_new_run(p), allow_bad_data="known gap")
    assert summary.as_of == AS_OF
    assert summary.overridden[0]["missing_days"] == [gap.isoformat()]


def test_steady_days_pass_every_table_check(pipeline):
    p = pipeline
    _land_silver(p, {AS_OF - timedelta(days=k): 10 + k for k in range(0, 9)})
    summary = stage_validate(p)
    assert summary.as_of == AS_OF and summary.overridden == ()
    details = json.loads(_validate_row(p).details)
    assert details["table_checks"]["missing_day"]["missing_days"] == []
    assert details["table_checks"]["volume"]["median_7d"] == 14


# ------------------------------------------------------------------ bronze batches: fraction, quarantine, late events


def _bronze(line, day=AS_OF, batch="b1", actor="a", event_type="post", subject=None, parent=None, **cells):
    row = {name: None for name in S.BRONZE_EVENTS_SCHEMA.fieldNames()}
    row.update({
        C.EVENT_ID: f"{batch}-{line}", C.NETWORK: "twitter", C.EVENT_TYPE: event_type,
        C.EVENT_TS: datetime(day.year, day.month, day.day, 10), C.ACTOR_ID: actor, C.SUBJECT_ID: subject,
        C.POST_ID: f"p-{batch}-{line}" if event_type in ("post", "reply") else None, C.PARENT_POST_ID: parent,
        C.SOURCE_PATH: f"/dumps/{batch}.jsonl", C.SOURCE_CHECKSUM: f"sha-{batch}", C.SOURCE_LINE: line,
        C.BATCH_ID: batch, C.INGESTED_AT: RUN_TS, C.EVENT_DATE: day,
    })
    row.update(cells)
    return tuple(row[name] for name in S.BRONZE_EVENTS_SCHEMA.fieldNames())


def _land_batch(p: Pipeline, batch: str, rows: list[tuple], *, quarantined_at_ingest: int = 0) -> None:
    """What ingest commits for one file: its bronze rows, its quarantined lines, its ingest_log row."""
    now = datetime.now(UTC)
    p.lake.append(p.spark.createDataFrame(rows, _nullable(S.BRONZE_EVENTS_SCHEMA)), catalog.BRONZE_EVENTS,
                  S.BRONZE_EVENTS_SCHEMA, partition_by=[C.EVENT_DATE])
    if quarantined_at_ingest:
        bad = [("ingest", "malformed_json", "{oops", None, f"/dumps/{batch}.jsonl", f"sha-{batch}", 1000 + i,
                batch, "ingest-run", now) for i in range(quarantined_at_ingest)]
        p.lake.append(p.spark.createDataFrame(bad, S.QUARANTINE_SCHEMA), catalog.QUARANTINE, S.QUARANTINE_SCHEMA)
    total = len(rows) + quarantined_at_ingest
    log_row = [(f"/dumps/{batch}.jsonl", 1, now, f"sha-{batch}", "canonical", batch, total, len(rows),
                quarantined_at_ingest, now)]
    p.lake.append(p.spark.createDataFrame(log_row, S.INGEST_LOG_SCHEMA), catalog.INGEST_LOG, S.INGEST_LOG_SCHEMA)


def test_ingest_quarantine_counts_in_the_batch_fraction_and_reasons_are_queryable(pipeline, spark):
    p = pipeline
    good = [_bronze(i) for i in range(1, 19)]
    bad = [_bronze(50, event_type="retweet"), _bronze(51, actor=None)]
    # 2 failing validation + 2 quarantined at ingest = 4 of 22 rows (18%) > 5%.
    _land_batch(p, "b1", good + bad, quarantined_at_ingest=2)
    with pytest.raises(DataQualityError) as raised:
        stage_validate(p, as_of=AS_OF)
    message = str(raised.value)
    assert "Data quality gate failed for bronze_events" in message
    assert "4 of 22 rows (18.18%) failed row-level expectations or were quarantined at ingest (2 rows)" in message
    assert "--set validate.max_failure_fraction=0.1819" in message and "--allow-bad-data 'REASON'" in message
    assert not p.lake.exists(catalog.SILVER_EVENTS)  # nothing promoted

    q = _new_run(p)
    summary = stage_validate(q, as_of=AS_OF, allow_bad_data="known-bad export")
    assert (summary.rows_in, summary.rows_rejected, summary.rows_quarantined_at_ingest) == (20, 2, 2)
    assert summary.rows_promoted == 18
    (overridden,) = summary.overridden
    assert overridden["check"] == "failure_fraction" and overridden["rows_quarantined_at_ingest"] == 2
    details = json.loads(_validate_row(q).details)
    assert details["overridden"][0]["fraction"] == pytest.approx(4 / 22)
    # The checking time is recorded apart from the promotion (the benchmark's validation_overhead).
    assert 0 < details["validation_seconds"] == summary.validation_seconds

    db = p.lake.database
    reasons = dict(
        spark.sql(f"SELECT reason, count(*) AS n FROM {db}.quarantine GROUP BY reason").collect()
    )
    assert reasons == {
        "malformed_json": 2,
        "expect_column_values_to_be_in_set:event_type": 1,
        "expect_column_values_to_not_be_null:actor_id": 1,
    }
    by_stage = dict(spark.sql(f"SELECT stage, count(*) FROM {db}.quarantine GROUP BY stage").collect())
    assert by_stage == {"ingest": 2, "validate": 2}


def test_late_events_land_in_their_event_date_and_the_rerun_counts_them(pipeline):
    p = pipeline
    day = AS_OF
    first = [_bronze(1, day, "d1", actor="author"),
             *[_bronze(i, day, "d1", actor=f"fan{i}", event_type="like", subject="author", parent="p-d1-1")
               for i in range(2, 5)]]
    _land_batch(p, "d1", first)
    stage_validate(p, as_of=day)
    stage_features(p, day)

    def received_7d():
        row = (p.lake.read(catalog.USER_FEATURES)
               .filter((F.col(C.AS_OF) == day) & (F.col(C.USER_ID) == "author")).first())
        return row["likes_received_7d"]

    assert received_7d() == 3
    # A later dump with two more likes dated `day` (late arrivals) and one repeat of an old event.
    late = [_bronze(i, day, "d2", actor=f"late{i}", event_type="like", subject="author", parent="p-d1-1",
                    **{C.INGESTED_AT: RUN_TS + timedelta(days=2)}) for i in range(1, 3)]
    repeat = _bronze(2, day, "d2", actor="fan2", event_type="like", subject="author", parent="p-d1-1",
                     **{C.EVENT_ID: "d1-2"})
    _land_batch(p, "d2", [*late, repeat])
    q = _new_run(p)
    summary = stage_validate(q, as_of=day)
    assert (summary.rows_in, summary.rows_promoted) == (3, 3)
    silver = p.lake.read(catalog.SILVER_EVENTS)
    assert silver.filter(F.col(C.EVENT_DATE) == day).count() == 6  # 4 + 2 late, the repeat merged away
    stage_features(q, day)
    assert received_7d() == 5
