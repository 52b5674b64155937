"""Search stage: hybrid retrieval over stored paragraphs.

BM25 (DuckDB full-text search, Swedish stemmer) and dense similarity (e5 embeddings) each
rank the paragraphs that pass the filters; reciprocal rank fusion merges the two lists.
Filters are applied inside both queries, so ``k`` results come back whenever ``k`` match.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from pipeline import embed
from pipeline.store import DEFAULT_DB, EMBEDDING_DIM, Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Method = Literal["hybrid", "bm25", "dense"]
COLUMNS = ["score", "paragraph", "title", "url", "published", "source", "para_id", "doc_id"]


@dataclass(frozen=True)
class SearchSettings:
    """Knobs of the ranking.

    Attributes:
        candidates: how many results each ranker contributes to the fusion.
        rrf_k: the k of reciprocal rank fusion, 1 / (k + rank).
        bm25_weight: weight of the BM25 list in the fusion (dense has 1 - bm25_weight).
    """

    candidates: int = 50
    rrf_k: int = 60
    bm25_weight: float = 0.5


@dataclass(frozen=True)
class Filters:
    """Which paragraphs may be returned."""

    source: str | None = None
    since: date | None = None
    until: date | None = None
    organisation: str | None = None
    person: str | None = None

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
        best first.
    """
    filters = Filters(source, _as_date(since), _as_date(until), organisation, person)
    with Store(db, read_only=True) as store:
        return search_connection(store.con, query, k, filters, method, model_path, settings)


def search_connection(
    con: duckdb.DuckDBPyConnection,
    query: str,
    k: int,
    filters: Filters = Filters(),
    method: Method = "hybrid",
    model_path: str | Path | None = None,
    settings: SearchSettings = SearchSettings(),
) -> pd.DataFrame:
    """``search`` on an open connection (used by the evaluation and the notebook)."""
    if not query.strip():
        raise ValueError("empty query")
    depth = max(k, settings.candidates)
    ranked: dict[str, list[tuple[str, float]]] = {}
    if method in ("hybrid", "bm25"):
        ranked["bm25"] = bm25_ranking(con, query, depth, filters)
    if method in ("hybrid", "dense"):
        vector = embed.embed_query(_model(model_path), query)
        ranked["dense"] = dense_ranking(con, vector, depth, filters)
    if method == "hybrid":
        scores = rrf(ranked["bm25"], ranked["dense"], settings)
    else:
        scores = dict(ranked[method])
    top = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:k]
    return _rows(con, top)


def bm25_ranking(con: duckdb.DuckDBPyConnection, query: str, limit: int, filters: Filters = Filters()) -> list[tuple[str, float]]:
    """Paragraph ids and BM25 scores, best first (empty when there is no index yet)."""
    where, params = filters.sql()
    try:
        return con.execute(
            f"""SELECT para_id, score FROM (
                    SELECT p.para_id, fts_main_paragraphs.match_bm25(p.para_id, ?) AS score
                    FROM paragraphs p JOIN documents d USING (doc_id) WHERE {where})
                WHERE score IS NOT NULL ORDER BY score DESC, para_id LIMIT ?""",
            [query, *params, limit],
        ).fetchall()
    except duckdb.CatalogException:
        log.warning("no full-text index yet: BM25 returns nothing")
        return []


def dense_ranking(con: duckdb.DuckDBPyConnection, vector: np.ndarray, limit: int, filters: Filters = Filters()) -> list[tuple[str, float]]:
    """Paragraph ids and cosine similarity to ``vector``, best first (exact search)."""
    where, params = filters.sql()
    return con.execute(
        f"""SELECT p.para_id, array_cosine_similarity(p.embedding, ?::FLOAT[{EMBEDDING_DIM}]) AS score
            FROM paragraphs p JOIN documents d USING (doc_id)
            WHERE p.embedding IS NOT NULL AND {where}
            ORDER BY score DESC, p.para_id LIMIT ?""",
        [np.asarray(vector, dtype=np.float32).tolist(), *params, limit],
    ).fetchall()


def rrf(bm25: list[tuple[str, float]], dense: list[tuple[str, float]], settings: SearchSettings = SearchSettings()) -> dict[str, float]:
    """Reciprocal rank fusion of two rankings, weighted."""
    fused: dict[str, float] = {}
    for weight, ranking in ((settings.bm25_weight, bm25), (1.0 - settings.bm25_weight, dense)):
        for rank, (pid, _score) in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + weight / (settings.rrf_k + rank)
    return fused


def stopwords() -> set[str]:
    """Swedish stop words for the full-text index (spaCy's list)."""
    from spacy.lang.sv.stop_words import STOP_WORDS

    return set(STOP_WORDS)


def _rows(con: duckdb.DuckDBPyConnection, top: list[tuple[str, float]]) -> pd.DataFrame:
    if not top:
        return pd.DataFrame(columns=COLUMNS)
    order = pd.DataFrame(top, columns=["para_id", "score"])
    details = con.execute(
        """SELECT p.para_id, p.doc_id, p.text AS paragraph, d.title, d.url,
                  coalesce(d.published, d.document_date) AS published, d.source
           FROM paragraphs p JOIN documents d USING (doc_id) WHERE list_contains(?, p.para_id)""",
        [order["para_id"].tolist()],
    ).df()
    return order.merge(details, on="para_id", how="left")[COLUMNS]


@lru_cache(maxsize=2)
def _model(model_path: str | Path | None):
    settings = embed.EmbedSettings() if model_path is None else embed.EmbedSettings(model_path=Path(model_path))
    return embed.load_model(settings)


def _as_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
