"""models/spacy/assemble.py carries a CNN morphologizer's output layer into the e5 morphologizer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import spacy
from spacy.training import Example

from pipeline import encoder

SCRIPT = Path(__file__).resolve().parent.parent / "models" / "spacy" / "assemble.py"
TRAIN = [
    ("Kommunen beslutar i dag .", ["NOUN", "VERB", "ADP", "NOUN", "PUNCT"], ["Definite=Def", "", "", "", ""]),
    ("Hon har två barn .", ["PRON", "VERB", "NUM", "NOUN", "PUNCT"], ["", "", "", "Number=Plur", ""]),
]


def load_assemble():
    spec = importlib.util.spec_from_file_location("assemble", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained_cnn_morphologizer():
    """A tiny tok2vec + morphologizer (listening to it) trained to tag TRAIN."""
    nlp = spacy.blank("sv")
    nlp.add_pipe("tok2vec")
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"}
    nlp.add_pipe("morphologizer", config={"model": {"@architectures": "spacy.Tagger.v2", "tok2vec": listener}})
    examples = []
    for text, pos, morphs in TRAIN:
        doc = nlp.make_doc(text)
        examples.append(Example.from_dict(doc, {"pos": pos, "morphs": morphs}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer)
    return nlp


def test_output_layer_reproduces_the_cnn_morphologizer():
    nlp = trained_cnn_morphologizer()
    weight, bias, classes = load_assemble().output_layer(nlp.get_pipe("morphologizer"))
    assert weight.shape == (len(classes), 96) and ["NOUN", "Number=Plur"] in classes and ["PUNCT", ""] in classes
    head = encoder.Morphologizer("morphologizer", tensor_weight=1.0)  # the CNN layer alone decides
    head.set_weights(np.zeros((1, 4)), np.zeros(1), [["X", ""]])
    head.set_tensor_head(weight, bias, classes)
    for text, _, _ in TRAIN:
        doc = nlp(text)
        cnn = [(t.pos_, str(t.morph)) for t in doc]
        doc._.e5_vectors = np.zeros((len(doc), 4), dtype="float32")
        assert [(t.pos_, str(t.morph)) for t in head(doc)] == cnn
