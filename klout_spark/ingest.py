"""Stage 1: raw dump files -> ``bronze_events`` (+ ``ingest_log``, ``quarantine``).

Exactly once, nothing lost:

- every file is identified by the SHA-256 of its bytes; a checksum already in
  ``ingest_log`` is skipped, whatever the file is called now;
- every non-blank input line (a CSV data line, a Parquet row) ends in
  ``bronze_events`` (as one or more typed events) or in ``quarantine`` (one row,
  with a reason code and the raw text), so per file
  ``rows_read == rows_ok + rows_quarantined``, counted in LINES: a tweet line
  that yields a tweet, three mentions and a profile counts once as ok (Facebook
  feed pages and LinkedIn API responses count each post / element, LinkedIn
  archive CSVs each record, so one bad post does not take its page with it);
- the ``ingest_log`` rows are written last and are the commit point: readers
  take only the bronze rows of a (batch, file) pair that ``ingest_log`` holds
  (:func:`only_committed`), so a crash before it leaves rows no reader uses,
  and the attempt that commits those files later deletes them.

Concurrent ingests of the same files (two runs started together) do not
duplicate. Each attempt writes under its own batch id; the commit is a MERGE
into ``ingest_log`` keyed on the checksum (insert if absent), so of two racing
attempts exactly one commits a file (Delta fails the other MERGE with a commit
conflict and it merges again, matching the winner's row). The loser then finds
the file committed under another batch id, deletes its own rows of that file
(which no reader ever took) and reports the file as already ingested.

Formats are readers in :mod:`klout_spark.readers` (pure DataFrame transforms);
with ``fmt="auto"`` each file's format is detected from its first lines and
recorded in ``ingest_log.format``. ``.gz`` and ``.bz2`` are read by Spark;
``.zst`` is decompressed first into ``<lake root>/_staging/<batch>/`` (Spark's
zstd codec rejects the 2 GiB windows of Pushshift dumps) and the staging
folder is removed after the commit.

A damaged file (a truncated or corrupt ``.gz``/``.bz2``/``.zst``, an unreadable
Parquet file) does not stop the batch: its readable prefix is kept (its lines
are accounted like any other; a line cut by the damage is ``malformed_json``),
and one more quarantine row, reason ``truncated_file`` (unexpected end of
data) or ``corrupt_file`` (anything else), raw = the path and the error,
stands for the unreadable rest and is counted as one read, quarantined row.

Reply targets the line does not carry (Reddit) are resolved against the bronze
events already ingested plus the current batch (:func:`resolve_parent_authors`);
unresolved ones are quarantined as ``unknown_parent``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog, readers, schemas
from klout_spark import columns as C
from klout_spark.errors import InputError
from klout_spark.io import (
    FILE_URI,
    Lakehouse,
    SourceFile,
    discover_dump_files,
    file_kind,
    peek_lines,
    peek_numbered_lines,
    probe_damage,
    read_dump_lines,
    read_parquet_rows,
    read_text_head,
    read_whole_files,
    source_path_of,
    stage_zstd,
    zstd_staged_path,
)
from klout_spark.readers import EVENT_INDEX, linkedin
from klout_spark.readers._common import (
    CORRUPT,
    event_struct,
    explode_line_events,
    normalized_hashtags,
    parse_timestamp,
)
from klout_spark.readers.canonical import REQUIRED_FIELDS, parse_canonical_lines

__all__ = [
    "CORRUPT",
    "REQUIRED_FIELDS",
    "FileAccount",
    "IngestSummary",
    "batch_id_for",
    "ingest_files",
    "normalized_hashtags",
    "only_committed",
    "parse_canonical_lines",
    "parse_timestamp",
    "resolve_parent_authors",
    "with_line_numbers",
]

log = logging.getLogger(__name__)

INGEST_STAGE = "ingest"
TRUNCATED_FILE = "truncated_file"
CORRUPT_FILE = "corrupt_file"
UNKNOWN_PARENT = "unknown_parent"
# Lines peeked per file to detect its format.
DETECT_LINES = 20
# A pretty-printed JSON file up to this size is read whole to detect its format.
DETECT_DOCUMENT_MAX_BYTES = 64 * 1024 * 1024
# Lines searched for a LinkedIn archive file's header (Connections.csv has a preamble).
ARCHIVE_HEADER_LINES = 50
MISSING_HEADER = "missing_header"
_NEEDS_PARENT_AUTHOR_TYPES = (schemas.REPLY, schemas.RESHARE, schemas.QUOTE, schemas.LIKE)
# Formats whose lines may name a parent post without its author.
_RESOLVED_FORMATS = (readers.REDDIT, readers.LINKEDIN, readers.LINKEDIN_ARCHIVE)


@dataclass(frozen=True)
class FileAccount:
    path: str
    checksum: str
    rows_read: int
    rows_ok: int
    rows_quarantined: int
    format: str = readers.CANONICAL
    damage: str | None = None


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


def with_line_numbers(lines: DataFrame, *, source_path: Callable[[Column], Column] | None = None) -> DataFrame:
    """Add ``source_line`` (1-based line number in its file) from the split offsets.

    Requires ``block_start``, ``ordinal`` (increasing in read order within a
    split) and the file of each line: ``source_path``, or ``_file`` (as from
    :func:`klout_spark.io.read_dump_lines`) with ``source_path`` the function
    that maps it to the path, which then replaces ``_file``. The mapping is
    applied to the per-split summary, not to every line. Only that small
    summary is shuffled, never the lines themselves.
    """
    key = FILE_URI if source_path is not None else C.SOURCE_PATH
    splits = lines.groupBy(key, "block_start").agg(
        F.min("ordinal").alias("first_ordinal"), F.count(F.lit(1)).alias("split_lines")
    )
    earlier = Window.partitionBy(key).orderBy("block_start").rowsBetween(Window.unboundedPreceding, -1)
    bases = splits.withColumn("line_base", F.coalesce(F.sum("split_lines").over(earlier), F.lit(0)))
    if source_path is not None:
        bases = bases.withColumn(C.SOURCE_PATH, source_path(F.col(FILE_URI)))
    kept = [C.SOURCE_PATH if c == key else c for c in lines.columns if c not in ("block_start", "ordinal")]
    return (
        lines.join(F.broadcast(bases), on=[key, "block_start"], how="inner")
        .withColumn(C.SOURCE_LINE, F.col("line_base") + F.col("ordinal") - F.col("first_ordinal") + 1)
        .select(*kept, C.SOURCE_LINE)
    )


def batch_id_for(checksums: Sequence[str], *, attempt: str) -> str:
    """Batch id of one ingest attempt: its files' checksums and the attempt's own token.

    Two attempts at the same files (a rerun after a crash, two runs started
    together) get different ids, which is what tells their rows apart.
    """
    return hashlib.sha256("\n".join([attempt, *sorted(checksums)]).encode()).hexdigest()[:16]


def only_committed(rows: DataFrame, ingest_log: DataFrame) -> DataFrame:
    """Keep the rows whose (``batch_id``, ``source_checksum``) is committed in ``ingest_log``.

    Rows of a crashed attempt, or of an attempt that lost a race for a file,
    are never in ``ingest_log`` under their batch id, so they are dropped. The
    log has one row per file, so the semi-join's build side stays small.
    """
    committed = ingest_log.select(C.BATCH_ID, C.SOURCE_CHECKSUM)
    return rows.join(F.broadcast(committed), on=[C.BATCH_ID, C.SOURCE_CHECKSUM], how="left_semi")


def ingest_files(
    lake: Lakehouse,
    paths: Sequence[str],
    *,
    run_id: str,
    fmt: str,
    max_raw_chars: int,
) -> IngestSummary:
    """Ingest the dump files under ``paths`` that are not ingested yet.

    Parameters
    ----------
    fmt
        ``auto`` (detect per file), ``canonical``, ``twitter``, ``twitter_v2``,
        ``reddit``, ``facebook`` or ``linkedin``.

    Returns
    -------
    IngestSummary
        The files found, those skipped (committed before, or by a concurrent
        ingest while this one ran) and one account per file this call committed;
        ``batch_id`` is None when it committed none.

    Raises
    ------
    InputError
        A path does not exist, names a file of an unsupported kind, or a file
        kind the format has no form for (a Twitter ``.csv``).
    """
    if fmt not in readers.FORMAT_CHOICES:
        raise InputError(f"format must be one of {list(readers.FORMAT_CHOICES)}, got {fmt!r}")
    files = [f for f in discover_dump_files(paths, fmt=fmt) if not _other_archive_file(f.path)]
    for f in files:
        _reader_for(f.path, fmt)  # a wrong format/file-kind pair fails before any work
    new_files = _not_yet_ingested(lake, files)
    skipped = len(files) - len(new_files)
    if skipped:
        log.info("ingest: %d of %d files already ingested (same checksum), skipped", skipped, len(files))
    if not new_files:
        return IngestSummary(batch_id=None, files_found=len(files), files_skipped=skipped, accounts=())
    checksums = [f.checksum for f in new_files]
    batch_id = batch_id_for(checksums, attempt=uuid.uuid4().hex)
    staging = _staging_dir(lake, batch_id)
    damage: dict[str, str] = {}
    new_files = [_prepared(f, fmt, staging, damage) for f in new_files]
    # Leftovers of crashed attempts are not deleted here: a concurrent attempt's
    # uncommitted rows look the same. They are invisible, and deleted after the commit.
    ingested_at = datetime.now(UTC)
    parsed = _parsed_batch_or_salvage(lake, new_files, damage, batch_id=batch_id, ingested_at=ingested_at,
                                      max_raw_chars=max_raw_chars)
    try:
        events = parsed
        if any(f.format in _RESOLVED_FORMATS for f in new_files):
            events = resolve_parent_authors(parsed, _known_posts(lake, parsed), max_raw_chars=max_raw_chars)
            events.persist()
        rejected = events.filter(F.col(C.REASON).isNotNull()).select(
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
        accounts = _account(events, new_files, damage)
        # Bronze last: resolved events read bronze_events (the known posts), and a commit to a
        # table drops the cached frames that read it, so a later use would resolve them again.
        bronze = events.filter(F.col(C.REASON).isNull()).withColumn(C.EVENT_DATE, F.to_date(C.EVENT_TS))
        lake.append(bronze, catalog.BRONZE_EVENTS, schemas.BRONZE_EVENTS_SCHEMA, partition_by=[C.EVENT_DATE])
    finally:
        parsed.unpersist()
        if events is not parsed:
            events.unpersist()
    won = _commit(lake, new_files, accounts, batch_id=batch_id)
    _delete_uncommitted(lake, checksums, won, batch_id=batch_id)
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    lost = [f.path for f in new_files if f.checksum not in won]
    if lost:
        log.warning(
            "ingest: %d of %d files were committed by a concurrent ingest first; this run's rows of them "
            "were removed and they count as already ingested: %s", len(lost), len(new_files), lost[:5],
        )
    accounts = tuple(a for a in accounts if a.checksum in won)
    for account in accounts:
        if account.damage:
            log.warning("ingest: %s is damaged (%s): its readable prefix was kept", account.path, account.damage)
    return IngestSummary(
        batch_id=batch_id if accounts else None,
        files_found=len(files),
        files_skipped=skipped + len(lost),
        accounts=accounts,
    )


def resolve_parent_authors(events: DataFrame, known_posts: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Fill the subject of replies/reshares/quotes whose line names only the parent post.

    Parameters
    ----------
    events
        Reader output. Rows with ``reason`` null, ``subject_id`` null,
        ``parent_post_id`` set and a reply/reshare/quote type get as subject the
        author of the parent; they must carry ``raw`` (readers keep it for them).
    known_posts
        ``post_id``, ``actor_id`` of authored events (bronze plus the batch).

    Returns
    -------
    DataFrame
        ``events`` with those subjects filled, or ``reason`` = ``unknown_parent``
        where no known post matches. Only the pending rows are joined (shuffled).
    """
    pending = (
        F.col(C.REASON).isNull()
        & F.col(C.SUBJECT_ID).isNull()
        & F.col(C.PARENT_POST_ID).isNotNull()
        & F.col(C.EVENT_TYPE).isin(*_NEEDS_PARENT_AUTHOR_TYPES)
    )
    flagged = events.withColumn("_pending", F.coalesce(pending, F.lit(False)))
    authors = known_posts.groupBy(F.col(C.POST_ID).alias("_parent")).agg(F.min(C.ACTOR_ID).alias("_parent_author"))
    resolved = (
        flagged.filter(F.col("_pending"))
        .join(authors, F.col(C.PARENT_POST_ID) == F.col("_parent"), how="left")
        .withColumn(C.SUBJECT_ID, F.col("_parent_author"))
        .withColumn(C.REASON, F.when(F.col("_parent_author").isNull(), F.lit(UNKNOWN_PARENT)))
        .withColumn(C.RAW, F.when(F.col(C.REASON).isNotNull(), F.substring(C.RAW, 1, max_raw_chars)))
        .drop("_parent", "_parent_author")
    )
    return flagged.filter(~F.col("_pending")).unionByName(resolved).drop("_pending")


