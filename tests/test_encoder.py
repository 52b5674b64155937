"""The e5 components (pipeline/encoder.py): segmenting, int8 storage, the encoder and the heads.

A tiny randomly initialised BERT with a word-level tokenizer stands in for e5-small, so these tests
need no trained model; tests/test_nlp_model.py checks the shipped pipeline.
"""

from __future__ import annotations

import numpy as np
import pytest
import spacy
import torch
from spacy.pipeline._edit_tree_internals.edit_trees import EditTrees
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import BertConfig, BertModel

from pipeline import encoder

WORDS = ["<pad>", "<s>", "</s>", "<unk>", "Anna", "Svensson", "bor", "i", "Lund", ".", "Kommunerna", "får", "pengar"]


@pytest.fixture()
def nlp():
    return spacy.blank("sv")


@pytest.fixture()
def tokenizer():
    return Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))


@pytest.fixture()
def transformer(tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, pad_token_id=0)
    component = encoder.Transformer(max_pieces=6, batch_size=2)
    component.set_model(BertModel(config, add_pooling_layer=False).eval(), tokenizer)
    return component


def test_segments_cut_at_sentence_ends_line_breaks_and_the_piece_limit():
    words = ["A", "b", ".", "C", "\n", "d", "e", "f", "g"]
    piece_words = [0, 1, 1, 2, 3, 5, 6, 7, 8]  # "b" has two pieces, "\n" none
    assert encoder.segments(words, piece_words, limit=3) == [(0, 2), (2, 3), (3, 5), (5, 8), (8, 9)]


def test_segment_inputs_mark_the_first_and_last_piece_of_each_word():
    ids, piece_words = [10, 11, 12, 13], [0, 1, 1, 3]  # word 2 has no piece
    [(start, piece_ids, first, last)] = encoder.segment_inputs(ids, piece_words, [(0, 4)], cls_id=1, sep_id=2, limit=8)
    assert (start, piece_ids) == (0, [1, 10, 11, 12, 13, 2])
    assert (first, last) == ([1, 2, -1, 4], [1, 3, -1, 4])


def test_a_word_longer_than_the_limit_is_cut():
    ids, piece_words = list(range(10, 20)), [0] + [1] * 8 + [2]  # word 1 (a pasted URL) has 8 pieces
    ranges = encoder.segments(["Se", "https://…", "."], piece_words, limit=4)
    assert ranges == [(0, 1), (1, 2), (2, 3)]
    inputs = encoder.segment_inputs(ids, piece_words, ranges, cls_id=1, sep_id=2, limit=4)
    assert [len(piece_ids) for _, piece_ids, _, _ in inputs] == [3, 6, 3]
    assert inputs[1][2:] == ([1], [4])


def test_decode_bio_opens_an_entity_on_a_stray_inside_tag():
    tags = ["B-PER", "I-PER", "O", "I-ORG", "I-ORG", "B-LOC", "B-LOC", "I-PER"]
    assert encoder.decode_bio(tags) == [(0, 2, "PER"), (3, 5, "ORG"), (5, 6, "LOC"), (6, 7, "LOC"), (7, 8, "PER")]


def test_int8_storage_is_a_quarter_and_close_to_the_weights():
    torch.manual_seed(0)
    state = {"w": torch.randn(50, 40), "b": torch.randn(40)}
    stored = encoder.quantize_state(state)
    assert stored["w"].dtype == torch.int8 and stored["w.scale"].shape == (50, 1)
    restored = encoder.dequantize_state(stored)
    assert set(restored) == {"w", "b"}
    assert torch.equal(restored["b"], state["b"])
    assert (restored["w"] - state["w"]).abs().max() <= stored["w.scale"].max() / 2 + 1e-6


def test_transformer_vectors_do_not_depend_on_batching_or_length(nlp, transformer):
    long_doc = nlp.make_doc("Anna Svensson bor i Lund Anna Svensson bor i Lund .")  # > max_pieces: two segments
    short_doc = nlp.make_doc("Kommunerna får pengar .\n\nAnna bor i Lund")
    transformer.set_tensors([long_doc, short_doc])
    alone = nlp.make_doc(short_doc.text)
    transformer.set_tensors([alone])
    vectors = short_doc._.e5_vectors
    assert vectors.shape == (len(short_doc), 32)
    np.testing.assert_allclose(vectors, alone._.e5_vectors, atol=1e-5)
    space = [t.i for t in short_doc if t.is_space]
    assert space and not vectors[space].any()
    assert all(long_doc._.e5_vectors[i].any() for i in range(len(long_doc)))


