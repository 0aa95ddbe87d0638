"""``klout-spark report``: one self-contained HTML page about the scores of one ``as_of``.

Sections: a summary, the score distribution, the sub-score histograms, the
propagation's convergence curve, the top 50 with their explanations and topics,
the runs and validation results, the quarantine by reason, and links to the
Great Expectations Data Docs of the run. The page has no external assets: CSS is
inline and the plots are PNGs (matplotlib) inlined as base64.

Only bounded aggregates reach the driver: histograms with a fixed number of
bins (computed in Spark), the top 50 and their explanation rows, the residuals
of one PageRank run, and counts grouped by stage/status/reason (capped).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark import schemas as S
from klout_spark.errors import InputError, StageOrderError
from klout_spark.io import Lakehouse

REPORTS_DIR = "_reports"
HISTOGRAM_BINS = 20
TOP_N = 50
MAX_GROUP_ROWS = 200
SUB_SCORE_COLUMNS = (C.TRUE_REACH, C.AMPLIFICATION, C.NETWORK_IMPACT)


@dataclass(frozen=True)
class ScoreSummary:
    accounts: int
    networks: dict[str, int]
    mean: float
    median: float
    p90: float
    p99: float
    maximum: float
    share_50_plus: float
    share_90_plus: float
    model_versions: tuple[str, ...]
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows; every field is small (bounded by bins, top N or group caps)."""

    as_of: date
    database: str
    summary: ScoreSummary
    histograms: dict[str, list[int]]
    residuals: list[float]
    propagate_run: Mapping[str, object] | None
    top: list[dict]
    explanations: dict[tuple[str, str], list[dict]]
    topics: dict[tuple[str, str], list[str]]
    runs: list[dict]
    quarantine: list[dict]
    data_docs: list[tuple[str, str]]
    calibration: str


def default_report_as_of(lake: Lakehouse) -> date:
    """The last date with scores."""
    last = lake.read(catalog.SCORES).agg(F.max(C.AS_OF)).first()[0]
    if last is None:
        raise StageOrderError("scores is empty: run `klout-spark run` (or score) first")
    return last


def report_path(root: str, as_of: date) -> Path:
    """``<lake.root>/_reports/report-<as_of>.html`` (the lakehouse must be a local path)."""
    local = root.removeprefix("file://").removeprefix("file:")
    if "://" in local:
        raise InputError(f"report: lake.root {root!r} is not a local path; reports are written to local disk only")
    return Path(local) / REPORTS_DIR / f"report-{as_of.isoformat()}.html"


def histograms(scores: DataFrame, columns: Sequence[str], *, bins: int = HISTOGRAM_BINS) -> dict[str, list[int]]:
    """Counts per bin of width ``100 / bins`` over [0, 100] for each column, computed in Spark.

    The last bin is closed (100 falls in it); at most ``len(columns) * bins`` rows are collected.
    """
    width = 100.0 / bins
    stacked = scores.select(
        F.explode(
            F.array(*[
                F.struct(F.lit(c).alias("component"), F.col(c).cast("double").alias("value")) for c in columns
            ])
        ).alias("x")
    ).select("x.component", "x.value")
    bin_index = F.least(F.greatest(F.floor(F.col("value") / width), F.lit(0)), F.lit(bins - 1)).cast("int")
    counts = {c: [0] * bins for c in columns}
    for row in stacked.filter(F.col("value").isNotNull()).groupBy("component", bin_index.alias("bin")).count().collect():
        counts[row["component"]][row["bin"]] = row["count"]
    return counts


