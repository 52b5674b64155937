"""NLP stage: the trained Swedish spaCy pipeline plus samverkan's extractor components.

``load()`` gives the pipeline, ``annotate()`` turns Documents into AnnotatedDocuments, ``extract_text()``
handles one plain text (the ``samverkan extract`` command).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from pipeline import encoder, lemmatizer  # noqa: F401  (register our components; also found via entry points)
from pipeline import extractors
from pipeline.extractors.lexicon import load_lexicon
from pipeline.extractors.text import boilerplate_lines
from pipeline.records import AnnotatedDocument, Document, EntityMention, Extraction

logger = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "sv_samverkan"
# the CNN-only pipeline: about 4× faster on CPU, less accurate (models/README.md)
CNN_MODEL = DEFAULT_MODEL.with_name("sv_samverkan_cnn")


def load(model: str | Path | None = None, lexicon_dir: str | Path | None = None) -> Language:
    """Load the Swedish pipeline and add the ``samverkan_*`` extractors.

    Args:
        model: path or package name of a spaCy pipeline; default ``models/sv_samverkan`` (e5 transformer;
            ``models/sv_samverkan_cnn`` is the faster CNN-only fallback). ``"blank"`` (or a
            missing default model) gives ``spacy.blank("sv")`` with a sentencizer — rules only.
        lexicon_dir: lexicon directory for the extractors (default ``pipeline/lexicons``).
    """
    if model == "blank" or (model is None and not (DEFAULT_MODEL / "config.cfg").exists()):
        if model is None:
            logger.warning("no trained pipeline at %s: using a blank Swedish pipeline", DEFAULT_MODEL)
        nlp = spacy.blank("sv")
        nlp.add_pipe("sentencizer")
    else:
        nlp = spacy.load(model or DEFAULT_MODEL)
    config = {"lexicon_dir": str(lexicon_dir) if lexicon_dir else None}
    if "samverkan_lines" not in nlp.pipe_names:
        if "parser" in nlp.pipe_names:
            nlp.add_pipe("samverkan_lines", before="parser")
        elif "sentencizer" in nlp.pipe_names:
            nlp.add_pipe("samverkan_lines", after="sentencizer")
        else:
            nlp.add_pipe("samverkan_lines", first=True)
    for name in extractors.COMPONENTS:
        if name not in nlp.pipe_names:
            nlp.add_pipe(name, config=config)
    return nlp


def _make_doc(nlp: Language, text: str, published: date | None, skip: list[tuple[int, int]]) -> Doc:
    doc = nlp.make_doc(text)
    doc._.document_date = published
    doc._.infer_date = published is None
    doc._.boilerplate_spans = skip
    return doc


def _extraction(doc: Doc, boilerplate: list[str] | None = None) -> Extraction:
    return Extraction(
        document_date=doc._.document_date,
        entities=[EntityMention(e.label_, e.text, e.start_char, e.end_char) for e in doc.ents],
        dates=list(doc._.dates or []),
        people=list(doc._.people or []),
        organisations=list(doc._.organisations or []),
        action_points=list(doc._.action_points or []),
        meeting=doc._.meeting,
        boilerplate=boilerplate or [],
    )


def _lexicon(nlp: Language):
    for name in extractors.COMPONENTS:
        if name in nlp.pipe_names:
            comp = nlp.get_pipe(name)
            lex = getattr(comp, "lex", None) or getattr(getattr(comp, "finder", None), "lex", None)
            if lex is not None:
                return lex
    return load_lexicon()


def annotate(nlp: Language, documents: Iterable[Document], batch_size: int = 16) -> list[AnnotatedDocument]:
    """Run the pipeline over cleaned documents (paragraphs joined with a blank line; offsets refer to that).

    The document date is ``Document.published`` when set, else inferred from the text.
    """
    lex = _lexicon(nlp)
    docs_in = list(documents)
    made = []
    for d in docs_in:
        text = d.text
        bp = boilerplate_lines(text, lex)
        made.append((_make_doc(nlp, text, d.published, [(s, e) for s, e, _ in bp]), [t for _, _, t in bp]))
    out: list[AnnotatedDocument] = []
    for (_, bp_texts), document, doc in zip(made, docs_in, nlp.pipe((m for m, _ in made), batch_size=batch_size)):
        out.append(AnnotatedDocument(document, _extraction(doc, bp_texts)))
    return out


def extract_text(nlp: Language, text: str, document_date: date | None = None) -> Extraction:
    """Extract everything from one plain text; boilerplate lines are reported and not extracted from."""
    lex = _lexicon(nlp)
    bp = boilerplate_lines(text, lex)
    doc = nlp(_make_doc(nlp, text, document_date, [(s, e) for s, e, _ in bp]))
    return _extraction(doc, [t for _, _, t in bp])
