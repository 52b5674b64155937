"""The e5-small encoder and its tagging heads, as spaCy components of ``sv_samverkan``.

``samverkan_transformer`` (pipe name ``transformer``) runs a multilingual-e5-small encoder, fine-tuned
here and pruned to the word pieces Swedish text uses, over each Doc and stores one vector per token
(its first and its last word piece, concatenated: the ending carries gender, number and the lemma's
edit) in ``doc._.e5_vectors`` (not ``doc.tensor``: spaCy's listeners, e.g. the CNN
parser's, read that at inference). Three linear heads read those vectors:

* ``samverkan_morphologizer`` (``morphologizer``): UPOS + morphological features (optionally
  averaged with the CNN morphologizer's output layer over ``doc.tensor``),
* ``samverkan_ner`` (``ner``): BIO tags over PER, ORG, LOC, MISC (best valid sequence) → ``doc.ents``,
* ``samverkan_lemmatizer`` (``lemmatizer``): spaCy edit trees, the best applicable of the top k.

The encoder's matrices are stored as int8 with one scale per row (a quarter of fp32 on disk) and
computed in fp32 (int8 compute cost 3 F points of NER here). Text is cut into segments at sentence
ends and line breaks, at most ``max_pieces`` pieces each. ``models/spacy/e5_multitask.py`` trains
the encoder and the heads; the functions below that cut and encode text are shared with it.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import islice

import numpy as np
import srsly
from spacy.language import Language
from spacy.pipeline._edit_tree_internals.edit_trees import EditTrees
from spacy.strings import StringStore
from spacy.tokens import Doc, Span
from spacy.util import ensure_path
from thinc.api import to_numpy

logger = logging.getLogger(__name__)

SENT_END = {".", "!", "?", "…", "..."}
WEIGHTS = "weights.safetensors"
TOKENIZER = "tokenizer.json.gz"
VECTORS = "e5_vectors"
if not Doc.has_extension(VECTORS):
    Doc.set_extension(VECTORS, default=None)


# -- text → word pieces ------------------------------------------------------------------------------


def word_pieces(tokenizer, words: list[str]) -> tuple[list[int], list[int]]:
    """Piece ids of ``words`` (no special tokens) and the word index of each piece; whitespace
    words get no pieces."""
    keep = [i for i, word in enumerate(words) if word.strip()]
    if not keep:
        return [], []
    enc = tokenizer.encode([words[i] for i in keep], is_pretokenized=True, add_special_tokens=False)
    return list(enc.ids), [keep[w] for w in enc.word_ids]


def segments(words: list[str], piece_words: list[int], limit: int) -> list[tuple[int, int]]:
    """Cut words into (start, end) ranges at sentence ends and line breaks, ≤ ``limit`` pieces each."""
    counts = np.bincount(np.asarray(piece_words, dtype=np.int64), minlength=len(words)) if words else []
    out, start, used = [], 0, 0
    for i, word in enumerate(words):
        if i > start and used + counts[i] > limit:
            out.append((start, i))
            start, used = i, 0
        used += counts[i]
        if word in SENT_END or "\n" in word:
            out.append((start, i + 1))
            start, used = i + 1, 0
    if start < len(words):
        out.append((start, len(words)))
    return out


def segment_inputs(
    ids: list[int], piece_words: list[int], ranges: list[tuple[int, int]], cls_id: int, sep_id: int, limit: int
) -> list[tuple[int, list[int], list[int], list[int]]]:
    """Model inputs per word range: (first word, piece ids with <s> … </s>, first and last piece
    position of each word; -1 for a word without pieces). A range is cut to ``limit`` pieces (only a
    single word longer than that, e.g. a pasted URL, reaches it)."""
    pw = np.asarray(piece_words, dtype=np.int64)
    out = []
    for a, b in ranges:
        lo, hi = np.searchsorted(pw, a), np.searchsorted(pw, b)
        hi = min(hi, lo + limit)
        first, last = [-1] * (b - a), [-1] * (b - a)
        for pos in range(lo, hi):
            w = pw[pos] - a
            if first[w] < 0:
                first[w] = pos - lo + 1
            last[w] = pos - lo + 1
        out.append((a, [cls_id, *ids[lo:hi], sep_id], first, last))
    return out


def pad(batch: list[list[int]], pad_id: int):
    """Pad piece-id lists to the longest: (input_ids, attention_mask) tensors."""
    import torch

    n = max(len(x) for x in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return ids, mask


def decode_bio(tags: list[str]) -> list[tuple[int, int, str]]:
    """BIO tags → (start, end, label) spans; a stray I-X opens a new entity."""
    spans, start, label = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, typ = tag.partition("-")
        if start is not None and (prefix != "I" or typ != label):
            spans.append((start, i, label))
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, label = i, typ
    return spans


def best_bio_path(scores: np.ndarray, classes: list[str], outside: np.ndarray) -> list[str]:
    """The BIO tag sequence with the highest sum of log-probabilities (Viterbi) among the valid ones:
    ``I-X`` only after ``B-X`` or ``I-X``; tokens where ``outside`` is true are ``O``."""
    if not len(scores):
        return []
    only_o, no_start, step = _bio_constraints(tuple(classes))
    logp = scores - scores.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    logp[outside] = only_o
    best, back = logp[0] + no_start, np.zeros(scores.shape, dtype=int)
    for t in range(1, len(scores)):
        candidates = best[:, None] + step
        back[t] = candidates.argmax(0)
        best = candidates.max(0) + logp[t]
    path = [int(best.argmax())]
    for t in range(len(scores) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return [classes[k] for k in reversed(path)]


@lru_cache(maxsize=8)
def _bio_constraints(classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-space masks of the BIO scheme: (a token that must be O, the first token, step i → j)."""
    only_o = np.where(np.array(classes) == "O", 0.0, -np.inf)
    no_start = np.where([c.startswith("I-") for c in classes], -np.inf, 0.0)
    allowed = [[not c.startswith("I-") or p in (c, "B-" + c[2:]) for c in classes] for p in classes]
    return only_o, no_start, np.where(allowed, 0.0, -np.inf)


