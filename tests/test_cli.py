import pytest

from klout_spark.cli import build_parser, main

COMMANDS = (
    "generate", "ingest", "validate", "features", "propagate", "score", "run", "backfill", "sql",
    "serve-sql", "calibrate", "report", "bench",
)


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_takes_conf_and_set(command):
    text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    assert "--conf FILE" in text and "--set KEY=VALUE" in text and "--env" in text


def test_bad_date_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["features", "--as-of", "2026-13-01"])
    assert exit_info.value.code == 2
    assert "not a date YYYY-MM-DD" in capsys.readouterr().err


def test_config_errors_exit_1_with_one_clear_line(capsys):
    assert main(["sql", "SELECT 1", "--set", "lake.databse=x"]) == 1
    assert "unknown config key(s): lake.databse" in capsys.readouterr().err


def test_generate_writes_a_dump(tmp_path, capsys):
    assert main(["generate", "--events", "10000", "--days", "3", "--seed", "1", "--out", str(tmp_path / "d")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(list((tmp_path / "d").glob("2026-10-*/events-*.jsonl.gz"))) == 3


def test_sql_prints_a_table_and_reports_bad_queries(spark, settings, capsys):  # noqa: ARG001
    lake = ["--set", f"lake.root={settings.lake.root}", "--set", f"lake.database={settings.lake.database}"]
    assert main(["sql", "SELECT 40 + 2 AS answer", *lake]) == 0
    out = capsys.readouterr().out
    assert "answer" in out and "42" in out
    assert main(["sql", f"SELECT * FROM {settings.lake.database}.no_such_table", *lake]) == 1
    assert "no_such_table" in capsys.readouterr().err


def test_relative_dates_are_utc_days():
    from datetime import UTC, datetime, timedelta

    args = build_parser().parse_args(["run", "--as-of", "yesterday"])
    assert args.as_of == datetime.now(UTC).date() - timedelta(days=1)
    args = build_parser().parse_args(["backfill", "--start", "2026-10-01", "--end", "today"])
    assert (args.start.isoformat(), args.end) == ("2026-10-01", datetime.now(UTC).date())


def test_daily_job_scores_yesterday_unless_told_otherwise():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("daily_job", Path(__file__).parent.parent / "jobs" / "daily.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    assert job.daily_args(["--input", "d"]) == ["run", "--as-of", "yesterday", "--input", "d"]
    assert job.daily_args(["--as-of", "2026-10-31"]) == ["run", "--as-of", "2026-10-31"]
    assert job.daily_args(["--as-of=2026-10-31"]) == ["run", "--as-of=2026-10-31"]
def test_serve_sql_refuses_a_non_loopback_host_unless_allowed(capsys):
    assert main(["serve-sql", "--host", "0.0.0.0"]) == 1
    assert "sql_server.allow_remote" in capsys.readouterr().err


def test_serve_sql_refuses_a_port_in_use(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve-sql", "--port", str(busy.getsockname()[1])]) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
