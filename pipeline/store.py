"""Store stage: the DuckDB database, its schema and every write.

The schema lives here, in ``MIGRATIONS``: named steps applied in order and recorded in
``schema_migrations``. DuckDB lets one process write a file and then nobody else may open
it, so a ``Store`` is opened for one batch of work and closed again::

    with Store("data/samverkan.duckdb") as db:
        db.save_documents(run_id, docs)

Full-text search uses the ``fts`` extension, loaded from its pip package (never downloaded).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipeline.clean import REDACTED
from pipeline.embed import embedding_key, passage_text
from pipeline.records import EmbeddedDocument, FetchResult, Source, name_hash, name_key

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "samverkan.duckdb"
EMBEDDING_DIM = 384

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        f"""
        CREATE TABLE sources (
            name VARCHAR PRIMARY KEY, start_urls VARCHAR[], allowed_hosts VARCHAR[],
            schedule VARCHAR, page_limit INTEGER, updated_at TIMESTAMP);
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, source VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
            status VARCHAR, pages_fetched INTEGER, pages_unchanged INTEGER, pages_failed INTEGER,
            documents INTEGER, paragraphs INTEGER, entities INTEGER);
        CREATE TABLE pages (
            page_id VARCHAR PRIMARY KEY, url VARCHAR UNIQUE, source VARCHAR, status INTEGER,
            outcome VARCHAR, fetched_at TIMESTAMP, first_seen TIMESTAMP, etag VARCHAR,
            last_modified VARCHAR, content_type VARCHAR, content_hash VARCHAR, text_hash VARCHAR,
            headers JSON, version INTEGER DEFAULT 0, gone BOOLEAN DEFAULT false);
        CREATE TABLE page_versions (
            page_id VARCHAR, version INTEGER, fetched_at TIMESTAMP, content_hash VARCHAR,
            text_hash VARCHAR, title VARCHAR, text VARCHAR, PRIMARY KEY (page_id, version));
        CREATE TABLE fetch_log (
            run_id VARCHAR, source VARCHAR, url VARCHAR, logged_at TIMESTAMP, status INTEGER,
            outcome VARCHAR, reason VARCHAR);
        CREATE TABLE boilerplate (source VARCHAR, fingerprint VARCHAR, PRIMARY KEY (source, fingerprint));
        CREATE TABLE crawl_cycles (
            source VARCHAR, cycle_id VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
            PRIMARY KEY (source, cycle_id));
        CREATE TABLE frontier (
            source VARCHAR, url VARCHAR, depth INTEGER, state VARCHAR, updated_at TIMESTAMP,
            PRIMARY KEY (source, url));
        CREATE TABLE staged_pages (
            url VARCHAR PRIMARY KEY, source VARCHAR, run_id VARCHAR, fetched_at TIMESTAMP,
            final_url VARCHAR, status INTEGER, content_type VARCHAR, content_hash VARCHAR, content BLOB);
        CREATE TABLE documents (
            doc_id VARCHAR PRIMARY KEY, url VARCHAR, source VARCHAR, kind VARCHAR, title VARCHAR,
            published DATE, document_date DATE, author VARCHAR, text VARCHAR, text_hash VARCHAR,
            version INTEGER, updated_at TIMESTAMP);
        CREATE TABLE paragraphs (
            para_id VARCHAR PRIMARY KEY, doc_id VARCHAR, idx INTEGER, text VARCHAR,
            text_hash VARCHAR, embedding FLOAT[{EMBEDDING_DIM}]);
        CREATE TABLE entities (
            doc_id VARCHAR, label VARCHAR, text VARCHAR, start_char INTEGER, end_char INTEGER);
        CREATE TABLE organisations (org_id VARCHAR PRIMARY KEY, name VARCHAR, aliases VARCHAR[]);
        CREATE TABLE organisation_mentions (org_id VARCHAR, doc_id VARCHAR, surface VARCHAR[]);
        CREATE TABLE people (
            person_id VARCHAR PRIMARY KEY, name VARCHAR, organisation VARCHAR, org_id VARCHAR,
            roles VARCHAR[], aliases VARCHAR[]);
        CREATE TABLE person_mentions (
            person_id VARCHAR, doc_id VARCHAR, role VARCHAR, organisation VARCHAR, present BOOLEAN);
        CREATE TABLE dates (
            doc_id VARCHAR, text VARCHAR, start_date DATE, end_date DATE, granularity VARCHAR,
            start_char INTEGER, end_char INTEGER);
        CREATE TABLE action_points (
            doc_id VARCHAR, idx INTEGER, text VARCHAR, assignees VARCHAR[], due VARCHAR,
            due_start DATE, due_end DATE);
        CREATE TABLE meetings (
            doc_id VARCHAR PRIMARY KEY, title VARCHAR, date DATE, secretary VARCHAR);
        CREATE TABLE fts_stopwords (sw VARCHAR);
        """,
    ),
    (
        "0002_search_index",
        """
        CREATE TABLE search_items (label BIGINT, para_id VARCHAR, doc_id VARCHAR, text_hash VARCHAR);
        CREATE TABLE search_state (name VARCHAR PRIMARY KEY, value BIGINT);
        """,
    ),
    (
        "0003_erasure",
        """
        CREATE TABLE settings (key VARCHAR PRIMARY KEY, value VARCHAR);
        INSERT INTO settings VALUES ('name_salt', md5(random()::VARCHAR || now()::VARCHAR) || md5(random()::VARCHAR));
        CREATE TABLE suppressed_names (name_hash VARCHAR PRIMARY KEY, added_at TIMESTAMP);
        CREATE TABLE erasure_log (
            erased_at TIMESTAMP, name_hash VARCHAR, people INTEGER, mentions INTEGER, documents INTEGER,
            paragraphs INTEGER, action_points INTEGER, staged_pages INTEGER);
        """,
    ),
    (
        "0004_staging",
        """
        CREATE TABLE loaded_batches (
            batch_id VARCHAR PRIMARY KEY, source VARCHAR, run_id VARCHAR, kind VARCHAR, rows INTEGER,
            loaded_at TIMESTAMP);
        """,
    ),
    (
        "0005_title_in_embeddings",  # paragraphs are now embedded with their title: recheck stored vectors once
        "INSERT INTO settings VALUES ('embeddings_recheck', 'pending');",
    ),
    (
        # The largest table loses its primary-key index: DuckDB rewrites an ART index whole at every
        # checkpoint, and the loader checkpoints after each batch (bench/bench_loader.py).
        # save_documents replaces a document's paragraphs as a whole, so para_id stays unique.
        "0006_paragraphs_without_index",
        f"""
        CREATE TABLE paragraphs_new (
            para_id VARCHAR, doc_id VARCHAR, idx INTEGER, text VARCHAR, text_hash VARCHAR,
            embedding FLOAT[{EMBEDDING_DIM}]);
        INSERT INTO paragraphs_new SELECT para_id, doc_id, idx, text, text_hash, embedding FROM paragraphs;
        DROP TABLE paragraphs;
        ALTER TABLE paragraphs_new RENAME TO paragraphs;
        """,
    ),
    (
        # A heading is kept as text but is not searched on its own: it gets no embedding (so the ANN
        # index and dense search leave it out) and BM25 skips it. Rows stored before are not headings.
        "0007_paragraph_headings",
        "ALTER TABLE paragraphs ADD COLUMN heading BOOLEAN DEFAULT false;",
    ),
]

# Tables whose rows belong to one document and are replaced when its page changes.
_PER_DOCUMENT = ("paragraphs", "entities", "organisation_mentions", "person_mentions", "dates", "action_points", "meetings")


class StoreError(RuntimeError):
    """The database cannot be opened or written."""


@dataclass(frozen=True)
class KnownPage:
    """What the store remembers about a URL, used for conditional GETs and change detection."""

    url: str
    etag: str | None
    last_modified: str | None
    fetched_at: datetime | None
    text_hash: str | None
    gone: bool


def page_id(url: str) -> str:
    """Stable id of a page (and of its document): a hash of the canonical URL."""
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


def _key_id(*parts: str | None) -> str:
    return hashlib.sha1("|".join(name_key(p or "") for p in parts).encode("utf-8")).hexdigest()[:16]


def _extension_path(name: str) -> Path:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        raise StoreError(f"DuckDB extension package duckdb-extension-{name} is not installed")
    found = sorted((Path(spec.origin).parent / "extensions").glob(f"v*/{name}.duckdb_extension"))
    if not found:
        raise StoreError(f"no {name}.duckdb_extension file inside duckdb-extension-{name}")
    return found[-1]


def connect(path: str | Path = DEFAULT_DB, read_only: bool = False, wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB connection with the full-text extension loaded from its pip package.

    Another process may hold the file for a moment (a crawl writing a batch, or readers while
    a crawl wants to write): the open is retried with short pauses for up to ``wait`` seconds
    (default 1 s for readers, 60 s for writers).
    """
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (wait if wait is not None else (1.0 if read_only else 60.0))
    pause = 0.005
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + pause > deadline:
                raise StoreError(f"cannot open {path}: {exc}") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
    con.execute(f"LOAD '{_extension_path('fts')}'")
    return con


