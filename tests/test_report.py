"""`klout-spark report`: one self-contained HTML page with the numbers of the lakehouse."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from klout_spark import catalog
from klout_spark import columns as C
from klout_spark.cli import main
from klout_spark.report import HISTOGRAM_BINS, histograms, report_path
from tests.scored_lake import scored_lake

SECTIONS = ("summary", "distribution", "subscores", "convergence", "top", "validation", "quarantine", "data-docs")


@pytest.fixture(scope="module")
def scored(spark, tmp_path_factory):  # noqa: ARG001 - the session must exist first
    return scored_lake(tmp_path_factory)


def test_histograms_count_every_value_in_its_bin(spark):
    values = [0.0, 4.99, 5.0, 50.0, 99.9, 100.0, None]
    df = spark.createDataFrame([(v, 100.0 - v if v is not None else None) for v in values], "a double, b double")
    counts = histograms(df, ["a", "b"])
    expected_a = [0] * HISTOGRAM_BINS
    for index in (0, 0, 1, 10, 19, 19):
        expected_a[index] += 1
    assert counts["a"] == expected_a
    assert sum(counts["b"]) == 6 and counts["b"][0] == 2 and counts["b"][19] == 3  # 0, 0.1; 95, 95.01, 100


@pytest.mark.slow
def test_report_shows_the_lakehouse_numbers_in_every_section(scored, capsys):
    settings, lake, as_of = scored["settings"], scored["lake"], scored["as_of"]
    args = ["--set", f"lake.root={settings.lake.root}", "--set", f"lake.database={settings.lake.database}"]
    assert main(["report", *args]) == 0  # the default date is the last scored one
    path = report_path(settings.lake.root, as_of)
    assert f"report: {path}" in capsys.readouterr().out
    page = path.read_text()

    for section in SECTIONS:
        assert f"id='{section}'" in page, section
    # Self-contained: no scripts, stylesheets or images from elsewhere.
    assert "<script" not in page and "<link" not in page and not re.search(r"src=['\"]https?:", page)
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 3 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)

    scores = lake.read(catalog.SCORES).filter(F.col(C.AS_OF) == F.lit(as_of))
    accounts = scores.count()
    assert f'<td class="num">{accounts:,}</td>' in page
    bins = [int(n.replace(",", "")) for n in re.findall(r"<td>\d+-\d+</td><td class=\"num\">([\d,]+)</td>", page)]
    assert len(bins) == HISTOGRAM_BINS and sum(bins) == accounts

    top = scores.orderBy(F.col(C.SCORE).desc(), C.NETWORK, C.USER_ID).limit(50).collect()
    top_section = page.split("id='top'")[1].split("id='validation'")[0]
    assert top_section.count("<tr>") == 1 + len(top)  # header + one row each
    assert top_section.index(top[0][C.USER_ID]) < top_section.index(top[-1][C.USER_ID])
    engager = (
        lake.read(catalog.SCORE_EXPLAIN)
        .filter((F.col(C.AS_OF) == F.lit(as_of)) & (F.col(C.USER_ID) == top[0][C.USER_ID])
                & (F.col(C.CONTRIBUTOR_KIND) == "engager") & (F.col(C.POSITION) == 1))
        .first()
    )
    assert engager is not None and engager[C.CONTRIBUTOR_ID] in top_section

    propagate = (
        lake.read(catalog.RUNS)
        .filter((F.col(C.AS_OF) == F.lit(as_of)) & (F.col(C.STAGE) == "propagate"))
        .orderBy(F.col(C.STARTED_AT).desc()).first()
    )
    assert f"{propagate[C.ITERATIONS]} iterations" in page and len(propagate[C.RESIDUALS]) == propagate[C.ITERATIONS]

    quarantine = lake.read(catalog.QUARANTINE).groupBy(C.STAGE, C.REASON).count().collect()
    assert quarantine, "the scored lakehouse is built from a dump with damaged records"
    for row in quarantine:
        assert re.search(
            rf"<td>{re.escape(row[C.STAGE])}</td><td>{re.escape(row[C.REASON])}</td><td class=\"num\">{row['count']:,}</td>",
            page,
        ), row
    assert f"Total quarantined rows: {sum(r['count'] for r in quarantine):,}." in page

    links = re.findall(r"<a href='([^']+)'>", page.split("id='data-docs'")[1])
    assert links and all((path.parent / link).resolve().is_file() for link in links)
    assert any(Path(link).parent.name == "scores" for link in links)


@pytest.mark.slow
def test_evaluate_defaults_to_the_last_scored_date_like_the_report(scored, capsys):
    import json

    settings, lake, as_of = scored["settings"], scored["lake"], scored["as_of"]
    args = ["--set", f"lake.root={settings.lake.root}", "--set", f"lake.database={settings.lake.database}"]
    assert main(["evaluate", "--truth", str(scored["dump"] / "_ground_truth"), "--json", *args]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["as_of"] == as_of.isoformat()
    assert result["scored"] == lake.read(catalog.SCORES).filter(F.col(C.AS_OF) == F.lit(as_of)).count()
