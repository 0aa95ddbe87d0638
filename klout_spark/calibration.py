"""Score calibration, fixed per ``model_version`` (``klout-spark calibrate``).

The raw signals behind the sub-scores have very different scales (log engagers,
a smoothed rate, log PageRank ratio). A calibration maps each of them, and then
their weighted mean, onto 0-100 with a monotone piecewise-linear curve whose
knots are quantiles of a reference day's *genuine* accounts (not inactive, not
spam-like):

====================================  =====
quantile of the reference accounts    value
====================================  =====
raw signal 0 (no signal at all)       0
25th percentile                       20
median                                30
75th percentile                       40
90th percentile                       50
97th percentile                       65
99th percentile                       80
99.9th percentile                     90
the curve's ceiling                   100
====================================  =====

So on the reference day a typical active account lands around 20-40, 50+ is the
top 10 % (notable) and 90+ the top 0.1 % (rare). The ceiling is the larger of
the fixed curve's full scale (see :mod:`klout_spark.scoring`) and the largest
reference value, so later accounts above the reference still rank above it
until they reach 100. Tied quantiles keep the lower value: if half the accounts
have no engagers, no engagers still means 0.

The calibration is computed once and stored in ``score_calibration`` under the
``model_version``; scoring then applies the same curves every day, so a score
moves only when the account's own activity moves. Without a stored calibration
for its ``model_version`` scoring uses the fixed curves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import InputError

# Components of a calibration: the three sub-scores and the final score.
SUB_SCORES = (C.TRUE_REACH, C.AMPLIFICATION, C.NETWORK_IMPACT)
COMPONENTS = (*SUB_SCORES, C.SCORE)

# Quantiles of the reference accounts and the value each maps to (see the module docstring).
REFERENCE_QUANTILES: tuple[tuple[float, float], ...] = (
    (0.25, 20.0),
    (0.5, 30.0),
    (0.75, 40.0),
    (0.9, 50.0),
    (0.97, 65.0),
    (0.99, 80.0),
    (0.999, 90.0),
)
CEILING_VALUE = 100.0
# percentile_approx accuracy: relative rank error 1/accuracy, memory grows with it.
QUANTILE_ACCURACY = 10_000


@dataclass(frozen=True)
class Curve:
    """A monotone piecewise-linear map: ``knots`` are ``(raw, value)`` with raw strictly increasing.

    Below the first knot the value is the first knot's value; above the last, the last's.
    """

    knots: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.knots) < 2:
            raise InputError(f"a calibration curve needs at least 2 knots, got {list(self.knots)}")
        raws = [k[0] for k in self.knots]
        values = [k[1] for k in self.knots]
        if any(b <= a for a, b in zip(raws, raws[1:], strict=False)):
            raise InputError(f"calibration knots must have strictly increasing raw values, got {raws}")
        if any(b < a for a, b in zip(values, values[1:], strict=False)):
            raise InputError(f"calibration knot values must not decrease, got {values}")

    def apply(self, raw: Column) -> Column:
        """The curve's value at ``raw`` as a Spark column (null stays null)."""
        (first_raw, first_value), *_ = self.knots
        last_raw, last_value = self.knots[-1]
        value = F.when(raw <= F.lit(first_raw), F.lit(first_value))
        for (x0, y0), (x1, y1) in zip(self.knots, self.knots[1:], strict=False):
            slope = (y1 - y0) / (x1 - x0)
            value = value.when(raw <= F.lit(x1), F.lit(y0) + (raw - F.lit(x0)) * F.lit(slope))
        return value.when(raw > F.lit(last_raw), F.lit(last_value))

    def __call__(self, raw: float) -> float:
        """The same curve on one Python number (for tests and the report)."""
        if raw <= self.knots[0][0]:
            return self.knots[0][1]
        for (x0, y0), (x1, y1) in zip(self.knots, self.knots[1:], strict=False):
            if raw <= x1:
                return y0 + (raw - x0) * (y1 - y0) / (x1 - x0)
        return self.knots[-1][1]


def curve_from_quantiles(quantiles: Sequence[float], *, ceiling: float) -> Curve:
    """Build a :class:`Curve` from the reference quantiles (in ``REFERENCE_QUANTILES`` order).

    Knots: ``(0, 0)``, each quantile with its value (a quantile not above the
    previous knot is dropped, so ties keep the lower value), and
    ``(ceiling, 100)`` (moved just above the last knot if needed).
    """
    if len(quantiles) != len(REFERENCE_QUANTILES):
        raise InputError(f"expected {len(REFERENCE_QUANTILES)} quantiles, got {len(quantiles)}")
    knots = [(0.0, 0.0)]
    for raw, (_, value) in zip(quantiles, REFERENCE_QUANTILES, strict=True):
        if raw is not None and raw > knots[-1][0]:
            knots.append((float(raw), value))
    top = max(float(ceiling), knots[-1][0])
    if top <= knots[-1][0]:
        top = knots[-1][0] * (1.0 + 1e-9) + 1e-12
    knots.append((top, CEILING_VALUE))
    return Curve(tuple(knots))


