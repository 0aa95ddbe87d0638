"""spark-submit entry point: `klout-spark run` (see `klout-spark run --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/daily.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