class Store:
    """The samverkan database: open for one batch of work, then close.

    Args:
        path: database file, or ":memory:".
        read_only: open for reading (several readers may share the file).
    """

    def __init__(self, path: str | Path = DEFAULT_DB, read_only: bool = False):
        self.path = path
        self.read_only = read_only
        self.con: duckdb.DuckDBPyConnection | None = None
        self._in_transaction = False

    def __enter__(self) -> "Store":
        if self.read_only and str(self.path) != ":memory:" and not Path(self.path).exists():
            raise StoreError(f"{self.path} does not exist yet: run a crawl first (samverkan crawl)")
        self.con = connect(self.path, read_only=self.read_only)
        self._opened = time.monotonic()
        if not self.read_only:
            self.migrate()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        log.debug("held %s (%s) for %.3f s", self.path, "read" if self.read_only else "write", time.monotonic() - self._opened)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

    # -- schema -----------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not yet applied; return their names."""
        con = self._con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
        )
        done = {row[0] for row in con.execute("SELECT name FROM schema_migrations").fetchall()}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [name, _now()])
            applied.append(name)
            log.info("applied migration %s", name)
        return applied

    @contextmanager
    def transaction(self):
        """One DuckDB transaction, rolled back on error; a nested call joins the outer one."""
        if self._in_transaction:
            yield self._con
            return
        self._con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        else:
            self._con.execute("COMMIT")
        finally:
            self._in_transaction = False

    # -- sources and runs ---------------------------------------------------------------

    def sync_sources(self, sources: Iterable[Source]) -> None:
        """Record the configured sources (name, URLs, schedule, limit)."""
        with self.transaction():
            for s in sources:
                self._con.execute("DELETE FROM sources WHERE name = ?", [s.name])
                self._con.execute(
                    "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?)",
                    [s.name, list(s.start_urls), list(s.allowed_hosts), s.schedule, s.page_limit, _now()],
                )

    def start_run(self, run_id: str, source: str) -> None:
        """Record that a run of ``source`` began."""
        self._con.execute(
            "INSERT OR REPLACE INTO runs (run_id, source, started_at, status) VALUES (?, ?, ?, 'running')",
            [run_id, source, _now()],
        )

    def finish_run(self, run_id: str, summary: dict[str, int], status: str = "completed") -> None:
        """Store a run's counts and mark it finished."""
        self._con.execute(
            """UPDATE runs SET finished_at = ?, status = ?, pages_fetched = ?, pages_unchanged = ?,
               pages_failed = ?, documents = ?, paragraphs = ?, entities = ? WHERE run_id = ?""",
            [_now(), status, summary.get("pages_fetched", 0), summary.get("pages_unchanged", 0),
             summary.get("pages_failed", 0), summary.get("documents", 0), summary.get("paragraphs", 0),
             summary.get("entities", 0), run_id],
        )

    # -- crawl state ----------------------------------------------------------------------

    def known_pages(self, source: str) -> dict[str, KnownPage]:
        """Everything remembered about the source's URLs, keyed by URL."""
        rows = self._con.execute(
            "SELECT url, etag, last_modified, fetched_at, text_hash, gone FROM pages WHERE source = ?", [source]
        ).fetchall()
        return {r[0]: KnownPage(*r) for r in rows}

    def boilerplate(self, source: str) -> set[str]:
        """Fingerprints of the blocks known to repeat across the source's pages."""
        rows = self._con.execute("SELECT fingerprint FROM boilerplate WHERE source = ?", [source]).fetchall()
        return {r[0] for r in rows}

    def save_boilerplate(self, source: str, fingerprints: Iterable[str]) -> None:
        """Add block fingerprints to the source's boilerplate."""
        rows = [(source, fp) for fp in fingerprints]
        if rows:
            self._con.executemany("INSERT OR IGNORE INTO boilerplate VALUES (?, ?)", rows)

    def open_cycle(self, source: str) -> tuple[list[tuple[str, int]], set[str]]:
        """Start a crawl cycle of ``source``, or resume the one a killed run left unfinished.

        Returns:
            The frontier to resume from (url, depth) and the URLs already done in this cycle;
            both empty for a fresh cycle.
        """
        con = self._con
        open_ = con.execute(
            "SELECT cycle_id FROM crawl_cycles WHERE source = ? AND finished_at IS NULL", [source]
        ).fetchone()
        if open_ is None:
            with self.transaction():
                con.execute("DELETE FROM frontier WHERE source = ?", [source])
                con.execute("INSERT INTO crawl_cycles VALUES (?, ?, ?, NULL)", [source, _now().isoformat(), _now()])
            return [], set()
        queue = con.execute(
            "SELECT url, depth FROM frontier WHERE source = ? AND state = 'queued' ORDER BY depth, updated_at", [source]
        ).fetchall()
        done = {r[0] for r in con.execute("SELECT url FROM frontier WHERE source = ? AND state = 'done'", [source]).fetchall()}
        log.info("resuming the crawl of %s: %d queued, %d done", source, len(queue), len(done))
        return [(u, d) for u, d in queue], done

    def close_cycle(self, source: str) -> None:
        """Mark the source's crawl cycle complete and clear its frontier."""
        with self.transaction():
            self._con.execute("UPDATE crawl_cycles SET finished_at = ? WHERE source = ? AND finished_at IS NULL", [_now(), source])
            self._con.execute("DELETE FROM frontier WHERE source = ?", [source])

    def record_fetches(self, run_id: str, results: Sequence[FetchResult]) -> int:
        """Record a batch of fetches in one transaction.

        Logs every fetch, updates ``pages`` (status, validators, gone), moves the URLs to
        done in the frontier and queues the links found, and stages the bodies of changed
        pages for processing. Returns how many ok pages had the same body as last time
        (not staged).
        """
        if not results:
            return 0
        con, now = self._con, _now()
        latest = list({r.url: r for r in results}.values())  # one row per URL
        same = self._stored_bodies([r for r in latest if r.outcome == "ok"])
        staged = [r for r in latest if r.outcome == "ok" and same.get(page_id(r.url)) != r.content_hash]
        kept = [r for r in latest if r.outcome in ("ok", "not_modified")]
        gone = [r for r in latest if r.outcome == "gone"]
        with self.transaction():
            self._insert("fetch_log", [
                {"run_id": run_id, "source": r.source, "url": r.url, "logged_at": r.fetched_at, "status": r.status,
                 "outcome": r.outcome, "reason": r.error or ("" if r.outcome == "ok" else r.outcome)}
                for r in results])
            self._insert("frontier", [
                {"source": r.source, "url": r.url, "depth": r.depth, "state": "done", "updated_at": now} for r in latest],
                on_conflict="(source, url) DO UPDATE SET state = 'done', updated_at = excluded.updated_at")
            self._insert("frontier", [
                {"source": r.source, "url": link, "depth": r.depth + 1, "state": "queued", "updated_at": now}
                for r in latest for link in dict.fromkeys(r.links)], on_conflict="DO NOTHING")
            failed = [r.url for r in latest if r.outcome == "failed"]
            if failed:
                con.execute("UPDATE pages SET outcome = 'failed' WHERE list_contains(?, url)", [failed])
            self._insert("staged_pages", [
                {"url": r.url, "source": r.source, "run_id": run_id, "fetched_at": r.fetched_at, "final_url": r.final_url,
                 "status": r.status, "content_type": r.content_type, "content_hash": r.content_hash, "content": r.content}
                for r in staged], on_conflict="DO UPDATE SET run_id = excluded.run_id, fetched_at = excluded.fetched_at, "
                "final_url = excluded.final_url, status = excluded.status, content_type = excluded.content_type, "
                "content_hash = excluded.content_hash, content = excluded.content")
            self._insert("pages", [
                {"page_id": page_id(r.url), "url": r.url, "source": r.source, "status": r.status, "outcome": r.outcome,
                 "fetched_at": r.fetched_at, "first_seen": r.fetched_at, "etag": r.etag,
                 "last_modified": r.last_modified, "content_type": r.content_type or None,
                 "content_hash": r.content_hash, "headers": _headers(r), "version": 0, "gone": False}
                for r in kept],
                on_conflict="""(page_id) DO UPDATE SET status = excluded.status, outcome = excluded.outcome,
                    fetched_at = excluded.fetched_at, gone = false, etag = coalesce(excluded.etag, pages.etag),
                    last_modified = coalesce(excluded.last_modified, pages.last_modified),
                    content_type = coalesce(excluded.content_type, pages.content_type),
                    content_hash = coalesce(excluded.content_hash, pages.content_hash),
                    headers = coalesce(excluded.headers, pages.headers)""")
            if gone:
                con.execute(
                    "UPDATE pages SET gone = true, outcome = 'gone', status = ?, fetched_at = ? WHERE list_contains(?, url)",
                    [gone[-1].status, gone[-1].fetched_at, [r.url for r in gone]])
        return len([r for r in latest if r.outcome == "ok"]) - len(staged)

    def _stored_bodies(self, results: Sequence[FetchResult]) -> dict[str, str]:
        """page_id → body hash of pages that already have a current document."""
        if not results:
            return {}
        rows = self._con.execute(
            """SELECT p.page_id, p.content_hash FROM pages p JOIN documents d ON d.doc_id = p.page_id
               WHERE NOT p.gone AND list_contains(?, p.page_id)""",
            [[page_id(r.url) for r in results]],
        ).fetchall()
        return dict(rows)

    def _insert(self, table: str, rows: Sequence[dict[str, Any]], on_conflict: str | None = None) -> None:
        """Insert many rows in one statement (a registered DataFrame), matching columns by name."""
        if not rows:
            return
        con = self._con
        frame = pd.DataFrame(list(rows))
        con.register("_rows", frame)
        try:
            conflict = f" ON CONFLICT {on_conflict}" if on_conflict else ""
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows{conflict}")
        finally:
            con.unregister("_rows")

    def staged_urls(self, source: str) -> list[str]:
        """URLs fetched but not yet processed (also those a killed run left behind), in URL order
        so that batches do not depend on the order pages arrived in."""
        rows = self._con.execute("SELECT url FROM staged_pages WHERE source = ? ORDER BY url", [source]).fetchall()
        return [r[0] for r in rows]

    def staged_pages(self, urls: Sequence[str]) -> list[FetchResult]:
        """The staged fetch results of these URLs, bodies included."""
        rows = self._con.execute(
            """SELECT url, source, status, fetched_at, final_url, content_type, content_hash, content
               FROM staged_pages WHERE list_contains(?, url) ORDER BY fetched_at, url""",
            [list(urls)],
        ).fetchall()
        return [
            FetchResult(url=u, source=src, status=st, fetched_at=at, final_url=fu, content_type=ct or "",
                        content_hash=ch, content=bytes(body or b""))
            for u, src, st, at, fu, ct, ch, body in rows
        ]

    def unstage(self, urls: Sequence[str]) -> None:
        """Forget staged bodies once processed."""
        self._con.execute("DELETE FROM staged_pages WHERE list_contains(?, url)", [list(urls)])

    def record_failures(self, run_id: str, source: str, failures: Iterable[tuple[str, str]]) -> None:
        """Log pages that were fetched but could not be processed (url, reason)."""
        rows = [(run_id, source, url, _now(), None, "failed", reason) for url, reason in failures]
        if rows:
            self._con.executemany("INSERT INTO fetch_log VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def text_hashes(self, urls: Sequence[str]) -> dict[str, str]:
        """url → hash of the stored document's cleaned text, for the URLs that have one."""
        rows = self._con.execute(
            "SELECT url, text_hash FROM documents WHERE list_contains(?, doc_id)", [[page_id(u) for u in urls]]
        ).fetchall()
        return dict(rows)

    def page_embeddings(self, urls: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored paragraph embeddings of these URLs' documents, by ``text_hash`` (= ``embed.embedding_key``
        of title and text), so the unchanged paragraphs of a changed page are not embedded again."""
        rows = self._con.execute(
            """SELECT DISTINCT ON (text_hash) text_hash, embedding FROM paragraphs
               WHERE list_contains(?, doc_id) AND embedding IS NOT NULL""",
            [[page_id(u) for u in urls]],
        ).fetchall()
        return {h: np.asarray(e, dtype=np.float32) for h, e in rows}

    # -- staged batches ----------------------------------------------------------------------

    def is_loaded(self, batch_id: str) -> bool:
        """True when this staged batch was merged before."""
        return self._con.execute("SELECT 1 FROM loaded_batches WHERE batch_id = ?", [batch_id]).fetchone() is not None

    def mark_loaded(self, batch_id: str, source: str, run_id: str, kind: str, rows: int) -> None:
        """Record a staged batch as merged (in the transaction that merged it)."""
        self._con.execute("INSERT INTO loaded_batches VALUES (?, ?, ?, ?, ?, ?)", [batch_id, source, run_id, kind, rows, _now()])

    # -- documents and extractions -------------------------------------------------------

    def save_documents(self, docs: Sequence[EmbeddedDocument], processed: Sequence[str] = ()) -> dict[str, int]:
        """Store documents, their paragraphs with embeddings and everything extracted.

        A document whose page changed replaces its current rows; the previous text stays in
        ``page_versions``. The staged bodies of ``processed`` URLs are dropped in the same
        transaction. Returns counts of what was written.
        """
        con, now = self._con, _now()
        items = list({page_id(d.document.url): d for d in docs}.items())
        ids = [did for did, _ in items]
        versions = dict(con.execute("SELECT page_id, version FROM pages WHERE list_contains(?, page_id)", [ids]).fetchall())
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("page_versions", "documents", *_PER_DOCUMENT)}
        orgs = _Registry(self._load_organisations(items))
        people = _People(self._load_people(items))
        for did, item in items:
            doc, ex = item.document, item.extraction
            version = (versions.get(did) or 0) + 1
            versions[did] = version
            rows["page_versions"].append({"page_id": did, "version": version, "fetched_at": now,
                                          "text_hash": doc.content_hash, "title": doc.title, "text": doc.text})
            rows["documents"].append({
                "doc_id": did, "url": doc.url, "source": doc.source, "kind": doc.kind, "title": doc.title,
                "published": doc.published, "document_date": ex.document_date, "author": doc.author, "text": doc.text,
                "text_hash": doc.content_hash, "version": version, "updated_at": now})
            vectors = np.asarray(item.embeddings, dtype=np.float32)
            if len(vectors) != len(doc.paragraphs):
                raise StoreError(f"{doc.url}: {len(doc.paragraphs)} paragraphs but {len(vectors)} embeddings")
            rows["paragraphs"] += [
                {"para_id": f"{did}:{i}", "doc_id": did, "idx": i, "text": text, "text_hash": embedding_key(doc.title, text),
                 "embedding": None if i in doc.headings else vectors[i], "heading": i in doc.headings}
                for i, text in enumerate(doc.paragraphs)]
            rows["entities"] += [{"doc_id": did, "label": e.label, "text": e.text, "start_char": e.start_char,
                                  "end_char": e.end_char} for e in ex.entities]
            rows["dates"] += [{"doc_id": did, "text": d.text, "start_date": d.start, "end_date": d.end,
                               "granularity": d.granularity, "start_char": d.start_char, "end_char": d.end_char}
                              for d in ex.dates]
            rows["action_points"] += [{"doc_id": did, "idx": i, "text": a.text, "assignees": list(a.assignees),
                                       "due": a.due, "due_start": a.due_start, "due_end": a.due_end}
                                      for i, a in enumerate(ex.action_points)]
            if ex.meeting is not None:
                rows["meetings"].append({"doc_id": did, "title": ex.meeting.title, "date": ex.meeting.date,
                                         "secretary": ex.meeting.secretary})
            doc_orgs = {}
            for org in ex.organisations:
                oid = orgs.add(org.name, org.aliases)
                for name in (org.name, *org.aliases):
                    doc_orgs.setdefault(name_key(name), oid)
                rows["organisation_mentions"].append({"org_id": oid, "doc_id": did, "surface": [org.name, *org.aliases]})
            for person in ex.people:
                oid = doc_orgs.get(name_key(person.organisation)) if person.organisation else None
                pid = people.add(person.name, person.organisation, oid, person.role, person.aliases)
                rows["person_mentions"].append({"person_id": pid, "doc_id": did, "role": person.role,
                                                "organisation": person.organisation, "present": person.present})
        with self.transaction():
            for table in ("documents", *_PER_DOCUMENT):
                con.execute(f"DELETE FROM {table} WHERE list_contains(?, doc_id)", [ids])
            con.execute("DELETE FROM organisations WHERE list_contains(?, org_id)", [list(orgs.rows)])
            con.execute("DELETE FROM people WHERE list_contains(?, person_id)", [list(people.rows)])
            self._insert("organisations", list(orgs.rows.values()))
            self._insert("people", list(people.rows.values()))
            self._insert("page_versions", rows.pop("page_versions"), on_conflict="DO NOTHING")
            for table, table_rows in rows.items():
                self._insert(table, table_rows)
            self._insert("pages", [{"page_id": did, "url": item.document.url, "source": item.document.source,
                                    "first_seen": now, "version": versions[did], "text_hash": item.document.content_hash}
                                   for did, item in items],
                         on_conflict="(page_id) DO UPDATE SET version = excluded.version, text_hash = excluded.text_hash")
            if processed:
                self.unstage(processed)
        return {"documents": len(items), "paragraphs": len(rows["paragraphs"]), "entities": len(rows["entities"])}

    def _load_organisations(self, items) -> list[tuple[str, str, list[str]]]:
        keys = [name_key(n) for _, it in items for o in it.extraction.organisations for n in (o.name, *o.aliases)]
        if not keys:
            return []
        return self._con.execute(
            """SELECT org_id, name, aliases FROM organisations
               WHERE list_has_any(list_transform(list_append(aliases, name), x -> lower(x)), ?)""",
            [keys],
        ).fetchall()

    def _load_people(self, items) -> list[tuple]:
        ids = [_key_id(p.name, p.organisation) for _, it in items for p in it.extraction.people]
        if not ids:
            return []
        return self._con.execute(
            "SELECT person_id, name, organisation, org_id, roles, aliases FROM people WHERE list_contains(?, person_id)",
            [ids],
        ).fetchall()

    def rebuild_fts(self, stopwords: Iterable[str] = ()) -> None:
        """(Re)build the BM25 index over paragraphs with the Swedish stemmer."""
        con = self._con
        with self.transaction():
            con.execute("DELETE FROM fts_stopwords")
            words = sorted(set(stopwords))
            if words:
                con.executemany("INSERT INTO fts_stopwords VALUES (?)", [(w,) for w in words])
        con.execute(
            """PRAGMA create_fts_index('paragraphs', 'para_id', 'text', stemmer = 'swedish',
               stopwords = 'fts_stopwords', strip_accents = 0, lower = 1, overwrite = 1)"""
        )

    def status(self) -> pd.DataFrame:
        """Per source: the last run, its page counts, and what is stored now."""
        return self._con.execute(
            """SELECT s.name AS source, s.schedule, r.started_at AS last_run, r.status,
                      r.pages_fetched AS pages_ok, r.pages_unchanged, r.pages_failed,
                      (SELECT count(*) FROM documents d WHERE d.source = s.name) AS documents
               FROM sources s
               LEFT JOIN (SELECT * FROM runs QUALIFY row_number() OVER (PARTITION BY source ORDER BY started_at DESC) = 1) r
                 ON r.source = s.name
               ORDER BY s.name"""
        ).df()

    def person(self, name: str) -> dict[str, pd.DataFrame]:
        """Everything stored about people with this name or alias (case-insensitive).

        Returns:
            DataFrames ``people`` (roles, organisations, aliases), ``mentions`` (document, URL,
            date, role) and ``action_points`` (where they are an assignee).
        """
        con = self._con
        people = con.execute(
            """SELECT person_id, name, organisation, roles, aliases FROM people
               WHERE list_contains(list_transform(list_append(aliases, name), x -> lower(x)), lower(?))
               ORDER BY name, organisation""",
            [name],
        ).df()
        ids = people["person_id"].tolist()
        names = sorted({n for row in people.itertuples() for n in (row.name, *row.aliases)} | {name})
        mentions = con.execute(
            """SELECT p.name, m.role, m.organisation, m.present, d.title, d.url,
                      coalesce(d.published, d.document_date) AS date
               FROM person_mentions m JOIN people p USING (person_id) JOIN documents d USING (doc_id)
               WHERE list_contains(?, m.person_id) ORDER BY date, d.url""",
            [ids],
        ).df()
        actions = con.execute(
            """SELECT a.text, a.assignees, a.due, d.title, d.url FROM action_points a JOIN documents d USING (doc_id)
               WHERE list_has_any(a.assignees, ?) ORDER BY a.due_start NULLS LAST, d.url""",
            [names],
        ).df()
        return {"people": people, "mentions": mentions, "action_points": actions}

    def suppression(self) -> tuple[str, set[str]]:
        """The database's salt and the salted hashes of erased names (to keep them out of new text)."""
        salt = self._con.execute("SELECT value FROM settings WHERE key = 'name_salt'").fetchone()[0]
        return salt, {r[0] for r in self._con.execute("SELECT name_hash FROM suppressed_names").fetchall()}

    def erase_person(self, name: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """Erase a person: rows, mentions, assignments, and the name in stored text.

        The full name (and the names of matching people rows) is redacted in every document,
        paragraph and earlier page version; first names and nicknames recorded as aliases are
        redacted in the documents that mention the person. Staged bodies that contain the name
        are dropped (they are fetched again and redacted on the next crawl). The name's salted
        hash goes on the suppression list and into the audit log; the name itself is kept nowhere.

        Titles are redacted like text. Paragraphs are embedded with their document's title, so a
        paragraph whose text or title changed gets a new ``text_hash`` and must be embedded again.

        Returns:
            Counts of what was removed or redacted, and the (para_id, text to embed) of paragraphs
            whose text or title changed (``embed.embed_passages`` of that text, then ``set_embeddings``).
        """
        con = self._con
        people = self.person(name)["people"]
        ids = people["person_id"].tolist()
        full = sorted({name, *people["name"]}, key=len, reverse=True)
        aliases = sorted({a for row in people["aliases"] for a in row} - set(full), key=len, reverse=True)
        mentioned = {r[0] for r in con.execute(
            "SELECT DISTINCT doc_id FROM person_mentions WHERE list_contains(?, person_id)", [ids]).fetchall()}
        everywhere = _name_pattern(full)
        locally = _name_pattern(full + aliases)
        counts = {"people": len(ids), "mentions": 0, "documents": 0, "paragraphs": 0, "action_points": 0, "staged_pages": 0}
        changed: list[tuple[str, str]] = []
        salt, _ = self.suppression()
        with self.transaction():
            counts["mentions"] = con.execute(
                "SELECT count(*) FROM person_mentions WHERE list_contains(?, person_id)", [ids]).fetchone()[0]
            con.execute("DELETE FROM person_mentions WHERE list_contains(?, person_id)", [ids])
            con.execute("DELETE FROM people WHERE list_contains(?, person_id)", [ids])
            needles = [n.lower() for n in full]
            docs = con.execute(
                """SELECT doc_id, text, title FROM documents
                   WHERE list_contains(?, doc_id)
                      OR len(list_filter(?, n -> contains(lower(coalesce(title, '') || chr(10) || text), n))) > 0""",
                [list(mentioned), needles]).fetchall()
            for doc_id, text, title in docs:
                pattern = locally if doc_id in mentioned else everywhere
                if not pattern.search(text) and not pattern.search(title or ""):
                    continue
                counts["documents"] += 1
                new_title = _redact(pattern, title) if title else title
                con.execute("UPDATE documents SET text = ?, title = ? WHERE doc_id = ?", [_redact(pattern, text), new_title, doc_id])
                for version, old, old_title in con.execute(
                        "SELECT version, text, title FROM page_versions WHERE page_id = ?", [doc_id]).fetchall():
                    con.execute("UPDATE page_versions SET text = ?, title = ? WHERE page_id = ? AND version = ?",
                                [_redact(pattern, old), _redact(pattern, old_title) if old_title else old_title, doc_id, version])
                for para_id, old in con.execute("SELECT para_id, text FROM paragraphs WHERE doc_id = ?", [doc_id]).fetchall():
                    new = _redact(pattern, old)
                    if new != old or new_title != title:
                        con.execute("UPDATE paragraphs SET text = ?, text_hash = ? WHERE para_id = ?",
                                    [new, embedding_key(new_title, new), para_id])
                        changed.append((para_id, passage_text(new_title, new)))
                for ent_text, start in con.execute("SELECT text, start_char FROM entities WHERE doc_id = ?", [doc_id]).fetchall():
                    if pattern.search(ent_text):
                        con.execute("DELETE FROM entities WHERE doc_id = ? AND start_char = ?", [doc_id, start])
                for secretary, in con.execute("SELECT secretary FROM meetings WHERE doc_id = ?", [doc_id]).fetchall():
                    if secretary and pattern.search(secretary):
                        con.execute("UPDATE meetings SET secretary = NULL WHERE doc_id = ?", [doc_id])
                for idx, old in con.execute("SELECT idx, text FROM action_points WHERE doc_id = ?", [doc_id]).fetchall():
                    con.execute("UPDATE action_points SET text = ? WHERE doc_id = ? AND idx = ?", [_redact(pattern, old), doc_id, idx])
            all_names = full + aliases
            counts["action_points"] = con.execute(
                "SELECT count(*) FROM action_points WHERE list_has_any(assignees, ?)", [all_names]).fetchone()[0]
            con.execute(
                "UPDATE action_points SET assignees = list_filter(assignees, a -> NOT list_contains(?, a)) "
                "WHERE list_has_any(assignees, ?)", [all_names, all_names])
            staged = [u for u, body in con.execute("SELECT url, content FROM staged_pages").fetchall()
                      if everywhere.search(bytes(body or b"").decode("utf-8", "replace"))]
            counts["staged_pages"] = len(staged)
            self.unstage(staged)
            counts["paragraphs"] = len(changed)
            hashed = name_hash(salt, name)
            con.execute("INSERT OR IGNORE INTO suppressed_names VALUES (?, ?)", [hashed, _now()])
            con.execute("INSERT INTO erasure_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [_now(), hashed, *(counts[k] for k in ("people", "mentions", "documents", "paragraphs",
                                                              "action_points", "staged_pages"))])
        return counts, changed

    def stale_embeddings(self) -> list[tuple[str, str, str]]:
        """(para_id, embedding key, text to embed) of paragraphs whose stored vector is not that of
        their title and text: databases written before titles were embedded. Renew them with
        ``embed.embed_passages`` and ``set_embeddings(..., text_hashes=keys)``, then call
        ``stale_embeddings_renewed``; until migration 0005 asks again, this returns nothing."""
        if not self._con.execute("SELECT 1 FROM settings WHERE key = 'embeddings_recheck'").fetchone():
            return []
        rows = self._con.execute(
            "SELECT p.para_id, d.title, p.text, p.text_hash FROM paragraphs p JOIN documents d USING (doc_id)").fetchall()
        return [(para_id, key, passage_text(title, text)) for para_id, title, text, old in rows
                if (key := embedding_key(title, text)) != old]

    def stale_embeddings_renewed(self) -> None:
        """Record that the stored embeddings were checked (and renewed) after migration 0005."""
        self._con.execute("DELETE FROM settings WHERE key = 'embeddings_recheck'")

    def set_embeddings(self, para_ids: Sequence[str], vectors: np.ndarray, text_hashes: Sequence[str] | None = None) -> None:
        """Replace the embeddings of these paragraphs (after their text changed), and their
        ``text_hash`` when given (so the search index sync replaces their vectors); headings keep none."""
        frame = pd.DataFrame({"para_id": list(para_ids), "embedding": list(np.asarray(vectors, dtype=np.float32)),
                              "text_hash": list(text_hashes) if text_hashes is not None else [None] * len(para_ids)})
        self._con.register("_vectors", frame)
        try:
            self._con.execute(
                f"UPDATE paragraphs SET embedding = v.embedding::FLOAT[{EMBEDDING_DIM}], "
                "text_hash = coalesce(v.text_hash, paragraphs.text_hash) FROM _vectors v "
                "WHERE paragraphs.para_id = v.para_id AND NOT paragraphs.heading")  # headings stay unsearched
        finally:
            self._con.unregister("_vectors")

    def export(self, directory: str | Path) -> list[Path]:
        """Write every table as Parquet into ``directory``, with ``schema.json`` describing them."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        con = self._con
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_type = 'BASE TABLE' "
            "ORDER BY table_name").fetchall()]
        schema, written = {}, []
        for table in tables:
            path = out / f"{table}.parquet"
            con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")
            schema[table] = {
                "file": path.name,
                "rows": con.execute(f"SELECT count(*) FROM {table}").fetchone()[0],
                "columns": [{"name": c, "type": t} for c, t in con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' "
                    "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()],
            }
            written.append(path)
        (out / "schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False), encoding="utf-8")
        return written

    def query(self, sql: str, params: Sequence[Any] | None = None):
        """Run SQL and return a pandas DataFrame."""
        return self._con.execute(sql, params or []).df()

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise StoreError("the store is not open: use `with Store(path) as db:`")
        return self.con

    # -- search indexes (pipeline.search, pipeline.ann) ------------------------------------

    def update_search_index(self, full_text: bool = False, settings=None) -> dict[str, int]:
        """Bring the ANN index (and with ``full_text`` the BM25 index) in step with the paragraphs.

        Call after every ``save_documents`` batch, and with ``full_text=True`` when a run has
        finished (next to ``rebuild_fts``). The files live next to the database, in
        ``<db>.search/``; missing or out-of-step files are rebuilt from the paragraphs.

        Args:
            full_text: also rebuild the BM25 index.
            settings: ``pipeline.search.SearchSettings`` (default: the defaults).

        Returns:
            Counts: added, changed, deleted, rebuilt, bm25 (paragraphs indexed, -1 if not rebuilt).
        """
        from pipeline import search

        return search.update_indexes(self._con, self.path, full_text=full_text, settings=settings or search.SearchSettings())


def _name_pattern(names: Sequence[str]) -> re.Pattern:
    """Case-insensitive whole-word match of any of ``names`` (and their genitive -s)."""
    alternatives = "|".join(re.escape(n) for n in names if n.strip())
    return re.compile(rf"(?i)(?<!\w)(?:{alternatives})s?(?!\w)")


def _redact(pattern: re.Pattern, text: str) -> str:
    return pattern.sub(REDACTED, text)


class _Registry:
    """Organisations of one batch merged with the stored ones: one row per organisation,
    matched by its name or any alias (case-insensitive)."""

    def __init__(self, stored: Iterable[tuple[str, str, list[str]]]):
        self.rows: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, str] = {}
        self._names: dict[str, str] = {}
        for oid, name, aliases in stored:
            self._remember(oid, name, aliases or [])

    def add(self, name: str, aliases: Sequence[str]) -> str:
        """The org_id for this organisation, creating or extending its row."""
        oid = self._names.get(name_key(name)) or next(
            (self._by_key[k] for k in map(name_key, (name, *aliases)) if k in self._by_key), None)
        if oid is None:
            oid = _key_id(name)
            self._remember(oid, name, [])
        self._remember(oid, self.rows[oid]["name"], [name, *aliases])
        return oid

    def _remember(self, oid: str, name: str, aliases: Sequence[str]) -> None:
        row = self.rows.setdefault(oid, {"org_id": oid, "name": name, "aliases": []})
        for alias in aliases:
            if name_key(alias) != name_key(name) and alias not in row["aliases"]:
                row["aliases"].append(alias)
        self._names.setdefault(name_key(name), oid)
        for key in map(name_key, (name, *row["aliases"])):
            self._by_key.setdefault(key, oid)


class _People:
    """People of one batch merged with the stored ones, keyed by name + organisation."""

    def __init__(self, stored: Iterable[tuple]):
        self.rows = {
            pid: {"person_id": pid, "name": n, "organisation": o, "org_id": oid, "roles": list(r or []), "aliases": list(a or [])}
            for pid, n, o, oid, r, a in stored
        }

    def add(self, name: str, organisation: str | None, org_id: str | None, role: str | None, aliases: Sequence[str]) -> str:
        """The person_id, creating or extending the row with this role and these aliases."""
        pid = _key_id(name, organisation)
        row = self.rows.setdefault(pid, {"person_id": pid, "name": name, "organisation": organisation,
                                         "org_id": org_id, "roles": [], "aliases": []})
        row["org_id"] = row["org_id"] or org_id
        for value, column in ((role, "roles"), *((a, "aliases") for a in aliases)):
            if value and value not in row[column]:
                row[column].append(value)
        return pid


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _headers(r: FetchResult) -> str | None:
    return json.dumps(r.headers, ensure_ascii=False) if r.headers else None
