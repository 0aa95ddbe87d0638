"""spark-submit entry point: `klout-spark ingest` (see `klout-spark ingest --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/ingest.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
