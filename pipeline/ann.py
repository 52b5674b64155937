"""Approximate nearest-neighbour index over paragraph embeddings, kept in step with DuckDB.

The index is a FAISS inverted-file index (``IndexIVFFlat``, inner product on unit vectors =
cosine): k-means cells over the vectors, of which a search scans the ``nprobe`` nearest.
Below ``ivf_from`` vectors it has a single cell, i.e. it is an exact search. It is saved next
to the database as ``<db>.search/vectors.faiss`` with ``state.json``.

Each indexed paragraph has an integer label; the DuckDB table ``search_items (label, para_id,
text_hash)`` records what the index holds, and ``search_state.generation`` is bumped on every
change. The files carry the generation they were written at, so a reader knows when they
are out of step.

``sync`` brings the index in step after a batch of writes: new paragraphs are added, changed
ones (same id, new text hash) get their vector replaced, deleted ones are removed. It rebuilds
from scratch (new cells) when the files are missing, unreadable or of another generation, or
when the number of vectors has grown or shrunk fourfold since the cells were trained.

Files are written to temporary names and renamed (the index first, then the state), and the
table is committed before the renames, so a crash at any point leaves either a consistent
pair or a generation mismatch that the next ``sync`` repairs by rebuilding.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

DIM = 384
STATE_FILE = "state.json"
INDEX_FILE = "vectors.faiss"


@dataclass(frozen=True)
class AnnSettings:
    """Knobs of the vector index.

    Attributes:
        ivf_from: from this many vectors on the index is split into cells (below: exact).
        cells_per_sqrt: number of cells = cells_per_sqrt × √n.
        train_per_cell: k-means training sample per cell.
        probe_share: share of the cells scanned per search (more: higher recall, slower).
        min_nprobe: scan at least this many cells.
        filtered_factor: with a filter applied inside the scan, this many times more cells.
        exact_below: filtered searches over at most this many paragraphs scan every cell (exact).
        threads: threads for building (0: all cores); searches use one.
    """

    ivf_from: int = 20_000
    cells_per_sqrt: float = 4.0
    train_per_cell: int = 40
    probe_share: float = 0.03
    min_nprobe: int = 16
    filtered_factor: int = 4
    exact_below: int = 50_000
    threads: int = 0


def index_dir(db_path: str | Path) -> Path | None:
    """Where the index files of a database live (None for an in-memory database)."""
    if str(db_path) == ":memory:":
        return None
    return Path(str(db_path) + ".search")


def generation(con: duckdb.DuckDBPyConnection) -> int:
    """The database's search generation (0 before the first sync)."""
    row = con.execute("SELECT value FROM search_state WHERE name = 'generation'").fetchone()
    return int(row[0]) if row else 0


