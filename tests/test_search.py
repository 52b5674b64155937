"""Search stage: BM25 with the Swedish stemmer, dense ranking, fusion, filters."""

from datetime import date

import numpy as np
import pytest

from conftest import make_doc
from pipeline.records import Extraction, OrganisationMention, PersonMention
from pipeline.search import (Analyzer, Decompounder, Filters, SearchSettings, bm25_ranking, dense_ranking, rrf, score_fusion,
                             search, search_connection, stopwords)
from pipeline.store import Store, page_id


@pytest.fixture
def corpus(store):
    docs = [
        make_doc("http://h/lss", ["Biståndshandläggarna följer upp insatserna enligt LSS varje år.",
                                  "Kontakta kommunen för mer information."], source="kommun",
                 published=date(2024, 3, 1), seed=1,
                 extraction=Extraction(organisations=[OrganisationMention("Inspektionen för vård och omsorg", ["IVO"])])),
        make_doc("http://h/bostad", ["Bostäder med särskild service byggs i centrum.",
                                     "Insatsen följs upp av IVO vid tillsyn."], source="kommun",
                 published=date(2023, 6, 1), seed=2,
                 extraction=Extraction(people=[PersonMention("Eva Ek", "chef", "Socialförvaltningen")])),
        make_doc("http://h/forening", ["Föreningen har årsmöte i mars med val av styrelse."], source="forening",
                 published=date(2024, 2, 1), seed=3),
    ]
    store.save_documents(docs)
    store.rebuild_fts(stopwords())
    return store


def test_bm25_stems_swedish(corpus):
    ids = [pid for pid, _ in bm25_ranking(corpus.con, "insatser", 10)]
    # "insatserna" and "Insatsen" share the stem of "insatser"
    assert set(ids) == {f"{page_id('http://h/lss')}:0", f"{page_id('http://h/bostad')}:1"}
    assert bm25_ranking(corpus.con, "och", 10) == []  # a stop word matches nothing


def test_dense_ranking_is_exact_and_filtered(corpus):
    vec = corpus.query("SELECT embedding FROM paragraphs WHERE para_id = ?", [f"{page_id('http://h/forening')}:0"])["embedding"][0]
    top = dense_ranking(corpus.con, np.asarray(vec), 3)
    assert top[0][0] == f"{page_id('http://h/forening')}:0" and top[0][1] == pytest.approx(1.0, abs=1e-5)
    only_kommun = dense_ranking(corpus.con, np.asarray(vec), 10, Filters(source="kommun"))
    assert len(only_kommun) == 4 and all(not pid.startswith(page_id("http://h/forening")) for pid, _ in only_kommun)


@pytest.mark.parametrize(
    ("filters", "expected_docs"),
    [
        (Filters(since=date(2024, 1, 1)), {"http://h/lss", "http://h/forening"}),
        (Filters(until=date(2023, 12, 31)), {"http://h/bostad"}),
        (Filters(organisation="ivo"), {"http://h/lss"}),
        (Filters(person="Eva Ek"), {"http://h/bostad"}),
        (Filters(source="forening", since=date(2024, 1, 1)), {"http://h/forening"}),
    ],
)
def test_filters_return_exactly_the_matching_documents(corpus, filters, expected_docs):
    vec = np.ones(384, dtype=np.float32) / np.sqrt(384)
    found = dense_ranking(corpus.con, vec, 100, filters)
    docs = {row for row in corpus.query("SELECT url FROM documents WHERE list_contains(?, doc_id)",
                                        [[pid.split(":")[0] for pid, _ in found]])["url"]}
    assert docs == expected_docs


def test_exactly_k_results_when_k_match(corpus):
    vec = np.ones(384, dtype=np.float32) / np.sqrt(384)
    assert len(dense_ranking(corpus.con, vec, 2, Filters(source="kommun"))) == 2


def test_rrf_rewards_agreement():
    fused = rrf([("a", 9.0), ("b", 5.0)], [("b", 0.9), ("c", 0.8)], SearchSettings(rrf_k=60, bm25_weight=0.5))
    assert max(fused, key=fused.get) == "b"
    assert fused["a"] == pytest.approx(0.5 / 61)


def test_search_returns_a_dataframe_with_filters(tmp_path, corpus):
    path = tmp_path / "s.duckdb"
    corpus.con.execute(f"ATTACH '{path}' AS f")
    corpus.con.execute("COPY FROM DATABASE memory TO f")
    corpus.con.execute("DETACH f")
    with Store(path) as db:
        db.rebuild_fts(stopwords())
    results = search("uppföljning av insatser", k=1, method="bm25", db=path, since="2024-01-01")
    assert list(results.columns[:6]) == ["score", "paragraph", "title", "url", "published", "source"]
    assert len(results) == 1 and results["url"][0] == "http://h/lss"
    with pytest.raises(ValueError):
        search_connection(corpus.con, "  ", 3)


def test_decompounder_splits_swedish_compounds_into_known_words():
    words = {"bostad": 5, "anpassning": 4, "bidrag": 6, "färdtjänst": 3, "handläggare": 2, "bostadsanpassningsbidrag": 1}
    split = Decompounder(words)
    assert split.split("bostadsanpassningsbidrag") == ("bostad", "anpassning", "bidrag")
    assert split.split("färdtjänsthandläggare") == ("färdtjänst", "handläggare")
    assert split.split("handläggare") == ()  # not a compound of known words
    terms = Analyzer(stopwords(), split).terms("Bostadsanpassningsbidrag och bidrag")
    assert terms.count("bidrag") == 2 and "och" not in terms and "bost" in terms  # Snowball: bostad → bost


def test_score_fusion_lets_a_full_bm25_match_outrank_a_slightly_closer_vector():
    settings = SearchSettings(fusion="score", bm25_weight=0.1, bm25_norm="query", dense_norm="raw")
    dense = [("close", 0.86), ("named", 0.84), ("other", 0.83)]
    full_match = score_fusion([("named", 9.0)], dense, settings, bm25_max=10.0)
    assert max(full_match, key=full_match.get) == "named"
    weak_match = score_fusion([("named", 0.5)], dense, settings, bm25_max=10.0)  # only a common word matched
    assert max(weak_match, key=weak_match.get) == "close"
    assert set(full_match) == {"close", "named", "other"}


def test_a_heading_is_stored_as_text_but_not_searched(store):
    doc = make_doc("http://h/rubrik", ["Vem gör vad?", "Karin bokar lokal och Omid skickar inbjudan."], seed=4)
    doc.document.headings = [0]
    store.save_documents([doc])
    store.rebuild_fts(stopwords())
    rows = store.query("SELECT idx, heading, embedding IS NULL AS unembedded FROM paragraphs ORDER BY idx")
    assert rows["heading"].tolist() == [True, False] and rows["unembedded"].tolist() == [True, False]
    assert bm25_ranking(store.con, "vem gör vad", 10) == []
    heading_vector = doc.embeddings[0]
    assert [pid for pid, _ in dense_ranking(store.con, heading_vector, 10)] == [f"{page_id('http://h/rubrik')}:1"]
    store.set_embeddings([f"{page_id('http://h/rubrik')}:0"], heading_vector[None, :])
    assert store.query("SELECT embedding IS NULL AS e FROM paragraphs WHERE idx = 0")["e"].tolist() == [True]

