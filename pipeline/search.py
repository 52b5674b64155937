"""Search stage: hybrid retrieval over stored paragraphs.

Two rankers see only the paragraphs that pass the filters:

* **BM25** over the document title and the paragraph: lower-cased words, Swedish stop words,
  Snowball Swedish stems, and the parts of compound words ("bostadsanpassningsbidrag" also
  counts as "bostad", "anpassning", "bidrag"). It runs on a ``bm25s`` sparse index saved next
  to the database; without one (or when it is out of step) DuckDB's full-text index is used.
* **Dense**: cosine similarity of e5 embeddings ("query: " prefix on the question; paragraphs
  are embedded with their document title as a first sentence, ``embed.passage_text``), from the
  FAISS inverted-file index in ``pipeline.ann``; small filtered sets, and databases whose index
  is out of step, are searched exactly.

The hybrid score is 0.9 × cosine + 0.1 × BM25 / (the highest BM25 score the query could
reach), so a query whose rare words all match (a name, an abbreviation) lifts those paragraphs
while one that shares only common words barely moves them. The settings were chosen on the dev
half of ``tests/search/queries.jsonl`` (docs/search.md). Filters are applied inside both
rankers, so ``k`` results come back whenever at least ``k`` paragraphs match.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from pipeline import ann as vector_index
from pipeline import embed
from pipeline.store import DEFAULT_DB, EMBEDDING_DIM, Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Method = Literal["hybrid", "bm25", "dense"]
COLUMNS = ["score", "paragraph", "title", "url", "published", "source", "para_id", "doc_id"]
BM25_DIR = "bm25"
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchSettings:
    """Knobs of the ranking.

    Attributes:
        candidates: how many results each ranker contributes to the fusion.
        fusion: "rrf" (reciprocal rank fusion) or "score" (weighted sum of normalised scores).
        rrf_k: the k of reciprocal rank fusion, weight / (k + rank).
        bm25_weight: weight of the BM25 list in the fusion (dense has 1 - bm25_weight).
        bm25_norm: for score fusion, BM25 scores divided by the query's highest possible
            score ("query": (k1 + 1) × the sum of the query terms' idf), by the top score
            ("max"), or min-max scaled ("minmax").
        dense_norm: for score fusion, cosine similarities as they are ("raw") or min-max scaled.
        ann: settings of the vector index.
    """

    candidates: int = 100
    fusion: Literal["rrf", "score"] = "score"
    rrf_k: int = 60
    bm25_weight: float = 0.1
    bm25_norm: Literal["minmax", "max", "query"] = "query"
    dense_norm: Literal["minmax", "raw"] = "raw"
    ann: vector_index.AnnSettings = field(default_factory=vector_index.AnnSettings)


@dataclass(frozen=True)
class Filters:
    """Which paragraphs may be returned."""

    source: str | None = None
    since: date | None = None
    until: date | None = None
    organisation: str | None = None
    person: str | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.source, self.since, self.until, self.organisation, self.person))

    def sql(self) -> tuple[str, list]:
        """A WHERE clause over ``paragraphs p JOIN documents d`` and its parameters."""
        clauses, params = ["true"], []
        if self.source:
            clauses.append("d.source = ?")
            params.append(self.source)
        if self.since:
            clauses.append("coalesce(d.published, d.document_date) >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("coalesce(d.published, d.document_date) <= ?")
            params.append(self.until)
        if self.organisation:
            clauses.append(
                """d.doc_id IN (SELECT m.doc_id FROM organisation_mentions m JOIN organisations o USING (org_id)
                   WHERE list_contains(list_transform(list_append(o.aliases, o.name), x -> lower(x)), lower(?)))"""
            )
            params.append(self.organisation)
        if self.person:
            clauses.append(
                """d.doc_id IN (SELECT m.doc_id FROM person_mentions m JOIN people pe USING (person_id)
                   WHERE list_contains(list_transform(list_append(pe.aliases, pe.name), x -> lower(x)), lower(?)))"""
            )
            params.append(self.person)
        return " AND ".join(clauses), params


# -- text analysis for BM25 ----------------------------------------------------------------


def stopwords() -> set[str]:
    """Swedish stop words for the full-text index (spaCy's list)."""
    from spacy.lang.sv.stop_words import STOP_WORDS

    return set(STOP_WORDS)


class Decompounder:
    """Splits Swedish compounds into known words, by corpus frequency (Koehn & Knight 2003).

    A word is split into two parts, optionally joined by a linking "s", when both parts are
    words of the corpus (at least ``min_part`` letters, seen at least ``min_count`` times) and
    the geometric mean of the parts' frequencies beats the frequency of the whole word; the
    second part is split again the same way.
    """

    def __init__(self, frequencies: dict[str, int], min_part: int = 3, min_count: int = 2, min_length: int = 7):
        self.freq = frequencies
        self.min_part, self.min_count, self.min_length = min_part, min_count, min_length
        self._cache: dict[tuple[str, int], tuple[tuple[str, ...], float]] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str], stop: set[str] = frozenset()) -> "Decompounder":
        """Word frequencies of ``texts`` (lower-cased, stop words left out)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w for w in WORD.findall(text.lower()) if w not in stop and not w.isdigit())
        return cls(dict(counts))

    def split(self, word: str, depth: int = 3) -> tuple[str, ...]:
        """The parts of ``word`` (empty when it is not a compound of known words)."""
        if len(word) < self.min_length:
            return ()
        parts, _score = self._segment(word, depth)
        return parts if len(parts) > 1 else ()

    def _segment(self, word: str, depth: int) -> tuple[tuple[str, ...], float]:
        """Best segmentation of ``word`` into known words and the geometric mean of their counts."""
        key = (word, depth)
        if key in self._cache:
            return self._cache[key]
        best: tuple[tuple[str, ...], float] = ((word,), float(self.freq.get(word, 0)))
        if depth > 0:
            for i in range(self.min_part, len(word) - self.min_part + 1):
                head, tail = word[:i], word[i:]
                heads = [head] + ([head[:-1]] if head.endswith("s") and len(head) > self.min_part else [])
                known_heads = [h for h in heads if self._known(h)]
                if not known_heads:
                    continue
                tail_parts, _ = self._segment(tail, depth - 1)
                if not all(self._known(p) for p in tail_parts):
                    continue
                h = max(known_heads, key=lambda x: self.freq[x])
                parts = (h, *tail_parts)
                score = float(np.exp(np.mean([np.log(self.freq[p]) for p in parts])))
                if score > best[1]:
                    best = (parts, score)
        self._cache[key] = best
        return best

    def _known(self, part: str) -> bool:
        return len(part) >= self.min_part and self.freq.get(part, 0) >= self.min_count


class Analyzer:
    """Words → BM25 terms: lower-case, drop stop words, add compound parts, Snowball stems."""

    def __init__(self, stop: set[str], decompounder: Decompounder | None = None):
        import Stemmer

        self.stop = stop
        self.decompounder = decompounder
        self._stemmer = Stemmer.Stemmer("swedish")

    def terms(self, text: str) -> list[str]:
        """The terms of ``text``, in order, compound parts after their compound."""
        words = []
        for w in WORD.findall(text.lower()):
            if len(w) < 2 or w in self.stop:
                continue
            words.append(w)
            if self.decompounder is not None:
                words.extend(p for p in self.decompounder.split(w) if p not in self.stop)
        return self._stemmer.stemWords(words)


class Bm25Index:
    """A ``bm25s`` index over paragraphs, rows mapped to ANN labels."""

    def __init__(self, retriever, labels: np.ndarray, analyzer: Analyzer, generation: int):
        self.retriever = retriever
        self.labels = labels  # row -> label
        self.analyzer = analyzer
        self.generation = generation
        size = int(labels.max()) + 1 if len(labels) else 0
        self.row_of_label = np.full(size, -1, dtype=np.int64)
        self.row_of_label[labels] = np.arange(len(labels))

    @classmethod
    def build(cls, texts: Sequence[str], labels: np.ndarray, generation: int, stop: set[str] | None = None,
              decompound: bool = True, k1: float = 1.2, b: float = 0.75) -> "Bm25Index":
        """Index ``texts`` (row i has label ``labels[i]``)."""
        import bm25s

        stop = stopwords() if stop is None else stop
        decompounder = Decompounder.from_texts(texts, stop) if decompound else None
        analyzer = Analyzer(stop, decompounder)
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        corpus = [analyzer.terms(t) or [""] for t in texts]
        retriever.index(corpus, show_progress=False)
        return cls(retriever, np.asarray(labels, dtype=np.int64), analyzer, generation)

    def save(self, directory: Path) -> None:
        """Write the index to ``directory`` (replaced as a whole)."""
        tmp = directory.with_name(directory.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(tmp))
        np.save(tmp / "labels.npy", self.labels)
        meta = {"generation": self.generation, "decompound": self.analyzer.decompounder is not None}
        (tmp / "samverkan.json").write_text(json.dumps(meta))
        if self.analyzer.decompounder is not None:
            (tmp / "words.json").write_text(json.dumps(self.analyzer.decompounder.freq, ensure_ascii=False))
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old.exists():
            import shutil

            shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path, stop: set[str] | None = None) -> "Bm25Index | None":
        """The index saved in ``directory`` (memory-mapped), or None."""
        import bm25s

        try:
            meta = json.loads((directory / "samverkan.json").read_text())
            retriever = bm25s.BM25.load(str(directory), mmap=True)
            labels = np.load(directory / "labels.npy")
            words = json.loads((directory / "words.json").read_text()) if meta["decompound"] else None
        except (OSError, ValueError, KeyError) as exc:
            log.info("no usable BM25 index in %s (%s)", directory, exc)
            return None
        analyzer = Analyzer(stopwords() if stop is None else stop, Decompounder(words) if words is not None else None)
        return cls(retriever, labels, analyzer, int(meta["generation"]))

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (label, score) pairs with a positive score, best first.

        Args:
            allowed: labels that may be returned (None: all).
        """
        vocab = self.retriever.vocab_dict
        ids = [vocab[t] for t in self.analyzer.terms(query) if t in vocab]
        if not ids or not len(self.labels):
            return []
        scores = self._scores(ids)
        if allowed is not None:
            keep = np.zeros(len(self.labels), dtype=bool)
            inside = allowed[allowed < len(self.row_of_label)]
            rows = self.row_of_label[inside]
            keep[rows[rows >= 0]] = True
            scores[~keep] = 0.0
        candidates = np.flatnonzero(scores)
        top = candidates[_top(scores[candidates], k)]
        return [(int(self.labels[r]), float(scores[r])) for r in top]

    def _scores(self, ids: list[int]) -> np.ndarray:
        """BM25 score of every row: the query terms' postings summed with ``np.bincount``."""
        matrix = self.retriever.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        rows = np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in ids])
        weights = np.concatenate([data[indptr[i]:indptr[i + 1]] for i in ids])
        return np.bincount(rows, weights=weights, minlength=len(self.labels))

    def max_score(self, query: str) -> float:
        """The highest BM25 score any paragraph could get for ``query``: (k1 + 1) × Σ idf(term)."""
        vocab = self.retriever.vocab_dict
        ids = [vocab[t] for t in self.analyzer.terms(query) if t in vocab]
        if not ids:
            return 0.0
        indptr = self.retriever.scores["indptr"]
        n = float(self.retriever.scores["num_docs"])
        df = np.asarray([indptr[i + 1] - indptr[i] for i in ids], dtype=np.float64)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return float((self.retriever.k1 + 1.0) * idf.sum())


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


