"""Prefect flow: crawl one source and load it into DuckDB.

sources → fetch → clean → nlp → embed → store, one task per stage; each task calls library
functions and holds no logic of its own. Fetching writes every few pages (fetch log,
frontier, staged bodies) so a killed run resumes where it stopped; processing then works
through the staged pages in batches. The database is opened for each write and closed
again, so readers in other processes are locked out only for a moment.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from collections import Counter
from functools import cache
from itertools import islice
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from pipeline import clean, embed, fetch, nlp, search, sources
from pipeline.records import AnnotatedDocument, Document, EmbeddedDocument, Source
from pipeline.store import DEFAULT_DB, Store

FETCH_BATCH = 8  # fetched pages per write while crawling (results without a body: up to 50 times more)
PROCESS_BATCH = 16  # pages per clean → nlp → embed → store round


def batched(items, size: int):
    """Successive lists of at most ``size`` items (itertools.batched arrives in Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def fetch_batches(results, size: int = FETCH_BATCH):
    """Batches to write while crawling: ``size`` fetched bodies, or many more results that
    carry none (skipped, not modified), so an unchanged site costs few writes."""
    batch, bodies = [], 0
    for result in results:
        batch.append(result)
        bodies += result.outcome == "ok"
        if bodies >= size or len(batch) >= 50 * size:
            yield batch
            batch, bodies = [], 0
    if batch:
        yield batch


@cache
def _nlp(model: str | None):
    return nlp.load(model)


@cache
def _embedder(model_path: str | None):
    settings = embed.EmbedSettings() if model_path is None else embed.EmbedSettings(model_path=Path(model_path))
    return embed.load_model(settings)


@task(retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def fetch_task(source: Source, db: str, run_id: str) -> dict:
    """Crawl the source, resuming an interrupted crawl; record and stage pages as they come."""
    with Store(db) as store:
        known = {
            url: fetch.PageState(etag=p.etag, last_modified=p.last_modified, fetched_at=p.fetched_at)
            for url, p in store.known_pages(source.name).items()
        }
        queue, seen = store.open_cycle(source.name)
    if seen:  # resuming a killed run: the page limit counts what it already fetched
        source = replace(source, page_limit=max(1, source.page_limit - len(seen)))
    settings = fetch.FetchSettings(delay=source.delay, allow_private=source.allow_private)
    outcomes: Counter[str] = Counter()
    failed: list[tuple[str, str]] = []
    progress = CrawlProgress(source.name, already=len(seen))
    pages = fetch.crawl(source, settings, known=known, queue=queue or None, seen=seen, progress=progress)
    for batch in fetch_batches(pages):
        with Store(db) as store:
            outcomes["same_body"] += store.record_fetches(run_id, batch)
        outcomes.update(r.outcome for r in batch)
        failed += [(r.url, r.error or r.outcome) for r in batch if r.outcome == "failed"]
    with Store(db) as store:
        store.close_cycle(source.name)
    progress.finish()
    return {"outcomes": dict(outcomes), "failed": failed}


class CrawlProgress:
    """Shows crawl progress (pages done / queued, per host) in the log and as a Prefect progress artifact."""

    def __init__(self, source: str, already: int = 0, every: float = 2.0):
        self.logger = get_run_logger()
        self.already = already
        self.every = every
        self._last = 0.0
        self._hosts: dict[str, dict[str, int]] = {}
        self.artifact = create_progress_artifact(0.0, key=f"crawl-progress-{source}", description=f"Crawl of {source}")

    def __call__(self, hosts: dict[str, dict[str, int]]) -> None:
        self._hosts = hosts
        if time.monotonic() - self._last >= self.every:
            self._report()

    def finish(self) -> None:
        self._report()
        update_progress_artifact(self.artifact, 100.0)

    def _report(self) -> None:
        self._last = time.monotonic()
        done = self.already + sum(h["done"] for h in self._hosts.values())
        queued = sum(h["queued"] for h in self._hosts.values())
        per_host = ", ".join(f"{host}: {h['done']} done / {h['queued']} queued" for host, h in self._hosts.items())
        self.logger.info("crawl progress: %d done, %d queued (%s)", done, queued, per_host or "starting")
        update_progress_artifact(self.artifact, 100.0 * done / max(1, done + queued))


@task(cache_policy=NO_CACHE)
def staged_task(source: str, db: str) -> list[str]:
    """URLs fetched but not yet processed (this run's and any a killed run left)."""
    with Store(db) as store:
        return store.staged_urls(source)


@task(cache_policy=NO_CACHE)
def clean_task(urls: list[str], source: str, db: str, run_id: str) -> tuple[list[Document], int]:
    """Clean staged pages; return the documents whose text changed and how many did not."""
    with Store(db) as store:
        pages, known_boilerplate, suppressed = store.staged_pages(urls), store.boilerplate(source), store.suppression()
    batch = clean.clean_batch(pages, known_boilerplate, suppressed=suppressed)  # the file is free for readers meanwhile
    with Store(db) as store:
        store.save_boilerplate(source, batch.boilerplate)
        store.record_failures(run_id, source, batch.failures)
        changed = [d for d in batch.documents if not store.unchanged(d.url, d.content_hash)]
    return changed, len(batch.documents) - len(changed)


@task(cache_policy=NO_CACHE)
def nlp_task(documents: list[Document], model: str | None) -> list[AnnotatedDocument]:
    """Run the spaCy pipeline and the extractors."""
    return nlp.annotate(_nlp(model), documents)


@task(cache_policy=NO_CACHE)
def embed_task(annotated: list[AnnotatedDocument], db: str, model_path: str | None) -> list[EmbeddedDocument]:
    """Embed every paragraph, reusing stored vectors of paragraphs seen before."""
    with Store(db) as store:
        known = store.embeddings_for(embed.paragraph_keys(annotated))
    return embed.embed_documents(_embedder(model_path), annotated, known)


@task(cache_policy=NO_CACHE)
def store_task(embedded: list[EmbeddedDocument], processed: list[str], db: str) -> dict[str, int]:
    """Write documents, paragraphs and extractions, and unstage the batch, in one transaction;
    then bring the vector index in step."""
    with Store(db) as store:
        counts = store.save_documents(embedded, processed=processed)
        store.update_search_index()
    return counts


@task(cache_policy=NO_CACHE)
def finish_task(db: str, run_id: str, summary: dict[str, int]) -> None:
    """Rebuild the full-text indexes when something changed and record the run's summary."""
    with Store(db) as store:
        if summary["documents"]:
            store.rebuild_fts(search.stopwords())
            store.update_search_index(full_text=True)
        store.finish_run(run_id, summary)


@flow(name="samverkan-crawl", log_prints=True)
def crawl_flow(
    source_name: str,
    sources_file: str | None = None,
    db: str = str(DEFAULT_DB),
    nlp_model: str | None = None,
    embed_model: str | None = None,
) -> dict[str, int]:
    """Crawl one configured source into the database and publish a run summary."""
    logger = get_run_logger()
    config = sources.load_sources(sources_file or sources.DEFAULT_SOURCES_FILE)
    source = sources.get_source(config, source_name)
    run_id = uuid.uuid4().hex[:12]
    with Store(db) as store:
        store.sync_sources([source])
        store.start_run(run_id, source.name)
    fetched = fetch_task(source, db, run_id)
    totals = Counter({"documents": 0, "paragraphs": 0, "entities": 0})
    same_text = 0
    for urls in batched(staged_task(source.name, db), PROCESS_BATCH):
        documents, unchanged = clean_task(urls, source.name, db, run_id)
        same_text += unchanged
        embedded = embed_task(nlp_task(documents, nlp_model), db, embed_model) if documents else []
        totals.update(store_task(embedded, urls, db))
    summary = summarise(fetched["outcomes"], same_text, dict(totals))
    finish_task(db, run_id, summary)
    report = summary_markdown(source.name, run_id, summary, fetched["failed"])
    create_markdown_artifact(markdown=report, key=f"crawl-summary-{source.name}", description="samverkan crawl summary")
    logger.info("run %s finished: %s", run_id, summary)
    print(report)
    return summary


def summarise(outcomes: dict[str, int], same_text: int, totals: dict[str, int]) -> dict[str, int]:
    """Counts of one run: pages fetched / unchanged / failed, and what was stored."""
    return {
        "pages_fetched": outcomes.get("ok", 0),
        "pages_unchanged": outcomes.get("not_modified", 0) + outcomes.get("skipped", 0)
        + outcomes.get("same_body", 0) + same_text,
        "pages_failed": outcomes.get("failed", 0),
        "pages_gone": outcomes.get("gone", 0),
        **totals,
    }


def summary_markdown(source: str, run_id: str, summary: dict[str, int], failed: list[tuple[str, str]]) -> str:
    """The run summary as a Markdown table (the Prefect artifact and the printed report)."""
    lines = [f"## samverkan crawl of `{source}` (run {run_id})", "", "| measure | count |", "|---|---:|"]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in summary.items()]
    if failed:
        lines += ["", "### Failed fetches", "", "| url | reason |", "|---|---|"]
        lines += [f"| {url} | {reason} |" for url, reason in failed[:50]]
    return "\n".join(lines)
