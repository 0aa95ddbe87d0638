"""All reads and writes of lakehouse tables: the only module that knows paths and Delta.

Every write is safe to repeat:

- ``append`` is for append-only tables whose callers first delete what a
  crashed attempt may have left (see :mod:`klout_spark.ingest`);
- ``overwrite_slice`` replaces one ``as_of`` (or date range) atomically with
  Delta's ``replaceWhere``: readers see the old slice or the new one, never a mix;
- ``merge_new`` inserts only rows whose key is not there yet (idempotent upsert).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import logging
import re
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

_PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


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

    def overwrite_key(self, df: DataFrame, table: str, schema: T.StructType, *, column: str, value: str) -> None:
        """Replace the rows with ``column = value`` by ``df``, in one Delta commit.

        ``value`` must be a plain token (letters, digits, ``_.-``): it ends up in SQL text.
        """
        catalog.validate_identifier(column, what="key column")
        if not _PLAIN_TOKEN.match(value):
            raise InputError(f"overwrite_key: {column} value must match {_PLAIN_TOKEN.pattern}, got {value!r}")
        self.ensure(table, schema)
        (
            _conform(df, schema)
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{column} = '{value}'")
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

JSON_EXTENSIONS = (".jsonl", ".json", ".ndjson")
CSV_EXTENSIONS = (".csv",)
PARQUET_EXTENSIONS = (".parquet",)
RAW_EXTENSIONS = (*JSON_EXTENSIONS, *CSV_EXTENSIONS)
COMPRESSIONS = ("", ".gz", ".bz2", ".zst")
# Pushshift dumps are zstd frames with a 2 GiB window (zstd --long=31).
ZSTD_MAX_WINDOW = 2**31


@dataclass(frozen=True)
class SourceFile:
    """One raw dump file found on disk, identified by its content checksum.

    ``read_path`` is where Spark reads it from when that is not ``path`` (a
    ``.zst`` file decompressed into the lakehouse's ``_staging/``).
    """

    path: str
    size_bytes: int
    modified_at: datetime
    checksum: str
    format: str
    read_path: str | None = None


def file_kind(name: str) -> str:
    """``json``, ``csv`` or ``parquet`` by file name (compression suffix ignored)."""
    lowered = _without_compression(name.lower())
    if lowered.endswith(PARQUET_EXTENSIONS):
        return "parquet"
    if lowered.endswith(CSV_EXTENSIONS):
        return "csv"
    return "json"


def _without_compression(name: str) -> str:
    for comp in COMPRESSIONS[1:]:
        if name.endswith(comp):
            return name[: -len(comp)]
    return name


def is_dump_file(name: str) -> bool:
    lowered = name.lower()
    if lowered.endswith(PARQUET_EXTENSIONS):
        return True
    return any(lowered.endswith(ext + comp) for ext in RAW_EXTENSIONS for comp in COMPRESSIONS)


def _dump_kinds() -> list[str]:
    return [e + c for e in RAW_EXTENSIONS for c in COMPRESSIONS] + list(PARQUET_EXTENSIONS)


def discover_dump_files(paths: Sequence[str], *, fmt: str) -> list[SourceFile]:
    """List the dump files under ``paths`` (files or folders, recursively), sorted by path.

    Files whose names do not look like event dumps (``.json``, ``.jsonl``,
    ``.ndjson``, ``.csv``, optionally ``.gz``/``.bz2``/``.zst``, or ``.parquet``)
    are skipped when found inside a folder and rejected when named directly.
    Hidden files and folders (``.x``, ``_x``) are skipped, as Spark does.

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
                raise InputError(f"input file {raw} is not a dump file; expected one of {_dump_kinds()}")
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


def _zstd_reader(handle):
    return _zstd_decompressor().stream_reader(handle)


def _zstd_decompressor():
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputError(
            "reading .zst dumps needs the 'zstandard' package (pip install zstandard): Spark's own zstd "
            "codec cannot decode the 2 GiB windows of Pushshift dumps"
        ) from exc
    return zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)