# -- indexes next to the database -------------------------------------------------------------


@dataclass
class Indexes:
    """What a reader has loaded for one database: the ANN and BM25 indexes, when usable."""

    ann: vector_index.AnnIndex | None = None
    bm25: Bm25Index | None = None
    generation: int = 0
    para_ids: np.ndarray | None = None  # label -> para_id, for the labels in ``search_items``

    def para_of(self, ranked: list[tuple[int, float]]) -> list[tuple[str, float]]:
        """(label, score) → (para_id, score), dropping labels no longer indexed."""
        ids = self.para_ids
        return [(ids[label], score) for label, score in ranked if label < len(ids) and ids[label] is not None]


_CACHE: dict[str, tuple[tuple, Indexes]] = {}
_CACHE_LOCK = threading.Lock()


def load_indexes(con: duckdb.DuckDBPyConnection, db: str | Path, settings: SearchSettings = SearchSettings()) -> Indexes:
    """The usable indexes of database ``db`` (cached per process until the files change).

    An ANN index counts as usable when it mirrors the database exactly, a BM25 index when it
    was built at the database's current generation. Otherwise searches fall back to exact
    dense search and DuckDB's full-text index, which are correct but slower.
    """
    directory = vector_index.index_dir(db)
    if directory is None or not _has_search_tables(con):
        return Indexes()
    gen = vector_index.generation(con)
    key = (gen, *(_stamp(p) for p in (Path(str(db)), Path(str(db) + ".wal"), directory / vector_index.STATE_FILE,
                                        directory / BM25_DIR / "samverkan.json")))
    with _CACHE_LOCK:
        cached = _CACHE.get(str(db))
        if cached is not None and cached[0] == key:
            return cached[1]
    loaded = vector_index.AnnIndex.load(directory, settings.ann)
    if loaded is not None and not vector_index.in_step(con, loaded):
        log.warning("ANN index of %s is out of step with the database: exact dense search until the next sync", db)
        loaded = None
    bm25 = Bm25Index.load(directory / BM25_DIR)
    if bm25 is not None and bm25.generation != gen:
        log.warning("BM25 index of %s is out of step: using DuckDB full-text search until it is rebuilt", db)
        bm25 = None
    para_ids = None
    if loaded is not None or bm25 is not None:
        rows = con.execute("SELECT label, para_id FROM search_items").fetchnumpy()
        labels = rows["label"].astype(np.int64)
        para_ids = np.full(int(labels.max()) + 1 if len(labels) else 0, None, dtype=object)
        para_ids[labels] = rows["para_id"]
    indexes = Indexes(loaded, bm25, gen, para_ids)
    with _CACHE_LOCK:
        _CACHE[str(db)] = (key, indexes)
    return indexes


