"""Kill harness: SIGKILL daily runs at seeded random points, rerun, compare every table with a clean run.

How it works:

1. a clean ``klout-spark run`` on a dump gives the reference tables and each
   stage's duration (from its log);
2. ``n`` kill points are drawn from a seed: a stage (round robin over the five
   stages in a shuffled order, so every stage is hit once ``n >= 5``) and a
   delay after that stage's ``stage X: started`` log line, uniform in
   [0, 0.95 x the stage's clean duration];
3. each point SIGKILLs (the whole process group: driver and JVM) a daily run
   on a lakehouse of its own group; right after the kill, every table as a
   reader would see it must be empty or equal to the clean table (no partial
   ``as_of`` visible); after the last kill of a group (``kills_per_rerun``) the
   run is started again and must finish, and then every table must hold exactly
   the clean run's rows.

Rows are compared as a multiset of row digests: a digest over every column
except the ones that name the run or the wall-clock time of a write
(``VOLATILE_COLUMNS``), with floating-point values rounded to 9 significant
digits (Spark's sums may add in a different order from run to run). The
``runs`` table is left out: it records the killed attempts by design.

Tables are read with the ``deltalake`` package (pyarrow, no JVM), an
implementation of the Delta protocol independent of Spark's, which is what
an outside reader would use; it is a development dependency (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from klout_spark import catalog
from klout_spark import columns as C

STAGES: tuple[str, ...] = ("ingest", "validate", "features", "propagate", "score")
# Columns naming the run or ingest attempt, or the wall-clock time of a write: they differ
# between any two runs (an ingest attempt's batch id includes a random token of its own).
VOLATILE_COLUMNS = frozenset({C.RUN_ID, C.BATCH_ID, C.INGESTED_AT, C.QUARANTINED_AT, C.COMMITTED_AT, C.STARTED_AT, C.ENDED_AT})
COMPARED_TABLES: tuple[str, ...] = tuple(t for t in catalog.TABLES if t != catalog.RUNS)
# Settings every harness run uses: small local Spark, no Data Docs (HTML is not a table).
RUN_OVERRIDES: tuple[str, ...] = (
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.ui.showConsoleProgress=false",
    "validate.data_docs=false",
)
_STARTED = re.compile(r"stage (\w+): started")
# "stage X: done in S s" or, for a stage over many dates, "stage X: done for N date(s) A..B in S s".
_DONE = re.compile(r"stage (\w+): done (?:for \d+ date\(s\) \S+ )?in ([0-9.]+) s")
RUN_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class KillPoint:
    stage: str
    delay_s: float


@dataclass
class FaultResult:
    index: int
    group: int
    point: KillPoint
    killed: bool
    partial_tables: tuple[str, ...] = ()
    landed_in: str | None = None


@dataclass
class GroupResult:
    group: int
    rerun_exit: int | None = None
    lost: dict[str, int] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def survived(self) -> bool:
        return self.rerun_exit == 0 and not any(self.lost.values()) and not any(self.extra.values())


@dataclass
class HarnessReport:
    faults: list[FaultResult]
    groups: list[GroupResult]
    clean_seconds: float
    stage_seconds: dict[str, float]
    clean_rows: dict[str, int]

    @property
    def injected(self) -> int:
        return sum(1 for f in self.faults if f.killed)

    @property
    def rows_lost(self) -> int:
        return sum(sum(g.lost.values()) for g in self.groups)

    @property
    def rows_duplicated(self) -> int:
        return sum(sum(g.extra.values()) for g in self.groups)

    @property
    def partial_views(self) -> int:
        return sum(len(f.partial_tables) for f in self.faults)

    @property
    def ok(self) -> bool:
        return all(g.survived for g in self.groups) and self.partial_views == 0


def kill_points(n: int, *, seed: int, stage_seconds: Mapping[str, float]) -> list[KillPoint]:
    """``n`` kill points spread over the stages: each stage in turn, a random delay within it."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    order = list(STAGES)
    rng.shuffle(order)
    points = []
    for i in range(n):
        stage = order[i % len(order)]
        points.append(KillPoint(stage, round(rng.uniform(0.0, 0.95) * stage_seconds.get(stage, 1.0), 2)))
    return points


def stage_at_kill(log_text: str) -> str | None:
    """The stage a run was in when it stopped: the last one its log says started."""
    started = _STARTED.findall(log_text)
    return started[-1] if started else None


def stage_durations(log_text: str) -> dict[str, float]:
    """Each stage's duration from a run's log (``stage X: done in S s``)."""
    return {m.group(1): float(m.group(2)) for m in _DONE.finditer(log_text)}


# --- reading tables as a reader would ------------------------------------------------------


def _normalized(value):
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, (list, tuple)):
        return tuple(_normalized(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _normalized(v)) for k, v in value.items()))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def row_digest(row: Mapping[str, object]) -> str:
    """A digest of one row's non-volatile columns (names included, floats to 9 significant digits)."""
    items = sorted((k, _normalized(v)) for k, v in row.items() if k not in VOLATILE_COLUMNS)
    return hashlib.blake2b(repr(items).encode(), digest_size=12).hexdigest()


