"""Scale-out benchmark: one generated site crawled locally and on Dask LocalClusters of 1 and 2 workers.

Each configuration crawls the same generated site (served on 127.0.0.1) into a fresh database
and reports wall time, pages/s overall and per stage:

* fetch: pages / wall seconds of the crawl (network- and politeness-bound, one task per source);
* clean, nlp, embed: pages / seconds summed over the processing tasks (per-worker throughput)
  and the stage's share of all processing seconds;
* load: pages / seconds the single loader spent merging staged batches into DuckDB.

Worker start-up (process spawn) is reported apart; model loading happens in each worker's first
batch and counts in its nlp/embed seconds, as it would on a real cluster.

Usage: .venv/bin/python bench/bench_scale.py [--pages 1000] [--workers 1,2] [--no-local] [--nlp-model DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from flows.crawl import crawl_flow  # noqa: E402
from sitegen import GeneratedSite  # noqa: E402

STAGES = ("fetch", "clean", "nlp", "embed", "load")


def crawl_once(site: GeneratedSite, tmp: Path, label: str, pages: int, address: str | None,
               nlp_model: str | None = None) -> dict:
    """Crawl the site into a fresh database; return the run summary with the wall time."""
    sources = tmp / f"{label}.yaml"
    sources.write_text(yaml.safe_dump({"sources": [{
        "name": "gen", "start_urls": [site.base_url + "/"], "allowed_hosts": ["127.0.0.1"],
        "delay": 0, "allow_private": True, "page_limit": pages + 10, "max_depth": 1000}]}))
    start = time.perf_counter()
    summary = crawl_flow("gen", sources_file=str(sources), db=str(tmp / f"{label}.duckdb"), dask_address=address,
                         nlp_model=nlp_model)
    return {**summary, "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--workers", default="1,2", help="comma-separated Dask worker counts")
    parser.add_argument("--no-local", action="store_true", help="skip the local (thread) reference run")
    parser.add_argument("--nlp-model", action="append",
                        help="spaCy pipeline for the local runs (repeatable: one local run each; default: the shipped one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    from distributed import LocalCluster

    results = []
    with tempfile.TemporaryDirectory() as tmp, GeneratedSite(args.pages) as site:
        for i, model in enumerate([] if args.no_local else args.nlp_model or [None]):
            name = f", {Path(model).name}" if model else ""
            results.append({"config": f"local (threads, no Dask){name}", "startup": 0.0,
                            **crawl_once(site, Path(tmp), f"local{i}", args.pages, None, model)})
        for n in [int(w) for w in args.workers.split(",") if w]:
            start = time.perf_counter()
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                              host="127.0.0.1") as cluster:
                startup = time.perf_counter() - start
                results.append({"config": f"Dask LocalCluster, {n} worker{'s' * (n > 1)}", "startup": startup,
                                **crawl_once(site, Path(tmp), f"dask{n}", args.pages, cluster.scheduler_address)})

    print(f"\ngenerated site: {args.pages} pages; pages/s per stage (processing stages: per worker-second)")
    header = ["configuration", "start-up s", "wall s", "pages", "pages/s"] + [f"{s} p/s" for s in STAGES] + ["clean/nlp/embed share"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        pages = r["pages_fetched"]
        processing = sum(r[f"seconds_{s}"] for s in ("clean", "nlp", "embed")) or 1.0
        rates = [pages / r[f"seconds_{s}"] if r[f"seconds_{s}"] else float("nan") for s in STAGES]
        share = " / ".join(f"{100 * r[f'seconds_{s}'] / processing:.0f} %" for s in ("clean", "nlp", "embed"))
        cells = [r["config"], f"{r['startup']:.1f}", f"{r['wall']:.1f}", str(pages), f"{pages / r['wall']:.2f}"]
        print("| " + " | ".join(cells + [f"{x:.1f}" for x in rates] + [share]) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
