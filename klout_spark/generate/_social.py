"""Facebook Graph API feed pages and LinkedIn member archives, from a world with those networks.

Facebook: one saved feed response per line, ``{"data": [post], "paging": ...}``.
A post is written on its day with its tags (``message_tags``); a comment, reply
or reaction is written on its day as the post it belongs to with that one
comment / reply / reaction nested (``comments.data``, ``reactions.data``), the
way a feed page saved that day shows it; the same post or comment written
twice has the same ids, so its events are deduplicated. Graph pages nest two
levels of comments: a reply is shown under its parent comment, itself shown
under the thread's post, so the parent of a third-level reply appears there
as a first-level comment (its first appearance, nested right, is the one
ingested first when the days are ingested in order). A reshare is the resharer's own post plus the original
written again with its ``shares.count``: Facebook names no sharers.

LinkedIn: one archive per member who acted, ``linkedin/linkedin-archive-<n>/``
with ``Shares.csv``, ``Comments.csv``, ``Reactions.csv`` and
``Connections.csv`` (``<n>`` = the account number, so the reader's
``li:u:<n>`` is the canonical id). Archives link posts, not comments: a reply
to a comment and a reaction to a comment point at the thread's post. A follow
becomes a connection listed in both members' archives. Posts referenced from
before the window are added to their author's ``Shares.csv``, dated then.
Rows are held in memory until the end of the window: meant for samples.
Mentions, unfollows, list adds and profiles have no form in either source.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from klout_spark.generate import _vocab as V
from klout_spark.generate._dirty import compact_json
from klout_spark.generate._platforms import _PlatformFormat, _Post
from klout_spark.generate._population import epoch_seconds
from klout_spark.generate._simulate import DayEvents

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_REACTIONS = ("LIKE", "LIKE", "LIKE", "LOVE", "CARE", "WOW", "HAHA")
_LINKEDIN_REACTIONS = ("LIKE", "LIKE", "PRAISE", "EMPATHY", "INTEREST", "APPRECIATION")
_CONNECTIONS_PREAMBLE = (
    "Notes:\n"
    '"Synthetic export: email addresses are left out for every connection of this generated member."\n'
    "\n"
)


def graph_time(epoch: int) -> str:
    """``2019-03-01T12:00:00+0000`` (Graph API ``created_time``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))


def archive_time(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def archive_date(epoch: int) -> str:
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year}"