def score_summary(scores: DataFrame) -> ScoreSummary:
    row = scores.agg(
        F.count(F.lit(1)).alias("n"),
        F.avg(C.SCORE).alias("mean"),
        F.percentile_approx(C.SCORE, [0.5, 0.9, 0.99], 10_000).alias("q"),
        F.max(C.SCORE).alias("max"),
        F.avg(F.when(F.col(C.SCORE) >= 50, 1.0).otherwise(0.0)).alias("s50"),
        F.avg(F.when(F.col(C.SCORE) >= 90, 1.0).otherwise(0.0)).alias("s90"),
        F.sort_array(F.collect_set(C.MODEL_VERSION)).alias("versions"),
        F.sort_array(F.collect_set(C.RUN_ID)).alias("runs"),
    ).first()
    if row["n"] == 0:
        raise StageOrderError("no scores for this as_of")
    networks = {r[C.NETWORK]: r["count"] for r in scores.groupBy(C.NETWORK).count().limit(MAX_GROUP_ROWS).collect()}
    median, p90, p99 = row["q"]
    return ScoreSummary(
        accounts=row["n"], networks=dict(sorted(networks.items())), mean=row["mean"], median=median, p90=p90,
        p99=p99, maximum=row["max"], share_50_plus=row["s50"], share_90_plus=row["s90"],
        model_versions=tuple(row["versions"]), run_ids=tuple(row["runs"]),
    )


def collect_report(lake: Lakehouse, as_of: date, *, results_dir: str, model_version: str) -> ReportData:
    """Gather the (bounded) facts of the report for ``as_of`` from the lakehouse tables."""
    scores = lake.read(catalog.SCORES).filter(F.col(C.AS_OF) == F.lit(as_of))
    summary = score_summary(scores)
    hist = histograms(scores, (C.SCORE, *SUB_SCORE_COLUMNS))
    top_rows = [
        r.asDict()
        for r in scores.orderBy(F.col(C.SCORE).desc(), C.NETWORK, C.USER_ID)
        .select(C.NETWORK, C.USER_ID, C.SCORE, *SUB_SCORE_COLUMNS, C.RANK, C.PERCENTILE, C.SCORE_DELTA_7D)
        .limit(TOP_N)
        .collect()
    ]
    keys = lake.spark.createDataFrame(
        [(r[C.NETWORK], r[C.USER_ID]) for r in top_rows] or [("", "")], "network string, user_id string"
    )
    explanations: dict[tuple[str, str], list[dict]] = {}
    for r in _rows_of_accounts(lake, catalog.SCORE_EXPLAIN, as_of, keys, C.CONTRIBUTOR_KIND, C.POSITION):
        explanations.setdefault((r[C.NETWORK], r[C.USER_ID]), []).append(r.asDict())
    topics: dict[tuple[str, str], list[str]] = {}
    for r in _rows_of_accounts(lake, catalog.SCORE_TOPICS, as_of, keys, F.col(C.TOPIC_SCORE).desc(), C.TOPIC):
        topics.setdefault((r[C.NETWORK], r[C.USER_ID]), []).append(r[C.TOPIC])
    runs, propagate_run, residuals, run_ids = _runs(lake, as_of, summary.run_ids)
    return ReportData(
        as_of=as_of,
        database=lake.database,
        summary=summary,
        histograms=hist,
        residuals=residuals,
        propagate_run=propagate_run,
        top=top_rows,
        explanations=explanations,
        topics=topics,
        runs=runs,
        quarantine=_quarantine(lake),
        data_docs=_data_docs(results_dir, run_ids),
        calibration=_calibration_note(lake, model_version),
    )


def _rows_of_accounts(lake: Lakehouse, table: str, as_of: date, keys: DataFrame, *order) -> list:
    """The ``as_of`` rows of ``table`` for the accounts in ``keys`` (the top N), sorted by account, then ``order``.

    Bounded: a few rows per account of ``keys``; no rows when ``table`` does not exist yet.
    """
    if not lake.exists(table):
        return []
    return (
        lake.read(table)
        .filter(F.col(C.AS_OF) == F.lit(as_of))
        .join(F.broadcast(keys), on=[C.NETWORK, C.USER_ID], how="inner")
        .orderBy(C.NETWORK, C.USER_ID, *order)
        .collect()
    )


