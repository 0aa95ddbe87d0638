"""Tests of the synthetic dump generator (pure Python: no Spark session needed)."""

from __future__ import annotations

import collections
import csv
import gzip
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from klout_spark.generate import DIRTY_KINDS, SIZES, GenerateSummary, generate_dump

EVENTS = 20_000
SEED = 11
END = date(2026, 10, 31)
DAYS = 30
START = END - timedelta(days=DAYS - 1)
FIRST_WINDOW_POST = 1_000_000_000

EVENT_TYPES = {
    "post",
    "reply",
    "reshare",
    "quote",
    "mention",
    "like",
    "follow",
    "unfollow",
    "list_add",
    "profile",
}
ENGAGEMENT_TYPES = {"reply", "reshare", "quote", "mention", "like"}
CANONICAL_KEYS = (
    "event_id",
    "network",
    "event_type",
    "event_ts",
    "actor_id",
    "subject_id",
    "post_id",
    "parent_post_id",
    "text",
    "hashtags",
)
PROFILE_KEYS = (
    "followers_count",
    "following_count",
    "listed_count",
    "posts_count",
    "account_created_at",
    "verified",
)
TS_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PREFIX = {"twitter": "tw", "reddit": "rd"}


# ---------------------------------------------------------------- helpers and fixtures
def read_lines(out_dir: Path) -> list[tuple[str, str]]:
    """(day folder, raw line) for every line of every event file, in file order."""
    lines = []
    for path in sorted(out_dir.glob("*/events-*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines.extend((path.parent.name, line.rstrip("\n")) for line in handle)
    return lines


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def post_number(post_id: str) -> int:
    return int(post_id.rsplit(":", 1)[1])


def spearman(x, y) -> float:
    """Spearman rank correlation with average ranks for ties (no scipy needed)."""

    def ranks(values):
        values = np.asarray(values, dtype=float)
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values))
        for value in np.unique(values):
            tied = values == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


class Dump:
    """A generated dump, parsed once."""

    def __init__(self, out_dir: Path, summary: GenerateSummary) -> None:
        self.dir = out_dir
        self.summary = summary
        self.raw = read_lines(out_dir)
        self.events = [json.loads(line) for _, line in self.raw]
        self.accounts = {row["user_id"]: row for row in read_csv(out_dir / "_ground_truth" / "accounts.csv")}

    def role(self, name: str) -> list[str]:
        return [user for user, row in self.accounts.items() if row["role"] == name]

    def by_actor(self, user: str, *, profiles: bool = False) -> list[dict]:
        return [
            e for e in self.events if e["actor_id"] == user and (profiles or e["event_type"] != "profile")
        ]

    def engagement_received(self) -> collections.Counter:
        return collections.Counter(
            e["subject_id"] for e in self.events if e["event_type"] in ENGAGEMENT_TYPES
        )


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Dump:
    out_dir = tmp_path_factory.mktemp("clean")
    return Dump(out_dir, generate_dump(out_dir, events=EVENTS, seed=SEED))


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> Dump:
    out_dir = tmp_path_factory.mktemp("dirty")
    summary = generate_dump(out_dir, events=EVENTS, seed=SEED, dirty_rate=0.05)
    lines = read_lines(out_dir)
    dump = Dump.__new__(Dump)
    dump.dir, dump.summary, dump.raw = out_dir, summary, lines
    return dump


# ---------------------------------------------------------------- determinism and layout
def test_same_seed_and_parameters_give_byte_identical_files(tmp_path):
    first = generate_dump(tmp_path / "a", events=EVENTS, seed=3, days=5, dirty_rate=0.02)
    second = generate_dump(tmp_path / "b", events=EVENTS, seed=3, days=5, dirty_rate=0.02)
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first.events_written == second.events_written


