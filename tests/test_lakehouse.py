import json
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import ConfigError, StageOrderError

D1, D2 = date(2026, 10, 30), date(2026, 10, 31)


def _scores(spark, as_of, users, score=10.0, run_id="r"):
    rows = [(as_of, "twitter", u, score, 0.0, 0.0, 0.0, i + 1, 0.0, None, "v", run_id) for i, u in enumerate(users)]
    return spark.createDataFrame(rows, S.SCORES_SCHEMA)


def test_overwrite_slice_replaces_one_as_of_and_keeps_the_others(lake, spark):
    lake.overwrite_slice(_scores(spark, D1, ["a", "b"]), catalog.SCORES, S.SCORES_SCHEMA,
                         column=C.AS_OF, start=D1, partition_by=[C.AS_OF])
    lake.overwrite_slice(_scores(spark, D2, ["a"], run_id="first"), catalog.SCORES, S.SCORES_SCHEMA,
                         column=C.AS_OF, start=D2, partition_by=[C.AS_OF])
    lake.overwrite_slice(_scores(spark, D2, ["c"], run_id="second"), catalog.SCORES, S.SCORES_SCHEMA,
                         column=C.AS_OF, start=D2, partition_by=[C.AS_OF])
    rows = sorted((r.as_of, r.user_id, r.run_id) for r in lake.read(catalog.SCORES).collect())
    assert rows == [(D1, "a", "r"), (D1, "b", "r"), (D2, "c", "second")]


def test_overwrite_slice_is_one_commit_so_readers_never_see_a_mix(lake, spark):
    lake.overwrite_slice(_scores(spark, D2, ["a", "b"], run_id="old"), catalog.SCORES, S.SCORES_SCHEMA,
                         column=C.AS_OF, start=D2, partition_by=[C.AS_OF])
    before = lake.latest_version(catalog.SCORES)
    lake.overwrite_slice(_scores(spark, D2, ["a", "b", "c"], run_id="new"), catalog.SCORES, S.SCORES_SCHEMA,
                         column=C.AS_OF, start=D2, partition_by=[C.AS_OF])
    assert lake.latest_version(catalog.SCORES) == before + 1
    # Each version a reader can pick holds a single run's slice.
    old = spark.read.format("delta").option("versionAsOf", before).load(lake.path(catalog.SCORES))
    new = spark.read.format("delta").option("versionAsOf", before + 1).load(lake.path(catalog.SCORES))
    assert {r.run_id for r in old.collect()} == {"old"}
    assert {r.run_id for r in new.collect()} == {"new"} and new.count() == 3


def test_rows_outside_the_slice_are_refused(lake, spark):
    with pytest.raises(Exception, match="(?i)replaceWhere|does not conform|DELTA_REPLACE_WHERE"):
        lake.overwrite_slice(_scores(spark, D1, ["a"]), catalog.SCORES, S.SCORES_SCHEMA,
                             column=C.AS_OF, start=D2, partition_by=[C.AS_OF])


def test_merge_new_inserts_only_unseen_keys(lake, spark):
    schema = S.SILVER_EVENTS_SCHEMA
    row = ("e1", "twitter", "post", datetime(2026, 10, 30), "u", None, None, None, None, None, "b", D1)
    first = spark.createDataFrame([row], schema)
    second = spark.createDataFrame([row, ("e2", *row[1:])], schema)
    inserted = [
        lake.merge_new(df, catalog.SILVER_EVENTS, schema, keys=[C.EVENT_ID], partition_by=[C.EVENT_DATE])
        for df in (first, first, second)
    ]
    assert inserted == [1, 0, 1]
    assert sorted(r.event_id for r in lake.read(catalog.SILVER_EVENTS).collect()) == ["e1", "e2"]


def _first_write_file_stats(lake, table):
    """The statistics of each file that the table's first write (Delta version 1) added."""
    log_dir = Path(lake.path(table).removeprefix("file:")) / "_delta_log"
    return [
        json.loads(action["add"]["stats"])
        for line in (log_dir / "00000000000000000001.json").read_text().splitlines()
        if "add" in (action := json.loads(line))
    ]


