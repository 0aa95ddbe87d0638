"""Work done on the driver in batches of dates: how the dates are grouped, and how the collects overlap.

The local PageRank (``propagate``) and the top engagers of ``score_explain``
collect a batch of dates' edges to the driver, then work on them in NumPy.
:func:`batches_by_size` groups dates so that one collect holds at most so
many rows; :func:`prefetched` runs the next batch's collect (a Spark job,
which waits on the JVM with the GIL released) while the caller works on the
current batch, so the two overlap instead of taking turns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from typing import TypeVar

from pyspark import inheritable_thread_target
from pyspark.sql import SparkSession

T = TypeVar("T")


def batches_by_size(sizes: Mapping[date, int], *, max_size: int) -> tuple[list[list[date]], list[date]]:
    """The dates grouped in date order, at most ``max_size`` rows a group; and the dates larger than that alone.

    A date's rows are never split between groups.
    """
    groups: list[list[date]] = []
    too_large: list[date] = []
    total = 0
    for as_of in sorted(sizes):
        size = sizes[as_of]
        if size > max_size:
            too_large.append(as_of)
        elif groups and total + size <= max_size:
            groups[-1].append(as_of)
            total += size
        else:
            groups.append([as_of])
            total = size
    return groups, too_large


def prefetched(spark: SparkSession, calls: Iterable[Callable[[], T]]) -> Iterator[T]:
    """The results of ``calls``, in order; each call runs in a background thread while the caller uses the one before.

    At most two results are alive at once: the one the caller holds and the
    one being made. The thread carries the caller's Spark local properties
    (job group, description, scheduler pool) and ``spark``'s tags. An
    exception of a call is raised where its result would have been yielded.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending: Future[T] | None = None
        for call in calls:
            following = pool.submit(inheritable_thread_target(spark)(call))
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()
