"""Score quality against a synthetic dump's planted ground truth.

The generator (``klout-spark generate``) writes ``_ground_truth/`` next to the
event files: every account's role and latent influence (``accounts.csv``) and
the topics each organic account really posts about (``topics.csv``). This
module compares one ``as_of`` of the pipeline's tables with them. The pipeline
itself never reads these files; only the evaluation does.

Definitions (all over the accounts present in the named table for ``as_of``):

- **Flags.** An account is *flagged* when ``user_features`` has
  ``is_spam_like`` or ``is_inactive``. The accounts that must be flagged are
  the planted spam bots and inactive (dormant) accounts: ``flag_recall`` is
  the share of them flagged. A flag says "this account's engagement must not
  count", which is also right for the other planted fakes (sybils, bought
  followers), so ``flag_precision`` is the share of flagged accounts whose role
  is any fake role (``FAKE_ROLES``); ``flag_precision_strict`` counts only
  bots and inactive accounts as right. Per flag: ``spam_*`` compares
  ``is_spam_like`` with the spam bots, ``inactive_*`` compares ``is_inactive``
  with the inactive accounts (precision again against any fake role).
- **Topics.** ``topic_precision``: share of ``score_topics`` rows whose topic
  is one the account really posts about (``topics.csv``; case and a leading
  ``#`` ignored). ``aviaries_topics``: rows naming the one-post topic (must be 0).
- **Influence.** ``spearman_latent``: Spearman's rank correlation (average
  ranks for ties) between ``score`` and ``latent_influence`` over the scored
  organic accounts (genuine, pod members and both targets).
- **Fakes.** ``bots_sybils_max_score`` and ``bots_sybils_share_under_10`` over
  the scored spam bots and sybils.
- **Bought followers.** Each bought-follower target is compared with its
  *peers*: genuine accounts of its network with exactly the same number of
  distinct genuine engagers in 30 days (``genuine_engagers_30d``). Its
  ``outrank share`` is the share of peers it scores above (ties count half);
  bought followers give no advantage when that share is at most 0.5 (what an
  account with the same engagement gets on average).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import InputError, require_columns
from klout_spark.io import Lakehouse

ROLE = "role"
LATENT = "latent_influence"

SPAM_BOT = "spam_bot"
INACTIVE = "inactive"
SYBIL = "sybil"
BOUGHT_FOLLOWER = "bought_follower"
BOUGHT_TARGET = "bought_follower_target"
GENUINE = "genuine"
ONE_POST_TOPIC_WORD = "aviaries"

# Roles that must be flagged, roles for which a flag is right, and roles of real people.
MUST_FLAG_ROLES: tuple[str, ...] = (SPAM_BOT, INACTIVE)
FAKE_ROLES: tuple[str, ...] = (SPAM_BOT, INACTIVE, SYBIL, BOUGHT_FOLLOWER)
ORGANIC_ROLES: tuple[str, ...] = (GENUINE, "pod_member", "sybil_target", BOUGHT_TARGET)
LOW_SCORE = 10.0
BOUGHT_FAIR_SHARE = 0.5

# Ground-truth files are read on the driver (Spark skips `_` folders); they list
# accounts, so they grow with the world, not with activity. Larger is refused.
MAX_TRUTH_BYTES = 1024 * 1024 * 1024

ACCOUNTS_SCHEMA = T.StructType(
    [
        T.StructField(C.NETWORK, T.StringType(), False),
        T.StructField(C.USER_ID, T.StringType(), False),
        T.StructField(LATENT, T.DoubleType(), False),
        T.StructField(ROLE, T.StringType(), False),
    ]
)
TOPICS_SCHEMA = T.StructType(
    [
        T.StructField(C.NETWORK, T.StringType(), False),
        T.StructField(C.USER_ID, T.StringType(), False),
        T.StructField(C.TOPIC, T.StringType(), False),
    ]
)


@dataclass(frozen=True)
class GroundTruth:
    """``accounts`` (network, user_id, latent_influence, role) and ``topics`` (network, user_id, topic)."""

    accounts: DataFrame
    topics: DataFrame


def _read_truth_csv(spark: SparkSession, path: Path, schema: T.StructType) -> DataFrame:
    import csv

    if not path.is_file():
        raise InputError(f"ground-truth file does not exist: {path}")
    if path.stat().st_size > MAX_TRUTH_BYTES:
        raise InputError(f"ground-truth file {path} is larger than {MAX_TRUTH_BYTES} bytes")
    names = schema.fieldNames()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = sorted(set(names) - set(reader.fieldnames or []))
        if missing:
            raise InputError(f"ground-truth file {path} lacks columns {missing}; it has {reader.fieldnames}")
        rows = [
            tuple(float(r[n]) if isinstance(schema[n].dataType, T.DoubleType) else r[n] for n in names)
            for r in reader
        ]
    return spark.createDataFrame(rows, schema)


def read_ground_truth(spark: SparkSession, truth_dir: str) -> GroundTruth:
    """Read ``accounts.csv`` and ``topics.csv`` of a generator's ``_ground_truth`` folder (on the driver).

    Raises
    ------
    InputError
        A file is missing, larger than ``MAX_TRUTH_BYTES`` or lacks a column.
    """
    folder = Path(truth_dir.removeprefix("file:")).expanduser()
    return GroundTruth(
        accounts=_read_truth_csv(spark, folder / "accounts.csv", ACCOUNTS_SCHEMA),
        topics=_read_truth_csv(spark, folder / "topics.csv", TOPICS_SCHEMA),
    )


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _in_roles(roles: tuple[str, ...]) -> Column:
    return F.col(ROLE).isin(list(roles))


def flag_metrics(flags: DataFrame, accounts: DataFrame) -> dict:
    """Precision and recall of the quality flags against the planted roles.

    Parameters
    ----------
    flags
        ``network``, ``user_id``, ``is_spam_like``, ``is_inactive`` (one ``as_of``).
    accounts
        Ground truth ``network``, ``user_id``, ``role``.

    Returns
    -------
    dict
        ``flag_precision``, ``flag_precision_strict``, ``flag_recall``,
        ``spam_precision``, ``spam_recall``, ``inactive_precision``,
        ``inactive_recall`` (None when undefined), the counts behind them, and
        ``per_role``: per role, accounts in ``flags`` and the share flagged
        spam-like, inactive, either, and the share marked ``is_new_account``
        (when ``flags`` has that column).
    """
    require_columns(flags, [C.NETWORK, C.USER_ID, S.IS_SPAM_LIKE, S.IS_INACTIVE], where="flag_metrics")
    spam = F.coalesce(F.col(S.IS_SPAM_LIKE), F.lit(False))
    inactive = F.coalesce(F.col(S.IS_INACTIVE), F.lit(False))
    flagged = spam | inactive
    # Newer feature tables also mark new accounts (not a flag here: shown per role only).
    new = F.coalesce(F.col(S.IS_NEW_ACCOUNT), F.lit(False)) if S.IS_NEW_ACCOUNT in flags.columns else F.lit(False)
    per_role_rows = (
        flags.join(accounts.select(C.NETWORK, C.USER_ID, ROLE), on=[C.NETWORK, C.USER_ID], how="left")
        .fillna({ROLE: "unknown"})
        .groupBy(ROLE)
        .agg(
            F.count(F.lit(1)).alias("accounts"),
            F.count(F.when(spam, 1)).alias("spam"),
            F.count(F.when(inactive, 1)).alias("inactive"),
            F.count(F.when(flagged, 1)).alias("flagged"),
            F.count(F.when(new, 1)).alias("new"),
        )
        .collect()
    )
    by_role = {r[ROLE]: r.asDict() for r in per_role_rows}

    def total(field: str, roles: tuple[str, ...] | None = None) -> int:
        return sum(r[field] for role, r in by_role.items() if roles is None or role in roles)

    return {
        "flagged": total("flagged"),
        "must_flag": total("accounts", MUST_FLAG_ROLES),
        "flag_precision": _share(total("flagged", FAKE_ROLES), total("flagged")),
        "flag_precision_strict": _share(total("flagged", MUST_FLAG_ROLES), total("flagged")),
        "flag_recall": _share(total("flagged", MUST_FLAG_ROLES), total("accounts", MUST_FLAG_ROLES)),
        "spam_precision": _share(total("spam", FAKE_ROLES), total("spam")),
        "spam_recall": _share(total("spam", (SPAM_BOT,)), total("accounts", (SPAM_BOT,))),
        "inactive_precision": _share(total("inactive", FAKE_ROLES), total("inactive")),
        "inactive_recall": _share(total("inactive", (INACTIVE,)), total("accounts", (INACTIVE,))),
        "per_role": {
            role: {
                "accounts": r["accounts"],
                "share_spam_like": _share(r["spam"], r["accounts"]),
                "share_inactive": _share(r["inactive"], r["accounts"]),
                "share_flagged": _share(r["flagged"], r["accounts"]),
                "share_new_account": _share(r["new"], r["accounts"]),
            }
            for role, r in sorted(by_role.items())
        },
    }


def _normalized_topic(topic: Column) -> Column:
    return F.lower(F.regexp_replace(F.trim(topic), r"^#", ""))


def topic_metrics(assigned: DataFrame, truth_topics: DataFrame) -> dict:
    """Share of assigned topics that the account really posts about.

    Parameters
    ----------
    assigned
        ``score_topics`` rows of one ``as_of`` (``network``, ``user_id``, ``topic``).
    truth_topics
        Planted ``network``, ``user_id``, ``topic``.

    Returns
    -------
    dict
        ``topic_rows``, ``topic_matches``, ``topic_precision`` (None without
        rows), ``topic_accounts`` (accounts with a topic) and ``aviaries_topics``.
    """
    require_columns(assigned, [C.NETWORK, C.USER_ID, C.TOPIC], where="topic_metrics")
    planted = truth_topics.select(
        C.NETWORK, C.USER_ID, _normalized_topic(F.col(C.TOPIC)).alias("_topic"), F.lit(True).alias("_planted")
    ).distinct()
    row = (
        assigned.select(C.NETWORK, C.USER_ID, _normalized_topic(F.col(C.TOPIC)).alias("_topic"))
        .join(planted, on=[C.NETWORK, C.USER_ID, "_topic"], how="left")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col("_planted"), 1)).alias("matches"),
            F.count_distinct(C.NETWORK, C.USER_ID).alias("accounts"),
            F.count(F.when(F.col("_topic") == ONE_POST_TOPIC_WORD, 1)).alias("aviaries"),
        )
        .first()
    )
    return {
        "topic_rows": row["rows"],
        "topic_matches": row["matches"],
        "topic_precision": _share(row["matches"], row["rows"]),
        "topic_accounts": row["accounts"],
        "aviaries_topics": row["aviaries"],
    }


def with_average_rank(df: DataFrame, value: str, rank: str) -> DataFrame:
    """Add ``rank``: the 1-based rank of ``value`` (ascending), tied values sharing their average rank.

    Computed over the distinct values, so the single-partition running sum
    sorts one row per distinct value, not one per input row.
    """
    counts = df.groupBy(value).agg(F.count(F.lit(1)).alias("_n"))
    running = Window.orderBy(value).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ranks = counts.select(value, (F.sum("_n").over(running) - (F.col("_n") - 1) / 2.0).alias(rank))
    return df.join(ranks, on=value, how="inner")


def spearman(df: DataFrame, x: str, y: str) -> float | None:
    """Spearman's rank correlation of ``x`` and ``y`` (rows with a null in either are skipped).

    The Pearson correlation of the average ranks, so ties are handled as in
    ``scipy.stats.spearmanr``. None when fewer than two rows or a constant column.
    """
    pairs = df.select(F.col(x).cast("double").alias("_x"), F.col(y).cast("double").alias("_y")).dropna()
    ranked = with_average_rank(with_average_rank(pairs, "_x", "_rx"), "_y", "_ry")
    row = ranked.agg(F.corr("_rx", "_ry").alias("rho"), F.count(F.lit(1)).alias("n")).first()
    rho = row["rho"]
    if row["n"] < 2 or rho is None or math.isnan(rho):
        return None
    return float(rho)


def influence_metrics(scores: DataFrame, accounts: DataFrame) -> dict:
    """``spearman_latent`` over scored organic accounts, and how the planted fakes scored.

    Returns
    -------
    dict
        ``spearman_latent``, ``organic_scored``; ``bots_sybils_scored``,
        ``bots_sybils_max_score``, ``bots_sybils_share_under_10``; and
        ``score_by_role``: per role, accounts scored, mean and max score.
    """
    require_columns(scores, [C.NETWORK, C.USER_ID, C.SCORE], where="influence_metrics")
    scored = scores.select(C.NETWORK, C.USER_ID, C.SCORE).join(accounts, on=[C.NETWORK, C.USER_ID], how="inner")
    organic = scored.filter(_in_roles(ORGANIC_ROLES))
    by_role = {
        r[ROLE]: {"scored": r["n"], "mean_score": r["mean"], "max_score": r["max"]}
        for r in scored.groupBy(ROLE)
        .agg(F.count(F.lit(1)).alias("n"), F.avg(C.SCORE).alias("mean"), F.max(C.SCORE).alias("max"))
        .collect()
    }
    fakes = (
        scored.filter(_in_roles((SPAM_BOT, SYBIL)))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.max(C.SCORE).alias("max"),
            F.count(F.when(F.col(C.SCORE) < LOW_SCORE, 1)).alias("low"),
        )
        .first()
    )
    return {
        "spearman_latent": spearman(organic, C.SCORE, LATENT),
        "organic_scored": sum(by_role.get(r, {}).get("scored", 0) for r in ORGANIC_ROLES),
        "bots_sybils_scored": fakes["n"],
        "bots_sybils_max_score": fakes["max"],
        "bots_sybils_share_under_10": _share(fakes["low"], fakes["n"]),
        "score_by_role": dict(sorted(by_role.items())),
    }


def bought_follower_metrics(scores: DataFrame, features: DataFrame, accounts: DataFrame) -> dict:
    """Do accounts that bought followers outrank genuine accounts with the same engagement?

    Peers of a target: genuine accounts of its network with the same
    ``genuine_engagers_30d``. A target's outrank share is the share of its
    peers it scores above (ties count half).

    Returns
    -------
    dict
        ``bought_targets`` (scored targets with peers), ``bought_target_peers``,
        ``bought_outrank_share`` (mean over targets; None without any),
        ``bought_target_score``, ``bought_peer_mean_score`` (means), and
        ``bought_follower_ok`` (outrank share at most ``BOUGHT_FAIR_SHARE``).
    """
    require_columns(features, [C.NETWORK, C.USER_ID, S.GENUINE_ENGAGERS_30D], where="bought_follower_metrics")
    scored = (
        scores.select(C.NETWORK, C.USER_ID, C.SCORE)
        .join(features.select(C.NETWORK, C.USER_ID, S.GENUINE_ENGAGERS_30D), on=[C.NETWORK, C.USER_ID], how="inner")
        .join(accounts.select(C.NETWORK, C.USER_ID, ROLE), on=[C.NETWORK, C.USER_ID], how="inner")
    )
    targets = scored.filter(F.col(ROLE) == BOUGHT_TARGET).select(
        C.NETWORK, C.USER_ID, S.GENUINE_ENGAGERS_30D, F.col(C.SCORE).alias("_target_score")
    )
    peers = scored.filter(F.col(ROLE) == GENUINE).select(
        C.NETWORK, S.GENUINE_ENGAGERS_30D, F.col(C.SCORE).alias("_peer_score")
    )
    above = F.when(F.col("_target_score") > F.col("_peer_score"), 1.0).when(
        F.col("_target_score") == F.col("_peer_score"), 0.5
    ).otherwise(0.0)
    per_target = (
        targets.join(peers, on=[C.NETWORK, S.GENUINE_ENGAGERS_30D], how="inner")
        .groupBy(C.NETWORK, C.USER_ID)
        .agg(
            F.avg(above).alias("share"),
            F.count(F.lit(1)).alias("peers"),
            F.first("_target_score").alias("target_score"),
            F.avg("_peer_score").alias("peer_mean"),
        )
    )
    row = per_target.agg(
        F.count(F.lit(1)).alias("targets"),
        F.sum("peers").alias("peers"),
        F.avg("share").alias("share"),
        F.avg("target_score").alias("target_score"),
        F.avg("peer_mean").alias("peer_mean"),
    ).first()
    share = row["share"]
    return {
        "bought_targets": row["targets"],
        "bought_target_peers": row["peers"] or 0,
        "bought_outrank_share": share,
        "bought_target_score": row["target_score"],
        "bought_peer_mean_score": row["peer_mean"],
        "bought_follower_ok": None if share is None else share <= BOUGHT_FAIR_SHARE,
    }


def evaluate(spark: SparkSession, lake_root: str, database: str, truth_dir: str, as_of: date) -> dict:
    """Compare the ``as_of`` slice of ``user_features``, ``scores`` and ``score_topics`` with the ground truth.

    Parameters
    ----------
    lake_root, database
        The lakehouse whose tables are read (by location; ``database`` names them in errors).
    truth_dir
        A generator's ``_ground_truth`` folder (``accounts.csv``, ``topics.csv``).
    as_of
        The scored date to evaluate.

    Returns
    -------
    dict
        ``as_of`` plus every figure of :func:`flag_metrics`, :func:`topic_metrics`,
        :func:`influence_metrics` and :func:`bought_follower_metrics` (see the module docstring).

    Raises
    ------
    InputError
        The ground truth is unreadable, or no scores exist for ``as_of``.
    StageOrderError
        A table has not been written yet.
    """
    lake = Lakehouse(spark, lake_root, database)
    truth = read_ground_truth(spark, truth_dir)
    accounts = truth.accounts.cache()

    def slice_of(table: str) -> DataFrame:
        return lake.read(table).filter(F.col(C.AS_OF) == F.lit(as_of))

    features = slice_of(catalog.USER_FEATURES).cache()
    scores = slice_of(catalog.SCORES).cache()
    try:
        if scores.isEmpty():
            raise InputError(f"no scores for as_of {as_of} in {lake.path(catalog.SCORES)}: score that date first")
        result: dict = {"as_of": as_of.isoformat(), "accounts_in_truth": accounts.count(), "scored": scores.count()}
        result.update(flag_metrics(features, accounts))
        result.update(topic_metrics(slice_of(catalog.SCORE_TOPICS), truth.topics))
        result.update(influence_metrics(scores, accounts))
        result.update(bought_follower_metrics(scores, features, accounts))
        return result
    finally:
        for df in (accounts, features, scores):
            df.unpersist()


_HEADLINE = (
    ("flag_precision", "flag precision (flagged accounts that are planted fakes)"),
    ("flag_precision_strict", "flag precision, strict (flagged that are bots or inactive)"),
    ("flag_recall", "flag recall (bots + inactive flagged)"),
    ("spam_precision", "spam-like precision"),
    ("spam_recall", "spam-like recall (spam bots)"),
    ("inactive_precision", "inactive precision"),
    ("inactive_recall", "inactive recall (inactive accounts)"),
    ("topic_precision", "topic precision"),
    ("aviaries_topics", "one-post topic rows (must be 0)"),
    ("spearman_latent", "Spearman(score, latent influence), organic"),
    ("bots_sybils_max_score", "max score of spam bots and sybils"),
    ("bots_sybils_share_under_10", "share of spam bots and sybils under 10"),
    ("bought_outrank_share", "bought-follower target outranks same-engagement peers"),
    ("bought_follower_ok", "bought followers give no advantage"),
)


def format_report(result: dict) -> str:
    """A plain-text report of :func:`evaluate`'s result."""

    def show(value) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    lines = [f"evaluation of as_of {result['as_of']}: {result['scored']:,} accounts scored"]
    lines += [f"  {label:<58} {show(result.get(key))}" for key, label in _HEADLINE]
    lines.append("  per role: accounts in user_features, share flagged (spam-like / inactive / either), new, scores")
    scores_by_role = result.get("score_by_role", {})
    for role, r in result["per_role"].items():
        s = scores_by_role.get(role, {})
        lines.append(
            f"    {role:<24} {r['accounts']:>8,}  {show(r['share_spam_like']):>7} / {show(r['share_inactive']):>7}"
            f" / {show(r['share_flagged']):>7}  new {show(r['share_new_account']):>7}   scored {s.get('scored', 0):>7,}"
            f"  mean {show(s.get('mean_score'))}  max {show(s.get('max_score'))}"
        )
    return "\n".join(lines)
