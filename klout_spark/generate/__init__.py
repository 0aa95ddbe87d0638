"""Synthetic activity dumps with planted ground truth (pure Python + numpy, no Spark).

``generate_dump`` simulates a world of accounts on two networks (heavy-tailed
latent influence, topics, daily and weekly rhythm) plus the patterns a scorer
must resist (inactive followers, spam bots, bought followers, engagement pods,
a sybil farm, a one-post topic), and writes it day by day as gzip JSON lines,
with the true answers under ``_ground_truth/``.

Examples
--------
>>> from klout_spark.generate import generate_dump
>>> summary = generate_dump("/tmp/dump", size="S", seed=7)  # doctest: +SKIP
>>> summary.events_written  # doctest: +SKIP
100214
"""

from klout_spark.generate._api import (
    DEFAULT_END_DATE,
    FORMATS,
    SIZES,
    GenerateSummary,
    generate_dump,
)
from klout_spark.generate._dirty import DIRTY_KINDS

__all__ = ["DEFAULT_END_DATE", "DIRTY_KINDS", "FORMATS", "SIZES", "GenerateSummary", "generate_dump"]
