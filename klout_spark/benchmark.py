"""``make bench``: the daily pipeline on generated dumps at sizes S, M, L (XL on request), measured.

Every step runs as its own process, so that the peak memory of the whole
process tree (the Python driver, its JVM and the JVM's Python workers) can be
sampled from ``/proc``; in local mode the executors live inside the driver JVM,
so "executors" is that JVM. Per size, in this order:

1. ``klout-spark generate``: wall time, peak memory;
2. ``klout-spark run`` on the dump: wall time, peak memory;
3. when the ``backfill`` command exists, ``klout-spark backfill --force`` over the
   30 days ending on the dump's last day, then ``klout-spark run`` of that day
   alone on the same lakehouse (``backfill_vs_daily``: the sums of their stage
   times, so that JVM start-up counts in neither);
4. a probe process (``python -m klout_spark.benchmark probe``), with the same
   session settings: a bare Spark read of the same dump files and write to
   Parquet (``ingest_vs_bare``), then the same read written to a Delta table
   stored as ``bronze_events`` is, partitioned by event date and with its file
   statistics columns (``ingest_floor_vs_bare``: the least any ingest stage
   that writes that table can cost), the ``runs``
   rows of steps 2 and 3 (each stage's time, rows and iterations), and the
   score quality from :func:`klout_spark.evaluation.evaluate` when that module
   exists;
5. :mod:`klout_spark.pagerank_bench` on a generated graph (local path versus
   bare SciPy, distributed path per iteration, textbook loop).

``--steps`` measures a subset (``--steps generate`` times the generator alone,
which is how the L and XL generators are measured without a pipeline run).
The results go to ``<out>/results.json`` and ``<out>/results.md``. Nothing is
asserted: a ratio off its target is marked, not failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = "klout-spark-bench/1"
DEFAULT_SIZES = ("S", "M", "L")
SIZE_CHOICES = ("S", "M", "L", "XL")
BACKFILL_DAYS = 30
# (nodes, edges) of the generated graph that pagerank_bench measures at each size.
PROPAGATION_GRAPH: dict[str, tuple[int, int]] = {
    "S": (10_000, 100_000),
    "M": (100_000, 1_000_000),
    "L": (1_000_000, 10_000_000),
    "XL": (1_000_000, 10_000_000),
}
QUALITY_KEYS = ("flag_precision", "flag_recall", "topic_precision", "spearman_latent")
RATIO_KEYS = (
    "ingest_vs_bare",
    "ingest_floor_vs_bare",
    "validation_overhead",
    "validate_stage_share",
    "local_vs_scipy",
    "local_floor_vs_scipy",
    "iteration_flatness",
    "speedup_vs_textbook",
    "distributed_vs_scipy_per_iteration",
    "backfill_vs_daily",
    *QUALITY_KEYS,
)
STAGE_ORDER = ("ingest", "identities", "validate", "features", "propagate", "score")
# The measured steps of one size, in order, and the steps each one needs (``--steps`` picks a subset).
STEPS = ("generate", "daily", "backfill", "probe", "pagerank")
STEP_NEEDS: dict[str, tuple[str, ...]] = {
    "daily": ("generate",),
    "backfill": ("daily",),
    "probe": ("daily",),
    "pagerank": (),
}
# The ratios each step's measurements feed, for the note of a ratio whose step was left out
# (the probe reads the stage times of the daily run, the backfill and its rerun from the runs table).
STEP_RATIOS: dict[str, tuple[str, ...]] = {
    "backfill": ("backfill_vs_daily",),
    "probe": ("ingest_vs_bare", "ingest_floor_vs_bare", "validation_overhead", "validate_stage_share",
              "backfill_vs_daily", *QUALITY_KEYS),
    "pagerank": ("local_vs_scipy", "local_floor_vs_scipy", "iteration_flatness", "speedup_vs_textbook",
                 "distributed_vs_scipy_per_iteration"),
}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A bound a measured value should meet (``op`` is ``<=`` or ``>=``), at ``sizes`` (all if None)."""

    op: str
    bound: float
    label: str
    sizes: tuple[str, ...] | None = None

    def check(self, value: float | None, size: str) -> bool | None:
        """True/False when the target applies to ``size`` and ``value`` is known, else None."""
        if value is None or (self.sizes is not None and size not in self.sizes):
            return None
        return value <= self.bound if self.op == "<=" else value >= self.bound


TARGETS: dict[str, Target] = {
    "ingest_vs_bare": Target("<=", 1.5, "at most 1.5x"),
    "validation_overhead": Target("<=", 0.25, "at most 25% (at M and above)", ("M", "L", "XL")),
    "local_vs_scipy": Target("<=", 2.0, "at most 2x"),
    "iteration_flatness": Target("<=", 1.3, "at most 1.3x"),
    "speedup_vs_textbook": Target(">=", 5.0, "at least 5x"),
    "backfill_vs_daily": Target("<=", 3.0, "at most 3x"),
    "daily_run_seconds": Target("<=", 1200.0, "at most 20 min at L", ("L",)),
    "daily_run_peak_gib": Target("<=", 8.0, "under 8 GiB at L", ("L",)),
}


