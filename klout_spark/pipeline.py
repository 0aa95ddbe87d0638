"""The stages wired to the lakehouse: read inputs, call the pure transforms, write, log the run.

Each ``stage_*`` function is safe to rerun: it replaces its ``as_of`` slice
atomically (or, for ingest/validate, skips what is committed already).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial, reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from klout_spark import (
    calibration,
    catalog,
    features,
    graph,
    inflow,
    ingest,
    pagerank,
    quality,
    schemas,
    scoring,
    silver,
)
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.config import PropagateSettings, Settings
from klout_spark.errors import InputError, StageOrderError
from klout_spark.io import Lakehouse, check_writable, read_identities_csv, writer_lock
from klout_spark.locks import as_of_lock
from klout_spark.runs import RunContext, code_version, committed_dates, record_stage, record_stage_dates
from klout_spark.session import build_session

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """A session, the lakehouse and the run every stage records into."""

    settings: Settings
    spark: SparkSession
    lake: Lakehouse
    run: RunContext

    @staticmethod
    def open(settings: Settings, *, app_name: str = "klout-spark") -> Pipeline:
        check_writable(settings.lake.root, catalog.TABLES)
        spark = build_session(settings, app_name=app_name)
        lake = Lakehouse(spark, settings.lake.root, settings.lake.database)
        return Pipeline(settings, spark, lake, RunContext.new(settings.config_hash()))


def _writer_lock(p: Pipeline, what: str):
    return writer_lock(p.lake.root, run_id=p.run.run_id, what=what)


def stage_ingest(p: Pipeline, paths: list[str], *, fmt: str | None = None) -> ingest.IngestSummary:
    # No writer lock: concurrent ingests are safe on their own (the ingest_log MERGE
    # commits each file once; see klout_spark.ingest), and any lakehouse URI works.
    with record_stage(p.lake, p.run, "ingest", None) as rec:
        summary = ingest.ingest_files(
            p.lake,
            paths,
            run_id=p.run.run_id,
            fmt=fmt or p.settings.ingest.format,
            max_raw_chars=p.settings.ingest.max_raw_chars,
        )
        rec.rows_in = summary.rows_read
        rec.rows_out = summary.rows_ok
        rec.details = {
            "batch_id": summary.batch_id,
            "files_found": summary.files_found,
            "files_skipped": summary.files_skipped,
            "rows_quarantined": summary.rows_quarantined,
        }
    return summary


def load_identities(p: Pipeline, path: str) -> int:
    """Replace the ``identities`` table with the CSV at ``path`` (person_id, network, user_id)."""
    with record_stage(p.lake, p.run, "identities", None) as rec:
        identities = read_identities_csv(p.spark, path)
        p.lake.ensure(catalog.IDENTITIES, schemas.IDENTITIES_SCHEMA)
        identities.write.format("delta").mode("overwrite").save(p.lake.path(catalog.IDENTITIES))
        rec.rows_out = p.lake.read(catalog.IDENTITIES).count()
    return rec.rows_out


def stage_validate(
    p: Pipeline,
    *,
    as_of: date | None = None,
    allow_bad_data: str | None = None,
    check_dates: Sequence[date] | None = None,
) -> silver.PromoteSummary:
    """Promote pending bronze batches to silver, then run the table-level checks of ``as_of``.

    ``as_of`` defaults to the last day with events (decided after promotion, so a
    new dump counts). A backfill passes ``check_dates`` instead: the checks then
    run for each of them (from one per-day count of ``silver_events``). The bronze failure fraction, the volume of ``as_of`` and the
    missing days stop the run with :class:`DataQualityError`, unless ``allow_bad_data``
    gives a reason: the failures are then warnings, recorded with the reason in the
    validate row of ``runs`` (``message`` and ``details.overridden``).

    Notes
    -----
    Table-level checks read silver as it stands, so a run stopped by them has
    already promoted its batches; the rerun (with the missing dump, or with the
    override) checks the same silver again and promotes nothing twice.
    """
    cfg = p.settings.validate
    results_dir = _results_dir(p)
    reason = allow_bad_data.strip() if allow_bad_data is not None else None
    if allow_bad_data is not None and not reason:
        raise InputError("--allow-bad-data needs a reason (e.g. 'backfill of 2024-05-01, feed outage')")
    with _writer_lock(p, "a validate"), record_stage(p.lake, p.run, "validate", as_of) as rec:
        summary = silver.promote(
            p.lake,
            run_id=p.run.run_id,
            run_ts=p.run.started_at,
            min_event_date=date.fromisoformat(cfg.min_event_date),
            future_tolerance_hours=cfg.future_tolerance_hours,
            max_failure_fraction=cfg.max_failure_fraction,
            results_dir=results_dir,
            profiles_max_failure_fraction=cfg.thresholds[catalog.SILVER_PROFILES],
            allow_bad_data=reason,
            data_docs=cfg.data_docs,
        )
        rec.rows_in = summary.rows_in
        rec.rows_out = summary.rows_promoted
        rec.details = {
            "batches": list(summary.batches),
            "rows_rejected": summary.rows_rejected,
            "rows_quarantined_at_ingest": summary.rows_quarantined_at_ingest,
            "duplicates": summary.duplicates,
            "results_path": summary.results_path,
            "validation_seconds": summary.validation_seconds,
        }
        overridden = list(summary.overridden)
        checks: dict = {}
        if check_dates:
            if p.lake.exists(catalog.SILVER_EVENTS):
                failures, checks = _table_checks_dates(p, check_dates)
                rec.details["table_checks"] = checks
                overridden += quality.enforce(
                    failures, allow_bad_data=reason,
                    context=f"validate for as_of {_span(sorted(check_dates))}, before features",
                )
        elif as_of is None and p.lake.exists(catalog.SILVER_EVENTS):
            as_of = _last_event_date(p.lake)  # None while silver_events is empty
            if as_of is not None:
                log.info("validate: as_of defaults to the last day with events: %s", as_of)
        if as_of is not None and not check_dates:
            rec.as_of = as_of
            if p.lake.exists(catalog.SILVER_EVENTS):
                failures, checks = quality.silver_table_checks(
                    p.lake.read(catalog.SILVER_EVENTS),
                    as_of=as_of,
                    min_volume_ratio=cfg.min_volume_ratio,
                    max_gap_days=cfg.max_gap_days,
                )
                rec.details["table_checks"] = checks
                overridden += quality.enforce(
                    failures, allow_bad_data=reason, context=f"validate for as_of {as_of}, before features"
                )
        if reason is not None:
            rec.details["allow_bad_data"] = reason
            rec.details["overridden"] = overridden
            rec.message = (
                f"--allow-bad-data {reason!r}: overrode "
                + ("; ".join(f"{item['check']}: {item['message']}" for item in overridden) or "nothing (all checks passed)")
            )
    return replace(summary, overridden=tuple(overridden), as_of=as_of, table_checks=checks)


def _table_checks_dates(p: Pipeline, dates: Sequence[date]) -> tuple[list, dict]:
    """The volume and missing-day checks of every date of ``dates`` from one per-day count."""
    cfg = p.settings.validate
    dates = sorted(set(dates))
    lookback = max(quality.VOLUME_HISTORY_DAYS, cfg.max_gap_days) + quality.VOLUME_HISTORY_DAYS
    counts = quality.daily_event_counts(
        p.lake.read(catalog.SILVER_EVENTS), start=dates[0] - timedelta(days=lookback), end=dates[-1]
    )
    failures: list = []
    checks: dict = {}
    for as_of in dates:
        volume, volume_facts = quality.volume_failure(
            counts, as_of=as_of, min_ratio=cfg.min_volume_ratio, table=catalog.SILVER_EVENTS
        )
        gap, gap_facts = quality.missing_day_failure(
            counts, as_of=as_of, max_gap_days=cfg.max_gap_days, table=catalog.SILVER_EVENTS
        )
        failures += [failure for failure in (volume, gap) if failure is not None]
        checks[as_of.isoformat()] = {"volume": volume_facts, "missing_day": gap_facts}
    return failures, checks


def _validated(p: Pipeline, df: DataFrame, validate, table: str) -> None:
    """Run ``validate`` (the ``quality.validate_*`` of ``table``) on a stage's output ``df``.

    Stops the stage (before it writes) when ``df`` fails the suite beyond
    ``validate.thresholds.<table>``.
    """
    outcome = validate(
        df, run_id=p.run.run_id, run_ts=p.run.started_at, results_dir=_results_dir(p),
        data_docs=p.settings.validate.data_docs,
    )
    quality.gate(
        outcome,
        max_failure_fraction=p.settings.validate.thresholds[table],
        table=table,
        threshold_key=f"validate.thresholds.{table}",
    )


def _overwrite_dates(p: Pipeline, df: DataFrame, table: str, schema, dates: Sequence[date]) -> None:
    """Replace the ``as_of`` range ``dates[0]..dates[-1]`` of ``table`` with ``df`` in one commit."""
    p.lake.overwrite_slice(
        df, table, schema, column=C.AS_OF, start=dates[0], end=dates[-1], partition_by=[C.AS_OF],
    )


def _results_dir(p: Pipeline) -> str | None:
    """Where Great Expectations results go: under the lakehouse when it is a local path."""
    root = p.lake.root
    return f"{root}/{p.settings.validate.results_dir}" if "://" not in root else None


def default_as_of(lake: Lakehouse) -> date:
    """The last day with events in ``silver_events``."""
    last = _last_event_date(lake)
    if last is None:
        raise StageOrderError("silver_events is empty: ingest and validate some events first")
    return last


def _last_event_date(lake: Lakehouse) -> date | None:
    """The last day with events in ``silver_events`` (None when it is empty)."""
    return lake.read(catalog.SILVER_EVENTS).agg(F.max(C.EVENT_DATE)).first()[0]


def _silver_window(p: Pipeline, as_of: date, days: int, *, first: date | None = None) -> DataFrame:
    """``silver_events`` of the ``days`` days up to ``as_of`` (from ``days`` before ``first`` when given)."""
    events = p.lake.read(catalog.SILVER_EVENTS)
    start = (first or as_of) - timedelta(days=days - 1)
    return features.events_between(events, start=start, end=as_of)


def consecutive_dates(as_of_dates: Sequence[date]) -> list[date]:
    """``as_of_dates`` sorted, checked to be consecutive days (each stage replaces the range in one commit)."""
    dates = sorted(set(as_of_dates))
    if not dates:
        raise InputError("no dates to compute")
    if (dates[-1] - dates[0]).days != len(dates) - 1:
        raise InputError(f"dates must be consecutive days, got {len(dates)} dates from {dates[0]} to {dates[-1]}")
    return dates


def stage_features(p: Pipeline, as_of: date) -> int:
    """``user_daily`` and ``user_features`` of ``as_of``; returns the number of accounts."""
    return stage_features_dates(p, [as_of])[as_of]


def stage_features_dates(p: Pipeline, as_of_dates: Sequence[date]) -> dict[date, int]:
    """``user_daily`` and ``user_features`` for consecutive dates in one pass; accounts per date.

    ``user_daily`` is computed once for the 90 days before the first date up to
    the last; the window features of every date come from it in one job, and
    each table is replaced over the whole range in one commit.
    """
    dates = consecutive_dates(as_of_dates)
    first, last = dates[0], dates[-1]
    cfg = p.settings.features
    with record_stage_dates(p.lake, p.run, "features", dates) as records:
        window_start = first - timedelta(days=features.LONGEST_WINDOW - 1)
        events = _silver_window(p, last, features.LONGEST_WINDOW, first=first).persist()
        try:
            daily = features.user_daily(events)
            p.lake.overwrite_slice(
                daily, catalog.USER_DAILY, S.USER_DAILY_SCHEMA,
                column=C.EVENT_DATE, start=window_start, end=last, partition_by=[C.EVENT_DATE],
            )
            stored_daily = p.lake.read(catalog.USER_DAILY).filter(
                F.col(C.EVENT_DATE).between(F.lit(window_start), F.lit(last))
            )
            profiles = p.lake.read_or_empty(catalog.SILVER_PROFILES, S.SILVER_PROFILES_SCHEMA)
            # The flagged rows feed both the engagers' flags and the result: cached so that their
            # windows are computed once, and released once the result is cached (validation fills it).
            flagged = features.flagged_features_by_as_of(
                p.spark,
                stored_daily,
                profiles,
                dates,
                half_life_days=cfg.half_life_days,
                inactive_days=cfg.inactive_days,
                spam_max_engagements_per_day=cfg.spam_max_engagements_per_day,
                spam_max_follows_30d=cfg.spam_max_follows_30d,
                spam_min_follow_back=cfg.spam_min_follow_back,
                spam_min_output_30d=cfg.spam_min_output_30d,
                spam_max_response_rate=cfg.spam_max_response_rate,
                new_account_days=cfg.new_account_days,
            ).persist()
            result = features.with_genuine_engagement(
                flagged,
                events,
                dates,
                half_life_days=cfg.half_life_days,
                boost_min_follows_30d=cfg.boost_min_follows_30d,
                boost_max_follows_per_engager=cfg.boost_max_follows_per_engager,
            ).persist()
            try:
                _validated(p, result, quality.validate_user_features, catalog.USER_FEATURES)
                flagged.unpersist()
                _overwrite_dates(p, result, catalog.USER_FEATURES, S.USER_FEATURES_SCHEMA, dates)
                # The rows just written, counted from the cache (a row per date).
                counts = (
                    result.groupBy(C.AS_OF)
                    .agg(
                        F.count(F.lit(1)).alias("accounts"),
                        F.count(F.when(F.col(S.IS_SPAM_LIKE), 1)).alias("spam_like"),
                        F.count(F.when(F.col(S.IS_INACTIVE), 1)).alias("inactive"),
                    )
                    .collect()
                )
            finally:
                result.unpersist()
                flagged.unpersist()
        finally:
            events.unpersist()
        by_date = {row[C.AS_OF]: row for row in counts}
        for as_of, rec in records.items():
            row = by_date.get(as_of)
            rec.rows_out = row["accounts"] if row else 0
            rec.details = {"spam_like": row["spam_like"] if row else 0, "inactive": row["inactive"] if row else 0}
    return {as_of: rec.rows_out for as_of, rec in records.items()}


def _slice(p: Pipeline, table: str, as_of: date) -> DataFrame:
    return p.lake.read(table).filter(F.col(C.AS_OF) == F.lit(as_of))


def _range(p: Pipeline, table: str, dates: Sequence[date]) -> DataFrame:
    return p.lake.read(table).filter(F.col(C.AS_OF).between(F.lit(min(dates)), F.lit(max(dates))))


def _require_range(p: Pipeline, table: str, dates: Sequence[date], needed_by: str) -> DataFrame:
    rows = _range(p, table, dates)
    present = {row[0] for row in rows.select(C.AS_OF).distinct().collect()}
    missing = [d for d in dates if d not in present]
    if missing:
        raise StageOrderError(
            f"{needed_by} for as_of {missing[0]} needs {p.lake.database}.{table} for that date; "
            f"run the stage that writes it first (or `klout-spark run --as-of {missing[0]}`)"
        )
    return rows


def stage_propagate(p: Pipeline, as_of: date) -> pagerank.PageRankResult:
    """``engagement_edges`` and ``network_rank`` of ``as_of``; returns the PageRank result."""
    return stage_propagate_dates(p, [as_of])[as_of]


def stage_propagate_dates(p: Pipeline, as_of_dates: Sequence[date]) -> dict[date, pagerank.PageRankResult]:
    """``engagement_edges`` and ``network_rank`` for consecutive dates.

    The edges of every date are built in one job and written in one commit;
    PageRank then solves each date's graph (see :func:`_pagerank_by_date`) on
    the edges as stored, and all ranks are checked and written in one commit.
    """
    dates = consecutive_dates(as_of_dates)
    first, last = dates[0], dates[-1]
    cfg = p.settings.propagate
    with record_stage_dates(p.lake, p.run, "propagate", dates) as records:
        user_features = _require_range(p, catalog.USER_FEATURES, dates, "propagate")
        events = _silver_window(p, last, cfg.window_days, first=first)
        edges = graph.engagement_edges_by_as_of(
            events,
            features.genuine_flags(user_features),
            dates,
            window_days=cfg.window_days,
            half_life_days=cfg.half_life_days,
            type_weights=cfg.type_weights,
            reciprocal_discount=cfg.reciprocal_discount,
        )
        _overwrite_dates(p, edges, catalog.ENGAGEMENT_EDGES, S.ENGAGEMENT_EDGES_SCHEMA, dates)
        stored_edges = _range(p, catalog.ENGAGEMENT_EDGES, dates).select(
            C.AS_OF,
            graph.node_key(F.col(C.NETWORK), F.col(C.SRC)).alias(C.SRC),
            graph.node_key(F.col(C.NETWORK), F.col(C.DST)).alias(C.DST),
            C.WEIGHT,
        )
        trust = graph.trust_vector(
            user_features, flagged_trust=cfg.flagged_trust, full_age_days=cfg.trust_full_age_days
        ).persist()
        teleport = trust.select(
            C.AS_OF, graph.node_key(F.col(C.NETWORK), F.col(C.USER_ID)).alias(C.NODE), C.TRUST
        )
        # Not cached: the table is partitioned by as_of, so the count and each date's read
        # (when the dates are solved one by one) prune to their partitions. With every date's
        # edges cached (about 90M rows for a 30-date backfill at L), the driver's PageRank
        # collects of single dates failed in local mode (TaskResultLost; OutOfMemoryError).
        try:
            results, all_ranks = _pagerank_by_date(stored_edges, teleport, dates, cfg)
            network, user_id = graph.split_node_key(F.col(C.NODE))
            ranks = (
                all_ranks.select(C.AS_OF, network, user_id, C.PAGERANK)
                .join(trust, on=[C.AS_OF, C.NETWORK, C.USER_ID], how="left")
                .fillna(0.0, subset=[C.TRUST])
            ).persist()
            try:
                _validated(p, ranks, quality.validate_network_rank, catalog.NETWORK_RANK)
                # Not overridable: a mass that is not 1 is a propagation bug, not bad input.
                quality.enforce(
                    quality.rank_mass_failures(ranks, tolerance=p.settings.validate.rank_mass_tolerance),
                    allow_bad_data=None,
                    context=f"propagate for as_of {_span(dates)}, before writing {catalog.NETWORK_RANK}",
                )
                _overwrite_dates(p, ranks, catalog.NETWORK_RANK, S.NETWORK_RANK_SCHEMA, dates)
            finally:
                ranks.unpersist()
        finally:
            trust.unpersist()
        for as_of, result in results.items():
            if not result.converged:
                log.warning(
                    "propagate %s: PageRank stopped at max_iter=%d with residual %.3e > tol=%.1e",
                    as_of, cfg.max_iter, result.residuals[-1], cfg.tol,
                )
            rec = records[as_of]
            rec.rows_in = result.edge_count
            rec.rows_out = result.node_count
            rec.iterations = result.iterations
            rec.residuals = list(result.residuals)
            rec.residual = result.residuals[-1] if result.residuals else None
            rec.details = {"method": result.method, "converged": result.converged}
    return results


def _pagerank_by_date(
    edges: DataFrame, teleport: DataFrame, dates: Sequence[date], cfg: PropagateSettings
) -> tuple[dict[date, pagerank.PageRankResult], DataFrame]:
    """PageRank of each date's graph; the results and all ranks (``as_of``, ``node``, ``pagerank``).

    When the local path applies to all dates together (``method`` local, or
    auto with at most ``local_max_edges`` edge rows in all), every graph is
    solved in one pass (:func:`klout_spark.pagerank.pagerank_local_by_key`);
    with ``method`` distributed, too
    (:func:`klout_spark.pagerank.pagerank_distributed_by_key`); otherwise
    (auto, too many edges for one local pass) each date on its own, local or
    distributed by its own size.
    """
    local = cfg.method == "local" or (cfg.method == "auto" and edges.count() <= cfg.local_max_edges)
    if local or cfg.method == "distributed":
        solve = (
            pagerank.pagerank_local_by_key
            if local
            else partial(pagerank.pagerank_distributed_by_key, checkpoint_every=cfg.checkpoint_every)
        )
        keyed = solve(edges, teleport, key=C.AS_OF, damping=cfg.damping, tol=cfg.tol, max_iter=cfg.max_iter)
        missing = [as_of for as_of in dates if as_of not in keyed.results]
        if missing:
            raise ValueError(f"propagate: no node with positive trust on {_span(missing)}")
        return {as_of: keyed.results[as_of] for as_of in dates}, keyed.ranks
    results = {
        as_of: pagerank.pagerank(
            edges.filter(F.col(C.AS_OF) == F.lit(as_of)).drop(C.AS_OF),
            teleport.filter(F.col(C.AS_OF) == F.lit(as_of)).drop(C.AS_OF),
            damping=cfg.damping,
            tol=cfg.tol,
            max_iter=cfg.max_iter,
            method=cfg.method,
            local_max_edges=cfg.local_max_edges,
            checkpoint_every=cfg.checkpoint_every,
        )
        for as_of in dates
    }
    per_date = [result.ranks.select(F.lit(as_of).alias(C.AS_OF), C.NODE, C.PAGERANK) for as_of, result in results.items()]
    return results, reduce(DataFrame.unionByName, per_date)


def _span(dates: Sequence[date]) -> str:
    return str(dates[0]) if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"


def load_calibration(p: Pipeline) -> calibration.Calibration | None:
    """The stored calibration of ``score.model_version``, or None (then scoring uses the fixed curves)."""
    if not p.lake.exists(catalog.SCORE_CALIBRATION):
        return None
    model_version = p.settings.score.model_version
    # A few dozen knots per model_version: a bounded collect.
    rows = p.lake.read(catalog.SCORE_CALIBRATION).filter(F.col(C.MODEL_VERSION) == model_version).collect()
    return calibration.calibration_from_rows(rows, model_version=model_version)


def stage_calibrate(p: Pipeline, as_of: date, *, replace: bool = False) -> calibration.Calibration:
    """Fit the calibration of ``score.model_version`` on ``as_of`` and store it in ``score_calibration``.

    Raises
    ------
    InputError
        The model_version has a calibration already and ``replace`` is false: a
        calibration is fixed per model_version.
    """
    cfg = p.settings.score
    with _writer_lock(p, "a calibrate"), record_stage(p.lake, p.run, "calibrate", as_of) as rec:
        existing = load_calibration(p)
        if existing is not None and not replace:
            raise InputError(
                f"score.model_version {cfg.model_version!r} is calibrated already (reference date "
                f"{existing.reference_as_of}); a calibration is fixed per model_version: set a new "
                "score.model_version, or pass --replace to refit this one (stored scores are not rewritten)"
            )
        raw = scoring.raw_signals(
            _require_range(p, catalog.USER_FEATURES, [as_of], "calibrate"),
            _require_range(p, catalog.NETWORK_RANK, [as_of], "calibrate"),
            reach_followers_weight=cfg.reach_followers_weight,
            reach_listed_weight=cfg.reach_listed_weight,
            reach_mutual_weight=cfg.reach_mutual_weight,
            amplification_prior_posts=cfg.amplification_prior_posts,
            amplification_prior_rate=cfg.amplification_prior_rate,
        ).filter(F.col(S.IS_GENUINE))
        fitted = calibration.build_calibration(
            raw,
            model_version=cfg.model_version,
            reference_as_of=as_of,
            ceilings=scoring.fixed_ceilings(
                reach_full_engagers=cfg.reach_full_engagers, impact_full_ratio=cfg.impact_full_ratio
            ),
            weights=(cfg.weights.true_reach, cfg.weights.amplification, cfg.weights.network_impact),
        )
        rows = calibration.calibration_rows(fitted, created_at=p.run.started_at, run_id=p.run.run_id)
        p.lake.overwrite_key(
            p.spark.createDataFrame(rows, S.SCORE_CALIBRATION_SCHEMA),
            catalog.SCORE_CALIBRATION, S.SCORE_CALIBRATION_SCHEMA,
            column=C.MODEL_VERSION, value=cfg.model_version,
        )
        rec.rows_in = fitted.reference_accounts
        rec.rows_out = len(rows)
        rec.details = {"model_version": cfg.model_version, "replaced": existing is not None}
    return fitted


def stage_score(p: Pipeline, as_of: date) -> int:
    """``scores``, ``score_topics``, ``score_explain`` (and ``person_scores``) of ``as_of``; returns accounts."""
    return stage_score_dates(p, [as_of])[as_of]


def stage_score_dates(p: Pipeline, as_of_dates: Sequence[date]) -> dict[date, int]:
    """Scores, topics, explanations (and person scores) for consecutive dates, one commit per table.

    ``score_delta_7d`` reads the stored scores of dates outside the range and
    the new scores of dates inside it, so a range gives what day-by-day runs give.
    """
    dates = consecutive_dates(as_of_dates)
    first, last = dates[0], dates[-1]
    cfg = p.settings.score
    with record_stage_dates(p.lake, p.run, "score", dates) as records:
        # One calibration for the whole range: the stored one of score.model_version, or the fixed curves.
        stored_calibration = load_calibration(p)
        used = (
            f"{cfg.model_version} (reference {stored_calibration.reference_as_of})"
            if stored_calibration is not None else "fixed curves"
        )
        for rec in records.values():
            rec.details = {**(rec.details or {}), "calibration": used}
        user_features = _require_range(p, catalog.USER_FEATURES, dates, "score")
        ranks = _require_range(p, catalog.NETWORK_RANK, dates, "score")
        edges = _range(p, catalog.ENGAGEMENT_EDGES, dates)
        stored = p.lake.read_or_empty(catalog.SCORES, S.SCORES_SCHEMA)
        flags = features.genuine_flags(user_features)
        fresh = scoring.account_scores_by_as_of(
            user_features,
            ranks,
            weights=(cfg.weights.true_reach, cfg.weights.amplification, cfg.weights.network_impact),
            reach_followers_weight=cfg.reach_followers_weight,
            reach_listed_weight=cfg.reach_listed_weight,
            reach_mutual_weight=cfg.reach_mutual_weight,
            reach_full_engagers=cfg.reach_full_engagers,
            amplification_prior_posts=cfg.amplification_prior_posts,
            amplification_prior_rate=cfg.amplification_prior_rate,
            impact_full_ratio=cfg.impact_full_ratio,
            model_version=cfg.model_version,
            run_id=p.run.run_id,
            calibration=stored_calibration,
        ).persist()
        history = stored.filter(~F.col(C.AS_OF).between(F.lit(first), F.lit(last))).unionByName(fresh)
        scores = scoring.with_score_delta_7d(fresh, history).persist()
        try:
            _validated(p, scores, quality.validate_scores, catalog.SCORES)
            # The rows to write, counted from the cache (a row per date) before the write: `scores`
            # reads the scores table, so the commit drops its cached rows (Delta re-caches by path).
            counts = {row[C.AS_OF]: row["n"] for row in scores.groupBy(C.AS_OF).agg(F.count(F.lit(1)).alias("n")).collect()}
            _overwrite_dates(p, scores, catalog.SCORES, S.SCORES_SCHEMA, dates)
        finally:
            scores.unpersist()
            fresh.unpersist()
        # The top engagers first: their edges are collected to the driver now, while nothing is
        # cached. With the events window below in the cache, a 30-date backfill at L ran the 4g
        # local driver out of heap in such a collect (OutOfMemoryError, group 5 of 16).
        engagers = inflow.top_shares_by_size(
            edges, ranks,
            damping=p.settings.propagate.damping,
            top_k=cfg.explain_top_k,
            driver_max_edges=cfg.explain_driver_max_edges,
        )
        # Topics and explanations both read this window: one scan of silver_events.
        events = _silver_window(p, last, p.settings.propagate.window_days, first=first).persist()
        try:
            topics = scoring.score_topics_by_as_of(
                events,
                flags,
                dates,
                window_days=p.settings.propagate.window_days,
                min_posts=cfg.topic_min_posts,
                min_engagers=cfg.topic_min_engagers,
                max_per_user=cfg.topic_max_per_user,
                full_engagers=cfg.reach_full_engagers,
                run_id=p.run.run_id,
            )
            _overwrite_dates(p, topics, catalog.SCORE_TOPICS, S.SCORE_TOPICS_SCHEMA, dates)
            explain = scoring.score_explain_by_as_of(
                engagers, events, flags, dates, top_k=cfg.explain_top_k, run_id=p.run.run_id
            )
            _overwrite_dates(p, explain, catalog.SCORE_EXPLAIN, S.SCORE_EXPLAIN_SCHEMA, dates)
        finally:
            events.unpersist()
        if p.lake.exists(catalog.IDENTITIES):
            persons = scoring.person_scores(
                _range(p, catalog.SCORES, dates), p.lake.read(catalog.IDENTITIES),
                model_version=cfg.model_version, run_id=p.run.run_id,
            )
            _overwrite_dates(p, persons, catalog.PERSON_SCORES, S.PERSON_SCORES_SCHEMA, dates)
        for as_of, rec in records.items():
            rec.rows_out = counts.get(as_of, 0)
    return {as_of: rec.rows_out for as_of, rec in records.items()}


@dataclass(frozen=True)
class RunSummary:
    as_of: date
    ingest: ingest.IngestSummary | None
    validate: silver.PromoteSummary
    accounts: int
    propagation: pagerank.PageRankResult
    scored: int


def run_daily(
    p: Pipeline,
    *,
    as_of: date | None,
    inputs: list[str],
    identities: str | None = None,
    allow_bad_data: str | None = None,
) -> RunSummary:
    """Ingest ``inputs`` (if any), then validate, features, propagate and score ``as_of``.

    ``as_of`` defaults to the last day with events in ``silver_events`` (decided by
    validate, which runs the table-level checks of that day before any feature is
    computed). ``allow_bad_data`` (a reason) turns those checks' failures into
    warnings recorded in ``runs``.
    """
    if as_of is not None and as_of > date.today() + timedelta(days=1):
        raise InputError(f"as_of {as_of} is in the future")
    with _writer_lock(p, f"as_of {as_of or '(the last day with events)'}"):
        return _run_daily_locked(p, as_of=as_of, inputs=inputs, identities=identities, allow_bad_data=allow_bad_data)


def _run_daily_locked(
    p: Pipeline, *, as_of: date | None, inputs: list[str], identities: str | None, allow_bad_data: str | None
) -> RunSummary:
    ingested = stage_ingest(p, inputs) if inputs else None
    if identities:
        load_identities(p, identities)
    validated = stage_validate(p, as_of=as_of, allow_bad_data=allow_bad_data)
    if validated.as_of is None:
        raise StageOrderError("silver_events is empty: ingest and validate some events first")
    as_of = validated.as_of
    if as_of > date.today() + timedelta(days=1):
        raise InputError(f"as_of {as_of} is in the future")
    with as_of_lock(p.lake, p.run.run_id, [as_of], ttl_minutes=p.settings.run.lock_ttl_minutes):
        accounts = stage_features(p, as_of)
        propagation = stage_propagate(p, as_of)
        scored = stage_score(p, as_of)
    return RunSummary(as_of, ingested, validated, accounts, propagation, scored)


@dataclass(frozen=True)
class BackfillSummary:
    start: date
    end: date
    computed: tuple[date, ...]
    skipped: tuple[date, ...]
    chunks: tuple[tuple[date, date], ...]
    ingest: ingest.IngestSummary | None


def pending_chunks(dates: Sequence[date], *, chunk_days: int) -> list[list[date]]:
    """Split sorted ``dates`` into runs of consecutive days, each at most ``chunk_days`` long."""
    chunks: list[list[date]] = []
    for as_of in sorted(set(dates)):
        current = chunks[-1] if chunks else None
        if current and (as_of - current[-1]).days == 1 and len(current) < chunk_days:
            current.append(as_of)
        else:
            chunks.append([as_of])
    return chunks


def backfill(
    p: Pipeline,
    *,
    start: date,
    end: date,
    force: bool = False,
    inputs: Sequence[str] = (),
    allow_bad_data: str | None = None,
) -> BackfillSummary:
    """Compute every ``as_of`` from ``start`` to ``end`` (inclusive), in ascending order.

    Idempotent and resumable: a date whose tables were last written by a
    complete run with the same config hash and code version is skipped (see
    :func:`klout_spark.runs.committed_dates`), unless ``force``. The pending dates
    are cut into chunks of at most ``run.backfill_chunk_days`` consecutive days;
    per chunk, ``user_daily`` and the window features are computed once, the
    edges and scores of all its dates in one job each, PageRank of all its
    dates in one pass where the local path fits, and each table is replaced
    over the chunk in one commit, under the chunk's date locks. Chunks go in
    date order, so ``score_delta_7d`` sees the scores of 7 days before exactly
    as day-by-day runs would.
    """
    if start > end:
        raise InputError(f"backfill: --start {start} is after --end {end}")
    if end > date.today() + timedelta(days=1):
        raise InputError(f"backfill: --end {end} is in the future")
    ingested = stage_ingest(p, list(inputs)) if inputs else None
    dates = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    done = set() if force else committed_dates(
        p.lake, dates, config_hash=p.run.config_hash, version=code_version()
    )
    pending = [d for d in dates if d not in done]
    if done:
        log.info("backfill: %d of %d dates already committed with this config and code; skipping them", len(done), len(dates))
    chunks = pending_chunks(pending, chunk_days=p.settings.run.backfill_chunk_days)
    if pending or inputs:
        # Promotes what was ingested (also when every date is committed) and checks the pending dates.
        stage_validate(p, allow_bad_data=allow_bad_data, check_dates=pending or None)
    for chunk in chunks:
        log.info("backfill: computing %s (%d dates)", _span(chunk), len(chunk))
        with as_of_lock(p.lake, p.run.run_id, chunk, ttl_minutes=p.settings.run.lock_ttl_minutes):
            stage_features_dates(p, chunk)
            stage_propagate_dates(p, chunk)
            stage_score_dates(p, chunk)
    return BackfillSummary(
        start=start,
        end=end,
        computed=tuple(pending),
        skipped=tuple(sorted(done)),
        chunks=tuple((c[0], c[-1]) for c in chunks),
        ingest=ingested,
    )


def top_scores(p: Pipeline, as_of: date, n: int) -> list:
    """The ``n`` best scores of ``as_of`` across networks (a small, bounded collect)."""
    return (
        _slice(p, catalog.SCORES, as_of)
        .orderBy(F.col(C.SCORE).desc(), C.NETWORK, C.USER_ID)
        .select(C.RANK, C.NETWORK, C.USER_ID, C.SCORE, C.TRUE_REACH, C.AMPLIFICATION, C.NETWORK_IMPACT)
        .limit(n)
        .collect()
    )
