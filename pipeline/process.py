"""Per-page work on one batch of staged pages: clean → nlp → embed, written to Parquet staging.

This is what runs on a worker (a thread here, or a Dask worker elsewhere). It never opens the
database: everything it needs to know about stored data comes in a ``BatchContext`` that the
loader's side prepares, and its results go to ``pipeline.staging`` for the loader to merge.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from pipeline import clean, embed, nlp
from pipeline.records import FetchResult
from pipeline.staging import Batch, DocumentBatch, StagingArea


@dataclass
class BatchContext:
    """What a processing batch needs from the database, read by the loader before it is sent."""

    boilerplate: Collection[str] = ()  # the source's known boilerplate fingerprints
    suppressed: tuple[str, Collection[str]] = ("", ())  # (salt, salted hashes of erased names)
    text_hashes: Mapping[str, str] = field(default_factory=dict)  # url → stored cleaned-text hash
    embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)  # paragraph key → stored vector


@dataclass(frozen=True)
class Models:
    """Which models the workers load (None: the defaults)."""

    nlp_model: str | None = None
    embed_model: str | None = None


_lock = threading.Lock()


def process_pages(
    pages: list[FetchResult], context: BatchContext, models: Models, staging: StagingArea, run_id: str, seq: int
) -> tuple[Batch, dict[str, float]]:
    """Clean, annotate and embed one batch of staged pages of one source and stage the result.

    Pages whose cleaned text equals the stored document's are consumed without being processed
    further. Returns the staged batch and the seconds spent in each stage.
    """
    source = pages[0].source if pages else ""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cleaned = clean.clean_batch(pages, context.boilerplate, suppressed=context.suppressed)
    changed = [d for d in cleaned.documents if context.text_hashes.get(d.url) != d.content_hash]
    seconds["clean"] = time.perf_counter() - started
    started = time.perf_counter()
    annotated = nlp.annotate(_nlp(models.nlp_model), changed) if changed else []
    seconds["nlp"] = time.perf_counter() - started
    started = time.perf_counter()
    embedded = embed.embed_documents(embedder(models.embed_model), annotated, context.embeddings) if annotated else []
    seconds["embed"] = time.perf_counter() - started
    result = DocumentBatch(
        documents=embedded,
        processed=[p.url for p in pages],
        failures=cleaned.failures,
        boilerplate=sorted(set(cleaned.boilerplate) - set(context.boilerplate)),
        seconds=seconds,
    )
    return staging.write_documents(source, run_id, seq, result), seconds


def _nlp(model: str | None):
    with _lock:  # one load per process, even when two threads ask at once
        return _load_nlp(model)


def embedder(model_path: str | None = None):
    """The embedding model, loaded once per process."""
    with _lock:
        return _load_embedder(model_path)


@cache
def _load_nlp(model: str | None):
    return nlp.load(model)


@cache
def _load_embedder(model_path: str | None):
    settings = embed.EmbedSettings() if model_path is None else embed.EmbedSettings(model_path=Path(model_path))
    return embed.load_model(settings)
