"""spark-submit entry point: `klout-spark propagate` (see `klout-spark propagate --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/propagate.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["propagate", *sys.argv[1:]]))
