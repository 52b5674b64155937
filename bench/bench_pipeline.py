"""End-to-end throughput of samverkan on the demo site, beside the raw libraries it wraps.

Runs, in one process and on the same pages:
  1. our Prefect flow (fetch → clean → nlp → embed → store) into a fresh database;
  2. raw trafilatura.extract on the same HTML;
  3. raw sentence-transformers encode on the same paragraphs;
and prints pages/s, paragraphs/s and our overhead as a ratio.

Usage: .venv/bin/python bench/bench_pipeline.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
import trafilatura
import yaml
from prefect import flow
from sentence_transformers import SentenceTransformer

from flows.crawl import crawl_flow
from pipeline import demo_site
from pipeline.embed import EmbedSettings
from pipeline.store import Store


@flow
def _warm_up() -> None:
    """Start Prefect's ephemeral API before timing."""


def main() -> None:
    torch.set_num_threads(2)
    _warm_up()
    root = demo_site.DEFAULT_ROOT
    with tempfile.TemporaryDirectory() as tmp, demo_site.running(port=0) as base_url:
        sources = Path(tmp) / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [{
            "name": "demo", "start_urls": [base_url + "/"], "allowed_hosts": ["127.0.0.1"],
            "delay": 0, "allow_private": True}]}))
        db = str(Path(tmp) / "bench.duckdb")
        start = time.perf_counter()
        summary = crawl_flow("demo", sources_file=str(sources), db=db)
        ours = time.perf_counter() - start
        with Store(db, read_only=True) as store:
            paragraphs = store.query("SELECT text FROM paragraphs")["text"].tolist()
            urls = store.query("SELECT url FROM documents WHERE kind = 'html'")["url"].tolist()

    pages = [root / (u.split("/", 3)[3] if len(u.split("/", 3)) > 3 else "") for u in urls]
    html = [(p / "index.html" if p.is_dir() else p).read_text("utf-8") for p in pages]
    start = time.perf_counter()
    for text in html:
        trafilatura.extract(text, include_comments=False)
    raw_clean = time.perf_counter() - start

    model = SentenceTransformer(str(EmbedSettings().model_path), device="cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    model.encode(["passage: " + p for p in paragraphs], batch_size=32, normalize_embeddings=True)
    raw_embed = time.perf_counter() - start

    n_pages, n_paras = summary["pages_fetched"], len(paragraphs)
    raw = raw_clean + raw_embed
    rows = [
        ("samverkan flow (all stages)", ours, n_pages / ours, n_paras / ours),
        ("raw trafilatura.extract", raw_clean, len(html) / raw_clean, float("nan")),
        ("raw sentence-transformers", raw_embed, float("nan"), n_paras / raw_embed),
        ("raw sum (clean + embed)", raw, n_pages / raw, n_paras / raw),
    ]
    print(f"demo site: {n_pages} pages, {n_paras} paragraphs, device {model.device}, torch threads {torch.get_num_threads()}")
    print(f"{'what':32} {'seconds':>8} {'pages/s':>8} {'paras/s':>8}")
    for name, secs, pps, paras in rows:
        print(f"{name:32} {secs:8.2f} {pps:8.2f} {paras:8.1f}")
    print(f"overhead of the whole pipeline vs raw clean + embed: {ours / raw:.2f}x")


if __name__ == "__main__":
    main()