class AnnIndex:
    """A FAISS IVF index, the generation of the database it mirrors, and its live count."""

    def __init__(self, index, generation: int, settings: AnnSettings, count: int = 0, trained_on: int = 0):
        self.index = index
        self.generation = generation
        self.settings = settings
        self.count = count  # live vectors
        self.trained_on = trained_on  # vectors the cells were trained for
        self._lock = threading.Lock()

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray, settings: AnnSettings = AnnSettings(),
              seed: int = 0) -> "AnnIndex":
        """Train the cells on (a sample of) ``vectors`` and add them all under ``labels``."""
        import faiss

        faiss.omp_set_num_threads(settings.threads or os.cpu_count() or 1)
        n = len(vectors)
        cells = 1 if n < settings.ivf_from else max(1, int(settings.cells_per_sqrt * math.sqrt(n)))
        quantizer = faiss.IndexFlatIP(DIM)
        index = faiss.IndexIVFFlat(quantizer, DIM, cells, faiss.METRIC_INNER_PRODUCT)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        sample = vectors
        if n > cells * settings.train_per_cell:
            sample = vectors[np.random.default_rng(seed).choice(n, cells * settings.train_per_cell, replace=False)]
        index.train(np.ascontiguousarray(sample, dtype=np.float32) if n else np.zeros((1, DIM), dtype=np.float32))
        if n:
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(labels, dtype=np.int64))
        faiss.omp_set_num_threads(1)
        return cls(index, 0, settings, n, max(n, 1))

    @classmethod
    def load(cls, directory: Path, settings: AnnSettings = AnnSettings()) -> "AnnIndex | None":
        """The saved index in ``directory``, or None when there is none or it is unreadable."""
        import faiss

        try:
            state = json.loads((directory / STATE_FILE).read_text())
            index = faiss.read_index(str(directory / INDEX_FILE))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.info("no usable ANN index in %s (%s)", directory, exc)
            return None
        faiss.omp_set_num_threads(1)
        return cls(index, int(state["generation"]), settings, int(state["count"]), int(state["trained_on"]))

    def save(self, directory: Path) -> None:
        """Write the index, then the state, each to a temporary name renamed into place."""
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        index_tmp, state_tmp = directory / (INDEX_FILE + ".tmp"), directory / (STATE_FILE + ".tmp")
        faiss.write_index(self.index, str(index_tmp))
        state = {"generation": self.generation, "count": self.count, "trained_on": self.trained_on,
                 "cells": self.index.nlist, "settings": asdict(self.settings)}
        state_tmp.write_text(json.dumps(state))
        os.replace(index_tmp, directory / INDEX_FILE)
        os.replace(state_tmp, directory / STATE_FILE)

    @property
    def nprobe(self) -> int:
        """Cells scanned by an unfiltered search."""
        return min(self.index.nlist, max(self.settings.min_nprobe, round(self.settings.probe_share * self.index.nlist)))

    @property
    def needs_retraining(self) -> bool:
        """True when the cells were trained for a collection of a very different size."""
        if self.trained_on < self.settings.ivf_from <= self.count:
            return True
        return self.count > 4 * self.trained_on or (self.index.nlist > 1 and self.count < self.trained_on / 4)

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under new labels."""
        if len(labels):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(labels, dtype=np.int64))

    def remove(self, labels: np.ndarray) -> None:
        """Remove labels (unknown ones are ignored)."""
        if len(labels):
            self.index.remove_ids(np.asarray(labels, dtype=np.int64))

    def search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None, exact: bool = False) -> list[tuple[int, float]]:
        """Up to ``k`` (label, cosine) pairs, best first.

        Args:
            allowed: labels that may be returned; the filter is applied inside the scan of
                the probed cells (a bitmap test per stored vector, distances only for allowed ones).
            exact: scan every cell (exact search).
        """
        import faiss

        k = min(k, self.count)
        if k <= 0:
            return []
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        nprobe = self.nprobe * (1 if allowed is None else self.settings.filtered_factor)
        nprobe = self.index.nlist if exact else min(self.index.nlist, nprobe)
        keep = None
        if allowed is None:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
        else:
            bitmap = np.zeros(int(allowed.max()) + 1 if len(allowed) else 1, dtype=bool)
            bitmap[allowed] = True
            keep = np.packbits(bitmap, bitorder="little")  # must outlive the search
            selector = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(keep))  # n = bytes
            params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        with self._lock:
            distances, labels = self.index.search(query, k, params=params)
        del keep
        return [(int(label), float(d)) for label, d in zip(labels[0], distances[0]) if label >= 0]

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors of ``labels`` (for exact search on a small filtered set)."""
        if len(labels) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.asarray(self.index.reconstruct_batch(np.asarray(labels, dtype=np.int64)), dtype=np.float32)


def sync(con: duckdb.DuckDBPyConnection, directory: Path | None, settings: AnnSettings = AnnSettings(),
         current: AnnIndex | None = None) -> tuple[AnnIndex, dict[str, int]]:
    """Bring the index in step with the ``paragraphs`` table and save it.

    Args:
        con: a read-write connection (the ``search_items`` and ``search_state`` tables change).
        directory: where the files live (None: keep the index in memory only).
        settings: index settings (used when building).
        current: an index already loaded for this database, if any.

    Returns:
        The index and counts: added, changed, deleted, rebuilt (1 when it was rebuilt).
    """
    gen = generation(con)
    index = current if current is not None and current.generation == gen else None
    if index is None and directory is not None:
        index = AnnIndex.load(directory, settings)
        if index is not None and index.generation != gen:
            log.warning("ANN index at generation %d, database at %d: rebuilding", index.generation, gen)
            index = None
    if index is None:
        return rebuild(con, directory, settings)
    added = con.execute(
        """SELECT p.para_id, p.doc_id, p.text_hash, p.embedding FROM paragraphs p ANTI JOIN search_items s USING (para_id)
           WHERE p.embedding IS NOT NULL ORDER BY p.para_id"""
    ).fetchnumpy()
    changed = con.execute(
        """SELECT s.label, p.text_hash, p.embedding FROM paragraphs p JOIN search_items s USING (para_id)
           WHERE p.embedding IS NOT NULL AND s.text_hash IS DISTINCT FROM p.text_hash ORDER BY s.label"""
    ).fetchnumpy()
    gone = con.execute(
        """SELECT s.label FROM search_items s LEFT JOIN paragraphs p USING (para_id)
           WHERE p.para_id IS NULL OR p.embedding IS NULL ORDER BY s.label"""
    ).fetchnumpy()["label"].astype(np.int64)
    first = _next_label(con)
    new_labels = np.arange(first, first + len(added["para_id"]), dtype=np.int64)
    old_labels = changed["label"].astype(np.int64)
    counts = {"added": len(new_labels), "changed": len(old_labels), "deleted": len(gone), "rebuilt": 0}
    if not (len(new_labels) or len(old_labels) or len(gone)):
        return index, counts
    index.count += len(new_labels) - len(gone)
    if index.needs_retraining:
        log.info("collection size changed from %d to %d vectors: retraining the index", index.trained_on, index.count)
        return rebuild(con, directory, settings)
    index.remove(np.concatenate([gone, old_labels]))
    index.add(old_labels, _stack(changed["embedding"]))
    index.add(new_labels, _stack(added["embedding"]))
    new_rows = list(zip(new_labels.tolist(), added["para_id"].tolist(), added["doc_id"].tolist(), added["text_hash"].tolist()))
    old_rows = list(zip(changed["text_hash"].tolist(), old_labels.tolist()))
    index.generation = gen + 1

    def write_rows():
        _apply_rows(con, new_rows, old_rows, gone)
        _set_state(con, "next_label", first + len(new_labels))

    _commit(con, index, directory, gen + 1, write_rows)
    log.info("ANN index synced: %s", counts)
    return index, counts


