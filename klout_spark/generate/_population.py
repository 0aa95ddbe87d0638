"""The simulated world: accounts, their roles, latent influence, topics and planted groups.

Everything is drawn once, up front, from one random generator; the day-by-day
simulation (:mod:`klout_spark.generate._simulate`) then only reads it and
updates a few counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from klout_spark.generate import _vocab as V

SECONDS_PER_DAY = 86_400
_EPOCH = date(1970, 1, 1)
# Topic popularity: a gentle Zipf law over TOPICS (ordered most popular first).
_TOPIC_POPULARITY = 1.0 / (np.arange(V.N_TOPICS) + 3.0) ** 0.8
_MAX_COVERED_TOPICS = 3
_INTEREST_TOPICS = 5
# Engagement pods: share of all events they produce, and how likely a member engages with a mate's post.
POD_SHARE = 0.04
POD_ENGAGE_PROBABILITY = 0.8
# Pods are kept small enough that each member still posts this often (posts per day).
_POD_MIN_POST_RATE = 0.25


def epoch_seconds(day: date) -> int:
    """Seconds since 1970-01-01T00:00:00Z at midnight UTC of ``day``."""
    return (day - _EPOCH).days * SECONDS_PER_DAY


@dataclass(frozen=True)
class WorldPlan:
    """How many accounts of each kind a dump of a given size gets.

    Attributes
    ----------
    target_events : int
        Events the dump should hold (approximately).
    days : int
        Days in the window.
    n_genuine : int
        Organic accounts (including those later drafted into pods or made targets).
    n_inactive, n_spam_bots, n_sybils, n_bought_followers : int
        Sizes of the planted populations.
    n_pods : int
        Number of engagement pods.
    """

    target_events: int
    days: int
    n_genuine: int
    n_inactive: int
    n_spam_bots: int
    n_sybils: int
    n_bought_followers: int
    n_pods: int

    @classmethod
    def for_size(cls, target_events: int, days: int) -> WorldPlan:
        """Scale the population with the event budget so that events per account stay realistic."""
        n_genuine = max(250, round(target_events / (25 + 1.5 * days)))
        return cls(
            target_events=target_events,
            days=days,
            n_genuine=n_genuine,
            n_inactive=max(20, round(0.12 * n_genuine)),
            n_spam_bots=int(np.clip(round(target_events / 10_000), 4, 10_000)),
            n_sybils=int(np.clip(round(target_events / 2_000), 15, 3_000)),
            n_bought_followers=int(np.clip(round(target_events / 400), 100, 50_000)),
            n_pods=int(np.clip(2 + target_events // 300_000, 2, 400)),
        )


class WeightedSampler:
    """Draw items with probability proportional to non-negative weights (inverse CDF).

    Parameters
    ----------
    items : numpy.ndarray
        The values to draw from.
    weights : numpy.ndarray
        One weight per item; zero-weight items are never drawn.
    """

    def __init__(self, items: np.ndarray, weights: np.ndarray) -> None:
        cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
        self.items = np.asarray(items)
        self.empty = len(self.items) == 0 or cumulative[-1] <= 0
        self._cdf = cumulative / cumulative[-1] if not self.empty else cumulative

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Return ``size`` items drawn with replacement."""
        if self.empty:
            raise ValueError("cannot draw from an empty sampler")
        positions = np.searchsorted(self._cdf, rng.random(size), side="right")
        return self.items[np.minimum(positions, len(self.items) - 1)]


