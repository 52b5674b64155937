"""Store stage: schema, migrations, idempotent writes, versions, cross-document linking."""

import duckdb
import numpy as np
import pytest

from conftest import fetched, make_doc
from pipeline.records import Extraction, OrganisationMention, PersonMention
from pipeline.store import MIGRATIONS, Store, StoreError, page_id


def count(store, table):
    return store.query(f"SELECT count(*) AS n FROM {table}")["n"][0]


def test_schema_is_created_once_with_every_table(store):
    tables = set(store.query("SELECT table_name FROM information_schema.tables")["table_name"])
    for name in ("sources", "pages", "page_versions", "fetch_log", "documents", "paragraphs", "entities",
                 "people", "person_mentions", "organisations", "organisation_mentions", "dates",
                 "action_points", "meetings", "runs"):
        assert name in tables
    assert store.migrate() == []  # nothing left to apply
    assert count(store, "schema_migrations") == len(MIGRATIONS)
    dim = store.query("SELECT data_type FROM information_schema.columns WHERE table_name='paragraphs' AND column_name='embedding'")
    assert dim["data_type"][0] == "FLOAT[384]"


def test_saving_the_same_document_twice_adds_no_rows(store, minutes_extraction):
    item = make_doc("http://h/a", ["Första stycket.", "Andra stycket."], extraction=minutes_extraction)
    store.record_fetches("r1", [fetched("http://h/a")])
    store.save_documents([item])
    before = {t: count(store, t) for t in ("documents", "paragraphs", "entities", "people", "person_mentions",
                                              "organisations", "dates", "action_points", "meetings")}
    store.save_documents([item])
    after = {t: count(store, t) for t in before}
    assert before == after
    assert before["paragraphs"] == 2 and before["people"] == 1 and before["organisations"] == 2
    assert store.text_hashes(["http://h/a", "http://h/b"]) == {"http://h/a": item.document.content_hash}


def test_changed_page_replaces_current_rows_and_keeps_history(store):
    store.record_fetches("r1", [fetched("http://h/a")])
    store.save_documents([make_doc("http://h/a", ["Gammal text."])])
    store.save_documents([make_doc("http://h/a", ["Ny text.", "Och ett stycke till."])])
    assert list(store.query("SELECT text FROM paragraphs ORDER BY idx")["text"]) == ["Ny text.", "Och ett stycke till."]
    versions = store.query("SELECT version, text FROM page_versions ORDER BY version")
    assert list(versions["version"]) == [1, 2]
    assert versions["text"][0] == "Gammal text."
    assert store.query("SELECT version FROM pages")["version"][0] == 2


def test_gone_pages_are_marked_not_deleted(store):
    store.record_fetches("r1", [fetched("http://h/a", etag='"v1"')])
    store.save_documents([make_doc("http://h/a", ["Text."])])
    store.record_fetches("r2", [fetched("http://h/a", outcome="gone", status=404)])
    page = store.query("SELECT gone, status, etag FROM pages")
    assert bool(page["gone"][0]) and page["status"][0] == 404 and page["etag"][0] == '"v1"'
    assert count(store, "documents") == 1
    assert count(store, "fetch_log") == 2
    known = store.known_pages("t")["http://h/a"]
    assert known.etag == '"v1"' and known.gone


def test_failures_are_logged_with_reason(store):
    store.record_fetches("r1", [fetched("http://h/x", outcome="failed", status=None, error="timeout: read")])
    store.record_failures("r1", "t", [("http://h/y", "no main text")])
    log = store.query("SELECT url, outcome, reason FROM fetch_log ORDER BY url")
    assert list(log["reason"]) == ["timeout: read", "no main text"]
    assert count(store, "pages") == 0


def test_organisations_link_across_documents_by_alias(store):
    a = Extraction(organisations=[OrganisationMention("Inspektionen för vård och omsorg", ["IVO"])])
    b = Extraction(organisations=[OrganisationMention("IVO", ["IVO:s"])])
    store.save_documents([make_doc("http://h/a", ["a"], extraction=a), make_doc("http://h/b", ["b"], extraction=b)])
    orgs = store.query("SELECT name, aliases FROM organisations")
    assert len(orgs) == 1
    assert orgs["name"][0] == "Inspektionen för vård och omsorg"
    assert set(orgs["aliases"][0]) == {"IVO", "IVO:s"}
    assert count(store, "organisation_mentions") == 2


def test_people_are_keyed_by_name_and_organisation(store):
    a = Extraction(people=[PersonMention("Eva Ek", "förvaltningschef", "Socialförvaltningen")])
    b = Extraction(people=[PersonMention("Eva Ek", "ordförande", "socialförvaltningen"),
                           PersonMention("Eva Ek", None, "Funktionsrätt Norrby")])
    store.save_documents([make_doc("http://h/a", ["a"], extraction=a), make_doc("http://h/b", ["b"], extraction=b)])
    people = store.query("SELECT name, organisation, roles FROM people ORDER BY organisation")
    assert len(people) == 2
    assert set(people["roles"][1]) == {"förvaltningschef", "ordförande"}
    assert count(store, "person_mentions") == 3


