"""Retrieval quality of BM25, dense and hybrid search on the Swedish evaluation set.

Loads ``tests/search/corpus.jsonl`` into a temporary DuckDB file through the Store (documents,
paragraphs with e5 embeddings, organisations and people for the filters), builds the search
indexes like a crawl does, runs every query of ``tests/search/queries.jsonl`` with its filters
and prints nDCG@10, recall@10 and MRR@10 per method, for the dev half, the test half and all
queries, then nDCG@10 per query type.

    .venv/bin/python bench/eval_search.py              # the table (make eval-search)
    .venv/bin/python bench/eval_search.py --variants   # also the variants tried (docs/search.md)
    .venv/bin/python bench/eval_search.py --pool pool.jsonl   # unjudged top-10 candidates, for judging

Paragraphs are embedded as the pipeline embeds them (`embed.passage_text`: title as a first
sentence, then the paragraph). Corpus embeddings are cached under /tmp/samverkan-eval-cache, keyed by a hash of the texts and
the model, so reruns skip the ~1 minute of embedding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import embed, search  # noqa: E402
from pipeline.records import Document, EmbeddedDocument, Extraction, OrganisationMention, PersonMention, paragraph_key  # noqa: E402
from pipeline.search import Bm25Index, Filters, SearchSettings  # noqa: E402
from pipeline.store import Store, page_id  # noqa: E402

EVAL_DIR = ROOT / "tests" / "search"
CACHE_DIR = Path("/tmp/samverkan-eval-cache")
K = 10
DEPTH = 200  # ranked list length of each variant ranker (the largest candidate depth tried)
METHODS = ("bm25", "dense", "hybrid")


@dataclass
class EvalSet:
    """Corpus paragraphs, their documents and the judged queries."""

    paragraphs: list[dict]
    docs: list[dict]
    queries: list[dict]


def load(directory: Path = EVAL_DIR) -> EvalSet:
    """Read corpus.jsonl, docs.jsonl and queries.jsonl."""
    read = lambda name: [json.loads(line) for line in (directory / name).read_text(encoding="utf-8").splitlines() if line.strip()]  # noqa: E731
    return EvalSet(read("corpus.jsonl"), read("docs.jsonl"), read("queries.jsonl"))


# -- embeddings, cached -------------------------------------------------------------------------


def _model_id(model) -> str:
    weights = embed.EmbedSettings().model_path / "model.safetensors"
    return f"e5-small|{weights.stat().st_size if weights.exists() else 0}"


def cached_embeddings(model, texts: list[str], prompt: str | None, tag: str) -> np.ndarray:
    """Embed ``texts`` with ``prompt`` ("passage", "query" or None), cached on disk."""
    key = hashlib.sha256(json.dumps([texts, prompt, _model_id(model)], ensure_ascii=False).encode()).hexdigest()[:20]
    path = CACHE_DIR / f"{tag}-{key}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors = model.encode([t.strip() for t in texts], prompt_name=prompt, batch_size=32, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False).astype(np.float32)
    logging.info("embedded %d texts (%s) in %.0f s", len(texts), tag, time.perf_counter() - started)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


PASSAGES = {  # what is embedded for a paragraph → cache tag
    "title": "passages-titledot",   # production: embed.passage_text, the title as a first sentence
    "plain": "passages",            # the paragraph alone (before)
    "title-nl": "passages-title",   # title, newline, paragraph
}


def passage_texts(ev: EvalSet, how: str = "title") -> list[str]:
    """What is embedded for each paragraph (``how`` is a key of ``PASSAGES``)."""
    if how == "title":
        return [embed.passage_text(p["title"], p["text"]) for p in ev.paragraphs]
    if how == "title-nl":
        return [f"{p['title']}\n{p['text']}" if p["title"] else p["text"] for p in ev.paragraphs]
    return [p["text"] for p in ev.paragraphs]


def passage_vectors(model, ev: EvalSet, how: str = "title") -> np.ndarray:
    """Corpus vectors for ``passage_texts(ev, how)``, cached."""
    return cached_embeddings(model, passage_texts(ev, how), "passage", PASSAGES[how])


# -- the database -----------------------------------------------------------------------------


def url_of(doc: str) -> str:
    return f"https://eval.example/{doc}"


def build_db(path: Path, ev: EvalSet, vectors: np.ndarray) -> dict[str, str]:
    """Load the corpus into a fresh DuckDB file and build all indexes; return para_id → corpus id."""
    by_doc: dict[str, list[int]] = {}
    for i, p in enumerate(ev.paragraphs):
        by_doc.setdefault(p["id"].rsplit(":", 1)[0], []).append(i)
    items, mapping = [], {}
    for d in ev.docs:
        rows = by_doc[d["doc"]]
        published = date.fromisoformat(d["published"]) if d["published"] else None
        paragraphs = [ev.paragraphs[i]["text"] for i in rows]
        document = Document(url=url_of(d["doc"]), source=d["source"], title=d["title"], published=published,
                            author=None, paragraphs=paragraphs, content_hash=paragraph_key("\n\n".join(paragraphs)))
        extraction = Extraction(document_date=published,
                                organisations=[OrganisationMention(name, list(aliases)) for name, aliases in d["organisations"]],
                                people=[PersonMention(p) for p in d["people"]])
        items.append(EmbeddedDocument(document, extraction, vectors[rows]))
        for j, i in enumerate(rows):
            mapping[f"{page_id(document.url)}:{j}"] = ev.paragraphs[i]["id"]
    with Store(path) as store:
        store.save_documents(items)
        store.rebuild_fts(search.stopwords())
        store.update_search_index(full_text=True)
    return mapping


def _organisation_aliases(ev: EvalSet) -> None:
    """Register aliases (IVO, MFD …) so organisation filters match them, as the extractors would."""
    from tests.search.build_corpus import ORGANISATIONS  # the gazetteer the corpus was tagged with

    for d in ev.docs:
        d["organisations"] = [(o, ORGANISATIONS.get(o, [])) for o in d["organisations"]]


# -- rankings and metrics ----------------------------------------------------------------------


def filters_of(q: dict) -> Filters:
    f = q.get("filters") or {}
    as_date = lambda v: date.fromisoformat(v) if v else None  # noqa: E731
    return Filters(f.get("source"), as_date(f.get("since")), as_date(f.get("until")), f.get("organisation"), f.get("person"))


def ndcg(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    gains = [(2 ** relevant.get(pid, 0) - 1) for pid in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((2 ** g - 1 for g in relevant.values()), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked: list[str], relevant: dict[str, int], k: int = K, grade: int = 1) -> float:
    """Share of the paragraphs judged at least ``grade`` found in the top k, out of at most k."""
    rel = {pid for pid, g in relevant.items() if g >= grade}
    return len(rel & set(ranked[:k])) / min(len(rel), k) if rel else float("nan")


def mrr(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    for i, pid in enumerate(ranked[:k], start=1):
        if relevant.get(pid, 0) > 0:
            return 1.0 / i
    return 0.0


def scores(runs: dict[str, list[str]], queries: list[dict]) -> dict[str, float]:
    """Mean nDCG@10, recall@10 and MRR@10 over ``queries`` (those with judged relevant paragraphs)."""
    judged = [q for q in queries if q["relevant"]]
    if not judged:
        return {"ndcg": float("nan"), "recall": float("nan"), "recall2": float("nan"), "mrr": float("nan"), "n": 0}
    return {
        "ndcg": float(np.mean([ndcg(runs[q["qid"]], q["relevant"]) for q in judged])),
        "recall": float(np.mean([recall(runs[q["qid"]], q["relevant"]) for q in judged])),
        "recall2": float(np.nanmean([recall(runs[q["qid"]], q["relevant"], grade=2) for q in judged])),
        "mrr": float(np.mean([mrr(runs[q["qid"]], q["relevant"]) for q in judged])),
        "n": len(judged),
    }


class Runner:
    """Runs queries against the evaluation database and keeps the candidate lists."""

    def __init__(self, ev: EvalSet, db: Path, mapping: dict[str, str], query_vectors: dict[str, np.ndarray]):
        self.ev, self.db, self.mapping, self.qvec = ev, db, mapping, query_vectors
        self.store = Store(db, read_only=True).__enter__()
        self.con = self.store.con
        self.indexes = search.load_indexes(self.con, db)

    def ranking(self, q: dict, method: str, settings: SearchSettings = SearchSettings(), depth: int = K,
                indexes: search.Indexes | None = None) -> list[tuple[str, float]]:
        top = search.rank(self.con, q["query"], depth, filters_of(q), method, settings=settings,
                          indexes=self.indexes if indexes is None else indexes, vector=self.qvec[q["qid"]])
        return [(self.mapping[pid], s) for pid, s in top]

    def duckdb_bm25(self, q: dict, depth: int = K) -> list[tuple[str, float]]:
        return [(self.mapping[pid], s) for pid, s in search.bm25_ranking(self.con, q["query"], depth, filters_of(q))]

    def close(self) -> None:
        self.store.close()


def _ids(ranking: list[tuple[str, float]]) -> list[str]:
    return [pid for pid, _ in ranking]


def table(rows: dict[str, dict[str, list[str]]], queries: list[dict]) -> str:
    """A text table: methods × (nDCG@10, recall@10 of answers, recall@10 of all relevant, MRR@10) per half."""
    halves = [("dev", [q for q in queries if q["split"] == "dev"]), ("test", [q for q in queries if q["split"] == "test"]),
              ("all", queries)]
    head = f"{'method':<26}{'half':<6}{'nDCG@10':>9}{'R@10':>8}{'R@10 all':>10}{'MRR@10':>8}"
    lines = [head, "-" * len(head)]
    for name, runs in rows.items():
        for half, qs in halves:
            s = scores(runs, qs)
            lines.append(f"{name if half == 'dev' else '':<26}{half:<6}{s['ndcg']:>9.3f}{s['recall2']:>8.3f}{s['recall']:>10.3f}{s['mrr']:>8.3f}")
    n = {h: len([q for q in qs if q["relevant"]]) for h, qs in halves}
    lines.append(f"R@10: share of the answering paragraphs (grade 2) in the top 10 (at most 10 counted); "
                 f"R@10 all: the same for every judged-relevant paragraph (grade 1 or 2). Queries: dev {n['dev']}, "
                 f"test {n['test']}.")
    return "\n".join(lines)


def per_type(rows: dict[str, dict[str, list[str]]], queries: list[dict]) -> str:
    types = sorted({q["type"] for q in queries})
    head = f"{'nDCG@10 by type':<22}" + "".join(f"{t[:12]:>14}" for t in types)
    lines = [head, "-" * len(head)]
    for name, runs in rows.items():
        lines.append(f"{name:<22}" + "".join(f"{scores(runs, [q for q in queries if q['type'] == t])['ndcg']:>14.3f}" for t in types))
    lines.append(f"{'(queries)':<22}" + "".join(f"{len([q for q in queries if q['type'] == t and q['relevant']]):>14d}" for t in types))
    return "\n".join(lines)


# -- variants ----------------------------------------------------------------------------------


def exact_dense(vectors: np.ndarray, qvec: np.ndarray, allowed: np.ndarray | None, depth: int = DEPTH) -> list[tuple[int, float]]:
    sims = vectors @ qvec
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    order = np.argsort(-sims, kind="stable")[:depth]
    return [(int(i), float(sims[i])) for i in order if np.isfinite(sims[i])]


def variants(runner: Runner, ev: EvalSet, model, out) -> dict[str, dict[str, list[str]]]:
    """Try what the field does; print a markdown table (dev and test) and return the rankings.

    Each ranker runs once per variant (depth 200, filters applied exactly as in the database);
    fusions are computed offline with the production ``search.fuse``. Settings are chosen on
    the dev half only; the test half shows whether the choice holds.
    """
    queries = ev.queries
    ids = [p["id"] for p in ev.paragraphs]
    allowed = {}
    for q in queries:
        f = filters_of(q)
        if f:
            where, params = f.sql()
            ok = {runner.mapping[pid] for pid, in runner.con.execute(
                f"SELECT p.para_id FROM paragraphs p JOIN documents d USING (doc_id) WHERE {where}", params).fetchall()}
            allowed[q["qid"]] = np.asarray([pid in ok for pid in ids])
    rows: dict[str, dict[str, list[str]]] = {}
    as_ids = lambda runs: {qid: [pid for pid, _ in r] for qid, r in runs.items()}  # noqa: E731

    rows["BM25: DuckDB FTS (Swedish stemmer, stop words)"] = as_ids({q["qid"]: runner.duckdb_bm25(q, DEPTH) for q in queries})
    plain = [p["text"] for p in ev.paragraphs]
    titled = passage_texts(ev, "title-nl")  # BM25 indexes "title\nparagraph", like search.update_indexes
    bm25, bm25_max = {}, {}
    for label, texts, kw in [("BM25: bm25s, Snowball stems", plain, {"decompound": False}),
                             ("BM25: + compound parts", plain, {"decompound": True}),
                             ("BM25: + compound parts, k1=1.5", plain, {"decompound": True, "k1": 1.5}),
                             ("BM25: + compound parts, k1=0.9 b=0.4", plain, {"decompound": True, "k1": 0.9, "b": 0.4}),
                             ("BM25: + compound parts, no stop words", plain, {"decompound": True, "stop": set()}),
                             ("BM25: + compound parts + title (ours)", titled, {"decompound": True})]:
        index = Bm25Index.build(texts, np.arange(len(texts)), 0, **kw)
        runs, maxima = {}, {}
        for q in queries:
            mask = allowed.get(q["qid"])
            runs[q["qid"]] = [(ids[i], sc) for i, sc in index.search(q["query"], DEPTH, None if mask is None else np.flatnonzero(mask))]
            maxima[q["qid"]] = index.max_score(q["query"])
        bm25[label], bm25_max[label] = runs, maxima
        rows[label] = as_ids(runs)

    dense = {}
    for label, how, prompt in [("Dense: paragraph, 'query: ' prefix (before)", "plain", "query"),
                               ("Dense: paragraph, no query prefix", "plain", None),
                               ("Dense: 'passage: ' prefix on queries too", "plain", "passage"),
                               ("Dense: title + newline + paragraph embedded", "title-nl", "query"),
                               ("Dense: title as first sentence + paragraph (ours)", "title", "query")]:
        pvec = passage_vectors(model, ev, how)
        qv = cached_embeddings(model, [q["query"] for q in queries], prompt, f"queries-{prompt}")
        dense[label] = {q["qid"]: [(ids[i], sc) for i, sc in exact_dense(pvec, qv[n], allowed.get(q["qid"]))] for n, q in enumerate(queries)}
        rows[label] = as_ids(dense[label])

    def fused(settings: SearchSettings, b_label: str, d_label: str, with_max: bool = True) -> dict[str, list[str]]:
        result = {}
        for q in queries:
            b = bm25[b_label][q["qid"]][:settings.candidates] if b_label in bm25 else duck[q["qid"]][:settings.candidates]
            d = dense[d_label][q["qid"]][:settings.candidates]
            upper = bm25_max[b_label][q["qid"]] if with_max and b_label in bm25_max else None
            top = sorted(search.fuse(b, d, settings, upper).items(), key=lambda kv: (-kv[1], kv[0]))
            result[q["qid"]] = [pid for pid, _ in top[:DEPTH]]
        return result

    def describe(st):
        kind = f"rrf k={st.rrf_k}" if st.fusion == "rrf" else f"score BM25/{st.bm25_norm} dense {st.dense_norm}"
        return f"{kind} w={st.bm25_weight} candidates={st.candidates}"

    duck = {q["qid"]: runner.duckdb_bm25(q, DEPTH) for q in queries}
    dev = [q for q in queries if q["split"] == "dev"]
    test = [q for q in queries if q["split"] == "test"]
    B, B0, D, DP, DN = ("BM25: + compound parts + title (ours)", "BM25: + compound parts",
                        "Dense: title as first sentence + paragraph (ours)", "Dense: paragraph, 'query: ' prefix (before)",
                        "Dense: title + newline + paragraph embedded")
    rows["Hybrid: RRF k=60, w=0.5 (common default)"] = fused(SearchSettings(fusion="rrf", rrf_k=60, bm25_weight=0.5), B, D)
    rows["Hybrid: min-max score fusion, w=0.5"] = fused(SearchSettings(fusion="score", bm25_norm="minmax", dense_norm="minmax", bm25_weight=0.5), B, D)
    grid = []
    for cand in (20, 50, 100, 200):
        for w in (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7):
            for rrf_k in (5, 10, 20, 40, 60, 100):
                grid.append(SearchSettings(fusion="rrf", rrf_k=rrf_k, bm25_weight=w, candidates=cand))
            for bn in ("query", "max", "minmax"):
                for dn in ("raw", "minmax"):
                    grid.append(SearchSettings(fusion="score", bm25_norm=bn, dense_norm=dn, bm25_weight=w, candidates=cand))
    def rule(d_label: str) -> tuple[float, SearchSettings, dict[str, list[str]]]:
        """The kept setting for a dense variant: best dev nDCG@10 among settings with dev R@10 >= 0.85."""
        runs = [(scores(r := fused(st, B, d_label), dev), st, r) for st in grid]
        meets = [t for t in runs if t[0]["recall2"] >= 0.85] or runs
        a, st, r = max(meets, key=lambda t: t[0]["ndcg"])
        return a["ndcg"], st, r

    tried = [(scores(r := fused(st, B, D), dev)["ndcg"], st, r) for st in grid]
    best: dict[tuple, tuple] = {}
    for nd, st, r in tried:
        key = (st.fusion, st.bm25_norm if st.fusion == "score" else "", st.dense_norm if st.fusion == "score" else "")
        if key not in best or nd > best[key][0]:
            best[key] = (nd, st, r)
    for _, st, r in sorted(best.values(), key=lambda t: -t[0]):
        if st.fusion == "rrf":
            name = f"Hybrid: RRF k={st.rrf_k}, w={st.bm25_weight}, {st.candidates} each (best on dev)"
        else:
            name = f"Hybrid: score fusion, BM25/{st.bm25_norm}, dense {st.dense_norm}, w={st.bm25_weight}, {st.candidates} each (best on dev)"
        rows[name] = r
    ours = SearchSettings()
    rows[f"Hybrid (ours): score fusion, BM25/query max, dense raw, w={ours.bm25_weight}, {ours.candidates} each"] = fused(ours, B, D)
    rows["  … with BM25 without titles"] = fused(ours, B0, D)
    rows["  … with DuckDB BM25 (BM25/top score)"] = fused(replace(ours, bm25_norm="max"), "duckdb", D, with_max=False)
    for cand in (20, 50, 200):
        rows[f"  … {cand} candidates each"] = fused(replace(ours, candidates=cand), B, D)
    rows["  … with paragraph-only embeddings"] = fused(ours, B, DP)
    rows["  … with paragraph-only embeddings, w=0.2, 100 each (before)"] = fused(replace(ours, bm25_weight=0.2), B, DP)
    rows["  … with title + newline + paragraph embeddings"] = fused(ours, B, DN)
    for label, d_label in (("paragraph-only", DP), ("title + newline + paragraph", DN), ("title as first sentence (ours)", D)):
        _, st, r = rule(d_label)
        rows[f"  … with {label} embeddings, setting by the dev rule ({describe(st)})"] = r

    print("\n| variant | dev nDCG@10 | dev R@10 | dev R@10 all | dev MRR | test nDCG@10 | test R@10 | test R@10 all | test MRR |", file=out)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", file=out)
    for name, runs in rows.items():
        a, b = scores(runs, dev), scores(runs, test)
        print(f"| {name} | {a['ndcg']:.3f} | {a['recall2']:.3f} | {a['recall']:.3f} | {a['mrr']:.3f} | "
              f"{b['ndcg']:.3f} | {b['recall2']:.3f} | {b['recall']:.3f} | {b['mrr']:.3f} |", file=out)
    print("\nTop fusion settings on dev (nDCG@10 and R@10, dev / test):", file=out)
    for nd, st, r in sorted(tried, key=lambda t: -t[0])[:10]:
        a, b = scores(r, dev), scores(r, test)
        print(f"  {describe(st)}: {a['ndcg']:.3f} {a['recall2']:.3f} / {b['ndcg']:.3f} {b['recall2']:.3f}", file=out)
    meets = [t for t in tried if scores(t[2], dev)["recall2"] >= 0.85]
    if meets:
        nd, st, r = max(meets, key=lambda t: t[0])
        b = scores(r, test)
        print(f"Best dev nDCG@10 among settings with dev R@10 >= 0.85: {describe(st)}: {nd:.3f} / test {b['ndcg']:.3f} "
              f"R@10 {b['recall2']:.3f}", file=out)
    return rows


# -- pooling -----------------------------------------------------------------------------------


def pool(rows: dict[str, dict[str, list[str]]], ev: EvalSet, path: Path, depth: int = K) -> int:
    """Write, per query, the top-``depth`` candidates of every method that are not judged yet."""
    text = {p["id"]: p for p in ev.paragraphs}
    judged_file = EVAL_DIR / "judged.jsonl"
    seen = {}
    if judged_file.exists():
        for line in judged_file.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            seen[item["qid"]] = set(item["judged"])
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for q in ev.queries:
            done = set(q["relevant"]) | seen.get(q["qid"], set())
            cands = []
            for runs in rows.values():
                for pid in runs[q["qid"]][:depth]:
                    if pid not in done and pid not in cands:
                        cands.append(pid)
            n += len(cands)
            out.write(json.dumps({"qid": q["qid"], "query": q["query"], "filters": q["filters"],
                                  "candidates": [{"id": c, "title": text[c]["title"], "text": text[c]["text"]} for c in cands]},
                                 ensure_ascii=False) + "\n")
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", action="store_true", help="also print the table of variants tried")
    parser.add_argument("--pool", type=Path, help="write unjudged top-10 candidates of all methods to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("pipeline", "sentence_transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    ev = load()
    _organisation_aliases(ev)
    model = embed.load_model()
    pvec = passage_vectors(model, ev)  # title + paragraph, as embed.embed_documents does
    qv = cached_embeddings(model, [q["query"] for q in ev.queries], "query", "queries-query")
    qvec = {q["qid"]: qv[i] for i, q in enumerate(ev.queries)}
    with tempfile.TemporaryDirectory(prefix="samverkan-eval-") as tmp:
        db = Path(tmp) / "eval.duckdb"
        started = time.perf_counter()
        mapping = build_db(db, ev, pvec)
        logging.info("corpus: %d paragraphs in %d documents, %d queries; database built in %.1f s",
                     len(ev.paragraphs), len(ev.docs), len(ev.queries), time.perf_counter() - started)
        runner = Runner(ev, db, mapping, qvec)
        try:
            rows = {
                "BM25 (DuckDB FTS)": {q["qid"]: _ids(runner.duckdb_bm25(q)) for q in ev.queries},
                "Dense (e5-small, index)": {q["qid"]: _ids(runner.ranking(q, "dense")) for q in ev.queries},
                "Hybrid (ours)": {q["qid"]: _ids(runner.ranking(q, "hybrid")) for q in ev.queries},
                "  its BM25 (bm25s)": {q["qid"]: _ids(runner.ranking(q, "bm25")) for q in ev.queries},
            }
            print(f"\nSearch quality on {len(ev.paragraphs)} Swedish paragraphs, {len(ev.queries)} queries "
                  f"(nDCG@10 | recall@10 | MRR@10):\n")
            print(table(rows, ev.queries))
            print()
            print(per_type(rows, ev.queries))
            if args.variants or args.pool:
                rows.update(variants(runner, ev, model, sys.stdout if args.variants else open("/dev/null", "w")))
            if args.pool:
                pooled = {k: v for k, v in rows.items() if not k.startswith(("BM25:", "Dense:"))}
                print(f"\n{pool(pooled, ev, args.pool)} unjudged candidates written to {args.pool}")
        finally:
            runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