def _runs(lake: Lakehouse, as_of: date, score_run_ids: Iterable[str]):
    """Stages recorded for ``as_of`` (and the ingest/validate stages of the same runs), newest first."""
    if not lake.exists(catalog.RUNS):
        return [], None, [], list(score_run_ids)
    runs = lake.read(catalog.RUNS)
    related = runs.filter(F.col(C.AS_OF) == F.lit(as_of)).select(C.RUN_ID).distinct()
    rows = (
        runs.join(related, on=C.RUN_ID, how="left_semi")
        .orderBy(F.col(C.STARTED_AT).desc())
        .select(C.RUN_ID, C.AS_OF, C.STAGE, C.STATUS, C.STARTED_AT, C.ENDED_AT, C.ROWS_IN, C.ROWS_OUT,
                C.ITERATIONS, C.RESIDUAL, C.MESSAGE, C.DETAILS)
        .limit(MAX_GROUP_ROWS)
        .collect()
    )
    records = [r.asDict() for r in rows]
    propagate = (
        runs.filter(
            (F.col(C.AS_OF) == F.lit(as_of)) & (F.col(C.STAGE) == "propagate") & (F.col(C.STATUS) == "succeeded")
        )
        .orderBy(F.col(C.STARTED_AT).desc())
        .select(C.RUN_ID, C.ITERATIONS, C.RESIDUAL, C.RESIDUALS, C.DETAILS)
        .limit(1)
        .collect()
    )
    propagate_run = propagate[0].asDict() if propagate else None
    residuals = list(propagate_run[C.RESIDUALS] or []) if propagate_run else []
    run_ids = list(dict.fromkeys([*score_run_ids, *(r[C.RUN_ID] for r in records)]))
    return records, propagate_run, residuals, run_ids


def _quarantine(lake: Lakehouse) -> list[dict]:
    if not lake.exists(catalog.QUARANTINE):
        return []
    rows = (
        lake.read(catalog.QUARANTINE)
        .groupBy(C.STAGE, C.REASON)
        .agg(F.count(F.lit(1)).alias("rows"), F.max(C.QUARANTINED_AT).alias("last_seen"))
        .orderBy(F.col("rows").desc(), C.STAGE, C.REASON)
        .limit(MAX_GROUP_ROWS)
        .collect()
    )
    return [r.asDict() for r in rows]


def _calibration_note(lake: Lakehouse, model_version: str) -> str:
    if lake.exists(catalog.SCORE_CALIBRATION):
        row = (
            lake.read(catalog.SCORE_CALIBRATION)
            .filter(F.col(C.MODEL_VERSION) == model_version)
            .agg(F.max(S.REFERENCE_AS_OF), F.max(S.REFERENCE_ACCOUNTS))
            .first()
        )
        if row[0] is not None:
            return (
                f"model {model_version} is calibrated on {row[0]} ({row[1]:,} genuine accounts): "
                "median -> 30, 90th percentile -> 50, 99.9th -> 90"
            )
    return f"model {model_version} has no stored calibration: the fixed curves apply"


