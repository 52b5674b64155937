"""Refit the e5 morphologizer's linear layer on the frozen stage-2 encoder (stage 2b of the e5 model).

Stage 2 (``e5_multitask.py``) keeps the epoch with the best ner-dev F. At that point the UPOS +
features head, trained jointly with the encoder and with dropout, has not converged: it tags ud-tune,
which it was trained on, at 0.970. This stage runs the stage-2 encoder exactly as the pipeline runs
it (int8 weights, no dropout) over the UD training data once (ud-train, plus ud-tune ``--ud-tune-repeat``
times as in stage 2) and fits the layer again on those fixed vectors, starting from the stage-2
weights. The encoder and the other heads are copied unchanged, so NER is the same.

The report (``models/metrics/e5_refit.json``) records a check that needs neither ud-test nor
ner-dev: ud-tune is split by document into two halves; the layer is refit with one half left out and
both layers tag the left-out half. (The encoder has seen both halves in stage 2, so the check compares
the two layers; it is not a held-out accuracy.)

Usage: ``python models/spacy/refit_morphologizer.py E5_DIR CORPUS_DIR OUT_DIR``
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from spacy.tokens import Doc, DocBin

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from evaluate import write_report  # noqa: E402
from ner_hf import blank_with_tokenizer  # noqa: E402

from pipeline import encoder  # noqa: E402

logger = logging.getLogger(__name__)


def encode(nlp, transformer: encoder.Transformer, path: Path) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray]:
    """(vectors, gold (UPOS, features) per token, document number per token) of a DocBin file."""
    vectors, gold, doc_ids = [], [], []
    for i, g in enumerate(DocBin().from_disk(path).get_docs(nlp.vocab)):
        doc = transformer(Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]))
        vectors.append(doc._.get(encoder.VECTORS))
        gold += [(t.pos_, str(t.morph)) for t in g]
        doc_ids += [i] * len(g)
    return np.concatenate(vectors), gold, np.array(doc_ids)


def fit(head: encoder.Morphologizer, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int):
    """Fit a linear layer (warm-started from ``head``) by cross-entropy; return (weight, bias)."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], len(head.classes))
    layer.weight.data[:] = torch.from_numpy(head.weight)
    layer.bias.data[:] = torch.from_numpy(head.bias)
    opt = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=0.01)  # stage 2's head settings
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        order = torch.randperm(len(y_t))
        for i in range(0, len(order), 256):
            batch = order[i : i + 256]
            loss = torch.nn.functional.cross_entropy(layer(x_t[batch]), y_t[batch], ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return layer.weight.detach().numpy(), layer.bias.detach().numpy()


def upos_accuracy(head: encoder.Morphologizer, weight, bias, x: np.ndarray, gold: list[tuple[str, str]]) -> float:
    """UPOS accuracy of the layer (weight, bias) over vectors ``x``."""
    best = (x @ weight.T + bias).argmax(1)
    return round(float(np.mean([head.classes[k][0] == pos for k, (pos, _) in zip(best, gold)])), 4)


def refit(e5_dir: Path, corpus: Path, out: Path, ud_tune_repeat: int = 3, epochs: int = 3,
          lr: float = 1e-3, seed: int = 0) -> dict:
    """Write ``out`` (the components of ``e5_dir`` with the morphologizer refit); return the report."""
    nlp = blank_with_tokenizer(ROOT / "models" / "sv_samverkan_cnn")
    transformer = encoder.Transformer().from_disk(e5_dir / "transformer")
    head = encoder.Morphologizer("morphologizer").from_disk(e5_dir / "morphologizer")
    class_id = {tuple(c): i for i, c in enumerate(head.classes)}

    def labels(gold):
        return np.array([class_id.get(g, -100) for g in gold])

    x_train, gold_train, _ = encode(nlp, transformer, corpus / "ud-train.spacy")
    x_tune, gold_tune, tune_docs = encode(nlp, transformer, corpus / "ud-tune.spacy")
    y_train, y_tune = labels(gold_train), labels(gold_tune)
    logger.info("vectors: ud-train %d, ud-tune %d tokens; labels outside the head's classes: %d",
                len(y_train), len(y_tune), int((y_train == -100).sum() + (y_tune == -100).sum()))

    def fit_on(tune_mask):
        x = np.concatenate([x_train] + [x_tune[tune_mask]] * ud_tune_repeat)
        y = np.concatenate([y_train] + [y_tune[tune_mask]] * ud_tune_repeat)
        return fit(head, x, y, epochs, lr, seed)

    check = []
    docs = sorted(set(tune_docs))
    for half in (np.isin(tune_docs, docs[0::2]), np.isin(tune_docs, docs[1::2])):
        weight, bias = fit_on(~half)
        left_out = [g for g, h in zip(gold_tune, half) if h]
        check.append({"left_out_tokens": int(half.sum()),
                      "stage2_upos": upos_accuracy(head, head.weight, head.bias, x_tune[half], left_out),
                      "refit_upos": upos_accuracy(head, weight, bias, x_tune[half], left_out)})
        logger.info("ud-tune half left out: %s", check[-1])

    stage2 = head.weight, head.bias
    weight, bias = fit_on(np.ones(len(y_tune), dtype=bool))
    head.set_weights(weight, bias, head.classes)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(e5_dir, out)
    head.to_disk(out / "morphologizer")
    return {"settings": {"e5_dir": str(e5_dir), "ud_tune_repeat": ud_tune_repeat, "epochs": epochs,
                         "lr": lr, "seed": seed},
            "ud_tune_halves": check,
            "ud_tune_trained_on": {"stage2_upos": upos_accuracy(head, *stage2, x_tune, gold_tune),
                                   "refit_upos": upos_accuracy(head, weight, bias, x_tune, gold_tune)}}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("e5_dir", type=Path, help="component directories written by e5_multitask.py")
    parser.add_argument("corpus", type=Path, help="DocBin directory written by convert.py")
    parser.add_argument("out", type=Path, help="where the components are written (morphologizer refit)")
    parser.add_argument("--metrics", type=Path, default=ROOT / "models" / "metrics" / "e5_refit.json")
    parser.add_argument("--ud-tune-repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    write_report(args.metrics, refit(args.e5_dir, args.corpus, args.out, args.ud_tune_repeat, args.epochs))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
