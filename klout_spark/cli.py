"""The ``klout-spark`` command: one subcommand per stage, plus run, generate, sql and serve-sql.

Every subcommand takes ``--env``, ``--conf FILE`` and ``--set key=value``; the
lakehouse root is the setting ``lake.root``. Errors that klout-spark raises on
purpose are printed as one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from klout_spark import readers
from klout_spark.config import Settings, load_settings
from klout_spark.errors import InputError, KloutError

log = logging.getLogger("klout_spark")

EPILOG = """settings: conf/base.yaml, then conf/<env>.yaml, then each --conf FILE, then each --set.
examples:
  klout-spark generate --size S --seed 7 --out sample
  klout-spark run --input sample --set lake.root=/data/lakehouse
  klout-spark backfill --start 2026-10-01 --end 2026-10-31
  klout-spark evaluate --truth sample/_ground_truth
  klout-spark sql "SELECT * FROM klout.latest_scores ORDER BY score DESC LIMIT 10"
"""


def _iso_date(text: str) -> date:
    """A date ``YYYY-MM-DD``, or ``today`` / ``yesterday`` (UTC, for schedulers)."""
    relative = {"today": 0, "yesterday": 1}
    if text.strip().lower() in relative:
        return datetime.now(UTC).date() - timedelta(days=relative[text.strip().lower()])
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD (or today/yesterday): {text!r}") from exc


def _settings_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings")
    group.add_argument("--env", choices=("local", "cluster"), default="local", help="environment overlay (default: local)")
    group.add_argument("--conf", action="append", default=[], metavar="FILE", help="extra YAML settings file (repeatable)")
    group.add_argument(
        "--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
        help="override one setting, e.g. --set lake.root=/data/lake (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="klout-spark",
        description="Influence scores (1-100) from raw social activity dumps, on Spark and Delta.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="write a synthetic activity dump (one folder per day)")
    gen.add_argument("--size", choices=("S", "M", "L", "XL"), default="S", help="about 100k, 1M, 10M, 100M events")
    gen.add_argument("--events", type=int, default=None, help="exact target number of events (overrides --size)")
    gen.add_argument("--seed", type=int, default=42, help="random seed; same seed, same bytes")
    gen.add_argument("--days", type=int, default=30, help="number of days (default 30)")
    gen.add_argument("--end-date", type=_iso_date, default=None, help="last day of the dump (default 2026-10-31)")
    gen.add_argument(
        "--format", dest="fmt", default="canonical",
        help="canonical (default), twitter, reddit, or native (each network in its own format: Twitter v1.1, "
        "Pushshift, Facebook Graph feed pages, LinkedIn member archives)",
    )
    gen.add_argument(
        "--networks", default="twitter,reddit",
        help="comma-separated networks of the world: twitter,reddit (default) plus facebook and/or linkedin; "
        "identities then link one account per network",
    )
    gen.add_argument("--dirty-rate", type=float, default=0.0, help="fraction of damaged records (default 0)")
    gen.add_argument("--out", required=True, help="output folder")
    _settings_args(gen)

    ing = sub.add_parser("ingest", help="ingest dump files or folders into bronze_events (exactly once)")
    ing.add_argument(
        "paths", nargs="+",
        help="files or folders (.json/.jsonl/.ndjson/.csv, optionally .gz/.bz2/.zst, or .parquet)",
    )
    ing.add_argument(
        "--format", dest="fmt", default=None,
        choices=readers.FORMAT_CHOICES,
        help="input format: auto (detect per file), canonical, twitter (API v1.1), "
        "twitter_v2 (API v2 responses, one per line), reddit (Pushshift), "
        "facebook (Graph API feed JSON), linkedin (member archive folder linkedin-archive-<member>, "
        "or API social-action JSON); default: ingest.format",
    )
    ing.add_argument("--identities", default=None, help="CSV person_id,network,user_id linking accounts to persons")
    _settings_args(ing)

    val = sub.add_parser("validate", help="check pending bronze batches and promote them to silver")
    val.add_argument("--as-of", type=_iso_date, default=None, help="date whose volume is checked (default: last day with events)")
    _allow_bad_data_arg(val)
    _settings_args(val)

    for name, text in (
        ("features", "compute user_daily and user_features for one date"),
        ("propagate", "build engagement_edges and network_rank (PageRank) for one date"),
        ("score", "write scores, score_topics and score_explain for one date"),
    ):
        stage = sub.add_parser(name, help=text)
        stage.add_argument("--as-of", type=_iso_date, default=None, help="date (default: last day with events)")
        _settings_args(stage)

    rep = sub.add_parser(
        "report",
        help="write a self-contained HTML report of one date's scores under <lake.root>/_reports/",
    )
    rep.add_argument("--as-of", type=_iso_date, default=None, help="date (default: the last date with scores)")
    _settings_args(rep)

    cal = sub.add_parser(
        "calibrate",
        help="fit the score calibration of score.model_version on one date and store it (score_calibration)",
        description="Fit monotone curves from the raw sub-score signals (and their weighted mean) to 0-100 on the "
        "genuine accounts of one date: median -> 30, 90th percentile -> 50, 99.9th -> 90. Scoring then uses "
        "them for every date of this model_version; without one it uses the fixed curves.",
    )
    cal.add_argument("--as-of", type=_iso_date, default=None, help="reference date (default: last day with events)")
    cal.add_argument(
        "--replace", action="store_true",
        help="refit a model_version that is calibrated already (scores stored before are not rewritten)",
    )
    _settings_args(cal)

    run = sub.add_parser("run", help="the daily pipeline: ingest, validate, features, propagate, score")
    run.add_argument(
        "--as-of", type=_iso_date, default=None,
        help="date to score, YYYY-MM-DD or yesterday/today in UTC (default: last day with events; "
        "jobs/daily.py passes yesterday)",
    )
    run.add_argument("--input", action="append", default=[], metavar="PATH", help="dump file or folder to ingest first (repeatable)")
    run.add_argument("--identities", default=None, help="CSV person_id,network,user_id linking accounts to persons")
    run.add_argument("--top", type=int, default=10, help="how many top accounts to print (default 10)")
    run.add_argument("--no-report", action="store_true", help="skip the HTML report at the end")
    _allow_bad_data_arg(run)
    _settings_args(run)

    back = sub.add_parser(
        "backfill",
        help="compute every date of a range (idempotent, resumable; far cheaper than one run per day)",
        description="Compute features, ranks and scores for every as_of from --start to --end, in date order. "
        "Dates already committed by a complete run with the same config hash and code version are skipped "
        "(so a rerun after a crash resumes); --force recomputes them.",
    )
    back.add_argument("--start", type=_iso_date, required=True, help="first as_of (YYYY-MM-DD)")
    back.add_argument("--end", type=_iso_date, required=True, help="last as_of, inclusive (YYYY-MM-DD)")
    back.add_argument("--force", action="store_true", help="recompute dates that are already committed")
    back.add_argument("--input", action="append", default=[], metavar="PATH", help="dump file or folder to ingest first (repeatable)")
    _allow_bad_data_arg(back)
    _settings_args(back)

    ev = sub.add_parser(
        "evaluate", help="compare one date's flags, topics and scores with a synthetic dump's ground truth"
    )
    ev.add_argument("--truth", required=True, metavar="DIR", help="the dump's _ground_truth folder")
    ev.add_argument("--as-of", type=_iso_date, default=None, help="scored date (default: the latest in scores)")
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    _settings_args(ev)

    sql = sub.add_parser("sql", help="run a SQL query against the lakehouse tables and print the result")
    sql.add_argument("query", help="SQL text, e.g. \"SELECT count(*) FROM klout.scores\"")
    sql.add_argument("--max-rows", type=int, default=100, help="rows to print at most (default 100)")
    _settings_args(sql)

    from klout_spark import benchmark

    bench = sub.add_parser(
        "bench",
        help="benchmark the pipeline on generated dumps (sizes S, M, L; XL on request); "
        "writes <out>/results.json and results.md",
    )
    benchmark.add_arguments(bench)
    _settings_args(bench)
    serve = sub.add_parser(
        "serve-sql",
        help="serve the lakehouse tables over JDBC/ODBC (Spark Thrift server) until SIGTERM or Ctrl-C",
        description="Start Spark's Thrift JDBC/ODBC server over the lakehouse tables and block. Clients "
        "(beeline, PyHive, any HiveServer2 JDBC/ODBC driver) connect to the printed URL with any user name "
        "and no password. Tables that appear later are registered every sql_server.refresh_seconds.",
    )
    serve.add_argument("--host", default=None, help="address to listen on (default: sql_server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default: sql_server.port, 10000)")
    _settings_args(serve)
    return parser


def _allow_bad_data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-bad-data", metavar="REASON", default=None,
        help="turn table-level data quality failures (bronze failure fraction, low volume, missing day) "
        "into warnings, e.g. for a backfill of a known-bad day; the reason is recorded in the runs table",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging()
    started = time.monotonic()
    try:
        settings = load_settings(args.env, args.conf, args.overrides)
        code = COMMANDS[args.command](args, settings)
    except KloutError as exc:
        log.error("%s", exc)
        print(f"klout-spark {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from klout_spark.io import storage_failure

        message = storage_failure(exc)
        if message is None:
            raise
        log.debug("storage failure", exc_info=True)
        print(f"klout-spark {args.command}: error: {message}", file=sys.stderr)
        return 1
    log.info("klout-spark %s finished in %.1f s", args.command, time.monotonic() - started)
    return code


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("klout_spark").setLevel(logging.INFO)


def _open(settings: Settings, command: str):
    from klout_spark.pipeline import Pipeline

    return Pipeline.open(settings, app_name=f"klout-spark {command}")


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:  # noqa: ARG001
    from klout_spark.generate import generate_dump

    summary = generate_dump(
        args.out,
        size=args.size,
        seed=args.seed,
        days=args.days,
        end_date=args.end_date,
        events=args.events,
        fmt=args.fmt,
        dirty_rate=args.dirty_rate,
        networks=tuple(n.strip() for n in args.networks.split(",") if n.strip()),
    )
    print(
        f"wrote {summary.events_written:,} events by {summary.accounts:,} accounts over {summary.days} days "
        f"({summary.start_date} .. {summary.end_date}) in {len(summary.files)} files under {summary.out_dir}"
    )
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from klout_spark.pipeline import load_identities, stage_ingest

    p = _open(settings, "ingest")
    summary = stage_ingest(p, args.paths, fmt=args.fmt)
    if args.identities:
        load_identities(p, args.identities)
    _print_ingest(summary)
    return 0


def _print_ingest(summary) -> None:
    print(f"ingest: {summary.files_found} files found, {summary.files_skipped} already ingested")
    for acc in summary.accounts:
        print(
            f"  {acc.path}: read {acc.rows_read:,} = ok {acc.rows_ok:,} + quarantined {acc.rows_quarantined:,}"
        )
    if summary.accounts:
        print(
            f"  total: read {summary.rows_read:,} = ok {summary.rows_ok:,} + quarantined {summary.rows_quarantined:,}"
            f" (batch {summary.batch_id})"
        )


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from klout_spark.pipeline import stage_validate

    p = _open(settings, "validate")
    summary = stage_validate(p, as_of=args.as_of, allow_bad_data=args.allow_bad_data)
    print(
        f"validate: {len(summary.batches)} batches, {summary.rows_in:,} rows in, {summary.rows_promoted:,} promoted, "
        f"{summary.rows_rejected:,} quarantined, {summary.duplicates:,} duplicates dropped"
    )
    if summary.results_path:
        print(f"  Great Expectations results: {summary.results_path}")
    for item in summary.overridden:
        print(f"  overridden ({item['override_reason']}): {item['check']}: {item['message']}")
    return 0


def _stage_command(stage_name: str):
    def command(args: argparse.Namespace, settings: Settings) -> int:
        from klout_spark import pipeline
        from klout_spark.locks import as_of_lock

        p = _open(settings, stage_name)
        as_of = args.as_of or pipeline.default_as_of(p.lake)
        with as_of_lock(p.lake, p.run.run_id, [as_of], ttl_minutes=settings.run.lock_ttl_minutes):
            result = getattr(pipeline, f"stage_{stage_name}")(p, as_of)
        if stage_name == "propagate":
            print(
                f"propagate {as_of}: {result.node_count:,} accounts, {result.edge_count:,} edges, "
                f"{result.iterations} iterations ({result.method}), residual {result.residuals[-1]:.2e}"
            )
        else:
            print(f"{stage_name} {as_of}: {result:,} rows")
        return 0

    return command


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from klout_spark import pipeline

    p = _open(settings, "calibrate")
    as_of = args.as_of or pipeline.default_as_of(p.lake)
    fitted = pipeline.stage_calibrate(p, as_of, replace=args.replace)
    print(
        f"calibrated model {fitted.model_version} on {as_of} ({fitted.reference_accounts:,} genuine accounts); "
        f"knots (raw -> value):"
    )
    for component, curve in fitted.curves.items():
        knots = ", ".join(f"{raw:.4g}->{value:g}" for raw, value in curve.knots)
        print(f"  {component:<15} {knots}")
    print(f"Rescore with `klout-spark score --as-of D`; stored in {settings.lake.database}.score_calibration")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from klout_spark import catalog
    from klout_spark.pipeline import run_daily, top_scores

    p = _open(settings, "run")
    summary = run_daily(
        p, as_of=args.as_of, inputs=args.input, identities=args.identities, allow_bad_data=args.allow_bad_data
    )
    if summary.ingest is not None:
        _print_ingest(summary.ingest)
    v = summary.validate
    print(
        f"validate: {v.rows_in:,} rows checked, {v.rows_promoted:,} promoted, {v.rows_rejected:,} quarantined"
        + (f"; results in {v.results_path}" if v.results_path else "")
    )
    prop = summary.propagation
    print(
        f"features: {summary.accounts:,} accounts; propagate: {prop.edge_count:,} edges, "
        f"{prop.iterations} iterations ({prop.method}), residual {prop.residuals[-1]:.2e}; scored {summary.scored:,}"
    )
    rows = top_scores(p, summary.as_of, args.top)
    print(f"\nTop {len(rows)} accounts on {summary.as_of} (model {settings.score.model_version}):")
    header = f"{'rank':>4}  {'network':<9} {'user_id':<22} {'score':>6} {'reach':>6} {'amplif':>6} {'impact':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['rank']:>4}  {r['network']:<9} {r['user_id']:<22} {r['score']:>6.1f} {r['true_reach']:>6.1f} "
            f"{r['amplification']:>6.1f} {r['network_impact']:>6.1f}"
        )
    db = settings.lake.database
    print(f"\nTables (Delta) under {settings.lake.root}: " + ", ".join(
        t for t in catalog.TABLES if p.lake.exists(t)
    ))
    print(f"Query them:  klout-spark sql \"SELECT * FROM {db}.latest_scores ORDER BY score DESC LIMIT 10\"")
    print(f"Run id {p.run.run_id}; history in {db}.runs")
    if not args.no_report:
        print(f"Report: {_write_report(p, summary.as_of)}")
    return 0


def _write_report(p, as_of: date | None):
    from klout_spark.report import write_report

    return write_report(
        p.lake, as_of,
        results_dir=f"{p.settings.lake.root}/{p.settings.validate.results_dir}",
        model_version=p.settings.score.model_version,
    )


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    path = _write_report(_open(settings, "report"), args.as_of)
    print(f"report: {path}")
    return 0


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from klout_spark.pipeline import backfill

    p = _open(settings, "backfill")
    started = time.monotonic()
    summary = backfill(
        p, start=args.start, end=args.end, force=args.force, inputs=args.input, allow_bad_data=args.allow_bad_data
    )
    if summary.ingest is not None:
        _print_ingest(summary.ingest)
    days = (summary.end - summary.start).days + 1
    print(
        f"backfill {summary.start}..{summary.end}: {len(summary.computed)} of {days} dates computed "
        f"in {len(summary.chunks)} chunk(s), {len(summary.skipped)} already committed (skipped) "
        f"in {time.monotonic() - started:.1f} s"
    )
    for first, last in summary.chunks:
        print(f"  computed {first}..{last}")
    if summary.skipped and not summary.computed:
        print("  nothing to do: every date is committed with this config and code (--force recomputes)")
    print(f"Run id {p.run.run_id}; history in {settings.lake.database}.runs")
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from klout_spark.evaluation import evaluate, format_report
    from klout_spark.io import Lakehouse
    from klout_spark.report import default_report_as_of
    from klout_spark.session import build_session

    # Read-only: no Pipeline (whose open checks that the lakehouse is writable).
    spark = build_session(settings, app_name="klout-spark evaluate")
    lake = Lakehouse(spark, settings.lake.root, settings.lake.database)
    as_of = args.as_of or default_report_as_of(lake)
    result = evaluate(spark, settings.lake.root, settings.lake.database, args.truth, as_of)
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else format_report(result))
    return 0


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    from klout_spark.session import build_session

    spark = build_session(settings, app_name="klout-spark sql")
    try:
        result = spark.sql(args.query)
    except Exception as exc:  # Spark's analysis errors: show them as a user error, not a traceback
        if type(exc).__name__ in ("AnalysisException", "ParseException"):
            raise InputError(str(exc).splitlines()[0]) from exc
        raise
    result.show(args.max_rows, truncate=False)
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:  # noqa: ARG001
    from klout_spark import benchmark

    options = benchmark.options_from_args(args)
    report = benchmark.run_benchmark(options)
    print(f"benchmark of {', '.join(report['results'])}: {options.out}/results.json, {options.out}/results.md")
    failed = {size: result["errors"] for size, result in report["results"].items() if result.get("errors")}
    for size, errors in failed.items():
        print(f"  {size}: failed steps: {', '.join(errors)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_serve_sql(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    from klout_spark import sqlserver

    if args.host is not None or args.port is not None:
        overrides = [*args.overrides]
        if args.host is not None:
            overrides.append(f"sql_server.host={args.host}")
        if args.port is not None:
            overrides.append(f"sql_server.port={args.port}")
        settings = load_settings(args.env, args.conf, overrides)
    stop = threading.Event()

    def request_stop(signum, frame):  # noqa: ARG001 - the signal handler's signature
        log.info("serve-sql: received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    sqlserver.serve(settings, stop=stop, on_ready=lambda line: print(line, flush=True))
    return 0


COMMANDS = {
    "generate": cmd_generate,
    "ingest": cmd_ingest,
    "validate": cmd_validate,
    "features": _stage_command("features"),
    "propagate": _stage_command("propagate"),
    "score": _stage_command("score"),
    "calibrate": cmd_calibrate,
    "report": cmd_report,
    "run": cmd_run,
    "backfill": cmd_backfill,
    "evaluate": cmd_evaluate,
    "sql": cmd_sql,
    "bench": cmd_bench,
    "serve-sql": cmd_serve_sql,
}


if __name__ == "__main__":
    sys.exit(main())
