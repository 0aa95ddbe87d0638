"""Platform-native formats: Twitter API v1.1 tweet JSON lines and Reddit Pushshift ndjson.

Each writes only what its platform can express: the posts of its own network
(tweets, retweets, quotes, replies; submissions, comments, crossposts) with
mentions and author profiles embedded. Likes, follows, list adds and the
other network's events are absent.

Ids map one to one onto the canonical ids: canonical ``tw:p:N`` is tweet
``id_str`` ``"N"``, ``tw:u:K`` is ``user.id_str`` ``"K"``; on Reddit the post
number ``N`` and account number ``K`` are written in base 36
(``t3_``/``t1_`` + base36(N), author_fullname ``t2_`` + base36(K)).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from klout_spark.generate import _vocab as V
from klout_spark.generate._dirty import DirtySpec, compact_json
from klout_spark.generate._population import SECONDS_PER_DAY, Population, epoch_seconds
from klout_spark.generate._simulate import DayEvents

_STORE_DAYS = 5
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    """Reddit-style base-36 id of a non-negative integer."""
    digits = []
    while True:
        number, remainder = divmod(number, 36)
        digits.append(_BASE36[remainder])
        if number == 0:
            return "".join(reversed(digits))


def twitter_time(epoch: int) -> str:
    """``Wed Aug 27 13:08:45 +0000 2008`` (Twitter v1.1 ``created_at``)."""
    return time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime(epoch))


class _Post(NamedTuple):
    kind: int
    author: int
    epoch: int
    text: int
    tag0: int
    tag1: int
    mentions: tuple[int, ...]
    parent: int
    root: int
    subreddit: str


class _PlatformFormat:
    """Shared state: recent posts (to embed parents, follow reply chains) and last known profiles."""

    network: int

    def __init__(self, population: Population, text_pool: V.TextPool, start_date) -> None:
        self.pop = population
        self.texts = text_pool
        self.window_start = epoch_seconds(start_date)
        self.names = V.screen_names(population.network.tolist(), population.local_id.tolist())
        self.followers = population.followers0.copy()
        self.following = population.following0.copy()
        self.listed = population.listed0.copy()
        self.posts = population.posts0.copy()
        self._store: dict[int, dict[int, _Post]] = {}
        self._prepared_day = -1

    # ---- per-day preparation
    def _prepare(self, events: DayEvents) -> None:
        if events.day_index == self._prepared_day:
            return
        self._prepared_day = events.day_index
        profiles = np.nonzero(events.profile_row >= 0)[0]
        accounts, rows = events.actor[profiles], events.profile_row[profiles]
        self.followers[accounts] = events.profile_followers[rows]
        self.following[accounts] = events.profile_following[rows]
        self.listed[accounts] = events.profile_listed[rows]
        self.posts[accounts] = events.profile_posts[rows]

        mine = self.pop.network[events.actor] == self.network
        mention_rows = np.nonzero(mine & (events.etype == V.MENTION))[0]
        mentions: dict[int, list[int]] = {}
        for post, subject in zip(
            events.post[mention_rows].tolist(), events.subject[mention_rows].tolist(), strict=True
        ):
            mentions.setdefault(post, []).append(subject)
        day_epoch = epoch_seconds(events.day)
        today: dict[int, _Post] = {}
        self._store[events.day_index] = today
        self._store.pop(events.day_index - _STORE_DAYS, None)
        authored = np.nonzero(mine & np.isin(events.etype, V.AUTHORED_CODES))[0]
        for kind, post, author, subject, ts, text, tag0, tag1, parent in zip(
            events.etype[authored].tolist(),
            events.post[authored].tolist(),
            events.actor[authored].tolist(),
            events.subject[authored].tolist(),
            events.ts[authored].tolist(),
            events.text[authored].tolist(),
            events.tag0[authored].tolist(),
            events.tag1[authored].tolist(),
            events.parent[authored].tolist(),
            strict=True,
        ):
            root, subreddit = post, V.TAGS[tag0] if tag0 >= 0 else "all"
            if parent >= 0:
                # Replies stay in their thread (root submission) and its subreddit.
                parent_post = self._lookup(parent, subject)
                if kind == V.REPLY:
                    root = parent_post.root
                subreddit = parent_post.subreddit
            today[post] = _Post(
                kind,
                author,
                day_epoch + ts,
                text,
                tag0,
                tag1,
                tuple(mentions.get(post, ())),
                parent,
                root,
                subreddit,
            )

    def _lookup(self, number: int, author: int) -> _Post:
        """A recent post, or a plausible stand-in for a post written before the window."""
        for posts in self._store.values():
            found = posts.get(number)
            if found is not None:
                return found
        author = max(author, 0)
        topic = max(int(self.pop.covers[author, 0]), 0)
        text = int(self.texts.post_start[topic] + number % self.texts.post_count[topic])
        epoch = self.window_start - 1 - number % (3 * SECONDS_PER_DAY)
        return _Post(V.POST, author, epoch, text, topic, -1, (), -1, number, V.TAGS[topic])

    def _rows(self, events: DayEvents, start: int, stop: int) -> np.ndarray:
        rows = np.arange(start, stop)
        actor = events.actor[rows]
        keep = (self.pop.network[actor] == self.network) & np.isin(events.etype[rows], V.AUTHORED_CODES)
        return rows[keep]


class TwitterFormat(_PlatformFormat):
    """Twitter API v1.1 tweets, one JSON object per line (tweets, replies, retweets, quotes)."""

    name = "twitter"
    network = V.TWITTER

    def lines(self, events: DayEvents, start: int, stop: int) -> list[str]:
        """Format the Twitter posts among rows ``start:stop`` of ``events``."""
        self._prepare(events)
        today = self._store[events.day_index]
        out = []
        for row in self._rows(events, start, stop).tolist():
            post_number = int(events.post[row])
            post = today[post_number]
            if post.kind == V.POST:
                tweet = self._tweet(post_number, post)
            else:
                parent = self._lookup(post.parent, int(events.subject[row]))
                parent_tweet = self._tweet(post.parent, parent)
                if post.kind == V.RESHARE:
                    tweet = self._retweet(post_number, post, parent_tweet)
                elif post.kind == V.QUOTE:
                    tweet = self._tweet(post_number, post)
                    tweet.update(
                        is_quote_status=True,
                        quoted_status_id=post.parent,
                        quoted_status_id_str=str(post.parent),
                        quoted_status=parent_tweet,
                    )
                else:
                    tweet = self._tweet(post_number, post, reply_to=(post.parent, parent.author))
            out.append(compact_json(tweet))
        return out

    def _user(self, account: int) -> dict:
        number = int(self.pop.local_id[account])
        return {
            "id": number,
            "id_str": str(number),
            "name": self.names[account].rstrip("0123456789").title(),
            "screen_name": self.names[account],
            "followers_count": int(self.followers[account]),
            "friends_count": int(self.following[account]),
            "listed_count": int(self.listed[account]),
            "statuses_count": int(self.posts[account]),
            "verified": bool(self.pop.verified[account]),
            "created_at": twitter_time(int(self.pop.created_at[account])),
        }

    def _tweet(self, number: int, post: _Post, *, reply_to: tuple[int, int] | None = None) -> dict:
        mention_names = [self.names[account] for account in post.mentions]
        if reply_to is not None:
            mention_names.insert(0, self.names[reply_to[1]])
        prefix = "".join(f"@{name} " for name in mention_names)
        tags = [V.TAGS[tag] for tag in (post.tag0, post.tag1) if tag >= 0] if post.tag0 >= 0 else []
        body = self.texts.raw[post.text] if post.text >= 0 else ""
        text = prefix + body + "".join(f" #{tag}" for tag in tags)
        mentions, offset = [], 0
        reply_accounts = ([reply_to[1]] if reply_to is not None else []) + list(post.mentions)
        for account, name in zip(reply_accounts, mention_names, strict=True):
            mentions.append(
                {
                    "id": int(self.pop.local_id[account]),
                    "id_str": str(int(self.pop.local_id[account])),
                    "screen_name": name,
                    "indices": [offset, offset + len(name) + 1],
                }
            )
            offset += len(name) + 2
        hashtags, position = [], len(prefix) + len(body)
        for tag in tags:
            hashtags.append({"text": tag, "indices": [position + 1, position + 2 + len(tag)]})
            position += 2 + len(tag)
        return {
            "created_at": twitter_time(post.epoch),
            "id": number,
            "id_str": str(number),
            "text": text,
            "user": self._user(post.author),
            "in_reply_to_status_id": reply_to[0] if reply_to else None,
            "in_reply_to_status_id_str": str(reply_to[0]) if reply_to else None,
            "in_reply_to_user_id": int(self.pop.local_id[reply_to[1]]) if reply_to else None,
            "in_reply_to_user_id_str": str(int(self.pop.local_id[reply_to[1]])) if reply_to else None,
            "in_reply_to_screen_name": self.names[reply_to[1]] if reply_to else None,
            "is_quote_status": False,
            "entities": {"hashtags": hashtags, "user_mentions": mentions, "urls": []},
            "lang": "en",
        }

    def _retweet(self, number: int, post: _Post, original: dict) -> dict:
        author = original["user"]
        return {
            "created_at": twitter_time(post.epoch),
            "id": number,
            "id_str": str(number),
            "text": f"RT @{author['screen_name']}: {original['text']}",
            "user": self._user(post.author),
            "in_reply_to_status_id": None,
            "in_reply_to_status_id_str": None,
            "in_reply_to_user_id": None,
            "in_reply_to_user_id_str": None,
            "in_reply_to_screen_name": None,
            "is_quote_status": False,
            "retweeted_status": original,
            "entities": {
                "hashtags": [],
                "user_mentions": [
                    {
                        "id": author["id"],
                        "id_str": author["id_str"],
                        "screen_name": author["screen_name"],
                        "indices": [3, 4 + len(author["screen_name"])],
                    }
                ],
                "urls": [],
            },
            "lang": "en",
        }


class RedditFormat(_PlatformFormat):
    """Pushshift-style Reddit ndjson: submissions (posts, crossposts) and comments (replies)."""

    name = "reddit"
    network = V.REDDIT

    def lines(self, events: DayEvents, start: int, stop: int) -> list[str]:
        """Format the Reddit posts among rows ``start:stop`` of ``events``."""
        self._prepare(events)
        today = self._store[events.day_index]
        out = []
        for row in self._rows(events, start, stop).tolist():
            post_number = int(events.post[row])
            post = today[post_number]
            if post.kind == V.REPLY:
                parent = self._lookup(post.parent, int(events.subject[row]))
                record = self._comment(post_number, post, parent)
            else:
                record = self._submission(post_number, post)
                if post.kind == V.RESHARE:
                    parent = self._lookup(post.parent, int(events.subject[row]))
                    record["crosspost_parent"] = "t3_" + base36(post.parent)
                    record["title"] = self.texts.raw[parent.text] if parent.text >= 0 else ""
            out.append(compact_json(record))
        return out

    def _author(self, account: int) -> dict:
        return {
            "author": self.names[account],
            "author_fullname": "t2_" + base36(int(self.pop.local_id[account])),
            "author_created_utc": int(self.pop.created_at[account]),
        }

    def _body(self, post: _Post) -> str:
        prefix = "".join(f"u/{self.names[account]} " for account in post.mentions)
        return prefix + (self.texts.raw[post.text] if post.text >= 0 else "")

    def _submission(self, number: int, post: _Post) -> dict:
        identifier = base36(number)
        return {
            "id": identifier,
            "name": "t3_" + identifier,
            **self._author(post.author),
            "subreddit": post.subreddit,
            "subreddit_name_prefixed": "r/" + post.subreddit,
            "title": self._body(post),
            "selftext": "",
            "created_utc": post.epoch,
            "num_comments": 0,
            "score": 1,
            "permalink": f"/r/{post.subreddit}/comments/{identifier}/",
        }

    def _comment(self, number: int, post: _Post, parent: _Post) -> dict:
        identifier = base36(number)
        parent_prefix = "t1_" if parent.kind == V.REPLY else "t3_"
        return {
            "id": identifier,
            "name": "t1_" + identifier,
            **self._author(post.author),
            "body": self._body(post),
            "parent_id": parent_prefix + base36(post.parent),
            "link_id": "t3_" + base36(post.root),
            "subreddit": post.subreddit,
            "created_utc": post.epoch,
            "score": 1,
        }


# ---- dirty specs
def _twitter_set_time(record: dict, epoch: int) -> None:
    record["created_at"] = twitter_time(epoch)


def _twitter_id_as_number(record: dict) -> None:
    record["id_str"] = int(record["id_str"])


def _twitter_user_as_string(record: dict) -> None:
    record["user"] = record["user"]["screen_name"]


def _twitter_time_garbage(record: dict) -> None:
    record["created_at"] = "yesterday at noon"


def _twitter_entities_as_string(record: dict) -> None:
    record["entities"] = "#" + " #".join(tag["text"] for tag in record["entities"]["hashtags"])


TwitterFormat.dirty_spec = DirtySpec(
    required_keys=("id_str", "created_at", "user", "text"),
    wrong_types=(
        _twitter_id_as_number,
        _twitter_user_as_string,
        _twitter_time_garbage,
        _twitter_entities_as_string,
    ),
    set_time=_twitter_set_time,
)


def _reddit_set_time(record: dict, epoch: int) -> None:
    record["created_utc"] = epoch


def _reddit_time_garbage(record: dict) -> None:
    record["created_utc"] = "last tuesday"


def _reddit_author_as_number(record: dict) -> None:
    record["author"] = int(record["author_fullname"][3:], 36)


def _reddit_id_as_number(record: dict) -> None:
    record["id"] = int(record["id"], 36)


RedditFormat.dirty_spec = DirtySpec(
    required_keys=("id", "author", "created_utc", "subreddit"),
    wrong_types=(_reddit_time_garbage, _reddit_author_as_number, _reddit_id_as_number),
    set_time=_reddit_set_time,
)