def _read_rows(root: str, table: str) -> list[dict] | None:
    try:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the kill harness reads tables with the 'deltalake' package: pip install -e '.[dev]'") from exc
    try:
        return DeltaTable(catalog.table_path(root, table)).to_pyarrow_table().to_pylist()
    except TableNotFoundError:
        return None


def reader_view(root: str, table: str) -> Counter[str] | None:
    """The rows of ``table`` a reader may use, as a multiset of digests; None if it does not exist.

    Rows that readers ignore until their batch is committed are left out: bronze
    rows and ingest quarantine rows of files not in ``ingest_log``, validate
    quarantine rows of batches not in ``silver_batches``.
    """
    rows = _read_rows(root, table)
    if rows is None:
        return None
    if table == catalog.BRONZE_EVENTS:
        committed = {r[C.SOURCE_CHECKSUM] for r in _read_rows(root, catalog.INGEST_LOG) or []}
        rows = [r for r in rows if r[C.SOURCE_CHECKSUM] in committed]
    elif table == catalog.QUARANTINE:
        files = {r[C.SOURCE_CHECKSUM] for r in _read_rows(root, catalog.INGEST_LOG) or []}
        batches = {r[C.BATCH_ID] for r in _read_rows(root, catalog.SILVER_BATCHES) or []}
        rows = [
            r for r in rows
            if (r[C.STAGE] == "ingest" and r[C.SOURCE_CHECKSUM] in files)
            or (r[C.STAGE] != "ingest" and r[C.BATCH_ID] in batches)
        ]
    return Counter(row_digest(r) for r in rows)


def lakehouse_digests(root: str) -> dict[str, Counter[str]]:
    """Every compared table's rows (all of them, committed or not) as multisets of digests."""
    out = {}
    for table in COMPARED_TABLES:
        rows = _read_rows(root, table)
        if rows is not None:
            out[table] = Counter(row_digest(r) for r in rows)
    return out


def differences(
    expected: Mapping[str, Counter[str]], actual: Mapping[str, Counter[str]]
) -> tuple[dict[str, int], dict[str, int]]:
    """Rows of ``expected`` missing from ``actual`` (lost) and rows ``actual`` has beyond it (extra)."""
    lost, extra = {}, {}
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table, Counter()), actual.get(table, Counter())
        lost[table] = sum((want - got).values())
        extra[table] = sum((got - want).values())
    return lost, extra


def partial_tables(root: str, expected: Mapping[str, Counter[str]]) -> tuple[str, ...]:
    """Tables whose reader view is neither empty nor exactly the clean run's rows.

    ``run_locks`` is left out: a killed run's lock row is bookkeeping that the
    next run takes over as stale (it is still compared after the rerun, where
    every lock must be released).
    """
    partial = []
    for table in COMPARED_TABLES:
        if table == catalog.RUN_LOCKS:
            continue
        view = reader_view(root, table)
        if view and view != _clean_view(expected, table):
            partial.append(table)
    return tuple(partial)


def _clean_view(expected: Mapping[str, Counter[str]], table: str) -> Counter[str]:
    return expected.get(table, Counter())


# --- running and killing ----------------------------------------------------------------