def _known_posts(lake: Lakehouse, batch: DataFrame) -> DataFrame:
    authored = F.col(C.EVENT_TYPE).isin(*schemas.AUTHORED_TYPES) & F.col(C.POST_ID).isNotNull()
    current = batch.filter(F.col(C.REASON).isNull() & authored).select(C.POST_ID, C.ACTOR_ID)
    if not (lake.exists(catalog.BRONZE_EVENTS) and lake.exists(catalog.INGEST_LOG)):
        return current
    earlier = only_committed(lake.read(catalog.BRONZE_EVENTS), lake.read(catalog.INGEST_LOG))
    return earlier.filter(authored).select(C.POST_ID, C.ACTOR_ID).unionByName(current)


def _other_archive_file(path: str) -> bool:
    """A CSV of a LinkedIn archive that holds no activity (Profile.csv, messages.csv...): not ingested."""
    other = (
        file_kind(path) == "csv"
        and linkedin.archive_member(path) is not None
        and linkedin.archive_kind(path) is None
    )
    if other:
        log.info("ingest: %s is a LinkedIn archive file without activity; skipped", path)
    return other


def _reader_for(path: str, fmt: str) -> str | None:
    """The reader of a file by its kind; None for a JSON-lines file under ``auto`` (detected later)."""
    kind = file_kind(path)
    if kind == "csv" and fmt in ("auto", readers.LINKEDIN) and linkedin.archive_kind(path) is not None:
        return readers.LINKEDIN_ARCHIVE
    if kind == "csv" and fmt == readers.LINKEDIN:
        raise InputError(
            f"{path}: LinkedIn CSVs are read from a member archive folder named linkedin-archive-<member> "
            f"(files {sorted(linkedin.ARCHIVE_FILES)})"
        )
    if kind in ("csv", "parquet"):
        if fmt not in ("auto", readers.CANONICAL):
            raise InputError(f"{path}: format {fmt!r} has no {kind} form; only canonical events come as {kind}")
        return readers.CANONICAL_CSV if kind == "csv" else readers.CANONICAL_PARQUET
    return None if fmt == "auto" else fmt


