"""The loader: merges staged Parquet batches into DuckDB, each exactly once.

A batch is merged in one transaction together with its row in ``loaded_batches``; a batch
found there already is skipped, so loading a batch twice (a retried task, a rerun after a
crash) changes nothing. Merged files are deleted, or with ``keep`` their ``docs`` batches are moved to ``merged/``
(raw page bodies are never kept once merged).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from pipeline.staging import Batch, StagingArea
from pipeline.store import Store

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """What merging one batch did."""

    batch: Batch
    counts: Counter = field(default_factory=Counter)  # fetch outcomes, or documents/paragraphs/entities
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)
    seconds: dict[str, float] = field(default_factory=dict)  # stage timings reported by the batch


def load_batch(store: Store, staging: StagingArea, batch: Batch, keep: bool = False) -> Loaded | None:
    """Merge one staged batch into the database; None when it had been merged before."""
    started = time.perf_counter()
    if store.is_loaded(batch.batch_id):
        log.debug("batch %s was loaded before: skipped", batch.batch_id)
        _done(staging, batch, keep)
        return None
    loaded = Loaded(batch)
    if batch.kind == "fetch":
        results = staging.read_fetches(batch)
        with store.transaction():
            same_body = store.record_fetches(batch.run_id, results)
            store.mark_loaded(batch.batch_id, batch.source, batch.run_id, batch.kind, len(results))
        loaded.counts.update(r.outcome for r in results)
        loaded.counts["same_body"] += same_body
        loaded.failed = [(r.url, r.error or r.outcome) for r in results if r.outcome == "failed"]
    else:
        docs = staging.read_documents(batch)
        with store.transaction():
            store.save_boilerplate(batch.source, docs.boilerplate)
            store.record_failures(batch.run_id, batch.source, docs.failures)
            loaded.counts.update(store.save_documents(docs.documents, processed=docs.processed))
            store.mark_loaded(batch.batch_id, batch.source, batch.run_id, batch.kind, len(docs.documents))
        loaded.counts["same_text"] += len(docs.processed) - len(docs.documents) - len(docs.failures)
        loaded.seconds = dict(docs.seconds)
    _done(staging, batch, keep)
    loaded.seconds["load"] = time.perf_counter() - started
    return loaded


def _done(staging: StagingArea, batch: Batch, keep: bool) -> None:
    if keep and batch.kind == "docs":
        staging.archive(batch)
    else:
        staging.remove(batch)


def load_pending(store: Store, staging: StagingArea, source: str | None = None, keep: bool = False) -> list[Loaded]:
    """Merge every staged batch not yet merged (of one source, or all), oldest first."""
    return [done for batch in staging.pending(source) if (done := load_batch(store, staging, batch, keep))]