def test_embeddings_are_reused_by_title_and_paragraph_text(store):
    item = make_doc("http://h/a", ["Samma stycke."], seed=3)  # title "Titel a"
    store.save_documents([item])
    from pipeline.embed import embedding_key

    key = embedding_key("Titel a", "Samma stycke.")
    store.save_documents([make_doc("http://h/b", ["Annat stycke."], seed=4)])
    cached = store.page_embeddings(["http://h/a", "http://h/okänd"])
    assert list(cached) == [key]
    np.testing.assert_allclose(cached[key], item.embeddings[0], rtol=1e-6)
    assert store.stale_embeddings() == []


def test_stale_embeddings_finds_vectors_written_without_the_title(store):
    from pipeline.embed import embedding_key
    from pipeline.records import paragraph_key

    store.save_documents([make_doc("http://h/a", ["Ett stycke."])])
    store.query("UPDATE paragraphs SET text_hash = ?", [paragraph_key("Ett stycke.")])  # as written before
    stale = store.stale_embeddings()
    assert stale == [(stale[0][0], embedding_key("Titel a", "Ett stycke."), "Titel a. Ett stycke.")]
    store.set_embeddings([stale[0][0]], np.zeros((1, 384), dtype=np.float32), text_hashes=[stale[0][1]])
    assert store.stale_embeddings() == []


def test_failed_write_rolls_back(store):
    good = make_doc("http://h/a", ["Ett."])
    short = make_doc("http://h/b", ["Två.", "Tre."])
    short.embeddings = short.embeddings[:1]  # one vector short: refused before anything is written
    with pytest.raises(StoreError, match="2 paragraphs but 1 embeddings"):
        store.save_documents([good, short])
    bad = make_doc("http://h/c", ["Fyra."])
    bad.document.published = "not a date"  # fails inside the transaction
    with pytest.raises(duckdb.Error):
        store.save_documents([good, bad])
    assert count(store, "documents") == 0 and count(store, "paragraphs") == 0


def test_read_only_store_needs_an_existing_file(tmp_path):
    with pytest.raises(StoreError, match="does not exist yet"):
        Store(tmp_path / "none.duckdb", read_only=True).__enter__()
    path = tmp_path / "db.duckdb"
    with Store(path) as db:
        db.save_documents([make_doc("http://h/a", ["Ett."])])
    with Store(path, read_only=True) as db:
        assert db.query("SELECT doc_id FROM documents")["doc_id"][0] == page_id("http://h/a")


def test_frontier_resumes_an_unfinished_cycle(store):
    assert store.open_cycle("t") == ([], set())
    a = fetched("http://h/", links=["http://h/a", "http://h/b"], content=b"<html>x</html>", content_hash="h1")
    store.record_fetches("r1", [a])
    # the process dies here; a new run resumes the open cycle
    queue, done = store.open_cycle("t")
    assert sorted(queue) == [("http://h/a", 1), ("http://h/b", 1)]
    assert done == {"http://h/"}
    store.record_fetches("r2", [fetched("http://h/a", depth=1, content=b"a", content_hash="h2"),
                                fetched("http://h/b", depth=1, content=b"b", content_hash="h3")])
    store.close_cycle("t")
    assert store.open_cycle("t") == ([], set())  # the next run starts afresh


def test_ok_pages_are_staged_until_processed(store):
    store.record_fetches("r1", [fetched("http://h/a", content=b"<p>hej</p>", content_hash="x", content_type="text/html"),
                                fetched("http://h/b", outcome="not_modified", status=304)])
    assert store.staged_urls("t") == ["http://h/a"]
    [page] = store.staged_pages(["http://h/a"])
    assert page.content == b"<p>hej</p>" and page.content_type == "text/html"
    store.save_documents([make_doc("http://h/a", ["hej"])], processed=["http://h/a"])
    assert store.staged_urls("t") == []
    # the same body again is not staged: nothing to re-clean
    assert store.record_fetches("r2", [fetched("http://h/a", content=b"<p>hej</p>", content_hash="x")]) == 1
    assert store.staged_urls("t") == []


def test_erasing_a_person_redacts_titles_and_renews_the_embedding_keys(store):
    from pipeline.embed import embedding_key

    item = make_doc("http://h/a", ["Eva Ek leder mötet.", "Inget namn här."],
                    extraction=Extraction(people=[PersonMention("Eva Ek")]))
    item.document.title = "Eva Ek ny samordnare"
    store.save_documents([item])
    counts, changed = store.erase_person("Eva Ek")
    titles = store.query("SELECT d.title AS d, v.title AS v FROM documents d JOIN page_versions v ON v.page_id = d.doc_id")
    assert "Eva Ek" not in titles["d"][0] and "Eva Ek" not in titles["v"][0]
    assert len(changed) == 2  # both paragraphs: the title is part of what is embedded
    rows = store.query("SELECT p.para_id, p.text, p.text_hash, d.title FROM paragraphs p JOIN documents d USING (doc_id) ORDER BY idx")
    assert list(rows["text_hash"]) == [embedding_key(t, x) for t, x in zip(rows["title"], rows["text"])]
    assert [text for _, text in changed] == [f"{t}. {x}" for t, x in zip(rows["title"], rows["text"])]
