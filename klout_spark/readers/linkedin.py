"""LinkedIn member data archives (CSV) and API social-action JSON -> canonical events.

Member archive ("Get a copy of your data"): a folder named
``linkedin-archive-<member>`` (``<member>`` = the member's public profile
name, the ``jane-doe`` of ``linkedin.com/in/jane-doe``) holding the export's
CSV files. The files carry no id of the member they belong to, so the folder
name says it. Read, by file name (others, like ``Profile.csv``, are skipped):

- ``Connections.csv`` (``First Name,Last Name,URL,Email Address,Company,
  Position,Connected On``, after a few ``Notes:`` preamble lines; ``Connected
  On`` like ``01 Mar 2019``): a connection is mutual, so each row gives two
  ``follow`` events, member -> connection and connection -> member,
  ``li:conn:<from>:<to>`` (the same ids from the other member's archive, so
  two archives that list the same connection are deduplicated);
- ``Shares.csv`` (``Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,
  Visibility``; ``Date`` like ``2019-03-01 12:00:00`` UTC): a ``post``
  ``li:share:<urn>`` with post ``li:p:<urn>`` (``<urn>`` = the
  ``activity:N`` / ``share:N`` / ``ugcPost:N`` URN in ``ShareLink``, with
  ``urn:li:`` dropped); if ``SharedUrl`` is a LinkedIn post it is a
  ``reshare`` of it (a ``quote`` when the member added commentary);
- ``Comments.csv`` (``Date,Link,Message``): a ``reply`` to the post in ``Link``,
  ``li:comment:<member>:<hash of date, link, message>`` (the export gives the
  comment no id);
- ``Reactions.csv`` (``Date,Type,Link``): a ``like`` of the post in ``Link``,
  ``li:react:<member>:<urn>`` (one reaction per member and post).

CSV cells may span lines (commentary with line breaks): records are rebuilt
from the lines by counting quotes (:func:`csv_records`). A record is the unit
of accounting; preamble lines before the header are not records.

API social actions (``GET /socialActions/{urn}/comments`` and ``/likes``): a
response ``{"paging": ..., "elements": [...]}`` per line or per file (or one
element per line). The element is the unit of accounting. A comment
(``message.text``) is a ``reply`` ``li:comment:<id>``, post
``li:p:comment:<id>``, to ``parentComment`` if set, else to ``object``; a
like is ``li:like:<object>:<actor>``. ``created.time`` is epoch milliseconds;
``urn:li:person:X`` -> ``li:u:X``, ``urn:li:organization:N`` -> ``li:o:N``.
API person ids and archive profile names are different id spaces: link them
through the identities table if needed.

Neither source names the author of the post commented on or reacted to: the
subject is resolved at ingest from the posts already known
(:func:`klout_spark.ingest.resolve_parent_authors`), else ``unknown_parent``.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import columns as C
from klout_spark import schemas
from klout_spark.readers._common import (
    CORRUPT,
    PERMISSIVE,
    event_struct,
    explode_line_events,
    explode_records,
    first_reason,
    hashtags_in_text,
    is_json_object,
)

NETWORK = "linkedin"
ARCHIVE_FOLDER = re.compile(r"^linkedin-archive-(?P<member>[A-Za-z0-9][A-Za-z0-9_.%-]*)$")
CONNECTIONS, SHARES, COMMENTS, REACTIONS = "connections", "shares", "comments", "reactions"
# Archive file (lower-cased name) -> its kind, and the columns a header must have.
ARCHIVE_FILES: dict[str, str] = {
    "connections.csv": CONNECTIONS,
    "shares.csv": SHARES,
    "comments.csv": COMMENTS,
    "reactions.csv": REACTIONS,
}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    CONNECTIONS: ("URL", "Connected On"),
    SHARES: ("Date", "ShareLink"),
    COMMENTS: ("Date", "Link", "Message"),
    REACTIONS: ("Date", "Type", "Link"),
}
_OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    CONNECTIONS: ("First Name", "Last Name"),
    SHARES: ("ShareCommentary", "SharedUrl"),
    COMMENTS: (),
    REACTIONS: (),
}
_S = T.StringType()
_POST_URN = r"urn:li:((?:activity|share|ugcPost):[0-9]+)"
_PROFILE_URL = r"linkedin\.com/in/([^/?#\s]+)"


def archive_member(path: str) -> str | None:
    """The member of an archive file: from the nearest ``linkedin-archive-<member>`` folder above it."""
    for part in reversed(PurePath(path).parent.parts):
        match = ARCHIVE_FOLDER.match(part)
        if match:
            return match.group("member")
    return None


def archive_kind(path: str) -> str | None:
    """``connections``/``shares``/``comments``/``reactions`` for an archive file inside a member folder."""
    if archive_member(path) is None:
        return None
    return ARCHIVE_FILES.get(PurePath(path).name.lower())


def find_header(numbered_lines: list[tuple[int, str]], kind: str) -> tuple[int, list[str]] | None:
    """The (line number, column names) of the first line holding every required column of ``kind``."""
    for number, line in numbered_lines:
        names = [cell.strip().strip('"').strip() for cell in line.lstrip("\ufeff").split(",")]
        if all(name in names for name in REQUIRED_COLUMNS[kind]):
            return number, names
    return None


def csv_records(lines: DataFrame) -> DataFrame:
    """Rebuild CSV records whose quoted cells span lines, per file, in line order.

    Requires ``source_path``, ``source_line`` and ``value`` (every line, blank
    ones included). Returns ``source_path``, ``source_line`` (the record's first
    line) and ``value`` (its lines joined by ``\\n``); blank records are dropped.
    A line starts a record when the quotes before it in the file are balanced.

    Notes
    -----
    Windows over each whole file: meant for member archives (one person's data),
    not for dumps of millions of lines.
    """
    in_file = Window.partitionBy(C.SOURCE_PATH).orderBy(C.SOURCE_LINE)
    quotes = F.length(F.col("value")) - F.length(F.regexp_replace("value", '"', ""))
    before = F.coalesce(F.sum("_quotes").over(in_file.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
    starts = (before % 2 == 0).cast("int")
    numbered = (
        lines.withColumn("_quotes", quotes)
        .withColumn("_starts", starts)
        .withColumn("_record", F.sum("_starts").over(in_file.rowsBetween(Window.unboundedPreceding, 0)))
    )
    records = numbered.groupBy(C.SOURCE_PATH, "_record").agg(
        F.min(C.SOURCE_LINE).alias(C.SOURCE_LINE),
        F.sort_array(F.collect_list(F.struct(C.SOURCE_LINE, "value"))).alias("_lines"),
    )
    joined = F.array_join(F.transform("_lines", lambda x: x["value"]), "\n")
    return records.select(C.SOURCE_PATH, C.SOURCE_LINE, joined.alias("value")).filter(
        F.length(F.trim("value")) > 0
    )


def _post_urn(link: Column) -> Column:
    """``activity:N`` (or ``share:N``, ``ugcPost:N``) from a LinkedIn post link or URN; null if none."""
    decoded = F.coalesce(F.try_url_decode(link), link)
    found = F.regexp_extract(decoded, _POST_URN, 1)
    return F.when(found != "", found)


def user_id(raw: Column) -> Column:
    return F.concat(F.lit("li:u:"), raw)


def post_id(urn: Column) -> Column:
    return F.concat(F.lit("li:p:"), urn)


def parse_linkedin_archive(
    records: DataFrame, *, kind: str, header: list[str], member: str | Column, max_raw_chars: int
) -> DataFrame:
    """Parse the data records (header and preamble removed) of archive files of ``kind``.

    Parameters
    ----------
    records
        Requires ``value`` (one CSV record, as from :func:`csv_records`); other
        columns are passed through.
    header
        The file's column names (their order gives the cells' positions).
    member
        The archive's member (profile name), the actor of shares, comments and
        reactions and one side of every connection: a name, or a column giving
        each record's member (to parse the files of many archives at once).

    Returns
    -------
    DataFrame
        The passed columns plus the canonical columns, ``reason`` (null, or
        ``malformed_csv``, ``missing_field:<column>``, ``bad_timestamp``,
        ``bad_type:<column>``), ``raw`` and ``_event_index``.
    """
    if kind not in REQUIRED_COLUMNS:
        raise ValueError(f"kind: expected one of {sorted(REQUIRED_COLUMNS)}, got {kind!r}")
    ddl = ", ".join([f"_c{i} STRING" for i in range(len(header))] + [f"{CORRUPT} STRING"])
    cells = F.from_csv(F.col("value"), ddl, {**PERMISSIVE, "escape": '"', "multiLine": "true"})
    position = {name: i for i, name in reversed(list(enumerate(header)))}
    missing = [name for name in REQUIRED_COLUMNS[kind] if name not in position]
    if missing:
        raise ValueError(f"header: {kind} needs columns {missing}; got {header}")

    def cell(name: str) -> Column:
        if name not in position:
            return F.lit(None).cast("string")
        return F.nullif(F.trim(F.col(f"_cells._c{position[name]}")), F.lit(""))

    bad_csv = F.col(f"_cells.{CORRUPT}").isNotNull()
    member = F.lit(member) if isinstance(member, str) else member
    me = user_id(member)
    if kind == CONNECTIONS:
        when = F.try_to_timestamp(cell("Connected On"), F.lit("d MMM yyyy"))
        other_name = F.regexp_extract(cell("URL"), _PROFILE_URL, 1)
        other = user_id(F.try_url_decode(other_name))
        checks = [
            (bad_csv, "malformed_csv"),
            (cell("URL").isNull(), "missing_field:URL"),
            (other_name == "", "bad_type:URL"),
            (cell("Connected On").isNull(), "missing_field:Connected On"),
            (when.isNull(), "bad_timestamp"),
            (other == me, "bad_type:URL"),
        ]

        def follow(src: Column, dst: Column) -> Column:
            return event_struct(
                event_id=F.concat(F.lit("li:conn:"), F.substring(src, 6, 1000), F.lit(":"), F.substring(dst, 6, 1000)),
                network=F.lit(NETWORK), event_type=F.lit(schemas.FOLLOW), event_ts=when,
                actor_id=src, subject_id=dst,
            )

        events = F.array(follow(me, other), follow(other, me))
        keep_raw = None
    else:
        when = F.try_to_timestamp(cell("Date"), F.lit("yyyy-MM-dd HH:mm:ss"))
        link_name = "ShareLink" if kind == SHARES else "Link"
        urn = _post_urn(cell(link_name))
        checks = [
            (bad_csv, "malformed_csv"),
            (cell("Date").isNull(), "missing_field:Date"),
            (when.isNull(), "bad_timestamp"),
            (cell(link_name).isNull(), f"missing_field:{link_name}"),
            (urn.isNull(), f"bad_type:{link_name}"),
        ]
        if kind == SHARES:
            text = cell("ShareCommentary")
            shared = _post_urn(cell("SharedUrl"))
            event_type = (
                F.when(shared.isNull(), F.lit(schemas.POST))
                .when(text.isNull(), F.lit(schemas.RESHARE))
                .otherwise(F.lit(schemas.QUOTE))
            )
            event = event_struct(
                event_id=F.concat(F.lit("li:share:"), urn), event_type=event_type,
                post_id=post_id(urn), parent_post_id=post_id(shared),
                text=text, hashtags=hashtags_in_text(text),
                network=F.lit(NETWORK), event_ts=when, actor_id=me,
            )
            keep_raw = shared.isNotNull()
        elif kind == COMMENTS:
            text = cell("Message")
            digest = F.substring(
                F.sha2(F.concat_ws("\u0001", cell("Date"), cell("Link"), F.coalesce(text, F.lit(""))), 256), 1, 16
            )
            comment = F.concat(member, F.lit(":"), digest)
            checks.append((text.isNull(), "missing_field:Message"))
            event = event_struct(
                event_id=F.concat(F.lit("li:comment:"), comment), event_type=F.lit(schemas.REPLY),
                post_id=F.concat(F.lit("li:p:comment:"), comment), parent_post_id=post_id(urn),
                text=text, hashtags=hashtags_in_text(text),
                network=F.lit(NETWORK), event_ts=when, actor_id=me,
            )
            keep_raw = F.lit(True)
        else:
            checks.append((cell("Type").isNull(), "missing_field:Type"))
            event = event_struct(
                event_id=F.concat(F.lit("li:react:"), member, F.lit(":"), urn), event_type=F.lit(schemas.LIKE),
                parent_post_id=post_id(urn), network=F.lit(NETWORK), event_ts=when, actor_id=me,
            )
            keep_raw = F.lit(True)
        events = F.array(event)
    return explode_line_events(
        records.withColumn("_cells", cells),
        events=events,
        reason=first_reason(checks),
        max_raw_chars=max_raw_chars,
        keep_raw=keep_raw,
    ).drop("_cells")


# --- API social actions --------------------------------------------------------------------
_RESPONSE_SCHEMA = T.StructType([T.StructField("elements", _S), T.StructField(CORRUPT, _S)])
_ELEMENT_SCHEMA = T.StructType(
    [T.StructField(n, _S) for n in ("actor", "created", "id", "object", "message", "parentComment", "$URN", CORRUPT)]
)
_CREATED_SCHEMA = T.StructType([T.StructField("time", _S)])
_MESSAGE_SCHEMA = T.StructType([T.StructField("text", _S)])


def _actor_id(urn: Column) -> Column:
    kind = F.regexp_extract(urn, r"^urn:li:(person|member|organization):(.+)$", 1)
    tail = F.regexp_extract(urn, r"^urn:li:(person|member|organization):(.+)$", 2)
    return F.when(kind == "organization", F.concat(F.lit("li:o:"), tail)).when(kind != "", user_id(tail))


def _comment_id(urn: Column) -> Column:
    """The comment number of ``urn:li:comment:(urn:li:activity:N,M)``; null if it is not one."""
    found = F.regexp_extract(urn, r"^urn:li:comment:\(.*,\s*([0-9]+)\)$", 1)
    return F.when(found != "", found)


def _social_action(raw: Column) -> Column:
    e = F.from_json(raw, _ELEMENT_SCHEMA, PERMISSIVE)
    created = F.from_json(e["created"], _CREATED_SCHEMA)
    message = F.from_json(e["message"], _MESSAGE_SCHEMA)
    millis = F.trim(created["time"]).try_cast("long")
    ts = F.timestamp_millis(millis)
    actor = _actor_id(e["actor"])
    target = F.regexp_extract(F.coalesce(e["object"], F.lit("")), r"^urn:li:(.+)$", 1)
    is_comment = e["message"].isNotNull()
    parent_comment = _comment_id(e["parentComment"])
    comment_id = F.coalesce(e["id"], _comment_id(e["$URN"]))
    checks = [
        (e.isNull() | e[CORRUPT].isNotNull() | ~is_json_object(raw), "bad_type:elements"),
        (e["actor"].isNull(), "missing_field:actor"),
        (actor.isNull(), "bad_type:actor"),
        (e["created"].isNull(), "missing_field:created"),
        (created["time"].isNull(), "missing_field:created.time"),
        (millis.isNull() | ts.isNull(), "bad_timestamp"),
        (e["object"].isNull(), "missing_field:object"),
        (target == "", "bad_type:object"),
        (is_comment & (message.isNull() | ~is_json_object(e["message"])), "bad_type:message"),
        (is_comment & comment_id.isNull(), "missing_field:id"),
        (is_comment & e["parentComment"].isNotNull() & parent_comment.isNull(), "bad_type:parentComment"),
    ]
    parent = F.coalesce(F.concat(F.lit("comment:"), parent_comment), target)
    reply = event_struct(
        event_id=F.concat(F.lit("li:comment:"), comment_id), event_type=F.lit(schemas.REPLY),
        post_id=F.concat(F.lit("li:p:comment:"), comment_id), parent_post_id=post_id(parent),
        text=message["text"], hashtags=hashtags_in_text(message["text"]),
        network=F.lit(NETWORK), event_ts=ts, actor_id=actor,
    )
    like = event_struct(
        event_id=F.concat(F.lit("li:like:"), target, F.lit(":"), F.substring(actor, 4, 1000)),
        event_type=F.lit(schemas.LIKE), parent_post_id=post_id(target),
        network=F.lit(NETWORK), event_ts=ts, actor_id=actor,
    )
    return F.struct(first_reason(checks).alias("reason"), F.array(F.when(is_comment, reply).otherwise(like)).alias(
        "events"
    ))


def parse_linkedin_lines(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse LinkedIn social-action responses (or single elements) into canonical events.

    Requires ``value`` (a line, or a whole file); other columns are passed
    through. Reasons: ``malformed_json``, ``bad_type:elements``, ``no_events``,
    ``missing_field:<f>``, ``bad_type:<f>``, ``bad_timestamp``. ``raw`` is kept
    on good rows too: their subject is resolved at ingest.
    """
    value = F.col("value")
    response = F.from_json(value, _RESPONSE_SCHEMA, PERMISSIVE)
    elements = F.from_json(response["elements"], T.ArrayType(_S))
    items = F.when(response["elements"].isNotNull(), elements).otherwise(F.array(value))
    doc_reason = first_reason(
        [
            (response.isNull() | response[CORRUPT].isNotNull() | ~is_json_object(value), "malformed_json"),
            (response["elements"].isNotNull() & elements.isNull(), "bad_type:elements"),
        ]
    )
    records = explode_records(lines, items=items, reason=doc_reason, null_reason="bad_type:elements")
    action = F.col("_action")
    return explode_line_events(
        records.withColumn("_action", _social_action(F.col("value"))),
        events=action["events"],
        reason=F.coalesce(F.col("_doc_reason"), action["reason"]),
        max_raw_chars=max_raw_chars,
        keep_raw=F.lit(True),
    ).drop("_action", "_doc_reason")
