"""klout-spark: influence scores (1-100) from raw social activity dumps, on Spark and Delta."""

__version__ = "0.1.0"