def _data_docs(results_dir: str, run_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(run_id/suite, absolute path) of each Data Docs index kept for ``run_ids``."""
    base = Path(results_dir.removeprefix("file://").removeprefix("file:"))
    found = []
    for run_id in run_ids:
        for index in sorted((base / run_id / "data_docs").glob("*/index.html")):
            found.append((f"{run_id} / {index.parent.name}", str(index)))
    return found


# --------------------------------------------------------------------------- rendering


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(data: ReportData) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 100.0 / HISTOGRAM_BINS
    edges = [i * width for i in range(HISTOGRAM_BINS)]
    plots = {}
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(edges, data.histograms[C.SCORE], width=width, align="edge", color="#3b6ea8", edgecolor="white")
    ax.axvspan(20, 40, color="#9bc59d", alpha=0.25, label="typical (20-40)")
    ax.axvline(50, color="#d08c2c", linestyle="--", linewidth=1, label="notable (50+)")
    ax.axvline(90, color="#b03a2e", linestyle="--", linewidth=1, label="rare (90+)")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score")
    ax.set_ylabel("accounts")
    ax.legend(loc="upper right", fontsize=8)
    plots["distribution"] = _png(fig)

    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), sharey=True)
    for ax, column in zip(axes, SUB_SCORE_COLUMNS, strict=True):
        ax.bar(edges, data.histograms[column], width=width, align="edge", color="#6b8e23", edgecolor="white")
        ax.set_xlim(0, 100)
        ax.set_title(column.replace("_", " "))
    axes[0].set_ylabel("accounts")
    plots["subscores"] = _png(fig)

    if data.residuals:
        fig, ax = plt.subplots(figsize=(8, 3))
        positive = [max(r, 1e-300) for r in data.residuals]
        ax.semilogy(range(1, len(positive) + 1), positive, marker=".", color="#3b6ea8")
        ax.set_xlabel("iteration")
        ax.set_ylabel("L1 residual")
        ax.grid(True, which="both", alpha=0.3)
        plots["convergence"] = _png(fig)
    return plots


CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: .88em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f3f5f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.small { color: #666; font-size: .85em; } .failed { color: #b03a2e; font-weight: bold; }
img { max-width: 100%; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: object, fmt: str = "{:,.1f}") -> str:
    if value is None:
        return ""
    return fmt.format(value)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>" for i, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: ReportData, *, report_file: Path) -> str:
    """The page for ``data``; links to Data Docs are relative to ``report_file``."""
    plots = _plots(data)
    s = data.summary
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>klout-spark report {data.as_of}</title><style>{CSS}</style></head><body>",
        f"<h1>klout-spark scores on {data.as_of}</h1>",
        f"<p class='small'>Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the tables of database "
        f"<code>{_e(data.database)}</code>. {_e(data.calibration)}.</p>",
        "<h2 id='summary'>Summary</h2>",
        _table(
            ["accounts", "mean", "median", "90th pct", "99th pct", "max", "50+ share", "90+ share"],
            [[f"{s.accounts:,}", _num(s.mean), _num(s.median), _num(s.p90), _num(s.p99), _num(s.maximum),
              f"{100 * s.share_50_plus:.2f} %", f"{100 * s.share_90_plus:.2f} %"]],
            numeric=range(8),
        ),
        _table(["network", "accounts"], [[_e(n), f"{c:,}"] for n, c in s.networks.items()], numeric=[1]),
        f"<p class='small'>model_version: {_e(', '.join(s.model_versions))}; written by run "
        f"{_e(', '.join(s.run_ids))}.</p>",
        "<h2 id='distribution'>Score distribution</h2>",
        f"<img alt='score histogram' src='data:image/png;base64,{plots['distribution']}'>",
        _table(
            ["bin", "accounts"],
            [[f"{i * 100 // HISTOGRAM_BINS}-{(i + 1) * 100 // HISTOGRAM_BINS}", f"{n:,}"]
             for i, n in enumerate(data.histograms[C.SCORE])],
            numeric=[1],
        ),
        "<h2 id='subscores'>Sub-scores</h2>",
        f"<img alt='sub-score histograms' src='data:image/png;base64,{plots['subscores']}'>",
        "<h2 id='convergence'>Propagation convergence</h2>",
    ]
    if data.propagate_run:
        run = data.propagate_run
        details = json.loads(run[C.DETAILS]) if run.get(C.DETAILS) else {}
        parts.append(
            f"<p>PageRank of run {_e(run[C.RUN_ID])}: {run[C.ITERATIONS]} iterations "
            f"({_e(details.get('method', '?'))}), final L1 residual {_num(run[C.RESIDUAL], '{:.3e}')}.</p>"
        )
        if "convergence" in plots:
            parts.append(f"<img alt='residual per iteration' src='data:image/png;base64,{plots['convergence']}'>")
    else:
        parts.append("<p>No successful propagate stage is recorded for this date.</p>")
    parts += [f"<h2 id='top'>Top {len(data.top)}</h2>", _top_table(data)]
    parts += ["<h2 id='validation'>Runs and validation</h2>", _runs_table(data.runs)]
    parts.append("<h2 id='quarantine'>Quarantine by reason</h2>")
    if data.quarantine:
        parts.append(_table(
            ["stage", "reason", "rows", "last seen"],
            [[_e(r[C.STAGE]), _e(r[C.REASON]), f"{r['rows']:,}", _e(r["last_seen"])] for r in data.quarantine],
            numeric=[2],
        ))
        parts.append(f"<p>Total quarantined rows: {sum(r['rows'] for r in data.quarantine):,}.</p>")
    else:
        parts.append("<p>Nothing is quarantined.</p>")
    parts.append("<h2 id='data-docs'>Great Expectations Data Docs</h2>")
    if data.data_docs:
        items = "".join(
            f"<li><a href='{_e(os.path.relpath(path, report_file.parent))}'>{_e(label)}</a></li>"
            for label, path in data.data_docs
        )
        parts.append(f"<ul>{items}</ul>")
    else:
        parts.append("<p>No Data Docs were kept for these runs (validate.data_docs is off, or another lakehouse).</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _top_table(data: ReportData) -> str:
    rows = []
    for position, r in enumerate(data.top, start=1):
        key = (r[C.NETWORK], r[C.USER_ID])
        explain = data.explanations.get(key, [])
        engagers = ", ".join(
            f"{_e(x[C.CONTRIBUTOR_ID])} ({100 * x[C.CONTRIBUTION]:.0f} %)"
            for x in explain if x[C.CONTRIBUTOR_KIND] == "engager"
        )
        posts = ", ".join(
            f"{_e(x[C.CONTRIBUTOR_ID])} ({x[C.CONTRIBUTION]:.0f})" for x in explain if x[C.CONTRIBUTOR_KIND] == "post"
        )
        rows.append([
            str(position), _e(r[C.NETWORK]), _e(r[C.USER_ID]), _num(r[C.SCORE]), _num(r[C.TRUE_REACH]),
            _num(r[C.AMPLIFICATION]), _num(r[C.NETWORK_IMPACT]), _num(r[C.SCORE_DELTA_7D], "{:+.1f}"),
            _e(", ".join(data.topics.get(key, []))), engagers, posts,
        ])
    return _table(
        ["#", "network", "user", "score", "reach", "amplif.", "impact", "Δ7d", "topics",
         "top engagers (share of PageRank inflow)", "top posts (genuine engagements)"],
        rows, numeric=[0, 3, 4, 5, 6, 7],
    )


def _runs_table(runs: list[dict]) -> str:
    if not runs:
        return "<p>No runs are recorded for this date.</p>"
    rows = []
    for r in runs:
        status = f"<span class='failed'>{_e(r[C.STATUS])}</span>" if r[C.STATUS] != "succeeded" else _e(r[C.STATUS])
        seconds = (r[C.ENDED_AT] - r[C.STARTED_AT]).total_seconds()
        rows.append([
            _e(r[C.RUN_ID]), _e(r[C.STAGE]), status, _num(r[C.ROWS_IN], "{:,}"), _num(r[C.ROWS_OUT], "{:,}"),
            f"{seconds:.1f}", _e(r[C.MESSAGE]),
        ])
    return _table(["run", "stage", "status", "rows in", "rows out", "seconds", "message"], rows, numeric=[3, 4, 5])


def write_report(lake: Lakehouse, as_of: date | None, *, results_dir: str, model_version: str) -> Path:
    """Collect, render and write the report of ``as_of`` (default: last scored date); return its path."""
    as_of = as_of or default_report_as_of(lake)
    path = report_path(lake.root, as_of)
    data = collect_report(lake, as_of, results_dir=results_dir, model_version=model_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render_html(data, report_file=path), encoding="utf-8")
    partial.replace(path)
    return path