def test_another_seed_gives_another_dump(tmp_path):
    generate_dump(tmp_path / "a", events=EVENTS, seed=3, days=3)
    generate_dump(tmp_path / "b", events=EVENTS, seed=4, days=3)
    day = START.isoformat()
    assert read_lines(tmp_path / "a") != read_lines(tmp_path / "b")
    assert (tmp_path / "a" / "2026-10-29").is_dir() and not (tmp_path / "a" / day).exists()


def test_dirty_dump_is_the_clean_dump_plus_planted_damage(clean, dirty):
    clean_lines = {line for _, line in clean.raw}
    dirty_counts = {
        row["kind"]: int(row["count"]) for row in read_csv(dirty.dir / "_ground_truth" / "dirty.csv")
    }
    foreign = sum(1 for _, line in dirty.raw if line not in clean_lines)
    assert foreign == sum(dirty_counts[kind] for kind in DIRTY_KINDS if kind != "duplicate")


def test_layout_day_folders_parts_and_ground_truth(clean):
    summary = clean.summary
    assert (summary.days, summary.start_date, summary.end_date) == (DAYS, START, END)
    day_dirs = sorted(p.name for p in clean.dir.iterdir() if p.is_dir() and p.name != "_ground_truth")
    assert day_dirs == [(START + timedelta(days=k)).isoformat() for k in range(DAYS)]
    assert [Path(f).relative_to(clean.dir).as_posix() for f in summary.files] == [
        f"{day}/events-00000.jsonl.gz" for day in day_dirs
    ]
    assert summary.events_written == len(clean.raw)
    assert abs(summary.events_written - EVENTS) / EVENTS < 0.1
    assert summary.accounts == len(clean.accounts)
    for name in ("accounts.csv", "topics.csv", "pods.csv", "dirty.csv", "params.json", "README.txt"):
        assert (clean.dir / "_ground_truth" / name).is_file(), name
    header = (clean.dir / summary.files[0]).read_bytes()[:10]
    assert header[3] & 0x08 == 0, "gzip header must not carry a file name"
    assert header[4:8] == b"\x00\x00\x00\x00", "gzip mtime must be 0"


def test_sizes_are_the_documented_targets():
    assert SIZES == {"S": 100_000, "M": 1_000_000, "L": 10_000_000, "XL": 100_000_000}


def test_default_window_ends_on_a_fixed_date(tmp_path):
    summary = generate_dump(tmp_path, events=EVENTS, days=2)
    assert summary.end_date == date(2026, 10, 31)
    custom = generate_dump(tmp_path / "c", events=EVENTS, days=2, end_date=date(2025, 1, 1))
    assert (custom.start_date, custom.end_date) == (date(2024, 12, 31), date(2025, 1, 1))


def test_a_previous_dump_is_replaced_but_foreign_folders_are_refused(tmp_path):
    generate_dump(tmp_path / "dump", events=EVENTS, days=4)
    again = generate_dump(tmp_path / "dump", events=EVENTS, days=2)
    assert len([p for p in (tmp_path / "dump").iterdir() if p.name[:2] == "20"]) == 2
    assert again.days == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="out_dir"):
        generate_dump(tmp_path / "other", events=EVENTS)
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------- the canonical contract
def test_every_line_follows_the_canonical_contract(clean):
    account_ids = set(clean.accounts)
    event_ids = set()
    window_start = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    for (folder, _), event in zip(clean.raw, clean.events, strict=True):
        assert set(CANONICAL_KEYS) <= set(event)
        kind, prefix = event["event_type"], PREFIX[event["network"]]
        assert kind in EVENT_TYPES
        assert event["event_id"].startswith(f"{prefix}:e:") and event["event_id"] not in event_ids
        event_ids.add(event["event_id"])
        assert TS_PATTERN.match(event["event_ts"]) and event["event_ts"][:10] == folder
        assert event["actor_id"] in account_ids and event["actor_id"].startswith(f"{prefix}:u:")
        assert isinstance(event["hashtags"], list)
        assert all(tag == tag.lower() and not tag.startswith("#") and tag for tag in event["hashtags"])
        if kind == "profile":
            assert set(event) == set(CANONICAL_KEYS) | set(PROFILE_KEYS)
            assert all(isinstance(event[key], int) and event[key] >= 0 for key in PROFILE_KEYS[:4])
            assert isinstance(event["verified"], bool) and TS_PATTERN.match(event["account_created_at"])
            assert parse_ts(event["account_created_at"]) < window_start + timedelta(days=DAYS)
        else:
            assert set(event) == set(CANONICAL_KEYS)
        if kind in ("post", "profile"):
            assert event["subject_id"] is None and event["parent_post_id"] is None
        else:
            assert event["subject_id"] in account_ids and event["subject_id"] != event["actor_id"]
            assert event["subject_id"].startswith(f"{prefix}:u:")
        has_post = kind in ("post", "reply", "reshare", "quote", "mention")
        assert (event["post_id"] is not None) == has_post
        assert (event["parent_post_id"] is not None) == (kind in ("reply", "reshare", "quote", "like"))
        assert (event["text"] is not None) == (kind in ("post", "reply", "quote"))
        if has_post:
            assert event["post_id"].startswith(f"{prefix}:p:")