@dataclass
class Population:
    """All accounts of the world, as parallel arrays indexed by account number.

    Account numbers are internal; the public id is ``user_ids[i]`` (for example
    ``"tw:u:17"``). Accounts are shuffled before ids are given out, so an id says
    nothing about the role.

    Attributes
    ----------
    network : numpy.ndarray of int8
        Network code per account (index of ``NETWORKS``).
    local_id : numpy.ndarray of int64
        Number within the network (the ``17`` of ``tw:u:17``).
    user_ids : list of str
        Public account ids.
    role : numpy.ndarray of int8
        Role code per account (index of ``ROLES``).
    influence : numpy.ndarray of float64
        Latent true influence (0 for every fake or dormant account).
    post_rate, engage_rate : numpy.ndarray of float64
        Relative propensity to post and to engage with others' posts.
    covers : numpy.ndarray of int16, shape (n, 3)
        Topics the account really posts about (-1 padded).
    interests : numpy.ndarray of int16, shape (n, 5)
        Topics the account reads and engages with (covers first).
    created_at : numpy.ndarray of int64
        Account creation time, epoch seconds.
    followers0, following0, listed0, posts0 : numpy.ndarray of int64
        Profile counts at the start of the window.
    follower_growth : numpy.ndarray of float64
        Followers gained per day from outside the simulated sample.
    verified : numpy.ndarray of bool
    pods : list of numpy.ndarray
        Member account numbers of each engagement pod.
    pod_topics : list of int
        The topic each pod posts about.
    sybils : numpy.ndarray
        Account numbers of the sybil farm.
    sybil_first_day : numpy.ndarray
        Per sybil, the first day (index in the window) it acts.
    sybil_target : int
    bought_followers : numpy.ndarray
    bought_follow_day : numpy.ndarray
        Per bought follower, the day it follows the target.
    bought_target : int
    spam_bots : numpy.ndarray
    inactive_follow_account, inactive_follow_day : numpy.ndarray
        One row per planned follow by an inactive account, sorted by day.
    one_post_account : int
    one_post_day : int
    identities : list of tuple
        ``(person_number, twitter_account, reddit_account[, facebook_account, linkedin_account])``:
        one account per network of the world, in network code order.
    """

    network: np.ndarray
    local_id: np.ndarray
    user_ids: list[str]
    role: np.ndarray
    influence: np.ndarray
    post_rate: np.ndarray
    engage_rate: np.ndarray
    covers: np.ndarray
    interests: np.ndarray
    created_at: np.ndarray
    followers0: np.ndarray
    following0: np.ndarray
    listed0: np.ndarray
    posts0: np.ndarray
    follower_growth: np.ndarray
    verified: np.ndarray
    pods: list[np.ndarray]
    pod_topics: list[int]
    sybils: np.ndarray
    sybil_first_day: np.ndarray
    sybil_target: int
    bought_followers: np.ndarray
    bought_follow_day: np.ndarray
    bought_target: int
    spam_bots: np.ndarray
    inactive_follow_account: np.ndarray
    inactive_follow_day: np.ndarray
    one_post_account: int
    one_post_day: int
    identities: list[tuple[int, ...]]

    @property
    def size(self) -> int:
        """Number of accounts."""
        return len(self.role)

    def is_organic(self) -> np.ndarray:
        """Mask of accounts that behave like real people."""
        return np.isin(self.role, V.ORGANIC_ROLES)


