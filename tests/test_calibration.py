"""Calibration fixed per model_version: the curves, monotonicity, day-over-day stability, and a calibrated rescore."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from klout_spark import calibration, catalog, scoring
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import InputError
from klout_spark.io import Lakehouse
from klout_spark.pipeline import (
    Pipeline,
    load_calibration,
    stage_calibrate,
    stage_features,
    stage_propagate,
    stage_score,
)
from tests.factories import AS_OF, event, events_df, persistent_rdd_ids
from tests.test_scoring import PARAMS, _features, _ranks

CEILINGS = scoring.fixed_ceilings(reach_full_engagers=20000.0, impact_full_ratio=1000.0)
QUANTILES = [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0]


def test_curve_maps_each_reference_quantile_to_its_value_and_is_monotone(spark):
    curve = calibration.curve_from_quantiles(QUANTILES, ceiling=30.0)
    assert curve.knots[0] == (0.0, 0.0) and curve.knots[-1] == (30.0, 100.0)
    for raw, (_, value) in zip(QUANTILES, calibration.REFERENCE_QUANTILES, strict=True):
        assert curve(raw) == pytest.approx(value)
    assert curve(0.5) == pytest.approx(10.0) and curve(-1.0) == 0.0 and curve(1e9) == 100.0
    grid = [i / 4 for i in range(-4, 140)]
    in_spark = [
        r[0] for r in spark.createDataFrame([(x,) for x in grid], "raw double")
        .select(curve.apply(F.col("raw"))).collect()
    ]
    assert in_spark == pytest.approx([curve(x) for x in grid])
    assert all(b >= a for a, b in zip(in_spark, in_spark[1:], strict=False))


def test_tied_quantiles_keep_the_lower_value_so_no_signal_stays_zero():
    curve = calibration.curve_from_quantiles([0.0, 0.0, 0.0, 2.0, 2.0, 4.0, 9.0], ceiling=5.0)
    assert curve(0.0) == 0.0
    assert curve.knots == ((0.0, 0.0), (2.0, 50.0), (4.0, 80.0), (9.0, 90.0), (pytest.approx(9.0), 100.0))


def test_knots_must_increase():
    with pytest.raises(InputError, match="strictly increasing"):
        calibration.Curve(((0.0, 0.0), (0.0, 10.0)))
    with pytest.raises(InputError, match="must not decrease"):
        calibration.Curve(((0.0, 10.0), (1.0, 5.0)))


def _reference(spark, n=2000):
    """Raw signals of ``n`` accounts with skewed reach and impact, like a real population."""
    return spark.range(n).select(
        F.log1p(F.pow(F.col("id") % 997, 1.5)).alias(C.TRUE_REACH),
        (((F.col("id") * 7) % 100) / 100.0).alias(C.AMPLIFICATION),
        F.log1p(F.pow((F.col("id") * 13) % 499, 2.0) / 5000.0).alias(C.NETWORK_IMPACT),
    )


@pytest.fixture(scope="module")
def fitted(spark):
    return calibration.build_calibration(
        _reference(spark), model_version="t", reference_as_of=date(2026, 10, 1), ceilings=CEILINGS,
        weights=PARAMS["weights"],
    )


def test_a_typical_account_lands_around_30_and_90_plus_is_rare(spark, fitted):
    assert fitted.reference_accounts == 2000
    reference = _reference(spark)
    subscores = {c: fitted.curves[c].apply(F.col(c)) for c in calibration.SUB_SCORES}
    score = 1 + 0.99 * fitted.curves[C.SCORE].apply(calibration.combined_subscores(subscores, PARAMS["weights"]))
    row = reference.select(score.alias("s"), *[v.alias(c) for c, v in subscores.items()]).agg(
        F.percentile_approx("s", [0.25, 0.5, 0.9], 10_000).alias("q"),
        F.avg(F.when(F.col("s") >= 90, 1.0).otherwise(0.0)).alias("rare"),
        *[F.percentile_approx(c, 0.5, 10_000).alias(c) for c in subscores],
    ).first()
    q25, median, q90 = row["q"]
    assert 20 <= q25 <= 23 and 29 <= median <= 32 and 49 <= q90 <= 52
    assert row["rare"] <= 0.002
    for c in calibration.SUB_SCORES:
        assert 28 <= row[c] <= 32, c


def test_more_raw_signal_never_lowers_the_score(spark, fitted):
    rows, ranks = [], {}
    for i in range(12):  # each account has at least the signal of the one before, on every input
        rows.append((f"u{i:02d}", 3 * i * i, 10 * i, i, 10 + i, min(10 + i, 2 * i)))
        ranks[f"u{i:02d}"] = 0.001 * (1 + i * i)
    scores = scoring.account_scores(
        _features(spark, rows), _ranks(spark, ranks), spark.createDataFrame([], S.SCORES_SCHEMA),
        AS_OF, **PARAMS, calibration=fitted,
    ).orderBy(C.USER_ID).collect()
    for column in (C.SCORE, C.TRUE_REACH, C.AMPLIFICATION, C.NETWORK_IMPACT):
        values = [r[column] for r in scores]
        assert all(b >= a for a, b in zip(values, values[1:], strict=False)), (column, values)
    assert scores[-1][C.SCORE] > scores[0][C.SCORE]


def test_a_range_of_dates_gets_the_same_calibrated_scores_as_one_date_at_a_time(spark, fitted):
    days = {AS_OF - timedelta(days=1): 1, AS_OF: 3}  # the second day has three times the activity
    features, ranks, one_by_one = [], [], []
    for day, k in days.items():
        rows = [(f"u{i}", k * 4 * i, 50 * i, i, 10 + i, min(10 + i, k * i)) for i in range(6)]
        day_features = _features(spark, rows).withColumn(C.AS_OF, F.lit(day))
        day_ranks = _ranks(spark, {f"u{i}": 0.01 * (1 + k * i) for i in range(6)}).withColumn(C.AS_OF, F.lit(day))
        features.append(day_features)
        ranks.append(day_ranks)
        one_by_one += scoring.account_scores(
            day_features, day_ranks, spark.createDataFrame([], S.SCORES_SCHEMA), day, **PARAMS, calibration=fitted
        ).drop(C.SCORE_DELTA_7D).collect()
    together = scoring.account_scores_by_as_of(
        features[0].unionByName(features[1]), ranks[0].unionByName(ranks[1]), **PARAMS, calibration=fitted
    ).drop(C.SCORE_DELTA_7D)
    key = lambda r: (r[C.AS_OF], r[C.USER_ID])  # noqa: E731
    assert sorted(together.collect(), key=key) == sorted(one_by_one, key=key)
    fixed = scoring.account_scores_by_as_of(
        features[0].unionByName(features[1]), ranks[0].unionByName(ranks[1]), **PARAMS
    ).filter(F.col(C.AS_OF) == AS_OF).orderBy(C.USER_ID).collect()
    calibrated = [r for r in sorted(one_by_one, key=key) if r[C.AS_OF] == AS_OF]
    assert [r[C.SCORE] for r in fixed] != [r[C.SCORE] for r in calibrated]
    assert {r[C.AS_OF] for r in together.collect()} == set(days)


def test_calibration_round_trips_through_its_table_rows(fitted):
    rows = calibration.calibration_rows(fitted, created_at=None, run_id="r")
    names = S.SCORE_CALIBRATION_SCHEMA.fieldNames()
    restored = calibration.calibration_from_rows([dict(zip(names, r, strict=True)) for r in rows], model_version="t")
    assert restored == fitted
    assert calibration.calibration_from_rows([dict(zip(names, r, strict=True)) for r in rows], model_version="x") is None


# --- stability: unchanged activity, unchanged score --------------------------------------------

REFERENCE_DAY = date(2026, 10, 20)


def _world(shift: int, *, burst: bool) -> list[tuple]:
    """Account 'a' and its fans (their events shifted by ``shift`` days) beside a background that is not."""
    rows = []
    fans = [f"f{i}" for i in range(6)]
    for k in range(14):
        day = REFERENCE_DAY - timedelta(days=k) + timedelta(days=shift)
        rows.append(event(f"a-p{k}-{shift}", S.POST, "a", post_id=f"a-p{k}-{shift}", hashtags=["birds"], day=day))
        for i, fan in enumerate(fans):
            kind = S.RESHARE if i < 2 else S.LIKE
            post_id = f"{fan}-r{k}-{shift}" if kind == S.RESHARE else None
            rows.append(event(f"{fan}-e{k}-{shift}", kind, fan, "a", post_id=post_id, parent=f"a-p{k}-{shift}", day=day))
            if k % 2 == i % 2:
                rows.append(event(f"{fan}-p{k}-{shift}", S.POST, fan, post_id=f"{fan}-p{k}-{shift}", day=day))
    background = [f"g{i}" for i in range(8 if burst else 4)]
    for k in range(15):
        day = REFERENCE_DAY + timedelta(days=1) - timedelta(days=k)
        rows.append(event(f"b-p{k}", S.POST, "b0", post_id=f"b-p{k}", day=day))
        for i, g in enumerate(background):
            if i >= 4 and day <= REFERENCE_DAY:
                continue  # the burst of new engagers comes on the last day only
            rows.append(event(f"{g}-e{k}", S.REPLY, g, "b0", post_id=f"{g}-r{k}", parent=f"b-p{k}", day=day))
    return rows


def _scored_world(spark, tmp_path, name, rows, as_of, fitted_rows=None):
    from tests.conftest import test_settings

    settings = test_settings(str(tmp_path / name), f"lake.database=w_{name}")
    p = Pipeline.open(settings)
    p.lake.append(events_df(spark, rows), catalog.SILVER_EVENTS, S.SILVER_EVENTS_SCHEMA, partition_by=[C.EVENT_DATE])
    stage_features(p, as_of)
    stage_propagate(p, as_of)
    if fitted_rows is None:
        stage_calibrate(p, as_of)
    else:
        p.lake.overwrite_key(
            spark.createDataFrame(fitted_rows, S.SCORE_CALIBRATION_SCHEMA), catalog.SCORE_CALIBRATION,
            S.SCORE_CALIBRATION_SCHEMA, column=C.MODEL_VERSION, value=settings.score.model_version,
        )
    stage_score(p, as_of)
    scores = {r.user_id: r for r in p.lake.read(catalog.SCORES).filter(F.col(C.AS_OF) == F.lit(as_of)).collect()}
    return p, scores


@pytest.mark.slow
def test_unchanged_activity_keeps_its_score_within_one_point_day_over_day(spark, tmp_path):
    today = REFERENCE_DAY
    p, first = _scored_world(spark, tmp_path, "d0", _world(0, burst=False), today)
    stored = p.lake.read(catalog.SCORE_CALIBRATION).collect()
    rows = [tuple(r) for r in stored]
    _, second = _scored_world(spark, tmp_path, "d1", _world(1, burst=True), today + timedelta(days=1), rows)
    assert first["a"].true_reach == second["a"].true_reach
    assert first["a"].amplification == second["a"].amplification
    assert abs(first["a"].score - second["a"].score) <= 1.0, (first["a"], second["a"])
    # The world around 'a' did move: b0 drew a burst of new engagers on the second day.
    assert second["b0"].score > first["b0"].score + 1.0


# --- a calibrated rescore of a generated lakehouse -------------------------------------------------


@pytest.fixture(scope="module")
def scored(spark, tmp_path_factory):  # noqa: ARG001 - the session must exist first
    from tests.scored_lake import scored_lake

    return scored_lake(tmp_path_factory)


@pytest.mark.slow
def test_calibrated_rescore_is_consistent_with_explanations_and_persons(scored, tmp_path):
    from tests.scored_lake import copy_lake

    settings = copy_lake(scored, tmp_path / "lake", "score.model_version=v-cal")
    as_of = scored["as_of"]
    p = Pipeline.open(settings)
    assert load_calibration(p) is None
    fitted = stage_calibrate(p, as_of)
    with pytest.raises(InputError, match="calibrated already"):
        stage_calibrate(p, as_of)
    assert load_calibration(p) == fitted
    stage_score(p, as_of)
    lake: Lakehouse = p.lake
    scores = lake.read(catalog.SCORES).filter(F.col(C.AS_OF) == F.lit(as_of))
    assert {r[0] for r in scores.select(C.MODEL_VERSION).distinct().collect()} == {"v-cal"}

    genuine = lake.read(catalog.USER_FEATURES).filter(
        (F.col(C.AS_OF) == F.lit(as_of)) & ~F.col(S.IS_INACTIVE) & ~F.col(S.IS_SPAM_LIKE)
    )
    median = scores.join(genuine, on=[C.NETWORK, C.USER_ID], how="left_semi").agg(
        F.percentile_approx(C.SCORE, 0.5, 10_000)
    ).first()[0]
    assert 25 <= median <= 36  # the reference day itself: a typical account around 30

    explain = lake.read(catalog.SCORE_EXPLAIN).filter(F.col(C.AS_OF) == F.lit(as_of))
    kinds = explain.groupBy(C.NETWORK, C.USER_ID).agg(
        F.max(F.when(F.col(C.CONTRIBUTOR_KIND) == "post", 1).otherwise(0)).alias("has_posts"),
        F.sum(F.when(F.col(C.CONTRIBUTOR_KIND) == "engager", F.col(C.CONTRIBUTION))).alias("engager_share"),
    )
    joined = scores.join(kinds, on=[C.NETWORK, C.USER_ID], how="left").fillna(0, subset=["has_posts"])
    no_evidence_amplification = fitted.curves[C.AMPLIFICATION](settings.score.amplification_prior_rate)
    checks = joined.agg(
        F.count(F.when((F.col("has_posts") == 1) & (F.col(C.TRUE_REACH) <= 0), 1)).alias("posts_without_reach"),
        F.count(F.when(
            (F.col("has_posts") == 0) & (F.col(C.AMPLIFICATION) > no_evidence_amplification + 1e-3), 1
        )).alias("amplified_without_posts"),
        # The top engagers' shares of PageRank inflow: at most all of it (each share is rounded to 1e-6).
        F.count(F.when(F.col("engager_share") > 1 + 1e-5, 1)).alias("shares_above_one"),
        F.count(F.when(F.col("has_posts") == 1, 1)).alias("with_posts"),
    ).first()
    assert checks["with_posts"] > 10
    assert checks["posts_without_reach"] == 0
    assert checks["amplified_without_posts"] == 0
    assert checks["shares_above_one"] == 0
    # Engager explanations exist exactly for the accounts with incoming engagement edges.
    explained = {tuple(r) for r in explain.filter(F.col(C.CONTRIBUTOR_KIND) == "engager")
                 .select(C.NETWORK, C.USER_ID).distinct().collect()}
    engaged = {tuple(r) for r in lake.read(catalog.ENGAGEMENT_EDGES).filter(F.col(C.AS_OF) == F.lit(as_of))
               .select(C.NETWORK, F.col(C.DST)).distinct().collect()}
    assert explained == engaged and len(engaged) > 10

    persons = lake.read(catalog.PERSON_SCORES).filter(F.col(C.AS_OF) == F.lit(as_of))
    expected = (
        scores.join(lake.read(catalog.IDENTITIES), on=[C.NETWORK, C.USER_ID], how="inner")
        .groupBy(C.PERSON_ID).agg(F.max(C.SCORE).alias("best"), F.count(F.lit(1)).alias("n"))
    )
    mismatches = persons.join(expected, on=C.PERSON_ID, how="full_outer").filter(
        F.col("best").isNull() | F.col(C.SCORE).isNull() | (F.col(C.SCORE) != F.col("best"))
        | (F.col("accounts") != F.col("n"))
    )
    assert persons.count() > 0 and mismatches.count() == 0
    assert {r[0] for r in persons.select(C.MODEL_VERSION).distinct().collect()} == {"v-cal"}
    runs = lake.read(catalog.RUNS).filter((F.col(C.RUN_ID) == p.run.run_id) & (F.col(C.STAGE) == "score")).first()
    assert "v-cal (reference" in runs[C.DETAILS]


@pytest.mark.slow
def test_the_score_stage_collects_the_top_engagers_while_it_holds_no_cache(scored, tmp_path, spark, monkeypatch):
    """The driver collects of the edges come before the events window is cached (a 4g driver ran out of heap)."""
    from klout_spark import inflow
    from tests.scored_lake import copy_lake

    p = Pipeline.open(copy_lake(scored, tmp_path / "lake"))
    real_top_shares = inflow.top_shares_by_size
    cached_during_collects = []

    def recorded(*args, **kwargs):
        cached_during_collects.append(persistent_rdd_ids(spark, data_only=True) - before)
        return real_top_shares(*args, **kwargs)

    monkeypatch.setattr(inflow, "top_shares_by_size", recorded)
    before = persistent_rdd_ids(spark, data_only=True)
    stage_score(p, scored["as_of"])
    assert cached_during_collects == [set()]
    explain = p.lake.read(catalog.SCORE_EXPLAIN).filter(F.col(C.AS_OF) == F.lit(scored["as_of"]))
    assert explain.filter(F.col(C.CONTRIBUTOR_KIND) == "engager").count() > 0