@pytest.mark.parametrize("table", sorted(t for t, columns in catalog.STATS_COLUMNS.items() if columns))
def test_event_tables_keep_file_statistics_of_their_skipping_columns_only(lake, spark, table):
    schema = {catalog.BRONZE_EVENTS: S.BRONZE_EVENTS_SCHEMA, catalog.SILVER_EVENTS: S.SILVER_EVENTS_SCHEMA}[table]
    wanted = catalog.STATS_COLUMNS[table]
    assert set(wanted) <= set(schema.fieldNames())
    values = {C.EVENT_TS: datetime(2026, 10, 30, 8), C.EVENT_DATE: D1, C.SOURCE_LINE: 1,
              C.INGESTED_AT: datetime(2026, 11, 1)}
    row = tuple(values.get(f.name, f"{f.name}-1" if f.dataType.typeName() == "string" else None) for f in schema.fields)
    lake.append(spark.createDataFrame([row], schema), table, schema, partition_by=[C.EVENT_DATE])
    adds = _first_write_file_stats(lake, table)
    assert len(adds) == 1 and adds[0]["numRecords"] == 1
    assert set(adds[0]["minValues"]) == set(adds[0]["maxValues"]) == set(adds[0]["nullCount"]) == set(wanted)
    assert adds[0]["minValues"][C.BATCH_ID] == adds[0]["maxValues"][C.BATCH_ID] == "batch_id-1"


@pytest.mark.parametrize("table", sorted(t for t, columns in catalog.STATS_COLUMNS.items() if not columns))
def test_per_account_tables_keep_row_counts_but_no_column_statistics(lake, spark, table):
    schema = {
        catalog.ENGAGEMENT_EDGES: S.ENGAGEMENT_EDGES_SCHEMA,
        catalog.SCORE_EXPLAIN: S.SCORE_EXPLAIN_SCHEMA,
        catalog.USER_FEATURES: S.USER_FEATURES_SCHEMA,
    }[table]
    values = {"string": "x", "date": D1, "double": 1.0, "long": 1, "boolean": False}
    rows = [tuple(values[f.dataType.typeName()] for f in schema.fields)] * 3
    lake.overwrite_slice(spark.createDataFrame(rows, schema), table, schema, column=C.AS_OF, start=D1,
                         partition_by=[C.AS_OF])
    adds = _first_write_file_stats(lake, table)
    assert sum(add["numRecords"] for add in adds) == 3
    assert all(not add.get("minValues") and not add.get("maxValues") for add in adds)
    assert lake.read(table).count() == 3


def test_tables_are_registered_and_rediscovered_by_a_fresh_catalog(lake, spark, settings):
    lake.overwrite_slice(_scores(spark, D2, ["a"]), catalog.SCORES, S.SCORES_SCHEMA,
                         column=C.AS_OF, start=D2, partition_by=[C.AS_OF])
    db = settings.lake.database
    assert spark.sql(f"SELECT count(*) FROM {db}.scores").first()[0] == 1
    assert spark.sql(f"SELECT count(*) FROM {db}.latest_scores").first()[0] == 1
    spark.sql(f"DROP TABLE {db}.scores")  # as if this were a new process: only the files remain
    assert catalog.register_tables(spark, settings.lake.root, db) == ["scores"]
    assert catalog.register_tables(spark, settings.lake.root, db) == []  # idempotent
    assert spark.sql(f"SELECT user_id FROM {db}.scores").first()[0] == "a"


def test_reading_a_table_no_stage_wrote_names_the_stage_to_run(lake):
    with pytest.raises(StageOrderError, match="does not exist yet"):
        lake.read(catalog.USER_FEATURES)


@pytest.mark.parametrize("hostile", ["klout; DROP TABLE x", "a-b", "1abc", "", "klout.scores", "k`o"])
def test_identifiers_from_settings_are_validated(hostile):
    with pytest.raises(ConfigError, match="plain identifier"):
        catalog.validate_identifier(hostile, what="lake.database")


def test_delete_is_a_no_op_on_a_missing_table(lake):
    lake.delete(catalog.QUARANTINE, F.lit(True))
    assert not lake.exists(catalog.QUARANTINE)


