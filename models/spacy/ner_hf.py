"""Fine-tune multilingual-e5-small as a BIO token classifier for Swedish NER (stage 1 of the e5 model).

Uses Hugging Face ``transformers`` directly (``BertForTokenClassification`` from the local converted
e5 directory, offline), not spacy-transformers. Labels: BIO over PER/ORG/LOC/MISC, the first
sub-word piece of each word carries the label. Splits are those of ``convert.py`` (blocks of 50
sentences: ``b % 10 == 9`` → ner-test, ``b % 10 == 4`` → ner-dev, rest → ner-train); the
checkpoint is chosen on ner-dev and scored on ner-test with ``evaluate.ner_scores`` (exact
character spans on ``nlp.make_doc(text)`` tokens, as ``evaluate.py`` scores the spaCy pipelines).

Speed on CPU: the 250k × 384 word-embedding matrix is frozen (no Adam state for it), sentences
are short (≤ ``--max-len`` pieces, longer ones are cut into chunks), batches are padded dynamically
and grouped by length.

Usage: ``python models/spacy/ner_hf.py [--epochs N] [--max-steps N] [--eval-only]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import spacy  # noqa: E402
import torch  # noqa: E402
from spacy.tokens import Doc, Span  # noqa: E402
from spacy.training import Example  # noqa: E402

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from convert import ENT_TYPES, io_to_spans, read_ner, sentences_to_docs, split_ner  # noqa: E402
from evaluate import ner_scores, write_report  # noqa: E402

from pipeline.encoder import decode_bio  # noqa: E402

logger = logging.getLogger(__name__)

LABELS = ["O"] + [f"{p}-{t}" for t in ENT_TYPES for p in ("B", "I")]
LABEL2ID = {lab: i for i, lab in enumerate(LABELS)}
SENT_END = {".", "!", "?", "…", "..."}


def bio_tags(io_tags: list[str]) -> list[str]:
    """IO tags (``0`` = outside, adjacent equal tags = one entity) → BIO tags."""
    out = ["O"] * len(io_tags)
    for start, end, label in io_to_spans(io_tags):
        out[start] = f"B-{label}"
        for i in range(start + 1, end):
            out[i] = f"I-{label}"
    return out


def chunk_words(n_pieces: list[int], limit: int) -> list[tuple[int, int]]:
    """Cut a word sequence into (start, end) chunks of at most ``limit`` pieces each."""
    chunks, start, used = [], 0, 0
    for i, n in enumerate(n_pieces):
        if i > start and used + n > limit:
            chunks.append((start, i))
            start, used = i, 0
        used += n
    if start < len(n_pieces):
        chunks.append((start, len(n_pieces)))
    return chunks


def piece_counts(tokenizer, words: list[str]) -> list[int]:
    """Number of sub-word pieces per word (words tokenised separately, as with is_split_into_words)."""
    enc = tokenizer(words, add_special_tokens=False)
    return [len(ids) for ids in enc["input_ids"]]


def encode(tokenizer, words: list[str], tags: list[str] | None) -> dict:
    """Token ids and first-piece labels (-100 elsewhere) for one chunk of words."""
    enc = tokenizer(words, is_split_into_words=True, truncation=False)
    word_ids = enc.word_ids()
    first, labels, prev = [], [], None
    for pos, w in enumerate(word_ids):
        is_first = w is not None and w != prev
        labels.append(LABEL2ID[tags[w]] if (is_first and tags is not None) else -100)
        if is_first:
            first.append((pos, w))
        prev = w
    return {"input_ids": enc["input_ids"], "labels": labels, "first": first}


def make_train_items(tokenizer, sents, max_len: int) -> list[dict]:
    """Encode NER sentences (cut into chunks of ≤ max_len pieces) for training."""
    items = []
    for s in sents:
        words = [t.form for t in s.tokens]
        tags = bio_tags(s.ents)
        counts = piece_counts(tokenizer, words)
        for a, b in chunk_words(counts, max_len - 2):
            chunk_tags = tags[a:b]
            if chunk_tags[0].startswith("I-"):
                chunk_tags[0] = "B-" + chunk_tags[0][2:]
            items.append(encode(tokenizer, words[a:b], chunk_tags))
    return items


def collate(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch dynamically to its longest item."""
    n = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    labels = torch.full((len(items), n), -100, dtype=torch.long)
    for i, it in enumerate(items):
        k = len(it["input_ids"])
        ids[i, :k] = torch.tensor(it["input_ids"])
        mask[i, :k] = 1
        if "labels" in it:
            labels[i, :k] = torch.tensor(it["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def length_grouped_batches(items: list[dict], batch_size: int, rng: random.Random) -> list[list[dict]]:
    """Shuffle, sort within pools of 50 batches by length, then shuffle the batches."""
    order = items[:]
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for i in range(0, len(order), pool):
        chunk = sorted(order[i : i + pool], key=lambda it: len(it["input_ids"]))
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def segments(doc: Doc, tokenizer, max_len: int) -> list[tuple[int, int]]:
    """Split a Doc into sentence-like token ranges (at . ! ?) of at most max_len pieces."""
    words = [t.text for t in doc]
    counts = piece_counts(tokenizer, words) if words else []
    out, start = [], 0
    for i, w in enumerate(words):
        if w in SENT_END or i == len(words) - 1:
            for a, b in chunk_words(counts[start : i + 1], max_len - 2):
                out.append((start + a, start + b))
            start = i + 1
    return out


@torch.inference_mode()
def tag_docs(model, tokenizer, docs: list[Doc], max_len: int, batch_size: int = 32) -> list[Doc]:
    """Set ``doc.ents`` on each Doc from the token classifier (what a spaCy component would do)."""
    model.eval()
    jobs = []  # (doc index, token offset, encoded chunk)
    for d, doc in enumerate(docs):
        for a, b in segments(doc, tokenizer, max_len):
            words = [t.text for t in doc[a:b]]
            jobs.append((d, a, b, encode(tokenizer, words, None)))
    tags = [["O"] * len(doc) for doc in docs]
    order = sorted(range(len(jobs)), key=lambda j: len(jobs[j][3]["input_ids"]))
    for i in range(0, len(order), batch_size):
        batch = [jobs[j] for j in order[i : i + batch_size]]
        enc = collate([job[3] for job in batch], tokenizer.pad_token_id)
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        pred = logits.argmax(-1).tolist()
        for (d, a, _b, item), row in zip(batch, pred):
            for pos, w in item["first"]:
                tags[d][a + w] = LABELS[row[pos]]
    for doc, doc_tags in zip(docs, tags):
        ents = []
        for s, e, label in decode_bio(doc_tags):
            span = Span(doc, s, e, label=label)
            # spaCy does not allow entities that are only whitespace
            if span.text.strip():
                ents.append(span)
        doc.ents = ents
    return docs


def score(model, tokenizer, nlp, gold_docs: list[Doc], max_len: int) -> dict:
    """Exact-span scores (evaluate.ner_scores) with predictions made on ``nlp.make_doc`` tokens."""
    pred = tag_docs(model, tokenizer, [nlp.make_doc(d.text) for d in gold_docs], max_len)
    return ner_scores([Example(p, g) for p, g in zip(pred, gold_docs)])


def words_per_second(model, tokenizer, nlp, texts: list[str], max_len: int, repeats: int = 2) -> float:
    """Median words/s of make_doc + token classification over ``texts`` (batch 32)."""
    tag_docs(model, tokenizer, [nlp.make_doc(t) for t in texts[:5]], max_len)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        docs = tag_docs(model, tokenizer, [nlp.make_doc(t) for t in texts], max_len, batch_size=32)
        rates.append(sum(len(d) for d in docs) / (time.perf_counter() - start))
    return round(sorted(rates)[len(rates) // 2], 1)


def size_report(model, tokenizer_path: Path, texts: list[str]) -> dict:
    """Bytes of the weights: full vocabulary and Swedish-pruned (prune_e5.py recipe), fp32/fp16."""
    from prune_e5 import used_piece_ids

    spec = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    keep = used_piece_ids(tokenizer_path, texts)
    keep.update(t["id"] for t in spec["added_tokens"])
    keep.update(i for i, (piece, _) in enumerate(vocab) if len(piece.lstrip("\u2581")) <= 1)
    n_all = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight
    n_pruned = n_all - emb.shape[0] * emb.shape[1] + len(keep) * emb.shape[1]
    return {
        "params": n_all,
        "vocab": emb.shape[0],
        "pruned_vocab": len(keep),
        "fp32_bytes": n_all * 4,
        "fp16_bytes": n_all * 2,
        "pruned_fp32_bytes": n_pruned * 4,
        "pruned_fp16_bytes": n_pruned * 2,
    }


def pruning_texts(corpora: Path) -> list[str]:
    """Texts whose pieces prune_e5.py keeps: the corpora's sentences and the lookup-table forms."""
    from prune_e5 import read_texts

    ner = [" ".join(t.form for t in s.tokens) for s in read_ner(corpora / "ner" / "train_corpus.txt")]
    ud_files = sorted((corpora / "ud").glob("*.conll*"))
    ud = []
    for path in ud_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# text ="):
                ud.append(line.split("=", 1)[1].strip())
            elif line and not line.startswith("#"):
                cols = line.split("\t")
                if len(cols) > 1 and "-" not in cols[0]:
                    ud.append(cols[1])
    return ner + ud + read_texts([])


def blank_with_tokenizer(pipeline_dir: Path):
    """A blank Swedish pipeline with the tokenizer of ``pipeline_dir`` (spaCy's default if it has none),
    so scores are computed on the tokens the shipped pipeline sees."""
    nlp = spacy.blank("sv")
    if (pipeline_dir / "tokenizer").exists():
        nlp.tokenizer.from_disk(pipeline_dir / "tokenizer")
    return nlp


def apply_gradients(loss, params, opt, sched) -> None:
    """Backward pass, clip the gradient norm to 1, optimizer and schedule step, reset the gradients."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


def train(args: argparse.Namespace) -> dict:
    """Train, select on ner-dev, score on ner-test, measure speed and size; return the report."""
    from transformers import AutoTokenizer, BertForTokenClassification, get_linear_schedule_with_warmup

    torch.set_num_threads(args.train_threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir, local_files_only=True)
    reader = read_ner
    splits = split_ner(reader(args.corpora / "ner" / "train_corpus.txt"))
    nlp = blank_with_tokenizer(args.tokenizer_from)
    gold = {k: sentences_to_docs(nlp, splits[k], with_parse=False) for k in ("ner-dev", "ner-test")}
    train_items = make_train_items(tokenizer, splits["ner-train"], args.max_len)
    logger.info("train: %d sentences → %d chunks", len(splits["ner-train"]), len(train_items))

    src = args.out if args.eval_only else args.model_dir
    model = BertForTokenClassification.from_pretrained(
        src, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id=LABEL2ID,
        local_files_only=True, torch_dtype=torch.float32,
    )
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    report: dict = {
        "label": "e5-small token classifier (HF transformers)",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    history = []
    if not args.eval_only:
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
        no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
            lr=args.lr, fused=True,
        )
        steps_per_epoch = -(-len(train_items) // args.batch_size)
        total = steps_per_epoch * args.epochs if args.max_steps is None else args.max_steps
        sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
        logger.info("trainable params: %d; %d steps/epoch, %d steps", sum(p.numel() for p in params),
                    steps_per_epoch, total)
        best_f, best_state, step, t0 = -1.0, None, 0, time.perf_counter()
        for epoch in range(args.epochs):
            model.train()
            loss_sum = 0.0
            for batch in length_grouped_batches(train_items, args.batch_size, rng):
                enc = collate(batch, tokenizer.pad_token_id)
                loss = model(**enc).loss
                apply_gradients(loss, params, opt, sched)
                step += 1
                loss_sum += loss.item()
                if step % 50 == 0:
                    logger.info("epoch %d step %d loss %.4f  %.2f steps/s", epoch, step, loss_sum / 50,
                                step / (time.perf_counter() - t0))
                    loss_sum = 0.0
                if step >= total:
                    break
            dev = score(model, tokenizer, nlp, gold["ner-dev"], args.max_len)
            elapsed = time.perf_counter() - t0
            history.append({"epoch": epoch + 1, "step": step, "seconds": round(elapsed, 1),
                            "dev_core_f": dev["core_micro"]["f"], "dev_org_f": dev["per_label"]["ORG"]["f"]})
            logger.info("epoch %d dev %s", epoch + 1, json.dumps(history[-1]))
            if dev["core_micro"]["f"] > best_f:
                best_f = dev["core_micro"]["f"]
                best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
                report["best_epoch"] = epoch + 1
            if step >= total:
                break
        report["train_seconds"] = round(time.perf_counter() - t0, 1)
        report["steps"] = step
        report["steps_per_second"] = round(step / report["train_seconds"], 3)
        model.load_state_dict(best_state, strict=False)
        args.out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(args.out)
        tokenizer.save_pretrained(args.out)
    report["history"] = history
    report["ner_dev"] = score(model, tokenizer, nlp, gold["ner-dev"], args.max_len)
    report["ner_test"] = score(model, tokenizer, nlp, gold["ner-test"], args.max_len)
    logger.info("test %s", json.dumps(report["ner_test"]["core_micro"]))
    if args.compare_cnn and (args.tokenizer_from / "meta.json").exists():
        cnn = spacy.load(args.tokenizer_from)
        report["cnn_same_gold"] = {
            k: ner_scores([Example(p, g) for p, g in zip(cnn.pipe(cnn.make_doc(d.text) for d in docs), docs)])
            for k, docs in gold.items()
        }
        logger.info("CNN test %s", json.dumps(report["cnn_same_gold"]["ner-test"]["core_micro"]))
    torch.set_num_threads(args.threads)
    test_texts = [d.text for d in gold["ner-test"]]
    report["words_per_second"] = words_per_second(model, tokenizer, nlp, test_texts, args.max_len)
    report["speed_text"] = f"ner-test text, {sum(len(nlp.make_doc(t)) for t in test_texts)} words, batch 32"
    report["size"] = size_report(model, args.model_dir / "tokenizer.json", pruning_texts(args.corpora))
    if args.out.exists():
        report["size"]["saved_dir_bytes"] = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    return report


def main() -> None:
    """Command-line entry point."""
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=root / "e5-small")
    parser.add_argument("--corpora", type=Path, default=root / "corpora")
    parser.add_argument("--tokenizer-from", type=Path, default=root / "sv_samverkan_cnn")
    parser.add_argument("--out", type=Path, default=root / ".build" / "ner_e5_hf")
    parser.add_argument("--metrics", type=Path, default=root / "metrics" / "ner_e5_hf.json")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=96)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for inference/speed")
    parser.add_argument("--train-threads", type=int, default=2,
                        help="torch threads for training (1 was 6x faster than 2 on the loaded 2-core machine)")
    parser.add_argument("--compare-cnn", action="store_true",
                        help="also score the shipped CNN pipeline (--tokenizer-from) on the same gold")
    parser.add_argument("--eval-only", action="store_true", help="score the model saved in --out")
    args = parser.parse_args()
    write_report(args.metrics, train(args))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
