"""LinkedIn readers: member archive CSVs and API social actions -> exact events; damage -> quarantine."""

import json
from datetime import datetime

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.ingest import ingest_files
from klout_spark.readers import parse_linkedin_lines
from klout_spark.readers.linkedin import archive_kind, archive_member, find_header

ANA_POST = "urn:li:activity:7059000000000000001"
BEN_POST = "urn:li:activity:7058000000000000009"


def feed(urn, *, encoded=True):
    return "https://www.linkedin.com/feed/update/" + (urn.replace(":", "%3A") if encoded else urn + "/")


CONNECTIONS = """Notes:
"Some connections hide their email address; only the addresses they chose to share are listed below."

First Name,Last Name,URL,Email Address,Company,Position,Connected On
Ben,Okoro,https://www.linkedin.com/in/ben-okoro,,Harbour Trust,Warden,01 Mar 2019
Chloe,Ng,https://www.linkedin.com/in/chloe-ng-77,chloe@example.org,"Ng, Patel & Co",Partner,5 Feb 2021
Dan,Roe,,,,,03 Apr 2022
Eve,Stone,https://www.linkedin.com/in/eve-stone,,,,sometime in 2020
"""
SHARES = f"""Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility
2023-05-02 09:30:00,{feed(ANA_POST)},"Spring survey results are in.

Thanks to every volunteer, and to ""Harbour Trust"" for the boat! #Birding",,,MEMBER_NETWORK
2023-05-03 10:00:00,{feed("urn:li:activity:7059000000000000002")},,{feed(BEN_POST, encoded=False)},,PUBLIC
2023-05-04 11:00:00,{feed("urn:li:share:7059000000000000003")},Worth a read,{feed(BEN_POST, encoded=False)},,PUBLIC
05/04/2023 11:00,{feed("urn:li:activity:7059000000000000004")},Wrong date format,,,PUBLIC
"""
COMMENTS = f"""Date,Link,Message
2023-05-05 08:00:00,{feed(BEN_POST)},"Lovely shot, Ben!"
2023-05-06 08:00:00,{feed("urn:li:activity:7000000000000000000")},Who posted this?
2023-05-06 09:00:00,see my profile,Hello
"""
REACTIONS = f"""Date,Type,Link
2023-05-05 08:01:00,PRAISE,{feed(BEN_POST)}
"""
BEN_SHARES = f"""Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility
2023-05-01 18:45:00,{feed(BEN_POST)},Heron at dusk #birding,,https://media.licdn.com/heron.jpg,PUBLIC
"""
BEN_CONNECTIONS = """First Name,Last Name,URL,Email Address,Company,Position,Connected On
Ana,Lima,https://www.linkedin.com/in/ana-lima-4b2,,Harbour Birding Club,Chair,01 Mar 2019
"""

PERSON_X = "urn:li:person:xK2b9QeR1p"
COMMENT_X = f"urn:li:comment:({ANA_POST},7060000000000000101)"
COMMENTS_RESPONSE = {
    "paging": {"start": 0, "count": 10, "links": [], "total": 2},
    "elements": [
        {
            "actor": PERSON_X, "agent": PERSON_X,
            "created": {"actor": PERSON_X, "time": 1683280800000},
            "lastModified": {"actor": PERSON_X, "time": 1683280800000},
            "id": "7060000000000000101", "$URN": COMMENT_X,
            "message": {"attributes": [], "text": "Great work #birding"},
            "object": ANA_POST,
        },
        {
            "actor": "urn:li:person:Zq7Lm2Pw0a",
            "created": {"actor": "urn:li:person:Zq7Lm2Pw0a", "time": 1683284400000},
            "id": "7060000000000000102",
            "message": {"text": "Agreed"},
            "object": ANA_POST,
            "parentComment": COMMENT_X,
        },
    ],
}
LIKES_RESPONSE = {
    "paging": {"start": 0, "count": 10, "links": []},
    "elements": [
        {
            "actor": "urn:li:organization:2414183",
            "created": {"actor": "urn:li:person:Zq7Lm2Pw0a", "time": 1683288000000},
            "$URN": f"urn:li:like:({ANA_POST},urn:li:organization:2414183)",
            "object": ANA_POST,
        },
        {"actor": PERSON_X, "created": {"time": "noon"}, "object": ANA_POST},
        {"actor": "Ben", "created": {"time": 1683288000000}, "object": ANA_POST},
    ],
}


