"""The public entry point: argument checks, the day loop and the summary."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from klout_spark.generate import _vocab as V
from klout_spark.generate._dirty import DirtyInjector
from klout_spark.generate._formats import CanonicalFormat
from klout_spark.generate._output import DayWriter, write_ground_truth, write_identities
from klout_spark.generate._platforms import RedditFormat, TwitterFormat
from klout_spark.generate._population import SECONDS_PER_DAY, WorldPlan, build_population, epoch_seconds
from klout_spark.generate._simulate import FIRST_WINDOW_POST_ID, Simulator
from klout_spark.generate._social import FacebookFormat, LinkedInArchives

SIZES: dict[str, int] = {"S": 100_000, "M": 1_000_000, "L": 10_000_000, "XL": 100_000_000}
FORMATS: tuple[str, ...] = ("canonical", "twitter", "reddit", "native")
DEFAULT_NETWORKS: tuple[str, ...] = ("twitter", "reddit")
# Where native mode puts the LinkedIn member archives (one folder per member).
LINKEDIN_DIR = "linkedin"
# Fixed so that output never depends on the day the generator runs.
DEFAULT_END_DATE = date(2026, 10, 31)
MIN_EVENTS = 10_000
MAX_DAYS = 3_660
MAX_DIRTY_RATE = 0.5
_FORMAT_CHUNK = 100000
_GENERATOR_VERSION = 1
_DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`generate_dump` wrote.

    Attributes
    ----------
    out_dir : str
        Root folder of the dump.
    days : int
        Days in the window.
    start_date, end_date : datetime.date
        First and last day of the window (both included).
    events_written : int
        Lines written to the event files, dirty lines included.
    files : tuple of str
        Paths of the event files (``out_dir/YYYY-MM-DD/events-NNNNN.jsonl.gz``), in day order;
        ``_identities.csv`` and ``_ground_truth/`` are not listed.
    accounts : int
        Accounts in the simulated world (``_ground_truth/accounts.csv`` rows).
    """

    out_dir: str
    days: int
    start_date: date
    end_date: date
    events_written: int
    files: tuple[str, ...]
    accounts: int


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_networks(networks) -> tuple[int, ...]:
    names = tuple(networks) if not isinstance(networks, str) else (networks,)
    unknown = [n for n in names if n not in V.NETWORKS]
    if unknown or not {"twitter", "reddit"} <= set(names):
        raise ValueError(
            f"networks: expected twitter and reddit plus any of facebook, linkedin, got {list(names)!r}"
        )
    return tuple(sorted({V.NETWORKS.index(n) for n in names}))


def _check_args(size, seed, days, end_date, events, fmt, dirty_rate) -> None:
    if size not in SIZES:
        raise ValueError(f"size: expected one of {sorted(SIZES)}, got {size!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if not _is_int(days) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days: expected an integer in [1, {MAX_DAYS}], got {days!r}")
    if end_date is not None and not isinstance(end_date, date):
        raise ValueError(f"end_date: expected a datetime.date, got {end_date!r}")
    if events is not None and (not _is_int(events) or events < MIN_EVENTS):
        raise ValueError(
            f"events: expected an integer >= {MIN_EVENTS} (room for every planted pattern), got {events!r}"
        )
    if fmt not in FORMATS:
        raise ValueError(f"fmt: expected one of {list(FORMATS)}, got {fmt!r}")
    if (
        isinstance(dirty_rate, bool)
        or not isinstance(dirty_rate, (int, float))
        or not 0.0 <= dirty_rate <= MAX_DIRTY_RATE
    ):
        raise ValueError(f"dirty_rate: expected a number in [0, {MAX_DIRTY_RATE}], got {dirty_rate!r}")


