"""The trained Swedish pipelines tag sentences written for this test.

``models/sv_samverkan`` (e5 transformer, shipped) and ``models/sv_samverkan_cnn`` (the CNN fallback)
both run every test. The sentences are not from the training corpora. Skipped when a pipeline has
not been built (``make models``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module", params=["sv_samverkan", "sv_samverkan_cnn"])
def nlp(request):
    path = MODELS / request.param
    if not (path / "config.cfg").exists():
        pytest.skip(f"no trained pipeline at {path} (run `make models`)")
    spacy = pytest.importorskip("spacy")
    return spacy.load(path)


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
        # capitalised common nouns, adjectival participles and -t adverbs follow UD's lemmas
        ("Besluten fattades av nämnderna.", "Besluten", "beslut"),
        ("Kvinnorna i föreningen träffades i går.", "Kvinnorna", "kvinna"),
        ("De ökade kostnaderna oroar nämnden.", "ökade", "ökad"),
        ("Verksamheten utvecklas snabbt.", "snabbt", "snabb"),
    ],
)
def test_lemmas(nlp, text, word, lemma):
    doc = nlp(text)
    assert {t.lemma_ for t in doc if t.text == word} == {lemma}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # `ha` is AUX before a participle, VERB with an object; infinitive `att` is PART, `att` + clause SCONJ
        ("Nämnden har beslutat att avslå ansökan.", {"har": "AUX", "beslutat": "VERB", "att": "PART"}),
        ("Hon har två barn och en hund.", {"har": "VERB", "två": "NUM", "barn": "NOUN"}),
        ("Beslutet kan inte överklagas.", {"kan": "AUX", "inte": "PART", "överklagas": "VERB"}),
        ("Det är viktigt att alla får stöd.", {"är": "AUX", "viktigt": "ADJ", "att": "SCONJ"}),
    ],
)
def test_tags(nlp, text, expected):
    assert {t.text: t.pos_ for t in nlp(text) if t.text in expected} == expected


def test_parse_and_tags(nlp):
    doc = nlp("Socialnämnden beslutade att bevilja ansökan.")
    assert [t.pos_ for t in doc][:2] == ["NOUN", "VERB"]
    roots = [t for t in doc if t.dep_ == "ROOT"]
    assert [t.text for t in roots] == ["beslutade"]


def test_entities_end_at_line_breaks(nlp):
    doc = nlp("Riksförbundet FUB\nAnna Lindqvist, ordförande")
    assert ("Anna Lindqvist", "PER") in ents(doc)
    assert all("\n" not in e.text for e in doc.ents)


def test_shipped_pipeline_runs_the_e5_encoder():
    spacy = pytest.importorskip("spacy")
    if not (MODELS / "sv_samverkan" / "config.cfg").exists():
        pytest.skip("no trained pipeline")
    nlp = spacy.load(MODELS / "sv_samverkan")
    assert nlp.get_pipe_meta("ner").factory == "samverkan_ner"
    assert nlp.get_pipe_meta("transformer").factory == "samverkan_transformer"
    # the morphologizer averages the e5 head with the CNN morphologizer's layer over doc.tensor
    morphologizer = nlp.get_pipe("morphologizer")
    assert morphologizer.tensor_weight == 0.5 and morphologizer.tensor_head is not None
    doc = nlp("Socialnämnden i Lund beslutade i går.\n\nMaria Berg deltog.")
    assert doc._.e5_vectors.shape == (len(doc), 768)
    assert ("Maria Berg", "PER") in ents(doc)
    # a token longer than the encoder's 512 positions (a pasted link) is cut, not an error
    long = nlp("Läs mer: https://example.org/" + "a" * 3000 + " skriver Maria Berg.")
    assert ("Maria Berg", "PER") in ents(long)


@pytest.mark.parametrize("name", ["sv_samverkan", "sv_samverkan_cnn"])
def test_meta_reports_the_held_out_scores(name):
    """``spacy info`` shows the scores of models/metrics, not training-time scores on trained-on data."""
    meta_path = MODELS / name / "meta.json"
    if not meta_path.exists():
        pytest.skip("no trained pipeline")
    performance = json.loads(meta_path.read_text(encoding="utf-8"))["performance"]
    report = json.loads((MODELS / "metrics" / f"{name}.json").read_text(encoding="utf-8"))
    for key in ("pos_acc", "morph_acc", "lemma_acc", "dep_las"):
        assert performance[key] == report["ud_test"][key]
    assert performance["ents_f"] == report["ner_test"]["all_micro"]["f"]
    assert performance["ents_per_type"]["ORG"]["f"] == report["ner_test"]["per_label"]["ORG"]["f"]
