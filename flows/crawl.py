"""Prefect flow: crawl one source and load it into DuckDB.

sources → fetch → clean → nlp → embed → store. The per-page work runs as tasks on the flow's
task runner — threads in this process, or a Dask cluster (``prefect-dask``) when given a
scheduler address. Tasks never write the database: each writes its results as a Parquet batch
(``pipeline.staging``) and the flow itself, the single loader, merges the batches into DuckDB
in order (``pipeline.load``), opening the file only for each merge. A run killed at any point
resumes: staged batches it left are merged first, the crawl continues from its frontier.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import islice

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline import embed, fetch, load, search, sources
from pipeline.process import BatchContext, Models, embedder, process_pages
from pipeline.records import Source
from pipeline.staging import Batch, StagingArea
from pipeline.store import DEFAULT_DB, Store

FETCH_BATCH = 8  # fetched pages per staged batch (results without a body: up to 50 times more)
PROCESS_BATCH = 16  # pages per clean → nlp → embed task
FETCH_ATTEMPTS = 3  # a failed crawl task is resumed from its frontier this many times in all
POLL_SECONDS = 0.5  # how often the loader looks for new fetch batches


def batched(items, size: int):
    """Successive lists of at most ``size`` items (itertools.batched arrives in Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def fetch_batches(results, size: int = FETCH_BATCH):
    """Batches to stage while crawling: ``size`` fetched bodies, or many more results that
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


def new_run_id() -> str:
    """A run id that sorts by start time (staged batches are merged in that order)."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class CrawlState:
    """Where a crawl of one source starts: stored validators, and the frontier of an unfinished cycle."""

    known: dict[str, fetch.PageState]
    queue: list[tuple[str, int]]
    seen: set[str]


def crawl_state(store: Store, source: str) -> CrawlState:
    """Read the crawl state of ``source`` (opening a new crawl cycle unless one is unfinished)."""
    known = {url: fetch.PageState(etag=p.etag, last_modified=p.last_modified, fetched_at=p.fetched_at)
             for url, p in store.known_pages(source).items()}
    queue, seen = store.open_cycle(source)
    return CrawlState(known, queue, seen)


@task(cache_policy=NO_CACHE)
def fetch_task(source: Source, state: CrawlState, staging_root: str, run_id: str, first_seq: int) -> int:
    """Crawl the source from ``state``, staging the results every few pages; return the batch count."""
    if state.seen:  # resuming: the page limit counts what the cycle fetched already
        source = replace(source, page_limit=max(1, source.page_limit - len(state.seen)))
    settings = fetch.FetchSettings(delay=source.delay, allow_private=source.allow_private)
    progress = CrawlProgress(source.name, already=len(state.seen))
    pages = fetch.crawl(source, settings, known=state.known, queue=state.queue or None, seen=state.seen, progress=progress)
    staging, count = StagingArea(staging_root), 0
    for count, batch in enumerate(fetch_batches(pages), start=1):
        staging.write_fetches(source.name, run_id, first_seq + count, batch)
    progress.finish()
    return count


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
def process_task(pages, context: BatchContext, models: Models, staging_root: str, run_id: str, seq: int) -> Batch:
    """Clean, annotate and embed one batch of staged pages; stage the result as Parquet."""
    batch, seconds = process_pages(pages, context, models, StagingArea(staging_root), run_id, seq)
    get_run_logger().info("batch %d: %d pages in %s", seq, len(pages), {k: round(v, 2) for k, v in seconds.items()})
    return batch


class Tally:
    """Running totals of what the loader merged during one run."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.seconds: Counter = Counter()
        self.failed: list[tuple[str, str]] = []

    def add(self, merged: list[load.Loaded]) -> None:
        for item in merged:
            self.counts.update(item.counts)
            self.seconds.update(item.seconds)
            self.failed += item.failed


@flow(name="samverkan-crawl", log_prints=True)
def crawl_flow(
    source_name: str,
    sources_file: str | None = None,
    db: str = str(DEFAULT_DB),
    nlp_model: str | None = None,
    embed_model: str | None = None,
    dask_address: str | None = None,
    staging_dir: str | None = None,
    keep_staging: bool | None = None,
    parallel: int | None = None,
) -> dict[str, float]:
    """Crawl one configured source into the database and publish a run summary.

    The per-page work runs on the Dask cluster named by ``dask_address`` or by the sources
    file's ``cluster`` section, else on threads here (see ``crawl_source`` for the arguments).
    """
    sources_file = str(sources_file or sources.DEFAULT_SOURCES_FILE)
    cluster = sources.load_cluster(sources_file)
    address = dask_address or cluster.dask
    if address:
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=address)
    else:
        runner = ThreadPoolTaskRunner(max_workers=2)  # the crawl, and one processing batch beside it
    return crawl_source.with_options(task_runner=runner)(
        source_name, sources_file, db, nlp_model, embed_model, staging_dir or cluster.staging,
        cluster.keep_staging if keep_staging is None else keep_staging, parallel)


@flow(name="samverkan-crawl-source", log_prints=True)
def crawl_source(
    source_name: str,
    sources_file: str,
    db: str,
    nlp_model: str | None = None,
    embed_model: str | None = None,
    staging_dir: str | None = None,
    keep_staging: bool = False,
    parallel: int | None = None,
) -> dict[str, float]:
    """Crawl one source on the flow's task runner; the flow itself is the single loader.

    Args:
        source_name: the source in the sources file.
        sources_file: sources YAML.
        db: DuckDB file.
        nlp_model, embed_model: model paths (default: the shipped ones).
        staging_dir: Parquet staging folder shared with the workers (default ``<db>.staging``).
        keep_staging: keep merged document batches (for inspection or replay) instead of deleting them.
        parallel: processing batches in flight at once (default: twice the Dask cluster's threads, else 1).
    """
    logger = get_run_logger()
    source = sources.get_source(sources.load_sources(sources_file), source_name)
    staging = StagingArea.for_database(db, staging_dir)
    run_id, tally = new_run_id(), Tally()
    with Store(db) as store:
        store.sync_sources([source])
        store.start_run(run_id, source.name)
        tally.add(load.load_pending(store, staging, source.name, keep_staging))  # what a killed run left

    started = time.perf_counter()
    urls = crawl_and_load(source, db, staging, run_id, tally, keep_staging)
    tally.seconds["fetch"] = time.perf_counter() - started
    process_and_load(source.name, urls, db, staging, run_id, tally, keep_staging,
                     Models(nlp_model, embed_model), parallel or _cluster_slots())
    renew_embeddings_task(db, embed_model)
    summary = summarise(tally)
    finish_task(db, run_id, summary)
    report = summary_markdown(source.name, run_id, summary, tally.failed)
    create_markdown_artifact(markdown=report, key=f"crawl-summary-{source.name}", description="samverkan crawl summary")
    logger.info("run %s finished: %s", run_id, summary)
    print(report)
    return summary


def crawl_and_load(source: Source, db: str, staging: StagingArea, run_id: str, tally: Tally, keep: bool) -> list[str]:
    """Run the crawl task, merging its staged batches while it runs; resume it from its frontier
    if it fails. Returns the URLs staged for processing."""
    for attempt in range(FETCH_ATTEMPTS):
        with Store(db) as store:
            state = crawl_state(store, source.name)
        crawling = fetch_task.submit(source, state, str(staging.root), run_id, attempt * 10_000)
        while not crawling.state.is_final():
            crawling.wait(POLL_SECONDS)
            _load_new(db, staging, source.name, tally, keep)
        _load_new(db, staging, source.name, tally, keep)
        if crawling.state.is_completed():
            break
        get_run_logger().warning("crawl of %s failed (attempt %d of %d): %s", source.name, attempt + 1,
                                 FETCH_ATTEMPTS, crawling.state.message)
    else:
        crawling.result()  # raises the crawl's error; what it staged is merged and resumes next run
    with Store(db) as store:
        store.close_cycle(source.name)
        return store.staged_urls(source.name)


def process_and_load(source: str, urls: list[str], db: str, staging: StagingArea, run_id: str, tally: Tally,
                     keep: bool, models: Models, slots: int) -> None:
    """Process the staged pages in batches, ``slots`` at a time, merging results in submission order.
    Every batch gets the boilerplate known when processing began, so the tables do not depend on
    how many batches run at once (local and distributed runs load the same)."""
    in_flight = []
    with Store(db) as store:
        boilerplate, suppressed = store.boilerplate(source), store.suppression()
    for seq, chunk in enumerate(batched(urls, PROCESS_BATCH), start=1):
        with Store(db) as store:
            pages = store.staged_pages(chunk)
            context = BatchContext(boilerplate, suppressed, store.text_hashes(chunk), store.page_embeddings(chunk))
        in_flight.append((process_task.submit(pages, context, models, str(staging.root), run_id, seq), chunk))
        if len(in_flight) >= slots:
            _merge(*in_flight.pop(0), db, staging, run_id, source, tally, keep)
    for future, chunk in in_flight:
        _merge(future, chunk, db, staging, run_id, source, tally, keep)


def _load_new(db: str, staging: StagingArea, source: str, tally: Tally, keep: bool) -> None:
    """Merge the source's new staged batches; the database is opened only when there are some."""
    if staging.pending(source):
        with Store(db) as store:
            tally.add(load.load_pending(store, staging, source, keep))


def _cluster_slots() -> int:
    """Batches to keep in flight: twice the threads of the flow's Dask cluster, or one when local."""
    client = getattr(FlowRunContext.get().task_runner, "client", None)
    return 2 * sum(client.nthreads().values()) if client is not None else 1


def _merge(future, urls: list[str], db: str, staging: StagingArea, run_id: str, source: str, tally: Tally,
           keep: bool) -> None:
    """Merge a processing task's batch; if the task failed, record its pages as failed (they stay
    staged, so the next run tries them again) and go on with the other batches."""
    try:
        batch = future.result()
    except Exception as exc:
        get_run_logger().error("processing %d pages of %s failed: %s", len(urls), source, exc)
        reason = f"processing error: {type(exc).__name__}: {exc}"[:500]
        with Store(db) as store:
            store.record_failures(run_id, source, [(url, reason) for url in urls])
        tally.counts["failed"] += len(urls)
        tally.failed += [(url, reason) for url in urls]
        return
    with Store(db) as store:
        if merged := load.load_batch(store, staging, batch, keep):
            tally.add([merged])
        store.update_search_index()


@task(cache_policy=NO_CACHE)
def renew_embeddings_task(db: str, embed_model: str | None) -> int:
    """Once after an upgrade: embed again the paragraphs stored before titles were embedded with them."""
    with Store(db) as store:
        stale = store.stale_embeddings()
    vectors = embed.embed_passages(embedder(embed_model), [text for *_, text in stale]) if stale else None
    with Store(db) as store:
        if stale:
            store.set_embeddings([para_id for para_id, *_ in stale], vectors, [key for _, key, _ in stale])
            store.update_search_index()
        store.stale_embeddings_renewed()
    return len(stale)


@task(cache_policy=NO_CACHE)
def finish_task(db: str, run_id: str, summary: dict[str, float]) -> None:
    """Rebuild the full-text indexes when something changed and record the run's summary."""
    with Store(db) as store:
        if summary["documents"]:
            store.rebuild_fts(search.stopwords())
            store.update_search_index(full_text=True)
        store.finish_run(run_id, summary)


def summarise(tally: Tally) -> dict[str, float]:
    """Counts of one run (pages fetched / unchanged / failed, what was stored) and seconds per stage."""
    c = tally.counts
    return {
        "pages_fetched": c["ok"],
        "pages_unchanged": c["not_modified"] + c["skipped"] + c["same_body"] + c["same_text"],
        "pages_failed": c["failed"],
        "pages_gone": c["gone"],
        "documents": c["documents"],
        "paragraphs": c["paragraphs"],
        "entities": c["entities"],
        **{f"seconds_{stage}": round(tally.seconds[stage], 2) for stage in ("fetch", "clean", "nlp", "embed", "load")},
    }


def summary_markdown(source: str, run_id: str, summary: dict[str, float], failed: list[tuple[str, str]]) -> str:
    """The run summary as a Markdown table (the Prefect artifact and the printed report)."""
    lines = [f"## samverkan crawl of `{source}` (run {run_id})", "", "| measure | count |", "|---|---:|"]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in summary.items()]
    if failed:
        lines += ["", "### Failed fetches", "", "| url | reason |", "|---|---|"]
        lines += [f"| {url} | {reason} |" for url, reason in failed[:50]]
    return "\n".join(lines)
