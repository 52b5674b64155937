"""data/sources.yaml loading and validation."""

import pytest
import yaml

from pipeline.sources import DEFAULT_SOURCES_FILE, ConfigError, get_source, load_sources, parse_sources


def test_shipped_config_has_the_demo_source():
    demo = get_source(load_sources(DEFAULT_SOURCES_FILE), "demo")
    assert demo.start_urls == ("http://127.0.0.1:8765/",)
    assert demo.allowed_hosts == ("127.0.0.1",)
    assert demo.allow_private is True
    assert len(demo.schedule.split()) == 5


def test_defaults_apply_and_hosts_default_to_start_urls():
    [s] = parse_sources({"defaults": {"page_limit": 7}, "sources": [{"name": "a", "start_urls": ["https://www.example.se/x"]}]})
    assert s.page_limit == 7
    assert s.allowed_hosts == ("www.example.se",)
    assert s.delay == 1.0
    assert s.allow_private is False


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"start_urls": ["https://a.se/"]}, "source #1: field 'name' is required"),
        ({"name": "ok"}, "source 'ok': field 'start_urls' is required"),
        ({"name": "ok", "start_urls": ["ftp://a.se/"]}, "source 'ok': field 'start_urls' has an invalid URL"),
        ({"name": "ok", "start_urls": ["https://a.se/"], "page_limit": "ten"}, "source 'ok': field 'page_limit' must be int"),
        ({"name": "ok", "start_urls": ["https://a.se/"], "page_limit": 0}, "source 'ok': field 'page_limit' must be at least 1"),
        ({"name": "ok", "start_urls": ["https://a.se/"], "schedule": "every night"}, "source 'ok': field 'schedule' is not a cron"),
        ({"name": "ok", "start_urls": ["https://a.se/"], "schedule": "61 3 * * *"}, "source 'ok': field 'schedule' is not a cron"),
        ({"name": "ok", "start_urls": ["https://a.se/"], "allowed_hosts": ["b.se"]}, "source 'ok': field 'allowed_hosts'"),
        ({"name": "ok", "start_urls": ["https://a.se/"], "speed": 3}, "source 'ok': unknown field 'speed'"),
        ({"name": "Bad Name", "start_urls": ["https://a.se/"]}, "field 'name' must be lowercase"),
        ({"name": "ok", "start_urls": ["https://a.se/"], "delay": -1}, "source 'ok': field 'delay' must be 0 or more"),
    ],
)
def test_bad_config_names_source_and_field(entry, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_sources({"sources": [entry]}, origin="x.yaml")


def test_duplicate_names_and_unknown_source(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("sources:\n  - {name: a, start_urls: ['https://a.se/']}\n  - {name: a, start_urls: ['https://b.se/']}\n")
    with pytest.raises(ConfigError, match="source 'a': field 'name': duplicate"):
        load_sources(path)
    with pytest.raises(ConfigError, match="unknown source 'zz'"):
        get_source([], "zz")


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_sources(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_sources(bad)


def test_next_run_follows_the_cron():
    from datetime import datetime

    from pipeline.sources import next_run

    [s] = parse_sources({"sources": [{"name": "a", "start_urls": ["https://a.se/"], "schedule": "30 2 * * *"}]})
    assert next_run(s, datetime(2024, 5, 1, 12, 0)) == datetime(2024, 5, 2, 2, 30)


def test_cluster_section_is_optional_and_validated(tmp_path):
    from pipeline.sources import ClusterSettings, load_cluster

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"sources": []}))
    assert load_cluster(path) == ClusterSettings()
    path.write_text(yaml.safe_dump({"cluster": {"dask": "tcp://10.0.0.5:8786", "staging": "/mnt/s"}, "sources": []}))
    assert load_cluster(path) == ClusterSettings(dask="tcp://10.0.0.5:8786", staging="/mnt/s")
    for bad, message in (({"dask": "10.0.0.5"}, "field 'dask': expected a scheduler address"),
                         ({"workers": 4}, "unknown field 'workers'"),
                         ({"keep_staging": "yes"}, "field 'keep_staging': expected bool")):
        path.write_text(yaml.safe_dump({"cluster": bad, "sources": []}))
        with pytest.raises(ConfigError, match=message):
            load_cluster(path)