@dataclass(frozen=True)
class Calibration:
    """The curves of one ``model_version``, from the reference date ``reference_as_of``."""

    model_version: str
    reference_as_of: date
    reference_accounts: int
    curves: Mapping[str, Curve]

    def __post_init__(self) -> None:
        missing = sorted(set(COMPONENTS) - set(self.curves))
        if missing:
            raise InputError(f"calibration {self.model_version!r} lacks curves for {missing}")


def build_calibration(
    raw: DataFrame,
    *,
    model_version: str,
    reference_as_of: date,
    ceilings: Mapping[str, float],
    weights: tuple[float, float, float],
) -> Calibration:
    """Fit the curves of a calibration on the reference accounts in ``raw``.

    Parameters
    ----------
    raw
        One row per reference account with the raw signals ``true_reach``,
        ``amplification``, ``network_impact`` (see :func:`klout_spark.scoring.raw_signals`).
    ceilings
        Raw value of each sub-score that maps to 100 at least (the fixed curves' full scale).
    weights
        Weights of the sub-scores in the combined score (normalized here).

    Notes
    -----
    Two bounded aggregations (``percentile_approx``) reach the driver: the
    quantiles of the raw signals, then those of the combined calibrated score.
    """
    probabilities = [p for p, _ in REFERENCE_QUANTILES]
    row = raw.agg(
        F.count(F.lit(1)).alias("accounts"),
        *[F.percentile_approx(c, probabilities, QUANTILE_ACCURACY).alias(f"q_{c}") for c in SUB_SCORES],
        *[F.max(c).alias(f"max_{c}") for c in SUB_SCORES],
    ).first()
    if row is None or row["accounts"] == 0:
        raise InputError(
            f"cannot calibrate on {reference_as_of}: no genuine (active, not spam-like) account has features then"
        )
    curves = {
        c: curve_from_quantiles(row[f"q_{c}"], ceiling=max(ceilings[c], row[f"max_{c}"] or 0.0))
        for c in SUB_SCORES
    }
    combined = combined_subscores({c: curves[c].apply(F.col(c)) for c in SUB_SCORES}, weights)
    score_quantiles = raw.agg(F.percentile_approx(combined, probabilities, QUANTILE_ACCURACY)).first()[0]
    curves[C.SCORE] = curve_from_quantiles(score_quantiles, ceiling=100.0)
    return Calibration(model_version, reference_as_of, int(row["accounts"]), curves)


def combined_subscores(subscores: Mapping[str, Column], weights: tuple[float, float, float]) -> Column:
    """Weighted mean (weights normalized) of the three sub-score columns, 0-100."""
    total = sum(weights)
    return sum(
        (F.lit(w / total) * subscores[c] for w, c in zip(weights, SUB_SCORES, strict=True)),
        start=F.lit(0.0),
    )


def calibration_rows(calibration: Calibration, *, created_at: datetime, run_id: str) -> list[tuple]:
    """Rows of ``score_calibration`` (``SCORE_CALIBRATION_SCHEMA``) for ``calibration``."""
    rows = []
    for component in COMPONENTS:
        for position, (raw, value) in enumerate(calibration.curves[component].knots):
            rows.append((
                calibration.model_version, component, position, float(raw), float(value),
                calibration.reference_as_of, calibration.reference_accounts, created_at, run_id,
            ))
    return rows


def calibration_from_rows(rows: Iterable[Row], *, model_version: str) -> Calibration | None:
    """Rebuild the :class:`Calibration` of ``model_version`` from ``score_calibration`` rows (None if none)."""
    mine = [r for r in rows if r[C.MODEL_VERSION] == model_version]
    if not mine:
        return None
    curves = {}
    for component in {r[S.COMPONENT] for r in mine}:
        knots = sorted((r[S.KNOT], r[S.RAW_VALUE], r[S.CALIBRATED_VALUE]) for r in mine if r[S.COMPONENT] == component)
        curves[component] = Curve(tuple((raw, value) for _, raw, value in knots))
    first = mine[0]
    return Calibration(model_version, first[S.REFERENCE_AS_OF], first[S.REFERENCE_ACCOUNTS], curves)
