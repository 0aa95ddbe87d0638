"""The session builder remembers the jars Ivy resolved, so later starts skip Ivy's console report."""

from __future__ import annotations

from pyspark.sql import functions as F

from klout_spark import session


def test_jar_list_is_remembered_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("KLOUT_SPARK_JAR_CACHE", str(tmp_path / "cache"))
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for jar in jars:
        jar.write_bytes(b"PK")
    cache = session._jar_list_cache(["io.delta:delta-spark_4.1_2.13:4.3.1"])
    assert session._cached_jars(cache) == []  # nothing remembered yet: resolve through Ivy

    session._remember_jars(cache, ",".join(f"file://{jar}" for jar in jars))
    assert session._cached_jars(cache) == [f"file://{jar}" for jar in jars]

    jars[1].unlink()  # a cleaned Ivy cache: back to spark.jars.packages
    assert session._cached_jars(cache) == []


def test_jar_list_key_depends_on_the_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("KLOUT_SPARK_JAR_CACHE", str(tmp_path))
    one = session._jar_list_cache(["io.delta:delta-spark_4.1_2.13:4.3.1"])
    two = session._jar_list_cache(["io.delta:delta-spark_4.1_2.13:4.3.1", "org.example:extra:1.0"])
    assert one != two


def test_remote_jars_and_disabled_cache_are_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("KLOUT_SPARK_JAR_CACHE", str(tmp_path))
    cache = session._jar_list_cache(["x:y:1"])
    session._remember_jars(cache, "hdfs://nn/jars/delta.jar")
    assert not cache.exists()
    monkeypatch.setenv("KLOUT_SPARK_JAR_CACHE", "off")
    assert session._jar_list_cache(["x:y:1"]) is None


def test_driver_java_options_keep_the_log4j_file_and_the_configured_options(tmp_path):
    log4j = tmp_path / "log4j2.properties"
    assert session.driver_java_options(log4j, " -XX:-DontCompileHugeMethods ") == (
        f"-Dlog4j2.configurationFile=file:{log4j} -XX:-DontCompileHugeMethods"
    )
    assert session.driver_java_options(None, "-Xss4m") == "-Xss4m"
    assert session.driver_java_options(log4j, None) == f"-Dlog4j2.configurationFile=file:{log4j}"
    assert session.driver_java_options(None, "") == ""


def test_the_session_jvm_compiles_huge_generated_methods_and_logs_as_configured(spark):
    """The JVM was started with conf/base.yaml's flag and the log4j file, both (neither replaced the other)."""
    arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert "-XX:-DontCompileHugeMethods" in arguments
    assert any(a.startswith("-Dlog4j2.configurationFile=file:") and a.endswith("log4j2.properties") for a in arguments)


def test_local_task_results_reach_the_driver_directly_not_through_the_block_manager(spark):
    """conf/local.yaml: a result of MBs (as the driver paths' Arrow collects are) is never parked and fetched."""
    sc = spark.sparkContext
    sc.setJobGroup("direct-results", "direct-results")
    try:
        table = spark.range(0, 100_000, 1, 2).select(F.sha2(F.col("id").cast("string"), 256).alias("h")).toArrow()
        jobs = sc.statusTracker().getJobIdsForGroup("direct-results")
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    store = sc._jsc.sc().statusStore()
    tasks = [
        listed.apply(i)
        for job in jobs
        for stage in sc.statusTracker().getJobInfo(job).stageIds
        for listed in [store.taskList(stage, 0, 100)]
        for i in range(listed.size())
    ]
    assert table.num_rows == 100_000 and table.nbytes > 4 * 2**20  # over 2 MB a task: above Spark's 1 MB default
    # An indirect result records when the driver started fetching it from the block manager.
    assert len(tasks) == 2 and not any(task.resultFetchStart().isDefined() for task in tasks)
