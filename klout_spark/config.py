"""Typed, validated settings loaded from ``conf/*.yaml``.

Layers merge in this order: ``conf/base.yaml``, the environment overlay
(``conf/<env>.yaml``), any ``--conf FILE``, then ``--set key=value``. The
result must match the dataclasses below exactly: a missing key or an unknown
key is an error that names the dotted key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from klout_spark import readers
from klout_spark.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONF_DIR = PROJECT_ROOT / "conf"
CONF_DIR_ENV = "KLOUT_SPARK_CONF_DIR"


def default_conf_dir() -> Path:
    """Where ``base.yaml`` and the overlays are.

    ``$KLOUT_SPARK_CONF_DIR`` if set; else the checkout's ``conf/`` (also with an
    editable install); else ``./conf`` in the working directory, which is the
    case under ``spark-submit --py-files dist/klout_spark.zip`` launched from the
    project folder (the zip holds the code, not the settings).
    """
    if os.environ.get(CONF_DIR_ENV):
        return Path(os.environ[CONF_DIR_ENV])
    if DEFAULT_CONF_DIR.is_dir():
        return DEFAULT_CONF_DIR
    return Path.cwd() / "conf"
ENVIRONMENTS = ("local", "cluster")
# Longest backfill pass: its engagement rows carry a vector with a slot per date (klout_spark.date_vectors).
MAX_BACKFILL_CHUNK_DAYS = 92


@dataclass(frozen=True)
class LakeSettings:
    root: str
    database: str

    def __post_init__(self) -> None:
        if not self.root:
            raise ConfigError("lake.root must not be empty")
        from klout_spark.catalog import validate_identifier

        validate_identifier(self.database, what="lake.database")
        # A plain local path is made absolute once, so that every process and the
        # catalog agree on where the tables are whatever their working directory.
        if "://" not in self.root and not self.root.startswith("file:"):
            object.__setattr__(self, "root", str(Path(self.root).expanduser().resolve()))


@dataclass(frozen=True)
class CatalogSettings:
    mode: str

    def __post_init__(self) -> None:
        _require_choice("catalog.mode", self.mode, ("lakehouse", "hive"))


@dataclass(frozen=True)
class SparkSettings:
    master: str
    app_name: str
    packages: tuple[str, ...]
    log4j_config: str
    conf: Mapping[str, str]


@dataclass(frozen=True)
class IngestSettings:
    format: str
    max_raw_chars: int

    def __post_init__(self) -> None:
        _require_choice("ingest.format", self.format, readers.FORMAT_CHOICES)
        _require_positive("ingest.max_raw_chars", self.max_raw_chars)


# Suites of derived tables with a threshold under validate.thresholds (bronze has
# validate.max_failure_fraction). Named like their tables (klout_spark.catalog).
THRESHOLD_SUITES = ("silver_profiles", "user_features", "network_rank", "scores")


@dataclass(frozen=True)
class ValidateSettings:
    max_failure_fraction: float
    thresholds: Mapping[str, float]
    min_volume_ratio: float
    max_gap_days: int
    rank_mass_tolerance: float
    min_event_date: str
    future_tolerance_hours: float
    results_dir: str
    data_docs: bool

    def __post_init__(self) -> None:
        _require_fraction("validate.max_failure_fraction", self.max_failure_fraction)
        unknown = sorted(set(self.thresholds) - set(THRESHOLD_SUITES))
        missing = sorted(set(THRESHOLD_SUITES) - set(self.thresholds))
        if unknown or missing:
            raise ConfigError(
                f"validate.thresholds: unknown suites {unknown}, missing suites {missing}; "
                f"expected exactly {list(THRESHOLD_SUITES)}"
            )
        for name, value in self.thresholds.items():
            _require_fraction(f"validate.thresholds.{name}", value)
        _require_fraction("validate.min_volume_ratio", self.min_volume_ratio)
        _require_non_negative("validate.max_gap_days", self.max_gap_days)
        _require_positive("validate.rank_mass_tolerance", self.rank_mass_tolerance)
        _require_iso_date("validate.min_event_date", self.min_event_date)
        _require_relative_path("validate.results_dir", self.results_dir)
        _require_non_negative("validate.future_tolerance_hours", self.future_tolerance_hours)


@dataclass(frozen=True)
class FeatureSettings:
    half_life_days: float
    inactive_days: int
    spam_max_engagements_per_day: float
    spam_max_follows_30d: int
    spam_min_follow_back: float
    spam_min_output_30d: float
    spam_max_response_rate: float
    new_account_days: int
    boost_min_follows_30d: float
    boost_max_follows_per_engager: float

    def __post_init__(self) -> None:
        _require_positive("features.half_life_days", self.half_life_days)
        _require_positive("features.spam_min_output_30d", self.spam_min_output_30d)
        _require_fraction("features.spam_max_response_rate", self.spam_max_response_rate)
        _require_non_negative("features.new_account_days", self.new_account_days)
        _require_positive("features.boost_min_follows_30d", self.boost_min_follows_30d)
        _require_positive("features.boost_max_follows_per_engager", self.boost_max_follows_per_engager)
        _require_positive("features.inactive_days", self.inactive_days)
        if self.inactive_days > 90:
            # Features read the 90 days up to as_of; a longer window would see more in a backfill.
            raise ConfigError(f"features.inactive_days must be <= 90 (the longest feature window), got {self.inactive_days}")
        _require_positive("features.spam_max_engagements_per_day", self.spam_max_engagements_per_day)
        _require_positive("features.spam_max_follows_30d", self.spam_max_follows_30d)
        _require_non_negative("features.spam_min_follow_back", self.spam_min_follow_back)


@dataclass(frozen=True)
class PropagateSettings:
    window_days: int
    half_life_days: float
    type_weights: Mapping[str, float]
    reciprocal_discount: float
    damping: float
    tol: float
    max_iter: int
    method: str
    local_max_edges: int
    checkpoint_every: int
    flagged_trust: float
    trust_full_age_days: float

    def __post_init__(self) -> None:
        _require_positive("propagate.window_days", self.window_days)
        _require_positive("propagate.half_life_days", self.half_life_days)
        if not 0.0 < self.damping < 1.0:
            raise ConfigError(f"propagate.damping must be within (0, 1), got {self.damping}")
        if not 0.0 <= self.reciprocal_discount <= 1.0:
            raise ConfigError(
                f"propagate.reciprocal_discount must be within [0, 1], got {self.reciprocal_discount}"
            )
        _require_positive("propagate.tol", self.tol)
        _require_positive("propagate.max_iter", self.max_iter)
        _require_choice("propagate.method", self.method, ("auto", "local", "distributed"))
        _require_positive("propagate.local_max_edges", self.local_max_edges)
        _require_positive("propagate.checkpoint_every", self.checkpoint_every)
        _require_non_negative("propagate.flagged_trust", self.flagged_trust)
        _require_positive("propagate.trust_full_age_days", self.trust_full_age_days)
        from klout_spark.schemas import INTERACTION_TYPES

        unknown = sorted(set(self.type_weights) - set(INTERACTION_TYPES))
        if unknown:
            raise ConfigError(
                f"propagate.type_weights: unknown event types {unknown}; known {list(INTERACTION_TYPES)}"
            )
        for name, weight in self.type_weights.items():
            _require_non_negative(f"propagate.type_weights.{name}", weight)


@dataclass(frozen=True)
class ScoreWeights:
    true_reach: float
    amplification: float
    network_impact: float

    def __post_init__(self) -> None:
        for name in ("true_reach", "amplification", "network_impact"):
            _require_non_negative(f"score.weights.{name}", getattr(self, name))
        if self.true_reach + self.amplification + self.network_impact <= 0:
            raise ConfigError("score.weights must not all be zero")


@dataclass(frozen=True)
class ScoreSettings:
    model_version: str
    weights: ScoreWeights
    reach_followers_weight: float
    reach_listed_weight: float
    reach_mutual_weight: float
    reach_full_engagers: float
    amplification_prior_posts: float
    amplification_prior_rate: float
    impact_full_ratio: float
    topic_min_posts: int
    topic_min_engagers: int
    topic_max_per_user: int
    explain_top_k: int
    explain_driver_max_edges: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", self.model_version):
            raise ConfigError(
                f"score.model_version must be 1-128 letters, digits or _.- (it keys score_calibration), "
                f"got {self.model_version!r}"
            )
        _require_positive("score.reach_full_engagers", self.reach_full_engagers)
        _require_fraction("score.reach_mutual_weight", self.reach_mutual_weight)
        _require_positive("score.amplification_prior_posts", self.amplification_prior_posts)
        if not 0.0 < self.amplification_prior_rate < 1.0:
            raise ConfigError(
                f"score.amplification_prior_rate must be within (0, 1), got {self.amplification_prior_rate}"
            )
        if self.impact_full_ratio <= 1.0:
            raise ConfigError(f"score.impact_full_ratio must be > 1, got {self.impact_full_ratio}")
        if self.topic_min_posts < 2:
            raise ConfigError(
                f"score.topic_min_posts must be at least 2 (one post never makes a topic), got {self.topic_min_posts}"
            )
        _require_positive("score.topic_min_engagers", self.topic_min_engagers)
        _require_positive("score.topic_max_per_user", self.topic_max_per_user)
        _require_positive("score.explain_top_k", self.explain_top_k)
        _require_non_negative("score.explain_driver_max_edges", self.explain_driver_max_edges)


LOOPBACK_HOSTS = ("localhost", "::1")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (127.0.0.0/8, ::1, localhost)."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


@dataclass(frozen=True)
class SqlServerSettings:
    host: str
    port: int
    allow_remote: bool
    refresh_seconds: float

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("sql_server.host must not be empty")
        if not is_loopback_host(self.host) and not self.allow_remote:
            raise ConfigError(
                f"sql_server.host {self.host!r} is not a loopback address; the server has no authentication, "
                "so listening beyond this machine needs sql_server.allow_remote: true"
            )
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"sql_server.port must be within [1, 65535], got {self.port}")
        _require_positive("sql_server.refresh_seconds", self.refresh_seconds)


@dataclass(frozen=True)
class RunSettings:
    lock_ttl_minutes: float
    backfill_chunk_days: int

    def __post_init__(self) -> None:
        _require_positive("run.lock_ttl_minutes", self.lock_ttl_minutes)
        _require_positive("run.backfill_chunk_days", self.backfill_chunk_days)
        if self.backfill_chunk_days > MAX_BACKFILL_CHUNK_DAYS:
            raise ConfigError(
                f"run.backfill_chunk_days must be at most {MAX_BACKFILL_CHUNK_DAYS}, got {self.backfill_chunk_days}: "
                "a pass carries one slot per date of the chunk in every engagement row, so memory grows with it"
            )


@dataclass(frozen=True)
class Settings:
    lake: LakeSettings
    catalog: CatalogSettings
    spark: SparkSettings
    sql_server: SqlServerSettings
    ingest: IngestSettings
    validate: ValidateSettings
    features: FeatureSettings
    propagate: PropagateSettings
    score: ScoreSettings
    run: RunSettings

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def config_hash(self) -> str:
        """A stable hash of the settings that change results (not where or how Spark runs)."""
        plain = self.to_dict()
        for key in ("spark", "lake", "catalog", "run", "sql_server"):
            plain.pop(key)
        text = json.dumps(plain, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_settings(
    env: str = "local",
    conf_files: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
    *,
    conf_dir: str | Path | None = None,
) -> Settings:
    """Load and validate settings.

    Parameters
    ----------
    env
        Environment overlay to apply on top of ``base.yaml``: ``local`` or ``cluster``.
    conf_files
        Extra YAML files merged in order after the overlay.
    overrides
        ``key=value`` strings (dotted keys, YAML values) applied last.
    conf_dir
        Folder holding ``base.yaml`` and the overlays (default: :func:`default_conf_dir`).

    Raises
    ------
    ConfigError
        A file is missing or malformed, a key is missing or unknown, or a value is invalid.
    """
    if env not in ENVIRONMENTS:
        raise ConfigError(f"env must be one of {list(ENVIRONMENTS)}, got {env!r}")
    conf_dir = Path(conf_dir) if conf_dir is not None else default_conf_dir()
    merged = _read_yaml(conf_dir / "base.yaml")
    for path in (conf_dir / f"{env}.yaml", *map(Path, conf_files)):
        merged = _deep_merge(merged, _read_yaml(path), where=str(path))
    for override in overrides:
        merged = _apply_override(merged, override)
    return _build(Settings, merged, "")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top, got {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value, where=where)
        else:
            merged[key] = value
    return merged


def _apply_override(merged: dict[str, Any], override: str) -> dict[str, Any]:
    key, sep, raw_value = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {override!r}")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value {raw_value!r} is not valid YAML: {exc}") from exc
    parts = key.strip().split(".")
    # Spark settings are themselves dotted: `spark.conf.spark.sql.x=1` sets one key.
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        parts = ["spark", "conf", ".".join(parts[2:])]
    patch: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        patch = {part: patch}
    return _deep_merge(merged, patch, where=f"--set {key}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'settings'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        names = ", ".join(_join(prefix, k) for k in unknown)
        raise ConfigError(f"unknown config key(s): {names}; known keys here: {sorted(fields)}")
    missing = sorted(fields - set(data))
    if missing:
        raise ConfigError(f"missing config key(s): {', '.join(_join(prefix, k) for k in missing)}")
    values = {name: _coerce(hints[name], data[name], _join(prefix, name)) for name in fields}
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - guarded by the checks above
        raise ConfigError(f"{prefix}: {exc}") from exc


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    origin = typing.get_origin(hint)
    if origin in (Mapping, dict) or hint is Mapping:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        _, value_type = typing.get_args(hint)
        return types.MappingProxyType(
            {str(k): _coerce(value_type, v, f"{key}.{k}") for k, v in value.items()}
        )
    if origin is tuple:
        if value is None:
            value = []
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        (item_type, _) = typing.get_args(hint)
        return tuple(_coerce(item_type, v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if value is None or isinstance(value, list | dict):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        # Spark settings are strings; YAML may have read "8" as 8 or true as True.
        return str(value).lower() if isinstance(value, bool) else str(value)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")  # pragma: no cover


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _require_choice(key: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {list(choices)}, got {value!r}")


def _require_positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def _require_non_negative(key: str, value: float) -> None:
    if value < 0:
        raise ConfigError(f"{key} must be >= 0, got {value}")


def _require_fraction(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be within [0, 1], got {value}")


def _require_relative_path(key: str, value: str) -> None:
    """A folder inside the lakehouse: relative, no ``..``, not empty."""
    parts = Path(value).parts
    if not value or Path(value).is_absolute() or ".." in parts or "://" in value:
        raise ConfigError(f"{key} must be a relative folder inside the lakehouse (no '..'), got {value!r}")


def _require_iso_date(key: str, value: str) -> None:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a date YYYY-MM-DD, got {value!r}") from exc