def _staging_dir(lake: Lakehouse, batch_id: str) -> str | None:
    """The local folder for decompressed ``.zst`` copies, or None if the lakehouse is not local."""
    root = lake.root
    if root.startswith("file:"):
        root = "/" + root[len("file:") :].lstrip("/")
    if "://" in root:
        return None
    return str(Path(root) / "_staging" / batch_id)


def _prepared(f: SourceFile, fmt: str, staging: str | None, damage: dict[str, str]) -> SourceFile:
    """Stage a ``.zst`` file, then settle its format (detected from its first lines under ``auto``)."""
    if f.path.lower().endswith(".zst"):
        if staging is None:
            raise InputError(f"{f.path}: .zst dumps are decompressed into the lakehouse, which must be local")
        try:
            stage_zstd(f.path, staging)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - zstandard raises its own ZstdError; the prefix is staged
            damage[f.path] = _damage_reason(str(exc)) + ": " + str(exc)[:500]
        f = replace(f, read_path=zstd_staged_path(f.path, staging))
    chosen = _reader_for(f.path, fmt)
    if chosen is None:
        head = peek_lines(f.read_path or f.path, limit=DETECT_LINES)
        chosen = next((d for d in map(readers.detect_format, head) if d is not None), None)
        if chosen is None and head and head[0].lstrip().startswith("{") and f.size_bytes <= DETECT_DOCUMENT_MAX_BYTES:
            chosen = readers.detect_document(read_text_head(f.read_path or f.path, max_chars=DETECT_DOCUMENT_MAX_BYTES))
        if chosen is None:
            log.warning("ingest: cannot tell the format of %s from its first lines; reading it as canonical", f.path)
            chosen = readers.CANONICAL
    return replace(f, format=chosen)