# -- int8 storage ------------------------------------------------------------------------------------


def quantize_state(state: dict) -> dict:
    """Matrices → int8 + one fp32 scale per row (``name`` and ``name.scale``); the rest as fp32."""
    import torch

    out = {}
    for name, tensor in state.items():
        tensor = tensor.detach().float().cpu()
        if tensor.ndim == 2:
            scale = tensor.abs().amax(1, keepdim=True).clamp(min=1e-12) / 127
            out[name] = (tensor / scale).round().clamp(-127, 127).to(torch.int8).contiguous()
            out[name + ".scale"] = scale.contiguous()
        else:
            out[name] = tensor.contiguous()
    return out


def dequantize_state(stored: dict) -> dict:
    """Inverse of :func:`quantize_state` (fp32 tensors)."""
    return {
        name: tensor.float() * stored[name + ".scale"] if name + ".scale" in stored else tensor.float()
        for name, tensor in stored.items()
        if not name.endswith(".scale")
    }


# -- components --------------------------------------------------------------------------------------


class Transformer:
    """Sets ``doc._.e5_vectors``: per token the encoder's vectors of its first and last word piece,
    concatenated (zeros for a token without pieces, e.g. whitespace)."""

    def __init__(self, name: str = "transformer", max_pieces: int = 96, batch_size: int = 32):
        self.name = name
        self.max_pieces = max_pieces
        self.batch_size = batch_size
        self.model = None
        self.tokenizer = None

    @property
    def width(self) -> int:
        """Width of a token vector (twice the encoder's hidden size)."""
        return 2 * self.model.config.hidden_size

    def set_model(self, model, tokenizer) -> None:
        """Use an in-memory ``transformers`` BertModel and ``tokenizers.Tokenizer`` (training, tests)."""
        self.model, self.tokenizer = model, tokenizer

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        docs = iter(docs)
        while batch := list(islice(docs, batch_size)):
            self.set_tensors(batch)
            yield from batch

    def set_tensors(self, docs: list[Doc]) -> None:
        """Encode a batch of Docs (segments of all Docs sorted by length, run in mini-batches)."""
        import torch

        if self.model is None:
            raise ValueError(f"component {self.name!r} has no encoder: load the pipeline from disk")
        cls_id, sep_id, pad_id = (self.tokenizer.token_to_id(t) for t in ("<s>", "</s>", "<pad>"))
        jobs = []  # (doc index, first word, piece ids, first- and last-piece positions)
        for d, doc in enumerate(docs):
            words = [t.text for t in doc]
            ids, piece_words = word_pieces(self.tokenizer, words)
            ranges = segments(words, piece_words, self.max_pieces - 2)
            inputs = segment_inputs(ids, piece_words, ranges, cls_id, sep_id, self.max_pieces - 2)
            jobs += [(d, *job) for job in inputs]
        tensors = [np.zeros((len(doc), self.width), dtype="float32") for doc in docs]
        jobs.sort(key=lambda job: len(job[2]))
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            for i in range(0, len(jobs), self.batch_size):
                batch = jobs[i : i + self.batch_size]
                ids, mask = pad([job[2] for job in batch], pad_id)
                hidden = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
                hidden = hidden.float().cpu().numpy()
                for row, (d, a, _ids, first, last) in zip(hidden, batch):
                    first, last = np.asarray(first), np.asarray(last)
                    (words,) = np.nonzero(first >= 0)
                    tensors[d][a + words] = np.concatenate([row[first[words]], row[last[words]]], axis=1)
        self.model.train(was_training)
        for doc, tensor in zip(docs, tensors):
            doc._.set(VECTORS, tensor)

    def to_disk(self, path, *, exclude=tuple()) -> None:
        from safetensors.torch import save_file

        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        # re-quantizing weights that were stored as int8 gives the same int8 values
        save_file(quantize_state(self.model.state_dict()), str(path / WEIGHTS))
        (path / "config.json").write_text(self.model.config.to_json_string(), encoding="utf-8")
        (path / TOKENIZER).write_bytes(gzip.compress(self.tokenizer.to_str().encode("utf-8"), mtime=0))
        srsly.write_json(path / "cfg.json", {"max_pieces": self.max_pieces, "batch_size": self.batch_size})

    def from_disk(self, path, *, exclude=tuple()) -> Transformer:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel

        path = ensure_path(path)
        cfg = srsly.read_json(path / "cfg.json")
        self.max_pieces, self.batch_size = cfg["max_pieces"], cfg["batch_size"]
        config = BertConfig.from_json_file(str(path / "config.json"))
        model = BertModel(config, add_pooling_layer=False)
        model.load_state_dict(dequantize_state(load_file(str(path / WEIGHTS))))
        model.eval()
        if torch.cuda.is_available():
            model.to("cuda")
        logger.info("e5 encoder: %d layers, %d pieces, on %s", config.num_hidden_layers, config.vocab_size,
                    next(model.parameters()).device)
        self.model = model
        self.tokenizer = Tokenizer.from_str(gzip.decompress((path / TOKENIZER).read_bytes()).decode("utf-8"))
        return self


