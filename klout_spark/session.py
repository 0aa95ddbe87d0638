"""The one place that builds a SparkSession.

Every command, job, test and the Thrift server get their session here, so that
Delta, the catalog, the time zone and logging are the same everywhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import metadata
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from klout_spark.config import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def delta_maven_coordinate() -> str:
    """Maven coordinate of the Delta jar that matches the installed delta-spark and pyspark."""
    delta_version = metadata.version("delta-spark")
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{delta_version}"


def build_session(settings: Settings, *, app_name: str | None = None, register: bool = True) -> SparkSession:
    """Build (or return the running) SparkSession configured from ``settings``.

    Parameters
    ----------
    settings
        Loaded settings; ``spark.*`` drives the session, ``lake``/``catalog`` the tables.
    app_name
        Overrides ``spark.app_name`` (e.g. ``klout-spark run``).
    register
        Register the lakehouse tables in the catalog (see :mod:`klout_spark.catalog`).

    Notes
    -----
    Delta's jars are resolved from Maven Central through ``spark.jars.packages``
    at the first session start; later starts load the same jar files through
    ``spark.jars`` (see :func:`_remember_jars`), which keeps Ivy's resolution
    report off the console. With
    ``catalog.mode = lakehouse`` the session uses Spark's in-memory catalog and
    the lakehouse folder is the source of truth; with ``hive`` it uses the Hive
    metastore configured for the cluster.
    """
    spark_settings = settings.spark
    os.environ.setdefault("PYSPARK_PYTHON", _python_executable())
    if spark_settings.master.startswith("local"):
        # Keep every port on loopback unless the user says otherwise.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name or spark_settings.app_name)
    if spark_settings.master:
        builder = builder.master(spark_settings.master)
    packages = [delta_maven_coordinate(), *spark_settings.packages]
    # A user's own spark.jars would replace the remembered list: resolve through Ivy then.
    cache = None if "spark.jars" in spark_settings.conf else _jar_list_cache(packages)
    resolved = _cached_jars(cache)
    if resolved:
        builder = builder.config("spark.jars", ",".join(resolved))
    else:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    builder = (
        builder.config("spark.sql.extensions", DELTA_EXTENSION)
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in spark_settings.conf.items():
        builder = builder.config(key, value)
    log4j = _resolve(spark_settings.log4j_config)
    driver_options = driver_java_options(log4j if log4j.is_file() else None, spark_settings.conf.get(DRIVER_JAVA_OPTIONS))
    if driver_options:
        builder = builder.config(DRIVER_JAVA_OPTIONS, driver_options)
    if settings.catalog.mode == "hive":
        builder = builder.enableHiveSupport()
    else:
        builder = builder.config("spark.sql.catalogImplementation", "in-memory")
        if "spark.sql.warehouse.dir" not in spark_settings.conf:
            # Managed-table folders, if anyone creates one, stay inside the lakehouse.
            builder = builder.config("spark.sql.warehouse.dir", f"{settings.lake.root}/_warehouse")
    spark = builder.getOrCreate()
    if not resolved:
        _remember_jars(cache, spark.sparkContext.getConf().get("spark.jars", ""))
    spark.sparkContext.setLogLevel(os.environ.get("KLOUT_SPARK_LOG_LEVEL", "WARN"))
    if register:
        from klout_spark import catalog

        catalog.register_tables(spark, settings.lake.root, settings.lake.database)
    return spark


def driver_java_options(log4j_config: Path | None, configured: str | None) -> str:
    """The driver JVM's options: the log4j configuration file, then ``spark.driver.extraJavaOptions`` as configured."""
    log4j = f"-Dlog4j2.configurationFile=file:{log4j_config}" if log4j_config else ""
    return " ".join(option for option in (log4j, (configured or "").strip()) if option)


def _jar_list_cache(packages: list[str]) -> Path | None:
    """Where the jar list that Ivy resolved for ``packages`` is remembered (None: never).

    ``KLOUT_SPARK_JAR_CACHE`` names the folder (default ``~/.cache/klout-spark``);
    ``off`` resolves through Ivy on every start.
    """
    folder = os.environ.get("KLOUT_SPARK_JAR_CACHE") or str(Path.home() / ".cache" / "klout-spark")
    if folder == "off":
        return None
    key = hashlib.sha256(",".join(sorted(packages)).encode()).hexdigest()[:16]
    return Path(folder) / f"jars-{key}.txt"


def _cached_jars(cache: Path | None) -> list[str]:
    """The jars a previous start resolved, if every one of them is still on disk; else []."""
    if cache is None or not cache.is_file():
        return []
    jars = [line.strip() for line in cache.read_text(encoding="utf-8").splitlines() if line.strip()]
    local = [jar.removeprefix("file://") for jar in jars]
    return jars if jars and all(Path(path).is_file() for path in local) else []


def _remember_jars(cache: Path | None, jars: str) -> None:
    """Keep the jar list of a start that resolved ``spark.jars.packages`` through Ivy.

    Ivy prints some sixty lines of resolution output at every session start, even
    when everything is cached; the next start loads the same jar files through
    ``spark.jars`` instead, silently and a few seconds sooner. Remote jars
    (a cluster's own ``spark.jars``) are not remembered.
    """
    entries = [jar for jar in jars.split(",") if jar]
    if cache is None or not entries or not all(jar.startswith("file:") for jar in entries):
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(entries) + "\n", encoding="utf-8")
        tmp.replace(cache)
    except OSError as exc:  # a read-only home is no reason to fail a run
        log.debug("could not remember the resolved jars in %s: %s", cache, exc)


def _resolve(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate


def _python_executable() -> str:
    import sys

    return sys.executable
