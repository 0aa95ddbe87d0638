"""Two `klout-spark ingest` processes on the same folder, started together: every file commits once."""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from klout_spark import catalog
from klout_spark.ingest import only_committed

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _ingest(lake_root: Path, dump: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "klout_spark.cli", "ingest", str(dump),
        "--set", f"lake.root={lake_root}",
        "--set", "spark.master=local[1]",
        "--set", "spark.conf.spark.sql.shuffle.partitions=2",
        "--set", "spark.conf.spark.ui.enabled=false",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_ingests_started_together_do_not_duplicate(spark, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    files = []
    for day in (1, 2, 3):
        lines = [
            json.dumps({"event_id": f"e{day}-{i}", "network": "twitter", "event_type": "post",
                        "event_ts": f"2026-10-0{day}T{i % 24:02d}:00:00Z", "actor_id": f"u{i % 7}",
                        "post_id": f"p{day}-{i}"})
            for i in range(40)
        ]
        files.append(dump / f"day{day}.jsonl")
        files[-1].write_text("\n".join([*lines, "{broken"]) + "\n")
    lake = tmp_path / "lake"
    processes = [_ingest(lake, dump), _ingest(lake, dump)]
    outputs = [p.communicate(timeout=900)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    for output in outputs:  # shown with -s: which process committed what
        print("\n".join(line for line in output.splitlines() if line.startswith(("ingest:", "  /"))))

    def load(table):
        return spark.read.format("delta").load(catalog.table_path(str(lake), table))

    log = load(catalog.INGEST_LOG).collect()
    assert sorted(r.path for r in log) == [str(f.resolve()) for f in files]
    assert len({r.source_checksum for r in log}) == len(log)
    # Each file is reported as ingested by exactly one of the two processes.
    reported = Counter(path for o in outputs for path in re.findall(r"^  (/\S+): read ", o, flags=re.MULTILINE))
    assert reported == Counter(str(f.resolve()) for f in files), outputs
    # Bronze holds one committed copy of every event line, nothing of the losing attempt.
    bronze = load(catalog.BRONZE_EVENTS)
    visible = only_committed(bronze, load(catalog.INGEST_LOG))
    assert visible.count() == bronze.count()
    keys = Counter(tuple(r) for r in bronze.select("event_id", "source_checksum", "source_line").collect())
    assert keys and max(keys.values()) == 1
    assert sorted(r.event_id for r in bronze.collect()) == sorted(f"e{d}-{i}" for d in (1, 2, 3) for i in range(40))
    quarantined = load(catalog.QUARANTINE).filter("stage = 'ingest'").collect()
    assert sorted((q.source_path, q.reason) for q in quarantined) == [
        (str(f.resolve()), "malformed_json") for f in files]
    assert [(r.rows_read, r.rows_ok, r.rows_quarantined) for r in log] == [(41, 40, 1)] * 3
