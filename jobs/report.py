"""spark-submit entry point: `klout-spark report` (see `klout-spark report --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/report.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