def update_indexes(con: duckdb.DuckDBPyConnection, db: str | Path, full_text: bool = False,
                   settings: SearchSettings = SearchSettings()) -> dict[str, int]:
    """Bring the search indexes of ``db`` in step after writes (needs a read-write connection).

    The ANN index follows every added, changed and deleted paragraph (or is rebuilt when its
    files are missing or out of step). With ``full_text`` the BM25 index is rebuilt too.

    Returns:
        Counts: added, changed, deleted, rebuilt (ANN) and bm25 (paragraphs indexed, or -1).
    """
    directory = vector_index.index_dir(db)
    cached = _CACHE.get(str(db))
    index, counts = vector_index.sync(con, directory, settings.ann, cached[1].ann if cached else None)
    counts["bm25"] = -1
    if full_text:
        rows = con.execute(
            """SELECT s.label, coalesce(d.title || chr(10), '') || p.text AS text FROM search_items s
               JOIN paragraphs p ON p.para_id = s.para_id JOIN documents d ON d.doc_id = p.doc_id ORDER BY s.label"""
        ).fetchnumpy()
        bm25 = Bm25Index.build(list(rows["text"]), rows["label"].astype(np.int64), index.generation)
        if directory is not None:
            bm25.save(directory / BM25_DIR)
        counts["bm25"] = len(rows["label"])
    with _CACHE_LOCK:
        _CACHE.pop(str(db), None)
    return counts


