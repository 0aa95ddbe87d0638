"""The benchmark's pure parts: ratio maths, stage timings, the report's shape, the memory sampler.

The benchmark itself (minutes per size) is not run here; `make bench` runs it.
"""

import json
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from klout_spark import benchmark as B


def test_ratio_is_none_when_a_side_is_unknown_or_the_denominator_is_not_positive():
    assert B.ratio(3.0, 2.0) == 1.5
    assert B.ratio(None, 2.0) is None
    assert B.ratio(3.0, None) is None
    assert B.ratio(3.0, 0.0) is None


def test_validation_overhead_is_the_share_of_ingest_plus_validate_spent_validating():
    assert B.overhead_fraction(30.0, 10.0) == pytest.approx(0.25)
    assert B.overhead_fraction(None, 10.0) is None
    assert B.overhead_fraction(0.0, 0.0) is None
    # Of a 10 s validate stage, 4 s checking expectations: validation adds 10% of the 40 s.
    assert B.overhead_fraction(30.0, 10.0, 4.0) == pytest.approx(0.1)


def _run_row(stage, start, seconds, **counts):
    t0 = datetime(2026, 10, 31, 12, 0, 0) + timedelta(seconds=start)
    return {"stage": stage, "status": "succeeded", "started_at": t0, "ended_at": t0 + timedelta(seconds=seconds),
            "rows_in": counts.get("rows_in"), "rows_out": counts.get("rows_out"), "iterations": counts.get("iterations"),
            "validation_seconds": counts.get("validation_seconds")}


def test_stage_timings_orders_stages_and_computes_rows_per_second():
    rows = [
        _run_row("score", 50, 5, rows_out=1000),
        _run_row("ingest", 0, 20, rows_in=100_000, rows_out=99_000),
        _run_row("propagate", 30, 10, rows_in=4000, rows_out=1000, iterations=37),
        _run_row("validate", 20, 8, rows_in=99_000, rows_out=98_500),
    ]
    stages = B.stage_timings(rows)
    assert list(stages) == ["ingest", "validate", "propagate", "score"]
    assert stages["ingest"]["seconds"] == 20.0
    assert stages["ingest"]["rows_per_second"] == 5000.0
    assert stages["propagate"]["iterations"] == 37
    # score has no rows_in: its rate is over the rows it wrote
    assert stages["score"]["rows_per_second"] == 200.0


def test_stage_timings_sums_a_stage_that_ran_twice_and_keeps_a_failure_visible():
    rows = [_run_row("features", 0, 4, rows_out=10), {**_run_row("features", 10, 6, rows_out=10), "status": "failed"}]
    entry = B.stage_timings(rows)["features"]
    assert (entry["seconds"], entry["rows_out"], entry["runs"]) == (10.0, 20, 2)
    assert entry["status"] == "succeeded,failed"


def _measurements():
    return {
        "size": "M",
        "stages": B.stage_timings([_run_row("ingest", 0, 30, rows_in=1000), _run_row("validate", 30, 10)]),
        "bare_ingest": {"seconds": 25.0, "delta_floor_seconds": 50.0},
        "propagation": {
            "scipy": {"seconds": 2.0, "seconds_per_iteration": 0.01},
            "local": {"seconds": 3.0, "floor": {"seconds": 2.5}},
            "distributed": {"second_iteration": 2.0, "last_iteration": 2.4, "median_iteration": 2.2},
            "textbook": {"median_iteration": 22.0},
        },
        "backfill": {"backfill_seconds": 120.0, "daily_seconds": 60.0},
        "quality": {"flag_precision": 0.9, "flag_recall": 0.8, "topic_precision": 1, "spearman_latent": 0.7},
        "daily_run": {"seconds": 1300.0, "memory": {"tree_peak_mb": 4096.0}},
    }


def test_size_ratios_from_measurements():
    ratios, notes = B.size_ratios(_measurements())
    assert set(ratios) == set(B.RATIO_KEYS)
    assert ratios["ingest_vs_bare"] == pytest.approx(30 / 25)
    assert ratios["ingest_floor_vs_bare"] == pytest.approx(2.0)
    assert ratios["validation_overhead"] == pytest.approx(0.25)
    assert ratios["validate_stage_share"] == pytest.approx(0.25)
    assert ratios["local_vs_scipy"] == pytest.approx(1.5)
    assert ratios["local_floor_vs_scipy"] == pytest.approx(1.25)
    assert ratios["iteration_flatness"] == pytest.approx(1.2)
    assert ratios["speedup_vs_textbook"] == pytest.approx(10.0)
    assert ratios["distributed_vs_scipy_per_iteration"] == pytest.approx(220.0)
    assert ratios["backfill_vs_daily"] == pytest.approx(2.0)
    assert ratios["topic_precision"] == 1.0
    assert notes == {}