def test_parents_exist_earlier_except_a_few_from_before_the_window(clean):
    posted_at: dict[str, tuple[str, str]] = {}
    referenced = before_window = 0
    for event in clean.events:
        if event["event_type"] in ("post", "reply", "reshare", "quote"):
            assert event["post_id"] not in posted_at
            posted_at[event["post_id"]] = (event["actor_id"], event["event_ts"])
        parent = event["parent_post_id"]
        if parent is None:
            continue
        referenced += 1
        if post_number(parent) < FIRST_WINDOW_POST:
            before_window += 1
            continue
        author, written_at = posted_at[parent]  # KeyError = a dangling parent
        assert author == event["subject_id"]
        assert written_at < event["event_ts"]
    assert 0 < before_window / referenced < 0.05


def test_mentions_accompany_their_post(clean):
    authored = {
        e["post_id"]: e["actor_id"] for e in clean.events if e["event_type"] in ("post", "reply", "quote")
    }
    mentions = [e for e in clean.events if e["event_type"] == "mention"]
    assert mentions
    assert all(authored[m["post_id"]] == m["actor_id"] for m in mentions)


def test_profiles_come_on_the_first_active_day_then_weekly(clean):
    first_active: dict[str, str] = {}
    snapshots = collections.defaultdict(list)
    for event in clean.events:
        if event["event_type"] == "profile":
            snapshots[event["actor_id"]].append(event)
        else:
            first_active.setdefault(event["actor_id"], event["event_ts"][:10])
    assert set(snapshots) == set(first_active)
    for user, taken in snapshots.items():
        days = [date.fromisoformat(e["event_ts"][:10]) for e in taken]
        assert days[0].isoformat() == first_active[user]
        assert all(6 <= (later - earlier).days <= 8 for earlier, later in zip(days, days[1:], strict=False))
    drifting = [taken for taken in snapshots.values() if len(taken) >= 3]
    assert (
        sum(taken[0]["followers_count"] != taken[-1]["followers_count"] for taken in drifting)
        > len(drifting) / 2
    )


