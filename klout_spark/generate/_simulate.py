"""Day-by-day simulation of activity on the world drawn by :mod:`._population`.

Each call to :meth:`Simulator.simulate_day` returns the events of one day as
parallel numpy arrays (:class:`DayEvents`), already sorted by time and carrying
their event ids. Only a few days of recent posts and per-account counters are
kept between days, so memory is bounded by the size of one day.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from klout_spark.generate import _vocab as V
from klout_spark.generate._population import (
    POD_ENGAGE_PROBABILITY,
    POD_SHARE,
    SECONDS_PER_DAY,
    Population,
    WeightedSampler,
    WorldPlan,
)

# First post id inside the window; ids below it belong to posts written before the window.
FIRST_WINDOW_POST_ID = 1_000_000_000
_FIRST_PRE_WINDOW_POST_ID = FIRST_WINDOW_POST_ID - 50_000_000
# Same-day posts are written no later than this, so engagement can follow within the day.
_LAST_POST_SECOND = SECONDS_PER_DAY - 60
# Posts stay engageable for this many days after the day they were written.
_POOL_DAYS = 3
_RECENCY_WEIGHT = np.array([1.0, 0.35, 0.1, 0.03])
# Monday..Sunday activity factors and an hour-of-day (UTC) profile.
_WEEKDAY_WEIGHT = np.array([1.0, 1.03, 1.04, 1.02, 0.97, 0.82, 0.8])
_HOUR_WEIGHT = np.array(
    [
        0.5,
        0.4,
        0.3,
        0.25,
        0.25,
        0.3,
        0.45,
        0.65,
        0.85,
        1.0,
        1.05,
        1.1,
        1.15,
        1.15,
        1.15,
        1.2,
        1.25,
        1.3,
        1.35,
        1.4,
        1.35,
        1.2,
        0.95,
        0.7,
    ]
)
# Share of organic events by type, per network (mentions come on top, from posts).
_ORGANIC_MIX = {
    V.TWITTER: {
        V.POST: 0.13,
        V.REPLY: 0.09,
        V.RESHARE: 0.09,
        V.QUOTE: 0.025,
        V.LIKE: 0.47,
        V.FOLLOW: 0.10,
        V.UNFOLLOW: 0.012,
        V.LIST_ADD: 0.015,
    },
    V.REDDIT: {
        V.POST: 0.12,
        V.REPLY: 0.24,
        V.RESHARE: 0.02,
        V.QUOTE: 0.0,
        V.LIKE: 0.54,
        V.FOLLOW: 0.06,
        V.UNFOLLOW: 0.01,
        V.LIST_ADD: 0.0,
    },
}
_ORGANIC_MIX[V.FACEBOOK] = {
    V.POST: 0.14, V.REPLY: 0.16, V.RESHARE: 0.04, V.QUOTE: 0.0, V.LIKE: 0.58, V.FOLLOW: 0.08,
    V.UNFOLLOW: 0.0, V.LIST_ADD: 0.0,
}
_ORGANIC_MIX[V.LINKEDIN] = {
    V.POST: 0.12, V.REPLY: 0.12, V.RESHARE: 0.04, V.QUOTE: 0.02, V.LIKE: 0.55, V.FOLLOW: 0.15,
    V.UNFOLLOW: 0.0, V.LIST_ADD: 0.0,
}
_MENTION_PROBABILITY = {V.TWITTER: 0.2, V.REDDIT: 0.04, V.FACEBOOK: 0.1, V.LINKEDIN: 0.0}
# Probability that an original post carries its topic as a hashtag (Reddit: always, the subreddit).
_TAG_PROBABILITY = {V.TWITTER: 0.7, V.REDDIT: 1.0, V.FACEBOOK: 0.4, V.LINKEDIN: 0.6}
_TOPIC_ENGAGEMENT_SHARE = 0.8
# Budget shares of the planted patterns (fractions of all events).
_SPAM_SHARE = 0.06

_COLUMNS = ("etype", "ts", "actor", "subject", "post", "parent", "text", "tag0", "tag1")
_DTYPES = {
    "etype": np.int8,
    "ts": np.int32,
    "actor": np.int64,
    "subject": np.int64,
    "post": np.int64,
    "parent": np.int64,
    "text": np.int32,
    "tag0": np.int16,
    "tag1": np.int16,
}


@dataclass
class DayEvents:
    """The events of one day, sorted by time, as parallel arrays.

    Attributes
    ----------
    day_index : int
        Position of the day in the window (0 = first day).
    day : datetime.date
    etype, ts, actor, subject, post, parent, text, tag0, tag1 : numpy.ndarray
        Event type code, second of the day, actor and subject account numbers,
        own post id and parent post id (numbers, -1 = none), text index in the
        text pool and two hashtag codes (-1 = none).
    event_number : numpy.ndarray
        Per-network event number (the ``123`` of ``tw:e:123``).
    profile_row : numpy.ndarray
        For profile events, the row in the ``profile_*`` arrays; -1 otherwise.
    profile_followers, profile_following, profile_listed, profile_posts : numpy.ndarray
    profile_created_at : numpy.ndarray
        Epoch seconds.
    profile_verified : numpy.ndarray of bool
    """

    day_index: int
    day: date
    etype: np.ndarray
    ts: np.ndarray
    actor: np.ndarray
    subject: np.ndarray
    post: np.ndarray
    parent: np.ndarray
    text: np.ndarray
    tag0: np.ndarray
    tag1: np.ndarray
    event_number: np.ndarray
    profile_row: np.ndarray
    profile_followers: np.ndarray
    profile_following: np.ndarray
    profile_listed: np.ndarray
    profile_posts: np.ndarray
    profile_created_at: np.ndarray
    profile_verified: np.ndarray

    def __len__(self) -> int:
        return len(self.etype)


class _Batch:
    """Collects event rows of one day as column chunks."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}
        self.planted_rows = 0

    def add(
        self, etype: int, actor: np.ndarray, ts: np.ndarray, *, planted: bool = False, **columns: np.ndarray
    ) -> None:
        """Append rows of one event type; omitted columns are filled with -1.

        ``planted`` rows belong to a manipulation pattern: they count against the day's
        budget before the organic activity is sized.
        """
        count = len(actor)
        if count == 0:
            return
        self.chunks["etype"].append(np.full(count, etype, dtype=np.int8))
        self.chunks["actor"].append(np.asarray(actor, dtype=np.int64))
        self.chunks["ts"].append(np.asarray(ts, dtype=np.int32))
        for name in _COLUMNS[3:]:
            values = columns.get(name)
            self.chunks[name].append(
                np.full(count, -1, dtype=_DTYPES[name])
                if values is None
                else np.asarray(values, dtype=_DTYPES[name])
            )
        if planted:
            self.planted_rows += count

    def columns(self) -> dict[str, np.ndarray]:
        return {
            name: (np.concatenate(parts) if parts else np.empty(0, dtype=_DTYPES[name]))
            for name, parts in self.chunks.items()
        }


