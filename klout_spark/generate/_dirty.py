"""Planted dirty data: duplicates across files, malformed lines, missing fields, wrong types, future times."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DIRTY_KINDS: tuple[str, ...] = (
    "duplicate",
    "malformed_json",
    "missing_field",
    "wrong_type",
    "future_timestamp",
)
_DUPLICATE_SHARE = 0.3
_SAMPLE_PER_CHUNK = 500
_RESERVOIR_SIZE = 20_000
_FUTURE_DAYS = (400, 2000)


@dataclass(frozen=True)
class DirtySpec:
    """How to damage a record of one format.

    Attributes
    ----------
    required_keys : tuple of str
        Top-level keys whose removal makes a record unusable.
    wrong_types : tuple of callables
        Each replaces one field of a parsed record by a value of the wrong type.
    set_time : callable
        ``set_time(record, epoch_seconds)`` moves the record's event time.
    """

    required_keys: tuple[str, ...]
    wrong_types: tuple[Callable[[dict], None], ...]
    set_time: Callable[[dict, int], None]


def compact_json(record: dict) -> str:
    """Serialise like the clean writers do (no spaces, ASCII escapes)."""
    return json.dumps(record, separators=(",", ":"))


class DirtyInjector:
    """Damages a requested fraction of lines and counts what it planted.

    The fraction counts every written line: ``dirty lines / all lines ~= rate``.
    Duplicates re-emit clean lines of earlier days (same event id, later file),
    so they only start on the second day; until then their share goes to the other kinds.

    Parameters
    ----------
    rng : numpy.random.Generator
        Its own generator, so the clean content does not depend on ``rate``.
    rate : float
        Target fraction of dirty lines, in [0, 1).
    spec : DirtySpec
        How to damage records of the format being written.
    future_from : int
        Epoch seconds after which a timestamp is "in the future" (end of the window).
    """

    def __init__(self, rng: np.random.Generator, rate: float, spec: DirtySpec, future_from: int) -> None:
        self.rng = rng
        self.rate = rate
        self.spec = spec
        self.future_from = future_from
        self.counts = dict.fromkeys(DIRTY_KINDS, 0)
        self.reservoir: list[str] = []
        self._today: list[str] = []

    def inject(self, lines: list[str]) -> list[str]:
        """Return ``lines`` with some damaged and some earlier lines duplicated in."""
        if self.rate <= 0 or not lines:
            return lines
        rng, rate, n_clean = self.rng, self.rate, len(lines)
        if self.reservoir:
            corrupt_p = rate * (1 - _DUPLICATE_SHARE) / (1 - rate * _DUPLICATE_SHARE)
            duplicate_p = rate * _DUPLICATE_SHARE / (1 - rate * _DUPLICATE_SHARE)
        else:
            corrupt_p, duplicate_p = rate, 0.0
        n_corrupt = int(rng.binomial(n_clean, min(corrupt_p, 1.0)))
        corrupt_rows = rng.choice(n_clean, size=n_corrupt, replace=False)
        kinds = rng.integers(1, len(DIRTY_KINDS), size=n_corrupt)
        damaged = list(lines)
        for row, kind in zip(corrupt_rows.tolist(), kinds.tolist(), strict=True):
            damaged[row] = self._damage(lines[row], DIRTY_KINDS[kind])
            self.counts[DIRTY_KINDS[kind]] += 1
        clean_rows = np.setdiff1d(np.arange(n_clean), corrupt_rows)
        sample = rng.choice(clean_rows, size=min(_SAMPLE_PER_CHUNK, len(clean_rows)), replace=False)
        self._today.extend(lines[row] for row in np.sort(sample).tolist())

        n_duplicates = int(rng.binomial(n_clean, duplicate_p)) if duplicate_p else 0
        if n_duplicates == 0:
            return damaged
        self.counts["duplicate"] += n_duplicates
        copies = [self.reservoir[i] for i in rng.integers(0, len(self.reservoir), size=n_duplicates).tolist()]
        positions = np.sort(rng.integers(0, n_clean + 1, size=n_duplicates)).tolist()
        merged: list[str] = []
        previous = 0
        for position, copy in zip(positions, copies, strict=True):
            merged.extend(damaged[previous:position])
            merged.append(copy)
            previous = position
        merged.extend(damaged[previous:])
        return merged

    def end_day(self) -> None:
        """Make today's clean lines available as duplicates for later days."""
        self.reservoir = (self.reservoir + self._today)[-_RESERVOIR_SIZE:]
        self._today = []

    def _damage(self, line: str, kind: str) -> str:
        rng = self.rng
        if kind == "malformed_json":
            # A strict prefix of a JSON object never parses: the closing brace is missing.
            return line[: int(rng.integers(1, len(line) - 1))]
        record = json.loads(line)
        if kind == "missing_field":
            del record[self.spec.required_keys[int(rng.integers(0, len(self.spec.required_keys)))]]
        elif kind == "wrong_type":
            self.spec.wrong_types[int(rng.integers(0, len(self.spec.wrong_types)))](record)
        else:
            future = (
                self.future_from + int(rng.integers(*_FUTURE_DAYS)) * 86_400 + int(rng.integers(0, 86_400))
            )
            self.spec.set_time(record, future)
        return compact_json(record)