class LinearHead:
    """A linear layer over ``doc._.e5_vectors`` with its classes; saved as ``head.npz`` + ``classes.json``."""

    encoder = "transformer"  # the component that writes the inputs

    def __init__(self, name: str):
        self.name = name
        self.classes: list = []
        self.weight: np.ndarray | None = None
        self.bias: np.ndarray | None = None

    def set_weights(self, weight: np.ndarray, bias: np.ndarray, classes: list) -> None:
        """Set the layer (``weight``: classes × width) and its classes."""
        self.weight, self.bias, self.classes = weight.astype("float32"), bias.astype("float32"), list(classes)

    def scores(self, doc: Doc) -> np.ndarray:
        """Scores per token × label; tokens without a vector (whitespace) get all zeros."""
        if self.weight is None:
            raise ValueError(f"component {self.name!r} has no weights: load the pipeline from disk")
        vectors = self.inputs(doc)
        if vectors is None or vectors.shape != (len(doc), self.weight.shape[1]):
            raise ValueError(f"component {self.name!r} needs the {self.encoder!r} component before it")
        return vectors @ self.weight.T + self.bias

    def inputs(self, doc: Doc) -> np.ndarray | None:
        """The vectors the layer reads: the e5 encoder's."""
        return doc._.get(VECTORS)

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        for doc in docs:
            yield self(doc)

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path / "head.npz", weight=self.weight.astype("float16"), bias=self.bias)
        srsly.write_json(path / "classes.json", self.classes)

    def from_disk(self, path, *, exclude=tuple()) -> LinearHead:
        path = ensure_path(path)
        with np.load(path / "head.npz") as data:
            self.set_weights(data["weight"], data["bias"], srsly.read_json(path / "classes.json"))
        return self