def _prepare_out_dir(out_dir: Path) -> None:
    """Create ``out_dir``, or clear a previous dump in it; refuse any folder holding other files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir: {str(out_dir)!r} exists and is not a folder")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        out_dir.mkdir(parents=True, exist_ok=True)
        return
    entries = list(out_dir.iterdir())
    ours = [
        entry
        for entry in entries
        if (entry.is_dir() and (_DAY_DIR.match(entry.name) or entry.name in ("_ground_truth", LINKEDIN_DIR)))
        or entry.name == "_identities.csv"
    ]
    if not (out_dir / "_ground_truth" / "README.txt").is_file() or len(ours) != len(entries):
        raise ValueError(
            f"out_dir: {str(out_dir)!r} is not empty and does not hold a previous dump; "
            "give an empty or new folder"
        )
    for entry in ours:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def generate_dump(
    out_dir: str | Path,
    *,
    size: str = "S",
    seed: int = 42,
    days: int = 30,
    end_date: date | None = None,
    events: int | None = None,
    fmt: str = "canonical",
    dirty_rate: float = 0.0,
    networks: tuple[str, ...] = DEFAULT_NETWORKS,
) -> GenerateSummary:
    """Write a synthetic activity dump with planted manipulation patterns and its ground truth.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write into: new, empty, or holding a previous dump (which is replaced).
    size : {"S", "M", "L", "XL"}
        Target number of events (see ``SIZES``); ignored when ``events`` is given.
    seed : int
        Seed of every random draw. Same seed and parameters give byte-identical files.
    days : int
        Length of the window, ending on ``end_date`` (included).
    end_date : datetime.date, optional
        Last day of the window; default ``DEFAULT_END_DATE`` (2026-10-31), never today.
    events : int, optional
        Target number of events, overriding ``size`` (at least 10,000).
    fmt : {"canonical", "twitter", "reddit"}
        Raw format of the event files. "canonical" writes every event of both networks.
        "twitter" writes the Twitter network's tweets, replies, retweets and quotes as
        Twitter API v1.1 tweet JSON (mentions and author profiles embedded); "reddit" writes
        the Reddit network's submissions, comments and crossposts as Pushshift ndjson.
        Likes, follows, unfollows, list adds and standalone profiles cannot be expressed
        there and are absent; the ground truth still describes the whole world.
        "native" writes every network in its own platform format: ``twitter-NNNNN.jsonl.gz``
        (v1.1), ``reddit-NNNNN.jsonl.gz`` (Pushshift), ``facebook-NNNNN.jsonl.gz`` (Graph API
        feed pages) per day, and LinkedIn member archives under ``linkedin/`` (see
        :mod:`klout_spark.generate._social`); it takes no dirty lines.
    dirty_rate : float
        Fraction of written lines that are dirty (duplicates, malformed, missing fields,
        wrong types, future timestamps), in [0, 0.5].
    networks : tuple of str
        Networks of the world: "twitter" and "reddit" (default), plus "facebook" and/or
        "linkedin". With more networks, each person of ``_identities.csv`` owns one account
        on each of them.

    Returns
    -------
    GenerateSummary

    Raises
    ------
    ValueError
        A parameter is invalid (the message names it), or ``out_dir`` holds other files.

    Notes
    -----
    Layout: ``out_dir/YYYY-MM-DD/events-NNNNN.jsonl.gz`` (parts of at most 1M lines),
    ``out_dir/_identities.csv`` and ``out_dir/_ground_truth/`` (leading underscores keep dump readers, ours and Spark's, out of them) (see its README.txt).
    The event total is approximate (within a few percent of the target). Days are
    simulated and written one at a time, so memory is bounded by one day of events.
    """
    _check_args(size, seed, days, end_date, events, fmt, dirty_rate)
    network_codes = _check_networks(networks)
    if fmt == "native" and dirty_rate:
        raise ValueError(f"dirty_rate: the native format takes no dirty lines, got {dirty_rate!r}")
    if isinstance(end_date, datetime):
        end_date = end_date.date()
    end_date = end_date or DEFAULT_END_DATE
    start_date = end_date - timedelta(days=days - 1)
    target_events = int(events) if events is not None else SIZES[size]
    out_path = Path(out_dir)
    _prepare_out_dir(out_path)

    world_seed, simulation_seed, dirty_seed = np.random.SeedSequence(int(seed)).spawn(3)
    plan = WorldPlan.for_size(target_events, days)
    population = build_population(
        np.random.Generator(np.random.PCG64(world_seed)), plan, start_date, networks=network_codes
    )
    target = population.sybil_target
    target_name = (
        "@" + V.screen_names([int(population.network[target])], [int(population.local_id[target])])[0]
    )
    text_pool = V.TextPool(target_name)
    simulator = Simulator(
        population, plan, text_pool, np.random.Generator(np.random.PCG64(simulation_seed)), start_date
    )
    natives = []
    if fmt == "native":
        classes = {V.TWITTER: TwitterFormat, V.REDDIT: RedditFormat, V.FACEBOOK: FacebookFormat,
                   V.LINKEDIN: LinkedInArchives}
        natives = [classes[code](population, text_pool, start_date) for code in network_codes]
        serializer = natives[0]
    elif fmt == "twitter":
        serializer = TwitterFormat(population, text_pool, start_date)
    elif fmt == "reddit":
        serializer = RedditFormat(population, text_pool, start_date)
    else:
        serializer = CanonicalFormat(population, text_pool)
    dirty = DirtyInjector(
        np.random.Generator(np.random.PCG64(dirty_seed)),
        float(dirty_rate),
        serializer.dirty_spec,
        future_from=epoch_seconds(end_date) + SECONDS_PER_DAY,
    )

    files: list[str] = []
    events_written = 0
    for day in range(days):
        day_events = simulator.simulate_day(day)
        if natives:
            for native in natives:
                writer = DayWriter(out_path / day_events.day.isoformat(), prefix=native.name)
                for start in range(0, len(day_events), _FORMAT_CHUNK):
                    writer.write(native.lines(day_events, start, min(start + _FORMAT_CHUNK, len(day_events))))
                files.extend(str(path) for path in writer.close())
                events_written += writer.lines_written
            continue
        writer = DayWriter(out_path / day_events.day.isoformat())
        for start in range(0, len(day_events), _FORMAT_CHUNK):
            lines = serializer.lines(day_events, start, min(start + _FORMAT_CHUNK, len(day_events)))
            writer.write(dirty.inject(lines))
        files.extend(str(path) for path in writer.close())
        events_written += writer.lines_written
        dirty.end_day()

    for native in natives:
        if isinstance(native, LinkedInArchives):
            archive_files = native.write(out_path / LINKEDIN_DIR)
            files.extend(str(path) for path in archive_files)
            events_written += native.rows_written
    write_identities(out_path / "_identities.csv", population)
    params = {
        "generator_version": _GENERATOR_VERSION,
        "seed": int(seed),
        "size": size,
        "target_events": target_events,
        "events_written": events_written,
        "days": days,
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "format": fmt,
        "dirty_rate": float(dirty_rate),
        "accounts": population.size,
        "roles": {name: int((population.role == code).sum()) for code, name in enumerate(V.ROLES)},
        "pods": [len(members) for members in population.pods],
        "persons": len(population.identities),
    }
    if network_codes != V.BASE_NETWORKS:
        params["networks"] = [V.NETWORKS[code] for code in network_codes]
    write_ground_truth(
        out_path / "_ground_truth",
        population,
        dirty_counts=dirty.counts,
        params=params,
        first_window_post_id=FIRST_WINDOW_POST_ID,
    )
    return GenerateSummary(
        out_dir=str(out_path),
        days=days,
        start_date=start_date,
        end_date=end_date,
        events_written=events_written,
        files=tuple(files),
        accounts=population.size,
    )