# ---------------------------------------------------------------------------
# Pure arithmetic


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is unknown or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def overhead_fraction(
    ingest_seconds: float | None, validate_seconds: float | None, checking_seconds: float | None = None
) -> float | None:
    """Share of ingest + validate wall time spent on ``checking_seconds`` (default: the whole validate stage).

    The validate stage also promotes the batch to silver (dedup and MERGE), which
    a pipeline without checks would do as well; the time its expectation checks
    take (``validation_seconds`` in its ``runs`` details) is what validation adds.
    """
    if ingest_seconds is None or validate_seconds is None:
        return None
    spent = validate_seconds if checking_seconds is None else checking_seconds
    return ratio(spent, ingest_seconds + validate_seconds)


def stage_timings(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-stage time, rows and rows per second from ``runs`` rows (summed if a stage ran twice).

    Each row needs ``stage``, ``started_at``, ``ended_at`` (datetimes), ``status``,
    ``rows_in``, ``rows_out``, ``iterations`` (may be None). Rows per second use
    ``rows_in`` when known, else ``rows_out``.

    A stage that computes many dates at once (a backfill chunk) writes one row
    per date, all with the chunk's start and end: its time counts once.
    """
    stages: dict[str, dict[str, Any]] = {}
    timed: set[tuple] = set()
    for row in sorted(rows, key=lambda r: r["started_at"]):
        entry = stages.setdefault(
            row["stage"],
            {"seconds": 0.0, "rows_in": None, "rows_out": None, "iterations": None, "runs": 0, "status": []},
        )
        if row.get("validation_seconds") is not None:
            entry["validation_seconds"] = round(entry.get("validation_seconds", 0.0) + row["validation_seconds"], 3)
        interval = (row["stage"], row["started_at"], row["ended_at"])
        if interval not in timed:
            timed.add(interval)
            entry["seconds"] += (row["ended_at"] - row["started_at"]).total_seconds()
        entry["runs"] += 1
        entry["status"].append(row["status"])
        for key in ("rows_in", "rows_out", "iterations"):
            if row.get(key) is not None:
                entry[key] = (entry[key] or 0) + int(row[key])
    for entry in stages.values():
        rows_done = entry["rows_in"] if entry["rows_in"] is not None else entry["rows_out"]
        per_second = ratio(rows_done, entry["seconds"])
        entry["rows_per_second"] = round(per_second, 1) if per_second is not None else None
        entry["seconds"] = round(entry["seconds"], 3)
        entry["status"] = "succeeded" if set(entry["status"]) == {"succeeded"} else ",".join(entry["status"])
    order = {name: index for index, name in enumerate(STAGE_ORDER)}
    return dict(sorted(stages.items(), key=lambda item: order.get(item[0], len(order))))


def size_ratios(result: Mapping[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """The named ratios of one size from its measurements, and a note for each one left null.

    ``result`` holds what :func:`bench_size` gathered: ``stages``, ``bare_ingest``,
    ``propagation`` (a pagerank_bench report), ``backfill`` and ``quality``; any
    may be missing or None, and a ``notes`` mapping may already explain why.
    """
    notes = dict(result.get("notes") or {})
    stages = result.get("stages") or {}
    ingest = (stages.get("ingest") or {}).get("seconds")
    validate = (stages.get("validate") or {}).get("seconds")
    checking = (stages.get("validate") or {}).get("validation_seconds")
    bare = (result.get("bare_ingest") or {}).get("seconds")
    floor = (result.get("bare_ingest") or {}).get("delta_floor_seconds")
    prop = result.get("propagation") or {}
    scipy_run = prop.get("scipy") or {}
    local = prop.get("local") or {}
    distributed = prop.get("distributed") or {}
    textbook = prop.get("textbook") or {}
    backfill = result.get("backfill") or {}
    quality = result.get("quality") or {}
    values: dict[str, float | None] = {
        "ingest_vs_bare": ratio(ingest, bare),
        "ingest_floor_vs_bare": ratio(floor, bare),
        "validation_overhead": overhead_fraction(ingest, validate, checking),
        "validate_stage_share": overhead_fraction(ingest, validate),
        "local_vs_scipy": ratio(local.get("seconds"), scipy_run.get("seconds")),
        "local_floor_vs_scipy": ratio((local.get("floor") or {}).get("seconds"), scipy_run.get("seconds")),
        "iteration_flatness": ratio(distributed.get("last_iteration"), distributed.get("second_iteration")),
        "speedup_vs_textbook": ratio(textbook.get("median_iteration"), distributed.get("median_iteration")),
        "distributed_vs_scipy_per_iteration": ratio(
            distributed.get("median_iteration"), scipy_run.get("seconds_per_iteration")
        ),
        "backfill_vs_daily": ratio(backfill.get("backfill_seconds"), backfill.get("daily_seconds")),
    }
    for key in QUALITY_KEYS:
        value = quality.get(key)
        values[key] = float(value) if isinstance(value, int | float) else None
    ratios = {key: (round(values[key], 4) if values[key] is not None else None) for key in RATIO_KEYS}
    for key, value in ratios.items():
        if value is None:
            notes.setdefault(key, "not measured (see the log of this size)")
    return ratios, {key: note for key, note in notes.items() if key in ratios and ratios[key] is None}


def checks(size: str, result: Mapping[str, Any]) -> dict[str, bool | None]:
    """Pass (True), fail (False) or not applicable (None) for every target at ``size``."""
    ratios = result.get("ratios") or {}
    run = result.get("daily_run") or {}
    peak_mb = (run.get("memory") or {}).get("tree_peak_mb")
    measured = {
        **ratios,
        "daily_run_seconds": run.get("seconds"),
        "daily_run_peak_gib": peak_mb / 1024 if peak_mb is not None else None,
    }
    return {key: target.check(measured.get(key), size) for key, target in TARGETS.items()}


# ---------------------------------------------------------------------------
# Memory of a process tree, sampled from /proc


def _proc_kib(pid: int, file: str, key: str) -> int | None:
    """The ``key:`` value (kB) of ``/proc/<pid>/<file>``, None if absent."""
    with open(f"/proc/{pid}/{file}") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now (from the parent ids in ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                after_name = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(after_name[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


class TreeMemorySampler:
    """Samples the memory of a process and its descendants in a background thread.

    Memory is the proportional set size (PSS, ``/proc/<pid>/smaps_rollup``):
    pages shared between processes are split among them, so the tree's sum is
    what it really holds. (Summing RSS double-counts: a JVM that forks a helper
    such as ``bash -c groups`` shows its whole resident set twice until exec.)
    Reports the peak of the tree's sum over the samples, the peak per kind of
    process (``driver_python``: the root; ``jvm``: java processes;
    ``python_workers``: other Python processes; ``other``), and the JVM's own
    peak RSS (``VmHWM``, exact even between samples).
    """

    def __init__(self, pid: int, *, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples = 0
        self.processes: set[int] = set()
        self._peak_kib: dict[str, int] = {}
        self._jvm_hwm_kib: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"memory-sampler-{pid}", daemon=True)

    def start(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def _kind(self, pid: int, name: str) -> str:
        if pid == self.pid:
            return "driver_python"
        if name == "java":
            return "jvm"
        if name.startswith("python"):
            return "python_workers"
        return "other"

    def sample(self) -> None:
        totals: dict[str, int] = {"tree": 0}
        for pid in process_tree(self.pid):
            try:
                with open(f"/proc/{pid}/comm") as handle:
                    kind = self._kind(pid, handle.read().strip())
                pss = _proc_kib(pid, "smaps_rollup", "Pss")
                if pss is None:
                    pss = _proc_kib(pid, "status", "VmRSS") or 0
                if kind == "jvm":
                    hwm = _proc_kib(pid, "status", "VmHWM") or 0
                    self._jvm_hwm_kib[pid] = max(hwm, self._jvm_hwm_kib.get(pid, 0))
            except OSError:  # the process ended meanwhile
                continue
            self.processes.add(pid)
            totals["tree"] += pss
            totals[kind] = totals.get(kind, 0) + pss
        for kind, kib in totals.items():
            self._peak_kib[kind] = max(kib, self._peak_kib.get(kind, 0))
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        peaks = {f"{kind}_peak_mb": round(kib / 1024, 1) for kind, kib in sorted(self._peak_kib.items())}
        if self._jvm_hwm_kib:
            peaks["jvm_rss_hwm_mb"] = round(sum(self._jvm_hwm_kib.values()) / 1024, 1)
        return {**peaks, "processes_seen": len(self.processes), "samples": self.samples}


@dataclass
class Measured:
    """One subprocess: its command, exit code, wall time, stdout and memory peaks."""

    command: list[str]
    returncode: int
    seconds: float
    stdout: str
    memory: dict[str, Any]
    log_path: str
    started_at: datetime
    ended_at: datetime

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "returncode": self.returncode,
            "memory": self.memory,
            "log": self.log_path,
        }


def run_measured(command: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None) -> Measured:
    """Run ``command`` to completion, timing it and sampling its process tree's memory.

    stdout is kept (and written next to the log); stderr goes to ``log_path``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out_path = log_path.with_suffix(".out")
    with open(log_path, "w") as err, open(out_path, "w+") as out:
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=out, stderr=err, env=dict(env) if env else None)
        sampler = TreeMemorySampler(process.pid).start()
        returncode = process.wait()
        seconds = time.perf_counter() - started
        ended_at = datetime.now(UTC)
        memory = sampler.stop()
        out.seek(0)
        stdout = out.read()
    return Measured(list(command), returncode, seconds, stdout, memory, str(log_path), started_at, ended_at)