class FacebookFormat(_PlatformFormat):
    """Graph API feed responses, one per line (see the module docstring)."""

    name = "facebook"
    network = V.FACEBOOK
    dirty_spec = None

    def __init__(self, population, text_pool, start_date) -> None:
        super().__init__(population, text_pool, start_date)
        self.share_counts: dict[int, int] = {}

    def lines(self, events: DayEvents, start: int, stop: int) -> list[str]:
        self._prepare(events)
        today = self._store[events.day_index]
        rows = np.arange(start, stop)
        kinds = (*V.AUTHORED_CODES, V.LIKE)
        rows = rows[(self.pop.network[events.actor[rows]] == self.network) & np.isin(events.etype[rows], kinds)]
        out = []
        for row in rows.tolist():
            kind, subject = int(events.etype[row]), int(events.subject[row])
            if kind == V.LIKE:
                parent = int(events.parent[row])
                target = self._lookup(parent, subject)
                reaction = {
                    "id": self._uid(int(events.actor[row])),
                    "name": self._name(int(events.actor[row])),
                    "type": _REACTIONS[(parent + int(events.actor[row])) % len(_REACTIONS)],
                }
                top = self._in_thread(parent, target, reactions=[reaction])
            else:
                number = int(events.post[row])
                post = today[number]
                if kind == V.REPLY:
                    top = self._in_thread(number, post)
                else:
                    top = self._object(number, post, top_level=True)
                    if kind in (V.RESHARE, V.QUOTE):
                        self.share_counts[post.parent] = self.share_counts.get(post.parent, 0) + 1
                        original = self._lookup(post.parent, subject)
                        out.append(self._page(self._object(post.parent, original, top_level=True)))
            out.append(self._page(top))
        return out

    def _page(self, post: dict) -> str:
        cursor = post["id"].replace("_", "")
        return compact_json({"data": [post], "paging": {"cursors": {"before": cursor, "after": cursor}}})

    def _uid(self, account: int) -> str:
        return str(int(self.pop.local_id[account]))

    def _name(self, account: int) -> str:
        return self.names[account].replace("_", " ")

    def _object_id(self, number: int, post: _Post, top_level: bool) -> str:
        if top_level:
            return f"{self._uid(post.author)}_{number}"
        return f"{post.root}_{number}"

    def _object(self, number: int, post: _Post, *, top_level: bool, comments=None, reactions=None) -> dict:
        body = self.texts.raw[post.text] if post.text >= 0 else ""
        tags = [V.TAGS[t] for t in (post.tag0, post.tag1) if t >= 0] if post.tag0 >= 0 else []
        message = body + "".join(f" #{tag}" for tag in tags)
        obj = {
            "id": self._object_id(number, post, top_level),
            "created_time": graph_time(post.epoch),
            "from": {"id": self._uid(post.author), "name": self._name(post.author)},
            "message": message,
        }
        if post.mentions:
            obj["message_tags"] = [
                {"id": self._uid(a), "name": self._name(a), "type": "user", "offset": 0, "length": 1}
                for a in post.mentions
            ]
        if top_level and self.share_counts.get(number):
            obj["shares"] = {"count": self.share_counts[number]}
        if reactions:
            obj["reactions"] = {"data": reactions}
        if comments:
            obj["comments"] = {"data": comments}
        return obj

    def _in_thread(self, number: int, post: _Post, reactions=None) -> dict:
        """The thread's post holding ``post`` (a post or a comment), at most two comment levels deep."""
        if post.kind != V.REPLY:
            return self._object(number, post, top_level=True, reactions=reactions)
        leaf = self._object(number, post, top_level=False, reactions=reactions)
        root = self._lookup(post.root, post.author)
        parent = self._lookup(post.parent, root.author)
        if post.parent == post.root or parent.kind != V.REPLY:
            return self._object(post.root, root, top_level=True, comments=[leaf])
        middle = self._object(post.parent, parent, top_level=False, comments=[leaf])
        return self._object(post.root, root, top_level=True, comments=[middle])


