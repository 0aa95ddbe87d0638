"""spark-submit entry point: `klout-spark calibrate` (see `klout-spark calibrate --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/calibrate.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["calibrate", *sys.argv[1:]]))
