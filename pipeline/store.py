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
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from pipeline.records import EmbeddedDocument, FetchResult, Source, paragraph_key

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
        CREATE TABLE search_items (label BIGINT, para_id VARCHAR, text_hash VARCHAR);
        CREATE TABLE search_state (name VARCHAR PRIMARY KEY, value BIGINT);
        """,
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


def name_key(name: str) -> str:
    """Case-, accent-of-spacing- and punctuation-insensitive key for names."""
    text = unicodedata.normalize("NFC", name).casefold()
    return " ".join(text.replace(".", " ").replace(",", " ").split())


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

    def __enter__(self) -> "Store":
        if self.read_only and str(self.path) != ":memory:" and not Path(self.path).exists():
            raise StoreError(f"{self.path} does not exist yet: run a crawl first (samverkan crawl)")
        self.con = connect(self.path, read_only=self.read_only)
        if not self.read_only:
            self.migrate()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

    def transaction(self):
        """Context manager: one DuckDB transaction, rolled back on error."""
        return _Transaction(self._con)

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
        con = self._con
        same_body = 0
        with self.transaction():
            for r in results:
                reason = r.error or ("" if r.outcome == "ok" else r.outcome)
                con.execute(
                    "INSERT INTO fetch_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, r.source, r.url, r.fetched_at, r.status, r.outcome, reason],
                )
                self._advance_frontier(r)
                if r.outcome in ("skipped", "disallowed"):
                    continue
                if r.outcome == "failed":
                    con.execute("UPDATE pages SET outcome = 'failed' WHERE url = ?", [r.url])
                    continue
                if r.outcome == "ok" and self._same_body(r):
                    same_body += 1
                elif r.outcome == "ok":
                    con.execute(
                        "INSERT OR REPLACE INTO staged_pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [r.url, r.source, run_id, r.fetched_at, r.final_url, r.status, r.content_type,
                         r.content_hash, r.content],
                    )
                self._upsert_page(r)
        return same_body

    def _advance_frontier(self, r: FetchResult) -> None:
        con, now = self._con, _now()
        con.execute(
            """INSERT INTO frontier VALUES (?, ?, ?, 'done', ?)
               ON CONFLICT (source, url) DO UPDATE SET state = 'done', updated_at = excluded.updated_at""",
            [r.source, r.url, r.depth, now],
        )
        if r.links:
            con.executemany(
                "INSERT OR IGNORE INTO frontier VALUES (?, ?, ?, 'queued', ?)",
                [(r.source, link, r.depth + 1, now) for link in dict.fromkeys(r.links)],
            )

    def _same_body(self, r: FetchResult) -> bool:
        row = self._con.execute(
            """SELECT p.content_hash FROM pages p JOIN documents d ON d.doc_id = p.page_id
               WHERE p.page_id = ? AND NOT p.gone""",
            [page_id(r.url)],
        ).fetchone()
        return row is not None and r.content_hash is not None and row[0] == r.content_hash

    def _upsert_page(self, r: FetchResult) -> None:
        con = self._con
        pid = page_id(r.url)
        gone = r.outcome == "gone"
        if con.execute("SELECT 1 FROM pages WHERE page_id = ?", [pid]).fetchone():
            con.execute(
                """UPDATE pages SET status = ?, outcome = ?, fetched_at = ?, gone = ?,
                   etag = coalesce(?, etag), last_modified = coalesce(?, last_modified),
                   content_type = coalesce(nullif(?, ''), content_type),
                   content_hash = coalesce(?, content_hash), headers = coalesce(?, headers)
                   WHERE page_id = ?""",
                [r.status, r.outcome, r.fetched_at, gone, r.etag, r.last_modified, r.content_type,
                 r.content_hash, _headers(r), pid],
            )
        elif not gone:
            con.execute(
                """INSERT INTO pages (page_id, url, source, status, outcome, fetched_at, first_seen,
                   etag, last_modified, content_type, content_hash, headers)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [pid, r.url, r.source, r.status, r.outcome, r.fetched_at, r.fetched_at, r.etag,
                 r.last_modified, r.content_type, r.content_hash, _headers(r)],
            )

    def staged_urls(self, source: str) -> list[str]:
        """URLs fetched but not yet processed (also those a killed run left behind)."""
        rows = self._con.execute("SELECT url FROM staged_pages WHERE source = ? ORDER BY fetched_at, url", [source]).fetchall()
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

    def unchanged(self, url: str, text_hash: str) -> bool:
        """True when the stored document of ``url`` has exactly this cleaned text."""
        row = self._con.execute("SELECT text_hash FROM documents WHERE doc_id = ?", [page_id(url)]).fetchone()
        return row is not None and row[0] == text_hash

    def embeddings_for(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of paragraphs with these text hashes (to skip re-embedding)."""
        hashes = list(dict.fromkeys(text_hashes))
        if not hashes:
            return {}
        rows = self._con.execute(
            "SELECT DISTINCT ON (text_hash) text_hash, embedding FROM paragraphs WHERE list_contains(?, text_hash)",
            [hashes],
        ).fetchall()
        return {h: np.asarray(e, dtype=np.float32) for h, e in rows if e is not None}

    # -- documents and extractions -------------------------------------------------------

    def save_documents(self, docs: Sequence[EmbeddedDocument], processed: Sequence[str] = ()) -> dict[str, int]:
        """Store documents, their paragraphs with embeddings and everything extracted.

        A document whose page changed replaces its current rows; the previous text stays in
        ``page_versions``. The staged bodies of ``processed`` URLs are dropped in the same
        transaction. Returns counts of what was written.
        """
        counts = {"documents": 0, "paragraphs": 0, "entities": 0}
        with self.transaction():
            for item in docs:
                self._save_document(item, counts)
            if processed:
                self.unstage(processed)
        return counts

    def _save_document(self, item: EmbeddedDocument, counts: dict[str, int]) -> None:
        con, doc, ex = self._con, item.document, item.extraction
        did = page_id(doc.url)
        now = _now()
        row = con.execute("SELECT version FROM pages WHERE page_id = ?", [did]).fetchone()
        version = (row[0] or 0) + 1 if row else 1
        con.execute("UPDATE pages SET version = ?, text_hash = ? WHERE page_id = ?", [version, doc.content_hash, did])
        con.execute(
            "INSERT OR REPLACE INTO page_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [did, version, now, None, doc.content_hash, doc.title, doc.text],
        )
        for table in _PER_DOCUMENT:
            con.execute(f"DELETE FROM {table} WHERE doc_id = ?", [did])
        con.execute("DELETE FROM documents WHERE doc_id = ?", [did])
        con.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [did, doc.url, doc.source, doc.kind, doc.title, doc.published, ex.document_date, doc.author,
             doc.text, doc.content_hash, version, now],
        )
        embeddings = np.asarray(item.embeddings, dtype=np.float32)
        con.executemany(
            "INSERT INTO paragraphs VALUES (?, ?, ?, ?, ?, ?)",
            [(f"{did}:{i}", did, i, text, paragraph_key(text), embeddings[i].tolist()) for i, text in enumerate(doc.paragraphs)],
        )
        if ex.entities:
            con.executemany(
                "INSERT INTO entities VALUES (?, ?, ?, ?, ?)",
                [(did, e.label, e.text, e.start_char, e.end_char) for e in ex.entities],
            )
        org_ids = {}
        for org in ex.organisations:
            oid = self._upsert_organisation(org.name, org.aliases)
            org_ids[name_key(org.name)] = oid
            for alias in org.aliases:
                org_ids.setdefault(name_key(alias), oid)
            con.execute("INSERT INTO organisation_mentions VALUES (?, ?, ?)", [oid, did, [org.name, *org.aliases]])
        for person in ex.people:
            oid = org_ids.get(name_key(person.organisation)) if person.organisation else None
            pid = self._upsert_person(person.name, person.organisation, oid, person.role, person.aliases)
            con.execute(
                "INSERT INTO person_mentions VALUES (?, ?, ?, ?, ?)",
                [pid, did, person.role, person.organisation, person.present],
            )
        if ex.dates:
            con.executemany(
                "INSERT INTO dates VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(did, d.text, d.start, d.end, d.granularity, d.start_char, d.end_char) for d in ex.dates],
            )
        if ex.action_points:
            con.executemany(
                "INSERT INTO action_points VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(did, i, a.text, a.assignees, a.due, a.due_start, a.due_end) for i, a in enumerate(ex.action_points)],
            )
        if ex.meeting is not None:
            m = ex.meeting
            con.execute("INSERT INTO meetings VALUES (?, ?, ?, ?)", [did, m.title, m.date, m.secretary])
        counts["documents"] += 1
        counts["paragraphs"] += len(doc.paragraphs)
        counts["entities"] += len(ex.entities)

    def _upsert_organisation(self, name: str, aliases: Sequence[str]) -> str:
        """One row per organisation across documents: matched by name or by any alias."""
        con = self._con
        keys = [name_key(n) for n in (name, *aliases)]
        row = con.execute(
            """SELECT org_id FROM organisations
               WHERE list_has_any(list_transform(list_append(aliases, name), x -> lower(x)), ?)
               ORDER BY (lower(name) = ?) DESC LIMIT 1""",
            [keys, keys[0]],
        ).fetchone()
        if row is None:
            oid = _key_id(name)
            con.execute("INSERT OR IGNORE INTO organisations VALUES (?, ?, ?)", [oid, name, list(aliases)])
            return oid
        oid = row[0]
        con.execute(
            """UPDATE organisations SET aliases = list_distinct(list_concat(aliases, ?::VARCHAR[]))
               WHERE org_id = ?""",
            [[a for a in (name, *aliases)], oid],
        )
        con.execute(
            "UPDATE organisations SET aliases = list_filter(aliases, x -> lower(x) <> lower(name)) WHERE org_id = ?",
            [oid],
        )
        return oid

    def _upsert_person(self, name: str, organisation: str | None, org_id: str | None, role: str | None, aliases: Sequence[str]) -> str:
        """One row per person across documents, keyed by name + organisation."""
        pid = _key_id(name, organisation)
        con = self._con
        roles = [role] if role else []
        if con.execute("SELECT 1 FROM people WHERE person_id = ?", [pid]).fetchone():
            con.execute(
                """UPDATE people SET roles = list_distinct(list_concat(roles, ?::VARCHAR[])),
                   aliases = list_distinct(list_concat(aliases, ?::VARCHAR[])),
                   org_id = coalesce(org_id, ?) WHERE person_id = ?""",
                [roles, list(aliases), org_id, pid],
            )
        else:
            con.execute(
                "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)", [pid, name, organisation, org_id, roles, list(aliases)]
            )
        return pid

    # -- search support --------------------------------------------------------------------

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

    def query(self, sql: str, params: Sequence[Any] | None = None):
        """Run SQL and return a pandas DataFrame."""
        return self._con.execute(sql, params or []).df()

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise StoreError("the store is not open: use `with Store(path) as db:`")
        return self.con

    # -- search indexes (pipeline.search, pipeline.ann) ------------------------------------

    def update_search_index(self, full_text: bool = False) -> dict[str, int]:
        """Bring the ANN index (and with ``full_text`` the BM25 index) in step with the paragraphs.

        Call after every ``save_documents`` batch, and with ``full_text=True`` when a run has
        finished (next to ``rebuild_fts``). The files live next to the database, in
        ``<db>.search/``; missing or out-of-step files are rebuilt from the paragraphs.

        Returns:
            Counts: added, changed, deleted, rebuilt, bm25 (paragraphs indexed, -1 if not rebuilt).
        """
        from pipeline import search

        return search.update_indexes(self._con, self.path, full_text=full_text)


class _Transaction:
    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def __enter__(self):
        self.con.execute("BEGIN TRANSACTION")
        return self.con

    def __exit__(self, exc_type, exc, tb):
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _headers(r: FetchResult) -> str | None:
    return json.dumps(r.headers, ensure_ascii=False) if r.headers else None
