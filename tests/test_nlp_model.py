"""The trained Swedish pipeline (models/sv_samverkan) tags sentences written for this test.

The sentences are not from the training corpora. Skipped when the pipeline has not been built
(``make models``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parent.parent / "models" / "sv_samverkan"

pytestmark = pytest.mark.skipif(
    not (MODEL / "config.cfg").exists(), reason=f"no trained pipeline at {MODEL} (run `make models`)"
)


@pytest.fixture(scope="module")
def nlp():
    spacy = pytest.importorskip("spacy")
    return spacy.load(MODEL)


def ents(doc) -> set[tuple[str, str]]:
    return {(e.text, e.label_) for e in doc.ents}


def test_components_and_labels(nlp):
    for name in ("lemmatizer", "parser", "ner"):
        assert name in nlp.pipe_names
    assert {"tok2vec", "transformer"} & set(nlp.pipe_names)
    assert {"tagger", "morphologizer"} & set(nlp.pipe_names)
    assert set(nlp.get_pipe("ner").labels) == {"PER", "ORG", "LOC", "MISC"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Statsministern träffade Maria Johansson i Stockholm på tisdagen.", {("Maria Johansson", "PER"), ("Stockholm", "LOC")}),
        ("Volvo ska bygga en ny fabrik i Göteborg nästa år.", {("Volvo", "ORG"), ("Göteborg", "LOC")}),
        ("– Vi är mycket nöjda, säger Lars Andersson på Skatteverket.", {("Lars Andersson", "PER"), ("Skatteverket", "ORG")}),
    ],
)
def test_entities(nlp, text, expected):
    assert expected <= ents(nlp(text))


@pytest.mark.parametrize(
    ("text", "word", "lemma"),
    [
        ("Kommunerna får mer pengar till äldreomsorgen.", "Kommunerna", "kommun"),
        ("Hon gick hem efter mötet.", "gick", "gå"),
        ("Barnen leker i parken varje dag.", "Barnen", "barn"),
        ("Hon arbetade på socialförvaltningen i tre år.", "socialförvaltningen", "socialförvaltning"),
        ("Besluten fattades av nämnderna.", "nämnderna", "nämnd"),
    ],
)
def test_lemmas(nlp, text, word, lemma):
    doc = nlp(text)
    assert {t.lemma_ for t in doc if t.text == word} == {lemma}


def test_parse_and_tags(nlp):
    doc = nlp("Socialnämnden beslutade att bevilja ansökan.")
    assert [t.pos_ for t in doc][:2] == ["NOUN", "VERB"]
    roots = [t for t in doc if t.dep_ == "ROOT"]
    assert [t.text for t in roots] == ["beslutade"]
