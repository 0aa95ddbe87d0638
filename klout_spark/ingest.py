"""Stage 1: raw dump files -> ``bronze_events`` (+ ``ingest_log``, ``quarantine``).

Exactly once, nothing lost:

- every file is identified by the SHA-256 of its bytes; a checksum already in
  ``ingest_log`` is skipped, whatever the file is called now;
- every non-blank line ends in ``bronze_events`` (typed) or in ``quarantine``
  (with a reason code and the raw text), so per file
  ``rows_read == rows_ok + rows_quarantined``;
- the ``ingest_log`` rows are written last and are the commit point: a crash
  before them leaves rows that no reader uses (readers only take committed
  batches) and that the next attempt deletes before writing again.

The parsing core (:func:`parse_canonical_lines`) is a pure DataFrame transform.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog, schemas
from klout_spark import columns as C
from klout_spark.errors import InputError
from klout_spark.io import Lakehouse, SourceFile, discover_dump_files, read_dump_lines

log = logging.getLogger(__name__)

INGEST_STAGE = "ingest"
CORRUPT = "_corrupt_record"
REQUIRED_FIELDS: tuple[str, ...] = (C.EVENT_ID, C.NETWORK, C.EVENT_TYPE, C.EVENT_TS, C.ACTOR_ID)
_COUNT_FIELDS = (C.FOLLOWERS_COUNT, C.FOLLOWING_COUNT, C.LISTED_COUNT, C.POSTS_COUNT)
_STRING_FIELDS = (C.EVENT_ID, C.NETWORK, C.EVENT_TYPE, C.ACTOR_ID, C.SUBJECT_ID, C.POST_ID, C.PARENT_POST_ID, C.TEXT)

# Every field read as text first, so that a wrong type is told apart from a missing field.
_RAW_SCHEMA = T.StructType(
    [T.StructField(f.name, T.StringType(), True) for f in schemas.CANONICAL_EVENT_SCHEMA.fields]
    + [T.StructField(CORRUPT, T.StringType(), True)]
)


@dataclass(frozen=True)
class FileAccount:
    path: str
    checksum: str
    rows_read: int
    rows_ok: int
    rows_quarantined: int


@dataclass(frozen=True)
class IngestSummary:
    batch_id: str | None
    files_found: int
    files_skipped: int
    accounts: tuple[FileAccount, ...]

    @property
    def rows_read(self) -> int:
        return sum(a.rows_read for a in self.accounts)

    @property
    def rows_ok(self) -> int:
        return sum(a.rows_ok for a in self.accounts)

    @property
    def rows_quarantined(self) -> int:
        return sum(a.rows_quarantined for a in self.accounts)


def parse_timestamp(text: Column) -> Column:
    """Parse ISO-8601 (``Z`` or an offset) or epoch seconds to a UTC timestamp; null if neither."""
    is_epoch = text.rlike(r"^\s*-?\d+(\.\d+)?\s*$")
    return F.when(is_epoch, F.timestamp_seconds(F.trim(text).try_cast("double"))).otherwise(
        F.trim(text).try_cast("timestamp")
    )


def normalized_hashtags(raw_json: Column) -> Column:
    """Parse a JSON array of hashtags; lowercase them and drop a leading ``#``."""
    parsed = F.from_json(raw_json, T.ArrayType(T.StringType()))
    return F.transform(parsed, lambda tag: F.lower(F.regexp_replace(F.trim(tag), r"^#+", "")))


