"""End-to-end: a generated sample in every network's own format (Twitter, Reddit, Facebook, LinkedIn)."""

import csv
from collections import defaultdict

import pytest

from klout_spark import catalog
from klout_spark.generate import generate_dump
from klout_spark.pipeline import Pipeline, run_daily

pytestmark = pytest.mark.slow


def test_native_four_network_sample_scores_persons_across_networks(spark, tmp_path):  # noqa: ARG001
    from tests.conftest import test_settings

    dump = tmp_path / "dump"
    summary = generate_dump(dump, events=10_000, seed=5, days=7, fmt="native",
                            networks=("twitter", "reddit", "facebook", "linkedin"))
    assert any("/linkedin/linkedin-archive-" in path for path in summary.files)
    settings = test_settings(str(tmp_path / "lake"), "lake.database=social_e2e")
    pipeline = Pipeline.open(settings)
    result = run_daily(pipeline, as_of=None, inputs=[str(dump)], identities=str(dump / "_identities.csv"))
    lake = pipeline.lake

    formats = {a.format for a in result.ingest.accounts}
    assert formats == {"twitter", "reddit", "facebook", "linkedin_archive"}
    assert result.ingest.rows_read == result.ingest.rows_ok + result.ingest.rows_quarantined
    scored = {(r.network, r.user_id) for r in lake.read(catalog.SCORES).select("network", "user_id").collect()}
    assert {network for network, _ in scored} == {"twitter", "reddit", "facebook", "linkedin"}

    networks_of: dict[str, set[str]] = defaultdict(set)
    with open(dump / "_identities.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row["network"], row["user_id"]) in scored:
                networks_of[row["person_id"]].add(row["network"])
    persons = {r.person_id: r.accounts for r in lake.read(catalog.PERSON_SCORES).collect()}
    # Every person's score combines exactly their scored accounts, on up to four networks.
    assert persons == {person: len(nets) for person, nets in networks_of.items()}
    spanning = [p for p, nets in networks_of.items() if {"twitter", "facebook", "linkedin"} <= nets]
    assert spanning, "no person scored on Twitter, Facebook and LinkedIn at once"
    assert all(persons[p] >= 3 for p in spanning)
