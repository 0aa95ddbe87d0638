"""The Thrift JDBC/ODBC server over the lakehouse tables (``klout-spark serve-sql``).

Spark's ``HiveThriftServer2`` is started inside a session built by
:func:`klout_spark.session.build_session`, so every JDBC/ODBC client (beeline,
PyHive, DBeaver, Tableau...) sees the same ``<lake.database>.*`` tables as
``klout-spark sql``. The catalog stays the in-memory one of that session (with
``catalog.mode: lakehouse``): the server holds no lock, and runs and other
``klout-spark sql`` processes go on using the lakehouse while it serves.

Notes
-----
- The server speaks the HiveServer2 binary protocol with no authentication
  (SASL PLAIN, any user name), which is why it binds to loopback unless
  ``sql_server.allow_remote`` is set.
- Starting it boots an in-memory Derby database for Hive's execution client;
  ``derby.system.home`` is pointed at a temporary folder so that no
  ``derby.log`` lands in the working directory.
- Tables that appear in the lakehouse after the start are registered every
  ``sql_server.refresh_seconds``; new commits to a registered table are visible
  at once (each query reads the Delta log).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import tempfile
import threading
import time
import types
from collections.abc import Callable

from pyspark.sql import SparkSession

from klout_spark import catalog
from klout_spark.config import Settings
from klout_spark.errors import InputError, ServerError

log = logging.getLogger(__name__)

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
STARTUP_TIMEOUT_SECONDS = 120.0


def jdbc_url(host: str, port: int, database: str) -> str:
    """The JDBC URL clients connect to (``jdbc:hive2://host:port/database``)."""
    shown = f"[{host}]" if ":" in host else host
    return f"jdbc:hive2://{shown}:{port}/{database}"


def thrift_spark_conf(host: str, port: int) -> dict[str, str]:
    """Spark settings that place the Thrift server on ``host:port`` (binary transport).

    The server reads its Hive settings from the session's Hadoop configuration,
    which takes every ``spark.hadoop.*`` setting.
    """
    return {
        "spark.hadoop.hive.server2.thrift.bind.host": host,
        "spark.hadoop.hive.server2.thrift.port": str(port),
        "spark.hadoop.hive.server2.transport.mode": "binary",
    }


def with_thrift_conf(settings: Settings) -> Settings:
    """``settings`` with the Thrift server's Spark settings added to ``spark.conf``."""
    server = settings.sql_server
    conf = {**settings.spark.conf, **thrift_spark_conf(server.host, server.port)}
    spark = dataclasses.replace(settings.spark, conf=types.MappingProxyType(conf))
    return dataclasses.replace(settings, spark=spark)


def require_free_port(host: str, port: int) -> None:
    """Raise :class:`InputError` if ``host:port`` cannot be bound (in use, or not a local address).

    Checked before Spark starts, because a Thrift server that fails to bind only
    logs the failure and the process would wait for nothing.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"sql_server: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "choose another port with --port or --set sql_server.port=N"
            ) from exc


def wait_until_listening(host: str, port: int, *, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    """Block until a TCP connection to ``host:port`` succeeds; raise :class:`ServerError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the Thrift server did not listen on {host}:{port} within {timeout:.0f} s; see its log above"
                ) from None
            time.sleep(0.25)


def start_thrift_server(spark: SparkSession, *, derby_home: str):
    """Start ``HiveThriftServer2`` over ``spark``'s catalog and return the (JVM) server object.

    Its host and port come from the session's ``spark.hadoop.hive.server2.thrift.*``
    settings (see :func:`thrift_spark_conf`); Hive's in-memory Derby keeps its
    ``derby.log`` in ``derby_home``.
    """
    jvm = spark._jvm  # type: ignore[attr-defined]
    jvm.java.lang.System.setProperty("derby.system.home", derby_home)
    server_class = getattr(jvm, THRIFT_SERVER_CLASS)
    return server_class.startWithContext(spark._jsparkSession.sqlContext())  # type: ignore[attr-defined]


def serve(
    settings: Settings,
    *,
    stop: threading.Event,
    on_ready: Callable[[str], None] = print,
) -> None:
    """Run the Thrift server over the lakehouse tables until ``stop`` is set.

    Parameters
    ----------
    settings
        ``sql_server.*`` places the server; ``lake.*`` gives the tables.
    stop
        Set it (e.g. from a SIGTERM handler) to stop the server and the session.
    on_ready
        Called with a one-line message holding the JDBC URL once clients can connect.
    """
    from klout_spark.session import build_session

    server_settings = settings.sql_server
    host, port = server_settings.host, server_settings.port
    require_free_port(host, port)
    spark = build_session(with_thrift_conf(settings), app_name="klout-spark serve-sql")
    server = None
    derby_home = tempfile.mkdtemp(prefix="klout-spark-derby-")
    try:
        server = start_thrift_server(spark, derby_home=derby_home)
        wait_until_listening(host, port)
        url = jdbc_url(host, port, settings.lake.database)
        on_ready(f"klout-spark SQL server ready: {url}  (stop with Ctrl-C or SIGTERM)")
        while not stop.wait(server_settings.refresh_seconds):
            added = catalog.register_tables(spark, settings.lake.root, settings.lake.database)
            if added:
                log.info("serve-sql: registered new tables %s", added)
    finally:
        log.info("serve-sql: stopping")
        if server is not None:
            server.stop()
        spark.stop()
        shutil.rmtree(derby_home, ignore_errors=True)

