"""Shared fixtures: small documents with fake embeddings, an in-memory store."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest

from pipeline.records import (
    ActionPoint,
    DateMention,
    Document,
    EmbeddedDocument,
    EntityMention,
    Extraction,
    FetchResult,
    Meeting,
    OrganisationMention,
    PersonMention,
    paragraph_key,
)

from pipeline.store import Store


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    """n random L2-normalised 384-dim vectors."""
    v = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_doc(url: str, paragraphs: list[str], *, source: str = "t", published: date | None = None,
             extraction: Extraction | None = None, seed: int = 0) -> EmbeddedDocument:
    """An embedded document with random vectors, ready for Store.save_documents."""
    doc = Document(url=url, source=source, title=f"Titel {url.rsplit('/', 1)[-1]}", published=published,
                   author=None, paragraphs=paragraphs, content_hash=paragraph_key("\n\n".join(paragraphs)))
    return EmbeddedDocument(doc, extraction or Extraction(document_date=published), unit_vectors(len(paragraphs), seed))


def fetched(url: str, outcome: str = "ok", status: int | None = 200, **kw) -> FetchResult:
    return FetchResult(url=url, source=kw.pop("source", "t"), status=status, fetched_at=datetime.now(timezone.utc),
                       outcome=outcome, **kw)


@pytest.fixture
def store():
    with Store(":memory:") as db:
        yield db


@pytest.fixture
def minutes_extraction() -> Extraction:
    return Extraction(
        document_date=date(2024, 3, 14),
        entities=[EntityMention("PER", "Lena Berg", 0, 9), EntityMention("ORG", "IVO", 20, 23)],
        dates=[DateMention("senast den 15 april", date(2024, 4, 15), date(2024, 4, 15), "day", 30, 49)],
        people=[PersonMention("Lena Berg", "enhetschef", "Socialförvaltningen", ["Lena"], True)],
        organisations=[
            OrganisationMention("Inspektionen för vård och omsorg", ["IVO"]),
            OrganisationMention("Socialförvaltningen", ["socialförvaltningen"]),
        ],
        action_points=[ActionPoint("Lena återkommer senast den 15 april.", ["Lena Berg"], "2024-04-15",
                                   date(2024, 4, 15), date(2024, 4, 15))],
        meeting=Meeting("Brukarrådet", date(2024, 3, 14), "Lena Berg"),
    )


@pytest.fixture(scope="session")
def e5_model():
    """The converted e5 model directory; tests that embed skip clearly when it is missing."""
    from pipeline.embed import EmbedSettings

    path = EmbedSettings().model_path
    if not (path / "modules.json").exists():
        pytest.skip(f"{path} not built: run `make setup` (models/convert_e5.py)")
    return path


@pytest.fixture(scope="session")
def trained_nlp():
    """The trained Swedish pipeline directory; tests that need it skip clearly when it is missing."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "models" / "sv_samverkan"
    if not (path / "config.cfg").exists():
        pytest.skip(f"{path} not built: run `make models`")
    return path


@pytest.fixture(scope="session")
def trained(trained_nlp):
    """The trained Swedish pipeline with the extractors, loaded once."""
    from pipeline import nlp as nlp_stage

    return nlp_stage.load(trained_nlp)
