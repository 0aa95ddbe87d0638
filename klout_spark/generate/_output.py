"""Files of a dump: byte-reproducible gzip parts, the identities table and the ground truth."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np

from klout_spark.generate import _vocab as V
from klout_spark.generate._population import Population

PART_MAX_EVENTS = 1_000_000
GZIP_LEVEL = 3


class DayWriter:
    """Writes the lines of one day as ``events-NNNNN.jsonl.gz`` parts of at most ``PART_MAX_EVENTS`` lines.

    The gzip header carries no file name and ``mtime=0``, so equal content gives equal bytes.

    Parameters
    ----------
    day_dir : pathlib.Path
        Folder of the day (created).
    """

    def __init__(self, day_dir: Path, prefix: str = "events") -> None:
        self.day_dir = day_dir
        self.prefix = prefix
        self.files: list[Path] = []
        self.lines_written = 0
        self._part_lines = 0
        self._raw: io.BufferedWriter | None = None
        self._gzip: gzip.GzipFile | None = None

    def write(self, lines: list[str]) -> None:
        """Append ``lines`` (without newlines), opening new parts as they fill up."""
        start = 0
        while start < len(lines):
            if self._gzip is None or self._part_lines >= PART_MAX_EVENTS:
                self._open_part()
            room = PART_MAX_EVENTS - self._part_lines
            chunk = lines[start : start + room]
            self._gzip.write(("\n".join(chunk) + "\n").encode("utf-8"))
            self._part_lines += len(chunk)
            self.lines_written += len(chunk)
            start += len(chunk)

    def _open_part(self) -> None:
        self._close_part()
        self.day_dir.mkdir(parents=True, exist_ok=True)
        path = self.day_dir / f"{self.prefix}-{len(self.files):05d}.jsonl.gz"
        self._raw = open(path, "wb")  # noqa: SIM115 - closed in _close_part
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=GZIP_LEVEL, mtime=0
        )
        self._part_lines = 0
        self.files.append(path)

    def _close_part(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
            self._raw.close()
            self._gzip = self._raw = None

    def close(self) -> list[Path]:
        """Finish the last part and return every part written."""
        self._close_part()
        return self.files


def _write_csv(path: Path, header: tuple[str, ...], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _account_order(population: Population) -> np.ndarray:
    return np.lexsort((population.local_id, population.network))


def write_identities(path: Path, population: Population) -> None:
    """``person_id,network,user_id``: one row per account of each person (one account per network)."""
    rows = []
    for person, *accounts in population.identities:
        for account in accounts:
            rows.append(
                (f"p:{person}", V.NETWORKS[population.network[account]], population.user_ids[account])
            )
    _write_csv(path, ("person_id", "network", "user_id"), rows)


_README = """\
Ground truth of a synthetic klout-spark dump
============================================

The dump was drawn from a simulated world whose true answers are listed here,
so that a pipeline can be scored against them. Same seed and parameters give
the same files, byte for byte.

accounts.csv  network,user_id,latent_influence,role
    Every account of the world (some never act inside the window).
    latent_influence is the true influence that drove how much engagement the
    account's posts drew (heavy-tailed, lognormal); it is 0 for every fake or
    dormant account. role is one of:
      genuine                 ordinary account: posts on its topics, engages with others
      inactive                dormant account: follows someone now and then, never anything else
      spam_bot                high-volume, low-quality likes, mentions and follows of random
                              accounts; near-duplicate posts with spam hashtags
      bought_follower_target  the account that bought followers (otherwise genuine, low influence)
      bought_follower         fresh account (created just before) that follows the target in a
                              burst, plus a few celebrities, and never engages
      pod_member              genuine account in an engagement pod: a ring of 5-50 accounts that
                              reshare, reply to and like each other's posts within the hour
                              (the rings are listed in pods.csv)
      sybil                   fresh account of a sybil farm (created inside the window) boosting
                              one target and each other (likes, reshares, replies, follows)
      sybil_target            the account the sybil farm boosts (otherwise genuine, low influence)
      one_post_topic          the account that posted exactly once about "aviaries" (the post drew
                              a dozen genuine engagements); nobody has evidence to be influential
                              about "aviaries"

topics.csv  network,user_id,topic
    Topics each organic account (genuine, pod_member and both targets) really
    posts about. "aviaries" appears in no row. Topics drive hashtags: a post's
    hashtags are its topic (Twitter: most posts; Reddit: always, as the subreddit).

pods.csv  pod_id,network,user_id
    Members of each engagement pod.

dirty.csv  kind,count
    Dirty lines planted in the event files: duplicate (an earlier line, same
    event id, repeated in a later day's file), malformed_json (truncated line),
    missing_field (a required key removed), wrong_type (e.g. actor_id as a
    number, event_ts as garbage), future_timestamp (years after the window).
    All counts are 0 for a clean dump.

params.json
    The generator parameters, the window and the sizes of each planted group.

Event ids, post ids and user ids are per network ("tw:", "rd:"). Post ids
below {first_post} were written before the window: a few replies, reshares
and likes early in the window point at them.
"""


def write_ground_truth(
    folder: Path,
    population: Population,
    *,
    dirty_counts: dict[str, int],
    params: dict,
    first_window_post_id: int,
) -> None:
    """Write accounts.csv, topics.csv, pods.csv, dirty.csv, params.json and README.txt into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    order = _account_order(population).tolist()
    networks = [V.NETWORKS[code] for code in population.network.tolist()]
    roles = population.role.tolist()
    influence = population.influence.tolist()
    user_ids = population.user_ids
    _write_csv(
        folder / "accounts.csv",
        ("network", "user_id", "latent_influence", "role"),
        ((networks[i], user_ids[i], f"{influence[i]:.6g}", V.ROLES[roles[i]]) for i in order),
    )
    organic = population.is_organic()
    covers = population.covers.tolist()
    _write_csv(
        folder / "topics.csv",
        ("network", "user_id", "topic"),
        (
            (networks[i], user_ids[i], V.TOPICS[topic])
            for i in order
            if organic[i]
            for topic in covers[i]
            if topic >= 0
        ),
    )
    _write_csv(
        folder / "pods.csv",
        ("pod_id", "network", "user_id"),
        (
            (f"pod:{number}", networks[member], user_ids[member])
            for number, members in enumerate(population.pods, start=1)
            for member in members.tolist()
        ),
    )
    _write_csv(folder / "dirty.csv", ("kind", "count"), dirty_counts.items())
    (folder / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / "README.txt").write_text(_README.format(first_post=first_window_post_id), encoding="utf-8")