# ---------------------------------------------------------------- statistical shape
def test_engagement_is_heavy_tailed(clean):
    received = np.array(sorted(clean.engagement_received().values(), reverse=True))
    top = max(1, len(clean.accounts) // 100)
    assert received[:top].sum() / received.sum() > 0.2


def test_audience_sizes_are_heavy_tailed(clean):
    followers = {}
    for event in clean.events:
        if event["event_type"] == "profile":
            followers[event["actor_id"]] = event["followers_count"]
    values = np.array(sorted(followers.values(), reverse=True))
    assert values[: max(1, len(values) // 100)].sum() / values.sum() > 0.15
    assert values.max() > 20 * np.median(values)


def test_engagement_rises_with_latent_influence(clean):
    received = clean.engagement_received()
    genuine = clean.role("genuine")
    influence = [float(clean.accounts[user]["latent_influence"]) for user in genuine]
    assert spearman(influence, [received[user] for user in genuine]) > 0.5


def test_engagers_share_the_topic_of_the_post(clean):
    interests = collections.defaultdict(set)
    for row in read_csv(clean.dir / "_ground_truth" / "topics.csv"):
        interests[row["user_id"]].add(row["topic"])
    topic_of = {
        e["post_id"]: e["hashtags"][0] for e in clean.events if e["event_type"] == "post" and e["hashtags"]
    }
    genuine = set(clean.role("genuine"))
    likes = [
        e
        for e in clean.events
        if e["event_type"] == "like" and e["parent_post_id"] in topic_of and e["actor_id"] in genuine
    ]
    on_topic = sum(topic_of[e["parent_post_id"]] in interests[e["actor_id"]] for e in likes) / len(likes)
    # If engagers ignored topics, a like would land on a covered topic as often as a random
    # genuine account covers the post's topic.
    covering = collections.Counter(topic for user in genuine for topic in interests[user])
    by_chance = sum(covering[topic_of[e["parent_post_id"]]] / len(genuine) for e in likes) / len(likes)
    assert on_topic > 2.5 * by_chance


def test_daily_and_weekly_rhythm(clean):
    organic = [e for e in clean.events if e["event_type"] in ("like", "post", "reply")]
    hours = collections.Counter(int(e["event_ts"][11:13]) for e in organic)
    assert min(hours[h] for h in range(17, 22)) > 2.5 * max(hours[h] for h in range(2, 6))
    per_day = collections.Counter(e["event_ts"][:10] for e in organic)
    weekday, weekend = [], []
    for day, count in per_day.items():
        if day == START.isoformat():
            continue  # the first day also carries the first profile of every account
        (weekend if date.fromisoformat(day).weekday() >= 5 else weekday).append(count)
    assert np.mean(weekend) < 0.95 * np.mean(weekday)


# ---------------------------------------------------------------- planted patterns
def test_inactive_accounts_only_ever_follow(clean):
    inactive = clean.role("inactive")
    assert inactive
    kinds = {e["event_type"] for user in inactive for e in clean.by_actor(user)}
    assert kinds == {"follow"}
    assert all(clean.by_actor(user) for user in inactive)


def test_spam_bots_engage_in_bulk_with_random_accounts(clean):
    bots = clean.role("spam_bot")
    activity = collections.Counter(e["actor_id"] for e in clean.events if e["event_type"] != "profile")
    genuine_median = np.median([activity[user] for user in clean.role("genuine")])
    for bot in bots:
        events = clean.by_actor(bot)
        assert len(events) > 4 * genuine_median
        assert len({e["subject_id"] for e in events if e["event_type"] == "mention"}) > 20
        assert {"like", "mention", "post"} <= {e["event_type"] for e in events}
        texts = [e["text"] for e in events if e["event_type"] == "post"]
        templates = {re.sub(r"\d+", "N", text.split(" #")[0]) for text in texts}
        assert len(templates) <= 3 < len(texts)
        assert all(
            {"giveaway", "followback"} & set(e["hashtags"]) for e in events if e["event_type"] == "post"
        )


def test_bought_followers_follow_the_target_and_never_engage(clean):
    (target,) = clean.role("bought_follower_target")
    bought = clean.role("bought_follower")
    window_start = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    for user in bought:
        events = clean.by_actor(user, profiles=True)
        assert {e["event_type"] for e in events} <= {"follow", "profile"}
        assert any(e["event_type"] == "follow" and e["subject_id"] == target for e in events)
        created = next(e for e in events if e["event_type"] == "profile")["account_created_at"]
        assert parse_ts(created) >= window_start
    engaged = {e["actor_id"] for e in clean.events if e["event_type"] in ENGAGEMENT_TYPES}
    assert not engaged & set(bought)


def test_pods_engage_each_other_reciprocally(clean):
    pods = collections.defaultdict(set)
    for row in read_csv(clean.dir / "_ground_truth" / "pods.csv"):
        pods[row["pod_id"]].add(row["user_id"])
    assert pods and all(5 <= len(members) <= 50 for members in pods.values())
    assert set().union(*pods.values()) == set(clean.role("pod_member"))
    for members in pods.values():
        pairs = collections.Counter(
            (e["actor_id"], e["subject_id"])
            for e in clean.events
            if e["event_type"] in ("reshare", "reply")
            and e["actor_id"] in members
            and e["subject_id"] in members
        )
        reciprocal = sum(1 for a, b in pairs if (b, a) in pairs)
        assert reciprocal / len(pairs) > 0.5
        # Per account, a member reshares a mate far more than anybody else on the network.
        network = clean.accounts[next(iter(members))]["network"]
        others = sum(1 for row in clean.accounts.values() if row["network"] == network) - len(members)
        outgoing = [e for e in clean.events if e["event_type"] == "reshare" and e["actor_id"] in members]
        to_mates = sum(e["subject_id"] in members for e in outgoing)
        assert to_mates / (len(members) - 1) > 20 * (len(outgoing) - to_mates) / others


def test_sybil_farm_is_fresh_and_boosts_one_target(clean):
    (target,) = clean.role("sybil_target")
    sybils = set(clean.role("sybil"))
    window_start = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    for user in sybils:
        created = next(e for e in clean.by_actor(user, profiles=True) if e["event_type"] == "profile")
        assert parse_ts(created["account_created_at"]) >= window_start
    boosters = {
        e["actor_id"]
        for e in clean.events
        if e["subject_id"] == target and e["actor_id"] in sybils and e["event_type"] in ("like", "reshare")
    }
    assert len(boosters) > 0.9 * len(sybils)
    followers = {
        e["actor_id"] for e in clean.events if e["event_type"] == "follow" and e["subject_id"] == target
    }
    assert sybils <= followers
    among = [e for e in clean.events if e["actor_id"] in sybils and e["subject_id"] in sybils]
    assert {"follow", "like", "reshare"} <= {e["event_type"] for e in among}


def test_one_post_about_aviaries_with_some_genuine_engagement(clean):
    (author,) = clean.role("one_post_topic")
    aviaries = [e for e in clean.events if "aviaries" in e["hashtags"]]
    assert len(aviaries) == 1
    (post,) = aviaries
    assert post["actor_id"] == author and post["event_type"] == "post"
    assert [e["event_type"] for e in clean.by_actor(author)] == ["post"]
    engagers = {e["actor_id"] for e in clean.events if e["parent_post_id"] == post["post_id"]}
    assert len(engagers) >= 10
    assert all(clean.accounts[user]["role"] == "genuine" for user in engagers)
    topics = {row["topic"] for row in read_csv(clean.dir / "_ground_truth" / "topics.csv")}
    assert "aviaries" not in topics


def test_roles_cover_every_planted_pattern_and_ids_hide_them(clean):
    roles = collections.Counter(row["role"] for row in clean.accounts.values())
    assert set(roles) == {
        "genuine",
        "inactive",
        "spam_bot",
        "bought_follower_target",
        "bought_follower",
        "pod_member",
        "sybil",
        "sybil_target",
        "one_post_topic",
    }
    fake = [int(u.rsplit(":", 1)[1]) for u in clean.role("bought_follower")]
    assert np.ptp(fake) > 0.5 * len(clean.accounts), "fake accounts must not sit in one id block"
    assert all(float(clean.accounts[u]["latent_influence"]) == 0 for u in clean.role("spam_bot"))


def test_identities_link_one_account_per_network(clean):
    rows = read_csv(clean.dir / "_identities.csv")
    persons = collections.defaultdict(list)
    for row in rows:
        assert row["user_id"] in clean.accounts
        assert row["user_id"].startswith(PREFIX[row["network"]] + ":u:")
        persons[row["person_id"]].append(row["network"])
    assert persons and all(sorted(networks) == ["reddit", "twitter"] for networks in persons.values())


# ---------------------------------------------------------------- dirty data
def test_dirty_lines_at_the_requested_rate_and_counted(dirty):
    counts = {row["kind"]: int(row["count"]) for row in read_csv(dirty.dir / "_ground_truth" / "dirty.csv")}
    assert set(counts) == set(DIRTY_KINDS) and all(counts[kind] > 0 for kind in DIRTY_KINDS)
    found = collections.Counter()
    seen_ids: dict[str, str] = {}
    end_of_window = datetime.combine(END + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    for folder, line in dirty.raw:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            found["malformed_json"] += 1
            continue
        if not {"event_id", "network", "event_type", "event_ts", "actor_id"} <= set(event):
            found["missing_field"] += 1
            continue
        if (
            not isinstance(event["actor_id"], str)
            or not isinstance(event["hashtags"], list)
            or not isinstance(event["event_ts"], str)
            or not TS_PATTERN.match(event["event_ts"])
        ):
            found["wrong_type"] += 1
            continue
        if parse_ts(event["event_ts"]) >= end_of_window:
            found["future_timestamp"] += 1
            continue
        if event["event_id"] in seen_ids:
            assert seen_ids[event["event_id"]] < folder, "a duplicate must sit in a later day's file"
            found["duplicate"] += 1
            continue
        seen_ids[event["event_id"]] = folder
    assert dict(found) == counts
    rate = sum(counts.values()) / len(dirty.raw)
    assert 0.05 * 0.7 <= rate <= 0.05 * 1.3
    assert dirty.summary.events_written == len(dirty.raw)


# ---------------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"size": "XXL"}, "size"),
        ({"seed": -1}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"days": 0}, "days"),
        ({"days": 2.5}, "days"),
        ({"end_date": "2026-10-31"}, "end_date"),
        ({"events": 10}, "events"),
        ({"events": True}, "events"),
        ({"fmt": "csv"}, "fmt"),
        ({"dirty_rate": -0.1}, "dirty_rate"),
        ({"dirty_rate": 0.9}, "dirty_rate"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(tmp_path, kwargs, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter}:"):
        generate_dump(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- platform formats
def _canonical_posts(clean: Dump, network: str) -> dict[int, dict]:
    return {
        post_number(e["post_id"]): e
        for e in clean.events
        if e["network"] == network and e["event_type"] in ("post", "reply", "reshare", "quote")
    }


def _canonical_mentions(clean: Dump) -> dict[str, set[int]]:
    mentions = collections.defaultdict(set)
    for e in clean.events:
        if e["event_type"] == "mention":
            mentions[e["post_id"]].add(int(e["subject_id"].rsplit(":", 1)[1]))
    return mentions


def test_twitter_format_is_the_twitter_side_of_the_same_world(clean, tmp_path):
    summary = generate_dump(tmp_path, events=EVENTS, seed=SEED, fmt="twitter")
    tweets = [json.loads(line) for _, line in read_lines(tmp_path)]
    assert summary.events_written == len(tweets) > 0
    expected = _canonical_posts(clean, "twitter")
    assert {int(t["id_str"]) for t in tweets} == set(expected)
    mentions = _canonical_mentions(clean)
    for tweet in tweets:
        event = expected[int(tweet["id_str"])]
        user = tweet["user"]
        assert user["id_str"] == event["actor_id"].rsplit(":", 1)[1]
        assert {
            "screen_name",
            "followers_count",
            "friends_count",
            "listed_count",
            "statuses_count",
            "verified",
            "created_at",
        } <= set(user)
        created = datetime.strptime(tweet["created_at"], "%a %b %d %H:%M:%S +0000 %Y")
        assert created.strftime("%Y-%m-%dT%H:%M:%SZ") == event["event_ts"]
        parent = event["parent_post_id"] and event["parent_post_id"].rsplit(":", 1)[1]
        subject = event["subject_id"] and event["subject_id"].rsplit(":", 1)[1]
        kind = event["event_type"]
        if kind == "reshare":
            assert tweet["retweeted_status"]["id_str"] == parent
            assert tweet["retweeted_status"]["user"]["id_str"] == subject
        elif kind == "quote":
            assert (
                tweet["quoted_status_id_str"] == parent
                and tweet["quoted_status"]["user"]["id_str"] == subject
            )
        elif kind == "reply":
            assert (tweet["in_reply_to_status_id_str"], tweet["in_reply_to_user_id_str"]) == (parent, subject)
        else:
            assert tweet["in_reply_to_status_id_str"] is None and "retweeted_status" not in tweet
        if kind != "reshare":
            assert [h["text"] for h in tweet["entities"]["hashtags"]] == event["hashtags"]
            mentioned = {int(m["id_str"]) for m in tweet["entities"]["user_mentions"]}
            replied_to = {int(subject)} if kind == "reply" else set()
            assert mentioned == mentions.get(event["post_id"], set()) | replied_to
            for entity in tweet["entities"]["user_mentions"]:
                start, stop = entity["indices"]
                assert tweet["text"][start:stop] == "@" + entity["screen_name"]


def test_reddit_format_is_the_reddit_side_of_the_same_world(clean, tmp_path):
    summary = generate_dump(tmp_path, events=EVENTS, seed=SEED, fmt="reddit")
    records = [json.loads(line) for _, line in read_lines(tmp_path)]
    assert summary.events_written == len(records) > 0
    expected = _canonical_posts(clean, "reddit")
    assert {int(r["id"], 36) for r in records} == set(expected)
    kinds = collections.Counter()
    for record in records:
        event = expected[int(record["id"], 36)]
        kinds[event["event_type"]] += 1
        assert int(record["author_fullname"][3:], 36) == int(event["actor_id"].rsplit(":", 1)[1])
        assert (
            datetime.fromtimestamp(record["created_utc"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            == event["event_ts"]
        )
        assert record["subreddit"] and isinstance(record["author"], str)
        if event["event_type"] == "reply":
            assert record["name"].startswith("t1_") and record["link_id"].startswith("t3_")
            assert int(record["parent_id"][3:], 36) == post_number(event["parent_post_id"])
            assert "body" in record
        else:
            assert record["name"].startswith("t3_") and "title" in record
            if event["event_type"] == "reshare":
                assert int(record["crosspost_parent"][3:], 36) == post_number(event["parent_post_id"])
    assert kinds["post"] and kinds["reply"]
    assert not {"like", "follow", "profile", "mention"} & set(kinds)


@pytest.mark.parametrize("fmt", ["twitter", "reddit"])
def test_platform_formats_are_deterministic_and_take_dirt(tmp_path, fmt):
    first = generate_dump(tmp_path / "a", events=EVENTS, seed=5, days=4, fmt=fmt, dirty_rate=0.1)
    generate_dump(tmp_path / "b", events=EVENTS, seed=5, days=4, fmt=fmt, dirty_rate=0.1)
    for path in first.files:
        assert (
            Path(path).read_bytes() == (tmp_path / "b" / Path(path).relative_to(tmp_path / "a")).read_bytes()
        )
    counts = {
        row["kind"]: int(row["count"]) for row in read_csv(tmp_path / "a" / "_ground_truth" / "dirty.csv")
    }
    assert 0.1 * 0.7 <= sum(counts.values()) / first.events_written <= 0.1 * 1.3
    unparsable = 0
    for _, line in read_lines(tmp_path / "a"):
        try:
            json.loads(line)
        except json.JSONDecodeError:
            unparsable += 1
    assert unparsable == counts["malformed_json"]