def test_identities_csv_is_read_even_with_a_hidden_name(spark, tmp_path):
    from klout_spark.errors import InputError
    from klout_spark.io import read_identities_csv

    path = tmp_path / "_identities.csv"
    path.write_text("person_id,network,user_id\np1,twitter,t1\np1,reddit,r1\np2,twitter,t1\n,reddit,r9\n")
    rows = sorted(tuple(r) for r in read_identities_csv(spark, str(path)).collect())
    assert rows == [("p1", "reddit", "r1"), ("p1", "twitter", "t1")]  # first claim of t1 wins; blanks dropped
    bad = tmp_path / "bad.csv"
    bad.write_text("person,network\nx,y\n")
    with pytest.raises(InputError, match="must have the columns"):
        read_identities_csv(spark, str(bad))


def test_creating_a_table_another_writer_is_creating_waits_for_its_version_0(lake, spark, tmp_path):
    """Two ingests that start together both create bronze: the loser finds the winner's log folder."""
    import shutil
    import threading

    from delta.tables import DeltaTable

    finished = tmp_path / "finished"  # what the other writer's location holds once it committed
    DeltaTable.createIfNotExists(spark).location(str(finished)).addColumns(S.QUARANTINE_SCHEMA).execute()
    path = Path(lake.path(catalog.QUARANTINE))
    (path / "_delta_log").mkdir(parents=True)  # the other writer's state before its version 0

    def other_writer():
        time.sleep(1.5)
        shutil.copytree(finished / "_delta_log", path / "_delta_log", dirs_exist_ok=True)

    writer = threading.Thread(target=other_writer)
    writer.start()
    assert not lake.exists(catalog.QUARANTINE)
    lake.ensure(catalog.QUARANTINE, S.QUARANTINE_SCHEMA)
    writer.join()
    assert lake.read(catalog.QUARANTINE).schema == S.QUARANTINE_SCHEMA


# What a create killed before its version 0 leaves in _delta_log: a hidden temp commit, and with
# Delta 4 also an empty _staged_commits folder (a SIGKILL during an ingest's first write left both).
@pytest.mark.parametrize("staged_commits", [False, True], ids=["temp-file", "temp-file-and-staged-commits"])
def test_a_create_killed_before_its_first_commit_is_cleared_on_rerun(lake, monkeypatch, staged_commits):
    from klout_spark import io as lake_io

    monkeypatch.setattr(lake_io, "CREATE_WAIT_SECONDS", 1.0)
    log_dir = Path(lake.path(catalog.QUARANTINE)) / "_delta_log"
    log_dir.mkdir(parents=True)
    (log_dir / ".00000000000000000000.json.0f3c.tmp").write_text("{")
    if staged_commits:
        (log_dir / "_staged_commits").mkdir()
    lake.ensure(catalog.QUARANTINE, S.QUARANTINE_SCHEMA)
    assert lake.read(catalog.QUARANTINE).schema == S.QUARANTINE_SCHEMA
    assert (log_dir / "00000000000000000000.json").exists()


def test_a_staged_commit_is_never_cleared_as_a_leftover(lake, monkeypatch):
    from klout_spark import io as lake_io
    from klout_spark.errors import StorageError

    monkeypatch.setattr(lake_io, "CREATE_WAIT_SECONDS", 1.0)
    staged = Path(lake.path(catalog.QUARANTINE)) / "_delta_log" / "_staged_commits"
    staged.mkdir(parents=True)
    (staged / "00000000000000000000.0f3c.json").write_text("{}")
    with pytest.raises(StorageError, match="holds files but no Delta table"):
        lake.ensure(catalog.QUARANTINE, S.QUARANTINE_SCHEMA)
    assert (staged / "00000000000000000000.0f3c.json").read_text() == "{}"


def test_a_location_holding_other_files_is_named_in_the_error(lake, monkeypatch):
    from klout_spark import io as lake_io
    from klout_spark.errors import StorageError

    monkeypatch.setattr(lake_io, "CREATE_WAIT_SECONDS", 1.0)
    path = Path(lake.path(catalog.QUARANTINE))
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("not a table")
    with pytest.raises(StorageError, match=r"holds files but no Delta table.*move those files away"):
        lake.ensure(catalog.QUARANTINE, S.QUARANTINE_SCHEMA)
    assert (path / "notes.txt").read_text() == "not a table"