def _has_search_tables(con) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'search_items' AND database_name = current_database()"
    ).fetchone()[0])


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return 0, 0


# -- search ---------------------------------------------------------------------------------


def search(
    query: str,
    k: int = 10,
    *,
    source: str | None = None,
    since: date | str | None = None,
    until: date | str | None = None,
    organisation: str | None = None,
    person: str | None = None,
    method: Method = "hybrid",
    db: str | Path = DEFAULT_DB,
    model_path: str | Path | None = None,
    settings: SearchSettings = SearchSettings(),
) -> pd.DataFrame:
    """Search stored paragraphs with a Swedish question.

    Args:
        query: the question, in plain words.
        k: number of results.
        source, since, until, organisation, person: filters (dates match the document's
            publication date, or its inferred date).
        method: "hybrid" (default), "bm25" or "dense".
        db: the DuckDB file.
        model_path: the sentence-transformers model directory (default: models/e5-small).
        settings: ranking settings.

    Returns:
        A DataFrame with columns score, paragraph, title, url, published, source (and ids),
        best first; exactly ``k`` rows when at least ``k`` paragraphs pass the filters
        (BM25 alone returns only paragraphs that share a term with the query).
    """
    filters = Filters(source, _as_date(since), _as_date(until), organisation, person)
    with Store(db, read_only=True) as store:
        indexes = load_indexes(store.con, db, settings)
        return search_connection(store.con, query, k, filters, method, model_path, settings, indexes)


