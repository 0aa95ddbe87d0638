"""The daily job on a real standalone cluster (a master and two workers on 127.0.0.1), via spark-submit.

The cluster comes from the classes in the pip pyspark (``spark-class``); the job
ships as the ``make dist`` zip (``--py-files``) with Delta from ``--packages``.
One run, with the distributed PageRank and one worker killed mid-run, must give the
scores of a local-mode run (local PageRank path) and its ranks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import functions as F

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.generate import generate_dump
from klout_spark.pipeline import Pipeline, run_daily
from klout_spark.session import delta_maven_coordinate

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent.parent
SPARK_HOME = Path(pyspark.__file__).resolve().parent
HOST = "127.0.0.1"
MASTER_PORT, MASTER_UI_PORT = 7101, 7102
WORKERS = ((7103, 7105), (7104, 7106))  # (port, web UI port): the daemons' UIs cannot be turned off
DRIVER_PORT, DRIVER_BLOCK_MANAGER_PORT, EXECUTOR_BLOCK_MANAGER_PORT = 7110, 7111, 7120
AS_OF = date(2026, 10, 31)
JOB_TIMEOUT = 900  # a run takes 4-5 min here; after the worker's loss one executor core is left
SCORE_COLUMNS = [C.AS_OF, C.NETWORK, C.USER_ID, C.SCORE, C.TRUE_REACH, C.AMPLIFICATION, C.NETWORK_IMPACT,
                 C.RANK, C.PERCENTILE, C.SCORE_DELTA_7D, C.MODEL_VERSION]
SETTINGS = ("validate.data_docs=false", "spark.conf.spark.sql.shuffle.partitions=4",
            "spark.conf.spark.databricks.delta.snapshotPartitions=2")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP=HOST,
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
        SPARK_DAEMON_MEMORY="512m",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        KLOUT_SPARK_LOG_LEVEL="WARN",
    )
    return env


def _wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


class Cluster:
    """A master and two workers, each in its own process group (so its executors go with it)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.daemons: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.master_url = f"spark://{HOST}:{MASTER_PORT}"
        self.master_log = workdir / "master.log"

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), *args],
            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=self.workdir, start_new_session=True,
        )
        self.daemons.append(process)
        return process

    def start(self) -> None:
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", HOST,
                               "--port", str(MASTER_PORT), "--webui-port", str(MASTER_UI_PORT)])
        _wait_for(lambda: _port_open(MASTER_PORT), timeout=90, what="the master")
        for n, (port, ui_port) in enumerate(WORKERS):
            (self.workdir / f"work{n}").mkdir()
            self.workers.append(self._start(f"worker{n}", [
                "org.apache.spark.deploy.worker.Worker", self.master_url, "--host", HOST, "--port", str(port),
                "--webui-port", str(ui_port), "--cores", "1", "--memory", "1536m",
                "--work-dir", str(self.workdir / f"work{n}"),
            ]))
        _wait_for(lambda: self.master_log.read_text(errors="replace").count("Registering worker") >= len(WORKERS),
                  timeout=120, what="two workers to register")

    def stop(self) -> None:
        for process in reversed(self.daemons):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.daemons):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            # Executors launched by a worker share its process group; make sure none outlives the test.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The zip `make dist` builds for --py-files: the klout_spark package, without caches."""
    target = tmp_path_factory.mktemp("dist") / "klout_spark.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((PROJECT / "klout_spark").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(PROJECT))
    return target


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cluster-dump") / "dump"
    generate_dump(folder, events=10_000, seed=3, days=10, end_date=AS_OF)
    return folder


def _scores(lake) -> list:
    return sorted(lake.read(catalog.SCORES).select(*SCORE_COLUMNS).collect())


def _ranks(lake) -> dict[tuple[str, str], float]:
    rows = lake.read(catalog.NETWORK_RANK).select(C.NETWORK, C.USER_ID, C.PAGERANK).collect()
    return {(row[C.NETWORK], row[C.USER_ID]): row[C.PAGERANK] for row in rows}


