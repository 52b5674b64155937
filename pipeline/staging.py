"""Parquet staging: where fetch and processing results wait for the loader.

Tasks (in this process or on Dask workers) never write the database. Each writes its
batch of results as one Parquet file under ``<root>/source=<name>/run=<run_id>/`` and the
single loader (``pipeline.load``) merges the files into DuckDB in order. Files are written
under a temporary name and renamed, so a killed writer leaves no half batch behind.

Two kinds of batch:

* ``fetch-NNNNN``: fetch results of one source (bodies included) — the crawl's progress;
* ``docs-NNNNN``: cleaned, annotated and embedded documents, the staged URLs they came from,
  the pages that gave no document, and the boilerplate fingerprints found.

Merged batches are deleted; with ``keep`` the loader moves merged ``docs`` batches (results,
for inspection or replay) to ``<root>/merged/`` but never keeps raw page bodies.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter

from pipeline.records import EmbeddedDocument, FetchResult, jsonable

KINDS = ("fetch", "docs")
_NAME = re.compile(r"^(fetch|docs)-(\d{5})\.parquet$")
_FETCH = TypeAdapter(FetchResult)
_DOCUMENT = TypeAdapter(EmbeddedDocument)


@dataclass(frozen=True, order=True)
class Batch:
    """One staged Parquet file, identified by source, run and sequence number."""

    run_id: str
    seq: int
    kind: str
    source: str
    path: Path = field(compare=False)

    @property
    def batch_id(self) -> str:
        """Stable identity of the batch (what the loader records as loaded)."""
        return f"{self.source}/{self.run_id}/{self.kind}-{self.seq:05d}"


@dataclass
class DocumentBatch:
    """What one processing task produced for a batch of staged pages."""

    documents: list[EmbeddedDocument]
    processed: list[str]  # staged URLs this batch consumed
    failures: list[tuple[str, str]]  # (url, reason) of pages that gave no document
    boilerplate: list[str]  # block fingerprints found repeating on the source's pages
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per stage


class StagingArea:
    """A directory of Parquet batches, partitioned by source and run (Hive style).

    The root is a path every worker and the loader can reach (a local folder, or a shared
    mount when workers run on other machines).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def for_database(cls, db: str | Path, root: str | Path | None = None) -> "StagingArea":
        """The staging area ``root``, or by default ``<db>.staging`` next to the database file."""
        return cls(root or f"{db}.staging")

    def run_dir(self, source: str, run_id: str) -> Path:
        return self.root / f"source={source}" / f"run={run_id}"

    def write_fetches(self, source: str, run_id: str, seq: int, results: list[FetchResult]) -> Batch:
        """Stage a batch of fetch results."""
        rows = [{**asdict(r), "headers": json.dumps(r.headers, ensure_ascii=False)} for r in results]
        return self._write(source, run_id, "fetch", seq, rows)

    def write_documents(self, source: str, run_id: str, seq: int, batch: DocumentBatch) -> Batch:
        """Stage one processing batch: one row per document, the batch facts in the file metadata."""
        rows = [
            {"document": asdict(d.document), "extraction": json.dumps(jsonable(d.extraction), ensure_ascii=False),
             "embeddings": np.asarray(d.embeddings, dtype=np.float32).tolist()}
            for d in batch.documents
        ]
        meta = {"processed": batch.processed, "failures": batch.failures, "boilerplate": sorted(batch.boilerplate),
                "seconds": batch.seconds}
        return self._write(source, run_id, "docs", seq, rows, meta)

    def read_fetches(self, batch: Batch) -> list[FetchResult]:
        """The fetch results of a ``fetch`` batch."""
        rows = pq.read_table(batch.path).to_pylist()
        return [_FETCH.validate_python({**r, "headers": json.loads(r["headers"] or "{}")}) for r in rows]

    def read_documents(self, batch: Batch) -> DocumentBatch:
        """The documents and batch facts of a ``docs`` batch."""
        table = pq.read_table(batch.path)
        meta = json.loads(table.schema.metadata[b"samverkan"])
        documents = [
            _DOCUMENT.validate_python({"document": r["document"], "extraction": json.loads(r["extraction"]),
                                       "embeddings": np.asarray(r["embeddings"], dtype=np.float32)})
            for r in table.to_pylist()
        ]
        return DocumentBatch(documents, meta["processed"], [tuple(f) for f in meta["failures"]], meta["boilerplate"],
                             meta.get("seconds", {}))

    def pending(self, source: str | None = None) -> list[Batch]:
        """Staged batches (of one source or all), in the order they must be loaded."""
        pattern = f"source={source}/run=*/*.parquet" if source else "source=*/run=*/*.parquet"
        batches = []
        for path in self.root.glob(pattern):
            match = _NAME.match(path.name)
            if match:
                batches.append(Batch(run_id=path.parent.name.removeprefix("run="), seq=int(match[2]), kind=match[1],
                                     source=path.parent.parent.name.removeprefix("source="), path=path))
        return sorted(batches)

    def archive(self, batch: Batch) -> None:
        """Move a merged batch under ``merged/`` (kept, but no longer pending)."""
        if not batch.path.exists():
            return
        target = self.root / "merged" / batch.path.relative_to(self.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(batch.path, target)
        self._prune(batch.path)

    def remove_mentioning(self, names: list[str]) -> int:
        """Delete every staged or kept batch whose contents mention one of ``names``
        (case-insensitive); return how many. For erasure, after the pending ones were merged."""
        needles = [n.casefold() for n in names if n.strip()]
        removed = 0
        for path in sorted(self.root.rglob("*.parquet")):
            table = pq.read_table(path)
            metadata = b"".join(v for v in (table.schema.metadata or {}).values()).decode("utf-8", "replace")
            haystack = (json.dumps(table.to_pylist(), default=_text, ensure_ascii=False) + metadata).casefold()
            if any(n in haystack for n in needles):
                path.unlink()
                self._prune(path)
                removed += 1
        return removed

    def remove(self, batch: Batch) -> None:
        """Delete a merged batch."""
        batch.path.unlink(missing_ok=True)
        self._prune(batch.path)

    def _prune(self, path: Path) -> None:
        """Remove the run and source folders of ``path`` once empty."""
        for folder in (path.parent, path.parent.parent):
            try:
                folder.rmdir()
            except OSError:
                break

    def _write(self, source: str, run_id: str, kind: str, seq: int, rows: list[dict], meta: dict | None = None) -> Batch:
        folder = self.run_dir(source, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows) if rows else pa.table({"empty": pa.array([], pa.bool_())})
        if meta is not None:
            table = table.replace_schema_metadata({"samverkan": json.dumps(meta, ensure_ascii=False)})
        path = folder / f"{kind}-{seq:05d}.parquet"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # atomic: the loader sees the whole batch or none of it
        return Batch(run_id=run_id, seq=seq, kind=kind, source=source, path=path)



def _text(value) -> str:
    """Bytes (page bodies) and dates as text, for ``remove_mentioning``'s search."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