def search_connection(
    con: duckdb.DuckDBPyConnection,
    query: str,
    k: int,
    filters: Filters = Filters(),
    method: Method = "hybrid",
    model_path: str | Path | None = None,
    settings: SearchSettings = SearchSettings(),
    indexes: Indexes | None = None,
    vector: np.ndarray | None = None,
) -> pd.DataFrame:
    """``search`` on an open connection (used by the evaluation, the benchmark and the notebook).

    Args:
        indexes: loaded indexes (default: none, i.e. exact dense search and DuckDB full-text search).
        vector: the query's embedding, when already computed.
    """
    if not query.strip():
        raise ValueError("empty query")
    if k <= 0:
        return pd.DataFrame(columns=COLUMNS)
    top = rank(con, query, k, filters, method, model_path, settings, indexes, vector)
    return _rows(con, top)


def rank(
    con: duckdb.DuckDBPyConnection,
    query: str,
    k: int,
    filters: Filters = Filters(),
    method: Method = "hybrid",
    model_path: str | Path | None = None,
    settings: SearchSettings = SearchSettings(),
    indexes: Indexes | None = None,
    vector: np.ndarray | None = None,
) -> list[tuple[str, float]]:
    """The top ``k`` (para_id, score) pairs of ``method``, best first."""
    indexes = indexes or Indexes()
    depth = max(k, settings.candidates)
    allowed = allowed_labels(con, filters) if filters and (indexes.ann or indexes.bm25) else None
    ranked: dict[str, list[tuple[str, float]]] = {}
    bm25_max = None
    if method in ("hybrid", "bm25"):
        if indexes.bm25 is not None:
            ranked["bm25"] = indexes.para_of(indexes.bm25.search(query, depth, allowed))
            bm25_max = indexes.bm25.max_score(query)
        else:
            ranked["bm25"] = bm25_ranking(con, query, depth, filters)
    if method in ("hybrid", "dense"):
        if vector is None:
            vector = embed.embed_query(_model(model_path), query)
        if indexes.ann is not None:
            ranked["dense"] = indexes.para_of(ann_ranking(indexes.ann, vector, depth, allowed))
        else:
            ranked["dense"] = dense_ranking(con, vector, depth, filters)
    if method == "hybrid":
        scores = fuse(ranked["bm25"], ranked["dense"], settings, bm25_max)
    else:
        scores = dict(ranked[method])
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def allowed_labels(con: duckdb.DuckDBPyConnection, filters: Filters) -> np.ndarray:
    """Labels of the indexed paragraphs that pass ``filters`` (all filters are per document)."""
    where, params = filters.sql()
    return con.execute(
        f"SELECT label FROM search_items WHERE doc_id IN (SELECT d.doc_id FROM documents d WHERE {where})",
        params,
    ).fetchnumpy()["label"].astype(np.int64)


