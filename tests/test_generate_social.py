"""Generator: a four-network world written natively (no Spark)."""

import csv
import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from klout_spark.generate import generate_dump

NETWORKS = ("twitter", "reddit", "facebook", "linkedin")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    out = tmp_path_factory.mktemp("native") / "dump"
    summary = generate_dump(out, events=10_000, seed=4, days=4, fmt="native", networks=NETWORKS)
    return out, summary


def test_native_dump_is_byte_reproducible(native, tmp_path):
    out, _ = native
    generate_dump(tmp_path / "again", events=10_000, seed=4, days=4, fmt="native", networks=NETWORKS)
    assert _digest(tmp_path / "again") == _digest(out)


def test_each_network_gets_its_own_format_and_persons_span_all_four(native):
    out, summary = native
    names = Counter(Path(p).name.split("-")[0] for p in summary.files)
    archive_files = {"Connections.csv", "Shares.csv", "Comments.csv", "Reactions.csv"}
    assert set(names) - archive_files == {"twitter", "reddit", "facebook"} and archive_files & set(names)
    assert names["twitter"] == names["reddit"] == names["facebook"] == 4
    with gzip.open(next(p for p in summary.files if "facebook-" in p), "rt") as handle:
        page = json.loads(handle.readline())
    post = page["data"][0]
    assert set(page) == {"data", "paging"} and {"id", "created_time", "from", "message"} <= set(post)
    assert post["created_time"].endswith("+0000") and post["id"].startswith(post["from"]["id"] + "_")
    archives = {Path(p).parent.name for p in summary.files if "/linkedin/" in p}
    assert archives and all(a.startswith("linkedin-archive-") for a in archives)
    connections = next(Path(p) for p in summary.files if p.endswith("Connections.csv"))
    assert connections.read_text().splitlines()[3].startswith("First Name,Last Name,URL,")
    with open(out / "_identities.csv", encoding="utf-8") as handle:
        by_person = Counter(row["person_id"] for row in csv.DictReader(handle))
    assert by_person and set(by_person.values()) == {4}
    assert json.loads((out / "_ground_truth" / "params.json").read_text())["networks"] == list(NETWORKS)


def test_networks_must_include_twitter_and_reddit(tmp_path):
    with pytest.raises(ValueError, match="networks"):
        generate_dump(tmp_path / "x", events=10_000, networks=("twitter", "facebook"))
    with pytest.raises(ValueError, match="dirty_rate"):
        generate_dump(tmp_path / "y", events=10_000, fmt="native", dirty_rate=0.1)