def _damage_reason(message: str) -> str:
    truncated = ("EOF", "Unexpected end", "end of input", "truncated", "incomplete")
    return TRUNCATED_FILE if any(t.lower() in message.lower() for t in truncated) else CORRUPT_FILE


def _parsed_batch_or_salvage(
    lake: Lakehouse,
    files: Sequence[SourceFile],
    damage: dict[str, str],
    **kwargs,
) -> DataFrame:
    """Parse the batch into the cache; if a file is damaged, find it, keep its prefix and go on."""
    parsed = None
    try:
        # Building the plan reads Parquet footers, so a damaged Parquet file fails here already.
        parsed = _parsed_batch(lake, files, damage, ignore_corrupt=bool(damage), **kwargs)
        parsed.persist()
        parsed.count()
        return parsed
    except (Py4JJavaError, PySparkException) as exc:
        if parsed is not None:
            parsed.unpersist()
        log.warning("ingest: the batch read failed (%s); looking for damaged files", str(exc).splitlines()[0][:200])
        for f in files:
            error = probe_damage(lake.spark, f)
            if error is not None:
                damage[f.path] = _damage_reason(error) + ": " + _first_cause(error)
        if not damage:
            raise
    parsed = _parsed_batch(lake, files, damage, ignore_corrupt=True, **kwargs)
    parsed.persist()
    parsed.count()
    return parsed


