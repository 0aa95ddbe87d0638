"""spark-submit entry point: `klout-spark backfill` (see `klout-spark backfill --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/backfill.py --start 2026-10-01 --end 2026-10-31
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["backfill", *sys.argv[1:]]))
