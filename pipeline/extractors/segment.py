"""``samverkan_lines``: a line break always starts a new sentence (lists, headings, minutes)."""

from __future__ import annotations

from spacy.language import Language
from spacy.tokens import Doc


@Language.component("samverkan_lines")
def line_starts(doc: Doc) -> Doc:
    """Mark the token after a newline as a sentence start (runs before the parser or after a sentencizer)."""
    for i, token in enumerate(doc[:-1]):
        if token.is_space and "\n" in token.text:
            doc[i + 1].is_sent_start = True
        elif "\n" in token.whitespace_ and i + 1 < len(doc):
            doc[i + 1].is_sent_start = True
    return doc