def _first_cause(error: str) -> str:
    causes = [line.strip() for line in error.splitlines() if "Exception" in line or "Error" in line]
    return (causes[-1] if causes else error.splitlines()[0] if error else "")[:500]


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
    damage: dict[str, str],
    *,
    batch_id: str,
    ingested_at: datetime,
    max_raw_chars: int,
    ignore_corrupt: bool,
) -> DataFrame:
    spark = lake.spark
    parts: list[DataFrame] = []
    for fmt, parse in readers.LINE_PARSERS.items():
        group = [f for f in files if f.format == fmt]
        documents = [f for f in group if fmt in readers.DOCUMENT_FORMATS and _is_document(f)]
        group = [f for f in group if f not in documents]
        if group:
            parts.append(_numbered_lines(spark, group, ignore_corrupt).transform(parse, max_raw_chars=max_raw_chars))
        if documents:
            whole = read_whole_files(spark, documents, ignore_corrupt=ignore_corrupt)
            parts.append(whole.transform(parse, max_raw_chars=max_raw_chars))
    archives = [f for f in files if f.format == readers.LINKEDIN_ARCHIVE]
    if archives:
        parts.extend(_linkedin_archives(spark, archives, ignore_corrupt, max_raw_chars))
    for f in files:
        if f.format == readers.CANONICAL_CSV:
            header = next(iter(peek_lines(f.read_path or f.path, limit=1)), "")
            lines = _numbered_lines(spark, [f], ignore_corrupt).filter(
                (F.col(C.SOURCE_LINE) > 1) & (F.col("value") != F.lit(header))
            )
            names = [c.strip().strip('"') for c in header.split(",")] if header else []
            parts.append(readers.parse_canonical_csv_lines(lines, header=names, max_raw_chars=max_raw_chars))
        elif f.format == readers.CANONICAL_PARQUET and f.path not in damage:
            rows = read_parquet_rows(spark, f, ignore_corrupt=ignore_corrupt)
            parts.append(
                readers.parquet_rows_as_lines(rows)
                .select(C.SOURCE_PATH, C.SOURCE_LINE, "value", "_type_reason")
                .transform(readers.parse_canonical_parquet, max_raw_chars=max_raw_chars)
            )
    if damage:
        parts.append(_damage_rows(spark, damage))
    parsed = parts[0]
    for part in parts[1:]:
        parsed = parsed.unionByName(part)
    checksum_of = spark.createDataFrame(
        [(f.path, f.checksum) for f in files],
        T.StructType(
            [
                T.StructField(C.SOURCE_PATH, T.StringType(), False),
                T.StructField(C.SOURCE_CHECKSUM, T.StringType(), False),
            ]
        ),
    )
    return (
        parsed.join(F.broadcast(checksum_of), on=C.SOURCE_PATH, how="left")
        .withColumn(C.BATCH_ID, F.lit(batch_id))
        .withColumn(C.INGESTED_AT, F.lit(ingested_at).cast("timestamp"))
    )


