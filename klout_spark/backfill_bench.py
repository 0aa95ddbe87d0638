"""Benchmark: the cost of a backfill over N days against one daily run, on the same data.

    python -m klout_spark.backfill_bench --dump sample --days 30 --work /tmp/bench

Two lakehouses ingest and validate the same dump (not timed). Then one times
``run_daily`` of the dump's last day, the other a backfill of the ``days`` days
ending on it; both include their validate step. Prints both times and their
ratio (the target is a 30-day backfill at most 3x one daily run). The machine's
load skews both alike; run it on a quiet machine for absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from klout_spark.config import load_settings
from klout_spark.pipeline import Pipeline, backfill, default_as_of, run_daily, stage_ingest, stage_validate


@dataclass(frozen=True)
class BackfillCost:
    days: int
    daily_seconds: float
    backfill_seconds: float

    @property
    def ratio(self) -> float:
        return self.backfill_seconds / self.daily_seconds


def measure(dump: str, work: str, *, days: int, overrides: Sequence[str] = ()) -> BackfillCost:
    """Time one daily run and one ``days``-day backfill over the same ingested dump."""
    timings = {}
    for name in ("daily", "backfill"):
        root = Path(work) / name
        shutil.rmtree(root, ignore_errors=True)
        settings = load_settings("local", overrides=(*overrides, f"lake.root={root}", f"lake.database=bench_{name}"))
        p = Pipeline.open(settings, app_name=f"klout-spark bench {name}")
        stage_ingest(p, [dump])
        stage_validate(p)
        last = default_as_of(p.lake)
        p = Pipeline.open(settings, app_name=f"klout-spark bench {name}")
        started = time.monotonic()
        if name == "daily":
            run_daily(p, as_of=last, inputs=[])
        else:
            backfill(p, start=last - timedelta(days=days - 1), end=last, force=True)
        timings[name] = time.monotonic() - started
    return BackfillCost(days=days, daily_seconds=timings["daily"], backfill_seconds=timings["backfill"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", required=True, help="dump folder (e.g. the sample from `make sample`)")
    parser.add_argument("--days", type=int, default=30, help="days to backfill (default 30)")
    parser.add_argument("--work", default=os.path.join("bench_work", "backfill"), help="scratch folder for the two lakehouses")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    cost = measure(args.dump, args.work, days=args.days, overrides=args.overrides)
    print(json.dumps({**asdict(cost), "ratio": round(cost.ratio, 2)}))
    print(
        f"one daily run {cost.daily_seconds:.1f} s; {cost.days}-day backfill {cost.backfill_seconds:.1f} s "
        f"= {cost.ratio:.2f}x (target <= 3x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
