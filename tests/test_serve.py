"""Schedules: one Prefect deployment per source, on its cron, never two runs of one source at once."""

import yaml

from flows.serve import deployments


def test_a_deployment_per_source_with_cron_and_concurrency_limit(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": [
        {"name": "kommun", "start_urls": ["https://www.kommun.example/"], "schedule": "15 1 * * *"},
        {"name": "forening", "start_urls": ["https://forening.example/"], "schedule": "0 4 * * 1"},
    ]}))
    made = {d.name: d for d in deployments(str(path), db="x.duckdb")}
    assert set(made) == {"crawl-kommun", "crawl-forening"}
    kommun = made["crawl-kommun"]
    assert kommun.schedules[0].schedule.cron == "15 1 * * *"
    assert kommun.parameters == {"source_name": "kommun", "sources_file": str(path), "db": "x.duckdb"}
    assert kommun.concurrency_limit == 1
    assert kommun.concurrency_options.collision_strategy.value == "ENQUEUE"

