"""spark-submit entry point for schedulers: `klout-spark run`, scoring yesterday (UTC) by default.

    spark-submit --py-files dist/klout_spark.zip jobs/daily.py --env cluster --input /dumps/latest

Unlike `klout-spark run` (which defaults to the last day with events), this job
scores `--as-of yesterday` unless an --as-of is given, so a cron or Airflow run
always means "the day that just ended". A second run for the same day rewrites
the same slices; two at once are kept apart by the date's lock (run_locks).
"""

import sys

from klout_spark.cli import main


def daily_args(argv: list[str]) -> list[str]:
    given = any(arg == "--as-of" or arg.startswith("--as-of=") for arg in argv)
    return ["run", *([] if given else ["--as-of", "yesterday"]), *argv]


if __name__ == "__main__":
    sys.exit(main(daily_args(sys.argv[1:])))