class TensorHead(LinearHead):
    """A linear layer over ``doc.tensor``: the output of the CNN ``tok2vec`` that runs before."""

    encoder = "tok2vec"

    def inputs(self, doc: Doc) -> np.ndarray | None:
        return to_numpy(doc.tensor) if doc.tensor.size else None  # a CuPy array when tok2vec runs on a GPU


class Morphologizer(LinearHead):
    """UPOS and morphological features; the classes are ``[pos, feats]`` pairs.

    With a second head over ``doc.tensor`` (``set_tensor_head``: the output layer of a spaCy
    morphologizer trained on the CNN ``tok2vec`` the pipeline runs) and ``tensor_weight`` > 0, each
    token gets the class with the highest weighted mean of the two heads' probabilities
    (``(1 - w) · e5 + w · CNN``, over the union of their classes).
    """

    def __init__(self, name: str, tensor_weight: float = 0.0):
        super().__init__(name)
        if not 0.0 <= tensor_weight <= 1.0:
            raise ValueError(f"tensor_weight must be in [0, 1], got {tensor_weight}")
        self.tensor_weight = tensor_weight
        self.tensor_head: TensorHead | None = None
        self._union: list = []
        self._tensor_columns: list[int] = []

    def set_weights(self, weight: np.ndarray, bias: np.ndarray, classes: list) -> None:
        super().set_weights(weight, bias, classes)
        self._align()

    def set_tensor_head(self, weight: np.ndarray, bias: np.ndarray, classes: list) -> None:
        """Set the head over ``doc.tensor`` (``weight``: classes × tok2vec width)."""
        self.tensor_head = TensorHead(f"{self.name} (tensor head)")
        self.tensor_head.set_weights(weight, bias, classes)
        self._align()

    def _align(self) -> None:
        """The union of both heads' classes (own first) and the tensor head's columns in it."""
        self._union = list(self.classes)
        index = {tuple(c): i for i, c in enumerate(self._union)}
        self._tensor_columns = []
        for c in self.tensor_head.classes if self.tensor_head is not None else []:
            if tuple(c) not in index:
                index[tuple(c)] = len(self._union)
                self._union.append(c)
            self._tensor_columns.append(index[tuple(c)])

    @property
    def blended(self) -> bool:
        """Whether the head over ``doc.tensor`` takes part."""
        return self.tensor_weight > 0

    @property
    def union(self) -> list:
        """The classes this component can assign: its own, then the tensor head's new ones if blended."""
        return self._union if self.blended else self.classes

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels as spaCy's morphologizer writes them (``POS=NOUN|Case=Nom|…``)."""
        return tuple("|".join(filter(None, (f"POS={pos}", feats))) for pos, feats in self.union)

    def probabilities(self, doc: Doc) -> np.ndarray:
        """Probabilities per token × class of ``union``."""
        own = softmax(self.scores(doc))
        if not self.blended:
            return own
        if self.tensor_head is None:
            raise ValueError(f"component {self.name!r} has tensor_weight {self.tensor_weight} but no tensor head")
        probs = np.zeros((len(doc), len(self._union)), dtype="float32")
        probs[:, : len(self.classes)] = (1 - self.tensor_weight) * own
        probs[:, self._tensor_columns] += self.tensor_weight * softmax(self.tensor_head.scores(doc))
        return probs

    def __call__(self, doc: Doc) -> Doc:
        union, best = self.union, self.probabilities(doc).argmax(1)
        for token, k in zip(doc, best):
            if token.is_space:
                token.pos_ = "SPACE"
                continue
            pos, feats = union[k]
            token.pos_ = pos
            token.set_morph(feats)  # "" is "no features" (annotated), unlike None
        return doc

    def to_disk(self, path, *, exclude=tuple()) -> None:
        super().to_disk(path)
        if self.tensor_head is not None:
            self.tensor_head.to_disk(ensure_path(path) / "tensor_head")

    def from_disk(self, path, *, exclude=tuple()) -> Morphologizer:
        super().from_disk(path)
        path = ensure_path(path)
        if (path / "tensor_head").exists():
            self.tensor_head = TensorHead(f"{self.name} (tensor head)").from_disk(path / "tensor_head")
            self._align()
        return self


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    exp = np.exp(scores - scores.max(1, keepdims=True))
    return exp / exp.sum(1, keepdims=True)


