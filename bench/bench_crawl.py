"""Incremental recrawl benchmark on a generated 1,000-page site served on 127.0.0.1.

1. First crawl (full pipeline: fetch → clean → nlp → embed → store).
2. Second crawl with nothing changed: time, ratio to the first, pages re-processed (target 0).
3. Ten pages changed: exactly those ten are re-processed.

Usage: .venv/bin/python bench/bench_crawl.py [--pages 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from flows.crawl import crawl_flow  # noqa: E402
from pipeline.fetch import canonicalize  # noqa: E402
from pipeline.store import Store  # noqa: E402
from sitegen import GeneratedSite  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, GeneratedSite(args.pages) as site:
        sources = Path(tmp) / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [{
            "name": "gen", "start_urls": [site.base_url + "/"], "allowed_hosts": ["127.0.0.1"],
            "delay": 0, "allow_private": True, "page_limit": args.pages + 10, "max_depth": 1000}]}))
        db = str(Path(tmp) / "crawl.duckdb")
        rows = []
        for label, change in (("first crawl", None), ("recrawl, nothing changed", None), ("recrawl, 10 pages changed", range(0, args.pages, args.pages // 10))):
            if change is not None:
                site.change(change)
            before = len(site.requests)
            start = time.perf_counter()
            summary = crawl_flow("gen", sources_file=str(sources), db=db)
            seconds = time.perf_counter() - start
            with Store(db, read_only=True) as store:
                updated = store.query("SELECT url FROM documents WHERE version > 1")["url"].tolist()
            rows.append((label, seconds, len(site.requests) - before, summary["documents"], summary["pages_unchanged"], updated))
        expected = sorted(canonicalize(site.url(i)) for i in change)

    first = rows[0][1]
    print(f"\ngenerated site: {args.pages} pages")
    print(f"{'run':28} {'seconds':>8} {'ratio':>7} {'HTTP requests':>14} {'re-processed':>13} {'unchanged':>10}")
    for label, seconds, requests, processed, unchanged, _ in rows:
        print(f"{label:28} {seconds:8.1f} {seconds / first:7.3f} {requests:14d} {processed:13d} {unchanged:10d}")
    print(f"changed pages re-processed exactly: {sorted(rows[2][5]) == expected} ({len(rows[2][5])} of {len(expected)})")


if __name__ == "__main__":
    main()
