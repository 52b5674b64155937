"""A crawl killed with SIGKILL resumes without duplicates or losses, and readers are never blocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.store import Store, StoreError
from sitegen import GeneratedSite

pytestmark = pytest.mark.usefixtures("e5_model")
N_PAGES = 40


def _crawl_command(sources: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline", "crawl", "gen", "--sources", str(sources), "--db", str(db)]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _ok_urls(db: Path) -> set[str]:
    with Store(db, read_only=True) as store:
        return set(store.query("SELECT url FROM fetch_log WHERE outcome = 'ok'")["url"])


def test_kill_then_resume_and_readers_never_blocked(tmp_path):
    db = tmp_path / "crawl.duckdb"
    with GeneratedSite(N_PAGES, delay=0.25) as site:
        sources = tmp_path / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [{
            "name": "gen", "start_urls": [site.base_url + "/"], "allowed_hosts": ["127.0.0.1"],
            "delay": 0, "allow_private": True, "page_limit": 200}]}))

        first = subprocess.Popen(_crawl_command(sources, db), env=_env(tmp_path), start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        fetched_before: set[str] = set()
        while len(fetched_before) < 10:
            assert time.monotonic() < deadline, "the first crawl never got going"
            assert first.poll() is None, "the first crawl ended before it could be killed"
            time.sleep(0.2)
            if db.exists():
                try:
                    fetched_before = _ok_urls(db)
                except StoreError:
                    pass
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        fetched_before = _ok_urls(db)
        assert 10 <= len([u for u in fetched_before if "/sida/" in u]) < N_PAGES
        requests_at_kill = len(site.requests)

        second = subprocess.Popen(_crawl_command(sources, db), env=_env(tmp_path), start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        waits, errors = [], []
        while second.poll() is None:  # a reader in another process while the crawl writes
            started = time.monotonic()
            try:
                with Store(db, read_only=True) as store:
                    store.query("SELECT count(*) FROM pages")
            except StoreError as exc:
                errors.append(str(exc))
            waits.append(time.monotonic() - started)
            time.sleep(0.05)
        assert second.returncode == 0, second.stderr.read().decode()[-3000:]
        refetched = {p for p in site.requests[requests_at_kill:] if p.startswith("/sida/")}

    assert errors == []
    assert max(waits) < 1.0
    assert len(waits) > 20
    before_paths = {u.split("127.0.0.1", 1)[1].split("/", 1)[1] for u in fetched_before if "/sida/" in u}
    assert not {p.lstrip("/") for p in refetched} & before_paths, "pages fetched before the kill were fetched again"
    with Store(db, read_only=True) as store:
        pages = store.query("SELECT count(*) AS n, count(DISTINCT url) AS u FROM pages")
        docs = store.query("SELECT url FROM documents WHERE url LIKE '%/sida/%'")
        dup_paragraphs = store.query("SELECT count(*) - count(DISTINCT para_id) AS d FROM paragraphs")
        staged = store.query("SELECT count(*) AS n FROM staged_pages")
        open_cycles = store.query("SELECT count(*) AS n FROM crawl_cycles WHERE finished_at IS NULL")
    assert pages["n"][0] == pages["u"][0]
    assert len(docs) == N_PAGES, "a page was lost"
    assert dup_paragraphs["d"][0] == 0
    assert staged["n"][0] == 0 and open_cycles["n"][0] == 0
