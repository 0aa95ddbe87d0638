"""The catalog: table names, their locations, and their registration.

With ``catalog.mode = lakehouse`` the lakehouse folder *is* the catalog: each
Delta table lives at ``<lake.root>/<table>`` and every process registers the
tables it finds there under the database at session start. Nothing is held by
one JVM (unlike an embedded Derby metastore), so a run, ``klout-spark sql`` and
the Thrift server can all use the tables at once; Delta's log arbitrates
concurrent readers and writers. With ``hive`` the same registration writes into
the cluster's metastore, where it persists.
"""

from __future__ import annotations

import logging
import re

from pyspark.sql import SparkSession

from klout_spark import columns as C
from klout_spark.errors import ConfigError

log = logging.getLogger(__name__)

# Every table klout-spark writes, by stage.
BRONZE_EVENTS = "bronze_events"
INGEST_LOG = "ingest_log"
QUARANTINE = "quarantine"
SILVER_EVENTS = "silver_events"
SILVER_PROFILES = "silver_profiles"
SILVER_BATCHES = "silver_batches"
USER_DAILY = "user_daily"
USER_FEATURES = "user_features"
ENGAGEMENT_EDGES = "engagement_edges"
NETWORK_RANK = "network_rank"
SCORES = "scores"
PERSON_SCORES = "person_scores"
SCORE_TOPICS = "score_topics"
SCORE_EXPLAIN = "score_explain"
SCORE_CALIBRATION = "score_calibration"
IDENTITIES = "identities"
RUNS = "runs"
RUN_LOCKS = "run_locks"

TABLES: tuple[str, ...] = (
    BRONZE_EVENTS,
    INGEST_LOG,
    QUARANTINE,
    SILVER_EVENTS,
    SILVER_PROFILES,
    SILVER_BATCHES,
    USER_DAILY,
    USER_FEATURES,
    ENGAGEMENT_EDGES,
    NETWORK_RANK,
    SCORES,
    PERSON_SCORES,
    SCORE_TOPICS,
    SCORE_EXPLAIN,
    SCORE_CALIBRATION,
    IDENTITIES,
    RUNS,
    RUN_LOCKS,
)

LATEST_SCORES_VIEW = "latest_scores"

# The columns whose per-file minimum, maximum and null count Delta keeps, set when the
# table is created; tables not listed keep Delta's default (the first 32 columns).
# - The two tables of whole events: by default the post text is among the first 32, and
#   computing those statistics is a large part of writing them; skipping files needs only these.
# - The per-as_of tables of one row per account (or pair) and date, none (``()``:
#   ``delta.dataSkippingNumIndexedCols`` 0): within an as_of their files are cut by a hash of
#   the account, so every file spans the whole range of every column and its statistics skip
#   nothing; computing them cost about a quarter of the time to write the 91M edge rows of a
#   30-date backfill at L.
# Row counts are kept for every table regardless.
STATS_COLUMNS: dict[str, tuple[str, ...]] = {
    BRONZE_EVENTS: (C.EVENT_TS, C.NETWORK, C.EVENT_TYPE, C.BATCH_ID, C.SOURCE_CHECKSUM),
    SILVER_EVENTS: (C.EVENT_TS, C.NETWORK, C.EVENT_TYPE, C.ACTOR_ID, C.BATCH_ID),
    USER_FEATURES: (),
    ENGAGEMENT_EDGES: (),
    SCORE_EXPLAIN: (),
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def validate_identifier(name: str, *, what: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise :class:`ConfigError`.

    Names from settings end up in SQL text, so only ``[A-Za-z_][A-Za-z0-9_]*`` passes.
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ConfigError(f"{what} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*), got {name!r}")
    return name


def table_path(root: str, table: str) -> str:
    """Location of ``table`` under the lakehouse ``root`` (a path or any Hadoop URI)."""
    validate_identifier(table, what="table name")
    return f"{root.rstrip('/')}/{table}"


def qualified(database: str, table: str) -> str:
    """``database.table``, both checked as identifiers."""
    return f"{validate_identifier(database, what='lake.database')}.{validate_identifier(table, what='table name')}"


def hadoop_fs(spark: SparkSession, path: str):  # noqa: ANN201 - a py4j FileSystem and Path
    """The Hadoop file system holding ``path`` and ``path`` as a Hadoop ``Path``."""
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[attr-defined]
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path  # type: ignore[attr-defined]


def is_delta_table(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` holds a Delta table with a committed version, on any Hadoop file system.

    A ``_delta_log`` folder alone is not enough: a writer creating the table has one before its
    version 0 commit lands. Once log cleanup has removed version 0, a checkpoint stands for it.
    Read from the file system each time, because another process may have just created the table.
    """
    fs, log_dir = hadoop_fs(spark, f"{path.rstrip('/')}/_delta_log")
    return any(
        fs.exists(spark._jvm.org.apache.hadoop.fs.Path(log_dir, name))  # type: ignore[attr-defined]
        for name in ("00000000000000000000.json", "_last_checkpoint")
    )


def register_tables(spark: SparkSession, root: str, database: str) -> list[str]:
    """Register every existing lakehouse table (and the views) under ``database``.

    Idempotent and cheap to repeat: a table already registered is left alone.
    Returns the names registered by this call.
    """
    validate_identifier(database, what="lake.database")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    existing = {t.name for t in spark.catalog.listTables(database)}
    registered = []
    for table in TABLES:
        if table in existing:
            continue
        path = table_path(root, table)
        if is_delta_table(spark, path):
            spark.catalog.createTable(qualified(database, table), path=path, source="delta")
            registered.append(table)
    if SCORES in existing or SCORES in registered:
        _create_views(spark, database)
    if registered:
        log.debug("registered %s in %s", registered, database)
    return registered


def register_table(spark: SparkSession, root: str, database: str, table: str) -> None:
    """Register one table just created at its lakehouse location (no-op if registered)."""
    name = qualified(database, table)
    if not spark.catalog.tableExists(name):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {validate_identifier(database, what='lake.database')}")
        spark.catalog.createTable(name, path=table_path(root, table), source="delta")
    if table == SCORES:
        _create_views(spark, database)


def _create_views(spark: SparkSession, database: str) -> None:
    scores = qualified(database, SCORES)
    view = qualified(database, LATEST_SCORES_VIEW)
    # The newest as_of per network, so a network that stopped sending data keeps its last scores.
    spark.sql(
        f"CREATE OR REPLACE VIEW {view} AS "
        f"SELECT s.* FROM {scores} s "
        f"JOIN (SELECT network, max(as_of) AS as_of FROM {scores} GROUP BY network) latest "
        f"ON s.network = latest.network AND s.as_of = latest.as_of"
    )
