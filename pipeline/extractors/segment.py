"""``samverkan_lines``: a line break always starts a new sentence and ends an entity (lists,
headings, minutes, signatures: "Riksförbundet FUB\\nReferensgruppen" is not one name)."""

from __future__ import annotations

from spacy.language import Language
from spacy.tokens import Doc, Span


@Language.component("samverkan_lines")
def line_starts(doc: Doc) -> Doc:
    """Mark the token after a newline as a sentence start and cut entities at the first line break
    inside them, keeping the part before it (runs after the NER and before the parser)."""
    breaks = set()
    for i, token in enumerate(doc[:-1]):
        if (token.is_space and "\n" in token.text) or "\n" in token.whitespace_:
            doc[i + 1].is_sent_start = True
            breaks.add(i + 1)  # the first token of a new line
    if breaks and doc.ents:
        doc.ents = [_before_break(ent, breaks) for ent in doc.ents if not doc[ent.start].is_space]
    return doc


def _before_break(ent: Span, breaks: set[int]) -> Span:
    end = next((i for i in range(ent.start + 1, ent.end) if i in breaks), ent.end)
    while end > ent.start + 1 and ent.doc[end - 1].is_space:
        end -= 1
    return ent if end == ent.end else Span(ent.doc, ent.start, end, label=ent.label_)
