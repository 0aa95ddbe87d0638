"""spark-submit entry point: `klout-spark score` (see `klout-spark score --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/score.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