class _PostPool:
    """Recent engageable posts of one network with their engagement weight."""

    def __init__(self) -> None:
        self.post = np.empty(0, dtype=np.int64)
        self.author = np.empty(0, dtype=np.int64)
        self.topic = np.empty(0, dtype=np.int16)
        self.day = np.empty(0, dtype=np.int32)
        self.ts = np.empty(0, dtype=np.int32)
        self.weight = np.empty(0, dtype=np.float64)

    def add(self, post, author, topic, day: int, ts, weight) -> None:
        """Make posts written on ``day`` engageable, with their base engagement weight."""
        self.post = np.concatenate([self.post, post])
        self.author = np.concatenate([self.author, author])
        self.topic = np.concatenate([self.topic, np.asarray(topic, dtype=np.int16)])
        self.day = np.concatenate([self.day, np.full(len(post), day, dtype=np.int32)])
        self.ts = np.concatenate([self.ts, np.asarray(ts, dtype=np.int32)])
        self.weight = np.concatenate([self.weight, weight])

    def keep_from(self, first_day: int) -> None:
        keep = self.day >= first_day
        for name in ("post", "author", "topic", "day", "ts", "weight"):
            setattr(self, name, getattr(self, name)[keep])

    def __len__(self) -> int:
        return len(self.post)


def _sorted_contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Membership of ``keys`` in the sorted array ``sorted_keys`` (binary search, no re-sorting)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    positions = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[positions] == keys


def day_weights(start_date: date, days: int) -> np.ndarray:
    """Relative activity of each day of the window (weekly rhythm plus a slight growth trend)."""
    weekdays = np.array([(start_date + timedelta(days=offset)).weekday() for offset in range(days)])
    trend = 1.0 + 0.1 * np.arange(days) / max(days, 1)
    return _WEEKDAY_WEIGHT[weekdays] * trend


