"""Prune the multilingual-e5-small vocabulary to the pieces Swedish text uses, optionally dropping layers.

Reads the transformers model written by ``models/convert_e5.py`` (``models/e5-small``) and writes a
smaller transformers directory (BertModel + XLM-R Unigram tokenizer) that spacy-transformers loads:

* kept pieces: special tokens, every piece the tokenizer produces for the texts given (the corpora
  and the Swedish word forms of the spacy-lookups-data lemma table), and every single-character
  piece, so unseen words still split into known pieces;
* ``--layers N`` keeps the first N encoder layers (faster, less accurate).

Usage: ``python models/spacy/prune_e5.py SRC_DIR OUT_DIR TEXT_FILE... [--layers N]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)


def used_piece_ids(tokenizer_path: Path, texts: list[str]) -> set[int]:
    """Ids of all pieces that the tokenizer produces for ``texts``."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    ids: set[int] = set()
    batch = 2048
    for i in range(0, len(texts), batch):
        for enc in tok.encode_batch(texts[i : i + batch], add_special_tokens=False):
            ids.update(enc.ids)
    return ids


def prune(src: Path, out: Path, texts: list[str], layers: int | None = None) -> int:
    """Write the pruned model to ``out`` and return the new vocabulary size."""
    import torch
    from transformers import AutoModel

    spec = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    keep = used_piece_ids(src / "tokenizer.json", texts)
    keep.update(t["id"] for t in spec["added_tokens"])
    keep.update(i for i, (piece, _) in enumerate(vocab) if len(piece.lstrip("\u2581")) <= 1)
    order = sorted(keep)
    new_id = {old: new for new, old in enumerate(order)}

    spec["model"]["vocab"] = [vocab[i] for i in order]
    spec["model"]["unk_id"] = new_id[spec["model"]["unk_id"]]
    for tok in spec["added_tokens"]:
        tok["id"] = new_id[tok["id"]]
    for special in spec["post_processor"]["special_tokens"].values():
        special["ids"] = [new_id[i] for i in special["ids"]]

    model = AutoModel.from_pretrained(src)
    emb = model.get_input_embeddings().weight.data
    model.resize_token_embeddings(len(order))
    model.get_input_embeddings().weight.data[:] = emb[torch.tensor(order)]
    if layers is not None:
        model.encoder.layer = model.encoder.layer[:layers]
        model.config.num_hidden_layers = layers
    model.config.vocab_size = len(order)
    model.config.pad_token_id = new_id[model.config.pad_token_id]
    model.config.bos_token_id = new_id[model.config.bos_token_id]
    model.config.eos_token_id = new_id[model.config.eos_token_id]

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    (out / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    tok_cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_cfg["added_tokens_decoder"] = {
        str(new_id[int(k)]): v for k, v in tok_cfg.get("added_tokens_decoder", {}).items()
    }
    # the generic fast class: spacy-transformers then serialises tokenizer.json only (there is no
    # SentencePiece model file for XLMRobertaTokenizerFast's ``vocab_file``)
    tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2), encoding="utf-8")
    shutil.copy(src / "special_tokens_map.json", out / "special_tokens_map.json")
    return len(order)


def read_texts(paths: list[Path]) -> list[str]:
    """Texts to keep pieces for: lines of the given files and the Swedish lookup-table word forms."""
    texts: list[str] = []
    for path in paths:
        texts.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    try:
        import gzip

        import spacy_lookups_data

        table = Path(spacy_lookups_data.__file__).parent / "data" / "sv_lemma_lookup.json.gz"
        with gzip.open(table, "rt", encoding="utf-8") as fh:
            lookup = json.load(fh)
        forms = list(lookup)
        texts.extend(" ".join(forms[i : i + 64]) for i in range(0, len(forms), 64))
    except ImportError:
        logger.warning("spacy-lookups-data not installed: keeping corpus pieces only")
    return texts


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("texts", type=Path, nargs="+")
    parser.add_argument("--layers", type=int, default=None)
    args = parser.parse_args()
    n = prune(args.src, args.out, read_texts(args.texts), layers=args.layers)
    logger.info("wrote %s with %d pieces", args.out, n)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
