"""Parquet staging and the loader: batches round-trip, merge once, and leave no half state."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import fetched, make_doc

from pipeline import load
from pipeline.staging import DocumentBatch, StagingArea
from pipeline.store import Store


@pytest.fixture
def staging(tmp_path):
    return StagingArea(tmp_path / "staging")


def _counts(store: Store) -> dict[str, int]:
    tables = ("pages", "fetch_log", "frontier", "staged_pages", "documents", "paragraphs", "people", "page_versions",
              "boilerplate", "loaded_batches")
    return {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in tables}


def test_fetch_batch_round_trips(staging):
    results = [fetched("http://h/a", content=b"<html>\xc3\xa5</html>", headers={"ETag": '"1"'}, links=["http://h/b"],
                       content_hash="x", depth=1), fetched("http://h/c", outcome="failed", status=None, error="timeout")]
    batch = staging.write_fetches("t", "20260101T000000-abc", 1, results)
    assert batch.path.parent.name == "run=20260101T000000-abc" and batch.path.parent.parent.name == "source=t"
    assert staging.read_fetches(batch) == results


def test_document_batch_round_trips(staging, minutes_extraction):
    item = make_doc("http://h/a", ["Ett stycke.", "Ett till."], extraction=minutes_extraction)
    written = DocumentBatch([item], ["http://h/a", "http://h/b"], [("http://h/b", "no main text")], ["fp1"], {"nlp": 1.5})
    back = staging.read_documents(staging.write_documents("t", "r1", 1, written))
    assert back.documents[0].document == item.document
    assert back.documents[0].extraction == item.extraction  # dates, meetings, nested mentions typed again
    np.testing.assert_allclose(back.documents[0].embeddings, item.embeddings, rtol=1e-6)
    assert (back.processed, back.failures, back.boilerplate, back.seconds) == (
        written.processed, written.failures, written.boilerplate, written.seconds)


def test_staged_files_are_plain_parquet_partitioned_by_source_and_run(staging):
    staging.write_fetches("t", "r1", 1, [fetched("http://h/a", content=b"x")])
    rows = duckdb.sql(f"SELECT source, run, url FROM read_parquet('{staging.root}/**/*.parquet', hive_partitioning = true)")
    assert rows.fetchall() == [("t", "r1", "http://h/a")]  # Hive partitions become columns
    assert pq.read_table(next(staging.root.rglob("*.parquet"))).column("content").to_pylist() == [b"x"]


def test_pending_is_ordered_and_ignores_unfinished_writes(staging):
    staging.write_fetches("t", "r2", 1, [fetched("http://h/c")])
    staging.write_fetches("t", "r1", 2, [fetched("http://h/b")])
    staging.write_fetches("t", "r1", 1, [fetched("http://h/a")])
    (staging.run_dir("t", "r1") / "docs-00003.tmp123").write_bytes(b"half a file")
    assert [b.batch_id for b in staging.pending("t")] == ["t/r1/fetch-00001", "t/r1/fetch-00002", "t/r2/fetch-00001"]
    assert staging.pending("other") == []


def test_a_batch_loaded_twice_changes_nothing(staging, minutes_extraction):
    with Store(":memory:") as store:
        fetches = staging.write_fetches("t", "r1", 1, [fetched("http://h/a", content=b"<p>x</p>", content_hash="h1",
                                                               links=["http://h/b"])])
        docs = staging.write_documents("t", "r1", 2, DocumentBatch(
            [make_doc("http://h/a", ["Lena Berg leder arbetet."], extraction=minutes_extraction)],
            ["http://h/a"], [], ["fp"]))
        merged = load.load_pending(store, staging, keep=True)
        assert [m.batch.kind for m in merged] == ["fetch", "docs"]
        assert not fetches.path.exists() and not docs.path.exists()  # merged: no longer pending
        kept = list((staging.root / "merged").rglob("*.parquet"))
        assert [p.name for p in kept] == ["docs-00002.parquet"]  # raw bodies are never kept
        assert merged[0].counts["ok"] == 1 and merged[1].counts["documents"] == 1
        once = _counts(store)
        assert once["documents"] == 1 and once["staged_pages"] == 0 and once["loaded_batches"] == 2
        assert load.load_batch(store, staging, docs, keep=True) is None  # no file: recorded as merged
        again = staging.write_fetches("t", "r1", 1, [fetched("http://h/a", content=b"<p>x</p>", content_hash="h1")])
        assert again == fetches and load.load_batch(store, staging, again) is None  # the same batch staged again
        docs.path.parent.mkdir(parents=True)
        kept[0].replace(docs.path)  # a merged batch put back
        assert load.load_batch(store, staging, docs) is None
        assert _counts(store) == once
    assert staging.pending() == []


def test_a_failed_merge_leaves_the_batch_pending(staging):
    item = make_doc("http://h/a", ["Ett.", "Två."])
    item.embeddings = item.embeddings[:1]  # refused by the store
    batch = staging.write_documents("t", "r1", 1, DocumentBatch([item], ["http://h/a"], [], ["fp"]))
    with Store(":memory:") as store:
        with pytest.raises(Exception, match="2 paragraphs but 1 embeddings"):
            load.load_batch(store, staging, batch)
        assert _counts(store)["loaded_batches"] == 0 and _counts(store)["boilerplate"] == 0
    assert staging.pending() == [batch]


def test_remove_mentioning_finds_names_in_text_bodies_and_metadata(staging):
    staging.write_fetches("t", "r1", 1, [fetched("http://h/a", content="<p>Eva Ek talade</p>".encode())])
    staging.write_documents("t", "r1", 2, DocumentBatch([make_doc("http://h/b", ["Ingen här."])], ["http://h/b"],
                                                        [("http://h/c", "eva ek: no main text")], []))
    staging.write_documents("t", "r1", 3, DocumentBatch([make_doc("http://h/d", ["Ingen här heller."])], [], [], []))
    kept = staging.write_documents("t", "r0", 1, DocumentBatch([make_doc("http://h/e", ["Eva Ek var där."])], [], [], []))
    staging.archive(kept)
    assert staging.remove_mentioning(["Eva Ek"]) == 3
    assert not list((staging.root / "merged").rglob("*.parquet"))
    assert [b.batch_id for b in staging.pending()] == ["t/r1/docs-00003"]