def _is_document(f: SourceFile) -> bool:
    """A JSON file whose first non-blank line is not a whole JSON value: one pretty-printed document."""
    head = peek_lines(f.read_path or f.path, limit=1)
    if not head:
        return False
    try:
        json.loads(head[0])
    except ValueError:
        return True
    return False


def _linkedin_archives(
    spark, files: Sequence[SourceFile], ignore_corrupt: bool, max_raw_chars: int
) -> list[DataFrame]:
    """Archive CSVs, parsed: their records after the header (preamble lines are not records).

    Files of one kind with the same columns are read and parsed together, one
    plan for any number of member archives; each file's header line and member
    come from a small table joined to its lines.
    """
    groups: dict[tuple[str, tuple[str, ...] | None], list[tuple[SourceFile, int, str]]] = {}
    for f in files:
        kind = linkedin.archive_kind(f.path)
        found = linkedin.find_header(peek_numbered_lines(f.read_path or f.path, limit=ARCHIVE_HEADER_LINES), kind)
        header_line, header = found if found is not None else (0, None)
        key = (kind, tuple(header) if header is not None else None)
        groups.setdefault(key, []).append((f, header_line, linkedin.archive_member(f.path)))
    layout_schema = T.StructType(
        [
            T.StructField(C.SOURCE_PATH, T.StringType(), False),
            T.StructField("_header_line", T.LongType(), False),
            T.StructField("_member", T.StringType(), False),
        ]
    )
    parts = []
    for (kind, header), group in groups.items():
        archive_files = [f for f, _, _ in group]
        lines = read_dump_lines(spark, archive_files, ignore_corrupt=ignore_corrupt).transform(
            with_line_numbers, source_path=partial(source_path_of, archive_files)
        )
        if header is None:
            # No header: nothing can be read by column name; every record is kept in quarantine.
            records = linkedin.csv_records(lines)
            reason = F.lit(f"{MISSING_HEADER}:{','.join(linkedin.REQUIRED_COLUMNS[kind])}")
            parts.append(
                explode_line_events(records, events=F.array(event_struct()), reason=reason, max_raw_chars=max_raw_chars)
            )
            continue
        layout = spark.createDataFrame([(f.path, line, member) for f, line, member in group], layout_schema)
        body = (
            lines.join(F.broadcast(layout), on=C.SOURCE_PATH)
            .filter(F.col(C.SOURCE_LINE) > F.col("_header_line"))
            .select(C.SOURCE_PATH, C.SOURCE_LINE, "value")
        )
        records = linkedin.csv_records(body).join(F.broadcast(layout.drop("_header_line")), on=C.SOURCE_PATH)
        parsed = linkedin.parse_linkedin_archive(
            records, kind=kind, header=list(header), member=F.col("_member"), max_raw_chars=max_raw_chars
        )
        parts.append(parsed.drop("_member"))
    return parts


