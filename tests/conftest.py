"""One SparkSession for the whole test run, tuned for speed, with Delta enabled."""

from __future__ import annotations

import time
import uuid

import pytest

from klout_spark.config import load_settings
from klout_spark.io import Lakehouse
from klout_spark.session import build_session

TEST_OVERRIDES = (
    "spark.master=local[2]",
    "spark.app_name=klout-spark-tests",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.default.parallelism=2",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.ui.showConsoleProgress=false",
    "spark.conf.spark.databricks.delta.snapshotPartitions=1",
    "spark.conf.spark.sql.adaptive.enabled=false",
    "spark.conf.spark.driver.memory=3g",
    "spark.conf.spark.sql.streaming.schemaInference=false",
    # Data Docs are HTML rendering (~4 MB a suite a run): their own tests and the report's lakehouse turn them on.
    "validate.data_docs=false",
)


def test_settings(lake_root: str = "/tmp/klout-spark-tests-unused", *extra: str):
    """Settings for tests: local defaults, a small Spark, the lakehouse at ``lake_root``."""
    return load_settings("local", overrides=(*TEST_OVERRIDES, f"lake.root={lake_root}", *extra))


test_settings.__test__ = False  # not a test, despite the name


@pytest.fixture(scope="session")
def spark():
    session = build_session(test_settings(), register=False)
    yield session
    session.stop()


@pytest.fixture(autouse=True, scope="module")
def _release_cached_frames():
    """Drop what a module left cached (Great Expectations caches the frames it validates)."""
    yield
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.catalog.clearCache()


@pytest.fixture()
def settings(tmp_path):
    """Settings whose lakehouse is a fresh temporary folder, under a database of its own.

    The test session's catalog outlives each test, so every test gets its own
    database name and never sees another test's tables.
    """
    return test_settings(str(tmp_path / "lake"), f"lake.database=t_{uuid.uuid4().hex[:12]}")


@pytest.fixture()
def lake(spark, settings):
    return Lakehouse(spark, settings.lake.root, settings.lake.database)


# pytest-xdist hands out whole files (`--dist loadfile --no-loadscope-reorder`, as the Makefile runs
# `make test`), so a module's fixtures are built once. The files with the longest fast tests (the
# durations of `make test`, 2026-11-27) start first, so that the two workers finish at about the same
# time; the rest follow in file order. A wrong guess here costs minutes, never a result. (The slow
# tier runs in one process, where the order changes nothing.)
HEAVY_FIRST = ("test_anti_gaming.py", "test_pagerank.py", "test_reliability_properties.py",
               "test_validation_gates.py", "test_features.py", "test_backfill.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    rank = {name: n for n, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order otherwise


_SUITE_STARTED = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    elapsed = time.monotonic() - _SUITE_STARTED
    terminalreporter.write_line(f"klout-spark test suite wall time: {elapsed:.1f} s")
