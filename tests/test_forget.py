"""Right to erasure: forget a person, recrawl a changed site, find no trace by SQL or search."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.store import Store
from sitegen import GeneratedSite

pytestmark = pytest.mark.usefixtures("e5_model", "prefect_api")
NAME = "Eva Ek"


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _traces(db) -> dict[str, int]:
    with Store(db, read_only=True) as store:
        return {
            table: int(store.query(f"SELECT count(*) AS n FROM {table} WHERE {where}", [f"%{NAME.lower()}%"])["n"][0])
            for table, where in (
                ("documents", "lower(text) LIKE ?"), ("paragraphs", "lower(text) LIKE ?"),
                ("page_versions", "lower(text) LIKE ?"), ("people", "lower(name) LIKE ?"),
                ("entities", "lower(text) LIKE ?"), ("action_points", "lower(array_to_string(assignees, '|') || text) LIKE ?"),
                ("staged_pages", "lower(decode(content)) LIKE ?"), ("erasure_log", "lower(name_hash) LIKE ?"),
            )
        }


def _staged_traces(db) -> int:
    """Parquet batches in the staging folder that contain the name anywhere (text, metadata)."""
    hits = 0
    for path in Path(f"{db}.staging").rglob("*.parquet"):
        table = pq.read_table(path)
        blob = str(table.to_pylist()) + str(table.schema.metadata)
        hits += NAME.lower() in blob.lower()
    return hits


def test_forget_then_recrawl_leaves_no_trace(tmp_path):
    from flows.crawl import crawl_flow
    from pipeline.search import search

    db = str(tmp_path / "gdpr.duckdb")
    with GeneratedSite(14) as site:
        sources = tmp_path / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [{"name": "gen", "start_urls": [site.base_url + "/"],
                                                        "allowed_hosts": ["127.0.0.1"], "delay": 0, "allow_private": True}]}))
        crawl_flow("gen", sources_file=str(sources), db=db, keep_staging=True)
        before = _traces(db)
        assert before["documents"] > 0 and before["people"] > 0, "the generated site should mention the person"
        assert _staged_traces(db) > 0, "kept staging batches should mention the person before the erasure"

        result = CliRunner().invoke(cli, ["forget", NAME, "--yes", "--db", db])
        assert result.exit_code == 0, result.output
        after_forget = _traces(db)
        site.change(range(14))  # every page edited: the name is published again
        summary = crawl_flow("gen", sources_file=str(sources), db=db, keep_staging=True)
        assert summary["documents"] == 14

    assert after_forget == dict.fromkeys(after_forget, 0)
    assert _staged_traces(db) == 0
    assert len(list(Path(f"{db}.staging").rglob("docs-*.parquet"))) >= 1, "the recrawl's batches are kept"
    assert _traces(db) == dict.fromkeys(after_forget, 0)
    hits = search(NAME, k=20, db=db, method="bm25")
    assert not hits["paragraph"].str.contains(NAME, case=False).any()
    assert search(NAME, k=5, db=db, person=NAME).empty
    with Store(db, read_only=True) as store:
        log = store.query("SELECT * FROM erasure_log")
        assert len(log) == 1 and log["people"][0] >= 1 and len(log["name_hash"][0]) == 64
        assert store.query("SELECT count(*) AS n FROM paragraphs WHERE text LIKE '%[borttaget]%'")["n"][0] > 0