def _numbered_lines(spark, files: Sequence[SourceFile], ignore_corrupt: bool) -> DataFrame:
    """Lines with ``source_path`` and ``source_line``; blank lines dropped after numbering."""
    # Blank lines are not records, but they still count in the line numbers.
    return (
        read_dump_lines(spark, files, ignore_corrupt=ignore_corrupt)
        .transform(with_line_numbers, source_path=partial(source_path_of, files))
        .filter(F.length(F.trim(F.col("value"))) > 0)
    )


def _damage_rows(spark, damage: dict[str, str]) -> DataFrame:
    """One quarantine row per damaged file, standing for its unreadable rest."""
    rows = [(path, text.split(":", 1)[0], f"{path}: {text}") for path, text in sorted(damage.items())]
    frame = spark.createDataFrame(rows, f"{C.SOURCE_PATH} string, {C.REASON} string, {C.RAW} string")
    return frame.select(
        C.SOURCE_PATH,
        F.lit(None).cast("long").alias(C.SOURCE_LINE),
        *[F.lit(None).cast(f.dataType).alias(f.name) for f in schemas.CANONICAL_EVENT_SCHEMA.fields],
        C.REASON,
        C.RAW,
        F.lit(0).cast("long").alias(EVENT_INDEX),
    )


def _account(
    events: DataFrame, files: Sequence[SourceFile], damage: dict[str, str]
) -> tuple[FileAccount, ...]:
    # One row per file: bounded by the number of files, not by their content.
    # Only the first row of each line counts, so a line that yields several events counts once.
    head = F.col(EVENT_INDEX) == 0
    rows = (
        events.groupBy(C.SOURCE_PATH)
        .agg(
            F.count(F.when(head, 1)).alias(C.ROWS_READ),
            F.count(F.when(head & F.col(C.REASON).isNull(), 1)).alias(C.ROWS_OK),
            F.count(F.when(head & F.col(C.REASON).isNotNull(), 1)).alias(C.ROWS_QUARANTINED),
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
        kind = damage[f.path].split(":", 1)[0] if f.path in damage else None
        accounts.append(FileAccount(f.path, f.checksum, read, ok, bad, format=f.format, damage=kind))
    return tuple(accounts)


def _commit(
    lake: Lakehouse, files: Sequence[SourceFile], accounts: Sequence[FileAccount], *, batch_id: str
) -> set[str]:
    """Record ``files`` in ``ingest_log`` unless already there; return the checksums this attempt committed.

    A MERGE keyed on the checksum: a file that another attempt committed first
    (even one that committed while this one was running) keeps that attempt's row.
    """
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
    inserted = lake.merge_new(log_rows, catalog.INGEST_LOG, schemas.INGEST_LOG_SCHEMA, keys=[C.SOURCE_CHECKSUM])
    if inserted == len(by_checksum):
        return set(by_checksum)  # every row went in: no other attempt committed any of these files
    mine = (
        lake.read(catalog.INGEST_LOG)
        .filter(F.col(C.SOURCE_CHECKSUM).isin(list(by_checksum)) & (F.col(C.BATCH_ID) == batch_id))
        .select(C.SOURCE_CHECKSUM)
        .collect()
    )
    return {r[0] for r in mine}


def _delete_uncommitted(lake: Lakehouse, checksums: Sequence[str], won: set[str], *, batch_id: str) -> None:
    """Delete the rows of ``checksums`` that no commit covers, now that ``ingest_log`` decides.

    For the files this attempt committed: the rows of other attempts (crashed
    ones, or racers that lost). For the files another attempt committed: this
    attempt's own rows. Either way only rows that :func:`only_committed` drops.
    """
    lost = sorted(set(checksums) - won)
    stale = F.lit(False)
    if won:
        stale = stale | (F.col(C.SOURCE_CHECKSUM).isin(sorted(won)) & (F.col(C.BATCH_ID) != batch_id))
    if lost:
        stale = stale | (F.col(C.SOURCE_CHECKSUM).isin(lost) & (F.col(C.BATCH_ID) == batch_id))
    lake.delete(catalog.BRONZE_EVENTS, stale)
    lake.delete(catalog.QUARANTINE, (F.col(C.STAGE) == INGEST_STAGE) & stale)
