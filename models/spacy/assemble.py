"""Assemble the shipped pipeline from separately trained spaCy pipelines.

The UD pipeline (``tok2vec``, ``morphologizer``, ``parser``, ``lemmatizer``) is the base; the ``ner``
component is sourced (placed before the parser) from the NER pipeline with its own copy of that pipeline's ``tok2vec``
(``replace_listeners``), so the two encoders stay as they were trained. The NER pipeline's static
vectors (if any) become the assembled pipeline's vectors.

Usage: ``python models/spacy/assemble.py UD_MODEL NER_MODEL OUTPUT_DIR [--name NAME]``
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import spacy
from spacy.language import Language

logger = logging.getLogger(__name__)


def assemble(ud_path: Path, ner_path: Path, name: str = "samverkan", version: str = "1.0.0") -> Language:
    """Return the UD pipeline with the NER pipeline's ``ner`` (and its encoder) added before the parser."""
    nlp = spacy.load(ud_path)
    if "ner" in nlp.pipe_names:  # an assembled pipeline as the base: its NER is replaced
        nlp.remove_pipe("ner")
    ner_nlp = spacy.load(ner_path)
    encoder = "transformer" if "transformer" in ner_nlp.pipe_names else "tok2vec"
    listener_path = "model.tok2vec"
    ner_nlp.replace_listeners(encoder, "ner", [listener_path])
    if ner_nlp.vocab.vectors.shape[0] and not nlp.vocab.vectors.shape[0]:
        # the NER encoder reads static vectors from the shared vocab
        nlp.vocab.vectors = ner_nlp.vocab.vectors
    # before the parser: spaCy's NER never continues an entity across a sentence start, and the
    # parser (trained on Talbanken prose) splits sentences wrongly around names in news/web text
    nlp.add_pipe("ner", source=ner_nlp, before="parser")
    nlp.meta["name"] = name
    nlp.meta["version"] = version
    nlp.meta["description"] = (
        "Swedish pipeline trained for samverkan: UD Swedish-Talbanken (tags, morphology, lemmas, "
        "dependencies) and the Swedish news NER corpus (PER, ORG, LOC, MISC)."
    )
    nlp.meta["license"] = "CC BY-SA 4.0"
    nlp.meta["sources"] = [
        {"name": "UD Swedish-Talbanken", "license": "CC BY-SA 4.0"},
        {"name": "Swedish manually annotated NER (Webbnyheter 2012)", "license": "CC BY 4.0"},
    ]
    return nlp


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ud_model", type=Path)
    parser.add_argument("ner_model", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--name", default="samverkan")
    args = parser.parse_args()
    nlp = assemble(args.ud_model, args.ner_model, name=args.name)
    nlp.to_disk(args.output)
    logger.info("wrote %s with %s", args.output, nlp.pipe_names)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