def ann_ranking(index: vector_index.AnnIndex, vector: np.ndarray, limit: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(label, cosine) pairs, best first, from the vector index.

    With a filter, the allowed labels are tested inside the scan. Up to ``exact_below`` allowed
    paragraphs every cell is scanned (exact). Beyond that more cells than usual are scanned,
    and if that finds fewer than ``limit`` (or than all allowed) results, the search is redone
    over every cell, so filters never make results disappear.
    """
    if allowed is None:
        return index.search(vector, limit)
    want = min(limit, len(allowed))
    if want == 0:
        return []
    if len(allowed) > index.settings.exact_below:
        found = index.search(vector, limit, allowed=allowed)
        if len(found) >= want:
            return found
        log.debug("filtered index search found %d of %d: exact search", len(found), want)
    return index.search(vector, limit, allowed=allowed, exact=True)


def bm25_ranking(con: duckdb.DuckDBPyConnection, query: str, limit: int, filters: Filters = Filters()) -> list[tuple[str, float]]:
    """Paragraph ids and BM25 scores from DuckDB's full-text index, best first (empty without one)."""
    where, params = filters.sql()
    try:
        return con.execute(
            f"""SELECT para_id, score FROM (
                    SELECT p.para_id, fts_main_paragraphs.match_bm25(p.para_id, ?) AS score
                    FROM paragraphs p JOIN documents d USING (doc_id) WHERE NOT p.heading AND {where})
                WHERE score IS NOT NULL ORDER BY score DESC, para_id LIMIT ?""",
            [query, *params, limit],
        ).fetchall()
    except duckdb.CatalogException:
        log.warning("no full-text index yet: BM25 returns nothing")
        return []


def dense_ranking(con: duckdb.DuckDBPyConnection, vector: np.ndarray, limit: int, filters: Filters = Filters()) -> list[tuple[str, float]]:
    """Paragraph ids and cosine similarity to ``vector``, best first (exact search in DuckDB)."""
    where, params = filters.sql()
    return con.execute(
        f"""SELECT p.para_id, array_cosine_similarity(p.embedding, ?::FLOAT[{EMBEDDING_DIM}]) AS score
            FROM paragraphs p JOIN documents d USING (doc_id)
            WHERE p.embedding IS NOT NULL AND {where}
            ORDER BY score DESC, p.para_id LIMIT ?""",
        [np.asarray(vector, dtype=np.float32).tolist(), *params, limit],
    ).fetchall()


def fuse(bm25: list[tuple[str, float]], dense: list[tuple[str, float]], settings: SearchSettings = SearchSettings(),
         bm25_max: float | None = None) -> dict[str, float]:
    """Fuse two rankings as ``settings.fusion`` says (weighted RRF or normalised score sum)."""
    if settings.fusion == "score":
        return score_fusion(bm25, dense, settings, bm25_max)
    return rrf(bm25, dense, settings)


def rrf(bm25: list[tuple[str, float]], dense: list[tuple[str, float]], settings: SearchSettings = SearchSettings()) -> dict[str, float]:
    """Reciprocal rank fusion of two rankings, weighted."""
    fused: dict[str, float] = {}
    for weight, ranking in ((settings.bm25_weight, bm25), (1.0 - settings.bm25_weight, dense)):
        for rank_, (pid, _score) in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + weight / (settings.rrf_k + rank_)
    return fused


def score_fusion(bm25: list[tuple[str, float]], dense: list[tuple[str, float]], settings: SearchSettings = SearchSettings(),
                 bm25_max: float | None = None) -> dict[str, float]:
    """Weighted sum of normalised scores.

    A paragraph missing from the BM25 list counts as 0 there; one missing from the dense list
    counts as the lowest similarity in that list (its real similarity is no higher).
    """
    b = _normalised([s for _, s in bm25], settings.bm25_norm, bm25_max)
    d = _normalised([s for _, s in dense], settings.dense_norm)
    w = settings.bm25_weight
    floor = float(d.min()) if len(d) else 0.0
    fused = {pid: (1.0 - w) * floor for pid, _ in bm25}
    for (pid, _), score in zip(dense, d):
        fused[pid] = (1.0 - w) * float(score)
    for (pid, _), score in zip(bm25, b):
        fused[pid] += w * float(score)
    return fused


def _normalised(scores: list[float], how: str, upper: float | None = None) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if not len(values):
        return values
    if how == "raw":
        return values
    if how == "query" and upper:
        return values / upper
    if how in ("max", "query"):
        return values / (values.max() or 1.0)
    span = values.max() - values.min()
    return (values - values.min()) / span if span else np.ones_like(values)


def _rows(con: duckdb.DuckDBPyConnection, top: list[tuple[str, float]]) -> pd.DataFrame:
    """The result table: paragraphs, then their documents, by id (two small lookups, no join)."""
    if not top:
        return pd.DataFrame(columns=COLUMNS)
    ids = [pid for pid, _ in top]
    paragraphs = {row[0]: row[1:] for row in con.execute(
        f"SELECT para_id, doc_id, text FROM paragraphs WHERE para_id IN ({', '.join('?' * len(ids))})", ids
    ).fetchall()}
    doc_ids = sorted({doc for doc, _ in paragraphs.values()})
    documents = {row[0]: row[1:] for row in con.execute(
        f"""SELECT doc_id, title, url, coalesce(published, document_date), source FROM documents
            WHERE doc_id IN ({', '.join('?' * len(doc_ids))})""", doc_ids
    ).fetchall()} if doc_ids else {}
    rows = []
    for pid, score in top:
        doc_id, text = paragraphs.get(pid, (None, None))
        title, url, published, source = documents.get(doc_id, (None, None, None, None))
        rows.append((score, text, title, url, published, source, pid, doc_id))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["published"] = pd.to_datetime(frame["published"])
    return frame


@lru_cache(maxsize=2)
def _model(model_path: str | Path | None):
    settings = embed.EmbedSettings() if model_path is None else embed.EmbedSettings(model_path=Path(model_path))
    return embed.load_model(settings)


def _as_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