def parse_canonical_lines(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse canonical JSON lines into typed events plus a ``reason`` for the bad ones.

    Parameters
    ----------
    lines
        Requires ``value`` (one line of text); other columns are passed through.
        Blank lines must be removed beforehand.
    max_raw_chars
        The raw text is kept (cut to this length) in ``raw`` for rejected lines only.

    Returns
    -------
    DataFrame
        The input columns except ``value``, every ``CANONICAL_EVENT_SCHEMA`` column,
        ``reason`` (null for a good line; else ``malformed_json``,
        ``missing_field:<f>``, ``bad_timestamp``, ``bad_type:<f>``) and ``raw``.
    """
    rec = F.from_json(
        F.col("value"), _RAW_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    )
    parsed = lines.withColumn("_rec", rec)
    field = lambda name: F.col(f"_rec.{name}")  # noqa: E731
    typed = {
        **{name: F.nullif(field(name), F.lit("")) for name in _STRING_FIELDS},
        C.EVENT_TS: parse_timestamp(field(C.EVENT_TS)),
        C.ACCOUNT_CREATED_AT: parse_timestamp(field(C.ACCOUNT_CREATED_AT)),
        C.HASHTAGS: normalized_hashtags(field(C.HASHTAGS)),
        C.VERIFIED: F.lower(F.trim(field(C.VERIFIED))).try_cast("boolean"),
        **{name: F.trim(field(name)).try_cast("long") for name in _COUNT_FIELDS},
    }
    not_an_object = ~F.ltrim(F.col("value")).startswith("{")
    malformed = F.col("_rec").isNull() | field(CORRUPT).isNotNull() | not_an_object
    checks: list[tuple[Column, Column]] = [(malformed, F.lit("malformed_json"))]
    checks += [(typed[name].isNull(), F.lit(f"missing_field:{name}")) for name in REQUIRED_FIELDS if name != C.EVENT_TS]
    checks += [
        (field(C.EVENT_TS).isNull(), F.lit(f"missing_field:{C.EVENT_TS}")),
        (typed[C.EVENT_TS].isNull(), F.lit("bad_timestamp")),
    ]
    for name in (C.ACCOUNT_CREATED_AT, C.HASHTAGS, C.VERIFIED, *_COUNT_FIELDS):
        checks.append((field(name).isNotNull() & typed[name].isNull(), F.lit(f"bad_type:{name}")))
    reason = F.coalesce(*[F.when(failed, code) for failed, code in checks])
    passthrough = [c for c in lines.columns if c != "value"]
    return (
        parsed.select(
            *passthrough,
            *[typed[f.name].alias(f.name) for f in schemas.CANONICAL_EVENT_SCHEMA.fields],
            reason.alias(C.REASON),
            F.col("value"),
        )
        .withColumn(C.RAW, F.when(F.col(C.REASON).isNotNull(), F.substring("value", 1, max_raw_chars)))
        .drop("value")
    )


def with_line_numbers(lines: DataFrame) -> DataFrame:
    """Add ``source_line`` (1-based line number in its file) from the split offsets.

    Requires ``source_path``, ``block_start`` and ``ordinal`` (increasing in read
    order within a split, as from :func:`klout_spark.io.read_dump_lines`). Only a
    small per-split summary is shuffled, never the lines themselves.
    """
    splits = lines.groupBy(C.SOURCE_PATH, "block_start").agg(
        F.min("ordinal").alias("first_ordinal"), F.count(F.lit(1)).alias("split_lines")
    )
    earlier = Window.partitionBy(C.SOURCE_PATH).orderBy("block_start").rowsBetween(
        Window.unboundedPreceding, -1
    )
    bases = splits.withColumn("line_base", F.coalesce(F.sum("split_lines").over(earlier), F.lit(0)))
    return (
        lines.join(F.broadcast(bases), on=[C.SOURCE_PATH, "block_start"], how="inner")
        .withColumn(C.SOURCE_LINE, F.col("line_base") + F.col("ordinal") - F.col("first_ordinal") + 1)
        .drop("first_ordinal", "split_lines", "line_base", "block_start", "ordinal")
    )


def batch_id_for(checksums: Sequence[str]) -> str:
    """Deterministic batch id: the same set of new files always gets the same id."""
    return hashlib.sha256("\n".join(sorted(checksums)).encode()).hexdigest()[:16]


def ingest_files(
    lake: Lakehouse,
    paths: Sequence[str],
    *,
    run_id: str,
    fmt: str,
    max_raw_chars: int,
) -> IngestSummary:
    """Ingest the dump files under ``paths`` that are not ingested yet.

    Raises
    ------
    InputError
        A path does not exist or names a file of an unsupported kind.
    """
    if fmt not in ("auto", "canonical"):
        raise InputError(f"format must be 'auto' or 'canonical' (other formats are not supported yet), got {fmt!r}")
    files = discover_dump_files(paths, fmt="canonical")
    new_files = _not_yet_ingested(lake, files)
    skipped = len(files) - len(new_files)
    if skipped:
        log.info("ingest: %d of %d files already ingested (same checksum), skipped", skipped, len(files))
    if not new_files:
        return IngestSummary(batch_id=None, files_found=len(files), files_skipped=skipped, accounts=())
    batch_id = batch_id_for([f.checksum for f in new_files])
    checksums = [f.checksum for f in new_files]
    # Leftovers of an attempt that crashed before its commit point.
    lake.delete(catalog.BRONZE_EVENTS, F.col(C.SOURCE_CHECKSUM).isin(checksums))
    lake.delete(
        catalog.QUARANTINE,
        (F.col(C.STAGE) == INGEST_STAGE) & F.col(C.SOURCE_CHECKSUM).isin(checksums),
    )
    ingested_at = datetime.now(UTC)
    parsed = _parsed_batch(lake, new_files, batch_id=batch_id, ingested_at=ingested_at,
                           max_raw_chars=max_raw_chars)
    # Parse once into the cache; line numbers, bronze, quarantine and the
    # accounting all read the cached rows instead of the files again.
    parsed.persist()
    try:
        numbered = parsed.transform(with_line_numbers).filter(~F.col("_blank")).drop("_blank")
        bronze = numbered.filter(F.col(C.REASON).isNull()).withColumn(C.EVENT_DATE, F.to_date(C.EVENT_TS))
        lake.append(bronze, catalog.BRONZE_EVENTS, schemas.BRONZE_EVENTS_SCHEMA, partition_by=[C.EVENT_DATE])
        rejected = numbered.filter(F.col(C.REASON).isNotNull()).select(
            F.lit(INGEST_STAGE).alias(C.STAGE),
            C.REASON,
            C.RAW,
            C.EVENT_ID,
            C.SOURCE_PATH,
            C.SOURCE_CHECKSUM,
            C.SOURCE_LINE,
            C.BATCH_ID,
            F.lit(run_id).alias(C.RUN_ID),
            F.lit(ingested_at).cast("timestamp").alias(C.QUARANTINED_AT),
        )
        lake.append(rejected, catalog.QUARANTINE, schemas.QUARANTINE_SCHEMA)
        accounts = _account(numbered, new_files)
    finally:
        parsed.unpersist()
    _commit(lake, new_files, accounts, batch_id=batch_id)
    return IngestSummary(batch_id=batch_id, files_found=len(files), files_skipped=skipped, accounts=accounts)


def _not_yet_ingested(lake: Lakehouse, files: Sequence[SourceFile]) -> list[SourceFile]:
    done: set[str] = set()
    if lake.exists(catalog.INGEST_LOG) and files:
        wanted = [f.checksum for f in files]
        rows = (
            lake.read(catalog.INGEST_LOG)
            .filter(F.col(C.SOURCE_CHECKSUM).isin(wanted))
            .select(C.SOURCE_CHECKSUM)
            .distinct()
            .collect()
        )
        done = {r[0] for r in rows}
    unique: dict[str, SourceFile] = {}
    for f in files:
        if f.checksum in done:
            continue
        if f.checksum in unique:
            log.info("ingest: %s has the same content as %s; ingesting it once", f.path, unique[f.checksum].path)
            continue
        unique[f.checksum] = f
    return list(unique.values())


def _parsed_batch(
    lake: Lakehouse,
    files: Sequence[SourceFile],
    *,
    batch_id: str,
    ingested_at: datetime,
    max_raw_chars: int,
) -> DataFrame:
    spark = lake.spark
    checksum_of = spark.createDataFrame(
        [(f.path, f.checksum) for f in files],
        T.StructType(
            [
                T.StructField(C.SOURCE_PATH, T.StringType(), False),
                T.StructField(C.SOURCE_CHECKSUM, T.StringType(), False),
            ]
        ),
    )
    lines = read_dump_lines(spark, files)
    # Blank lines are not records, but they still count in the line numbers.
    blank = F.length(F.trim(F.col("value"))) == 0
    return (
        lines.withColumn("_blank", blank)
        .join(F.broadcast(checksum_of), on=C.SOURCE_PATH, how="left")
        .transform(parse_canonical_lines, max_raw_chars=max_raw_chars)
        .withColumn(C.BATCH_ID, F.lit(batch_id))
        .withColumn(C.INGESTED_AT, F.lit(ingested_at).cast("timestamp"))
    )


def _account(parsed: DataFrame, files: Sequence[SourceFile]) -> tuple[FileAccount, ...]:
    # One row per file: bounded by the number of files, not by their content.
    rows = (
        parsed.groupBy(C.SOURCE_PATH)
        .agg(
            F.count(F.lit(1)).alias(C.ROWS_READ),
            F.count(F.when(F.col(C.REASON).isNull(), 1)).alias(C.ROWS_OK),
            F.count(F.when(F.col(C.REASON).isNotNull(), 1)).alias(C.ROWS_QUARANTINED),
            F.count(F.when(F.col(C.SOURCE_CHECKSUM).isNull(), 1)).alias("unmatched"),
        )
        .collect()
    )
    by_path = {r[C.SOURCE_PATH]: r for r in rows}
    unknown = sorted(set(by_path) - {f.path for f in files})
    if unknown:
        raise InputError(f"ingest: Spark read files it was not given (path mapping broke): {unknown[:3]}")
    accounts = []
    for f in files:
        row = by_path.get(f.path)
        read, ok, bad = (row[C.ROWS_READ], row[C.ROWS_OK], row[C.ROWS_QUARANTINED]) if row else (0, 0, 0)
        accounts.append(FileAccount(f.path, f.checksum, read, ok, bad))
    return tuple(accounts)


def _commit(lake: Lakehouse, files: Sequence[SourceFile], accounts: Sequence[FileAccount], *, batch_id: str) -> None:
    committed_at = datetime.now(UTC)
    by_checksum = {a.checksum: a for a in accounts}
    rows = [
        (
            f.path,
            f.size_bytes,
            f.modified_at,
            f.checksum,
            f.format,
            batch_id,
            by_checksum[f.checksum].rows_read,
            by_checksum[f.checksum].rows_ok,
            by_checksum[f.checksum].rows_quarantined,
            committed_at,
        )
        for f in files
    ]
    log_rows = lake.spark.createDataFrame(rows, schemas.INGEST_LOG_SCHEMA)
    lake.append(log_rows, catalog.INGEST_LOG, schemas.INGEST_LOG_SCHEMA)
