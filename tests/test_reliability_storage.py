"""A read-only lakehouse and a full disk: a clear one-line error, and nothing half-committed.

Read-only: a copy of a real lakehouse with ``chmod -R a-w``. Root ignores file
modes, so when the tests run as root the command runs under ``setpriv`` with
the DAC-override capabilities dropped (no mount, no extra privilege).

A full disk, end to end: the lakehouse on a small tmpfs (a mount needs root
and CAP_SYS_ADMIN; the test skips, saying why, where that is not allowed), two
days ingested, the rest filled up but for a few hundred KiB, then the daily run
of the whole dump: one clear line, exit status 1, every Delta table still
readable with every ingested file's rows in bronze, and once space is freed
the same command finishes with no row twice. Without a mount, the part that is
ours is still tested: a "No space left on device" from any layer becomes one
clear line and exit status 1; Delta's commit protocol (data files first, then
one log entry) means the failed write never committed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from klout_spark import catalog, cli
from klout_spark import columns as C
from klout_spark import reliability as R
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


def _mount_tmpfs(where: Path, size_mb: int) -> None:
    """Mount a ``size_mb`` tmpfs at ``where``, or skip the test saying why it cannot."""
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs: mounting one needs root")
    where.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()[:200]}")


def _delta_rows(root: Path, table: str) -> list[dict]:
    from deltalake import DeltaTable

    return DeltaTable(str(root / table)).to_pyarrow_table().to_pylist()


def _check_committed_state(lake: Path) -> dict[str, list[dict]]:
    """Every Delta table under ``lake`` reads; every file in ``ingest_log`` has all its good lines in bronze."""
    tables = {p.parent.name: _delta_rows(lake, p.parent.name) for p in lake.glob("*/_delta_log")}
    assert catalog.INGEST_LOG in tables and catalog.BRONZE_EVENTS in tables, sorted(tables)
    for entry in tables[catalog.INGEST_LOG]:
        lines = {r[C.SOURCE_LINE] for r in tables[catalog.BRONZE_EVENTS]
                 if r[C.SOURCE_CHECKSUM] == entry[C.SOURCE_CHECKSUM]}
        assert len(lines) == entry[C.ROWS_OK], f"bronze rows of {entry[C.PATH]} are missing"
    return tables


@pytest.mark.slow
@pytest.mark.reliability
def test_a_real_full_disk_stops_the_run_clearly_and_a_rerun_after_freeing_space_completes(tmp_path):
    dump = Path(R.small_dump(tmp_path / "dump", seed=9))
    days = sorted(p for p in dump.iterdir() if p.name[:1].isdigit())
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, 16)
    lake = mount / "lake"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPARK_LOCAL_IP": "127.0.0.1"}

    def cli_run(*args: str) -> subprocess.CompletedProcess:
        overrides = [x for o in (f"lake.root={lake}", *R.RUN_OVERRIDES) for x in ("--set", o)]
        return subprocess.run([sys.executable, "-m", "klout_spark.cli", *args, *overrides], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)

    try:
        first = cli_run("ingest", *map(str, days[:2]))
        assert first.returncode == 0, first.stderr[-3000:]
        # Leave ~300 KiB: enough to start, far from the ~1.5 MiB a daily run of these three days writes.
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        with (mount / "filler").open("wb") as filler:
            filler.write(b"\0" * (free - 300 * 1024))
        full = cli_run("run", "--input", str(dump), "--no-report")
        assert full.returncode == 1, full.stderr[-3000:]
        errors = [line for line in full.stderr.splitlines() if line.startswith("klout-spark run: error:")]
        assert len(errors) == 1, full.stderr[-3000:]
        assert errors[0].startswith("klout-spark run: error: storage refused an operation (No space left on device)")
        assert "fix the storage and rerun" in errors[0] and "Traceback" not in full.stderr
        print(f"full disk in stage {R.stage_at_kill(full.stderr)}: {errors[0][:160]}")
        after_failure = _check_committed_state(lake)
        # A date's scores need its ranks, which need its features: no stage committed a date half-way.
        dates = [{r[C.AS_OF] for r in after_failure.get(t, [])}
                 for t in (catalog.USER_FEATURES, catalog.NETWORK_RANK, catalog.SCORES)]
        assert dates[0] >= dates[1] >= dates[2] and dates[2] <= {date.fromisoformat(days[-1].name)}, dates

        (mount / "filler").unlink()
        rerun = cli_run("run", "--input", str(dump), "--no-report")
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        tables = _check_committed_state(lake)
        files = Counter(e[C.SOURCE_CHECKSUM] for e in tables[catalog.INGEST_LOG])
        assert len(files) == len([f for d in days for f in d.iterdir()]) and max(files.values()) == 1, files
        duplicated = {t: sum(n - 1 for n in c.values() if n > 1) for t, c in R.lakehouse_digests(str(lake)).items()}
        assert not any(duplicated.values()), duplicated
        accounts = Counter((r[C.NETWORK], r[C.USER_ID]) for r in tables[catalog.SCORES])
        assert len(accounts) > 100 and max(accounts.values()) == 1
        assert {r[C.AS_OF] for r in tables[catalog.SCORES]} == {date.fromisoformat(days[-1].name)}
    finally:
        if subprocess.run(["umount", str(mount)], check=False, timeout=60).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False, timeout=60)  # a process still holds a file
