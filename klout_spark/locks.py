"""Per-``as_of`` write locks, so that two runs of the same date never interleave their writes.

Each ``as_of`` slice is replaced atomically by itself, but a run writes several
tables one after another (features, edges, ranks, scores); two runs of the same
date at once (a cron run and a manual rerun, or two overlapping backfills)
could leave features of one and scores of the other. A run therefore claims a
row per date in ``run_locks`` before it writes, with one Delta MERGE: Delta's
optimistic concurrency makes the claim atomic wherever Delta's commits are
(local disk, HDFS, object stores with a Delta log store). The loser stops with
:class:`LockError` ("another run is writing as_of D").

A lock is released when the run ends (also on failure). A crashed run's lock
is taken over once it is older than ``run.lock_ttl_minutes``, or at once when
it was held by a process of this host that no longer exists.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import functions as F

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import KloutError
from klout_spark.io import Lakehouse

log = logging.getLogger(__name__)

CLAIM_ATTEMPTS = 4


class LockError(KloutError):
    """Another run holds the lock of a date this run wants to write."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_concurrent_conflict(exc: Exception) -> bool:
    return "Concurrent" in type(exc).__name__ or "DELTA_CONCURRENT" in str(exc)


@contextmanager
def as_of_lock(lake: Lakehouse, run_id: str, dates: Sequence[date], *, ttl_minutes: float) -> Iterator[None]:
    """Hold the write lock of every date of ``dates`` for the duration of the block.

    Raises
    ------
    LockError
        Another live run holds one of the dates (its run id, host, pid and
        expiry are in the message).
    """
    dates = sorted(set(dates))
    acquire(lake, run_id, dates, ttl_minutes=ttl_minutes)
    try:
        yield
    finally:
        release(lake, run_id, dates)


def acquire(lake: Lakehouse, run_id: str, dates: Sequence[date], *, ttl_minutes: float) -> None:
    host, pid = socket.gethostname(), os.getpid()
    for attempt in range(1, CLAIM_ATTEMPTS + 1):
        now = datetime.now(UTC)
        expires = now + timedelta(minutes=ttl_minutes)
        # Locks of dead processes on this host are stale at once, whatever their age.
        dead = [
            row[C.RUN_ID]
            for row in _held(lake, dates)
            if row["host"] == host and row[C.RUN_ID] != run_id and not _process_alive(int(row["pid"]))
        ]
        wanted = lake.spark.createDataFrame(
            [(d, run_id, host, pid, now, expires) for d in dates], S.RUN_LOCKS_SCHEMA
        )
        takeover = f"t.expires_at < s.acquired_at OR t.{C.RUN_ID} = s.{C.RUN_ID}"
        if dead:
            takeover += " OR t.run_id IN (" + ", ".join(_sql_string(r) for r in sorted(set(dead))) + ")"
        try:
            lake.claim(wanted, catalog.RUN_LOCKS, S.RUN_LOCKS_SCHEMA, keys=[C.AS_OF], takeover=takeover)
        except Exception as exc:
            if not _is_concurrent_conflict(exc):
                raise
            log.info("lock claim conflicted with a concurrent claim (attempt %d): %s", attempt, type(exc).__name__)
            time.sleep(0.5 * attempt)
            continue
        others = [row for row in _held(lake, dates) if row[C.RUN_ID] != run_id]
        if not others:
            return
        release(lake, run_id, dates)
        first = min(others, key=lambda r: r[C.AS_OF])
        raise LockError(
            f"another run is writing as_of {first[C.AS_OF]}: run {first[C.RUN_ID]} on {first['host']} "
            f"(pid {first['pid']}) since {first['acquired_at']:%Y-%m-%d %H:%M:%S}"
            + (f", and {len(others) - 1} more date(s)" if len(others) > 1 else "")
            + f"; its lock expires at {first['expires_at']:%Y-%m-%d %H:%M:%S} (run.lock_ttl_minutes). "
            "Wait for it to finish, or rerun then."
        )
    raise LockError(
        f"another run is writing as_of {dates[0]}..{dates[-1]}: the lock claim kept conflicting with concurrent "
        f"claims ({CLAIM_ATTEMPTS} attempts); rerun when the other run has finished"
    )


def release(lake: Lakehouse, run_id: str, dates: Sequence[date]) -> None:
    """Drop this run's locks of ``dates`` (no-op for dates it does not hold)."""
    if not lake.exists(catalog.RUN_LOCKS):
        return
    condition = (F.col(C.RUN_ID) == F.lit(run_id)) & F.col(C.AS_OF).isin(list(dates))
    for attempt in range(1, CLAIM_ATTEMPTS + 1):
        try:
            lake.delete(catalog.RUN_LOCKS, condition)
            return
        except Exception as exc:
            if not _is_concurrent_conflict(exc) or attempt == CLAIM_ATTEMPTS:
                log.warning("could not release the locks of run %s (%s); they expire on their own", run_id, exc)
                return
            time.sleep(0.5 * attempt)


def _held(lake: Lakehouse, dates: Sequence[date]) -> list:
    if not lake.exists(catalog.RUN_LOCKS):
        return []
    return lake.read(catalog.RUN_LOCKS).filter(F.col(C.AS_OF).isin(list(dates))).collect()


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
