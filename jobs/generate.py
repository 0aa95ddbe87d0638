"""spark-submit entry point: `klout-spark generate` (see `klout-spark generate --help`).

    spark-submit --py-files dist/klout_spark.zip jobs/generate.py [ARGS...]
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
