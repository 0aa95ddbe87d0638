"""Hostile values at the edges: names that reach SQL, dates, file names, and where servers listen."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from klout_spark import catalog, cli
from klout_spark import schemas as S
from klout_spark.config import load_settings
from klout_spark.errors import ConfigError, InputError
from klout_spark.ingest import ingest_files

HOSTILE_NAMES = [
    "klout; DROP TABLE scores",
    "klout--",
    "a b",
    "x`y",
    "x'y",
    'x"y',
    "db.table",
    "../etc",
    "1starts_with_digit",
    "",
    "ünïcode",
    "a" * 129,
    "scores/*",
    "t\nDROP",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_database_name_from_conf_is_rejected(name):
    with pytest.raises(ConfigError, match="lake.database must be a plain identifier"):
        load_settings("local", overrides=[f"lake.database={json.dumps(name)}"])


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_table_and_column_names_never_reach_sql(spark, lake, name):
    with pytest.raises(ConfigError):
        catalog.table_path(lake.root, name)
    with pytest.raises(ConfigError):
        catalog.qualified("klout", name)
    df = spark.createDataFrame([], S.SCORES_SCHEMA)
    with pytest.raises(ConfigError, match="slice column"):
        lake.overwrite_slice(df, catalog.SCORES, S.SCORES_SCHEMA, column=name, start=date(2026, 10, 31))
    with pytest.raises(ConfigError, match="merge key"):
        lake.merge_new(df, catalog.SCORES, S.SCORES_SCHEMA, keys=[name])
    assert not lake.exists(catalog.SCORES), "a rejected write created its table"


def test_slice_bounds_must_be_dates_not_text(spark, lake):
    df = spark.createDataFrame([], S.SCORES_SCHEMA)
    with pytest.raises(InputError, match="must be dates"):
        lake.overwrite_slice(df, catalog.SCORES, S.SCORES_SCHEMA, column="as_of", start="2026-10-31' OR '1'='1")


@pytest.mark.parametrize("text", ["2026-10-31' OR '1'='1", "2026-13-01", "31/10/2026", "yesterday at noon", "2026-10-31; --"])
def test_cli_dates_are_parsed_as_dates(text, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(["score", "--as-of", text])
    assert stopped.value.code == 2
    assert "not a date YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["2006-01-01' OR '1'='1", "soon", "2006-02-30"])
def test_dates_in_conf_are_parsed_as_dates(value):
    with pytest.raises(ConfigError, match="validate.min_event_date"):
        load_settings("local", overrides=[f"validate.min_event_date={json.dumps(value)}"])


@pytest.mark.parametrize("value", ["../../outside", "/etc/klout", "a/../../b"])
def test_results_dir_stays_inside_the_lakehouse(value):
    with pytest.raises(ConfigError, match="validate.results_dir"):
        load_settings("local", overrides=[f"validate.results_dir={json.dumps(value)}"])


HOSTILE_FILE_NAMES = ["it's.jsonl", "a+b.jsonl", "100%25 done.jsonl", "glob[1].jsonl", "star*.jsonl",
                      "brace{x,y}.jsonl", "日本語 ملف.jsonl", "as_of=2026-10-31/x.jsonl"]


def test_hostile_file_names_are_read_as_themselves(lake, tmp_path):
    """Quotes, glob characters, URL escapes and partition-like folders in dump paths: each file alone."""
    dump = tmp_path / "dump"
    expected = {}
    for i, name in enumerate(HOSTILE_FILE_NAMES):
        path = dump / name
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            {"event_id": f"f{i}-{j}", "network": "twitter", "event_type": "post",
             "event_ts": "2026-10-01T12:00:00Z", "actor_id": f"tw:u:{i}", "post_id": f"tw:p:{i}{j}"}
            for j in range(i + 1)
        ]
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        expected[str(path.resolve())] = i + 1
    # A sibling a glob would match instead of (or besides) the real file.
    (dump / "glob1.jsonl").write_text(json.dumps({**lines[0], "event_id": "decoy"}) + "\n")
    expected[str((dump / "glob1.jsonl").resolve())] = 1
    summary = ingest_files(lake, [str(dump)], run_id="r1", fmt="auto", max_raw_chars=100)
    assert {a.path: a.rows_ok for a in summary.accounts} == expected
    bronze = lake.read(catalog.BRONZE_EVENTS)
    assert bronze.count() == sum(expected.values())
    assert "as_of" not in bronze.columns  # a k=v folder is not a partition column


def _listening_sockets(pid: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the TCP sockets process ``pid`` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                addresses.append(fields[1].split(":")[0])
    return addresses


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_the_spark_driver_listens_on_loopback_only(spark):
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    addresses = _listening_sockets(pid)
    assert addresses, "found no listening socket of the driver JVM"
    assert set(addresses) <= LOOPBACK, f"driver listens beyond 127.0.0.1: {addresses}"


def test_loopback_is_the_local_default_and_conf_can_say_otherwise():
    local = load_settings("local")
    assert local.spark.conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert local.spark.conf["spark.driver.host"] == "127.0.0.1"
    opened = load_settings("local", overrides=["spark.conf.spark.driver.bindAddress=0.0.0.0"])
    assert opened.spark.conf["spark.driver.bindAddress"] == "0.0.0.0"
