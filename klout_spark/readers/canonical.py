"""The canonical event format: JSON lines, CSV with a header, Parquet.

One record is one event. CSV and Parquet rows are turned into the same JSON
object a JSON line would be (every cell as text) and go through the same
checks, so the three carry the same reason codes.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import columns as C
from klout_spark import schemas
from klout_spark.readers._common import CORRUPT, EVENT_INDEX, PERMISSIVE, normalized_hashtags, parse_timestamp

REQUIRED_FIELDS: tuple[str, ...] = (C.EVENT_ID, C.NETWORK, C.EVENT_TYPE, C.EVENT_TS, C.ACTOR_ID)
_COUNT_FIELDS = (C.FOLLOWERS_COUNT, C.FOLLOWING_COUNT, C.LISTED_COUNT, C.POSTS_COUNT)
_STRING_FIELDS = (C.EVENT_ID, C.NETWORK, C.EVENT_TYPE, C.ACTOR_ID, C.SUBJECT_ID, C.POST_ID, C.PARENT_POST_ID, C.TEXT)
CANONICAL_FIELDS = tuple(schemas.CANONICAL_EVENT_SCHEMA.fieldNames())

# Every field read as text first, so that a wrong type is told apart from a missing field.
_RAW_SCHEMA = T.StructType(
    [T.StructField(name, T.StringType(), True) for name in CANONICAL_FIELDS]
    + [T.StructField(CORRUPT, T.StringType(), True)]
)


def parse_canonical_lines(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse canonical JSON lines into typed events plus a ``reason`` for the bad ones.

    Parameters
    ----------
    lines
        Requires ``value`` (one line of text); other columns are passed through.
        Blank lines must be removed beforehand.
    max_raw_chars
        The raw text is kept (cut to this length) in ``raw`` for rejected lines only.

    Returns
    -------
    DataFrame
        The input columns except ``value``, every ``CANONICAL_EVENT_SCHEMA`` column,
        ``reason`` (null for a good line; else ``malformed_json``,
        ``missing_field:<f>``, ``bad_timestamp``, ``bad_type:<f>``), ``raw`` and
        ``_event_index`` (always 0: one line is one event).
    """
    rec = F.from_json(F.col("value"), _RAW_SCHEMA, PERMISSIVE)
    parsed = lines.withColumn("_rec", rec)
    field = lambda name: F.col(f"_rec.{name}")  # noqa: E731
    typed = {
        **{name: F.nullif(field(name), F.lit("")) for name in _STRING_FIELDS},
        C.EVENT_TS: parse_timestamp(field(C.EVENT_TS)),
        C.ACCOUNT_CREATED_AT: parse_timestamp(field(C.ACCOUNT_CREATED_AT)),
        C.HASHTAGS: normalized_hashtags(field(C.HASHTAGS)),
        C.VERIFIED: F.lower(F.trim(field(C.VERIFIED))).try_cast("boolean"),
        **{name: F.trim(field(name)).try_cast("long") for name in (*_COUNT_FIELDS, C.SHARE_COUNT)},
    }
    not_an_object = ~F.ltrim(F.col("value")).startswith("{")
    malformed = F.col("_rec").isNull() | field(CORRUPT).isNotNull() | not_an_object
    checks: list[tuple[Column, Column]] = [(malformed, F.lit("malformed_json"))]
    checks += [(typed[name].isNull(), F.lit(f"missing_field:{name}")) for name in REQUIRED_FIELDS if name != C.EVENT_TS]
    checks += [
        (field(C.EVENT_TS).isNull(), F.lit(f"missing_field:{C.EVENT_TS}")),
        (typed[C.EVENT_TS].isNull(), F.lit("bad_timestamp")),
    ]
    for name in (C.ACCOUNT_CREATED_AT, C.HASHTAGS, C.VERIFIED, *_COUNT_FIELDS, C.SHARE_COUNT):
        checks.append((field(name).isNotNull() & typed[name].isNull(), F.lit(f"bad_type:{name}")))
    reason = F.coalesce(*[F.when(failed, code) for failed, code in checks])
    passthrough = [c for c in lines.columns if c != "value"]
    return (
        parsed.select(
            *passthrough,
            *[typed[name].alias(name) for name in CANONICAL_FIELDS],
            reason.alias(C.REASON),
            F.col("value"),
        )
        .withColumn(C.RAW, F.when(F.col(C.REASON).isNotNull(), F.substring("value", 1, max_raw_chars)))
        .withColumn(EVENT_INDEX, F.lit(0).cast("long"))
        .drop("value")
    )


def _hashtags_cell(cell: Column) -> Column:
    """A CSV hashtags cell: a JSON array, or tags separated by ``;``, ``,`` or spaces."""
    listed = F.to_json(F.filter(F.split(F.trim(cell), r"[;,\s]+"), lambda tag: F.length(tag) > 0))
    return F.when(F.ltrim(cell).startswith("["), cell).otherwise(listed)


