"""Case-folded edit-tree lemmatizer (spaCy component ``samverkan_casefold_lemmatizer``).

spaCy's trainable lemmatizer learns edit trees on the form as written, so ``Kvinnan → kvinna`` becomes a
tree that rewrites a capital ``K`` and does not carry over to other sentence-initial words: capitalised
common nouns were the largest group of lemma errors. This component is spaCy's ``EditTreeLemmatizer``
with its trees learned and applied on lower-cased forms and lemmas. Swedish lemmas are lower case
(UD Talbanken: 5,200 of 5,215 non-proper-noun lemmas in the tuning split), so the lemma keeps the form's
capitals only for proper nouns and for words with a capital after their first letter (``EU``,
``LO-SAF-uppgörelsen``).
"""

from __future__ import annotations

from typing import Callable

from spacy.language import Language
from spacy.pipeline.edit_tree_lemmatizer import DEFAULT_EDIT_TREE_LEMMATIZER_MODEL, EditTreeLemmatizer
from spacy.tokens import Doc, Token
from thinc.api import Model


class _FoldedTrees:
    """spaCy's ``EditTrees`` seen through lower-cased forms and lemmas."""

    def __init__(self, trees):
        self._trees = trees

    def add(self, form: str, lemma: str) -> int:
        return self._trees.add(form.lower(), lemma.lower())

    def apply(self, tree_id: int, form: str) -> str | None:
        return self._trees.apply(tree_id, form.lower())

    def __getattr__(self, name: str):
        return getattr(self._trees, name)


def keeps_capitals(token: Token) -> bool:
    """Whether the lemma keeps the form's capitals: proper nouns and words capitalised inside."""
    return token.pos_ == "PROPN" or any(c.isupper() for c in token.text[1:])


def recase(lemma: str, form: str) -> str:
    """Copy the form's capitals onto the lemma's matching prefix (``stockholms``, ``Stockholms`` → ``Stockholm``)."""
    chars = list(lemma)
    for i, (lem, orig) in enumerate(zip(lemma, form)):
        if orig.lower() != lem:
            break
        chars[i] = orig
    return "".join(chars)


class CasefoldLemmatizer(EditTreeLemmatizer):
    """``EditTreeLemmatizer`` whose edit trees map lower-cased forms to lower-cased lemmas."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trees = _FoldedTrees(self.trees)

    def set_annotations(self, docs: list[Doc], batch_tree_ids) -> None:
        """Set lemmas as spaCy does, then give them Swedish capitalisation."""
        docs = list(docs)
        unset = [[self.overwrite or token.lemma == 0 for token in doc] for doc in docs]
        super().set_annotations(docs, batch_tree_ids)
        for doc, doc_unset in zip(docs, unset):
            for token, was_unset in zip(doc, doc_unset):
                if was_unset and token.lemma != 0:
                    lemma = token.lemma_.lower()
                    token.lemma_ = recase(lemma, token.text) if keeps_capitals(token) else lemma


@Language.factory(
    "samverkan_casefold_lemmatizer",
    assigns=["token.lemma"],
    default_config={
        "model": DEFAULT_EDIT_TREE_LEMMATIZER_MODEL,
        "backoff": "orth",
        "min_tree_freq": 3,
        "overwrite": False,
        "top_k": 1,
        "scorer": {"@scorers": "spacy.lemmatizer_scorer.v1"},
    },
    default_score_weights={"lemma_acc": 1.0},
)
def make_casefold_lemmatizer(
    nlp: Language,
    model: Model,
    name: str,
    backoff: str | None,
    min_tree_freq: int,
    overwrite: bool,
    top_k: int,
    scorer: Callable | None,
) -> CasefoldLemmatizer:
    """spaCy's trainable lemmatizer on lower-cased forms, with Swedish lemma capitalisation."""
    return CasefoldLemmatizer(
        nlp.vocab,
        model,
        name,
        backoff=backoff,
        min_tree_freq=min_tree_freq,
        overwrite=overwrite,
        top_k=top_k,
        scorer=scorer,
    )