def test_a_chunk_of_many_dates_counts_its_time_once():
    # A backfill chunk writes one runs row per date, each with the chunk's start and end.
    chunk = [_run_row("features", 0, 60, rows_out=100) for _ in range(30)]
    stages = B.stage_timings([*chunk, _run_row("features", 100, 10, rows_out=100)])
    assert stages["features"]["seconds"] == pytest.approx(70.0)
    assert stages["features"]["rows_out"] == 3100 and stages["features"]["runs"] == 31


def test_validation_overhead_counts_the_checks_when_the_run_recorded_them():
    measured = _measurements()
    measured["stages"] = B.stage_timings(
        [_run_row("ingest", 0, 30, rows_in=1000), _run_row("validate", 30, 10, validation_seconds=3.0),
         _run_row("validate", 50, 6, validation_seconds=1.0)]
    )
    assert measured["stages"]["validate"]["validation_seconds"] == pytest.approx(4.0)
    ratios, _ = B.size_ratios(measured)
    assert ratios["validation_overhead"] == pytest.approx(4.0 / 46.0, abs=1e-4)
    assert ratios["validate_stage_share"] == pytest.approx(16.0 / 46.0, abs=1e-4)


def test_missing_measurements_are_null_with_the_note_that_explains_them():
    measured = _measurements()
    del measured["backfill"], measured["quality"]
    measured["notes"] = {"backfill_vs_daily": "backfill command not available"}
    ratios, notes = B.size_ratios(measured)
    assert ratios["backfill_vs_daily"] is None and ratios["spearman_latent"] is None
    assert notes["backfill_vs_daily"] == "backfill command not available"
    assert set(notes) == {"backfill_vs_daily", *B.QUALITY_KEYS}


def test_checks_apply_each_target_at_its_sizes():
    measured = _measurements()
    measured["ratios"], _ = B.size_ratios(measured)
    at_m = B.checks("M", measured)
    assert at_m["ingest_vs_bare"] is True  # 1.2 <= 1.5
    assert at_m["validation_overhead"] is True  # 0.25 <= 0.25
    assert at_m["speedup_vs_textbook"] is True
    assert at_m["daily_run_seconds"] is None  # a target at L only
    at_l = B.checks("L", measured)
    assert at_l["daily_run_seconds"] is False  # 1300 s > 20 min
    assert at_l["daily_run_peak_gib"] is True  # 4 GiB
    assert B.checks("S", measured)["validation_overhead"] is None


def test_report_json_and_markdown_have_the_required_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "java_version", lambda: "openjdk version 17 (test)")  # no JVM in a unit test

    def fake_size(size, opts):  # noqa: ARG001
        measured = _measurements() | {"size": size, "notes": {}}
        return B._finish(measured, measured["notes"], None)

    opts = B.BenchOptions(sizes=("S", "M"), out=tmp_path, work=tmp_path / "work", seed=1, keep_data=False)
    B.run_benchmark(opts, bench_size_fn=fake_size)
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["schema"] == B.SCHEMA
    assert {"cores", "ram_gib", "cpu_model", "python", "java", "spark"} <= set(report["machine"])
    assert len(report["load_average_before"]) == 3 and len(report["load_average_after"]) == 3
    for size in ("S", "M"):
        result = report["results"][size]
        assert set(B.RATIO_KEYS) <= set(result["ratios"])
        assert result["stages"]["ingest"]["seconds"] == 30.0
    markdown = (tmp_path / "results.md").read_text()
    assert "| `ingest_vs_bare` | at most 1.5x | 1.200 ✓ | 1.200 ✓ |" in markdown
    assert "| M | ingest | 30.0 |" in markdown


def test_sizes_option_rejects_unknown_sizes():
    assert B._sizes("s, m") == ("S", "M")
    with pytest.raises(Exception, match="sizes: expected"):
        B._sizes("S,XXL")


def test_parse_generate_output_and_the_last_json_document():
    out = "wrote 100,214 events by 5,000 accounts over 30 days (2026-10-02 .. 2026-10-31) in 30 files under d\n"
    parsed = B.parse_generate_output(out)
    assert (parsed["events"], parsed["end_date"], parsed["files"]) == (100_214, "2026-10-31", 30)
    assert B.parse_json_output('noise {\n{\n  "a": {\n    "b": 1\n  }\n}\n') == {"a": {"b": 1}}
    with pytest.raises(ValueError, match="no JSON"):
        B.parse_json_output("nothing here")


def test_sampler_sees_the_memory_of_a_child_of_the_measured_process(tmp_path):
    # The measured process starts a child that holds ~200 MiB, as pyspark's driver starts its JVM.
    child = "import time; block = bytearray(200 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); time.sleep(1.5)"
    parent = textwrap.dedent(
        f"""
        import subprocess, sys
        sys.exit(subprocess.call([sys.executable, "-c", {child!r}]))
        """
    )
    measured = B.run_measured([sys.executable, "-c", parent], log_path=tmp_path / "child.log")
    assert measured.returncode == 0
    assert measured.seconds >= 1.5
    assert measured.memory["tree_peak_mb"] >= 200
    assert measured.memory["python_workers_peak_mb"] >= 200  # the child, not the root
    assert measured.memory["driver_python_peak_mb"] < 100
    assert measured.memory["processes_seen"] == 2
    assert Path(measured.log_path).exists()


