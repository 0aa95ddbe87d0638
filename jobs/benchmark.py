"""Entry point of `make bench`: `klout-spark bench` (see `klout-spark bench --help`).

    python jobs/benchmark.py --sizes S,M --out bench
"""

import sys

from klout_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
