"""Facebook Graph API page/group feed JSON -> canonical events.

Input: the responses saved while paging through ``/{page-or-group}/feed``,
one response object per line (ndjson) or one pretty-printed response per file
(read whole, see :mod:`klout_spark.ingest`). A response is
``{"data": [post, ...], "paging": {...}}``; the ``paging`` cursors are ignored.
The unit of accounting is one post of ``data``: a post with everything nested
in it becomes several events or, if anything in it is bad, one quarantine row
(raw = the post's JSON). A response that is not JSON, lacks ``data`` or has an
empty ``data`` (the page after the last one) counts as one record.

A post (``id`` like ``"<page id>_<post id>"``, ``created_time`` like
``2019-03-01T12:00:00+0000``, ``from{id,name}``, ``message``) gives:

- the ``post`` itself, event ``fb:post:<id>``, post ``fb:p:<id>``, hashtags
  from ``#words`` in ``message``, and ``share_count`` = ``shares.count``:
  Facebook reports how often a post was shared but not by whom, so the count
  is kept as an aggregate on the post event, never turned into invented
  reshare events;
- one ``mention`` per distinct ``message_tags[].id`` other than the author,
  event ``fb:tag:<post id>:<tagged id>``;
- one ``like`` per ``reactions.data[]`` entry (any reaction ``type``: LIKE,
  LOVE, HAHA, WOW, SAD, ANGRY, CARE... all count as a like of the author),
  event ``fb:react:<post id>:<reactor id>`` (Facebook allows one reaction per
  person and object), at the post's time: the Graph API gives reactions no time;
- one ``reply`` per ``comments.data[]`` entry, event ``fb:comment:<id>``,
  subject = the post's author, parent = the post; a comment's own
  ``comments.data[]`` are replies to it (subject = the comment's author), and
  comments carry tags and reactions like posts do. Nesting deeper than
  ``MAX_COMMENT_DEPTH`` levels is quarantined as ``too_deep:comments``.

User ids are ``fb:u:<from.id>``. Reasons: ``malformed_json``,
``missing_field:data``, ``bad_type:data``, ``no_events``,
``missing_field:<path>``, ``bad_type:<path>``, ``bad_timestamp``,
``too_deep:comments``, where ``<path>`` names the nested field
(``comments.from.id``...).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import schemas
from klout_spark.readers._common import (
    CORRUPT,
    PERMISSIVE,
    event_struct,
    explode_line_events,
    explode_records,
    first_reason,
    first_reason_of,
    hashtags_in_text,
    is_json_object,
    parse_offset_time,
)

NETWORK = "facebook"
# Levels of comments under a post: comments, and replies to comments (what the
# Graph API returns). Each level multiplies the size of the parsing expression.
MAX_COMMENT_DEPTH = 2
_S = T.StringType()
_PAGE_SCHEMA = T.StructType([T.StructField("data", _S), T.StructField(CORRUPT, _S)])
_NODE_SCHEMA = T.StructType(
    [
        T.StructField(name, _S)
        for name in ("id", "created_time", "from", "message", "message_tags", "shares", "reactions", "comments",
                     CORRUPT)
    ]
)
_FROM_SCHEMA = T.StructType([T.StructField("id", _S)])
_TAGS_SCHEMA = T.ArrayType(T.StructType([T.StructField("id", _S), T.StructField("type", _S)]))
_SHARES_SCHEMA = T.StructType([T.StructField("count", _S)])
_REACTIONS_SCHEMA = T.StructType(
    [T.StructField("data", T.ArrayType(T.StructType([T.StructField("id", _S), T.StructField("type", _S)])))]
)
_COMMENTS_SCHEMA = T.StructType([T.StructField("data", T.ArrayType(_S))])


def user_id(raw_id: Column) -> Column:
    return F.concat(F.lit("fb:u:"), raw_id)


def post_id(raw_id: Column) -> Column:
    return F.concat(F.lit("fb:p:"), raw_id)


def _node(raw: Column, *, path: str, depth: int, parent: Column | None, parent_author: Column | None) -> Column:
    """A struct ``(reason, events)`` for a post (depth 0) or a comment (depth >= 1) and all it holds."""
    n = F.from_json(raw, _NODE_SCHEMA, PERMISSIVE)
    who = F.from_json(n["from"], _FROM_SCHEMA)
    tags = F.from_json(n["message_tags"], _TAGS_SCHEMA)
    shares = F.from_json(n["shares"], _SHARES_SCHEMA)
    share_count = F.trim(shares["count"]).try_cast("long")
    reactions = F.from_json(n["reactions"], _REACTIONS_SCHEMA)
    comments = F.from_json(n["comments"], _COMMENTS_SCHEMA)
    ts = parse_offset_time(n["created_time"])
    node_id = n["id"]
    actor = user_id(who["id"])
    reaction_list = F.coalesce(reactions["data"], F.array())
    tag_list = F.coalesce(tags, F.array())
    checks: list[tuple[Column, str]] = [
        (n.isNull() | n[CORRUPT].isNotNull() | ~is_json_object(raw), f"bad_type:{path[:-1] or 'data'}"),
        (node_id.isNull(), f"missing_field:{path}id"),
        (n["created_time"].isNull(), f"missing_field:{path}created_time"),
        (ts.isNull(), "bad_timestamp"),
        (n["from"].isNull(), f"missing_field:{path}from"),
        (~is_json_object(n["from"]) | who.isNull(), f"bad_type:{path}from"),
        (who["id"].isNull(), f"missing_field:{path}from.id"),
        (n["message_tags"].isNotNull() & tags.isNull(), f"bad_type:{path}message_tags"),
        (F.exists(tag_list, lambda t: t["id"].isNull()), f"missing_field:{path}message_tags.id"),
        (n["shares"].isNotNull() & (shares.isNull() | (shares["count"].isNotNull() & share_count.isNull())),
         f"bad_type:{path}shares"),
        (n["reactions"].isNotNull() & (reactions.isNull() | ~is_json_object(n["reactions"])),
         f"bad_type:{path}reactions"),
        (F.exists(reaction_list, lambda r: r["id"].isNull()), f"missing_field:{path}reactions.id"),
        (n["comments"].isNotNull() & (comments.isNull() | ~is_json_object(n["comments"])),
         f"bad_type:{path}comments"),
    ]
    if depth == 0:
        own = event_struct(
            event_id=F.concat(F.lit("fb:post:"), node_id),
            event_type=F.lit(schemas.POST),
            share_count=share_count,
            **_common(node_id, ts, actor, n["message"]),
        )
    else:
        own = event_struct(
            event_id=F.concat(F.lit("fb:comment:"), node_id),
            event_type=F.lit(schemas.REPLY),
            subject_id=parent_author,
            parent_post_id=post_id(parent),
            **_common(node_id, ts, actor, n["message"]),
        )
    tagged = F.array_distinct(F.filter(F.transform(tag_list, lambda t: t["id"]), lambda i: i != who["id"]))
    mentions = F.transform(
        tagged,
        lambda i: event_struct(
            event_id=F.concat(F.lit("fb:tag:"), node_id, F.lit(":"), i),
            network=F.lit(NETWORK),
            event_type=F.lit(schemas.MENTION),
            event_ts=ts,
            actor_id=actor,
            subject_id=user_id(i),
            post_id=post_id(node_id),
        ),
    )
    likes = F.transform(
        reaction_list,
        lambda r: event_struct(
            event_id=F.concat(F.lit("fb:react:"), node_id, F.lit(":"), r["id"]),
            network=F.lit(NETWORK),
            event_type=F.lit(schemas.LIKE),
            event_ts=ts,
            actor_id=user_id(r["id"]),
            subject_id=actor,
            parent_post_id=post_id(node_id),
        ),
    )
    events = F.concat(F.array(own), mentions, likes)
    children = F.coalesce(comments["data"], F.array())
    if depth < MAX_COMMENT_DEPTH:
        replies = F.transform(
            children,
            lambda c: _node(c, path=path + "comments.", depth=depth + 1, parent=node_id, parent_author=actor),
        )
        child_reason = first_reason_of(replies)
        events = F.concat(events, F.flatten(F.transform(replies, lambda x: x["events"])))
    else:
        child_reason = F.when(F.size(children) > 0, F.lit("too_deep:comments"))
    reason = F.coalesce(first_reason(checks), child_reason)
    return F.struct(reason.alias("reason"), events.alias("events"))


def _common(node_id: Column, ts: Column, actor: Column, message: Column) -> dict[str, Column]:
    return {
        "network": F.lit(NETWORK),
        "event_ts": ts,
        "actor_id": actor,
        "post_id": post_id(node_id),
        "text": message,
        "hashtags": hashtags_in_text(message),
    }


def parse_facebook_lines(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse Graph API feed responses into canonical events (see the module docstring).

    Requires ``value`` (one response: a line, or a whole file); other columns are
    passed through. Returns them plus the canonical columns, ``reason``, ``raw``
    and ``_event_index`` (0 on the first row of each post, which is what the
    ingest accounting counts).
    """
    page = F.from_json(F.col("value"), _PAGE_SCHEMA, PERMISSIVE)
    posts = F.from_json(page["data"], T.ArrayType(_S))
    page_reason = first_reason(
        [
            (page.isNull() | page[CORRUPT].isNotNull() | ~is_json_object(F.col("value")), "malformed_json"),
            (page["data"].isNull(), "missing_field:data"),
            (posts.isNull(), "bad_type:data"),
        ]
    )
    records = explode_records(lines, items=posts, reason=page_reason, null_reason="bad_type:data")
    post = F.col("_post")
    return (
        explode_line_events(
            records.withColumn("_post", _node(F.col("value"), path="", depth=0, parent=None, parent_author=None)),
            events=post["events"],
            reason=F.coalesce(F.col("_doc_reason"), post["reason"]),
            max_raw_chars=max_raw_chars,
        )
        .drop("_post", "_doc_reason")
    )