# ---------------------------------------------------------------------------
# Machine and environment


def machine_info() -> dict[str, Any]:
    from importlib import metadata

    import pyspark

    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "cpu_model": cpu_model,
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java_version(),
        "spark": pyspark.__version__,
        "delta_spark": metadata.version("delta-spark"),
        "great_expectations": metadata.version("great-expectations"),
    }


def java_version() -> str | None:
    """First line of ``java -version`` (the JVM Spark starts), None without java."""
    try:
        text = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    return text.splitlines()[0] if text else None


def available_commands() -> dict[str, set[str]]:
    """Subcommands of ``klout-spark`` in this checkout with their option strings (``backfill`` may not exist)."""
    from klout_spark.cli import build_parser

    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 - argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return {
                name: {option for sub_action in sub._actions for option in sub_action.option_strings}  # noqa: SLF001
                for name, sub in action.choices.items()
            }
    return {}


def evaluation_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("klout_spark.evaluation") is not None


def _child_env() -> dict[str, str]:
    """The environment of the measured processes: they import this same klout_spark."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---------------------------------------------------------------------------
# One size


@dataclass
class BenchOptions:
    sizes: tuple[str, ...]
    out: Path
    work: Path
    seed: int
    keep_data: bool
    settings_args: tuple[str, ...] = ()
    python: str = sys.executable
    commands: dict[str, set[str]] = field(default_factory=dict)
    has_evaluation: bool = False
    steps: tuple[str, ...] = STEPS


_GENERATED = re.compile(
    r"wrote ([\d,]+) events by ([\d,]+) accounts over (\d+) days \((\d{4}-\d\d-\d\d) \.\. (\d{4}-\d\d-\d\d)\) "
    r"in (\d+) files"
)
_RUN_ID = re.compile(r"Run id (\S+);")


def parse_generate_output(stdout: str) -> dict[str, Any]:
    """Events, accounts, days and dates from ``klout-spark generate``'s summary line."""
    match = _GENERATED.search(stdout)
    if not match:
        raise ValueError(f"generate: summary line not found in its output: {stdout[-500:]!r}")
    events, accounts, days, start, end, files = match.groups()
    return {
        "events": int(events.replace(",", "")),
        "accounts": int(accounts.replace(",", "")),
        "days": int(days),
        "start_date": start,
        "end_date": end,
        "files": int(files),
    }


