"""Stage 2 core: promote committed bronze batches into ``silver_events`` / ``silver_profiles``.

A batch is pending while it is in ``ingest_log`` (committed) but not in
``silver_batches``. Its rows (those of the files ``ingest_log`` commits under
that batch id) are checked by the Great Expectations suite
(:mod:`klout_spark.quality`); failing rows go to ``quarantine`` with the
expectation's name, passing rows are MERGEd on ``event_id`` (overlapping dumps
and reruns never duplicate), and the batch is recorded in ``silver_batches``
last, as the commit point. A crash before that point is repaired by the next
run: the MERGE inserts nothing twice and the quarantine rows are replaced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog, quality, schemas
from klout_spark import columns as C
from klout_spark.ingest import only_committed
from klout_spark.io import Lakehouse

log = logging.getLogger(__name__)

VALIDATE_STAGE = "validate"
# Repeated event ids of a batch up to this many are fetched to the driver and broadcast to pick their
# rows out (a few MiB); a batch with more is deduplicated by one window over all its rows.
DEDUP_BROADCAST_MAX_IDS = 100_000


@dataclass(frozen=True)
class PromoteSummary:
    """What validate did: the batches promoted, the counts, and (set by the stage) the table-level checks.

    ``overridden`` lists the failures let through by ``--allow-bad-data`` (as dicts);
    ``as_of`` and ``table_checks`` are filled in by :func:`klout_spark.pipeline.stage_validate`.
    ``validation_seconds`` is the time spent checking the batch against its suites
    (bronze events and profiles), out of the whole promotion.
    """

    batches: tuple[str, ...]
    rows_in: int
    rows_rejected: int
    rows_promoted: int
    duplicates: int
    results_path: str | None
    expectations: tuple[dict, ...]
    rows_quarantined_at_ingest: int = 0
    overridden: tuple[dict, ...] = ()
    as_of: date | None = None
    table_checks: dict = field(default_factory=dict)
    validation_seconds: float = 0.0


def pending_batches(lake: Lakehouse) -> list[str]:
    """Committed ingest batches not promoted to silver yet (one id per ingest run: a short list)."""
    if not lake.exists(catalog.INGEST_LOG):
        return []
    committed = lake.read(catalog.INGEST_LOG).select(C.BATCH_ID).distinct()
    if lake.exists(catalog.SILVER_BATCHES):
        promoted = lake.read(catalog.SILVER_BATCHES).select(C.BATCH_ID)
        committed = committed.join(promoted, on=C.BATCH_ID, how="left_anti")
    return sorted(r[0] for r in committed.collect())


def first_per_event_id(events: DataFrame, *, broadcast_max_ids: int = DEDUP_BROADCAST_MAX_IDS) -> DataFrame:
    """Keep one row per ``event_id``: the earliest ingested (file, line) wins, deterministically.

    Most batches hold each id once, and a window over every row would shuffle and
    sort whole rows to find that out. So the ids seen more than once are found
    first, from the ids alone, and rows of the other ids pass untouched. Up to
    ``broadcast_max_ids`` repeated ids are fetched (a size-guarded collect) and
    broadcast, and only their rows go through the window; past that, every row
    does. ``events`` is read again by the result: callers pass a cached frame.
    """
    repeated = events.groupBy(C.EVENT_ID).count().filter(F.col("count") > 1).select(C.EVENT_ID)
    ids = [row[0] for row in repeated.limit(broadcast_max_ids + 1).collect()]
    if not ids:
        return events
    earliest = Window.partitionBy(C.EVENT_ID).orderBy(C.INGESTED_AT, C.SOURCE_CHECKSUM, C.SOURCE_LINE)
    if len(ids) > broadcast_max_ids:
        return _first_in_window(events, earliest)
    schema = T.StructType([events.schema[C.EVENT_ID]])
    repeated_ids = F.broadcast(events.sparkSession.createDataFrame([(i,) for i in ids], schema))
    once = events.join(repeated_ids, on=C.EVENT_ID, how="left_anti")
    more_than_once = events.join(repeated_ids, on=C.EVENT_ID, how="left_semi")
    return once.unionByName(_first_in_window(more_than_once, earliest))


def _first_in_window(events: DataFrame, earliest: Window) -> DataFrame:
    return events.withColumn("_n", F.row_number().over(earliest)).filter(F.col("_n") == 1).drop("_n")


def profiles_from_events(events: DataFrame) -> DataFrame:
    """Profile snapshot rows (``event_type = 'profile'``) as ``SILVER_PROFILES_SCHEMA``."""
    return events.filter(F.col(C.EVENT_TYPE) == schemas.PROFILE).select(
        C.NETWORK,
        F.col(C.ACTOR_ID).alias(C.USER_ID),
        F.col(C.EVENT_TS).alias(C.SNAPSHOT_TS),
        C.FOLLOWERS_COUNT,
        C.FOLLOWING_COUNT,
        C.LISTED_COUNT,
        C.POSTS_COUNT,
        C.ACCOUNT_CREATED_AT,
        C.VERIFIED,
        C.EVENT_ID,
        C.BATCH_ID,
    )


def promote(
    lake: Lakehouse,
    *,
    run_id: str,
    run_ts: datetime,
    min_event_date: date,
    future_tolerance_hours: float,
    max_failure_fraction: float,
    results_dir: str | None,
    profiles_max_failure_fraction: float = 0.0,
    allow_bad_data: str | None = None,
    data_docs: bool = True,
) -> PromoteSummary:
    """Validate and promote every pending batch; raise ``DataQualityError`` over the threshold.

    The fraction gated is that of the whole batch as read: rows failing the bronze
    suite plus the rows of the same batches quarantined at ingest (``ingest_log``).
    With ``allow_bad_data`` (a reason) a fraction over the threshold is let through
    and returned in ``overridden``; failing rows still go to quarantine.
    """
    batches = pending_batches(lake)
    if not batches:
        log.info("validate: no pending batches")
        return PromoteSummary((), 0, 0, 0, 0, None, ())
    at_ingest = quarantined_at_ingest(lake, batches)
    # Only the committed (batch, file) pairs: rows of crashed or out-raced ingest attempts stay behind.
    committed = lake.read(catalog.INGEST_LOG).filter(F.col(C.BATCH_ID).isin(batches))
    bronze = only_committed(
        lake.read(catalog.BRONZE_EVENTS).filter(F.col(C.BATCH_ID).isin(batches)), committed
    ).persist()
    try:
        bronze.count()  # read the batch into the cache once: promotion needs it, checking or not
        outcome = quality.validate_bronze_events(
            bronze,
            run_id=run_id,
            run_ts=run_ts,
            min_event_date=min_event_date,
            future_tolerance_hours=future_tolerance_hours,
            results_dir=results_dir,
            data_docs=data_docs,
        )
        overridden = quality.gate(
            outcome, max_failure_fraction=max_failure_fraction, table=catalog.BRONZE_EVENTS,
            upstream_rejected=at_ingest, allow_bad_data=allow_bad_data,
        )
        valid = first_per_event_id(outcome.valid).persist()
        try:
            profiles = profiles_from_events(valid)
            # A GE run (and a MERGE) costs seconds even on no rows: batches without
            # profile snapshots skip both.
            has_profiles = profiles.limit(1).count() > 0
            validation_seconds = outcome.seconds
            if has_profiles:
                profile_outcome = quality.validate_silver_profiles(
                    profiles, run_id=run_id, run_ts=run_ts, results_dir=results_dir, data_docs=data_docs
                )
                validation_seconds += profile_outcome.seconds
                quality.gate(
                    profile_outcome, max_failure_fraction=profiles_max_failure_fraction,
                    table=catalog.SILVER_PROFILES, threshold_key="validate.thresholds.silver_profiles",
                )
            _quarantine(lake, outcome.rejected, batches, run_id=run_id)
            promoted = valid.count()
            events = valid.filter(F.col(C.EVENT_TYPE) != schemas.PROFILE)
            lake.merge_new(
                events, catalog.SILVER_EVENTS, schemas.SILVER_EVENTS_SCHEMA,
                keys=[C.EVENT_ID], partition_by=[C.EVENT_DATE],
            )
            if has_profiles:
                lake.merge_new(
                    profiles, catalog.SILVER_PROFILES, schemas.SILVER_PROFILES_SCHEMA, keys=[C.EVENT_ID]
                )
            else:
                lake.ensure(catalog.SILVER_PROFILES, schemas.SILVER_PROFILES_SCHEMA)
        finally:
            valid.unpersist()
        _record_batches(lake, outcome.valid, outcome.rejected, batches, run_id=run_id)
    finally:
        bronze.unpersist()
    duplicates = outcome.rows_in - outcome.rows_rejected - promoted
    return PromoteSummary(
        batches=tuple(batches),
        rows_in=outcome.rows_in,
        rows_rejected=outcome.rows_rejected,
        rows_promoted=promoted,
        duplicates=duplicates,
        results_path=outcome.results_path,
        expectations=tuple({"name": name, **entry} for name, entry in outcome.summary.items()),
        rows_quarantined_at_ingest=at_ingest,
        overridden=({**overridden.to_dict(), "override_reason": allow_bad_data},) if overridden is not None else (),
        validation_seconds=round(validation_seconds, 3),
    )


def quarantined_at_ingest(lake: Lakehouse, batches: list[str]) -> int:
    """Rows of ``batches`` quarantined by ingest (unparseable records): one aggregate over ``ingest_log``."""
    if not lake.exists(catalog.INGEST_LOG):
        return 0
    total = (
        lake.read(catalog.INGEST_LOG)
        .filter(F.col(C.BATCH_ID).isin(batches))
        .agg(F.sum(C.ROWS_QUARANTINED))
        .first()[0]
    )
    return int(total or 0)


def _quarantine(lake: Lakehouse, rejected: DataFrame, batches: list[str], *, run_id: str) -> None:
    lake.delete(catalog.QUARANTINE, (F.col(C.STAGE) == VALIDATE_STAGE) & F.col(C.BATCH_ID).isin(batches))
    canonical = [f.name for f in schemas.CANONICAL_EVENT_SCHEMA.fields]
    rows = rejected.select(
        F.lit(VALIDATE_STAGE).alias(C.STAGE),
        C.REASON,
        F.to_json(F.struct(*canonical)).alias(C.RAW),
        C.EVENT_ID,
        C.SOURCE_PATH,
        C.SOURCE_CHECKSUM,
        C.SOURCE_LINE,
        C.BATCH_ID,
        F.lit(run_id).alias(C.RUN_ID),
        F.current_timestamp().alias(C.QUARANTINED_AT),
    )
    lake.append(rows, catalog.QUARANTINE, schemas.QUARANTINE_SCHEMA)


def _record_batches(
    lake: Lakehouse, valid: DataFrame, rejected: DataFrame, batches: list[str], *, run_id: str
) -> None:
    ok = valid.groupBy(C.BATCH_ID).agg(F.count(F.lit(1)).alias(C.ROWS_OK))
    bad = rejected.groupBy(C.BATCH_ID).agg(F.count(F.lit(1)).alias(C.ROWS_QUARANTINED))
    ids = lake.spark.createDataFrame([(b,) for b in batches], f"{C.BATCH_ID} string")
    now = datetime.now(UTC)
    rows = (
        ids.join(ok, on=C.BATCH_ID, how="left")
        .join(bad, on=C.BATCH_ID, how="left")
        .fillna(0, subset=[C.ROWS_OK, C.ROWS_QUARANTINED])
        .select(
            C.BATCH_ID,
            F.lit(run_id).alias(C.RUN_ID),
            (F.col(C.ROWS_OK) + F.col(C.ROWS_QUARANTINED)).alias(C.ROWS_IN),
            C.ROWS_OK,
            C.ROWS_QUARANTINED,
            F.lit(now).cast("timestamp").alias(C.COMMITTED_AT),
        )
    )
    lake.append(rows, catalog.SILVER_BATCHES, schemas.SILVER_BATCHES_SCHEMA)
