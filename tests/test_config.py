from pathlib import Path

import pytest

from klout_spark.config import DEFAULT_CONF_DIR, load_settings
from klout_spark.errors import ConfigError


def _conf_dir(tmp_path: Path, base_text: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "base.yaml").write_text(base_text)
    (conf / "local.yaml").write_text("{}\n")
    (conf / "cluster.yaml").write_text("{}\n")
    return conf


def test_base_and_local_overlay_load_into_typed_settings():
    settings = load_settings("local")
    assert settings.lake.database == "klout"
    assert settings.spark.master == "local[2]"
    assert settings.spark.conf["spark.ui.enabled"] == "false"  # from local.yaml
    assert settings.propagate.type_weights["reshare"] > settings.propagate.type_weights["like"]
    assert isinstance(settings.propagate.max_iter, int)
    assert Path(settings.lake.root).is_absolute()


def test_cluster_overlay_leaves_master_to_spark_submit():
    assert load_settings("cluster").spark.master == ""


def test_set_overrides_nested_keys_and_parses_yaml_values():
    settings = load_settings(
        "local",
        overrides=["propagate.damping=0.9", "score.weights.amplification=0", "spark.conf.spark.sql.shuffle.partitions=3"],
    )
    assert settings.propagate.damping == 0.9
    assert settings.score.weights.amplification == 0.0
    assert settings.spark.conf["spark.sql.shuffle.partitions"] == "3"


def test_conf_file_is_merged_after_overlay(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("lake:\n  database: scoring\nfeatures:\n  inactive_days: 10\n")
    settings = load_settings("local", [extra])
    assert settings.lake.database == "scoring"
    assert settings.features.inactive_days == 10


def test_unknown_key_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\): propagate\.dampin"):
        load_settings("local", overrides=["propagate.dampin=0.9"])


def test_missing_key_is_an_error_naming_the_key(tmp_path):
    text = (DEFAULT_CONF_DIR / "base.yaml").read_text().replace("  damping: 0.85\n", "")
    with pytest.raises(ConfigError, match=r"missing config key\(s\): propagate\.damping"):
        load_settings("local", conf_dir=_conf_dir(tmp_path, text))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("propagate.damping=1.5", "propagate.damping must be within"),
        ("propagate.max_iter=ten", "propagate.max_iter must be an integer"),
        ("propagate.method=gpu", "propagate.method must be one of"),
        ("lake.database=klout;DROP", "lake.database must be a plain identifier"),
        ("score.topic_min_posts=1", "one post never makes a topic"),
        ("propagate.type_weights.poke=1", "unknown event types"),
        ("validate.min_event_date=yesterday", "validate.min_event_date must be a date"),
        ("run.backfill_chunk_days=93", "run.backfill_chunk_days must be at most 92"),
        ("nonsense", "--set expects key=value"),
    ],
)
def test_invalid_values_are_rejected_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_settings("local", overrides=[override])


def test_unknown_env_and_missing_file_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="env must be one of"):
        load_settings("staging")
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("local", [tmp_path / "absent.yaml"])


def test_config_hash_tracks_model_settings_not_locations():
    base = load_settings("local").config_hash()
    assert load_settings("local", overrides=["lake.root=/elsewhere"]).config_hash() == base
    assert load_settings("local", overrides=["spark.master=local[1]"]).config_hash() == base
    assert load_settings("local", overrides=["propagate.damping=0.8"]).config_hash() != base