def parse_json_output(stdout: str) -> dict[str, Any]:
    """The JSON document a child printed last on stdout (lines before it are ignored)."""
    lines = stdout.splitlines(keepends=True)
    starts = [index for index, line in enumerate(lines) if line.rstrip() == "{"]
    if not starts:
        raise ValueError(f"no JSON document in the output: {stdout[-500:]!r}")
    return json.loads("".join(lines[starts[-1]:]))


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def left_out_notes(steps: Sequence[str]) -> dict[str, str]:
    """The note of each ratio that a step left out of ``steps`` would have fed (the first such step names it)."""
    notes: dict[str, str] = {}
    for left_out in (name for name in STEPS if name not in steps):
        for key in STEP_RATIOS.get(left_out, ()):
            notes.setdefault(key, f"not measured: step {left_out} was not in --steps")
    return notes


def bench_size(size: str, opts: BenchOptions) -> dict[str, Any]:
    """Measure one size; a failing step is recorded and the steps that need it are skipped."""
    work = opts.work / size
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    dump, logs = work / "dump", opts.out / "logs" / size
    env = _child_env()
    cli = [opts.python, "-m", "klout_spark.cli"]
    result: dict[str, Any] = {"size": size, "load_average_at_start": list(os.getloadavg()), "notes": {}}
    notes: dict[str, str] = result["notes"]

    def step(name: str, command: list[str]) -> Measured | None:
        log.info("bench %s: %s", size, name)
        measured = run_measured(command, log_path=logs / f"{name}.log", env=env)
        log.info("bench %s: %s took %.1f s (exit %d)", size, name, measured.seconds, measured.returncode)
        if measured.returncode != 0:
            result.setdefault("errors", {})[name] = f"exit {measured.returncode}; see {measured.log_path}"
            return None
        return measured

    notes.update(left_out_notes(opts.steps))
    if "generate" in opts.steps:
        gen = step("generate", [*cli, "generate", "--size", size, "--seed", str(opts.seed), "--out", str(dump)])
        if gen is None:
            return _finish(result, notes, "generate failed")
        result["generate"] = {**gen.summary(), **parse_generate_output(gen.stdout), "bytes": _dir_bytes(dump)}
        result["generate"]["events_per_second"] = round(result["generate"]["events"] / gen.seconds, 1)
    if "daily" in opts.steps:
        failure = _measure_pipeline(opts, result, step, cli, dump, work)
        if failure:
            return _finish(result, notes, failure)
    if "pagerank" in opts.steps:
        _measure_pagerank(size, opts, result, step)
    if not opts.keep_data:
        shutil.rmtree(work, ignore_errors=True)
    return _finish(result, notes, None)


