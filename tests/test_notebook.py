"""notebooks/explore.ipynb runs headless, cell by cell, against a database built from the demo site."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import unit_vectors
from pipeline import clean, nlp
from pipeline.records import EmbeddedDocument
from pipeline.search import stopwords
from pipeline.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


def demo_documents():
    """The demo site's pages and PDF, cleaned as a crawl would clean them."""
    site = ROOT / "data" / "demo_site"
    docs = []
    for page in sorted(site.rglob("index.html")):
        rel = page.parent.relative_to(site).as_posix()
        if not rel.startswith(("admin", "_src")):
            doc = clean.extract_html(page.read_text(encoding="utf-8"), url=f"http://127.0.0.1:8765/{rel}/", source="demo")
            docs.append(doc)
    for pdf in sorted(site.rglob("*.pdf")):
        docs.append(clean.extract_pdf(pdf.read_bytes(), url=f"http://127.0.0.1:8765/dokument/{pdf.name}", source="demo"))
    return [d for d in docs if d is not None]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """Clean → rules-only NLP → (random) vectors → store → indexes, like the flow does."""
    db = tmp_path_factory.mktemp("notebook") / "demo.duckdb"
    annotated = nlp.annotate(nlp.load("blank"), demo_documents())
    embedded, seed = [], 0
    for item in annotated:
        n = len(item.document.paragraphs)
        embedded.append(EmbeddedDocument(item.document, item.extraction, unit_vectors(n, seed) if n else np.zeros((0, 384), np.float32)))
        seed += 1
    with Store(db) as store:
        store.save_documents(embedded)
        store.rebuild_fts(stopwords())
        store.update_search_index(full_text=True)
        counts = store.query("SELECT (SELECT count(*) FROM organisation_mentions) AS orgs, (SELECT count(*) FROM person_mentions) AS people")
    assert counts["orgs"][0] > 0 and counts["people"][0] > 0  # the plot has something to draw
    return db


def test_notebook_runs_without_errors(demo_db, e5_model, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("SAMVERKAN_DB", str(demo_db))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError when a cell fails
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot was drawn
    search_cell = next(c for c in notebook.cells if c.cell_type == "code" and "resultat = search(" in c.source)
    table = "".join(o.get("data", {}).get("text/plain", "") for o in search_cell["outputs"])
    assert "paragraph" in table and "published" in table, search_cell["outputs"]