def _open_text(path: str):
    """Open a dump file as text, decompressing by its suffix (streaming)."""
    lowered = path.lower()
    if lowered.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if lowered.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8", errors="replace")
    if lowered.endswith(".zst"):
        return io.TextIOWrapper(_zstd_reader(open(path, "rb")), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def peek_lines(path: str, *, limit: int) -> list[str]:
    """Up to ``limit`` first non-blank lines of a text dump (empty if unreadable).

    Reads only the head of the file, so it is cheap even for huge dumps; a
    damaged file yields what could be read before the damage.
    """
    lines: list[str] = []
    try:
        with _open_text(path) as handle:
            for line in handle:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                    if len(lines) >= limit:
                        break
    except (OSError, EOFError, ValueError) as exc:  # damaged: detection uses what was read
        log.debug("peek %s stopped: %s", path, exc)
    return lines


def zstd_staged_path(path: str, staging_dir: str) -> str:
    """Where :func:`stage_zstd` puts the decompressed copy of ``path``."""
    return str(Path(staging_dir) / (hashlib.sha256(path.encode()).hexdigest()[:16] + "-" + Path(path).name[:-4]))


def stage_zstd(path: str, staging_dir: str) -> str:
    """Decompress a ``.zst`` dump into ``staging_dir`` (streaming) and return the staged path.

    Spark's zstd codec rejects frames whose window exceeds its default limit,
    and Pushshift dumps use a 2 GiB window, so they are decompressed here first.
    The staged name is derived from the source path, so a rerun reuses it.
    A damaged file is staged up to the damage and the error is re-raised.
    """
    target = Path(zstd_staged_path(path, staging_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    decompressor = _zstd_decompressor()
    with open(path, "rb") as source, partial.open("wb") as out:
        try:
            frame, fed = decompressor.decompressobj(), False
            for block in iter(lambda: source.read(1 << 20), b""):
                while block:
                    out.write(frame.decompress(block))
                    fed = True
                    if not frame.eof:
                        break
                    # Frames may follow one another; the rest of the block starts the next.
                    block, frame, fed = frame.unused_data, decompressor.decompressobj(), False
            if fed and not frame.eof:
                raise EOFError(f"{path}: unexpected end of zstd data (truncated frame)")
        finally:
            partial.replace(target)
    return str(target)


def read_dump_lines(spark: SparkSession, files: Sequence[SourceFile], *, ignore_corrupt: bool = False) -> DataFrame:
    """Read the lines of ``files`` as text, with where each line came from.

    Returns columns ``source_path`` (as given in ``files``), ``block_start``
    (byte offset of the split the line was read from), ``ordinal`` (increasing
    in read order within a split) and ``value`` (the line). With
    ``ignore_corrupt`` a damaged compressed file yields its readable prefix
    instead of failing the read.
    """
    if not files:
        raise InputError("read_dump_lines: no files to read")
    staged = {f.read_path: f.path for f in files if f.read_path}
    path = _local_path(F.col("_metadata.file_path"))
    if staged:
        mapping = F.create_map(*[F.lit(x) for pair in staged.items() for x in pair])
        path = F.coalesce(mapping[path], path)
    return (
        spark.read.option("ignoreCorruptFiles", str(ignore_corrupt).lower())
        .text([f.read_path or f.path for f in files])
        .select(
            path.alias(C.SOURCE_PATH),
            F.col("_metadata.file_block_start").alias("block_start"),
            F.monotonically_increasing_id().alias("ordinal"),
            F.col("value"),
        )
    )


def read_parquet_rows(spark: SparkSession, file: SourceFile, *, ignore_corrupt: bool = False) -> DataFrame:
    """Read one Parquet dump with its own (declared) schema, plus lineage.

    Parquet has no lines: ``source_line`` is the 1-based row ordinal within the file.
    """
    return spark.read.option("ignoreCorruptFiles", str(ignore_corrupt).lower()).parquet(file.path).select(
        "*",
        F.lit(file.path).alias(C.SOURCE_PATH),
        (F.col("_metadata.row_index") + 1).alias(C.SOURCE_LINE),
    )


def probe_damage(spark: SparkSession, file: SourceFile) -> str | None:
    """Read ``file`` alone; return None if Spark reads it whole, else the error text."""
    try:
        if file_kind(file.path) == "parquet":
            spark.read.parquet(file.path).count()
        else:
            spark.read.text(file.read_path or file.path).count()
    except Exception as exc:  # noqa: BLE001 - any read failure marks the file damaged; caller reports it
        return str(exc)[:2000]
    return None


def _local_path(uri: Column) -> Column:
    return F.url_decode(F.regexp_replace(uri, r"^file:(//)?", ""))


def _strip_file_scheme(path: str) -> str:
    if path.startswith("file://"):
        return path[len("file://") :]
    if path.startswith("file:"):
        return path[len("file:") :]
    return path


MAX_IDENTITIES_BYTES = 512 * 1024 * 1024


def read_identities_csv(spark: SparkSession, path: str) -> DataFrame:
    """Read an identities CSV (header ``person_id,network,user_id``) that links accounts to persons.

    The file is read on the driver with Python's csv module (it links accounts,
    it does not grow with the activity; capped at ``MAX_IDENTITIES_BYTES``),
    because Spark's file readers skip names starting with ``_`` or ``.``, and the
    generator names it ``_identities.csv`` precisely so that ingest skips it.

    Raises
    ------
    InputError
        The file is missing, too large, or lacks a required column.
    """
    import csv

    from klout_spark import schemas

    local = Path(_strip_file_scheme(path)).expanduser()
    if "://" in path.replace("file://", "") or not local.is_file():
        raise InputError(f"identities file does not exist (or is not a local file): {path}")
    if local.stat().st_size > MAX_IDENTITIES_BYTES:
        raise InputError(f"identities file {path} is larger than {MAX_IDENTITIES_BYTES} bytes")
    required = schemas.IDENTITIES_SCHEMA.fieldNames()
    with local.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if not set(required) <= set(header):
            raise InputError(f"identities file {path} must have the columns {required}; it has {header}")
        rows = {}
        for record in reader:
            values = tuple((record.get(c) or "").strip() for c in required)
            if all(values):
                # One person per account: the first line naming an account wins.
                rows.setdefault((values[1], values[2]), values)
    return spark.createDataFrame(list(rows.values()), schemas.IDENTITIES_SCHEMA)
