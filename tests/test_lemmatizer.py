"""The case-folded edit-tree lemmatizer: trees learned on lower case, Swedish capitalisation of lemmas."""

from __future__ import annotations

import pytest

spacy = pytest.importorskip("spacy")

from spacy.tokens import Doc  # noqa: E402
from spacy.training import Example  # noqa: E402

from pipeline.lemmatizer import keeps_capitals, recase  # noqa: E402

PAIRS = [("Kvinnan", "kvinna"), ("flickan", "flicka"), ("Pojken", "pojke"), ("tjejen", "tjej")]


def initialized(factory: str):
    nlp = spacy.blank("sv")
    lemmatizer = nlp.add_pipe(factory, config={"min_tree_freq": 1})
    words = [form for form, _ in PAIRS]
    gold = Doc(nlp.vocab, words=words, lemmas=[lemma for _, lemma in PAIRS])
    lemmatizer.initialize(lambda: [Example(Doc(nlp.vocab, words=words), gold)], nlp=nlp)
    return nlp, lemmatizer


def test_capitalised_forms_share_the_lower_case_tree():
    _, folded = initialized("samverkan_casefold_lemmatizer")
    _, plain = initialized("trainable_lemmatizer")
    # -n removal and -en removal: two trees once case is folded; spaCy's own learns one per capital too
    assert len(folded.labels) == 2
    assert len(plain.labels) == 4


def lemmatize(words: list[str], pos: list[str], form: str, lemma: str) -> list[str]:
    """Apply the tree learned from (form, lemma) to every word, as the component sets it."""
    nlp, lemmatizer = initialized("samverkan_casefold_lemmatizer")
    tree = lemmatizer.trees.add(form, lemma)
    doc = Doc(nlp.vocab, words=words, pos=pos)
    lemmatizer.set_annotations([doc], [[tree] * len(words)])
    return [t.lemma_ for t in doc]


def test_common_nouns_get_lower_case_lemmas():
    assert lemmatize(["Kvinnan", "Flickan"], ["NOUN", "NOUN"], "kvinnan", "kvinna") == ["kvinna", "flicka"]


def test_proper_nouns_and_inner_capitals_keep_them():
    lemmas = lemmatize(["Stockholms", "LO-avtalets", "Kommuns"], ["PROPN", "NOUN", "NOUN"], "barns", "barn")
    assert lemmas == ["Stockholm", "LO-avtalet", "kommun"]


def test_backoff_form_is_lower_cased_too():
    # a tree that cannot apply (nothing to strip from a one-letter word) backs off to the form
    nlp, lemmatizer = initialized("samverkan_casefold_lemmatizer")
    doc = Doc(nlp.vocab, words=["Å"], pos=["INTJ"])
    lemmatizer.set_annotations([doc], [[-1]])
    assert doc[0].lemma_ == "å"


def test_existing_lemmas_are_left_alone():
    nlp, lemmatizer = initialized("samverkan_casefold_lemmatizer")
    doc = Doc(nlp.vocab, words=["Kvinnan"], pos=["NOUN"], lemmas=["Kvinna"])
    lemmatizer.set_annotations([doc], [[lemmatizer.trees.add("kvinnan", "kvinna")]])
    assert doc[0].lemma_ == "Kvinna"


def test_recase_and_keeps_capitals():
    assert recase("stockholm", "Stockholms") == "Stockholm"
    assert recase("eu", "EU:s") == "EU"
    assert recase("gå", "Gick") == "Gå"
    nlp = spacy.blank("sv")
    doc = Doc(nlp.vocab, words=["Besluten", "EU", "Malmö"], pos=["NOUN", "NOUN", "PROPN"])
    assert [keeps_capitals(t) for t in doc] == [False, True, True]


def test_round_trip_keeps_folded_trees(tmp_path):
    nlp, lemmatizer = initialized("samverkan_casefold_lemmatizer")
    nlp.to_disk(tmp_path / "m")
    loaded = spacy.load(tmp_path / "m").get_pipe("samverkan_casefold_lemmatizer")
    assert loaded.labels == lemmatizer.labels
    assert loaded.trees.apply(loaded.labels[0], "Kvinnan") is not None
