"""Column names shared by every table, transform, test and reader.

One name, one constant: a typo becomes an ``AttributeError`` at import time
instead of a silent null column at run time.
"""

# --- event identity and shape (bronze_events, silver_events) ---
EVENT_ID = "event_id"
NETWORK = "network"
EVENT_TYPE = "event_type"
EVENT_TS = "event_ts"
EVENT_DATE = "event_date"
ACTOR_ID = "actor_id"
SUBJECT_ID = "subject_id"
POST_ID = "post_id"
PARENT_POST_ID = "parent_post_id"
TEXT = "text"
HASHTAGS = "hashtags"
# Reshares a platform reports as a number only, without the resharers (Facebook shares.count).
SHARE_COUNT = "share_count"

# --- profile snapshot fields (event_type = 'profile') ---
FOLLOWERS_COUNT = "followers_count"
FOLLOWING_COUNT = "following_count"
LISTED_COUNT = "listed_count"
POSTS_COUNT = "posts_count"
ACCOUNT_CREATED_AT = "account_created_at"
VERIFIED = "verified"
SNAPSHOT_TS = "snapshot_ts"

# --- lineage ---
SOURCE_PATH = "source_path"
SOURCE_CHECKSUM = "source_checksum"
SOURCE_LINE = "source_line"
BATCH_ID = "batch_id"
INGESTED_AT = "ingested_at"
RAW = "raw"

# --- ingest_log ---
PATH = "path"
SIZE_BYTES = "size_bytes"
MODIFIED_AT = "modified_at"
FORMAT = "format"
ROWS_READ = "rows_read"
ROWS_OK = "rows_ok"
ROWS_QUARANTINED = "rows_quarantined"
COMMITTED_AT = "committed_at"

# --- quarantine ---
STAGE = "stage"
REASON = "reason"
QUARANTINED_AT = "quarantined_at"

# --- runs ---
RUN_ID = "run_id"
AS_OF = "as_of"
STARTED_AT = "started_at"
ENDED_AT = "ended_at"
STATUS = "status"
ROWS_IN = "rows_in"
ROWS_OUT = "rows_out"
ITERATIONS = "iterations"
RESIDUAL = "residual"
RESIDUALS = "residuals"
CONFIG_HASH = "config_hash"
CODE_VERSION = "code_version"
MESSAGE = "message"
DETAILS = "details"

# --- users and features ---
USER_ID = "user_id"
PERSON_ID = "person_id"
DAY_INDEX = "day_index"
ENGAGER_ID = "engager_id"

# --- graph ---
SRC = "src"
DST = "dst"
WEIGHT = "weight"
NODE = "node"
TRUST = "trust"
PAGERANK = "pagerank"
INTERACTIONS = "interactions"

# --- scores ---
SCORE = "score"
TRUE_REACH = "true_reach"
AMPLIFICATION = "amplification"
NETWORK_IMPACT = "network_impact"
PERCENTILE = "percentile"
RANK = "rank"
POSITION = "position"
SCORE_DELTA_7D = "score_delta_7d"
MODEL_VERSION = "model_version"
TOPIC = "topic"
TOPIC_POSTS = "topic_posts"
TOPIC_ENGAGERS = "topic_engagers"
TOPIC_SCORE = "topic_score"
CONTRIBUTOR_KIND = "contributor_kind"
CONTRIBUTOR_ID = "contributor_id"
CONTRIBUTION = "contribution"