def _measure_pipeline(opts, result, step, cli, dump, work) -> str | None:
    """Steps 2-4: the daily run, the backfill and its daily rerun, the probe; a failure's text or None."""
    notes = result["notes"]
    lake = work / "lake"
    lake_args = ["--set", f"lake.root={lake}", *opts.settings_args]
    as_of = date.fromisoformat(result["generate"]["end_date"])
    run = step(
        "daily_run",
        [*cli, "run", "--input", str(dump), "--identities", str(dump / "_identities.csv"),
         "--as-of", as_of.isoformat(), *lake_args],
    )
    if run is None:
        return "daily run failed"
    run_id_match = _RUN_ID.search(run.stdout)
    result["daily_run"] = {**run.summary(), "as_of": as_of.isoformat(),
                           "run_id": run_id_match.group(1) if run_id_match else None}


    windows = {"daily_run": run}
    if "backfill" in opts.steps and "backfill" in opts.commands:
        # The dates the daily run committed are skipped by a plain backfill; --force computes all 30.
        force = ["--force"] if "--force" in opts.commands["backfill"] else []
        start = as_of - timedelta(days=BACKFILL_DAYS - 1)
        backfill = step("backfill", [*cli, "backfill", "--start", start.isoformat(), "--end", as_of.isoformat(),
                                     *force, *lake_args])
        # The same lakehouse scoring as_of alone, last, so that as_of's slice is a daily run's.
        daily = step("daily_rerun", [*cli, "run", "--as-of", as_of.isoformat(), *lake_args])
        if backfill is not None and daily is not None:
            windows |= {"backfill": backfill, "daily_rerun": daily}
            result["backfill"] = {
                "start": start.isoformat(), "end": as_of.isoformat(), "days": BACKFILL_DAYS, "force": bool(force),
                "backfill_process": backfill.summary(), "daily_process": daily.summary(),
            }
        else:
            notes["backfill_vs_daily"] = "backfill or the daily rerun failed"
    elif "backfill" in opts.steps:
        notes["backfill_vs_daily"] = "backfill command not available"

    if "probe" not in opts.steps:
        return None
    probe_json = work / "probe.json"
    window_args = [
        item for name, measured in windows.items()
        for item in ("--window", f"{name}={measured.started_at.isoformat()},{measured.ended_at.isoformat()}")
    ]
    probe = step(
        "probe",
        [opts.python, "-m", "klout_spark.benchmark", "probe", "--dump", str(dump), "--as-of", as_of.isoformat(),
         "--scratch", str(work / "bare"), "--json", str(probe_json), *window_args, *lake_args],
    )
    if probe is not None:
        found = json.loads(probe_json.read_text())
        runs = {name: _parse_run_rows(rows) for name, rows in found["runs"].items()}
        result["stages"] = stage_timings(runs["daily_run"])
        result["daily_run"]["stage_seconds_total"] = _total_seconds(result["stages"])
        result["bare_ingest"] = found["bare_ingest"]
        result["quality"] = found["quality"]
        if found.get("quality_note"):
            for key in QUALITY_KEYS:
                notes[key] = found["quality_note"]
        prop = result["stages"].get("propagate") or {}
        result["pipeline_propagation"] = {
            "edges": prop.get("rows_in"), "accounts": prop.get("rows_out"), "iterations": prop.get("iterations"),
            "seconds": prop.get("seconds"), "method": found.get("propagate_method"),
        }
        if "backfill" in result:
            result["backfill"]["stages"] = stage_timings(runs["backfill"])
            result["backfill"]["backfill_seconds"] = _total_seconds(result["backfill"]["stages"])
            result["backfill"]["daily_seconds"] = _total_seconds(stage_timings(runs["daily_rerun"]))
    else:
        for key in STEP_RATIOS["probe"]:
            notes[key] = "the probe process failed"
    return None


def _measure_pagerank(size, opts, result, step) -> None:
    """Step 5: :mod:`klout_spark.pagerank_bench` on the generated graph of ``size``."""
    nodes, edges = PROPAGATION_GRAPH[size]
    pagerank = step(
        "pagerank",
        [opts.python, "-m", "klout_spark.pagerank_bench", "--nodes", str(nodes), "--edges", str(edges),
         *_set_args_only(opts.settings_args)],
    )
    if pagerank is not None:
        result["propagation"] = {**parse_json_output(pagerank.stdout), "process": pagerank.summary()}
    else:
        for key in STEP_RATIOS["pagerank"]:
            result["notes"][key] = "the pagerank benchmark process failed"