class Simulator:
    """Generate the events of a window day by day.

    Parameters
    ----------
    population : Population
        The world.
    plan : WorldPlan
        Sizes and event budget.
    text_pool : klout_spark.generate._vocab.TextPool
        Texts to draw from (only its index ranges are used here).
    rng : numpy.random.Generator
        Source of randomness; consumed in a fixed order.
    start_date : datetime.date
        First day of the window.
    """

    def __init__(
        self,
        population: Population,
        plan: WorldPlan,
        text_pool: V.TextPool,
        rng: np.random.Generator,
        start_date: date,
    ) -> None:
        self.pop = population
        self.plan = plan
        self.texts = text_pool
        self.rng = rng
        self.start_date = start_date
        self.weights = day_weights(start_date, plan.days)
        n = population.size
        self.n_covers = (population.covers >= 0).sum(axis=1)
        self.followers_delta = np.zeros(n, dtype=np.int64)
        self.following_delta = np.zeros(n, dtype=np.int64)
        self.listed_delta = np.zeros(n, dtype=np.int64)
        self.posts_delta = np.zeros(n, dtype=np.int64)
        self.next_profile_day = np.full(n, -1, dtype=np.int32)
        # Follow edges made inside the window (actor * n + subject): sorted, plus today's additions.
        self.follow_keys = np.empty(0, dtype=np.int64)
        self.todays_follow_keys: list[np.ndarray] = []
        self.recent_like_keys: deque[np.ndarray] = deque(maxlen=_POOL_DAYS)
        self.recent_reshare_keys: deque[np.ndarray] = deque(maxlen=_POOL_DAYS)
        # Networks of this world, in code order (Twitter and Reddit, then the optional ones).
        self.networks = tuple(int(code) for code in np.unique(population.network))
        n_networks = len(V.NETWORKS)
        self.next_post_id = [FIRST_WINDOW_POST_ID] * n_networks
        self.next_pre_window_post_id = [_FIRST_PRE_WINDOW_POST_ID] * n_networks
        self.next_event_number = [1] * n_networks
        self.events_so_far = 0
        self.new_profiles_last_day = 0
        self.hours = WeightedSampler(np.arange(24), _HOUR_WEIGHT)
        self._build_samplers()
        self.pools = [_PostPool() for _ in V.NETWORKS]
        self._seed_pre_window_posts()

    # ------------------------------------------------------------------ setup
    def _build_samplers(self) -> None:
        pop = self.pop
        organic = pop.is_organic()
        # Indexed by network code; networks absent from the world keep None.
        slots = len(V.NETWORKS)
        self.posters: list[WeightedSampler] = [None] * slots
        self.engagers: list[WeightedSampler] = [None] * slots
        self.topic_engagers: list[list[WeightedSampler]] = [None] * slots
        self.followable: list[WeightedSampler] = [None] * slots
        self.listable: list[WeightedSampler] = [None] * slots
        self.network_accounts: list[np.ndarray] = [None] * slots
        self.organic_share = np.zeros(len(V.NETWORKS))
        post_rate = pop.post_rate.copy()
        # The sybil target's posts are scheduled by the sybil step (daily), not drawn here.
        post_rate[pop.sybil_target] = 0.0
        for network in self.networks:
            in_network = pop.network == network
            accounts = np.nonzero(in_network)[0]
            self.network_accounts[network] = accounts
            posters = np.nonzero(in_network & (post_rate > 0))[0]
            self.posters[network] = WeightedSampler(posters, post_rate[posters])
            engagers = np.nonzero(in_network & organic & (pop.engage_rate > 0))[0]
            self.engagers[network] = WeightedSampler(engagers, pop.engage_rate[engagers])
            per_topic = []
            for topic in range(V.N_TOPICS):
                interested = engagers[(pop.interests[engagers] == topic).any(axis=1)]
                # Readers who also write about the topic engage with it twice as readily.
                writes_about = (pop.covers[interested] == topic).any(axis=1)
                per_topic.append(
                    WeightedSampler(interested, pop.engage_rate[interested] * (1.0 + writes_about))
                )
            self.topic_engagers[network] = per_topic
            known = np.nonzero(in_network & (pop.influence > 0))[0]
            self.followable[network] = WeightedSampler(known, pop.influence[known])
            self.listable[network] = WeightedSampler(known, pop.influence[known] ** 1.3)
            self.organic_share[network] = pop.post_rate[posters].sum() + pop.engage_rate[engagers].sum()
        self.organic_share /= self.organic_share.sum()

    def _seed_pre_window_posts(self) -> None:
        """Posts written in the days before the window: early engagement points at them."""
        daily_posts = self.plan.target_events / self.plan.days * 0.13
        for network in self.networks:
            for age in range(_POOL_DAYS, 0, -1):
                count = self.rng.poisson(daily_posts * self.organic_share[network])
                authors = self.posters[network].draw(self.rng, count)
                post_ids = np.arange(count, dtype=np.int64) + self.next_pre_window_post_id[network]
                self.next_pre_window_post_id[network] += count
                self.pools[network].add(
                    post_ids,
                    authors,
                    self._cover_topic(authors),
                    -age,
                    self._rhythm_ts(count),
                    self.pop.influence[authors],
                )

    # ------------------------------------------------------------------ small helpers
    def _rhythm_ts(self, count: int) -> np.ndarray:
        return self.hours.draw(self.rng, count) * 3600 + self.rng.integers(0, 3600, size=count)

    def _post_ts(self, count: int) -> np.ndarray:
        return np.minimum(self._rhythm_ts(count), _LAST_POST_SECOND)

    def _after(self, parent_ts: np.ndarray, mean_delay: float) -> np.ndarray:
        parent_ts = np.asarray(parent_ts, dtype=np.int64)
        delay = 1 + np.floor(self.rng.exponential(mean_delay, size=len(parent_ts))).astype(np.int64)
        # Past midnight the reaction is moved to a random moment of what is left of the day,
        # instead of piling up at 23:59:59.
        room = SECONDS_PER_DAY - 1 - parent_ts
        squeezed = 1 + np.floor(self.rng.random(len(parent_ts)) * room).astype(np.int64)
        return parent_ts + np.where(delay <= room, delay, np.maximum(squeezed, 1))

    def _cover_topic(self, accounts: np.ndarray) -> np.ndarray:
        column = np.floor(self.rng.random(len(accounts)) * self.n_covers[accounts]).astype(np.int64)
        return self.pop.covers[accounts, column]

    def _new_post_ids(self, network: int, count: int) -> np.ndarray:
        ids = np.arange(count, dtype=np.int64) + self.next_post_id[network]
        self.next_post_id[network] += count
        return ids

    def _hashtag(self, network: int, topics: np.ndarray, probability: float) -> np.ndarray:
        if network == V.REDDIT:
            return topics.astype(np.int16)
        return np.where(self.rng.random(len(topics)) < probability, topics, -1).astype(np.int16)

    def _draw_pool(self, day: int, network: int, count: int, *, uniform: bool = False) -> np.ndarray:
        pool = self.pools[network]
        if len(pool) == 0 or count == 0:
            return np.empty(0, dtype=np.int64)
        if uniform:
            return self.rng.integers(0, len(pool), size=count)
        weights = pool.weight * _RECENCY_WEIGHT[np.minimum(day - pool.day, len(_RECENCY_WEIGHT) - 1)]
        return WeightedSampler(np.arange(len(pool)), weights).draw(self.rng, count)

    def _engagement_ts(
        self, day: int, network: int, targets: np.ndarray, *, rhythm: bool = True
    ) -> np.ndarray:
        """Times for engagements with pool posts: after the post when it was written today."""
        pool = self.pools[network]
        count = len(targets)
        ts = self._rhythm_ts(count) if rhythm else self.rng.integers(0, SECONDS_PER_DAY, size=count)
        same_day = pool.day[targets] == day
        too_early = same_day & (ts <= pool.ts[targets])
        ts[too_early] = self._after(pool.ts[targets][too_early].astype(np.int64), 5400.0)
        return ts

    def _engagers_for(self, network: int, topics: np.ndarray) -> np.ndarray:
        """Engagers for posts on ``topics``: mostly readers of the topic, some random browsers."""
        count = len(topics)
        engagers = np.empty(count, dtype=np.int64)
        by_topic = self.rng.random(count) < _TOPIC_ENGAGEMENT_SHARE
        browsing = np.nonzero(~by_topic)[0]
        engagers[browsing] = self.engagers[network].draw(self.rng, len(browsing))
        topic_rows = np.nonzero(by_topic)[0]
        row_topics = topics[topic_rows]
        for topic in np.unique(row_topics):
            rows = topic_rows[row_topics == topic]
            sampler = self.topic_engagers[network][topic]
            engagers[rows] = (self.engagers[network] if sampler.empty else sampler).draw(self.rng, len(rows))
        return engagers

    def _mentions(self, batch: _Batch, network: int, actors, post_ids, ts, probability: float) -> None:
        first = self.rng.random(len(actors)) < probability
        second = first & (self.rng.random(len(actors)) < 0.3)
        rows = np.concatenate([np.nonzero(first)[0], np.nonzero(second)[0]])
        subjects = self.followable[network].draw(self.rng, len(rows))
        rows, subjects = self._unique_pairs(rows, subjects, post_ids, actors)
        batch.add(V.MENTION, actors[rows], ts[rows], subject=subjects, post=post_ids[rows])

    def _unique_pairs(self, rows, subjects, post_ids, actors):
        """Drop self-mentions and repeated (post, subject) mentions, keeping row order."""
        keep = subjects != actors[rows]
        rows, subjects = rows[keep], subjects[keep]
        keys = post_ids[rows] * np.int64(self.pop.size) + subjects
        _, first_rows = np.unique(keys, return_index=True)
        first_rows.sort()
        return rows[first_rows], subjects[first_rows]

    def _new_follows(self, actors: np.ndarray, subjects: np.ndarray):
        """Keep follows that are not self-follows and not already in place; record them."""
        keys = actors * np.int64(self.pop.size) + subjects
        keep = (actors != subjects) & ~_sorted_contains(self.follow_keys, keys)
        if self.todays_follow_keys:
            keep &= ~np.isin(keys, np.concatenate(self.todays_follow_keys))
        _, first_rows = np.unique(keys, return_index=True)
        unique_rows = np.zeros(len(keys), dtype=bool)
        unique_rows[first_rows] = True
        keep &= unique_rows
        self.todays_follow_keys.append(keys[keep])
        return keep

    def _add_follows(self, batch: _Batch, actors, subjects, ts, *, planted: bool) -> None:
        keep = self._new_follows(np.asarray(actors, dtype=np.int64), np.asarray(subjects, dtype=np.int64))
        batch.add(V.FOLLOW, actors[keep], ts[keep], subject=subjects[keep], planted=planted)

    # ------------------------------------------------------------------ behaviours
    def _organic(self, batch: _Batch, day: int, network: int, budget: float) -> None:
        """Organic posting and engagement of one network within ``budget`` events."""
        rng, pop, mix = self.rng, self.pop, _ORGANIC_MIX[network]
        pool = self.pools[network]
        n_posts = rng.poisson(budget * mix[V.POST])
        authors = self.posters[network].draw(rng, n_posts)
        topics = self._cover_topic(authors)
        ts = self._post_ts(n_posts)
        post_ids = self._new_post_ids(network, n_posts)
        tags = self._hashtag(network, topics, _TAG_PROBABILITY[network])
        second_topic = self._cover_topic(authors)
        tag1 = np.where(
            (tags >= 0) & (second_topic != topics) & (rng.random(n_posts) < 0.3), second_topic, -1
        )
        if network == V.REDDIT:
            tag1[:] = -1
        batch.add(
            V.POST, authors, ts, post=post_ids, text=self.texts.topic_posts(rng, topics), tag0=tags, tag1=tag1
        )
        self._mentions(batch, network, authors, post_ids, ts, _MENTION_PROBABILITY[network])
        pool.add(post_ids, authors, topics, day, ts, pop.influence[authors])

        engagement_types = np.array([V.LIKE, V.REPLY, V.RESHARE, V.QUOTE])
        shares = np.array([mix[code] for code in engagement_types])
        n_engagements = rng.poisson(budget * shares.sum())
        targets = self._draw_pool(day, network, n_engagements)
        authors = pool.author[targets]
        engagers = self._engagers_for(network, pool.topic[targets].astype(np.int64))
        collide = engagers == authors
        engagers[collide] = self.engagers[network].draw(rng, int(collide.sum()))
        keep = engagers != authors
        targets, authors, engagers = targets[keep], authors[keep], engagers[keep]
        ts = self._engagement_ts(day, network, targets)
        kinds = engagement_types[
            np.searchsorted(np.cumsum(shares / shares.sum()), rng.random(len(targets)), side="right").clip(
                0, 3
            )
        ]
        parents, topics = pool.post[targets], pool.topic[targets].astype(np.int64)
        for kind in engagement_types:
            rows = np.nonzero(kinds == kind)[0]
            if kind == V.LIKE:
                batch.add(V.LIKE, engagers[rows], ts[rows], subject=authors[rows], parent=parents[rows])
                continue
            own_posts = self._new_post_ids(network, len(rows))
            text = tag0 = None
            if kind == V.REPLY:
                text = self.texts.topic_replies(rng, topics[rows])
                tag0 = self._hashtag(network, topics[rows], 0.2)
            elif kind == V.QUOTE:
                text = self.texts.topic_posts(rng, topics[rows])
                tag0 = self._hashtag(network, topics[rows], 0.5)
            batch.add(
                kind,
                engagers[rows],
                ts[rows],
                subject=authors[rows],
                post=own_posts,
                parent=parents[rows],
                text=text,
                tag0=tag0,
            )
            if kind in (V.REPLY, V.QUOTE):
                self._mentions(
                    batch, network, engagers[rows], own_posts, ts[rows], _MENTION_PROBABILITY[network] / 2
                )
                pool.add(
                    own_posts,
                    engagers[rows],
                    topics[rows],
                    day,
                    ts[rows],
                    0.3 * pop.influence[engagers[rows]],
                )

        # Follows: some after engaging with an author, most by reputation.
        n_follows = rng.poisson(budget * mix[V.FOLLOW])
        from_engagement = min(int(0.3 * n_follows), len(engagers))
        picked = (
            rng.integers(0, len(engagers), size=from_engagement)
            if from_engagement
            else np.empty(0, dtype=np.int64)
        )
        followers = np.concatenate(
            [engagers[picked], self.engagers[network].draw(rng, n_follows - from_engagement)]
        )
        followed = np.concatenate(
            [authors[picked], self.followable[network].draw(rng, n_follows - from_engagement)]
        )
        self._add_follows(batch, followers, followed, self._rhythm_ts(len(followers)), planted=False)

        n_unfollows = rng.poisson(budget * mix[V.UNFOLLOW])
        if n_unfollows and len(self.follow_keys):
            actors = self.follow_keys // pop.size
            candidates = np.nonzero(
                np.isin(pop.role[actors], V.ORGANIC_ROLES) & (pop.network[actors] == network)
            )[0]
            chosen = (
                rng.choice(candidates, size=min(n_unfollows, len(candidates)), replace=False)
                if len(candidates)
                else candidates
            )
            chosen_keys = self.follow_keys[np.sort(chosen)]
            self.follow_keys = np.setdiff1d(self.follow_keys, chosen_keys, assume_unique=True)
            batch.add(
                V.UNFOLLOW,
                chosen_keys // pop.size,
                self._rhythm_ts(len(chosen_keys)),
                subject=chosen_keys % pop.size,
            )

        n_list_adds = rng.poisson(budget * mix[V.LIST_ADD])
        listers = self.engagers[network].draw(rng, n_list_adds)
        listed = self.listable[network].draw(rng, n_list_adds)
        keep = listers != listed
        batch.add(V.LIST_ADD, listers[keep], self._rhythm_ts(int(keep.sum())), subject=listed[keep])

    def _spam_bots(self, batch: _Batch, day: int) -> None:
        """High-volume, low-quality likes, mentions and follows of random accounts; near-duplicate posts."""
        rng, pop = self.rng, self.pop
        per_bot = _SPAM_SHARE * self.plan.target_events / self.plan.days / max(len(pop.spam_bots), 1)
        for network in self.networks:
            bots = pop.spam_bots[pop.network[pop.spam_bots] == network]
            if len(bots) == 0:
                continue
            accounts = self.network_accounts[network]
            likers = np.repeat(bots, rng.poisson(0.55 * per_bot, size=len(bots)))
            targets = self._draw_pool(day, network, len(likers), uniform=True)
            if len(targets):
                pool = self.pools[network]
                batch.add(
                    V.LIKE,
                    likers,
                    self._engagement_ts(day, network, targets, rhythm=False),
                    subject=pool.author[targets],
                    parent=pool.post[targets],
                    planted=True,
                )
            posters = np.repeat(bots, rng.poisson(0.12 * per_bot, size=len(bots)))
            post_ids = self._new_post_ids(network, len(posters))
            ts = rng.integers(0, SECONDS_PER_DAY, size=len(posters))
            hijacked = np.where(rng.random(len(posters)) < 0.7, rng.integers(0, 8, size=len(posters)), -1)
            batch.add(
                V.POST,
                posters,
                ts,
                post=post_ids,
                text=self.texts.spam(rng, len(posters)),
                tag0=np.where(rng.random(len(posters)) < 0.5, V.TAG_GIVEAWAY, V.TAG_FOLLOWBACK),
                tag1=hijacked,
                planted=True,
            )
            rows = np.repeat(np.arange(len(posters)), rng.integers(1, 4, size=len(posters)))
            subjects = accounts[rng.integers(0, len(accounts), size=len(rows))]
            rows, subjects = self._unique_pairs(rows, subjects, post_ids, posters)
            batch.add(V.MENTION, posters[rows], ts[rows], subject=subjects, post=post_ids[rows], planted=True)
            followers = np.repeat(bots, rng.poisson(0.09 * per_bot, size=len(bots)))
            followed = accounts[rng.integers(0, len(accounts), size=len(followers))]
            self._add_follows(
                batch,
                followers,
                followed,
                rng.integers(0, SECONDS_PER_DAY, size=len(followers)),
                planted=True,
            )

    def _pods(self, batch: _Batch, day: int) -> None:
        """Rings of accounts that reshare, reply to and like each other's posts within the hour."""
        rng, pop = self.rng, self.pop
        pod_budget = POD_SHARE * self.plan.target_events / self.plan.days / max(len(pop.pods), 1)
        for members, topic in zip(pop.pods, pop.pod_topics, strict=True):
            network = int(pop.network[members[0]])
            size = len(members)
            posts_per_member = pod_budget / (size * (1 + POD_ENGAGE_PROBABILITY * (size - 1)))
            author_pos = np.repeat(np.arange(size), rng.poisson(posts_per_member, size=size))
            authors = members[author_pos]
            n_posts = len(authors)
            topics = np.full(n_posts, topic, dtype=np.int64)
            ts = self._post_ts(n_posts)
            post_ids = self._new_post_ids(network, n_posts)
            batch.add(
                V.POST,
                authors,
                ts,
                post=post_ids,
                text=self.texts.topic_posts(rng, topics),
                tag0=self._hashtag(network, topics, 0.9),
                planted=True,
            )
            self.pools[network].add(post_ids, authors, topics, day, ts, pop.influence[authors])
            engages = rng.random((n_posts, size)) < POD_ENGAGE_PROBABILITY
            engages[np.arange(n_posts), author_pos] = False
            post_rows, engager_pos = np.nonzero(engages)
            engagers = members[engager_pos]
            when = self._after(ts[post_rows].astype(np.int64), 2400.0)
            kind_draw = rng.random(len(post_rows))
            for kind, low, high in ((V.RESHARE, 0.0, 0.4), (V.REPLY, 0.4, 0.7), (V.LIKE, 0.7, 1.0)):
                rows = np.nonzero((kind_draw >= low) & (kind_draw < high))[0]
                parents = post_ids[post_rows[rows]]
                if kind == V.LIKE:
                    batch.add(
                        V.LIKE,
                        engagers[rows],
                        when[rows],
                        subject=authors[post_rows[rows]],
                        parent=parents,
                        planted=True,
                    )
                    continue
                text = self.texts.topic_replies(rng, topics[post_rows[rows]]) if kind == V.REPLY else None
                tag0 = self._hashtag(network, topics[post_rows[rows]], 0.5) if kind == V.REPLY else None
                batch.add(
                    kind,
                    engagers[rows],
                    when[rows],
                    subject=authors[post_rows[rows]],
                    post=self._new_post_ids(network, len(rows)),
                    parent=parents,
                    text=text,
                    tag0=tag0,
                    planted=True,
                )

    def _sybils(self, batch: _Batch, day: int) -> None:
        """A farm of fresh accounts boosting one target and each other."""
        rng, pop = self.rng, self.pop
        network = V.TWITTER
        target = pop.sybil_target
        active = pop.sybils[pop.sybil_first_day <= day]
        newcomers = pop.sybils[pop.sybil_first_day == day]

        # The target posts every day; its posts are ordinary posts others may engage with too.
        n_target_posts = int(rng.integers(1, 4))
        target_authors = np.full(n_target_posts, target, dtype=np.int64)
        topics = self._cover_topic(target_authors)
        target_ts = np.minimum(self._post_ts(n_target_posts), SECONDS_PER_DAY - 3600)
        target_posts = self._new_post_ids(network, n_target_posts)
        batch.add(
            V.POST,
            target_authors,
            target_ts,
            post=target_posts,
            text=self.texts.topic_posts(rng, topics),
            tag0=self._hashtag(network, topics, 0.7),
        )
        self.pools[network].add(
            target_posts, target_authors, topics, day, target_ts, pop.influence[target_authors]
        )
        if len(active) == 0:
            return

        if len(newcomers):
            followers = np.concatenate(
                [newcomers, np.repeat(newcomers, rng.integers(3, 9, size=len(newcomers)))]
            )
            followed = np.concatenate(
                [
                    np.full(len(newcomers), target),
                    active[rng.integers(0, len(active), size=len(followers) - len(newcomers))],
                ]
            )
            self._add_follows(
                batch,
                followers,
                followed,
                rng.integers(0, SECONDS_PER_DAY, size=len(followers)),
                planted=True,
            )

        draw = rng.random((n_target_posts, len(active)))
        for kind, low, high in ((V.LIKE, 0.0, 0.45), (V.RESHARE, 0.45, 0.65), (V.REPLY, 0.65, 0.72)):
            post_rows, sybil_pos = np.nonzero((draw >= low) & (draw < high))
            actors = active[sybil_pos]
            when = self._after(target_ts[post_rows].astype(np.int64), 1200.0)
            subjects = np.full(len(actors), target)
            if kind == V.LIKE:
                batch.add(
                    V.LIKE, actors, when, subject=subjects, parent=target_posts[post_rows], planted=True
                )
                continue
            text = self.texts.sybil(rng, len(actors)) if kind == V.REPLY else None
            batch.add(
                kind,
                actors,
                when,
                subject=subjects,
                post=self._new_post_ids(network, len(actors)),
                parent=target_posts[post_rows],
                text=text,
                planted=True,
            )

        posters = active[rng.random(len(active)) < 0.25]
        ts = np.minimum(rng.integers(0, SECONDS_PER_DAY, size=len(posters)), _LAST_POST_SECOND)
        post_ids = self._new_post_ids(network, len(posters))
        batch.add(V.POST, posters, ts, post=post_ids, text=self.texts.sybil(rng, len(posters)), planted=True)
        batch.add(V.MENTION, posters, ts, subject=np.full(len(posters), target), post=post_ids, planted=True)
        rows = np.repeat(np.arange(len(posters)), rng.poisson(4, size=len(posters)))
        boosters = active[rng.integers(0, len(active), size=len(rows))]
        keep = boosters != posters[rows]
        rows, boosters = rows[keep], boosters[keep]
        reshare = rng.random(len(rows)) < 0.3
        when = self._after(ts[rows].astype(np.int64), 1800.0)
        batch.add(
            V.LIKE,
            boosters[~reshare],
            when[~reshare],
            subject=posters[rows[~reshare]],
            parent=post_ids[rows[~reshare]],
            planted=True,
        )
        batch.add(
            V.RESHARE,
            boosters[reshare],
            when[reshare],
            subject=posters[rows[reshare]],
            post=self._new_post_ids(network, int(reshare.sum())),
            parent=post_ids[rows[reshare]],
            planted=True,
        )

    def _bought_followers(self, batch: _Batch, day: int) -> None:
        """Fresh accounts delivered in a burst: each follows the target (and a few celebrities), nothing else."""
        rng, pop = self.rng, self.pop
        buyers = pop.bought_followers[pop.bought_follow_day == day]
        if len(buyers) == 0:
            return
        delivery_start = int(rng.integers(2, 10)) * 3600
        ts = delivery_start + rng.integers(0, 4 * 3600, size=len(buyers))
        cover = np.repeat(np.arange(len(buyers)), rng.poisson(1.0, size=len(buyers)))
        followers = np.concatenate([buyers, buyers[cover]])
        followed = np.concatenate(
            [np.full(len(buyers), pop.bought_target), self.followable[V.TWITTER].draw(rng, len(cover))]
        )
        when = np.concatenate(
            [ts, np.minimum(ts[cover] + rng.integers(1, 600, size=len(cover)), SECONDS_PER_DAY - 1)]
        )
        self._add_follows(batch, followers, followed, when, planted=True)

    def _inactive(self, batch: _Batch, day: int) -> None:
        """Dormant accounts: a follow now and then, never anything else."""
        pop = self.pop
        first, last = np.searchsorted(pop.inactive_follow_day, [day, day + 1])
        followers = pop.inactive_follow_account[first:last]
        followed = np.empty(len(followers), dtype=np.int64)
        for network in self.networks:
            rows = np.nonzero(pop.network[followers] == network)[0]
            followed[rows] = self.followable[network].draw(self.rng, len(rows))
        self._add_follows(batch, followers, followed, self._rhythm_ts(len(followers)), planted=True)

    def _one_post(self, batch: _Batch, day: int) -> None:
        """The single post about 'aviaries' and the handful of genuine engagements it drew."""
        if day != self.pop.one_post_day:
            return
        rng, pop = self.rng, self.pop
        author = np.array([pop.one_post_account], dtype=np.int64)
        ts = np.array([int(rng.integers(10 * 3600, 14 * 3600))])
        post_id = self._new_post_ids(V.TWITTER, 1)
        batch.add(
            V.POST,
            author,
            ts,
            post=post_id,
            text=np.array([self.texts.one_post]),
            tag0=np.array([V.TAG_ONE_POST]),
            planted=True,
        )
        candidates = self.engagers[V.TWITTER].items
        candidates = candidates[pop.role[candidates] == V.GENUINE]
        weights = pop.engage_rate[candidates] / pop.engage_rate[candidates].sum()
        engagers = rng.choice(candidates, size=14, replace=False, p=weights)
        when = np.sort(self._after(np.repeat(ts, 14), 7200.0))
        subjects = np.repeat(author, 14)
        batch.add(
            V.LIKE, engagers[:9], when[:9], subject=subjects[:9], parent=np.repeat(post_id, 9), planted=True
        )
        birds = np.full(3, V.TOPICS.index("birds"))
        batch.add(
            V.REPLY,
            engagers[9:12],
            when[9:12],
            subject=subjects[9:12],
            post=self._new_post_ids(V.TWITTER, 3),
            parent=np.repeat(post_id, 3),
            text=self.texts.topic_replies(rng, birds),
            planted=True,
        )
        batch.add(
            V.RESHARE,
            engagers[12:],
            when[12:],
            subject=subjects[12:],
            post=self._new_post_ids(V.TWITTER, 2),
            parent=np.repeat(post_id, 2),
            planted=True,
        )

    # ------------------------------------------------------------------ the day
    def _without_repeated_engagement(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Mask keeping the first like (reshare) of a post by an account, across recent days too."""
        keep = np.ones(len(columns["etype"]), dtype=bool)
        for code, recent in ((V.LIKE, self.recent_like_keys), (V.RESHARE, self.recent_reshare_keys)):
            rows = np.nonzero(columns["etype"] == code)[0]
            keys = (columns["actor"][rows] << 32) | columns["parent"][rows]
            _, first_rows = np.unique(keys, return_index=True)
            is_first = np.zeros(len(rows), dtype=bool)
            is_first[first_rows] = True
            if recent:
                is_first &= ~np.isin(keys, np.concatenate(list(recent)))
            keep[rows[~is_first]] = False
            recent.append(keys[is_first])
        return keep

    def simulate_day(self, day: int) -> DayEvents:
        """Generate, order and number the events of day ``day`` (0-based)."""
        rng, pop = self.rng, self.pop
        batch = _Batch()
        self._spam_bots(batch, day)
        self._pods(batch, day)
        self._sybils(batch, day)
        self._bought_followers(batch, day)
        self._inactive(batch, day)
        self._one_post(batch, day)

        remaining = self.plan.target_events - self.events_so_far
        day_total = max(remaining, 0) * self.weights[day] / self.weights[day:].sum()
        expected_profiles = int((self.next_profile_day == day).sum()) + self.new_profiles_last_day
        organic_budget = max(day_total - batch.planted_rows - expected_profiles, 0.0)
        for network in self.networks:
            self._organic(batch, day, network, organic_budget * self.organic_share[network])

        columns = batch.columns()
        self.follow_keys = np.union1d(
            self.follow_keys, np.concatenate([*self.todays_follow_keys, np.empty(0, np.int64)])
        )
        self.todays_follow_keys = []
        keep = self._without_repeated_engagement(columns)
        columns = {name: values[keep] for name, values in columns.items()}

        # Profile snapshots: on an account's first active day, then every 6-8 days.
        actors = np.unique(columns["actor"])
        first_seen = actors[self.next_profile_day[actors] < 0]
        due = np.nonzero(self.next_profile_day == day)[0]
        snapshot = np.union1d(first_seen, due)
        self.new_profiles_last_day = len(first_seen)
        self.next_profile_day[snapshot] = day + rng.integers(6, 9, size=len(snapshot))
        profile_ts = rng.integers(0, SECONDS_PER_DAY, size=len(snapshot))
        growth = np.floor(pop.follower_growth[snapshot] * day).astype(np.int64)
        profile_columns = {
            "followers": np.maximum(pop.followers0[snapshot] + growth + self.followers_delta[snapshot], 0),
            "following": np.maximum(pop.following0[snapshot] + self.following_delta[snapshot], 0),
            "listed": np.maximum(pop.listed0[snapshot] + self.listed_delta[snapshot], 0),
            "posts": np.maximum(pop.posts0[snapshot] + self.posts_delta[snapshot], 0),
        }
        self._count(columns)

        n_events = len(columns["etype"])
        profile_row = np.full(n_events + len(snapshot), -1, dtype=np.int64)
        profile_row[n_events:] = np.arange(len(snapshot))
        profile_batch = _Batch()
        profile_batch.add(V.PROFILE, snapshot, profile_ts)
        profile_part = profile_batch.columns()
        columns = {name: np.concatenate([columns[name], profile_part[name]]) for name in _COLUMNS}

        order = np.lexsort((np.arange(len(profile_row)), columns["ts"]))
        columns = {name: values[order] for name, values in columns.items()}
        profile_row = profile_row[order]
        event_number = np.zeros(len(order), dtype=np.int64)
        networks = pop.network[columns["actor"]]
        for network in self.networks:
            rows = np.nonzero(networks == network)[0]
            event_number[rows] = np.arange(len(rows)) + self.next_event_number[network]
            self.next_event_number[network] += len(rows)
        self.events_so_far += len(order)
        for pool in self.pools:
            pool.keep_from(day + 1 - _POOL_DAYS)
        return DayEvents(
            day_index=day,
            day=self.start_date + timedelta(days=day),
            event_number=event_number,
            profile_row=profile_row,
            profile_followers=profile_columns["followers"],
            profile_following=profile_columns["following"],
            profile_listed=profile_columns["listed"],
            profile_posts=profile_columns["posts"],
            profile_created_at=pop.created_at[snapshot],
            profile_verified=pop.verified[snapshot],
            **columns,
        )

    def _count(self, columns: dict[str, np.ndarray]) -> None:
        """Apply the day's follows, list adds and posts to the profile counters."""
        n = self.pop.size
        etype, actor, subject = columns["etype"], columns["actor"], columns["subject"]
        for code, sign in ((V.FOLLOW, 1), (V.UNFOLLOW, -1)):
            rows = etype == code
            self.followers_delta += sign * np.bincount(subject[rows], minlength=n)
            self.following_delta += sign * np.bincount(actor[rows], minlength=n)
        self.listed_delta += np.bincount(subject[etype == V.LIST_ADD], minlength=n)
        self.posts_delta += np.bincount(actor[np.isin(etype, V.AUTHORED_CODES)], minlength=n)
