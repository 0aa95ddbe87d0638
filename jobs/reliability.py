"""The kill harness (`make reliability`): SIGKILL daily runs at seeded random points, rerun, compare.

    python jobs/reliability.py --n 20 --seed 1 [--work-dir DIR] [--dump DIR]

It starts `klout-spark run` subprocesses itself (local Spark); see klout_spark/reliability.py.
"""

import sys

from klout_spark.reliability import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