def test_archive_member_and_header_come_from_the_folder_and_the_lines():
    assert archive_member("/x/linkedin-archive-ana-lima-4b2/Shares.csv") == "ana-lima-4b2"
    assert archive_kind("/x/linkedin-archive-ana-lima-4b2/sub/Connections.csv") == "connections"
    assert archive_kind("/x/linkedin-archive-ana-lima-4b2/Profile.csv") is None
    assert archive_kind("/x/exports/Shares.csv") is None
    numbered = list(enumerate(CONNECTIONS.splitlines(), start=1))
    assert find_header(numbered, "connections") == (
        4, ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"])


def test_social_action_comments_and_likes_become_events(spark):
    frame = spark.createDataFrame([(json.dumps(COMMENTS_RESPONSE),), (json.dumps(LIKES_RESPONSE),)], "value string")
    rows = parse_linkedin_lines(frame, max_raw_chars=1000).collect()
    got = {
        r[C.EVENT_ID]: (r[C.EVENT_TYPE], r[C.ACTOR_ID], r[C.SUBJECT_ID], r[C.POST_ID], r[C.PARENT_POST_ID],
                        r[C.EVENT_TS], r[C.TEXT], r[C.HASHTAGS])
        for r in rows if r[C.REASON] is None
    }
    assert got == {
        "li:comment:7060000000000000101": (
            "reply", "li:u:xK2b9QeR1p", None, "li:p:comment:7060000000000000101",
            "li:p:activity:7059000000000000001", datetime(2023, 5, 5, 10), "Great work #birding", ["birding"]),
        "li:comment:7060000000000000102": (
            "reply", "li:u:Zq7Lm2Pw0a", None, "li:p:comment:7060000000000000102",
            "li:p:comment:7060000000000000101", datetime(2023, 5, 5, 11), "Agreed", []),
        "li:like:activity:7059000000000000001:o:2414183": (
            "like", "li:o:2414183", None, None, "li:p:activity:7059000000000000001", datetime(2023, 5, 5, 12),
            None, None),
    }
    assert sorted(r[C.REASON] for r in rows if r[C.REASON] is not None) == ["bad_timestamp", "bad_type:actor"]


def test_archives_and_social_actions_ingest_with_resolved_subjects(lake, tmp_path):
    ana = tmp_path / "exports" / "linkedin-archive-ana-lima-4b2"
    ben = tmp_path / "exports" / "linkedin-archive-ben-okoro"
    ana.mkdir(parents=True)
    ben.mkdir(parents=True)
    for name, text in (("Connections.csv", CONNECTIONS), ("Shares.csv", SHARES), ("Comments.csv", COMMENTS),
                       ("Reactions.csv", REACTIONS), ("Profile.csv", "First Name,Last Name\nAna,Lima\n")):
        (ana / name).write_text(text)
    (ben / "Shares.csv").write_text(BEN_SHARES)
    (ben / "Connections.csv").write_text(BEN_CONNECTIONS)
    api = tmp_path / "exports" / "social-actions.json"
    api.write_text(json.dumps(COMMENTS_RESPONSE, indent=2))  # one pretty-printed response

    summary = ingest_files(lake, [str(tmp_path / "exports")], run_id="r1", fmt="auto", max_raw_chars=1000)

    accounts = {a.path.split("exports/")[1]: (a.format, a.rows_read, a.rows_ok, a.rows_quarantined)
                for a in summary.accounts}
    assert accounts == {
        "linkedin-archive-ana-lima-4b2/Comments.csv": ("linkedin_archive", 3, 1, 2),
        "linkedin-archive-ana-lima-4b2/Connections.csv": ("linkedin_archive", 4, 2, 2),
        "linkedin-archive-ana-lima-4b2/Reactions.csv": ("linkedin_archive", 1, 1, 0),
        "linkedin-archive-ana-lima-4b2/Shares.csv": ("linkedin_archive", 4, 3, 1),
        "linkedin-archive-ben-okoro/Connections.csv": ("linkedin_archive", 1, 1, 0),
        "linkedin-archive-ben-okoro/Shares.csv": ("linkedin_archive", 1, 1, 0),
        "social-actions.json": ("linkedin", 2, 2, 0),
    }
    assert all(a.rows_read == a.rows_ok + a.rows_quarantined for a in summary.accounts)
    rows = lake.read(catalog.BRONZE_EVENTS).collect()
    # Ben's archive lists the Ana-Ben connection too: the same two ids again (deduplicated in silver).
    assert len(rows) == 14
    bronze = {r.event_id: (r.event_type, r.actor_id, r.subject_id, r.parent_post_id) for r in rows}
    lines = {(r.source_path.rsplit("/", 2)[1][17:], r.event_id): r.source_line for r in rows}
    assert lines[("ana-lima-4b2", "li:conn:ana-lima-4b2:ben-okoro")] == 5
    assert lines[("ben-okoro", "li:conn:ana-lima-4b2:ben-okoro")] == 2
    assert lines[("ana-lima-4b2", "li:share:share:7059000000000000003")] == 6
    ana_id, ben_id = "li:u:ana-lima-4b2", "li:u:ben-okoro"
    comment_id = next(k for k in bronze if k.startswith("li:comment:ana-lima-4b2:"))
    assert bronze == {
        "li:conn:ana-lima-4b2:ben-okoro": ("follow", ana_id, ben_id, None),
        "li:conn:ben-okoro:ana-lima-4b2": ("follow", ben_id, ana_id, None),
        "li:conn:ana-lima-4b2:chloe-ng-77": ("follow", ana_id, "li:u:chloe-ng-77", None),
        "li:conn:chloe-ng-77:ana-lima-4b2": ("follow", "li:u:chloe-ng-77", ana_id, None),
        "li:share:activity:7059000000000000001": ("post", ana_id, None, None),
        "li:share:activity:7059000000000000002": ("reshare", ana_id, ben_id, "li:p:activity:7058000000000000009"),
        "li:share:share:7059000000000000003": ("quote", ana_id, ben_id, "li:p:activity:7058000000000000009"),
        comment_id: ("reply", ana_id, ben_id, "li:p:activity:7058000000000000009"),
        "li:react:ana-lima-4b2:activity:7058000000000000009": (
            "like", ana_id, ben_id, "li:p:activity:7058000000000000009"),
        "li:share:activity:7058000000000000009": ("post", ben_id, None, None),
        "li:comment:7060000000000000101": (
            "reply", "li:u:xK2b9QeR1p", ana_id, "li:p:activity:7059000000000000001"),
        "li:comment:7060000000000000102": (
            "reply", "li:u:Zq7Lm2Pw0a", "li:u:xK2b9QeR1p", "li:p:comment:7060000000000000101"),
    }
    post = next(r for r in rows if r.event_id == "li:share:activity:7059000000000000001")
    assert post.text.startswith("Spring survey results are in.\n\nThanks") and '"Harbour Trust"' in post.text
    assert post.hashtags == ["birding"] and post.event_ts == datetime(2023, 5, 2, 9, 30)
    quarantine = sorted((q.source_path.split("exports/")[1].split("/")[-1], q.source_line, q.reason)
                        for q in lake.read(catalog.QUARANTINE).collect())
    assert quarantine == [
        ("Comments.csv", 3, "unknown_parent"),
        ("Comments.csv", 4, "bad_type:Link"),
        ("Connections.csv", 7, "missing_field:URL"),
        ("Connections.csv", 8, "bad_timestamp"),
        ("Shares.csv", 7, "bad_timestamp"),
    ]
    assert {r.format for r in lake.read(catalog.INGEST_LOG).collect()} == {"linkedin", "linkedin_archive"}


def test_social_actions_are_detected_by_their_linkedin_actor():
    from klout_spark.readers import detect_format

    assert detect_format(json.dumps(COMMENTS_RESPONSE)) == "linkedin"
    assert detect_format(json.dumps(LIKES_RESPONSE["elements"][0])) == "linkedin"
    # An activity-streams record with actor/object is not LinkedIn.
    assert detect_format(json.dumps({"actor": {"id": "7"}, "verb": "post", "object": {}})) is None
