"""Example Airflow DAG for klout-spark: documentation, not a dependency (nothing imports it).

Copy it into your Airflow dags folder and adapt the paths and the Spark connection.
It needs ``apache-airflow-providers-apache-spark``; the ``spark_default`` connection
points at your master (e.g. ``spark://spark-master:7077``, or ``yarn``).

- ``klout_daily`` runs once a day after midnight UTC and scores the day that just
  ended (Airflow's ``ds`` of a daily schedule is that day). Reruns and clears are
  safe: a second run of a day rewrites the same slices, and two at once are kept
  apart by the date's lock in ``run_locks`` (the second fails with "another run is
  writing as_of D" and can simply be retried).
- ``klout_backfill`` is triggered by hand with ``{"start": "2026-10-01", "end":
  "2026-10-31"}``; dates already committed are skipped, so retrying it resumes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

KLOUT_HOME = "/opt/klout-spark"  # a checkout with `make dist` run
LAKE_ROOT = "hdfs:///lake"
DUMPS = "/data/dumps"
SPARK_CONF = {
    "spark.sql.shuffle.partitions": "200",
}
COMMON = dict(
    conn_id="spark_default",
    py_files=f"{KLOUT_HOME}/dist/klout_spark.zip",
    packages="io.delta:delta-spark_4.1_2.13:4.3.1",
    conf=SPARK_CONF,
    executor_cores=2,
    executor_memory="4g",
    driver_memory="4g",
    verbose=False,
)

default_args = {
    "owner": "data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
}

with DAG(
    dag_id="klout_daily",
    description="klout-spark: ingest yesterday's dump and score it",
    schedule="30 1 * * *",
    start_date=datetime(2026, 10, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["klout-spark"],
) as daily:
    SparkSubmitOperator(
        task_id="score_day",
        application=f"{KLOUT_HOME}/jobs/daily.py",
        name="klout-daily-{{ ds }}",
        application_args=[
            "--env", "cluster",
            "--as-of", "{{ ds }}",
            "--input", DUMPS + "/{{ ds }}",
            "--set", f"lake.root={LAKE_ROOT}",
        ],
        **COMMON,
    )

with DAG(
    dag_id="klout_backfill",
    description="klout-spark: compute every as_of of a date range (trigger with start/end in the conf)",
    schedule=None,
    start_date=datetime(2026, 10, 1),
    catchup=False,
    max_active_runs=1,
    params={"start": "2026-10-01", "end": "2026-10-31"},
    default_args=default_args,
    tags=["klout-spark"],
) as backfill:
    SparkSubmitOperator(
        task_id="backfill_range",
        application=f"{KLOUT_HOME}/jobs/backfill.py",
        name="klout-backfill-{{ params.start }}-{{ params.end }}",
        application_args=[
            "--env", "cluster",
            "--start", "{{ params.start }}",
            "--end", "{{ params.end }}",
            "--set", f"lake.root={LAKE_ROOT}",
        ],
        **COMMON,
    )
