"""End to end: demo site → Prefect flow → DuckDB → search, and a second run adds nothing."""

from __future__ import annotations

import pytest
import yaml

from pipeline import demo_site
from pipeline.store import Store
from sitegen import GeneratedSite

pytestmark = pytest.mark.usefixtures("e5_model")

TABLES = ("pages", "documents", "paragraphs", "entities", "people", "person_mentions", "organisations",
          "organisation_mentions", "dates", "action_points", "meetings", "page_versions")


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, prefect_api):
    from flows.crawl import crawl_flow

    tmp = tmp_path_factory.mktemp("flow")
    db = str(tmp / "demo.duckdb")
    with demo_site.running(port=0) as base_url:
        sources_file = tmp / "sources.yaml"
        sources_file.write_text(yaml.safe_dump({"sources": [{
            "name": "demo", "start_urls": [base_url + "/"], "allowed_hosts": ["127.0.0.1"],
            "delay": 0, "allow_private": True, "page_limit": 100}]}))
        first = crawl_flow("demo", sources_file=str(sources_file), db=db)
        with Store(db, read_only=True) as store:
            counts = {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in TABLES}
        second = crawl_flow("demo", sources_file=str(sources_file), db=db)
        with Store(db, read_only=True) as store:
            counts_after = {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in TABLES}
    return {"db": db, "first": first, "second": second, "counts": counts, "counts_after": counts_after}


def test_first_run_loads_the_demo_site(crawled):
    first, counts = crawled["first"], crawled["counts"]
    assert first["pages_failed"] == 0
    assert first["pages_fetched"] >= 13  # 12+ pages and the PDF
    assert counts["documents"] >= 13
    assert counts["paragraphs"] > 50
    assert counts["people"] > 5 and counts["organisations"] > 5 and counts["dates"] > 10
    with Store(crawled["db"], read_only=True) as store:
        kinds = set(store.query("SELECT kind FROM documents")["kind"])
        chrome = store.query("""SELECT count(*) AS n FROM paragraphs WHERE text ILIKE '%Vi använder kakor%'
                                OR text ILIKE '%Till toppen%' OR text ILIKE '%E-postadressen publiceras inte%'
                                OR text ILIKE '%Dela på Facebook%'""")
        vectors = store.query("""SELECT count(*) FILTER (WHERE embedding IS NULL AND NOT heading) AS missing,
                                        count(*) FILTER (WHERE heading) AS headings,
                                        count(*) FILTER (WHERE heading AND embedding IS NOT NULL) AS embedded_headings
                                 FROM paragraphs""")
        disallowed = store.query("SELECT count(*) AS n FROM pages WHERE url LIKE '%/admin/%'")
    assert kinds == {"html", "pdf"}
    assert chrome["n"][0] == 0
    assert vectors["missing"][0] == 0  # every paragraph but the headings is embedded
    assert vectors["headings"][0] > 0 and vectors["embedded_headings"][0] == 0
    assert disallowed["n"][0] == 0


def test_second_run_adds_no_rows(crawled):
    assert crawled["counts_after"] == crawled["counts"]
    second = crawled["second"]
    assert second["documents"] == 0
    assert second["pages_unchanged"] >= crawled["first"]["pages_fetched"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Vem följer upp att insatserna enligt LSS fungerar för den enskilde?", "myndighetsenhet"),
        ("Vilken dag måste ansökan om projektmedel vara inne?", "30 april"),
        ("Hur mycket ersättning får föreningarnas representanter för att gå på rådets möten?", "600 kronor"),
    ],
)
def test_paraphrase_query_finds_the_right_paragraph(crawled, query, expected):
    from pipeline.search import search

    results = search(query, k=3, db=crawled["db"])
    assert any(expected in text for text in results["paragraph"]), results[["score", "paragraph"]].to_string()


def test_vectors_stored_before_titles_were_embedded_are_renewed_once(crawled, tmp_path):
    import shutil

    import numpy as np

    from flows.crawl import renew_embeddings_task
    from pipeline.records import paragraph_key

    db = str(tmp_path / "old.duckdb")
    shutil.copy(crawled["db"], db)
    with Store(db) as store:
        para_id, text, vector = store.query("SELECT para_id, text, embedding FROM paragraphs LIMIT 1").iloc[0]
        store.query("UPDATE paragraphs SET text_hash = ?, embedding = ? WHERE para_id = ?",
                    [paragraph_key(text), [0.0] * 384, para_id])  # as an old database stored it
        store.query("INSERT INTO settings VALUES ('embeddings_recheck', 'pending')")
    assert renew_embeddings_task.fn(db, None) == 1
    assert renew_embeddings_task.fn(db, None) == 0  # checked once
    with Store(db, read_only=True) as store:
        renewed = store.query("SELECT embedding FROM paragraphs WHERE para_id = ?", [para_id])["embedding"][0]
    assert float(np.dot(renewed, vector)) > 0.999


def test_a_failing_processing_batch_is_recorded_and_its_pages_kept_for_the_next_run(tmp_path, prefect_api):
    from flows.crawl import crawl_flow

    db = str(tmp_path / "fail.duckdb")
    with GeneratedSite(5) as site:
        sources_file = tmp_path / "sources.yaml"
        sources_file.write_text(yaml.safe_dump({"sources": [{
            "name": "gen", "start_urls": [site.base_url + "/"], "allowed_hosts": ["127.0.0.1"],
            "delay": 0, "allow_private": True}]}))
        broken = crawl_flow("gen", sources_file=str(sources_file), db=db, nlp_model=str(tmp_path / "no-such-model"))
        with Store(db, read_only=True) as store:
            reasons = store.query("SELECT reason FROM fetch_log WHERE reason LIKE 'processing error%'")["reason"]
            staged = store.query("SELECT count(*) AS n FROM staged_pages")["n"][0]
        fixed = crawl_flow("gen", sources_file=str(sources_file), db=db)
    assert broken["documents"] == 0 and broken["pages_failed"] == staged > 0
    assert len(reasons) == staged and "no-such-model" in reasons[0]
    assert fixed["documents"] == staged  # nothing was lost: the next run processed the kept pages
