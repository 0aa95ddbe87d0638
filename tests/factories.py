"""Tiny inline DataFrames with explicit schemas, for tests."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from klout_spark import schemas as S

AS_OF = date(2026, 10, 31)


def persistent_rdd_ids(spark, *, data_only: bool = False) -> set[int]:
    """Ids of the RDDs the JVM holds persisted now (``data_only``: less Delta's caches of table logs).

    Compare id sets, not counts: Spark's ContextCleaner unpersists RDDs whose
    Python and JVM references were garbage-collected, at any moment, so an
    earlier test's cache can vanish while a test runs. Delta caches the state
    of each table log it reads ("Delta Table State ..."); ``data_only`` leaves
    those out, so that a stage's own caches can be told apart.
    """
    rdds = spark.sparkContext._jsc.getPersistentRDDs()  # noqa: SLF001
    return {
        int(rdd_id)
        for rdd_id, rdd in rdds.items()
        if not (data_only and str(rdd.name()).startswith("Delta Table State"))
    }


def shuffle_keys(df) -> list[str]:
    """The keys of each hash shuffle in ``df``'s physical plan, as ``"a, b"`` (no ids, no partition count)."""
    plan = df._jdf.queryExecution().executedPlan().toString()  # noqa: SLF001
    return [re.sub(r"#\d+", "", keys).rsplit(", ", 1)[0] for keys in re.findall(r"Exchange hashpartitioning\(([^)]*)\)", plan)]


def ts(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


def days_ago(n: int, as_of: date = AS_OF) -> date:
    return as_of - timedelta(days=n)


def event(
    event_id: str,
    event_type: str,
    actor: str,
    subject: str | None = None,
    *,
    day: date = AS_OF,
    post_id: str | None = None,
    parent: str | None = None,
    hashtags: list[str] | None = None,
    network: str = "twitter",
) -> tuple:
    """A silver_events row."""
    return (event_id, network, event_type, ts(day), actor, subject, post_id, parent, None, hashtags, "b1", day)


def events_df(spark, rows):
    return spark.createDataFrame(rows, S.SILVER_EVENTS_SCHEMA)


def profile(user: str, day: date, *, followers: int = 0, following: int = 0, listed: int = 0,
            created: date | None = None, verified: bool = False, network: str = "twitter") -> tuple:
    """A silver_profiles row."""
    created_ts = ts(created) if created else None
    return (network, user, ts(day), followers, following, listed, 0, created_ts, verified, f"prof-{user}-{day}", "b1")


def profiles_df(spark, rows):
    return spark.createDataFrame(rows, S.SILVER_PROFILES_SCHEMA)
