"""Search speed at 100k and 1M paragraphs: index build time, query latency, recall, memory.

Each size runs in its own process (so peak memory is per size):

1. generate a corpus: paragraphs of 3–6 sentences shuffled from ``tests/search/corpus.jsonl``,
   10 paragraphs a document, six sources, dates 2015–2025, organisations mentioned by some
   documents; 384-dim unit vectors shaped like e5's (a shared direction, topic clusters and
   noise, calibrated on the real evaluation embeddings: mean pairwise cosine ≈ 0.81);
2. load it into a DuckDB file with the Store's schema (bulk insert through Arrow);
3. build the indexes as a crawl does: ``Store.update_search_index()`` (vector index),
   ``Store.update_search_index(full_text=True)`` (BM25), and DuckDB's FTS index (baseline,
   at 100k only: it is not on the query path);
4. reopen read-only (as after a restart) and time 200 queries per method with precomputed
   query vectors (p50/p99 of ``search_connection``: ranking, fusion and fetching the rows);
   filtered hybrid queries too; DuckDB ``match_bm25`` on 20 queries at 100k;
5. recall@10 of the vector index against exact search on the same vectors;
6. an incremental sync after changing, deleting and adding 0.1 % of the paragraphs.

Query embedding (e5 on the CPU) is timed separately, once, since it does not depend on size.

    .venv/bin/python bench/bench_search.py                       # 100k and 1M (make bench-search)
    .venv/bin/python bench/bench_search.py --sizes 20000 --queries 50   # quick

Files go to a temporary directory (``--dir``) removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import ann, search  # noqa: E402
from pipeline.search import Filters, load_indexes, search_connection  # noqa: E402
from pipeline.store import Store  # noqa: E402

DIM = 384
SOURCES = ("kommun-a", "kommun-b", "region", "myndighet", "forening-a", "forening-b")
ORGS = [f"Organisation {i}" for i in range(20)]
PER_DOC = 10


# -- data ----------------------------------------------------------------------------------------


def sentences() -> list[str]:
    """Sentences of the evaluation corpus (the vocabulary of the generated text)."""
    out = []
    for line in (ROOT / "tests" / "search" / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        out += [s for s in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]) if len(s) > 20]
    return out


def unit_vectors(n: int, centers: np.ndarray, shared: np.ndarray, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    """e5-like vectors: 0.90 × a shared direction + 0.27 × a topic centre + 0.35 × noise, normalised."""
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        v = 0.90 * shared + 0.27 * centers[rng.integers(0, len(centers), m)] + 0.35 * rng.standard_normal((m, DIM), dtype=np.float32) / np.sqrt(DIM)
        out[start:start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def generate(n: int, n_queries: int, seed: int = 0):
    """Paragraph texts, document metadata, corpus vectors, query texts and query vectors."""
    rng = np.random.default_rng(seed)
    pool = sentences()
    pick = rng.integers(0, len(pool), size=(n, 6))
    lengths = rng.integers(3, 7, size=n)
    texts = [" ".join(pool[j] for j in pick[i, :lengths[i]]) for i in range(n)]
    n_docs = (n + PER_DOC - 1) // PER_DOC
    start = date(2015, 1, 1)
    docs = {
        "doc_id": [f"d{i:07d}" for i in range(n_docs)],
        "source": [SOURCES[i] for i in rng.integers(0, len(SOURCES), n_docs)],
        "title": [pool[i][:60] for i in rng.integers(0, len(pool), n_docs)],
        "published": [start + timedelta(days=int(d)) for d in rng.integers(0, 3650, n_docs)],
    }
    centers = rng.standard_normal((max(50, n // 100), DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    shared = rng.standard_normal(DIM).astype(np.float32)
    shared /= np.linalg.norm(shared)
    vectors = unit_vectors(n, centers, shared, rng)
    qvectors = unit_vectors(n_queries, centers, shared, rng)
    words = [w for w in re.findall(r"\w{5,}", " ".join(pool[:2000]).lower())]
    queries = [" ".join(rng.choice(words, size=int(rng.integers(2, 6)))) for _ in range(n_queries)]
    return texts, docs, vectors, queries, qvectors


def load(db: Path, texts: list[str], docs: dict, vectors: np.ndarray, seed: int = 0) -> None:
    """Bulk-insert documents, paragraphs (with vectors) and organisation mentions through Arrow."""
    import pyarrow as pa

    rng = np.random.default_rng(seed + 1)
    n, n_docs = len(texts), len(docs["doc_id"])
    doc_of = np.arange(n) // PER_DOC
    para = pa.table({
        "para_id": [f"{docs['doc_id'][d]}:{i % PER_DOC}" for i, d in enumerate(doc_of)],
        "doc_id": [docs["doc_id"][d] for d in doc_of],
        "idx": (np.arange(n) % PER_DOC).astype(np.int32),
        "text": texts,
        "text_hash": [f"h{i}" for i in range(n)],
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
    })
    documents = pa.table({**docs, "url": [f"https://bench.example/{d}" for d in docs["doc_id"]]})
    mentions = [(f"o{j}", docs["doc_id"][i]) for i in range(n_docs) for j in rng.choice(len(ORGS), int(rng.integers(0, 3)), replace=False)]
    orgs = pa.table({"org_id": [f"o{j}" for j in range(len(ORGS))], "name": ORGS})
    org_mentions = pa.table({"org_id": [m[0] for m in mentions], "doc_id": [m[1] for m in mentions]})
    with Store(db) as store:
        con = store.con
        con.register("para_in", para)
        con.register("docs_in", documents)
        con.register("orgs_in", orgs)
        con.register("mentions_in", org_mentions)
        con.execute("""INSERT INTO documents (doc_id, url, source, kind, title, published, version, updated_at)
                       SELECT doc_id, url, source, 'html', title, published, 1, now() FROM docs_in""")
        con.execute(f"""INSERT INTO paragraphs SELECT para_id, doc_id, idx, text, text_hash, embedding::FLOAT[{DIM}] FROM para_in""")
        con.execute("INSERT INTO organisations SELECT org_id, name, []::VARCHAR[] FROM orgs_in")
        con.execute("INSERT INTO organisation_mentions SELECT org_id, doc_id, []::VARCHAR[] FROM mentions_in")
        con.execute("CHECKPOINT")


# -- measurements --------------------------------------------------------------------------------


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def latencies(fn, items, warmup: int = 5) -> dict[str, float]:
    for item in items[:warmup]:
        fn(item)
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - started)
    ms = np.asarray(times) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": len(items)}


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10, chunk: int = 200_000) -> np.ndarray:
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        sims = queries @ vectors[start:start + chunk].T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(sims, idx, 1)], axis=1)
        best_i = np.concatenate([best_i, idx + start], axis=1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_one(n: int, n_queries: int, workdir: Path, fts_max: int) -> dict:
    """All measurements for one corpus size (called in a child process)."""
    out: dict = {"paragraphs": n}
    (texts, docs, vectors, queries, qvectors), out["generate_s"] = timed(lambda: generate(n, n_queries))
    db = workdir / f"bench-{n}.duckdb"
    _, out["load_s"] = timed(lambda: load(db, texts, docs, vectors))
    del texts
    if n <= fts_max:
        with Store(db) as store:
            _, out["fts_build_s"] = timed(lambda: store.rebuild_fts(search.stopwords()))
    with Store(db) as store:
        counts, out["ann_build_s"] = timed(lambda: store.update_search_index())
        assert counts["rebuilt"] == 1 and counts["added"] == n, counts
        _, out["bm25_build_s"] = timed(lambda: store.update_search_index(full_text=True))
    out["db_mb"] = dir_size(db) / 2**20
    out["ann_mb"] = dir_size(Path(str(db) + ".search") / ann.INDEX_FILE) / 2**20
    out["bm25_mb"] = dir_size(Path(str(db) + ".search") / search.BM25_DIR) / 2**20

    with Store(db, read_only=True) as store:  # a fresh reader, as after a restart
        con = store.con
        indexes, out["index_open_s"] = timed(lambda: load_indexes(con, db))
        assert indexes.ann is not None and indexes.bm25 is not None
        out["cells"] = int(indexes.ann.index.nlist)
        items = list(zip(queries, qvectors))
        for method in ("dense", "bm25", "hybrid"):
            out[f"{method}_ms"] = latencies(
                lambda qv, m=method: search_connection(con, qv[0], 10, method=m, indexes=indexes, vector=qv[1]), items)
        filters = {
            "source (1/6)": Filters(source="region"),
            "organisation (~5%)": Filters(organisation="Organisation 3"),
            "source + since (~1%)": Filters(source="region", since=date(2024, 6, 1)),
        }
        for name, f in filters.items():
            def one(qv, f=f):
                found = search_connection(con, qv[0], 10, f, "hybrid", indexes=indexes, vector=qv[1])
                assert len(found) == 10
            out[f"hybrid_filtered_ms {name}"] = latencies(one, items[:100])
        if n <= fts_max:
            out["duckdb_bm25_ms"] = latencies(lambda qv: search.bm25_ranking(con, qv[0], 50), items[:20], warmup=2)
        exact = exact_top(vectors, qvectors)
        found = [[label for label, _ in indexes.ann.search(q, 10)] for q in qvectors]
        out["ann_recall@10"] = float(np.mean([len(set(f) & set(e.tolist())) / 10 for f, e in zip(found, exact)]))
        out["nprobe"] = indexes.ann.nprobe
        sweep = {}
        default = indexes.ann.settings
        for share in (0.005, 0.01, 0.02, 0.03, 0.05, 0.1):
            indexes.ann.settings = replace(default, probe_share=share, min_nprobe=1)
            found = [[label for label, _ in indexes.ann.search(q, 10)] for q in qvectors]
            sweep[indexes.ann.nprobe] = {
                "recall@10": float(np.mean([len(set(f) & set(e.tolist())) / 10 for f, e in zip(found, exact)])),
                "p50_ms": latencies(lambda q: indexes.ann.search(q, 50), list(qvectors))["p50"]}
        indexes.ann.settings = default
        out["nprobe_sweep"] = sweep
        out["exact_numpy_ms"] = latencies(lambda q: vectors @ q, list(qvectors[:20]), warmup=2)["p50"]

    # keep in step after a batch of changes: 0.1 % changed, deleted and added
    m = max(10, n // 1000)
    rng = np.random.default_rng(5)
    with Store(db) as store:
        con = store.con
        changed = rng.choice(n, m, replace=False)
        new_vecs = unit_vectors(m, vectors[rng.choice(n, 50)], vectors[0], rng)
        import pyarrow as pa
        con.register("upd", pa.table({"i": changed, "e": pa.FixedSizeListArray.from_arrays(pa.array(new_vecs.reshape(-1)), DIM)}))
        con.execute(f"""UPDATE paragraphs SET text_hash = text_hash || 'x', embedding = upd.e::FLOAT[{DIM}]
                        FROM (SELECT 'd' || lpad((i // {PER_DOC})::VARCHAR, 7, '0') || ':' || (i % {PER_DOC}) AS pid, e FROM upd) upd
                        WHERE para_id = upd.pid""")
        con.execute("DELETE FROM paragraphs WHERE para_id IN (SELECT para_id FROM paragraphs USING SAMPLE 0.1 PERCENT (bernoulli, 7))")
        con.execute(f"""INSERT INTO paragraphs SELECT 'new' || i || ':0', 'd0000000', 0, 'nytt stycke', 'n' || i,
                        embedding FROM (SELECT i, (SELECT embedding FROM paragraphs LIMIT 1) AS embedding FROM range({m}) t(i))""")
        counts, out["sync_s"] = timed(lambda: store.update_search_index())
        out["sync_counts"] = counts
        assert counts["rebuilt"] == 0
        out["in_step_after_sync"] = bool(ann.in_step(con, ann.AnnIndex.load(ann.index_dir(db))))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def embed_latency(n: int = 50) -> dict | None:
    """p50/p99 of embedding one query with the e5 model on this machine (None without a model)."""
    from pipeline import embed

    try:
        model = embed.load_model(embed.EmbedSettings(device="cpu"))
    except embed.ModelNotFoundError:
        return None
    qs = [f"Hur ansöker jag om färdtjänst nummer {i}?" for i in range(n)]
    return latencies(lambda q: embed.embed_query(model, q), qs)


def report(results: list[dict], embedding: dict | None) -> str:
    lines = ["", "| paragraphs | " + " | ".join(f"{r['paragraphs']:,}" for r in results) + " |",
             "|---|" + "---:|" * len(results)]

    def row(label, fmt):
        cells = []
        for r in results:
            try:
                cells.append(fmt(r))
            except KeyError:
                cells.append("–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("DuckDB load (s)", lambda r: f"{r['load_s']:.0f}")
    row("vector index build (s)", lambda r: f"{r['ann_build_s']:.0f} ({r['cells']} cells)")
    row("BM25 index build (s)", lambda r: f"{r['bm25_build_s']:.0f}")
    row("DuckDB FTS build (s, baseline)", lambda r: f"{r['fts_build_s']:.0f}")
    row("open indexes after restart (s)", lambda r: f"{r['index_open_s']:.1f}")
    for method in ("dense", "bm25", "hybrid"):
        row(f"{method} p50 / p99 (ms)", lambda r, m=method: f"{r[m + '_ms']['p50']:.1f} / {r[m + '_ms']['p99']:.1f}")
    for name in ("source (1/6)", "organisation (~5%)", "source + since (~1%)"):
        row(f"hybrid, filter {name} p50 / p99 (ms)",
            lambda r, k=f"hybrid_filtered_ms {name}": f"{r[k]['p50']:.1f} / {r[k]['p99']:.1f}")
    row("DuckDB match_bm25 p50 (ms, baseline)", lambda r: f"{r['duckdb_bm25_ms']['p50']:.0f}")
    row("exact numpy top-10 p50 (ms)", lambda r: f"{r['exact_numpy_ms']:.0f}")
    row("vector index recall@10 vs exact", lambda r: f"{r['ann_recall@10']:.3f} (nprobe {r['nprobe']})")
    row("  recall@10 / p50 ms by cells scanned", lambda r: ", ".join(
        f"{k}: {v['recall@10']:.3f} / {v['p50_ms']:.1f}" for k, v in r["nprobe_sweep"].items()))
    row("sync after 0.1 % changed+deleted+added (s)", lambda r: f"{r['sync_s']:.1f}")
    row("in step after sync", lambda r: str(r["in_step_after_sync"]))
    row("files: DuckDB / vectors / BM25 (MB)", lambda r: f"{r['db_mb']:.0f} / {r['ann_mb']:.0f} / {r['bm25_mb']:.0f}")
    row("peak RSS (MB)", lambda r: f"{r['peak_rss_mb']:.0f}")
    if embedding:
        lines.append(f"\nQuery embedding (e5-small, CPU, one query): p50 {embedding['p50']:.1f} ms, p99 {embedding['p99']:.1f} ms "
                     "— add it to the dense and hybrid latencies above for a query typed by a user.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    parser.add_argument("--fts-max", type=int, default=200_000, help="build and time DuckDB FTS up to this size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size, JSON out
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="samverkan-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.one:
        print(json.dumps(run_one(args.one, args.queries, workdir, args.fts_max)))
        return 0
    results = []
    try:
        for n in args.sizes:
            started = time.perf_counter()
            cmd = [sys.executable, __file__, "--one", str(n), "--queries", str(args.queries), "--dir", str(workdir),
                   "--fts-max", str(args.fts_max)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"{n:,} paragraphs done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            for path in workdir.glob(f"bench-{n}.duckdb*"):
                if not args.keep:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        embedding = embed_latency()
        print(report(results, embedding))
        print("\nraw:", json.dumps(results))
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