def test_transformer_round_trip_through_disk(nlp, transformer, tmp_path):
    doc = nlp.make_doc("Anna Svensson bor i Lund .")
    transformer.set_tensors([doc])
    transformer.to_disk(tmp_path / "transformer")
    loaded = encoder.Transformer().from_disk(tmp_path / "transformer")
    assert loaded.max_pieces == 6
    again = nlp.make_doc(doc.text)
    loaded.set_tensors([again])
    np.testing.assert_allclose(again._.e5_vectors, doc._.e5_vectors, atol=0.05)


def one_hot_doc(nlp, text: str, classes: list[int], width: int = 4):
    """A Doc whose token i has the vector e_{classes[i]} (so an identity head predicts that class)."""
    doc = nlp.make_doc(text)
    vectors = np.zeros((len(doc), width), dtype="float32")
    for i, k in enumerate(classes):
        if not doc[i].is_space:
            vectors[i, k] = 1.0
    doc._.e5_vectors = vectors
    return doc


BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.mark.parametrize(
    ("rows", "outside", "expected"),
    [
        # a sequence cannot start inside an entity: the best valid start is B-PER, then I-PER
        ([[0, 2, 3, 0, 0], [0, 0, 3, 0, 0]], [False, False], ["B-PER", "I-PER"]),
        # I-LOC cannot continue a PER entity, even where it is the best tag of its token
        ([[0, 3, 0, 0, 0], [0, 0, 2, 0, 2.5]], [False, False], ["B-PER", "I-PER"]),
        # a whitespace token is O, so the name after it starts anew
        ([[0, 3, 0, 0, 0], [0, 0, 3, 0, 0], [0, 2, 2.5, 0, 0]], [False, True, False], ["B-PER", "O", "B-PER"]),
    ],
)
def test_best_bio_path_keeps_to_the_tag_scheme(rows, outside, expected):
    assert encoder.best_bio_path(np.array(rows, dtype="float32"), BIO, np.array(outside)) == expected
    assert encoder.best_bio_path(np.zeros((0, 5)), BIO, np.zeros(0, dtype=bool)) == []


def test_ner_head_sets_entities_and_reports_entity_types(nlp, tmp_path):
    head = encoder.EntityRecognizer("ner")
    head.set_weights(np.eye(4), np.zeros(4), ["O", "B-PER", "I-PER", "B-LOC"])
    doc = head(one_hot_doc(nlp, "Anna Svensson\nbor i Lund", [1, 2, 2, 0, 0, 3]))
    assert [(e.text, e.label_) for e in doc.ents] == [("Anna Svensson", "PER"), ("Lund", "LOC")]
    head.to_disk(tmp_path / "ner")
    loaded = encoder.EntityRecognizer("ner").from_disk(tmp_path / "ner")
    assert loaded.labels == ("LOC", "PER")
    assert [e.text for e in loaded(one_hot_doc(nlp, "Anna bor", [1, 0])).ents] == ["Anna"]


MORPH_CLASSES = [["NOUN", "Definite=Def|Number=Plur"], ["VERB", ""], ["PUNCT", ""]]


def test_morphologizer_head_sets_pos_and_features(nlp):
    head = encoder.Morphologizer("morphologizer")
    head.set_weights(np.eye(3, 4), np.zeros(3), MORPH_CLASSES)
    doc = head(one_hot_doc(nlp, "Kommunerna får .", [0, 1, 2]))
    assert [t.pos_ for t in doc] == ["NOUN", "VERB", "PUNCT"]
    assert str(doc[0].morph) == "Definite=Def|Number=Plur" and str(doc[1].morph) == ""
    assert all(t.has_morph() for t in doc)  # "no features" is an annotation (spaCy scores it so)
    assert head.labels[0] == "POS=NOUN|Definite=Def|Number=Plur"


def blended_morphologizer(weight: float) -> encoder.Morphologizer:
    """e5 head: one-hot input → that class (p 0.79); tensor head (width 2): feature 0 → ADJ (a class the
    e5 head lacks), feature 1 → VERB (p 0.98 each); no feature → 50/50."""
    head = encoder.Morphologizer("morphologizer", tensor_weight=weight)
    head.set_weights(2 * np.eye(3, 4), np.zeros(3), MORPH_CLASSES)
    head.set_tensor_head(np.array([[4.0, 0], [0, 4.0]]), np.zeros(2), [["ADJ", "Degree=Pos"], ["VERB", ""]])
    return head