def parse_canonical_csv_lines(lines: DataFrame, *, header: list[str], max_raw_chars: int) -> DataFrame:
    """Parse canonical CSV data lines (the header line removed) whose columns are ``header``.

    One record per line: a quoted field spanning lines is not supported (its
    pieces are quarantined as ``malformed_csv``); quotes follow RFC 4180
    (``""`` inside a quoted cell). Unknown columns are ignored;
    empty cells are missing values. ``hashtags`` is a JSON array or a list
    separated by ``;``, ``,`` or spaces. A line whose number of cells differs
    from the header's is ``malformed_csv``.
    """
    names = [name.strip() for name in header]
    ddl = ", ".join([f"_c{i} STRING" for i in range(len(names))] + [f"{CORRUPT} STRING"])
    # RFC 4180 quoting: a quote inside a quoted cell is doubled (Spark's default escape is a backslash).
    options = {**PERMISSIVE, "escape": '"'}
    cells = F.from_csv(F.col("value"), ddl, options)
    position = {name: i for i, name in reversed(list(enumerate(names)))}
    as_json_fields = []
    for name in CANONICAL_FIELDS:
        if name not in position:
            continue
        cell = F.nullif(F.col(f"_cells._c{position[name]}"), F.lit(""))
        as_json_fields.append((_hashtags_cell(cell) if name == C.HASHTAGS else cell).alias(name))
    record = F.to_json(F.struct(*as_json_fields)) if as_json_fields else F.lit("{}")
    parsed = (
        lines.withColumn("_cells", cells)
        .withColumn("_csv_line", F.col("value"))
        .withColumn("_csv_bad", F.col(f"_cells.{CORRUPT}").isNotNull())
        .withColumn("value", record)
        .drop("_cells")
        .transform(parse_canonical_lines, max_raw_chars=max_raw_chars)
    )
    reason = F.when(F.col("_csv_bad"), F.lit("malformed_csv")).otherwise(F.col(C.REASON))
    return (
        parsed.withColumn(C.REASON, reason)
        .withColumn(C.RAW, F.when(F.col(C.REASON).isNotNull(), F.substring("_csv_line", 1, max_raw_chars)))
        .drop("_csv_line", "_csv_bad")
    )


def _compatible(name: str, dtype: T.DataType) -> bool:
    """Can a Parquet column of ``dtype`` hold canonical field ``name`` (read through its text)?"""
    integral = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
    if isinstance(dtype, T.StringType):
        return True
    if name == C.HASHTAGS:
        return isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, T.StringType)
    if name in (C.EVENT_TS, C.ACCOUNT_CREATED_AT):
        return isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType, *integral))
    if name in (*_COUNT_FIELDS, C.SHARE_COUNT):
        return isinstance(dtype, integral)
    if name == C.VERIFIED:
        return isinstance(dtype, T.BooleanType)
    return isinstance(dtype, integral)


def parquet_rows_as_lines(rows: DataFrame) -> DataFrame:
    """Turn the rows of one Parquet file into JSON ``value`` lines for :func:`parse_canonical_lines`.

    Canonical columns missing from the file are missing fields. A column whose
    Parquet type cannot hold the field (a struct where an id belongs, a double
    count...) makes every row with a value there ``bad_type:<column>``; this is
    returned in ``_type_reason`` and applied by :func:`parse_canonical_parquet`.
    All other columns are passed through.
    """
    present = {f.name: f.dataType for f in rows.schema.fields if f.name in CANONICAL_FIELDS}
    fields, type_checks = [], []
    for name in CANONICAL_FIELDS:
        if name not in present:
            continue
        dtype = present[name]
        if not _compatible(name, dtype):
            type_checks.append((F.col(name).isNotNull(), f"bad_type:{name}"))
            continue
        keep_as_is = isinstance(dtype, (T.ArrayType, T.BooleanType, T.StringType))
        fields.append((F.col(name) if keep_as_is else F.col(name).cast("string")).alias(name))
    type_reason = F.coalesce(*[F.when(bad, F.lit(code)) for bad, code in type_checks], F.lit(None).cast("string"))
    others = [c for c in rows.columns if c not in CANONICAL_FIELDS]
    return rows.select(
        *others,
        F.to_json(F.struct(*fields)).alias("value") if fields else F.lit("{}").alias("value"),
        type_reason.alias("_type_reason"),
    )


def parse_canonical_parquet(lines: DataFrame, *, max_raw_chars: int) -> DataFrame:
    """Parse the output of :func:`parquet_rows_as_lines`; Parquet type errors win over the rest."""
    parsed = lines.withColumn("_row_json", F.col("value")).transform(
        parse_canonical_lines, max_raw_chars=max_raw_chars
    )
    return (
        parsed.withColumn(C.REASON, F.coalesce("_type_reason", C.REASON))
        .withColumn(C.RAW, F.when(F.col(C.REASON).isNotNull(), F.substring("_row_json", 1, max_raw_chars)))
        .drop("_type_reason", "_row_json")
    )
