"""A tiny scored lakehouse (two scored dates, some quarantine) shared by the SQL, calibration and report tests.

Built once per test run (the first module that asks builds it); tests that change
tables work on a copy (:func:`copy_lake`).
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path

from klout_spark.generate import generate_dump
from klout_spark.pipeline import Pipeline, run_daily

LAST_DAY = date(2026, 10, 31)
FIRST_SCORED = LAST_DAY - timedelta(days=1)
_BUILT: dict = {}


def scored_lake(tmp_path_factory) -> dict:
    """Generate a small dump, score its last two days, and return the settings and facts."""
    if "lake" not in _BUILT:
        from tests.conftest import test_settings

        root = tmp_path_factory.mktemp("scored")
        dump = root / "dump"
        generate_dump(dump, events=10_000, seed=5, days=8, end_date=LAST_DAY, dirty_rate=0.01)
        settings = test_settings(str(root / "lake"), "lake.database=scored", "validate.data_docs=true")
        first = Pipeline.open(settings)
        run_daily(first, as_of=FIRST_SCORED, inputs=[str(dump)], identities=str(dump / "_identities.csv"))
        second = Pipeline.open(settings)
        summary = run_daily(second, as_of=None, inputs=[])
        _BUILT["lake"] = dict(
            settings=settings, root=Path(settings.lake.root), as_of=summary.as_of, lake=second.lake,
            run_id=second.run.run_id, dump=dump,
        )
    return _BUILT["lake"]


def copy_lake(scored: dict, target: Path, *extra: str):
    """A copy of the scored lakehouse at ``target`` under a database of its own; returns its settings."""
    from tests.conftest import test_settings

    shutil.copytree(scored["root"], target)
    return test_settings(str(target), f"lake.database=c_{uuid.uuid4().hex[:10]}", *extra)
