"""Benchmark of the PageRank executions on a generated graph (not a test: nothing is asserted).

Measures, in one Spark session:

- ``local``: :func:`klout_spark.pagerank.pagerank_local` end to end, from a Delta
  edge table to a Delta rank table, against :func:`scipy_power_iteration` on the
  same integer arrays (``local_vs_scipy``), and the floor of any such path:
  Spark's bare Arrow collect of the inputs and bare write of the ranks, plus
  SciPy (``floor_vs_scipy``);
- ``distributed``: :func:`pagerank_distributed` as the pipeline runs it on
  this graph (the ``"blocks"`` layout up to ``BROADCAST_MAX_NODES`` nodes),
  time per iteration (the second against the last);
- ``joined``: the same with ``layout="joined"`` (the layout of graphs over
  ``BROADCAST_MAX_NODES`` nodes), for the record;
- ``textbook``: :func:`textbook_pagerank` per iteration, on the same graph.

Run ``python -m klout_spark.pagerank_bench --nodes 100000 --edges 1000000``; it
prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from klout_spark import columns as C
from klout_spark import pagerank as pr

log = logging.getLogger(__name__)

PHASES = ("local", "distributed", "joined", "textbook")


def generated_graph(nodes: int, edges: int, *, seed: int = 1, dangling_share: float = 0.05) -> dict:
    """A random weighted directed graph as arrays: power-law-ish in-degree, some dangling nodes.

    Returns ``src``, ``dst`` (int32), ``weight`` (float64), ``trust`` (float64,
    one per node, about 30% zeros) and ``names`` (string id of every node).
    """
    rng = np.random.default_rng(seed)
    senders = int(nodes * (1 - dangling_share))
    src = rng.integers(0, senders, edges, dtype=np.int32)
    # Zipf-like popularity: a few accounts receive most engagement.
    dst = np.minimum((rng.pareto(1.2, edges) * nodes / 50).astype(np.int64), nodes - 1).astype(np.int32)
    dst = rng.permutation(nodes).astype(np.int32)[dst]
    weight = rng.lognormal(0.0, 1.0, edges)
    trust = rng.uniform(0.0, 1.0, nodes) * (rng.uniform(size=nodes) > 0.3)
    names = np.array([f"u{i:09d}" for i in range(nodes)], dtype=object)
    return {"src": src, "dst": dst, "weight": weight, "trust": trust, "names": names}


def _write_inputs(spark, graph: dict, root: Path) -> tuple[str, str]:
    """Write the graph as Delta tables (via a Parquet staging file) and return their paths."""
    names = graph["names"]
    edges = pa.table(
        {C.SRC: names[graph["src"]], C.DST: names[graph["dst"]], C.WEIGHT: graph["weight"]},
    )
    teleport = pa.table({C.NODE: names, C.TRUST: graph["trust"]})
    paths = []
    for name, table in (("edges", edges), ("teleport", teleport)):
        staging = root / f"{name}.parquet"
        pq.write_table(table, staging)
        delta = str(root / name)
        spark.read.parquet(str(staging)).write.format("delta").mode("overwrite").save(delta)
        paths.append(delta)
    return paths[0], paths[1]


def _peak_rss_mb() -> float:
    """Peak resident memory of this (the driver's Python) process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _jvm_pid(spark) -> int:
    return spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()  # noqa: SLF001


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its live descendants (the Python workers), from /proc."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        process = int(stat.parent.name)
        parents[process] = int(fields[1])
        # utime + stime, plus cutime + cstime: the CPU of children that ended and were reaped.
        ticks[process] = sum(int(value) for value in fields[11:15])
    total = 0
    for process, used in ticks.items():
        ancestor = process
        while ancestor not in (pid, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == pid:
            total += used
    return total / os.sysconf("SC_CLK_TCK")


class _IterationCpu(logging.Handler):
    """Records the CPU time of the driver JVM and its Python workers at every per-iteration log line.

    On a shared machine wall time depends on the neighbours; CPU time per
    iteration does much less.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(level=logging.INFO)
        self.pid = pid
        self.marks: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if ": iteration " in message:
            self.marks.append((message.split(":")[0], _cpu_seconds(self.pid)))

    def start(self, name: str) -> None:
        self.marks.append((name, _cpu_seconds(self.pid)))

    def per_iteration(self, name: str, *, since: int = 0) -> list[float]:
        """CPU seconds between consecutive marks of ``name`` (from mark number ``since`` on)."""
        cpu = [value for label, value in self.marks[since:] if label == name]
        return [round(after - before, 3) for before, after in zip(cpu, cpu[1:], strict=False)]


def _jvm_peak_rss_mb(spark) -> float | None:
    """Peak resident memory of the driver JVM (which runs the executors in local mode), if readable."""
    status = Path(f"/proc/{_jvm_pid(spark)}/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def run(
    spark,
    *,
    nodes: int,
    edges: int,
    damping: float,
    tol: float,
    distributed_iterations: int,
    textbook_iterations: int,
    workdir: Path,
    phases: tuple[str, ...] = PHASES,
) -> dict:
    """Run the measurements named in ``phases`` and return the report as a dict."""
    graph = generated_graph(nodes, edges)
    edge_path, teleport_path = _write_inputs(spark, graph, workdir)
    report: dict = {
        "nodes": nodes,
        "edge_rows": edges,
        "damping": damping,
        "tol": tol,
        "load_average_at_start": os.getloadavg(),
    }
    cpu = _IterationCpu(_jvm_pid(spark))
    logging.getLogger(pr.__name__).addHandler(cpu)

    def read():
        reader = spark.read.format("delta")
        return reader.load(edge_path), reader.load(teleport_path)

    # SciPy on the same integer arrays: matrix build plus iterations.
    tick = time.perf_counter()
    bare = pr.scipy_power_iteration(
        graph["src"], graph["dst"], graph["weight"], graph["trust"], damping=damping, tol=tol, max_iter=1000
    )
    scipy_seconds = time.perf_counter() - tick
    report["scipy"] = {
        "seconds": round(scipy_seconds, 3),
        "iterations": len(bare.residuals),
        "seconds_per_iteration": round(float(np.mean(bare.iteration_seconds)), 5),
    }

    if "local" in phases:
        _measure_local(spark, report, read, graph, bare, damping=damping, tol=tol, workdir=workdir)
    for layout, name in (("auto", "distributed"), ("joined", "joined")):
        if name in phases:
            _measure_distributed(
                spark,
                report,
                read,
                graph,
                cpu,
                damping=damping,
                iterations=distributed_iterations,
                workdir=workdir,
                layout=layout,
                name=name,
            )
    if "textbook" in phases:
        _measure_textbook(report, read, cpu, damping=damping, iterations=textbook_iterations)
    if "distributed" in phases and "textbook" in phases:
        report["textbook_vs_distributed_per_iteration"] = round(
            report["textbook"]["median_iteration"] / report["distributed"]["median_iteration"], 2
        )
        report["textbook_vs_distributed_cpu_per_iteration"] = round(
            float(np.median(report["textbook"]["cpu_seconds_per_iteration_from_second"]))
            / float(np.median(report["distributed"]["cpu_seconds_per_iteration_from_second"])),
            2,
        )
    report["load_average_at_end"] = os.getloadavg()
    logging.getLogger(pr.__name__).removeHandler(cpu)
    report["driver_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    report["jvm_peak_rss_mb"] = _jvm_peak_rss_mb(spark)
    report["persistent_rdds_left"] = len(spark.sparkContext._jsc.getPersistentRDDs())  # noqa: SLF001
    return report


def _measure_local(spark, report, read, graph, bare, *, damping, tol, workdir) -> None:
    """Local path, Delta to Delta; a warm-up run first, so that JIT and code generation are not timed."""
    scipy_seconds = report["scipy"]["seconds"]
    edge_frame, teleport_frame = read()
    pr.pagerank_local(edge_frame, teleport_frame, damping=damping, tol=tol, max_iter=5).ranks.count()
    tick = time.perf_counter()
    edge_frame, teleport_frame = read()
    local = pr.pagerank_local(edge_frame, teleport_frame, damping=damping, tol=tol, max_iter=1000)
    solved = time.perf_counter()
    local.ranks.write.format("delta").mode("overwrite").save(str(workdir / "ranks_local"))
    local_seconds = time.perf_counter() - tick
    report["local"] = {
        "seconds": round(local_seconds, 3),
        "seconds_to_ranks_frame": round(solved - tick, 3),
        "iterations": local.iterations,
        "converged": local.converged,
        "node_count": local.node_count,
        "edge_count": local.edge_count,
        "local_vs_scipy": round(local_seconds / scipy_seconds, 2),
        "driver_peak_rss_mb": round(_peak_rss_mb(), 1),
        "jvm_peak_rss_mb": _jvm_peak_rss_mb(spark),
    }
    local_ranks = _ranks_array(spark, str(workdir / "ranks_local"), graph["names"])
    report["local"]["l1_vs_scipy"] = float(np.abs(local_ranks - bare.ranks).sum())
    report["local"]["floor"] = _local_floor(spark, read, graph, bare, scipy_seconds, workdir=workdir)


def _local_floor(spark, read, graph, bare, scipy_seconds: float, *, workdir: Path) -> dict:
    """The least any local path that reads and writes through Spark can take: I/O alone, plus SciPy.

    Spark's bare collect of both input tables as Arrow and its bare write of a
    ready rank table (node names and ranks, built outside the timing), both
    as the local path does them but with nothing in between, added to the
    SciPy time. ``floor_vs_scipy`` bounds ``local_vs_scipy`` from below on this
    machine.
    """
    edge_frame, teleport_frame = read()
    tick = time.perf_counter()
    edge_frame.toArrow()
    teleport_frame.toArrow()
    read_seconds = time.perf_counter() - tick
    ranked = pa.table({C.NODE: graph["names"], C.PAGERANK: bare.ranks})
    tick = time.perf_counter()
    pr.frame_from_arrow(spark, ranked).write.format("delta").mode("overwrite").save(str(workdir / "ranks_floor"))
    write_seconds = time.perf_counter() - tick
    floor_seconds = read_seconds + scipy_seconds + write_seconds
    return {
        "read_seconds": round(read_seconds, 3),
        "write_seconds": round(write_seconds, 3),
        "seconds": round(floor_seconds, 3),
        "floor_vs_scipy": round(floor_seconds / scipy_seconds, 2),
    }


def _measure_distributed(spark, report, read, graph, cpu, *, damping, iterations, workdir, layout, name) -> None:
    """Distributed path in ``layout``: a fixed number of iterations (tol too small to stop early)."""
    edge_frame, teleport_frame = read()
    marks_before = len(cpu.marks)
    tick = time.perf_counter()
    cpu_before = _cpu_seconds(cpu.pid)
    distributed = pr.pagerank_distributed(
        edge_frame, teleport_frame, damping=damping, tol=1e-300, max_iter=iterations, layout=layout
    )
    distributed_seconds = time.perf_counter() - tick
    per_iteration = distributed.iteration_seconds
    first_mark = next(value for label, value in cpu.marks[marks_before:] if label == "pagerank_distributed")
    report[name] = {
        "layout": layout if layout != "auto" else ("blocks" if distributed.node_count <= pr.BROADCAST_MAX_NODES
                                                    else "joined"),
        "seconds": round(distributed_seconds, 3),
        "setup_seconds": round(distributed_seconds - sum(per_iteration), 3),
        "iterations": distributed.iterations,
        "iteration_seconds": [round(s, 3) for s in per_iteration],
        "second_iteration": round(per_iteration[1], 3),
        "last_iteration": round(per_iteration[-1], 3),
        "last_vs_second": round(per_iteration[-1] / per_iteration[1], 2),
        "median_iteration": round(float(np.median(per_iteration)), 3),
        "cpu_seconds_setup_and_first_iteration": round(first_mark - cpu_before, 3),
        "cpu_seconds_per_iteration_from_second": cpu.per_iteration("pagerank_distributed", since=marks_before),
    }
    same_iterations = pr.scipy_power_iteration(
        graph["src"],
        graph["dst"],
        graph["weight"],
        graph["trust"],
        damping=damping,
        tol=1e-300,
        max_iter=iterations,
    )
    distributed.ranks.write.format("delta").mode("overwrite").save(str(workdir / f"ranks_{name}"))
    distributed_ranks = _ranks_array(spark, str(workdir / f"ranks_{name}"), graph["names"])
    report[name]["l1_vs_scipy_same_iterations"] = float(
        np.abs(distributed_ranks - same_iterations.ranks).sum()
    )


def _measure_textbook(report, read, cpu, *, damping, iterations) -> None:
    """The textbook loop, for the per-iteration comparison."""
    edge_frame, teleport_frame = read()
    tick = time.perf_counter()
    cpu.start("textbook_pagerank")
    textbook = pr.textbook_pagerank(edge_frame, teleport_frame, damping=damping, iterations=iterations)
    textbook_seconds = time.perf_counter() - tick
    report["textbook"] = {
        "seconds": round(textbook_seconds, 3),
        "iteration_seconds": [round(s, 3) for s in textbook.iteration_seconds],
        "median_iteration": round(float(np.median(textbook.iteration_seconds)), 3),
        "cpu_seconds_per_iteration_from_second": cpu.per_iteration("textbook_pagerank")[1:],
    }


def _ranks_array(spark, path: str, names: np.ndarray) -> np.ndarray:
    """Ranks read back from Delta, in the order of ``names``."""
    table = spark.read.format("delta").load(path).toArrow()
    position = {name: index for index, name in enumerate(names)}
    ranks = np.zeros(len(names))
    for node, value in zip(
        table.column(C.NODE).to_pylist(), table.column(C.PAGERANK).to_numpy(), strict=True
    ):
        ranks[position[node]] = value
    return ranks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--damping", type=float, default=0.85)
    parser.add_argument("--tol", type=float, default=1e-10)
    parser.add_argument("--distributed-iterations", type=int, default=12)
    parser.add_argument("--textbook-iterations", type=int, default=4)
    parser.add_argument("--phases", default=",".join(PHASES), help="comma list of: " + ", ".join(PHASES))
    parser.add_argument("--set", action="append", default=[], help="settings override key=value")
    args = parser.parse_args(argv)

    from klout_spark.config import load_settings
    from klout_spark.session import build_session

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("klout_spark.pagerank").setLevel(logging.INFO)
    settings = load_settings("local", overrides=("spark.conf.spark.ui.showConsoleProgress=false", *args.set))
    spark = build_session(settings, app_name="klout-spark pagerank bench", register=False)
    workdir = Path(tempfile.mkdtemp(prefix="pagerank-bench-"))
    try:
        report = run(
            spark,
            nodes=args.nodes,
            edges=args.edges,
            damping=args.damping,
            tol=args.tol,
            distributed_iterations=args.distributed_iterations,
            textbook_iterations=args.textbook_iterations,
            workdir=workdir,
            phases=tuple(phase for phase in args.phases.split(",") if phase),
        )
        report["spark"] = {
            "master": spark.sparkContext.master,
            "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
            "adaptive": spark.conf.get("spark.sql.adaptive.enabled"),
        }
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
