"""Approximate nearest-neighbour index over paragraph embeddings, kept in step with DuckDB.

The index is an hnswlib HNSW graph (inner product on unit vectors = cosine) saved next to the
database as ``<db>.search/hnsw.bin`` with ``state.json``. Each indexed paragraph has an
integer label; the DuckDB table ``search_items (label, para_id, text_hash)`` records what the
index holds, and ``search_state.generation`` is bumped on every change. The files carry the
generation they were written at, so a reader knows when they are out of step.

``sync`` brings the index in step after a batch of writes: new paragraphs are added, changed
ones (same id, new text hash) get their vector replaced, deleted ones are marked deleted. When
the files are missing, unreadable or of another generation, it rebuilds from scratch.

Files are written to temporary names and renamed (the graph first, then the state), and the
table is committed between the two, so a crash at any point leaves either a consistent pair
or a generation mismatch that the next ``sync`` repairs by rebuilding.
"""

from __future__ import annotations

import json
import logging
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
GRAPH_FILE = "hnsw.bin"


@dataclass(frozen=True)
class AnnSettings:
    """Knobs of the HNSW index.

    Attributes:
        M: graph degree (memory and recall grow with it).
        ef_construction: candidate list size while building.
        ef_search: candidate list size while searching (at least the number asked for).
        threads: threads for building (0: all cores).
        exact_below: filtered searches over at most this many paragraphs are done exactly.
    """

    M: int = 16
    ef_construction: int = 100
    ef_search: int = 100
    threads: int = 0
    exact_below: int = 20_000


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
    """An hnswlib index plus the generation of the database it mirrors."""

    def __init__(self, index, generation: int, settings: AnnSettings, count: int = 0):
        self.index = index
        self.generation = generation
        self.settings = settings
        self.count = count  # live vectors (deleted ones excluded)
        self._lock = threading.Lock()

    @classmethod
    def empty(cls, settings: AnnSettings, capacity: int = 1024) -> "AnnIndex":
        """A new index with room for ``capacity`` vectors (it grows as needed)."""
        import hnswlib

        index = hnswlib.Index(space="ip", dim=DIM)
        index.init_index(max_elements=max(capacity, 16), M=settings.M, ef_construction=settings.ef_construction,
                         allow_replace_deleted=True)
        index.set_num_threads(settings.threads or os.cpu_count() or 1)
        return cls(index, 0, settings)

    @classmethod
    def load(cls, directory: Path, settings: AnnSettings = AnnSettings()) -> "AnnIndex | None":
        """The saved index in ``directory``, or None when there is none or it is unreadable."""
        import hnswlib

        try:
            state = json.loads((directory / STATE_FILE).read_text())
            index = hnswlib.Index(space="ip", dim=DIM)
            index.load_index(str(directory / GRAPH_FILE), max_elements=int(state["capacity"]), allow_replace_deleted=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.info("no usable ANN index in %s (%s)", directory, exc)
            return None
        index.set_num_threads(settings.threads or os.cpu_count() or 1)
        return cls(index, int(state["generation"]), settings, int(state["count"]))

    def save(self, directory: Path) -> None:
        """Write the graph, then the state, each to a temporary name renamed into place."""
        directory.mkdir(parents=True, exist_ok=True)
        graph_tmp, state_tmp = directory / (GRAPH_FILE + ".tmp"), directory / (STATE_FILE + ".tmp")
        self.index.save_index(str(graph_tmp))
        state = {"generation": self.generation, "count": self.count, "capacity": self.index.get_max_elements(),
                 "settings": asdict(self.settings)}
        state_tmp.write_text(json.dumps(state))
        os.replace(graph_tmp, directory / GRAPH_FILE)
        os.replace(state_tmp, directory / STATE_FILE)

    def upsert(self, labels: np.ndarray, vectors: np.ndarray, new: bool) -> None:
        """Add vectors under new ``labels`` (reusing deleted slots), or replace the vectors of live ones."""
        if len(labels) == 0:
            return
        index = self.index
        if new:
            needed = index.get_current_count() + len(labels)
            if needed > index.get_max_elements():
                index.resize_index(max(needed, int(index.get_max_elements() * 1.5)))
        index.add_items(np.asarray(vectors, dtype=np.float32), np.asarray(labels, dtype=np.int64), replace_deleted=new)

    def delete(self, labels: np.ndarray) -> None:
        """Mark labels deleted (their slots are reused by later additions)."""
        for label in labels:
            try:
                self.index.mark_deleted(int(label))
            except RuntimeError:
                pass  # already deleted or never added

    def search(self, vector: np.ndarray, k: int, allowed: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (label, cosine) pairs, best first; ``allowed`` filters labels during the search."""
        n = self.count
        k = min(k, n)
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:  # set_ef is index-wide state
            self.index.set_ef(max(self.settings.ef_search, k))
            while k > 0:
                try:
                    labels, distances = self.index.knn_query(query, k=k, num_threads=1, filter=allowed)
                    break
                except RuntimeError:  # fewer than k reachable (heavy filtering): ask for fewer
                    k //= 2
            else:
                return []
        return [(int(label), 1.0 - float(d)) for label, d in zip(labels[0], distances[0])]

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors of ``labels`` (for exact search on a small filtered set)."""
        if len(labels) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.asarray(self.index.get_items(np.asarray(labels, dtype=np.int64), return_type="numpy"), dtype=np.float32)


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
        """SELECT p.para_id, p.text_hash, p.embedding FROM paragraphs p ANTI JOIN search_items s USING (para_id)
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
    index.delete(gone)  # first, so that additions can reuse the slots
    index.upsert(old_labels, _stack(changed["embedding"]), new=False)
    index.upsert(new_labels, _stack(added["embedding"]), new=True)
    index.count += len(new_labels) - len(gone)
    new_rows = list(zip(new_labels.tolist(), added["para_id"].tolist(), added["text_hash"].tolist()))
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
        "SELECT para_id, text_hash, embedding FROM paragraphs WHERE embedding IS NOT NULL ORDER BY para_id"
    ).fetchnumpy()
    n = len(rows["para_id"])
    index = AnnIndex.empty(settings, capacity=n)
    index.count = n
    labels = np.arange(n, dtype=np.int64)
    if n:
        index.index.add_items(_stack(rows["embedding"]), labels)
    index.generation = gen + 1

    def write_rows():
        con.execute("DELETE FROM search_items")
        if n:
            frame = {"label": labels, "para_id": rows["para_id"], "text_hash": rows["text_hash"]}
            con.register("_search_items_new", _frame(frame))
            con.execute("INSERT INTO search_items SELECT label, para_id, text_hash FROM _search_items_new")
            con.unregister("_search_items_new")
        _set_state(con, "next_label", n)

    _commit(con, index, directory, gen + 1, write_rows)
    log.info("ANN index rebuilt: %d vectors", n)
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
    return missing == 0 and extra == 0


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
        con.executemany("INSERT INTO search_items VALUES (?, ?, ?)", new_rows)


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
