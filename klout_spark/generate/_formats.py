"""Serialisers: turn a day of simulated events into JSON lines of one raw format.

The canonical format is written with pre-built string pieces rather than
``json.dumps`` per event: every piece that could need escaping (texts) is
escaped once, when the text pool is built.
"""

from __future__ import annotations

import numpy as np

from klout_spark.generate import _vocab as V
from klout_spark.generate._dirty import DirtySpec
from klout_spark.generate._population import Population
from klout_spark.generate._simulate import DayEvents

_NETWORK_NAMES = np.array(V.NETWORKS, dtype=object)
_NETWORK_PREFIXES = np.array(V.NETWORK_PREFIXES, dtype=object)
_EVENT_TYPE_NAMES = np.array(V.EVENT_TYPES, dtype=object)
CLOCK = [f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}" for second in range(86_400)]


def _tag_tables() -> tuple[list[list[str]], list[list[str]]]:
    """Hashtag JSON arrays and in-text suffixes for every (tag0, tag1) pair; index -1 means none."""
    names = [*V.TAGS, None]
    arrays, suffixes = [], []
    for first in names:
        array_row, suffix_row = [], []
        for second in names:
            tags = [tag for tag in (first, second) if tag is not None] if first is not None else []
            array_row.append("[" + ",".join(f'"{tag}"' for tag in tags) + "]")
            suffix_row.append("".join(f" #{tag}" for tag in tags))
        arrays.append(array_row)
        suffixes.append(suffix_row)
    return arrays, suffixes


def iso_utc(epoch_seconds: np.ndarray) -> list[str]:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SSZ`` strings."""
    stamps = np.datetime_as_string(np.asarray(epoch_seconds, dtype="datetime64[s]"), unit="s")
    return [stamp + "Z" for stamp in stamps.tolist()]


class CanonicalFormat:
    """Writes events in the canonical JSON-lines format (one object per line, every key present).

    Parameters
    ----------
    population : Population
    text_pool : TextPool
    """

    name = "canonical"

    def __init__(self, population: Population, text_pool: V.TextPool) -> None:
        self.pop = population
        self.texts = text_pool
        self.user_json = [f'"{user_id}"' for user_id in population.user_ids] + ["null"]
        self.tag_arrays, self.tag_suffixes = _tag_tables()

    def lines(self, events: DayEvents, start: int, stop: int) -> list[str]:
        """Format rows ``start:stop`` of ``events``."""
        rows = slice(start, stop)
        actor = events.actor[rows]
        network = self.pop.network[actor]
        prefixes = _NETWORK_PREFIXES[network].tolist()
        user_json = self.user_json
        day_prefix = events.day.isoformat() + "T"
        timestamps = [day_prefix + CLOCK[second] + "Z" for second in events.ts[rows].tolist()]
        post_json = [
            "null" if number < 0 else f'"{prefix}:p:{number}"'
            for prefix, number in zip(prefixes, events.post[rows].tolist(), strict=True)
        ]
        parent_json = [
            "null" if number < 0 else f'"{prefix}:p:{number}"'
            for prefix, number in zip(prefixes, events.parent[rows].tolist(), strict=True)
        ]
        entries, suffixes, arrays = self.texts.entries, self.tag_suffixes, self.tag_arrays
        tag0, tag1 = events.tag0[rows].tolist(), events.tag1[rows].tolist()
        text_json = [
            "null"
            if text < 0
            else entries[text] + (suffixes[first][second] if net == V.TWITTER else "") + '"'
            for text, first, second, net in zip(
                events.text[rows].tolist(), tag0, tag1, network.tolist(), strict=True
            )
        ]
        hashtags_json = [arrays[first][second] for first, second in zip(tag0, tag1, strict=True)]
        tails = self._profile_tails(events, rows)
        return [
            f'{{"event_id":"{prefix}:e:{number}","network":"{network_name}","event_type":"{event_type}",'
            f'"event_ts":"{ts}","actor_id":{user_json[actor_number]},"subject_id":{user_json[subject_number]},'
            f'"post_id":{post},"parent_post_id":{parent},"text":{text},"hashtags":{hashtags}{tail}'
            for prefix, number, network_name, event_type, ts, actor_number, subject_number, post, parent, text, hashtags, tail in zip(
                prefixes,
                events.event_number[rows].tolist(),
                _NETWORK_NAMES[network].tolist(),
                _EVENT_TYPE_NAMES[events.etype[rows]].tolist(),
                timestamps,
                actor.tolist(),
                events.subject[rows].tolist(),
                post_json,
                parent_json,
                text_json,
                hashtags_json,
                tails,
                strict=True,
            )
        ]

    @staticmethod
    def _profile_tails(events: DayEvents, rows: slice) -> list[str]:
        profile_row = events.profile_row[rows]
        tails = ["}"] * len(profile_row)
        positions = np.nonzero(profile_row >= 0)[0]
        picked = profile_row[positions]
        created = iso_utc(events.profile_created_at[picked])
        for position, followers, following, listed, posts, created_at, verified in zip(
            positions.tolist(),
            events.profile_followers[picked].tolist(),
            events.profile_following[picked].tolist(),
            events.profile_listed[picked].tolist(),
            events.profile_posts[picked].tolist(),
            created,
            events.profile_verified[picked].tolist(),
            strict=True,
        ):
            tails[position] = (
                f',"followers_count":{followers},"following_count":{following},"listed_count":{listed},'
                f'"posts_count":{posts},"account_created_at":"{created_at}","verified":{"true" if verified else "false"}}}'
            )
        return tails


def _canonical_actor_as_number(record: dict) -> None:
    record["actor_id"] = int(str(record["actor_id"]).rsplit(":", 1)[-1])


def _canonical_ts_garbage(record: dict) -> None:
    record["event_ts"] = "31/31/2026 25:61"


def _canonical_ts_as_number(record: dict) -> None:
    record["event_ts"] = 1_790_000_000


def _canonical_hashtags_as_string(record: dict) -> None:
    record["hashtags"] = " ".join(record.get("hashtags") or ["none"])


def _canonical_set_time(record: dict, epoch_seconds: int) -> None:
    record["event_ts"] = iso_utc(np.array([epoch_seconds]))[0]


CANONICAL_DIRTY_SPEC = DirtySpec(
    required_keys=("event_id", "network", "event_type", "event_ts", "actor_id"),
    wrong_types=(
        _canonical_actor_as_number,
        _canonical_ts_garbage,
        _canonical_ts_as_number,
        _canonical_hashtags_as_string,
    ),
    set_time=_canonical_set_time,
)
CanonicalFormat.dirty_spec = CANONICAL_DIRTY_SPEC
