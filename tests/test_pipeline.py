"""End-to-end: a generated dump through every stage, twice, and read from another process."""

import csv
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.generate import generate_dump
from klout_spark.pipeline import Pipeline, run_daily

pytestmark = pytest.mark.slow

SCORE_COLUMNS = [C.NETWORK, C.USER_ID, C.SCORE, C.TRUE_REACH, C.AMPLIFICATION, C.NETWORK_IMPACT, C.RANK]


@pytest.fixture(scope="module")
def pipeline_run(spark, tmp_path_factory):  # noqa: ARG001 - the session must exist first
    from tests.conftest import test_settings

    root = tmp_path_factory.mktemp("e2e")
    dump = root / "dump"
    generate_dump(dump, events=20_000, seed=11, days=30)
    settings = test_settings(str(root / "lake"), "lake.database=e2e")
    first_pipeline = Pipeline.open(settings)
    first = run_daily(first_pipeline, as_of=None, inputs=[str(dump)], identities=str(dump / "_identities.csv"))
    first_scores = sorted(first_pipeline.lake.read(catalog.SCORES).select(*SCORE_COLUMNS).collect())
    second_pipeline = Pipeline.open(settings)
    second = run_daily(second_pipeline, as_of=None, inputs=[str(dump)])
    return dict(settings=settings, dump=dump, first=first, second=second, first_scores=first_scores,
                first_run=first_pipeline.run.run_id, second_run=second_pipeline.run.run_id,
                lake=second_pipeline.lake)


def test_every_stage_writes_its_table(pipeline_run):
    lake, first = pipeline_run["lake"], pipeline_run["first"]
    assert first.as_of == date(2026, 10, 31)  # the last day with events
    for table in catalog.TABLES:
        # score_calibration is written by `klout-spark calibrate` only.
        assert lake.exists(table) == (table != catalog.SCORE_CALIBRATION), table
    scores = lake.read(catalog.SCORES)
    assert scores.count() == first.scored == first.accounts > 100
    bounds = scores.agg(F.min(C.SCORE), F.max(C.SCORE)).first()
    assert 1.0 <= bounds[0] < bounds[1] <= 100.0
    assert first.propagation.converged
    assert lake.read(catalog.PERSON_SCORES).count() > 0  # persons from _identities.csv


def test_nothing_is_lost_between_dump_and_silver(pipeline_run):
    lake, first = pipeline_run["lake"], pipeline_run["first"]
    ingested = first.ingest
    assert ingested.rows_read == ingested.rows_ok + ingested.rows_quarantined
    # A clean dump: only its event files are read (not _identities.csv, not _ground_truth/) and all pass.
    assert ingested.rows_quarantined == 0 and first.validate.rows_rejected == 0
    assert all("/_" not in account.path for account in ingested.accounts)
    bronze = lake.read(catalog.BRONZE_EVENTS).count()
    silver = lake.read(catalog.SILVER_EVENTS).count() + lake.read(catalog.SILVER_PROFILES).count()
    validated = first.validate
    assert bronze == ingested.rows_ok == validated.rows_in
    assert silver == validated.rows_promoted == validated.rows_in - validated.rows_rejected - validated.duplicates


def test_second_run_ingests_nothing_and_rewrites_the_same_scores(pipeline_run):
    second, lake = pipeline_run["second"], pipeline_run["lake"]
    assert second.ingest.batch_id is None and second.ingest.files_skipped == second.ingest.files_found
    assert second.validate.rows_in == 0
    rows = sorted(lake.read(catalog.SCORES).select(*SCORE_COLUMNS).collect())
    assert rows == pipeline_run["first_scores"]
    run_ids = {r[0] for r in lake.read(catalog.SCORES).select(C.RUN_ID).distinct().collect()}
    assert run_ids == {pipeline_run["second_run"]}  # the as_of slice was replaced, not appended


def test_runs_log_every_stage_with_counts_and_residuals(pipeline_run):
    lake = pipeline_run["lake"]
    runs = lake.read(catalog.RUNS).filter(F.col(C.RUN_ID) == pipeline_run["first_run"]).collect()
    by_stage = {r.stage: r for r in runs}
    assert set(by_stage) == {"ingest", "identities", "validate", "features", "propagate", "score"}
    assert all(r.status == "succeeded" and r.config_hash for r in runs)
    propagate = by_stage["propagate"]
    assert propagate.iterations == len(propagate.residuals) and propagate.residual < 1e-9


def test_planted_bots_score_below_genuine_accounts(pipeline_run):
    lake, dump = pipeline_run["lake"], pipeline_run["dump"]
    with open(dump / "_ground_truth" / "accounts.csv") as handle:
        roles = {(r["network"], r["user_id"]): r["role"] for r in csv.DictReader(handle)}
    scores = {(r.network, r.user_id): r.score for r in lake.read(catalog.SCORES).collect()}

    def mean_score(role):
        values = [s for key, s in scores.items() if roles.get(key) == role]
        assert values, role
        return sum(values) / len(values)

    assert mean_score("spam_bot") < 10.0
    assert mean_score("spam_bot") < mean_score("genuine")


def test_tables_are_queryable_by_name_here_and_from_another_process(pipeline_run, spark):
    settings = pipeline_run["settings"]
    count = spark.sql("SELECT count(*) FROM e2e.scores").first()[0]
    assert count == pipeline_run["first"].scored
    latest = spark.sql("SELECT count(*) FROM e2e.latest_scores").first()[0]
    assert latest == count
    # A second JVM reads the same catalog while this one (a klout-spark process) is still running.
    env = {**os.environ, "KLOUT_SPARK_LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [sys.executable, "-m", "klout_spark.cli", "sql", "SELECT count(*) AS n FROM e2e.scores",
         "--set", f"lake.root={settings.lake.root}", "--set", "lake.database=e2e"],
        capture_output=True, text=True, timeout=300, env=env, cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"|{count}" in result.stdout.replace(" ", "")
