"""Fixed vocabularies of the generator: event types, roles, networks, topics and texts.

Everything here is a constant so that ids and codes stay stable across runs and
versions; the numeric codes are what the simulation stores in its arrays.
"""

from __future__ import annotations

import json

import numpy as np

# --- networks -------------------------------------------------------------------------
NETWORKS: tuple[str, ...] = ("twitter", "reddit", "facebook", "linkedin")
NETWORK_PREFIXES: tuple[str, ...] = ("tw", "rd", "fb", "li")
TWITTER = 0
REDDIT = 1
FACEBOOK = 2
LINKEDIN = 3
# The world always has Twitter and Reddit (the planted patterns live there); the others are optional.
BASE_NETWORKS: tuple[int, ...] = (TWITTER, REDDIT)

# --- event types (codes index EVENT_TYPES) ---------------------------------------------
EVENT_TYPES: tuple[str, ...] = (
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
)
POST, REPLY, RESHARE, QUOTE, MENTION, LIKE, FOLLOW, UNFOLLOW, LIST_ADD, PROFILE = range(10)
# Event types that create a post of the actor's own (they get a post_id).
AUTHORED_CODES: tuple[int, ...] = (POST, REPLY, RESHARE, QUOTE)
# Event types that point at a parent post written by the subject.
PARENTED_CODES: tuple[int, ...] = (REPLY, RESHARE, QUOTE, LIKE)

# --- roles in the ground truth (codes index ROLES) -------------------------------------
ROLES: tuple[str, ...] = (
    "genuine",
    "inactive",
    "spam_bot",
    "bought_follower_target",
    "bought_follower",
    "pod_member",
    "sybil",
    "sybil_target",
    "one_post_topic",
)
(
    GENUINE,
    INACTIVE,
    SPAM_BOT,
    BOUGHT_TARGET,
    BOUGHT_FOLLOWER,
    POD_MEMBER,
    SYBIL,
    SYBIL_TARGET,
    ONE_POST,
) = range(len(ROLES))
# Roles whose accounts behave like real people: they post on their topics and engage.
ORGANIC_ROLES: tuple[int, ...] = (GENUINE, POD_MEMBER, SYBIL_TARGET, BOUGHT_TARGET)

# --- topics and hashtags ---------------------------------------------------------------
# Topic -> words that posts about it use. Ordered by popularity (most popular first).
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "football": ("the derby", "that penalty", "the transfer window", "our keeper", "the league table"),
    "music": ("the new album", "this bassline", "the tour dates", "vinyl", "that chorus"),
    "politics": ("the debate", "the new bill", "the polls", "the senate vote", "turnout"),
    "movies": ("the trailer", "the director's cut", "the festival lineup", "that plot twist", "the sequel"),
    "gaming": ("the patch notes", "speedruns", "the new console", "co-op mode", "the boss fight"),
    "travel": ("cheap flights", "night trains", "my itinerary", "hidden beaches", "packing light"),
    "cooking": ("sourdough", "a one-pot curry", "knife skills", "the spice rack", "braised leeks"),
    "fitness": ("leg day", "zone 2 cardio", "my deadlift", "rest days", "mobility work"),
    "finance": ("index funds", "the rate decision", "bond yields", "my budget sheet", "earnings season"),
    "technology": ("the new phone", "open source", "the keynote", "battery life", "a home lab"),
    "photography": ("golden hour", "a 35mm prime", "long exposures", "street shots", "film grain"),
    "basketball": ("the playoffs", "that buzzer beater", "the draft", "triple-doubles", "free throws"),
    "python": ("type hints", "asyncio", "the GIL", "packaging", "pattern matching"),
    "climate": ("heat records", "the emissions report", "heat pumps", "sea ice", "the COP talks"),
    "space": ("the launch window", "a new exoplanet", "the lunar lander", "JWST images", "orbital debris"),
    "books": ("my reading list", "the Booker shortlist", "a slow burn novel", "audiobooks", "poetry"),
    "art": ("the retrospective", "watercolours", "gallery openings", "street murals", "charcoal sketches"),
    "crypto": ("the halving", "gas fees", "cold wallets", "the new token", "on-chain data"),
    "health": ("sleep hygiene", "the flu season", "gut health", "screen time", "hydration"),
    "startups": ("the seed round", "product-market fit", "the first hires", "churn", "the pitch deck"),
    "gardening": ("tomato seedlings", "compost", "raised beds", "the first frost", "pollinators"),
    "fashion": ("the runway", "thrifted finds", "capsule wardrobes", "sneaker drops", "linen season"),
    "cars": ("the EV range", "track day", "a manual gearbox", "the recall", "restomods"),
    "datascience": ("feature stores", "a messy CSV", "Spark jobs", "A/B tests", "notebooks"),
    "aviation": ("the A350", "crosswind landings", "airport spotting", "the 737 cockpit", "long-haul routes"),
    "birds": ("the dawn chorus", "a kestrel", "migration season", "my feeder", "a rare warbler"),
    "cycling": ("the climb", "gravel bikes", "the peloton", "a new saddle", "commuting by bike"),
    "running": ("my 10k", "marathon training", "trail shoes", "tempo runs", "race day"),
    "parenting": ("bedtime", "school runs", "toddler logic", "screen rules", "packed lunches"),
    "hiking": ("the ridge trail", "a summit sunrise", "blisters", "trail maps", "the hut"),
}
TOPICS: tuple[str, ...] = tuple(TOPIC_WORDS)
# The topic that exactly one post in the whole dump is about: the "aviaries" case.
ONE_POST_TOPIC = "aviaries"
# Hashtags that are not topics: spam hashtags and the one-post topic.
EXTRA_TAGS: tuple[str, ...] = ("giveaway", "followback", "win", ONE_POST_TOPIC)
TAGS: tuple[str, ...] = TOPICS + EXTRA_TAGS
TAG_GIVEAWAY = TAGS.index("giveaway")
TAG_FOLLOWBACK = TAGS.index("followback")
TAG_ONE_POST = TAGS.index(ONE_POST_TOPIC)
N_TOPICS = len(TOPICS)