class EntityRecognizer(LinearHead):
    """Named entities from BIO tags (labels ``O``, ``B-PER``, ``I-PER``, …), decoded as the best valid
    tag sequence rather than the best tag per token."""

    def __call__(self, doc: Doc) -> Doc:
        tags = best_bio_path(self.scores(doc), self.classes, np.array([token.is_space for token in doc], dtype=bool))
        doc.ents = [
            Span(doc, s, e, label=label) for s, e, label in decode_bio(tags) if doc[s:e].text.strip()
        ]
        return doc

    @property
    def labels(self) -> tuple[str, ...]:
        """The entity types (PER, ORG, LOC, MISC), as spaCy's ``ner.labels`` gives them."""
        return tuple(sorted({tag[2:] for tag in self.classes if tag != "O"}))


class Lemmatizer(LinearHead):
    """Edit-tree lemmas: the first of the ``top_k`` best trees that applies, else the form itself.

    The trees keep their strings in their own StringStore (saved with them), so the head does not
    depend on the strings of the vocab it was trained with.
    """

    def __init__(self, name: str, top_k: int = 3):
        super().__init__(name)
        self.top_k = top_k
        self.strings = StringStore()
        self.trees = EditTrees(self.strings)

    def __call__(self, doc: Doc) -> Doc:
        best = np.argsort(-self.scores(doc), axis=1)[:, : self.top_k]
        for token, candidates in zip(doc, best):
            lemma = None
            if not token.is_space:
                for k in candidates:
                    lemma = self.trees.apply(self.classes[k], token.text)
                    if lemma is not None:
                        break
            token.lemma_ = lemma if lemma is not None else token.text
        return doc

    def to_disk(self, path, *, exclude=tuple()) -> None:
        super().to_disk(path)
        path = ensure_path(path)
        (path / "trees").write_bytes(self.trees.to_bytes())
        self.strings.to_disk(path / "strings.json")

    def from_disk(self, path, *, exclude=tuple()) -> Lemmatizer:
        super().from_disk(path)
        path = ensure_path(path)
        self.strings.from_disk(path / "strings.json")
        self.trees.from_bytes((path / "trees").read_bytes())
        return self


@Language.factory("samverkan_transformer", default_config={"max_pieces": 96, "batch_size": 32})
def make_transformer(nlp: Language, name: str, max_pieces: int, batch_size: int) -> Transformer:
    """The e5 encoder (weights come from the pipeline directory)."""
    return Transformer(name, max_pieces, batch_size)


@Language.factory("samverkan_morphologizer", default_config={"tensor_weight": 0.0})
def make_morphologizer(nlp: Language, name: str, tensor_weight: float) -> Morphologizer:
    """UPOS + features head over the transformer's vectors (blended with a head over ``doc.tensor``
    when ``tensor_weight`` > 0)."""
    return Morphologizer(name, tensor_weight)


@Language.factory("samverkan_ner")
def make_ner(nlp: Language, name: str) -> EntityRecognizer:
    """Entity head over the transformer's vectors."""
    return EntityRecognizer(name)


@Language.factory("samverkan_lemmatizer", default_config={"top_k": 3})
def make_lemmatizer(nlp: Language, name: str, top_k: int) -> Lemmatizer:
    """Edit-tree lemma head over the transformer's vectors."""
    return Lemmatizer(name, top_k)