class LinkedInArchives(_PlatformFormat):
    """Member archives collected over the window and written by :meth:`write` (see the module docstring)."""

    name = "linkedin"
    network = V.LINKEDIN
    dirty_spec = None

    def __init__(self, population, text_pool, start_date) -> None:
        super().__init__(population, text_pool, start_date)
        self.shares: dict[int, list[tuple]] = {}
        self.comments: dict[int, list[tuple]] = {}
        self.reactions: dict[int, list[tuple]] = {}
        self.connections: dict[int, list[tuple]] = {}
        self._shared: set[int] = set()
        self._connected: set[tuple[int, int]] = set()

    def lines(self, events: DayEvents, start: int, stop: int) -> list[str]:
        """Collect the LinkedIn events among rows ``start:stop``; archives are written at the end."""
        self._prepare(events)
        today = self._store[events.day_index]
        rows = np.arange(start, stop)
        kinds = (*V.AUTHORED_CODES, V.LIKE, V.FOLLOW)
        rows = rows[(self.pop.network[events.actor[rows]] == self.network) & np.isin(events.etype[rows], kinds)]
        day_epoch = epoch_seconds(events.day)
        for row in rows.tolist():
            kind, actor, subject = int(events.etype[row]), int(events.actor[row]), int(events.subject[row])
            epoch = day_epoch + int(events.ts[row])
            if kind == V.FOLLOW:
                self._connect(actor, subject, epoch)
            elif kind == V.LIKE:
                post_number = self._thread_post(int(events.parent[row]), subject)
                reaction = _LINKEDIN_REACTIONS[(post_number + actor) % len(_LINKEDIN_REACTIONS)]
                self.reactions.setdefault(actor, []).append((archive_time(epoch), reaction, _link(post_number)))
            else:
                number = int(events.post[row])
                post = today[number]
                text = self._text(post)
                if kind == V.REPLY:
                    self.comments.setdefault(actor, []).append(
                        (archive_time(post.epoch), _link(self._thread_post(post.parent, subject)), text)
                    )
                else:
                    shared = ""
                    if kind in (V.RESHARE, V.QUOTE):
                        shared = _link(self._thread_post(post.parent, subject), encoded=False)
                        text = text if kind == V.QUOTE else ""
                    self._share(number, post, text, shared)
        return []

    def _text(self, post: _Post) -> str:
        body = self.texts.raw[post.text] if post.text >= 0 else ""
        tags = [V.TAGS[t] for t in (post.tag0, post.tag1) if t >= 0] if post.tag0 >= 0 else []
        return body + "".join(f" #{tag}" for tag in tags)

    def _share(self, number: int, post: _Post, text: str, shared: str) -> None:
        self._shared.add(number)
        visibility = "PUBLIC" if number % 3 else "MEMBER_NETWORK"
        self.shares.setdefault(post.author, []).append(
            (archive_time(post.epoch), _link(number), text, shared, "", visibility)
        )

    def _thread_post(self, number: int, author: int) -> int:
        """The post an archive links for ``number``: itself, or its thread's post if it is a comment."""
        post = self._lookup(number, author)
        if post.kind == V.REPLY:
            number = post.root
            post = self._lookup(number, post.author)
        if number not in self._shared:
            self._share(number, post, self._text(post), "")
        return number

    def _connect(self, a: int, b: int, epoch: int) -> None:
        pair = (min(a, b), max(a, b))
        if pair in self._connected or a == b:
            return
        self._connected.add(pair)
        for member, other in ((a, b), (b, a)):
            name = self.names[other].split("_")
            self.connections.setdefault(member, []).append(
                (name[0], name[1] if len(name) > 1 else "", _profile(int(self.pop.local_id[other])), "", "", "",
                 archive_date(epoch))
            )

    def write(self, folder: Path) -> list[Path]:
        """Write every member's archive under ``folder``; return the files written, in order."""
        written = []
        self.rows_written = 0
        members = sorted(set(self.shares) | set(self.comments) | set(self.reactions) | set(self.connections),
                         key=lambda account: int(self.pop.local_id[account]))
        tables = (
            ("Connections.csv", self.connections,
             ("First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On")),
            ("Shares.csv", self.shares, ("Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility")),
            ("Comments.csv", self.comments, ("Date", "Link", "Message")),
            ("Reactions.csv", self.reactions, ("Date", "Type", "Link")),
        )
        for member in members:
            archive = folder / f"linkedin-archive-{int(self.pop.local_id[member])}"
            archive.mkdir(parents=True, exist_ok=True)
            for file_name, rows_by_member, header in tables:
                rows = rows_by_member.get(member)
                if not rows:
                    continue
                path = archive / file_name
                with open(path, "w", newline="", encoding="utf-8") as handle:
                    if file_name == "Connections.csv":
                        handle.write(_CONNECTIONS_PREAMBLE)
                    writer = csv.writer(handle, lineterminator="\n")
                    writer.writerow(header)
                    writer.writerows(rows)
                written.append(path)
                self.rows_written += len(rows)
        return written


def _link(post_number: int, *, encoded: bool = True) -> str:
    urn = f"urn:li:activity:{post_number}"
    return "https://www.linkedin.com/feed/update/" + (urn.replace(":", "%3A") if encoded else urn + "/")


def _profile(local_id: int) -> str:
    return f"https://www.linkedin.com/in/{local_id}"