# --- text pools ------------------------------------------------------------------------
_POST_TEMPLATES: tuple[str, ...] = (
    "Just read a great thread about {w}.",
    "Hot take: {w} is underrated.",
    "Anyone else following {w} today?",
    "My notes on {w} from this week \U0001f9f5",
    'Can\'t stop thinking about {w} \u2014 "wow" is all I can say',
    "New post: what I learned from {w}",
    "Unpopular opinion: {w} is overrated",
    "Thread on {w}, feedback welcome (1/3)",
    "Is it just me or is {w} getting better every year?",
    "Quick question about {w}: where do I start?",
    "Caf\u00e9 thoughts on {w} \u2615",
    "A short guide to {w}, with links below",
)
_REPLY_TEMPLATES: tuple[str, ...] = (
    "Great point about {w}!",
    "I disagree, {w} is more complicated than that.",
    "Thanks for sharing, saving this.",
    "This \U0001f446 exactly this",
    "Source on {w}?",
    "Same experience with {w} here.",
    "Couldn't agree more.",
    "Interesting, never thought of {w} that way",
)
_SPAM_TEMPLATES: tuple[str, ...] = (
    "\U0001f525 FREE {n} followers!!! Click hxxp://promo{k}.example now",
    "\U0001f525 Get {n} REAL followers FAST, DM me \U0001f4b8 promo{k}",
    "WIN a phone!!! Retweet + follow, link in bio promo{k} \U0001f381",
)
_SYBIL_TEMPLATES: tuple[str, ...] = (
    "Everyone go follow {target}, best account ever!!",
    "{target} is the real deal, follow now \U0001f4af",
    "Big respect to {target} \U0001f64c must follow",
    "Shoutout {target}!!! legend",
)
ONE_POST_TEXT = "Visited the new aviaries at the city zoo today, such happy birds in there"


