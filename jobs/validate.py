"""spark-submit entry point: `klout-spark validate` (see `klout-spark validate --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/validate.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