def test_probe_windows_and_the_commands_the_benchmark_looks_for():
    name, (begin, end) = B._window("backfill=2026-11-26T04:00:00+00:00,2026-11-26T04:10:30+00:00")
    assert name == "backfill" and (end - begin).total_seconds() == 630
    commands = B.available_commands()
    assert "--sizes" in commands["bench"] and "--as-of" in commands["run"]
    assert B._set_args_only(["--env", "cluster", "--set", "a=1", "--conf", "f.yaml", "--set", "b=2"]) == [
        "--set", "a=1", "--set", "b=2"
    ]


def test_steps_option_keeps_the_order_and_rejects_a_step_without_what_it_needs():
    assert B._steps("pagerank, generate") == ("generate", "pagerank")
    assert B._steps("generate,daily,probe") == ("generate", "daily", "probe")
    with pytest.raises(Exception, match="steps: backfill needs daily"):
        B._steps("generate,backfill")
    with pytest.raises(Exception, match="steps: expected"):
        B._steps("generate,lunch")


def test_a_backfill_without_the_probe_says_the_probe_reads_its_stage_times():
    notes = B.left_out_notes(("generate", "daily", "backfill"))
    assert notes["backfill_vs_daily"] == "not measured: step probe was not in --steps"
    assert notes["local_vs_scipy"] == "not measured: step pagerank was not in --steps"
    assert B.left_out_notes(B.STEPS) == {}


def test_the_generate_step_alone_measures_the_generator_and_says_why_the_ratios_are_missing(tmp_path):
    opts = B.BenchOptions(sizes=("S",), out=tmp_path, work=tmp_path / "work", seed=3, keep_data=False,
                          steps=("generate",))
    result = B.bench_size("S", opts)
    generated = result["generate"]
    assert generated["events"] > 90_000 and generated["files"] == 30
    assert generated["seconds"] > 0 and generated["memory"]["tree_peak_mb"] > 0
    assert "daily_run" not in result and "propagation" not in result
    assert result["notes"]["ingest_vs_bare"] == "not measured: step probe was not in --steps"
    assert result["notes"]["local_vs_scipy"] == "not measured: step pagerank was not in --steps"
    assert result["notes"]["backfill_vs_daily"] == "not measured: step backfill was not in --steps"
    assert all(value is None for value in result["ratios"].values())
    assert not (tmp_path / "work" / "S").exists()  # the dump is deleted without --keep-data


def test_bare_ingest_writes_the_bare_parquet_and_a_floor_stored_as_bronze_is(spark, tmp_path):
    import gzip

    from delta.tables import DeltaTable

    dump = tmp_path / "dump"
    dump.mkdir()
    line = '{{"event_id": "{0}", "network": "twitter", "event_type": "post", "event_ts": "{1}", "actor_id": "u{0}"}}\n'
    (dump / "day1.jsonl").write_text(line.format(1, "2026-10-01T10:00:00Z") + line.format(2, "2026-10-01T23:59:00Z"))
    with gzip.open(dump / "day2.jsonl.gz", "wt") as out:
        out.write(line.format(3, "2026-10-02T00:00:01Z"))
    (dump / "_ground_truth").mkdir()  # hidden from the read, as from ingest
    (dump / "_ground_truth" / "x.jsonl").write_text(line.format(9, "2026-10-02T00:00:01Z"))

    bare = B.bare_ingest(spark, str(dump), str(tmp_path / "bare"))

    assert (bare["files"], bare["rows"]) == (2, 3)
    assert bare["seconds"] > 0 and bare["delta_floor_seconds"] > 0
    assert sorted(r.event_id for r in spark.read.parquet(str(tmp_path / "bare")).collect()) == ["1", "2", "3"]
    floor = DeltaTable.forPath(spark, str(tmp_path / "bare_delta")).detail().first()
    assert floor.partitionColumns == ["event_date"]
    # bronze's statistics columns that the bare read has (batch id and checksum are ingest's own)
    assert floor.properties["delta.dataSkippingStatsColumns"] == "event_ts,network,event_type"
    per_day = spark.read.format("delta").load(str(tmp_path / "bare_delta")).groupBy("event_date").count()
    assert sorted((str(r.event_date), r["count"]) for r in per_day.collect()) == [("2026-10-01", 2), ("2026-10-02", 1)]

    B.bare_ingest(spark, str(dump), str(tmp_path / "bare"))  # a second probe over the same scratch replaces it
    assert spark.read.format("delta").load(str(tmp_path / "bare_delta")).count() == 3
