"""Project exceptions. Jobs and the CLI catch these, log them and exit 1."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import DataFrame


class KloutError(Exception):
    """Base of every error klout-spark raises on purpose."""


class ConfigError(KloutError, ValueError):
    """A setting is missing, unknown or invalid."""


class MissingColumnsError(KloutError, ValueError):
    """A DataFrame lacks columns that a transform requires."""


class InputError(KloutError, ValueError):
    """An input path, date or argument given by the user is unusable."""


class DataQualityError(KloutError, RuntimeError):
    """A batch failed validation beyond its configured threshold."""


class QuarantineTranslationError(KloutError, RuntimeError):
    """The Spark predicates derived from a suite disagree with Great Expectations' own counts."""


class StorageError(KloutError, RuntimeError):
    """The lakehouse storage refuses writes (read-only, no permission, full)."""


class ConcurrentRunError(KloutError, RuntimeError):
    """Another run holds the lakehouse's writer lock."""


class StageOrderError(KloutError, RuntimeError):
    """A stage ran before the stage it depends on produced its table."""


class ServerError(KloutError, RuntimeError):
    """The SQL (Thrift) server could not start or serve."""


def has_columns(df: DataFrame, required: Iterable[str]) -> bool:
    """Return whether ``df`` has every column in ``required``."""
    return set(required) <= set(df.columns)


def require_columns(df: DataFrame, required: Iterable[str], *, where: str) -> None:
    """Raise :class:`MissingColumnsError` naming what ``where`` needs and what ``df`` has."""
    missing = sorted(set(required) - set(df.columns))
    if missing:
        raise MissingColumnsError(f"{where}: missing columns {missing}; available {sorted(df.columns)}")