def run_command(dump: str, lake_root: str, extra: Sequence[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "klout_spark.cli", "run", "--input", dump, "--set", f"lake.root={lake_root}"]
    for override in (*RUN_OVERRIDES, *extra):
        command += ["--set", override]
    return command


def _start(command: Sequence[str], log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
    with log_path.open("wb") as log:
        # A session of its own: the kill reaches the driver and its JVM together.
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def run_to_end(command: Sequence[str], log_path: Path) -> int:
    process = _start(command, log_path)
    try:
        return process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_and_kill(command: Sequence[str], log_path: Path, point: KillPoint) -> bool:
    """Start a run, SIGKILL it ``point.delay_s`` after ``point.stage`` started; False if it ended first."""
    process = _start(command, log_path)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if point.stage in _STARTED.findall(log_path.read_text(errors="replace")):
                time.sleep(point.delay_s)
                break
            time.sleep(0.1)
        if process.poll() is not None:
            return False
        os.killpg(process.pid, signal.SIGKILL)
        return True
    finally:
        process.wait()


def run_harness(
    dump: str,
    work_dir: str,
    *,
    n: int,
    seed: int,
    kills_per_rerun: int = 1,
    extra_overrides: Sequence[str] = (),
    progress=print,
) -> HarnessReport:
    """Run the clean reference, then ``n`` kills (``kills_per_rerun`` before each full rerun)."""
    if kills_per_rerun < 1:
        raise ValueError(f"kills_per_rerun must be >= 1, got {kills_per_rerun}")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    clean_root = str(work / "clean")
    started = time.monotonic()
    exit_code = run_to_end(run_command(dump, clean_root, extra_overrides), work / "clean.log")
    clean_seconds = time.monotonic() - started
    if exit_code != 0:
        raise RuntimeError(f"the clean run failed (exit {exit_code}); see {work / 'clean.log'}")
    stage_seconds = stage_durations((work / "clean.log").read_text(errors="replace"))
    expected = lakehouse_digests(clean_root)
    progress(f"clean run: {clean_seconds:.0f} s; stages " + ", ".join(f"{k} {v:.0f} s" for k, v in stage_seconds.items()))
    faults: list[FaultResult] = []
    groups: list[GroupResult] = []
    for index, point in enumerate(kill_points(n, seed=seed, stage_seconds=stage_seconds)):
        group = index // kills_per_rerun
        root = str(work / f"group-{group:02d}")
        command = run_command(dump, root, extra_overrides)
        kill_log = work / f"kill-{index:02d}.log"
        killed = run_and_kill(command, kill_log, point)
        partial = partial_tables(root, expected) if killed else ()
        landed = stage_at_kill(kill_log.read_text(errors="replace")) if killed else None
        faults.append(FaultResult(index, group, point, killed, partial, landed))
        progress(
            f"fault {index + 1}/{n}: {point.stage} +{point.delay_s:.1f} s: "
            + (f"killed in {landed}" if killed else "run ended before the kill")
            + (f"; PARTIAL: {', '.join(partial)}" if partial else "")
        )
        if (index + 1) % kills_per_rerun == 0 or index == n - 1:
            result = GroupResult(group)
            result.rerun_exit = run_to_end(command, work / f"rerun-{group:02d}.log")
            result.lost, result.extra = differences(expected, lakehouse_digests(root))
            groups.append(result)
            progress(
                f"rerun of group {group}: exit {result.rerun_exit}, rows lost {sum(result.lost.values())}, "
                f"extra {sum(result.extra.values())}"
            )
    clean_rows = {t: sum(c.values()) for t, c in expected.items()}
    return HarnessReport(faults, groups, clean_seconds, stage_seconds, clean_rows)


def format_report(report: HarnessReport) -> str:
    """The per-fault table and the totals, as plain text."""
    by_group = {g.group: g for g in report.groups}
    lines = [
        f"{'#':>3}  {'stage':<10} {'delay s':>7}  {'killed in':<10}  {'partial view':<12}  {'rerun':<5}  {'lost':>5}  "
        f"{'dup/extra':>9}",
        "-" * 76,
    ]
    for f in report.faults:
        g = by_group.get(f.group)
        last_of_group = g is not None and max(x.index for x in report.faults if x.group == f.group) == f.index
        lines.append(
            f"{f.index + 1:>3}  {f.point.stage:<10} {f.point.delay_s:>7.1f}  {(f.landed_in or '?') if f.killed else 'not killed':<10}  "
            f"{','.join(f.partial_tables) or 'none':<12}  "
            + (
                f"{'ok' if g.rerun_exit == 0 else f'exit {g.rerun_exit}':<5}  {sum(g.lost.values()):>5}  "
                f"{sum(g.extra.values()):>9}"
                if last_of_group
                else f"{'':<5}  {'':>5}  {'':>9}"
            )
        )
    survived = sum(1 for g in report.groups if g.survived)
    lines += [
        "-" * 76,
        f"faults injected {report.injected} of {len(report.faults)} drawn; reruns survived {survived} of "
        f"{len(report.groups)}; rows lost {report.rows_lost}; rows duplicated {report.rows_duplicated}; "
        f"partial views {report.partial_views}",
        f"clean run {report.clean_seconds:.0f} s over {len(report.clean_rows)} tables, "
        f"{sum(report.clean_rows.values()):,} rows",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reliability",
        description="SIGKILL daily runs at seeded random points over all stages, rerun, and compare every "
        "table with a clean run (no lost or duplicated rows, no partial as_of visible).",
    )
    parser.add_argument("--n", type=int, default=20, help="kill points (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill points and the dump (default 1)")
    parser.add_argument("--kills-per-rerun", type=int, default=4,
                        help="kills in a row on one lakehouse before its full rerun (default 4; 1 checks each kill alone)")
    parser.add_argument("--dump", default=None, help="dump to run on (default: a small generated one)")
    parser.add_argument("--work-dir", default="reliability-work", help="lakehouses and logs (default reliability-work)")
    args = parser.parse_args(argv)
    dump = args.dump or small_dump(Path(args.work_dir) / "dump", seed=args.seed)
    report = run_harness(dump, args.work_dir, n=args.n, seed=args.seed, kills_per_rerun=args.kills_per_rerun)
    print()
    print(format_report(report))
    return 0 if report.ok else 1


def small_dump(out: Path, *, seed: int, keep_days: int = 3) -> str:
    """A generated dump cut to its last ``keep_days`` day folders (a few thousand events)."""
    import shutil

    from klout_spark.generate import generate_dump

    generate_dump(out, events=10_000, days=10, seed=seed)
    days = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    for old in days[:-keep_days]:
        shutil.rmtree(old)
    return str(out)