@pytest.fixture(scope="module")
def local_lake(spark, dump, tmp_path_factory):  # noqa: ARG001 - the session must exist first
    """The lakehouse of the same daily run in local mode (local PageRank path)."""
    from tests.conftest import test_settings

    settings = test_settings(str(tmp_path_factory.mktemp("local") / "lake"), "lake.database=cl_local", *SETTINGS)
    p = Pipeline.open(settings)
    run_daily(p, as_of=AS_OF, inputs=[str(dump)])
    return p.lake


@pytest.fixture(scope="module")
def local_scores(local_lake):
    return _scores(local_lake)


def _submit(
    cluster: Cluster, dist: Path, dump: Path, lake_root: Path, log: Path, *, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master", cluster.master_url,
        "--py-files", str(dist),
        "--packages", delta_maven_coordinate(),
        "--driver-memory", "1g",
        "--conf", f"spark.driver.host={HOST}",
        "--conf", f"spark.driver.bindAddress={HOST}",
        "--conf", f"spark.driver.port={DRIVER_PORT}",
        "--conf", f"spark.driver.blockManager.port={DRIVER_BLOCK_MANAGER_PORT}",
        "--conf", f"spark.blockManager.port={EXECUTOR_BLOCK_MANAGER_PORT}",
        "--conf", "spark.port.maxRetries=8",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.executor.memory=1g",
        "--conf", "spark.executor.cores=1",
        "--conf", "spark.cores.max=2",
        str(PROJECT / "jobs" / "daily.py"),
        "--env", "cluster",
        "--as-of", AS_OF.isoformat(),
        "--input", str(dump),
        "--set", f"lake.root={lake_root}",
        "--set", "lake.database=cl_cluster",
        *[arg for setting in (*SETTINGS, *extra) for arg in ("--set", setting)],
    ]
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=_env(), cwd=PROJECT,
                            start_new_session=True)


def _finish(job: subprocess.Popen, log: Path) -> None:
    try:
        job.wait(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
        pytest.fail(f"spark-submit did not finish in {JOB_TIMEOUT} s:\n{log.read_text(errors='replace')[-4000:]}")
    assert job.returncode == 0, log.read_text(errors="replace")[-4000:]


def _cluster_lake(spark, lake_root: Path):
    from klout_spark.io import Lakehouse

    return Lakehouse(spark, str(lake_root), "cl_cluster")


def test_daily_job_on_the_cluster_gives_the_local_scores_and_ranks_despite_the_loss_of_a_worker(
    spark, cluster, dist, dump, local_lake, local_scores, tmp_path
):
    """A whole daily run on two workers, one of them killed once the features stage has started.

    The run propagates with ``propagate.method=distributed`` (the blocks layout with executors in
    other JVMs: Python workers, the broadcast rank vector); the local run beside it uses the local
    path. So one cluster run checks the job's wiring, its survival of a lost worker and the
    distributed PageRank against the local one.
    """
    log = tmp_path / "submit.log"
    job = _submit(cluster, dist, dump, tmp_path / "lake", log, extra=("propagate.method=distributed",))
    try:
        _wait_for(lambda: "stage features: started" in log.read_text(errors="replace") or job.poll() is not None,
                  timeout=JOB_TIMEOUT, what="the features stage to start")
        assert job.poll() is None, log.read_text(errors="replace")[-4000:]
        victim = cluster.workers[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        _finish(job, log)
    text = log.read_text(errors="replace")
    assert "Top 10 accounts on 2026-10-31" in text
    master_log = cluster.master_log.read_text(errors="replace")
    assert "Removing worker" in master_log or "lost" in master_log.lower()

    lake = _cluster_lake(spark, tmp_path / "lake")
    details = lake.read(catalog.RUNS).filter(F.col(C.STAGE) == "propagate").select(C.DETAILS).first()[0]
    assert '"method": "distributed"' in details
    mine, theirs = _ranks(lake), _ranks(local_lake)
    assert mine.keys() == theirs.keys() and len(mine) > 100
    assert sum(abs(mine[key] - theirs[key]) for key in mine) < 1e-9
    # Scores are rounded to 1e-4, far above the ranks' differences: they match the local run's exactly.
    assert _scores(lake) == local_scores
    assert len(local_scores) > 100
