"""NER F and speed of the stage-1 e5 token classifier in fp32, int8-stored and int8-computed form.

Scores the model written by ``ner_hf.py`` (``models/.build/ner_e5_hf``) on ner-dev and ner-test, one
variant after the other in one run:

* ``fp32``: as trained;
* ``int8 storage``: matrices rounded to int8 with one scale per row and back
  (``pipeline.encoder.quantize_state``/``dequantize_state``, what the shipped pipeline stores), fp32 compute;
* ``int8 dynamic``: PyTorch dynamic quantization of the Linear layers (int8 compute).

Usage: ``python models/spacy/compare_quantization.py [--model DIR] [--out JSON]``
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from convert import read_ner, sentences_to_docs, split_ner  # noqa: E402
from evaluate import write_report  # noqa: E402
from ner_hf import blank_with_tokenizer, score, words_per_second  # noqa: E402

from pipeline.encoder import dequantize_state, quantize_state  # noqa: E402

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


def variants(model_dir: Path):
    """(name, model) for each variant, built one at a time."""
    from transformers import BertForTokenClassification

    def load():
        return BertForTokenClassification.from_pretrained(model_dir, local_files_only=True).eval()

    yield "fp32", load()
    stored = load()
    stored.load_state_dict(dequantize_state(quantize_state(stored.state_dict())))
    yield "int8 storage, fp32 compute", stored
    yield "int8 dynamic (torch.ao quantize_dynamic)", torch.ao.quantization.quantize_dynamic(
        load(), {torch.nn.Linear}, dtype=torch.qint8
    )


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / ".build" / "ner_e5_hf")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "metrics" / "quantization.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
    nlp = blank_with_tokenizer(ROOT / "models" / "sv_samverkan_cnn")  # as ner_hf.py scores
    splits = split_ner(read_ner(ROOT / "models" / "corpora" / "ner" / "train_corpus.txt"))
    gold = {k: sentences_to_docs(nlp, splits[k], with_parse=False) for k in ("ner-dev", "ner-test")}
    texts = [d.text for d in gold["ner-test"]]
    report = {}
    for name, model in variants(args.model):
        row = {k: score(model, tokenizer, nlp, docs, 96)["core_micro"]["f"] for k, docs in gold.items()}
        row["words_per_second_ner"] = words_per_second(model, tokenizer, nlp, texts, 96)
        logger.info("%s: %s", name, row)
        report[name] = row
    write_report(args.out, report)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
