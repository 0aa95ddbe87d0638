"""All reads and writes of lakehouse tables: the only module that knows paths and Delta.

Every write is safe to repeat:

- ``append`` is for append-only tables whose callers first delete what a
  crashed attempt may have left (see :mod:`klout_spark.ingest`);
- ``overwrite_slice`` replaces one ``as_of`` (or date range) atomically with
  Delta's ``replaceWhere``: readers see the old slice or the new one, never a mix;
- ``merge_new`` inserts only rows whose key is not there yet (idempotent upsert).

Several processes may write the same lakehouse at once (two ingests of one
folder, an ingest beside a validate): a table created by both is created once,
and a ``merge_new`` or ``delete`` that loses a Delta commit conflict is run
again on the new snapshot, which is safe because both are idempotent. Blind
appends never conflict.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import delta.exceptions.captured  # noqa: F401 - makes Delta's commit conflicts raise delta.exceptions types
from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.errors import ConcurrentRunError, InputError, StageOrderError, StorageError

log = logging.getLogger(__name__)
T_ = TypeVar("T_")

# Delta's optimistic-concurrency conflicts: another writer committed first.
COMMIT_CONFLICTS: tuple[type[Exception], ...] = (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
# Attempts of an idempotent write that keeps losing commit conflicts.
CONFLICT_RETRIES = 5
# How long to wait for another writer's create of a table whose location it has begun to fill.
CREATE_WAIT_SECONDS = 60.0
# Delta's errors for creating a table where files but no committed version are.
_LOCATION_NOT_A_TABLE = frozenset(
    {"DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION", "DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND"}
)
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
            self._create(table, schema, partition_by)
        catalog.register_table(self.spark, self.root, self.database, table)

    def _create(self, table: str, schema: T.StructType, partition_by: Sequence[str], *, retry: bool = True) -> None:
        builder = delta_table_builder(
            self.spark, self.path(table), schema, partition_by, stats_columns=catalog.STATS_COLUMNS.get(table)
        )
        try:
            builder.execute()
        except COMMIT_CONFLICTS:
            # Two writers created the table at once; the other one's version 0 stands.
            if not self.exists(table):
                raise
            log.info("%s was created by a concurrent writer", table)
        except AnalysisException as exc:
            # The location holds files but no committed version: another writer's create in flight,
            # a killed create's leftovers, or files that are not ours.
            if exc.getCondition() not in _LOCATION_NOT_A_TABLE:
                raise
            if self._await_version_0(table):
                log.info("%s was created by a concurrent writer", table)
            elif retry and self._clear_abandoned_create(table):
                self._create(table, schema, partition_by, retry=False)
            else:
                raise StorageError(
                    f"cannot create table {self.database}.{table}: {self.path(table)} holds files "
                    f"but no Delta table (still none after {CREATE_WAIT_SECONDS:.0f} s); "
                    "move those files away or point lake.root elsewhere"
                ) from exc

    def _await_version_0(self, table: str) -> bool:
        """Whether ``table`` gets a committed version within ``CREATE_WAIT_SECONDS``."""
        deadline = time.monotonic() + CREATE_WAIT_SECONDS
        while not self.exists(table):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    def _clear_abandoned_create(self, table: str) -> bool:
        """Remove what a create killed before its first commit left, if that is all the location holds.

        That is a ``_delta_log`` folder with no commit in it (at most hidden temp files and an
        empty ``_staged_commits`` folder, which Delta 4 makes before it writes version 0) and
        nothing beside it. Returns whether it removed one.
        """
        fs, location = catalog.hadoop_fs(self.spark, self.path(table))
        entries = [status.getPath().getName() for status in fs.listStatus(location)]
        if entries != ["_delta_log"]:
            return False
        log_dir = self.spark._jvm.org.apache.hadoop.fs.Path(location, "_delta_log")  # type: ignore[attr-defined]

        def leftover(status) -> bool:
            name = status.getPath().getName()
            if name.startswith("."):
                return True
            return name == "_staged_commits" and status.isDirectory() and not fs.listStatus(status.getPath())

        if not all(leftover(status) for status in fs.listStatus(log_dir)):
            return False
        log.warning("removing %s: an empty Delta log left by a create that never committed", log_dir)
        return bool(fs.delete(log_dir, True))

    def append(self, df: DataFrame, table: str, schema: T.StructType, *, partition_by: Sequence[str] = ()) -> None:
        self.ensure(table, schema, partition_by=partition_by)
        # mergeSchema: a table created before a nullable column was added to its schema gains it.
        _conform(df, schema).write.format("delta").mode("append").option("mergeSchema", "true").save(
            self.path(table)
        )

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
    ) -> int:
        """Insert the rows of ``df`` whose ``keys`` are not in ``table`` yet (MERGE); return how many it inserted.

        Of two writers merging the same new key at once, Delta lets one commit
        and fails the other with a conflict; that one merges again on the new
        snapshot, where the key now matches, so each key is inserted once. The
        count is the committed MERGE's (Delta's ``num_inserted_rows``).
        """
        for key in keys:
            catalog.validate_identifier(key, what="merge key")
        self.ensure(table, schema, partition_by=partition_by)
        condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        source = _conform(df, schema).alias("s")

        def merge() -> int:
            target = DeltaTable.forPath(self.spark, self.path(table))
            metrics = target.alias("t").merge(source, condition).whenNotMatchedInsertAll().execute().first()
            return int(metrics["num_inserted_rows"])

        return _retry_on_conflict(merge, what=f"MERGE into {table}")

    def claim(self, df: DataFrame, table: str, schema: T.StructType, *, keys: Sequence[str], takeover: str) -> None:
        """Insert the rows of ``df`` whose ``keys`` are free, or replace held ones matching ``takeover`` (MERGE).

        ``takeover`` is a SQL condition on the held row ``t`` (and the new row
        ``s``). Delta's optimistic concurrency makes the MERGE atomic: of two
        concurrent claims on the same keys, one commits and the other raises a
        concurrent-modification error.
        """
        self.ensure(table, schema)
        target = DeltaTable.forPath(self.spark, self.path(table))
        condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        (
            target.alias("t")
            .merge(_conform(df, schema).alias("s"), condition)
            .whenMatchedUpdateAll(condition=takeover)
            .whenNotMatchedInsertAll()
            .execute()
        )

    def delete(self, table: str, condition: Column) -> None:
        """Delete the rows matching ``condition`` (no-op if the table does not exist).

        Retried when a concurrent writer removed or rewrote the same files first.
        """
        if self.exists(table):
            _retry_on_conflict(
                lambda: DeltaTable.forPath(self.spark, self.path(table)).delete(condition),
                what=f"DELETE from {table}",
            )

    def latest_version(self, table: str) -> int | None:
        if not self.exists(table):
            return None
        history = DeltaTable.forPath(self.spark, self.path(table)).history(1)
        return int(history.select("version").first()[0])


def delta_table_builder(
    spark: SparkSession,
    path: str,
    schema: T.StructType,
    partition_by: Sequence[str] = (),
    *,
    stats_columns: Sequence[str] | None = None,
):
    """A create-if-absent builder of the Delta table at ``path``; ``stats_columns`` limits its file statistics.

    With ``stats_columns`` Delta computes minimum, maximum and null count only for
    those columns (``delta.dataSkippingStatsColumns``), not for the first 32; with
    none (an empty sequence) for no column (``delta.dataSkippingNumIndexedCols`` 0).
    Row counts are kept either way.
    """
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    if stats_columns:
        builder = builder.property("delta.dataSkippingStatsColumns", ",".join(stats_columns))
    elif stats_columns is not None:
        builder = builder.property("delta.dataSkippingNumIndexedCols", "0")
    return builder


def _retry_on_conflict(write: Callable[[], T_], *, what: str) -> T_:
    """Run an idempotent Delta ``write``, again (on the new snapshot) after a commit conflict; return what it returns."""
    for attempt in range(1, CONFLICT_RETRIES + 1):
        try:
            return write()
        except COMMIT_CONFLICTS as exc:
            if attempt == CONFLICT_RETRIES:
                raise
            log.info("%s lost a commit conflict (%s); trying again", what, type(exc).__name__)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


# What the OS says when storage refuses a write, as it appears in Java and Python errors.
STORAGE_FAILURES = (
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Permission denied",
)


def check_writable(root: str, tables: Sequence[str]) -> None:
    """Fail early, before any stage writes, if a local lakehouse cannot be written.

    Probes the root and every existing table folder and ``_delta_log`` by
    creating and removing a file. Remote roots (``hdfs://``, ``s3a://``...) are
    not probed: their failures surface from Spark and :func:`storage_failure`
    names them.

    Raises
    ------
    StorageError
        A folder is read-only, not ours to write, or the device is full.
    """
    if "://" in root.replace("file://", ""):
        return
    local = Path(_strip_file_scheme(root)).expanduser()
    try:
        local.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"lake.root {root} cannot be created: {exc.strerror or exc}") from exc
    folders = [local]
    for table in tables:
        folder = Path(catalog.table_path(str(local), table))
        folders += [f for f in (folder, folder / "_delta_log") if f.is_dir()]
    for folder in folders:
        probe = folder / f".klout-write-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageError(
                f"the lakehouse is not writable: {folder}: {exc.strerror or exc}; nothing was written "
                "(fix the permissions or point lake.root elsewhere)"
            ) from exc


def storage_failure(exc: BaseException) -> str | None:
    """A one-line explanation if ``exc`` (Python or Java) is storage refusing a write, else None."""
    text = str(exc)
    cause = next((c for c in STORAGE_FAILURES if c in text), None)
    if cause is None:
        return None
    where = next((line.strip() for line in text.splitlines() if cause in line), cause)[:300]
    return (
        f"storage refused an operation ({cause}): {where}. The stage that was running did not commit, so "
        "every table is as its last completed stage left it; fix the storage and rerun"
    )


# Writer locks this process holds: lock file -> (descriptor, depth). Reentrant within a process.
_HELD_LOCKS: dict[str, list[int]] = {}


@contextmanager
def writer_lock(root: str, *, run_id: str, what: str) -> Iterator[None]:
    """Hold the lakehouse's writer lock while a run ingests, validates and writes ``what``.

    Two runs that both ingest and validate the same files would race (one's
    cleanup of a crashed attempt deletes the other's fresh rows, both append),
    so only one writer runs at a time; the second stops at once with
    :class:`ConcurrentRunError` naming the run that holds the lock. The lock is
    an ``flock`` on ``<root>/_locks/writer.lock``: the kernel drops it when its
    process dies, even by SIGKILL, so a crashed run never blocks the rerun.
    Remote roots (``hdfs://``, ``s3a://``...) are not locked.
    """
    import fcntl

    if "://" in root.replace("file://", ""):
        yield
        return
    path = str(Path(_strip_file_scheme(root)).expanduser() / "_locks" / "writer.lock")
    if path in _HELD_LOCKS:
        _HELD_LOCKS[path][1] += 1
        try:
            yield
        finally:
            _HELD_LOCKS[path][1] -= 1
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise ConcurrentRunError(
            f"another run is writing {holder.get('what', 'this lakehouse')} in {root} (run {holder.get('run_id', '?')}, "
            f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}): "
            "wait for it to finish, then run again"
        ) from None
    info = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"), "what": what}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _HELD_LOCKS[path] = [fd, 1]
    try:
        yield
    finally:
        del _HELD_LOCKS[path]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _lock_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except ValueError:
        return {}


def _conform(df: DataFrame, schema: T.StructType) -> DataFrame:
    """Select ``schema``'s columns in order, cast to its types; fail naming missing columns."""
    missing = [f.name for f in schema.fields if f.name not in df.columns]
    if missing:
        raise StageOrderError(f"cannot write: missing columns {missing}; have {sorted(df.columns)}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


# --- raw dump files ---------------------------------------------------------

# Column of read_dump_lines: the URI of the file a line was read from.
FILE_URI = "_file"
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


def peek_numbered_lines(path: str, *, limit: int) -> list[tuple[int, str]]:
    """The first ``limit`` lines of a text dump with their 1-based numbers, blank ones included."""
    lines: list[tuple[int, str]] = []
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                lines.append((number, line.rstrip("\r\n")))
                if number >= limit:
                    break
    except (OSError, EOFError, ValueError) as exc:  # damaged: the caller uses what was read
        log.debug("peek %s stopped: %s", path, exc)
    return lines


def read_text_head(path: str, *, max_chars: int) -> str:
    """Up to ``max_chars`` characters from the start of a text dump (decompressed); empty if unreadable."""
    try:
        with _open_text(path) as handle:
            return handle.read(max_chars)
    except (OSError, EOFError, ValueError) as exc:
        log.debug("read %s stopped: %s", path, exc)
        return ""


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

    Returns columns ``_file`` (the file's URI as Spark read it; map it to the
    path given in ``files`` with :func:`source_path_of`, best on a small table:
    the mapping is string work), ``block_start`` (byte offset of the split the
    line was read from), ``ordinal`` (increasing in read order within a split)
    and ``value`` (the line). With ``ignore_corrupt`` a damaged compressed file
    yields its readable prefix instead of failing the read.
    """
    if not files:
        raise InputError("read_dump_lines: no files to read")
    return (
        _read_text(spark, files, ignore_corrupt=ignore_corrupt, wholetext=False)
        .select(
            F.col("_metadata.file_path").alias(FILE_URI),
            F.col("_metadata.file_block_start").alias("block_start"),
            F.monotonically_increasing_id().alias("ordinal"),
            F.col("value"),
        )
    )


def read_whole_files(spark: SparkSession, files: Sequence[SourceFile], *, ignore_corrupt: bool = False) -> DataFrame:
    """Read each of ``files`` as ONE text value (a pretty-printed JSON document).

    Returns ``source_path``, ``source_line`` (1: the document starts there) and
    ``value``. A file is one row, so it must fit in an executor's memory: this is
    for saved API responses, not for dumps.
    """
    if not files:
        raise InputError("read_whole_files: no files to read")
    return _read_text(spark, files, ignore_corrupt=ignore_corrupt, wholetext=True).select(
        source_path_of(files, F.col("_metadata.file_path")).alias(C.SOURCE_PATH),
        F.lit(1).cast("long").alias(C.SOURCE_LINE),
        F.col("value"),
    )


def _read_text(spark: SparkSession, files: Sequence[SourceFile], *, ignore_corrupt: bool, wholetext: bool) -> DataFrame:
    """Spark's text source over exactly ``files`` (each read from its staged copy when it has one)."""
    return (
        spark.read.option("ignoreCorruptFiles", str(ignore_corrupt).lower())
        .text([literal_path(f.read_path or f.path) for f in files], wholetext=wholetext)
    )


def source_path_of(files: Sequence[SourceFile], uri: Column) -> Column:
    """The path a file URI (``_metadata.file_path``) was given as in ``files`` (a staged copy maps back to its original)."""
    path = _local_path(uri)
    staged = {f.read_path: f.path for f in files if f.read_path}
    if staged:
        mapping = F.create_map(*[F.lit(x) for pair in staged.items() for x in pair])
        path = F.coalesce(mapping[path], path)
    return path


def read_parquet_rows(spark: SparkSession, file: SourceFile, *, ignore_corrupt: bool = False) -> DataFrame:
    """Read one Parquet dump with its own (declared) schema, plus lineage.

    Parquet has no lines: ``source_line`` is the 1-based row ordinal within the file.
    """
    return spark.read.option("ignoreCorruptFiles", str(ignore_corrupt).lower()).parquet(literal_path(file.path)).select(
        "*",
        F.lit(file.path).alias(C.SOURCE_PATH),
        (F.col("_metadata.row_index") + 1).alias(C.SOURCE_LINE),
    )


def probe_damage(spark: SparkSession, file: SourceFile) -> str | None:
    """Read ``file`` alone; return None if Spark reads it whole, else the error text."""
    try:
        if file_kind(file.path) == "parquet":
            spark.read.parquet(literal_path(file.path)).count()
        else:
            spark.read.text(literal_path(file.read_path or file.path)).count()
    except Exception as exc:  # noqa: BLE001 - any read failure marks the file damaged; caller reports it
        return str(exc)[:2000]
    return None


_GLOB_CHARACTERS = re.compile(r"([\\*?\[\]{}])")


def literal_path(path: str) -> str:
    """``path`` with Hadoop glob characters escaped, so Spark reads that one file and no other.

    Spark expands ``*?[]{}`` in the paths it is given: ``a[1].jsonl`` would read
    ``a1.jsonl`` instead. A backslash before each makes it literal.
    """
    return _GLOB_CHARACTERS.sub(r"\\\1", path)


def _local_path(uri: Column) -> Column:
    # _metadata.file_path is a URI: %XX escapes are decoded, but a '+' is a literal plus
    # there (url_decode, made for form data, would turn it into a space).
    return F.url_decode(F.regexp_replace(F.regexp_replace(uri, r"^file:(//)?", ""), r"\+", "%2B"))


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