def rebuild(con: duckdb.DuckDBPyConnection, directory: Path | None, settings: AnnSettings = AnnSettings()) -> tuple[AnnIndex, dict[str, int]]:
    """Build the index from every paragraph with an embedding, relabelling them 0..n-1."""
    gen = generation(con)
    rows = con.execute(
        "SELECT para_id, doc_id, text_hash, embedding FROM paragraphs WHERE embedding IS NOT NULL ORDER BY para_id"
    ).fetchnumpy()
    n = len(rows["para_id"])
    labels = np.arange(n, dtype=np.int64)
    index = AnnIndex.build(_stack(rows["embedding"]), labels, settings)
    index.generation = gen + 1

    def write_rows():
        con.execute("DELETE FROM search_items")
        if n:
            frame = {"label": labels, "para_id": rows["para_id"], "doc_id": rows["doc_id"], "text_hash": rows["text_hash"]}
            con.register("_search_items_new", _frame(frame))
            con.execute("INSERT INTO search_items SELECT label, para_id, doc_id, text_hash FROM _search_items_new")
            con.unregister("_search_items_new")
        _set_state(con, "next_label", n)

    _commit(con, index, directory, gen + 1, write_rows)
    log.info("ANN index rebuilt: %d vectors in %d cells", n, index.index.nlist)
    return index, {"added": n, "changed": 0, "deleted": 0, "rebuilt": 1}


def in_step(con: duckdb.DuckDBPyConnection, index: AnnIndex | None) -> bool:
    """True when ``index`` mirrors the database: same generation, nothing unindexed or stale."""
    if index is None or index.generation != generation(con):
        return False
    missing = con.execute(
        """SELECT count(*) FROM paragraphs p LEFT JOIN search_items s USING (para_id)
           WHERE p.embedding IS NOT NULL AND (s.label IS NULL OR s.text_hash IS DISTINCT FROM p.text_hash)"""
    ).fetchone()[0]
    extra = con.execute(
        """SELECT count(*) FROM search_items s LEFT JOIN paragraphs p USING (para_id)
           WHERE p.para_id IS NULL OR p.embedding IS NULL"""
    ).fetchone()[0]
    return missing == 0 and extra == 0 and index.count == index.index.ntotal


def _commit(con, index: AnnIndex, directory: Path | None, new_generation: int, write_rows: Callable[[], None]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        write_rows()
        _set_state(con, "generation", new_generation)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    if directory is not None:
        index.save(directory)


def _apply_rows(con, new_rows, old_rows, gone) -> None:
    if len(gone):
        con.execute("DELETE FROM search_items WHERE list_contains(?, label)", [gone.tolist()])
    if old_rows:
        con.executemany("UPDATE search_items SET text_hash = ? WHERE label = ?", old_rows)
    if new_rows:
        con.executemany("INSERT INTO search_items VALUES (?, ?, ?, ?)", new_rows)


def _next_label(con) -> int:
    row = con.execute("SELECT value FROM search_state WHERE name = 'next_label'").fetchone()
    return int(row[0]) if row else 0


def _set_state(con, name: str, value: int) -> None:
    con.execute("INSERT OR REPLACE INTO search_state VALUES (?, ?)", [name, int(value)])


def _stack(column: np.ndarray) -> np.ndarray:
    if len(column) == 0:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.ascontiguousarray(np.stack(list(column)), dtype=np.float32)


def _frame(columns: dict):
    import pandas as pd

    return pd.DataFrame(columns)
