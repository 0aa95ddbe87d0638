"""All reads and writes of lakehouse tables: the only module that knows paths and Delta.

Every write is safe to repeat:

- ``append`` is for append-only tables whose callers first delete what a
  crashed attempt may have left (see :mod:`klout_spark.ingest`);
- ``overwrite_slice`` replaces one ``as_of`` (or date range) atomically with
  Delta's ``replaceWhere``: readers see the old slice or the new one, never a mix;
- ``merge_new`` inserts only rows whose key is not there yet (idempotent upsert).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.errors import InputError, StageOrderError

log = logging.getLogger(__name__)



class Lakehouse:
    """The Delta tables under one lakehouse root, registered under one database.

    Parameters
    ----------
    spark
        The session to read and write with.
    root
        Lakehouse root (a local path or any Hadoop-compatible URI).
    database
        Catalog database the tables are registered in.
    """

    def __init__(self, spark: SparkSession, root: str, database: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/")
        self.database = catalog.validate_identifier(database, what="lake.database")

    def path(self, table: str) -> str:
        return catalog.table_path(self.root, table)

    def exists(self, table: str) -> bool:
        return catalog.is_delta_table(self.spark, self.path(table))

    def read(self, table: str) -> DataFrame:
        """Read ``table``; raise :class:`StageOrderError` if no stage has written it yet."""
        if not self.exists(table):
            raise StageOrderError(
                f"table {self.database}.{table} does not exist yet at {self.path(table)}: "
                "run the stage that writes it first (or `klout-spark run`)"
            )
        return self.spark.read.format("delta").load(self.path(table))

    def read_or_empty(self, table: str, schema: T.StructType) -> DataFrame:
        if self.exists(table):
            return self.read(table)
        return self.spark.createDataFrame([], schema)

    def ensure(self, table: str, schema: T.StructType, *, partition_by: Sequence[str] = ()) -> None:
        """Create ``table`` with ``schema`` (and its NOT NULL constraints) if it is missing."""
        if not self.exists(table):
            builder = (
                DeltaTable.createIfNotExists(self.spark)
                .location(self.path(table))
                .addColumns(schema)
            )
            if partition_by:
                builder = builder.partitionedBy(*partition_by)
            builder.execute()
        catalog.register_table(self.spark, self.root, self.database, table)

    def append(self, df: DataFrame, table: str, schema: T.StructType, *, partition_by: Sequence[str] = ()) -> None:
        self.ensure(table, schema, partition_by=partition_by)
        _conform(df, schema).write.format("delta").mode("append").save(self.path(table))

    def overwrite_slice(
        self,
        df: DataFrame,
        table: str,
        schema: T.StructType,
        *,
        column: str,
        start: date,
        end: date | None = None,
        partition_by: Sequence[str] = (),
    ) -> None:
        """Replace the rows with ``start <= column <= end`` by ``df``, in one Delta commit.

        ``df`` must hold only rows inside that range (Delta checks it).
        """
        end = end or start
        if not (isinstance(start, date) and isinstance(end, date)):
            raise InputError(f"overwrite_slice: start/end must be dates, got {start!r}, {end!r}")
        catalog.validate_identifier(column, what="slice column")
        self.ensure(table, schema, partition_by=partition_by)
        # Dates are formatted from date objects, never pasted from user text.
        predicate = f"{column} >= '{start.isoformat()}' AND {column} <= '{end.isoformat()}'"
        (
            _conform(df, schema)
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", predicate)
            .save(self.path(table))
        )

    def merge_new(
        self,
        df: DataFrame,
        table: str,
        schema: T.StructType,
        *,
        keys: Sequence[str],
        partition_by: Sequence[str] = (),
    ) -> None:
        """Insert the rows of ``df`` whose ``keys`` are not in ``table`` yet (MERGE)."""
        self.ensure(table, schema, partition_by=partition_by)
        target = DeltaTable.forPath(self.spark, self.path(table))
        condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        (
            target.alias("t")
            .merge(_conform(df, schema).alias("s"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )

    def delete(self, table: str, condition: Column) -> None:
        """Delete the rows matching ``condition`` (no-op if the table does not exist)."""
        if self.exists(table):
            DeltaTable.forPath(self.spark, self.path(table)).delete(condition)

    def latest_version(self, table: str) -> int | None:
        if not self.exists(table):
            return None
        history = DeltaTable.forPath(self.spark, self.path(table)).history(1)
        return int(history.select("version").first()[0])


def _conform(df: DataFrame, schema: T.StructType) -> DataFrame:
    """Select ``schema``'s columns in order, cast to its types; fail naming missing columns."""
    missing = [f.name for f in schema.fields if f.name not in df.columns]
    if missing:
        raise StageOrderError(f"cannot write: missing columns {missing}; have {sorted(df.columns)}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


# --- raw dump files ---------------------------------------------------------

RAW_EXTENSIONS = (".jsonl", ".json", ".ndjson")
COMPRESSIONS = ("", ".gz", ".bz2")


@dataclass(frozen=True)
class SourceFile:
    """One raw dump file found on disk, identified by its content checksum."""

    path: str
    size_bytes: int
    modified_at: datetime
    checksum: str
    format: str


def is_dump_file(name: str) -> bool:
    lowered = name.lower()
    return any(lowered.endswith(ext + comp) for ext in RAW_EXTENSIONS for comp in COMPRESSIONS)


def discover_dump_files(paths: Sequence[str], *, fmt: str) -> list[SourceFile]:
    """List the dump files under ``paths`` (files or folders, recursively), sorted by path.

    Files whose names do not look like event dumps (``.json``, ``.jsonl``,
    ``.ndjson``, optionally ``.gz``/``.bz2``) are skipped when found inside a
    folder and rejected when named directly. Hidden files and folders
    (``.x``, ``_x``) are skipped, as Spark does.

    Raises
    ------
    InputError
        A path does not exist, or a file named directly is not a dump file.
    """
    found: dict[str, Path] = {}
    for raw in paths:
        local = Path(_strip_file_scheme(raw)).expanduser()
        if not local.exists():
            raise InputError(f"input path does not exist: {raw}")
        if local.is_file():
            if not is_dump_file(local.name):
                raise InputError(
                    f"input file {raw} is not a dump file; expected one of "
                    f"{[e + c for e in RAW_EXTENSIONS for c in COMPRESSIONS]}"
                )
            found[str(local.resolve())] = local.resolve()
            continue
        for candidate in sorted(local.rglob("*")):
            relative = candidate.relative_to(local).parts
            if any(part.startswith((".", "_")) for part in relative):
                continue
            if candidate.is_file() and is_dump_file(candidate.name):
                found[str(candidate.resolve())] = candidate.resolve()
    files = []
    for key in sorted(found):
        path = found[key]
        stat = path.stat()
        files.append(
            SourceFile(
                path=key,
                size_bytes=stat.st_size,
                modified_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                checksum=file_checksum(path),
                format=fmt,
            )
        )
    return files


def file_checksum(path: Path) -> str:
    """SHA-256 of the file's bytes (as stored, before decompression)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_dump_lines(spark: SparkSession, files: Sequence[SourceFile]) -> DataFrame:
    """Read the lines of ``files`` as text, with where each line came from.

    Returns columns ``source_path`` (as given in ``files``), ``block_start``
    (byte offset of the split the line was read from), ``ordinal`` (increasing
    in read order within a split) and ``value`` (the line).
    """
    if not files:
        raise InputError("read_dump_lines: no files to read")
    return (
        spark.read.text([f.path for f in files])
        .select(
            _local_path(F.col("_metadata.file_path")).alias(C.SOURCE_PATH),
            F.col("_metadata.file_block_start").alias("block_start"),
            F.monotonically_increasing_id().alias("ordinal"),
            F.col("value"),
        )
    )


def _local_path(uri: Column) -> Column:
    return F.url_decode(F.regexp_replace(uri, r"^file:(//)?", ""))


def _strip_file_scheme(path: str) -> str:
    if path.startswith("file://"):
        return path[len("file://") :]
    if path.startswith("file:"):
        return path[len("file:") :]
    return path


def read_identities_csv(spark: SparkSession, path: str) -> DataFrame:
    """Read an identities CSV (header ``person_id,network,user_id``) that links accounts to persons.

    Raises
    ------
    InputError
        The file is missing or lacks a required column.
    """
    from klout_spark import schemas

    local = Path(_strip_file_scheme(path)).expanduser()
    if "://" not in path and not local.is_file():
        raise InputError(f"identities file does not exist: {path}")
    header = local.open().readline().strip().split(",") if local.is_file() else None
    required = schemas.IDENTITIES_SCHEMA.fieldNames()
    if header is not None and not set(required) <= set(header):
        raise InputError(f"identities file {path} must have the columns {required}; it has {header}")
    rows = spark.read.option("header", True).option("mode", "FAILFAST").csv(str(local) if header else path)
    return (
        rows.select(*[F.trim(F.col(c)).alias(c) for c in required])
        .dropna()
        .dropDuplicates([C.NETWORK, C.USER_ID])
    )
