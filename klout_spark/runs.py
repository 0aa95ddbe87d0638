"""The ``runs`` table: one row per stage per run, success or failure.

Usage::

    with record_stage(lake, run, "features", as_of) as stage:
        ...
        stage.rows_out = n

The row is appended when the block ends; an exception marks it ``failed`` with
the error message and is re-raised.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from pyspark.sql import Window
from pyspark.sql import functions as F

from klout_spark import __version__, catalog, schemas
from klout_spark import columns as C
from klout_spark.config import PROJECT_ROOT
from klout_spark.io import Lakehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run shares: its id, start time and config hash."""

    run_id: str
    started_at: datetime
    config_hash: str

    @staticmethod
    def new(config_hash: str) -> RunContext:
        now = datetime.now(UTC)
        run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        return RunContext(run_id=run_id, started_at=now, config_hash=config_hash)


@dataclass
class StageRecord:
    """Mutable facts a stage fills in while it runs."""

    stage: str
    as_of: date | None
    rows_in: int | None = None
    rows_out: int | None = None
    iterations: int | None = None
    residual: float | None = None
    residuals: list[float] | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@cache
def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


@contextmanager
def record_stage(lake: Lakehouse, run: RunContext, stage: str, as_of: date | None) -> Iterator[StageRecord]:
    record = StageRecord(stage=stage, as_of=as_of)
    started = datetime.now(UTC)
    clock = time.monotonic()
    log.info("stage %s: started%s", stage, f" for as_of {as_of}" if as_of else "")
    try:
        yield record
    except BaseException as exc:
        _append(lake, run, record, started, "failed", message=f"{type(exc).__name__}: {exc}")
        log.error("stage %s: failed after %.1f s: %s", stage, time.monotonic() - clock, exc)
        raise
    _append(lake, run, record, started, "succeeded", message=record.message)
    log.info("stage %s: done in %.1f s%s", stage, time.monotonic() - clock, _summary(record))


@contextmanager
def record_stage_dates(
    lake: Lakehouse, run: RunContext, stage: str, as_of_dates: Sequence[date]
) -> Iterator[dict[date, StageRecord]]:
    """Like :func:`record_stage` for a stage that computes several dates at once: one row per date.

    Yields one :class:`StageRecord` per date; all rows are appended together
    when the block ends (``failed`` for every date if it raises).
    """
    records = {as_of: StageRecord(stage=stage, as_of=as_of) for as_of in sorted(set(as_of_dates))}
    started = datetime.now(UTC)
    clock = time.monotonic()
    span = f"{min(records)}..{max(records)}" if records else "no dates"
    log.info("stage %s: started for %d date(s) %s", stage, len(records), span)
    try:
        yield records
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        _append_many(lake, run, [(r, "failed", message) for r in records.values()], started)
        log.error("stage %s: failed after %.1f s: %s", stage, time.monotonic() - clock, exc)
        raise
    _append_many(lake, run, [(r, "succeeded", r.message) for r in records.values()], started)
    log.info("stage %s: done for %d date(s) %s in %.1f s", stage, len(records), span, time.monotonic() - clock)


def _summary(record: StageRecord) -> str:
    parts = []
    if record.rows_in is not None:
        parts.append(f"rows in {record.rows_in:,}")
    if record.rows_out is not None:
        parts.append(f"rows out {record.rows_out:,}")
    if record.iterations is not None:
        parts.append(f"{record.iterations} iterations, residual {record.residual:.2e}")
    return f" ({'; '.join(parts)})" if parts else ""


def _append(
    lake: Lakehouse, run: RunContext, record: StageRecord, started: datetime, status: str, *, message: str | None
) -> None:
    _append_many(lake, run, [(record, status, message)], started)


def _append_many(
    lake: Lakehouse, run: RunContext, records: Sequence[tuple[StageRecord, str, str | None]], started: datetime
) -> None:
    ended = datetime.now(UTC)
    rows = [_row(run, record, started, ended, status, message) for record, status, message in records]
    if rows:
        lake.append(lake.spark.createDataFrame(rows, schemas.RUNS_SCHEMA), catalog.RUNS, schemas.RUNS_SCHEMA)


def _row(
    run: RunContext, record: StageRecord, started: datetime, ended: datetime, status: str, message: str | None
) -> tuple:
    return (
        run.run_id,
        record.as_of,
        record.stage,
        started,
        ended,
        status,
        record.rows_in,
        record.rows_out,
        record.iterations,
        record.residual,
        record.residuals,
        run.config_hash,
        code_version(),
        (message or "")[:4000] or None,
        json.dumps(record.details, default=str, sort_keys=True) if record.details else None,
    )


# Stages that write a date's derived tables, in order; the last one commits the date.
DATE_STAGES = ("features", "propagate", "score")


def committed_dates(lake: Lakehouse, as_of_dates: Sequence[date], *, config_hash: str, version: str) -> set[date]:
    """The dates of ``as_of_dates`` whose derived tables were last written by a complete, matching run.

    A date is committed when its most recent ``features``/``propagate``/``score``
    row in ``runs`` is a succeeded ``score`` row with this ``config_hash`` and
    code ``version``: a later failed or partial rerun of the date makes it
    pending again. One bounded query (a row per date).
    """
    if not as_of_dates or not lake.exists(catalog.RUNS):
        return set()
    newest_first = Window.partitionBy(C.AS_OF).orderBy(F.col(C.ENDED_AT).desc(), F.col(C.STARTED_AT).desc())
    latest = (
        lake.read(catalog.RUNS)
        .filter(F.col(C.AS_OF).isin(sorted(set(as_of_dates))) & F.col(C.STAGE).isin(list(DATE_STAGES)))
        .withColumn("_n", F.row_number().over(newest_first))
        .filter(F.col("_n") == 1)
        .select(C.AS_OF, C.STAGE, C.STATUS, C.CONFIG_HASH, C.CODE_VERSION)
        .collect()
    )
    return {
        row[C.AS_OF]
        for row in latest
        if row[C.STAGE] == "score"
        and row[C.STATUS] == "succeeded"
        and row[C.CONFIG_HASH] == config_hash
        and row[C.CODE_VERSION] == version
    }