def _draw_topics(rng: np.random.Generator, n_accounts: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw covered and interest topics per account (popular topics more often).

    Uses the Gumbel top-k trick in chunks, so memory stays bounded for millions of accounts.
    """
    interests = np.empty((n_accounts, _INTEREST_TOPICS), dtype=np.int16)
    log_popularity = np.log(_TOPIC_POPULARITY)
    chunk = 200_000
    for start in range(0, n_accounts, chunk):
        stop = min(start + chunk, n_accounts)
        keys = log_popularity + rng.gumbel(size=(stop - start, V.N_TOPICS))
        interests[start:stop] = np.argsort(-keys, axis=1)[:, :_INTEREST_TOPICS]
    n_covered = rng.choice(np.arange(1, _MAX_COVERED_TOPICS + 1), size=n_accounts, p=[0.4, 0.4, 0.2])
    covers = interests[:, :_MAX_COVERED_TOPICS].copy()
    covers[np.arange(_MAX_COVERED_TOPICS)[None, :] >= n_covered[:, None]] = -1
    return covers, interests


def _pick(rng: np.random.Generator, candidates: np.ndarray, size: int, *, what: str) -> np.ndarray:
    if len(candidates) < size:
        raise ValueError(
            f"events: too small a dump to plant {what} ({len(candidates)} candidates, need {size})"
        )
    return np.sort(rng.choice(candidates, size=size, replace=False))


def _influence_band(
    population_influence: np.ndarray, eligible: np.ndarray, low_pct: float, high_pct: float
) -> np.ndarray:
    """Eligible accounts whose influence lies between two percentiles of the eligible ones."""
    values = population_influence[eligible]
    low, high = np.percentile(values, [low_pct, high_pct])
    return np.nonzero(eligible & (population_influence >= low) & (population_influence <= high))[0]


# In a world with more networks, the share of ordinary accounts on each (Twitter, Reddit, Facebook, LinkedIn).
_EXTENDED_SHARES = {V.TWITTER: 0.4, V.REDDIT: 0.2, V.FACEBOOK: 0.25, V.LINKEDIN: 0.15}


def _assign_networks(draws: np.ndarray, twitter_share: float, networks: tuple[int, ...]) -> np.ndarray:
    """Network per account from uniform draws: Twitter/Reddit by ``twitter_share`` in the base world."""
    if networks == V.BASE_NETWORKS or twitter_share >= 1.0:
        return np.where(draws < twitter_share, V.TWITTER, V.REDDIT).astype(np.int8)
    weights = np.array([_EXTENDED_SHARES[code] for code in networks])
    edges = np.cumsum(weights / weights.sum())
    return np.array(networks, dtype=np.int8)[np.minimum(np.searchsorted(edges, draws, side="right"), len(edges) - 1)]


def build_population(
    rng: np.random.Generator, plan: WorldPlan, start_date: date, networks: tuple[int, ...] = V.BASE_NETWORKS
) -> Population:
    """Draw every account of the world and plant the manipulation patterns.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (consumed in a fixed order: same seed, same world).
    plan : WorldPlan
        Population sizes.
    start_date : datetime.date
        First day of the window (account creation dates are relative to it).
    networks : tuple of int
        Network codes of the world: Twitter and Reddit, optionally Facebook and LinkedIn.
        Planted fakes (sybils, bought followers) stay on Twitter; with more networks,
        persons own one account on each network.

    Returns
    -------
    Population
    """
    days = plan.days
    window_start = epoch_seconds(start_date)
    blocks = [
        (V.GENUINE, plan.n_genuine, 0.65),
        (V.INACTIVE, plan.n_inactive, 0.65),
        (V.SPAM_BOT, plan.n_spam_bots, 0.75),
        (V.SYBIL, plan.n_sybils, 1.0),
        (V.BOUGHT_FOLLOWER, plan.n_bought_followers, 1.0),
    ]
    role = np.concatenate([np.full(count, code, dtype=np.int8) for code, count, _ in blocks])
    network = np.concatenate(
        [_assign_networks(rng.random(count), twitter_share, networks) for _, count, twitter_share in blocks]
    )
    order = rng.permutation(len(role))
    role, network = role[order], network[order]
    n = len(role)

    local_id = np.zeros(n, dtype=np.int64)
    for code in networks:
        members = network == code
        local_id[members] = np.arange(1, int(members.sum()) + 1)

    genuine = role == V.GENUINE
    influence = np.where(genuine, rng.lognormal(0.0, 1.8, size=n), 0.0)
    covers, interests = _draw_topics(rng, n)

    # --- planted groups drawn from the organic population ---
    taken = np.zeros(n, dtype=bool)
    pod_budget = POD_SHARE * plan.target_events / days / plan.n_pods
    largest_pod = int(np.clip(np.sqrt(pod_budget / (_POD_MIN_POST_RATE * POD_ENGAGE_PROBABILITY)), 5, 50))
    pod_sizes = rng.integers(5, largest_pod + 1, size=plan.n_pods)
    max_pod_members = max(5 * plan.n_pods, int(0.15 * plan.n_genuine))
    if pod_sizes.sum() > max_pod_members:
        pod_sizes = np.maximum(5, (pod_sizes * max_pod_members) // pod_sizes.sum())
    pods: list[np.ndarray] = []
    pod_topics: list[int] = []
    for pod_size in pod_sizes:
        pod_network = V.TWITTER if rng.random() < 0.7 else V.REDDIT
        eligible = genuine & ~taken & (network == pod_network)
        members = _pick(
            rng, _influence_band(influence, eligible, 0, 70), int(pod_size), what="an engagement pod"
        )
        topic = int(rng.integers(0, V.N_TOPICS))
        taken[members] = True
        role[members] = V.POD_MEMBER
        covers[members, 0] = topic
        interests[members, 0] = topic
        pods.append(members)
        pod_topics.append(topic)

    def single(low_pct: float, high_pct: float, role_code: int, what: str) -> int:
        eligible = genuine & ~taken & (network == V.TWITTER)
        account = int(_pick(rng, _influence_band(influence, eligible, low_pct, high_pct), 1, what=what)[0])
        taken[account] = True
        role[account] = role_code
        return account

    sybil_target = single(20, 50, V.SYBIL_TARGET, "a sybil target")
    bought_target = single(20, 50, V.BOUGHT_TARGET, "a bought-follower target")
    one_post_account = single(40, 70, V.ONE_POST, "the one-post account")

    organic = np.isin(role, V.ORGANIC_ROLES)
    post_rate = np.where(organic, influence**0.35 * rng.lognormal(0.0, 0.7, size=n), 0.0)
    engage_rate = np.where(organic, rng.lognormal(0.0, 0.9, size=n), 0.0)

    # --- profile counts at the start of the window ---
    age_days = np.clip(rng.lognormal(6.8, 0.7, size=n), 30, 6000)
    followers0 = np.round(40 * influence**1.15 * rng.lognormal(0.0, 0.5, size=n)) + rng.poisson(15, size=n)
    following0 = np.round(rng.lognormal(5.2, 0.9, size=n))
    posts0 = np.round(age_days * (0.3 + post_rate) * rng.lognormal(0.0, 0.4, size=n))
    inactive = role == V.INACTIVE
    followers0[inactive] = rng.poisson(3, size=int(inactive.sum()))
    following0[inactive] = np.round(rng.lognormal(4.0, 1.0, size=int(inactive.sum())))
    posts0[inactive] = rng.poisson(0.5, size=int(inactive.sum()))
    spam = role == V.SPAM_BOT
    n_spam = int(spam.sum())
    age_days[spam] = np.clip(rng.lognormal(5.0, 0.5, size=n_spam), 30, None)
    followers0[spam] = np.round(rng.lognormal(5.0, 1.0, size=n_spam))
    following0[spam] = np.round(rng.lognormal(8.3, 0.4, size=n_spam))
    posts0[spam] = np.round(age_days[spam] * rng.uniform(20, 80, size=n_spam))
    fresh = np.isin(role, (V.SYBIL, V.BOUGHT_FOLLOWER))
    followers0[fresh] = 0
    following0[fresh] = 0
    posts0[fresh] = 0
    listed0 = rng.poisson(followers0 * 0.01)
    follower_growth = followers0 * 0.0015 * rng.lognormal(0.0, 0.5, size=n)
    created_at = window_start - np.round(age_days * SECONDS_PER_DAY).astype(np.int64)

    verified = np.zeros(n, dtype=bool)
    organic_cut = np.percentile(influence[organic], 99.7)
    verified[organic & (influence >= organic_cut)] = (
        rng.random(int((organic & (influence >= organic_cut)).sum())) < 0.8
    )

    # --- sybil farm: fresh accounts created inside the window, one day before they start ---
    sybils = np.nonzero(role == V.SYBIL)[0]
    last_start = max(1, days // 3) if days > 1 else 0
    sybil_first_day = rng.integers(min(1, last_start), last_start + 1, size=len(sybils))
    created_at[sybils] = (
        window_start + sybil_first_day * SECONDS_PER_DAY - rng.integers(600, 20 * 3600, size=len(sybils))
    )

    # --- bought followers: created shortly before they all follow the target in a burst ---
    bought = np.nonzero(role == V.BOUGHT_FOLLOWER)[0]
    burst_day = days // 2
    bought_follow_day = np.minimum(burst_day + (rng.random(len(bought)) < 0.3), days - 1)
    created_at[bought] = np.maximum(
        window_start
        + bought_follow_day * SECONDS_PER_DAY
        - rng.integers(3600, 2 * SECONDS_PER_DAY, size=len(bought)),
        window_start - 3 * SECONDS_PER_DAY if days < 3 else window_start + 60,
    )

    # --- inactive accounts: a few follows spread over the window, nothing else ---
    inactive_accounts = np.nonzero(inactive)[0]
    follows_each = rng.integers(1, 4, size=len(inactive_accounts))
    inactive_follow_account = np.repeat(inactive_accounts, follows_each)
    inactive_follow_day = rng.integers(0, days, size=len(inactive_follow_account))
    by_day = np.argsort(inactive_follow_day, kind="stable")

    # --- persons with one account on each network; their topics agree ---
    pairable = role == V.GENUINE
    pools = [np.nonzero(pairable & (network == code))[0] for code in networks]
    n_persons = int(0.1 * min(len(pool) for pool in pools))
    sides = [np.sort(rng.choice(pools[0], size=n_persons, replace=False))]
    sides += [rng.choice(pool, size=n_persons, replace=False) for pool in pools[1:]]
    for side in sides[1:]:
        covers[side] = covers[sides[0]]
        interests[side] = interests[sides[0]]
    identities = [
        (k + 1, *(int(account) for account in accounts)) for k, accounts in enumerate(zip(*sides, strict=True))
    ]

    prefixes = np.array(V.NETWORK_PREFIXES)[network]
    user_ids = [
        f"{prefix}:u:{number}" for prefix, number in zip(prefixes.tolist(), local_id.tolist(), strict=True)
    ]
    return Population(
        network=network,
        local_id=local_id,
        user_ids=user_ids,
        role=role,
        influence=influence,
        post_rate=post_rate,
        engage_rate=engage_rate,
        covers=covers,
        interests=interests,
        created_at=created_at,
        followers0=followers0.astype(np.int64),
        following0=following0.astype(np.int64),
        listed0=listed0.astype(np.int64),
        posts0=posts0.astype(np.int64),
        follower_growth=follower_growth,
        verified=verified,
        pods=pods,
        pod_topics=pod_topics,
        sybils=sybils,
        sybil_first_day=sybil_first_day,
        sybil_target=sybil_target,
        bought_followers=bought,
        bought_follow_day=bought_follow_day,
        bought_target=bought_target,
        spam_bots=np.nonzero(spam)[0],
        inactive_follow_account=inactive_follow_account[by_day],
        inactive_follow_day=inactive_follow_day[by_day],
        one_post_account=one_post_account,
        one_post_day=days // 3,
        identities=identities,
    )
