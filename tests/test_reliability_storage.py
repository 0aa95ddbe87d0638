"""A read-only lakehouse and a full disk: a clear one-line error, and nothing half-committed.

Read-only: a copy of a real lakehouse with ``chmod -R a-w``. Root ignores file
modes, so when the tests run as root the command runs under ``setpriv`` with
the DAC-override capabilities dropped (no mount, no extra privilege).

A full disk is not simulated end to end: a small filesystem needs a mount
(root, CAP_SYS_ADMIN), which CI may not have. What is tested is the part that
is ours: a "No space left on device" from any layer becomes one clear line and
exit status 1; Delta's commit protocol (data files first, then one log entry)
means the failed write never committed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from klout_spark import catalog, cli
from klout_spark.errors import StorageError
from klout_spark.ingest import ingest_files
from klout_spark.io import check_writable, storage_failure

ROOT = Path(__file__).resolve().parents[1]
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


def _event(i: int) -> str:
    return json.dumps({"event_id": f"e{i}", "network": "twitter", "event_type": "post",
                       "event_ts": "2026-10-01T12:00:00Z", "actor_id": "tw:u:1", "post_id": f"tw:p:{i}"})


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


def _unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes cannot be enforced")
    return DROP_DAC


def test_read_only_lakehouse_fails_clearly_and_writes_nothing(lake, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "a.jsonl").write_text(_event(1) + "\n")
    ingest_files(lake, [str(dump)], run_id="r1", fmt="auto", max_raw_chars=100)
    copy = tmp_path / "ro-lake"
    shutil.copytree(lake.root, copy)
    (dump / "b.jsonl").write_text(_event(2) + "\n")
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _tree(copy)
    try:
        done = subprocess.run(
            [*_unprivileged(), sys.executable, "-m", "klout_spark.cli", "run", "--input", str(dump),
             "--set", f"lake.root={copy}"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
        )
        after = _tree(copy)
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "klout-spark run: error: the lakehouse is not writable" in done.stderr
    assert "Permission denied" in done.stderr and "Traceback" not in done.stderr
    assert after == before, "a refused run changed the lakehouse"


def test_one_read_only_table_is_caught_before_any_stage_writes(tmp_path):
    root = tmp_path / "lake"
    log = root / catalog.SCORES / "_delta_log"
    log.mkdir(parents=True)
    check_writable(str(root), catalog.TABLES)  # all writable: no error
    log.chmod(0o555)
    try:
        if os.geteuid() == 0:
            done = subprocess.run(
                [*_unprivileged(), sys.executable, "-c",
                 "import sys; from klout_spark import catalog; from klout_spark.io import check_writable\n"
                 "try: check_writable(sys.argv[1], catalog.TABLES)\n"
                 "except Exception as e: print(type(e).__name__, e); sys.exit(1)",
                 str(root)],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
            )
            assert done.returncode == 1 and done.stdout.startswith("StorageError")
            assert f"{log}: Permission denied" in done.stdout
        else:
            with pytest.raises(StorageError, match="_delta_log: Permission denied"):
                check_writable(str(root), catalog.TABLES)
    finally:
        log.chmod(0o755)
    assert not any(p.name.startswith(".klout-write-probe") for p in root.rglob("*"))


def test_a_full_disk_is_one_clear_line_and_exit_1(monkeypatch, capsys):
    java_text = (
        "An error occurred while calling o123.save.\n"
        ": org.apache.spark.SparkException: Job aborted.\n"
        "Caused by: java.io.IOException: No space left on device\n\tat java.base/java.io.FileOutputStream.writeBytes"
    )

    def full_disk(args, settings):  # noqa: ARG001
        raise RuntimeError(java_text)

    monkeypatch.setitem(cli.COMMANDS, "validate", full_disk)
    assert cli.main(["validate"]) == 1
    err = capsys.readouterr().err
    assert "klout-spark validate: error: storage refused an operation (No space left on device)" in err
    assert "did not commit" in err and "Traceback" not in err


def test_other_failures_are_not_dressed_up_as_storage_errors(monkeypatch):
    def bug(args, settings):  # noqa: ARG001
        raise ZeroDivisionError("a real bug")

    monkeypatch.setitem(cli.COMMANDS, "validate", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["validate"])
    assert storage_failure(OSError(errno.ENOSPC, "No space left on device")) is not None
    assert storage_failure(ValueError("No such column")) is None