def _total_seconds(stages: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Sum of the stage times, None when no stage was recorded."""
    return round(sum(entry["seconds"] for entry in stages.values()), 3) if stages else None


def _set_args_only(settings_args: Sequence[str]) -> list[str]:
    """The ``--set`` pairs of ``settings_args`` (pagerank_bench takes no --env or --conf)."""
    pairs = list(zip(settings_args[::2], settings_args[1::2], strict=False))
    return [item for flag, value in pairs if flag == "--set" for item in (flag, value)]


def _finish(result: dict[str, Any], notes: dict[str, str], failure: str | None) -> dict[str, Any]:
    if failure:
        for key in RATIO_KEYS:
            notes.setdefault(key, failure)
    result["ratios"], result["notes"] = size_ratios(result)
    result["checks"] = checks(result["size"], result)
    result["load_average_at_end"] = list(os.getloadavg())
    return result


def _parse_run_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**row, "started_at": datetime.fromisoformat(row["started_at"]), "ended_at": datetime.fromisoformat(row["ended_at"])}
        for row in rows
    ]


# ---------------------------------------------------------------------------
# The probe (runs inside its own Spark process)


def bare_ingest(spark, dump: str, scratch: str) -> dict[str, Any]:
    """Spark's bare read and write of ``dump``'s files, then the same read written as ``bronze_events`` is.

    The bare run (``ingest_vs_bare``'s denominator) reads the files ingest reads,
    every canonical field as text (as ingest parses them) under a given schema
    (no inference pass), and writes them to Parquet at ``scratch``. The floor of
    an ingest stage (``ingest_floor_vs_bare``) writes the same read to a Delta
    table at ``<scratch>_delta`` stored as ``bronze_events`` is: partitioned by
    event date, file statistics on bronze's ``STATS_COLUMNS`` that the read has;
    without numbering, typing, quarantine or exactly-once bookkeeping. The empty
    table is created before the clock starts.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from klout_spark import catalog, schemas
    from klout_spark import columns as C
    from klout_spark.io import delta_table_builder, discover_dump_files

    files = [f.path for f in discover_dump_files([dump], fmt="canonical")]
    raw_schema = T.StructType(
        [T.StructField(name, T.StringType(), True) for name in schemas.CANONICAL_EVENT_SCHEMA.fieldNames()]
    )
    events = spark.read.schema(raw_schema).json(files)
    started = time.perf_counter()
    events.write.mode("overwrite").parquet(scratch)
    bare_seconds = time.perf_counter() - started
    bare_rows = spark.read.parquet(scratch).count()
    dated = events.withColumn(C.EVENT_DATE, F.to_date(C.EVENT_TS))
    stats = [c for c in catalog.STATS_COLUMNS[catalog.BRONZE_EVENTS] if c in dated.columns]
    delta_table_builder(spark, f"{scratch}_delta", dated.schema, [C.EVENT_DATE], stats_columns=stats).execute()
    started = time.perf_counter()
    dated.write.format("delta").mode("overwrite").save(f"{scratch}_delta")  # the rows of an earlier probe go
    delta_floor_seconds = time.perf_counter() - started
    return {
        "seconds": round(bare_seconds, 3), "rows": bare_rows, "files": len(files),
        "what": "spark.read.schema(canonical fields as strings).json(files).write.parquet",
        "delta_floor_seconds": round(delta_floor_seconds, 3),
        "delta_floor_what": "the same read, written to a Delta table partitioned by event_date "
                            "with bronze_events' file statistics columns",
    }


def probe(
    settings, *, dump: str, as_of: date, windows: Mapping[str, tuple[datetime, datetime]], scratch: str
) -> dict[str, Any]:
    """Bare read/write of the dump (:func:`bare_ingest`), the ``runs`` rows started within each of
    ``windows``, the quality figures."""
    from pyspark.sql import functions as F

    from klout_spark import catalog
    from klout_spark.session import build_session

    spark = build_session(settings, app_name="klout-spark bench probe")
    bare = bare_ingest(spark, dump, scratch)

    runs = spark.read.format("delta").load(f"{settings.lake.root}/{catalog.RUNS}")
    found: dict[str, list[dict[str, Any]]] = {}
    method = None
    for name, (begin, end) in windows.items():
        found[name] = []
        for row in runs.filter(F.col("started_at").between(F.lit(begin), F.lit(end))).collect():
            item = row.asDict()
            if name == "daily_run" and item["stage"] == "propagate" and item.get("details"):
                method = json.loads(item["details"]).get("method")
            found[name].append(
                {
                    "run_id": item["run_id"],
                    "as_of": item["as_of"],
                    "stage": item["stage"],
                    "status": item["status"],
                    "started_at": item["started_at"].isoformat(),
                    "ended_at": item["ended_at"].isoformat(),
                    "rows_in": item["rows_in"],
                    "rows_out": item["rows_out"],
                    "iterations": item["iterations"],
                    "residual": item["residual"],
                    "validation_seconds": (
                        json.loads(item["details"]).get("validation_seconds")
                        if item["stage"] == "validate" and item.get("details") else None
                    ),
                }
            )
    quality, quality_note = None, None
    try:
        from klout_spark.evaluation import evaluate
    except ImportError:
        quality_note = "klout_spark.evaluation not available"
    else:
        truth = str(Path(dump) / "_ground_truth")
        quality = evaluate(spark, settings.lake.root, settings.lake.database, truth, as_of)
    spark.stop()
    return {
        "bare_ingest": bare,
        "runs": found,
        "propagate_method": method,
        "quality": quality,
        "quality_note": quality_note,
    }


def _window(text: str) -> tuple[str, tuple[datetime, datetime]]:
    name, _, span = text.partition("=")
    begin, _, end = span.partition(",")
    return name, (datetime.fromisoformat(begin), datetime.fromisoformat(end))


def _probe_main(argv: Sequence[str]) -> int:
    from klout_spark.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m klout_spark.benchmark probe")
    parser.add_argument("--dump", required=True)
    parser.add_argument("--as-of", required=True, type=date.fromisoformat)
    parser.add_argument("--window", action="append", default=[], type=_window, metavar="NAME=START,END",
                        help="collect the runs rows started between two ISO times under NAME")
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--env", default="local")
    parser.add_argument("--conf", action="append", default=[])
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(args.env, args.conf, args.overrides)
    found = probe(settings, dump=args.dump, as_of=args.as_of, windows=dict(args.window), scratch=args.scratch)
    Path(args.json).write_text(json.dumps(found, indent=2, default=str))
    return 0


# ---------------------------------------------------------------------------
# The whole benchmark and its report


def run_benchmark(opts: BenchOptions, *, bench_size_fn: Callable[[str, BenchOptions], dict] = bench_size) -> dict:
    """Measure every size in ``opts.sizes`` and write ``results.json`` and ``results.md`` under ``opts.out``."""
    opts.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before": list(os.getloadavg()),
        "options": {"sizes": list(opts.sizes), "steps": list(opts.steps), "seed": opts.seed,
                    "settings": list(opts.settings_args),
                    "backfill_command": "backfill" in opts.commands, "evaluation_module": opts.has_evaluation},
        "notes": {
            "memory": "peak memory (PSS) of each measured process tree, sampled from /proc every 0.5 s; in "
            "local mode the executors run inside the driver JVM, so jvm_peak_mb is driver and executors "
            "together; jvm_rss_hwm_mb is the JVM's own peak RSS",
            "targets": {key: f"{t.op} {t.bound} ({t.label})" for key, t in TARGETS.items()},
        },
        "results": {},
    }
    for size in opts.sizes:
        report["results"][size] = bench_size_fn(size, opts)
        _write(report, opts.out)  # a partial report survives a later failure
    report["load_average_after"] = list(os.getloadavg())
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write(report, opts.out)
    return report


def _write(report: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "results.md").write_text(render_markdown(report))


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _mark(passed: bool | None) -> str:
    return {True: " ✓", False: " ✗", None: ""}[passed]


def render_markdown(report: Mapping[str, Any]) -> str:
    """The results as markdown: machine, per-size summary, stages, ratios with targets and marks."""
    machine = report.get("machine") or {}
    results: Mapping[str, Any] = report.get("results") or {}
    sizes = list(results)
    lines = [
        "# klout-spark benchmark",
        "",
        f"Run {report.get('started_at', '?')} .. {report.get('finished_at', '(unfinished)')} on "
        f"{machine.get('cores')} cores, {machine.get('ram_gib')} GiB RAM, {machine.get('cpu_model')}; "
        f"Python {machine.get('python')}, {machine.get('java')}, Spark {machine.get('spark')}, "
        f"Delta {machine.get('delta_spark')}. Load average before {_loads(report.get('load_average_before'))}, "
        f"after {_loads(report.get('load_average_after'))}.",
        "",
        "## Per size",
        "",
        "| size | events | generate s | generate peak MiB | daily run s | run peak MiB (all processes) "
        "| driver JVM + executors MiB | driver Python MiB | load avg start/end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size, res in results.items():
        gen = res.get("generate") or {}
        run = res.get("daily_run") or {}
        mem = run.get("memory") or {}
        check = res.get("checks") or {}
        lines.append(
            f"| {size} | {_fmt(gen.get('events'))} | {_fmt(gen.get('seconds'), 1)} "
            f"| {_fmt((gen.get('memory') or {}).get('tree_peak_mb'), 0)} "
            f"| {_fmt(run.get('seconds'), 1)}{_mark(check.get('daily_run_seconds'))} "
            f"| {_fmt(mem.get('tree_peak_mb'), 0)}{_mark(check.get('daily_run_peak_gib'))} "
            f"| {_fmt(mem.get('jvm_peak_mb'), 0)} | {_fmt(mem.get('driver_python_peak_mb'), 0)} "
            f"| {_loads(res.get('load_average_at_start'))} / {_loads(res.get('load_average_at_end'))} |"
        )
    lines += ["", "## Stages of the daily run (from the runs table)", "",
              "| size | stage | seconds | rows in | rows out | rows/s | iterations |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for size, res in results.items():
        for stage, entry in (res.get("stages") or {}).items():
            lines.append(
                f"| {size} | {stage} | {_fmt(entry.get('seconds'), 1)} | {_fmt(entry.get('rows_in'))} "
                f"| {_fmt(entry.get('rows_out'))} | {_fmt(entry.get('rows_per_second'), 0)} "
                f"| {_fmt(entry.get('iterations'))} |"
            )
    lines += ["", "## Ratios (each measured in the same run)", "",
              "| ratio | target | " + " | ".join(sizes) + " |",
              "|---|---|" + "---:|" * len(sizes)]
    for key in RATIO_KEYS:
        target = TARGETS.get(key)
        cells = []
        for size in sizes:
            res = results[size]
            value = (res.get("ratios") or {}).get(key)
            cells.append(_fmt(value, 3) + _mark((res.get("checks") or {}).get(key)))
        lines.append(f"| `{key}` | {target.label if target else 'report'} | " + " | ".join(cells) + " |")
    lines += ["", "## Propagation (generated graph, klout_spark.pagerank_bench)", "",
              "| size | nodes | edges | SciPy s (iter) | local s | distributed s/iter (2nd, last) "
              "| joined layout s/iter | textbook s/iter | peak MiB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, res in results.items():
        prop = res.get("propagation") or {}
        sc, lo, di, jo, tb = (prop.get(k) or {} for k in ("scipy", "local", "distributed", "joined", "textbook"))
        lines.append(
            f"| {size} | {_fmt(prop.get('nodes'))} | {_fmt(prop.get('edge_rows'))} "
            f"| {_fmt(sc.get('seconds'), 2)} ({_fmt(sc.get('iterations'))}) "
            f"| {_fmt(lo.get('seconds'), 2)} ({_fmt(lo.get('iterations'))} it) "
            f"| {_fmt(di.get('median_iteration'), 2)} ({_fmt(di.get('second_iteration'), 2)}, "
            f"{_fmt(di.get('last_iteration'), 2)}) {di.get('layout') or ''} | {_fmt(jo.get('median_iteration'), 2)} "
            f"| {_fmt(tb.get('median_iteration'), 2)} "
            f"| {_fmt(((prop.get('process') or {}).get('memory') or {}).get('tree_peak_mb'), 0)} |"
        )
    notes = [(size, key, note) for size, res in results.items() for key, note in (res.get("notes") or {}).items()]
    errors = [(size, name, text) for size, res in results.items() for name, text in (res.get("errors") or {}).items()]
    if notes or errors:
        lines += ["", "## Not measured", ""]
        lines += [f"- {size} `{key}`: {note}" for size, key, note in notes]
        lines += [f"- {size} step {name} failed: {text}" for size, name, text in errors]
    lines += ["", "✓ meets its target, ✗ misses it. Memory is the peak PSS of the measured process tree "
              "(Python driver, JVM, Python workers) sampled from /proc; in local mode the executors run "
              "inside the driver JVM.", ""]
    return "\n".join(lines)


def _loads(values: Sequence[float] | None) -> str:
    return "-" if not values else " ".join(f"{v:.2f}" for v in values)


# ---------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``klout-spark bench`` (settings options are added by the CLI)."""
    parser.add_argument(
        "--sizes", default=",".join(DEFAULT_SIZES), type=_sizes,
        help="comma list of dump sizes among S, M, L, XL (default S,M,L)",
    )
    parser.add_argument("--out", default="bench", help="folder for results.json, results.md and logs/ (default bench)")
    parser.add_argument("--work", default=None, help="folder for the dumps and lakehouses (default <out>/work)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--keep-data", action="store_true", help="keep each size's dump and lakehouse")
    parser.add_argument(
        "--steps", default=",".join(STEPS), type=_steps,
        help="comma list of the steps to measure per size, among " + ", ".join(STEPS)
        + " (default all; daily needs generate, backfill and probe need daily; pagerank stands alone)",
    )


def _sizes(text: str) -> tuple[str, ...]:
    sizes = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    bad = [s for s in sizes if s not in SIZE_CHOICES]
    if bad or not sizes:
        raise argparse.ArgumentTypeError(f"sizes: expected a comma list of {', '.join(SIZE_CHOICES)}, got {text!r}")
    return sizes


def _steps(text: str) -> tuple[str, ...]:
    chosen = {s.strip().lower() for s in text.split(",") if s.strip()}
    unknown = sorted(chosen - set(STEPS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"steps: expected a comma list of {', '.join(STEPS)}, got {text!r}")
    for name in chosen:
        missing = [need for need in STEP_NEEDS.get(name, ()) if need not in chosen]
        if missing:
            raise argparse.ArgumentTypeError(f"steps: {name} needs {', '.join(missing)}")
    return tuple(name for name in STEPS if name in chosen)


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    out = Path(args.out).resolve()
    settings_args: list[str] = ["--env", args.env] if getattr(args, "env", "local") != "local" else []
    for path in getattr(args, "conf", []) or []:
        settings_args += ["--conf", str(Path(path).resolve())]
    for item in getattr(args, "overrides", []) or []:
        settings_args += ["--set", item]
    return BenchOptions(
        sizes=args.sizes,
        out=out,
        work=Path(args.work).resolve() if args.work else out / "work",
        seed=args.seed,
        keep_data=args.keep_data,
        steps=args.steps,
        settings_args=tuple(settings_args),
        commands=available_commands(),
        has_evaluation=evaluation_available(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m klout_spark.benchmark probe ...`` (internal); the benchmark itself is ``klout-spark bench``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["probe"]:
        return _probe_main(argv[1:])
    from klout_spark.cli import main as cli_main

    return cli_main(["bench", *argv])


if __name__ == "__main__":
    sys.exit(main())