class TextPool:
    """Pre-escaped JSON strings of every text the generator can write.

    Each entry is ``json.dumps(text)`` without its closing quote, so that
    hashtags can be appended inside the string before it is closed.

    Attributes
    ----------
    entries : list of str
        The escaped texts.
    raw : list of str
        The same texts, unescaped.
    post_start, post_count : numpy.ndarray
        Per topic: first index and number of post texts.
    reply_start, reply_count : numpy.ndarray
        Per topic: first index and number of reply texts.
    spam_start, spam_count : int
        Range of spam (near-duplicate) texts.
    sybil_start, sybil_count : int
        Range of sybil texts (they name the sybil target).
    one_post : int
        Index of the single "aviaries" post text.
    """

    def __init__(self, sybil_target_name: str) -> None:
        self.entries: list[str] = []
        self.raw: list[str] = []
        self.post_start = np.zeros(N_TOPICS, dtype=np.int64)
        self.post_count = np.zeros(N_TOPICS, dtype=np.int64)
        self.reply_start = np.zeros(N_TOPICS, dtype=np.int64)
        self.reply_count = np.zeros(N_TOPICS, dtype=np.int64)
        for topic_code, words in enumerate(TOPIC_WORDS.values()):
            self.post_start[topic_code] = len(self.entries)
            self._extend(template.format(w=word) for template in _POST_TEMPLATES for word in words)
            self.post_count[topic_code] = len(self.entries) - self.post_start[topic_code]
            self.reply_start[topic_code] = len(self.entries)
            self._extend(template.format(w=word) for template in _REPLY_TEMPLATES for word in words)
            self.reply_count[topic_code] = len(self.entries) - self.reply_start[topic_code]
        self.spam_start = len(self.entries)
        self._extend(
            template.format(n=n, k=k)
            for template in _SPAM_TEMPLATES
            for n in (500, 1000, 5000, 10000)
            for k in range(1, 21)
        )
        self.spam_count = len(self.entries) - self.spam_start
        self.sybil_start = len(self.entries)
        self._extend(template.format(target=sybil_target_name) for template in _SYBIL_TEMPLATES)
        self.sybil_count = len(self.entries) - self.sybil_start
        self.one_post = len(self.entries)
        self._extend([ONE_POST_TEXT])

    def _extend(self, texts) -> None:
        for text in texts:
            self.raw.append(text)
            self.entries.append(json.dumps(text)[:-1])

    def topic_posts(self, rng: np.random.Generator, topic_codes: np.ndarray) -> np.ndarray:
        """Draw one post text index per topic code."""
        return self.post_start[topic_codes] + rng.integers(0, self.post_count[topic_codes])

    def topic_replies(self, rng: np.random.Generator, topic_codes: np.ndarray) -> np.ndarray:
        """Draw one reply text index per topic code."""
        return self.reply_start[topic_codes] + rng.integers(0, self.reply_count[topic_codes])

    def spam(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` near-duplicate spam text indices."""
        return self.spam_start + rng.integers(0, self.spam_count, size=size)

    def sybil(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` sybil text indices."""
        return self.sybil_start + rng.integers(0, self.sybil_count, size=size)


_NAME_FIRST: tuple[str, ...] = (
    "amber",
    "brisk",
    "cosmic",
    "dusty",
    "eager",
    "fuzzy",
    "gentle",
    "hazy",
    "icy",
    "jolly",
    "keen",
    "lucky",
    "misty",
    "noble",
    "odd",
    "plucky",
    "quiet",
    "rusty",
    "sunny",
    "tidy",
    "urban",
    "vivid",
    "witty",
    "young",
    "zesty",
)
_NAME_SECOND: tuple[str, ...] = (
    "falcon",
    "otter",
    "maple",
    "comet",
    "harbor",
    "pixel",
    "badger",
    "lantern",
    "willow",
    "raven",
    "cedar",
    "kettle",
    "meadow",
    "quartz",
    "robin",
    "tiger",
    "walrus",
    "ember",
    "fjord",
    "gecko",
)


def screen_names(networks: list[int], local_ids: list[int]) -> list[str]:
    """Deterministic handles, unique per network, from network codes and per-network numbers.

    Twitter handles look like ``sunnyotter17``, Reddit ones like ``Otter_Sunny_17``, so the
    same number on both networks never yields the same name (names do not link persons).
    """
    first, second = _NAME_FIRST, _NAME_SECOND
    return [
        f"{first[(i * 7) % 25]}{second[(i * 13) % 20]}{i}"
        if network == TWITTER
        else f"{second[(i * 3) % 20].title()}_{first[(i * 11) % 25].title()}_{i}"
        for network, i in zip(networks, local_ids, strict=True)
    ]