def with_tensor(doc, rows: list[list[float]]):
    doc.tensor = np.array(rows, dtype="float32")
    return doc


def test_morphologizer_averages_with_the_head_over_doc_tensor(nlp, tmp_path):
    doc = with_tensor(one_hot_doc(nlp, "Kommunerna får .", [0, 1, 2]), [[1, 0], [1, 0], [0, 0]])
    # alone, the e5 head decides; averaged, the surer tensor head wins where it is sure
    assert [t.pos_ for t in blended_morphologizer(0.0)(doc)] == ["NOUN", "VERB", "PUNCT"]
    head = blended_morphologizer(0.5)
    assert [t.pos_ for t in head(doc)] == ["ADJ", "ADJ", "PUNCT"]
    assert str(doc[0].morph) == "Degree=Pos"
    assert "POS=ADJ|Degree=Pos" in head.labels and len(head.labels) == 4  # the union, VERB once
    head.to_disk(tmp_path / "morphologizer")
    loaded = encoder.Morphologizer("morphologizer", tensor_weight=0.5).from_disk(tmp_path / "morphologizer")
    assert [t.pos_ for t in loaded(doc)] == ["ADJ", "ADJ", "PUNCT"]


def test_blended_morphologizer_needs_tok2vec_and_its_head(nlp):
    doc = one_hot_doc(nlp, "Kommunerna får", [0, 1])
    with pytest.raises(ValueError, match="tok2vec"):
        blended_morphologizer(0.5)(doc)  # no doc.tensor
    head = encoder.Morphologizer("morphologizer", tensor_weight=0.5)
    head.set_weights(np.eye(3, 4), np.zeros(3), MORPH_CLASSES)
    with pytest.raises(ValueError, match="no tensor head"):
        head(with_tensor(doc, [[1, 0], [0, 1]]))
    with pytest.raises(ValueError, match="tensor_weight"):
        encoder.Morphologizer("morphologizer", tensor_weight=1.5)


def test_morphologizer_factory_takes_the_weight(nlp):
    head = nlp.add_pipe("samverkan_morphologizer", name="morphologizer", config={"tensor_weight": 0.25})
    assert head.tensor_weight == 0.25 and nlp.config["components"]["morphologizer"]["tensor_weight"] == 0.25


def test_lemmatizer_takes_the_best_tree_that_applies(nlp, tmp_path):
    head = encoder.Lemmatizer("lemmatizer", top_k=2)
    plural = head.trees.add("kommunerna", "kommun")  # strips "erna"
    past = head.trees.add("gick", "gå")
    head.set_weights(np.array([[1.0, 0, 0, 0], [0.5, 1.0, 0, 0]]), np.zeros(2), [plural, past])
    # "Lund" cannot lose "erna": the second-best tree is tried, then the form itself is kept
    doc = head(one_hot_doc(nlp, "Kommunerna gick Lund", [0, 1, 0]))
    assert [t.lemma_ for t in doc] == ["Kommun", "gå", "Lund"]
    head.to_disk(tmp_path / "lemmatizer")
    loaded = encoder.Lemmatizer("lemmatizer").from_disk(tmp_path / "lemmatizer")
    assert [t.lemma_ for t in loaded(one_hot_doc(nlp, "Kommunerna", [0]))] == ["Kommun"]
    assert isinstance(loaded.trees, EditTrees)


def test_heads_need_the_transformer(nlp):
    head = encoder.EntityRecognizer("ner")
    head.set_weights(np.eye(2, 4), np.zeros(2), ["O", "B-PER"])
    with pytest.raises(ValueError, match="transformer"):
        head(nlp.make_doc("Anna bor i Lund"))


def test_int8_storage_is_stable_when_saved_again(transformer, tmp_path):
    transformer.to_disk(tmp_path / "a")
    encoder.Transformer().from_disk(tmp_path / "a").to_disk(tmp_path / "b")
    assert (tmp_path / "a" / encoder.WEIGHTS).read_bytes() == (tmp_path / "b" / encoder.WEIGHTS).read_bytes()
