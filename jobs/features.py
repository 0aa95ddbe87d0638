"""spark-submit entry point: `klout-spark features` (see `klout-spark features --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/features.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
