"""The scores from outside: a JDBC client through `klout-spark serve-sql`, delta-rs, and readers during a rewrite."""

from __future__ import annotations

import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from klout_spark import calibration, catalog
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.pipeline import Pipeline, stage_score
from tests.conftest import TEST_OVERRIDES
from tests.scored_lake import FIRST_SCORED, LAST_DAY, copy_lake, scored_lake

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent.parent
PORTS = range(10000, 10100)  # the ports this project's tests may use


@pytest.fixture(scope="module")
def scored(spark, tmp_path_factory):  # noqa: ARG001 - the session must exist first
    return scored_lake(tmp_path_factory)


def _free_port() -> int:
    candidates = list(PORTS)
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "klout_spark.cli", *args]


def _settings_args(settings) -> list[str]:
    pairs = [*TEST_OVERRIDES, f"lake.root={settings.lake.root}", f"lake.database={settings.lake.database}"]
    return [arg for pair in pairs for arg in ("--set", pair)]


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (the server's JVM is a child of its Python process)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_line(lines: queue.Queue, marker: str, *, timeout: float, proc) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return line
    raise AssertionError(f"no {marker!r} from the server; it printed: {''.join(seen)[-3000:]}")


def _jdbc_rows(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return [tuple(row) for row in cursor.fetchall()]


def test_serve_sql_answers_a_jdbc_client_while_other_processes_use_the_lakehouse(scored, spark):
    from pyhive import hive

    settings, as_of = scored["settings"], scored["as_of"]
    port = _free_port()
    env = {**os.environ, "KLOUT_SPARK_LOG_LEVEL": "ERROR", "PYTHONPATH": str(PROJECT)}
    server = subprocess.Popen(
        _cli("serve-sql", "--port", str(port), "--set", "sql_server.refresh_seconds=1", *_settings_args(settings)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()
    jvms: list[int] = []
    try:
        ready = _wait_for_line(lines, "SQL server ready", timeout=300, proc=server)
        assert f"jdbc:hive2://127.0.0.1:{port}/scored" in ready
        jvms = [pid for pid in _children(server.pid) if "java" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert jvms, "the server's JVM should be a child of its Python process"

        connection = hive.connect(host="127.0.0.1", port=port, username="analyst", database="scored")
        cursor = connection.cursor()
        served = set(_jdbc_rows(
            cursor,
            f"SELECT network, user_id, score, rank FROM scored.scores WHERE as_of = DATE'{as_of}'",
        ))
        expected = {
            (r.network, r.user_id, r.score, r.rank)
            for r in scored["lake"].read(catalog.SCORES).filter(F.col(C.AS_OF) == F.lit(as_of)).collect()
        }
        assert served == expected and len(served) > 50
        (latest,) = _jdbc_rows(cursor, "SELECT count(*), max(as_of) FROM scored.latest_scores")
        assert latest[0] == len(expected) and str(latest[1]) == str(as_of)

        # Another klout-spark process reads the same tables while the server runs (no metastore lock).
        other = subprocess.run(
            _cli("sql", "SELECT count(*) AS n FROM scored.scores", *_settings_args(settings)),
            capture_output=True, text=True, timeout=600, env=env, cwd=PROJECT,
        )
        assert other.returncode == 0, other.stderr[-2000:]
        total = scored["lake"].read(catalog.SCORES).count()
        assert f"|{total}|" in other.stdout.replace(" ", "")

        # A table created after the server started becomes visible (registered every refresh_seconds).
        probe = calibration.Calibration(
            "visibility-probe", date(2026, 1, 1), 1,
            {c: calibration.Curve(((0.0, 0.0), (1.0, 100.0))) for c in calibration.COMPONENTS},
        )
        rows = calibration.calibration_rows(probe, created_at=scored["lake"].spark.sql("SELECT now()").first()[0],
                                            run_id="probe")
        scored["lake"].overwrite_key(
            spark.createDataFrame(rows, S.SCORE_CALIBRATION_SCHEMA), catalog.SCORE_CALIBRATION,
            S.SCORE_CALIBRATION_SCHEMA, column=C.MODEL_VERSION, value="visibility-probe",
        )
        deadline = time.monotonic() + 60
        while "score_calibration" not in {r[1] for r in _jdbc_rows(cursor, "SHOW TABLES IN scored")}:
            assert time.monotonic() < deadline, "score_calibration never appeared in the server's catalog"
            time.sleep(1)
        assert _jdbc_rows(cursor, "SELECT count(*) FROM scored.score_calibration") == [(len(rows),)]
        connection.close()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    assert code == 0
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in jvms) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in jvms), "the server's JVM outlived it"


def _normalised(row) -> tuple:
    return tuple(float(v) if isinstance(v, float | int) and not isinstance(v, bool) else v for v in row)


def test_delta_rs_reads_the_same_scores_as_spark(scored):
    from deltalake import DeltaTable

    lake = scored["lake"]
    columns = S.SCORES_SCHEMA.fieldNames()
    arrow = DeltaTable(lake.path(catalog.SCORES)).to_pyarrow_table().select(columns)
    from_rust = {_normalised(tuple(r[c] for c in columns)) for r in arrow.to_pylist()}
    from_spark = {_normalised(tuple(r)) for r in lake.read(catalog.SCORES).select(*columns).collect()}
    assert len(from_spark) == arrow.num_rows > 100
    assert from_rust == from_spark
    assert {r[0] for r in from_rust} == {FIRST_SCORED, LAST_DAY}


def test_readers_see_the_old_or_the_new_scores_never_a_mix(scored, spark, tmp_path):
    settings = copy_lake(scored, tmp_path / "lake")
    as_of = scored["as_of"]
    path = f"{settings.lake.root}/{catalog.SCORES}"
    before = spark.read.format("delta").load(path).filter(F.col(C.AS_OF) == F.lit(as_of))
    (old_run,) = [r[0] for r in before.select(C.RUN_ID).distinct().collect()]
    accounts = before.count()
    reads: list[dict] = []
    writer_done = threading.Event()

    def read_until_done() -> None:
        while True:
            finished = writer_done.is_set()
            rows = (
                spark.read.format("delta").load(path).filter(F.col(C.AS_OF) == F.lit(as_of))
                .groupBy(C.RUN_ID).count().collect()
            )
            reads.append({r[C.RUN_ID]: r["count"] for r in rows})
            if finished:
                return

    reader = threading.Thread(target=read_until_done)
    reader.start()
    pipeline = Pipeline.open(settings)
    stage_score(pipeline, as_of)
    writer_done.set()
    reader.join(timeout=600)
    assert len(reads) >= 2
    assert all(len(read) == 1 and sum(read.values()) == accounts for read in reads), reads
    seen = [next(iter(read)) for read in reads]
    assert seen[0] == old_run and seen[-1] == pipeline.run.run_id
    assert set(seen) == {old_run, pipeline.run.run_id}
    switched = seen.index(pipeline.run.run_id)
    assert set(seen[switched:]) == {pipeline.run.run_id}  # once new, never old again
