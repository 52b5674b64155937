"""Fine-tune the e5-small encoder for NER, UPOS + features and lemmas at once → sv_samverkan's e5 components.

One encoder (a ``transformers`` BertModel directory written by ``prune_e5.py``: Swedish word pieces
only), three linear heads: ``ner`` (BIO over PER/ORG/LOC/MISC, trained on ner-train), ``morphologizer``
(UPOS + features as one class) and ``lemmatizer`` (spaCy edit trees), both trained on ud-train-tune.
Each batch comes from one corpus; the batches of both are shuffled together. A word is represented
by its first and last word piece, concatenated (as ``pipeline.encoder.Transformer`` does). The
word-embedding matrix stays frozen unless ``--train-embeddings``. Dev: ner-dev F (PER/ORG/LOC),
scored through the runtime components of ``pipeline/encoder.py`` (the code the shipped pipeline runs);
the best epoch is written as spaCy component directories (``transformer``, ``ner``,
``morphologizer``, ``lemmatizer``); ``refit_morphologizer.py`` then refits the morphologizer's layer
and ``assemble.py`` puts the components into the pipeline.

``--org-swap N`` adds, each epoch, N copies of every ner-train sentence that names an organisation,
with each ORG span replaced by an organisation drawn at random from the ORG mentions of ner-train
and the national organisations of ``pipeline/lexicons/known_orgs.txt`` (mention replacement): the
corpus has only 441 distinct ORG names, and the context, not the name, should tell an organisation.
``--org-swap-replace P`` instead shows each such sentence with its names swapped with chance P, each
epoch, so the share of sentences with an organisation stays as in the corpus.

``--ner-head`` starts the NER head (and, with ``--init`` pointing at its pruned copy, the encoder)
from the token classifier of ``ner_hf.py``, so the multi-task stage continues that training.

Usage: ``python models/spacy/e5_multitask.py INIT_DIR CORPUS_DIR OUT_DIR [--ner-head FILE] [--epochs N]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from spacy.tokens import Doc, DocBin  # noqa: E402
from spacy.training import Example  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from evaluate import ner_scores, write_report  # noqa: E402
from ner_hf import apply_gradients, blank_with_tokenizer  # noqa: E402

from pipeline import encoder  # noqa: E402
from pipeline.extractors.lexicon import load_lexicon  # noqa: E402

logger = logging.getLogger(__name__)

ENT_TYPES = ("PER", "ORG", "LOC", "MISC")
NER_CLASSES = ["O"] + [f"{p}-{t}" for t in ENT_TYPES for p in ("B", "I")]  # ner_hf.py's label order
# task → (pipe name, factory) of the runtime component in pipeline/encoder.py
RUNTIME_HEADS = {"morph": ("morphologizer", "samverkan_morphologizer"), "ner": ("ner", "samverkan_ner"),
                 "lemma": ("lemmatizer", "samverkan_lemmatizer")}


class MultiTask(torch.nn.Module):
    """Encoder + one linear head per task over each word's first+last piece vectors; the loss is
    summed over the tasks a batch has labels for."""

    def __init__(self, bert, sizes: dict[str, int], dropout: float = 0.1):
        super().__init__()
        self.bert = bert
        self.dropout = torch.nn.Dropout(dropout)
        width = 2 * bert.config.hidden_size
        self.heads = torch.nn.ModuleDict({task: torch.nn.Linear(width, n) for task, n in sizes.items()})

    def forward(self, ids, mask, words, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        row, first, last = words
        vectors = self.dropout(torch.cat([hidden[row, first], hidden[row, last]], dim=-1))
        loss = hidden.new_zeros(())
        for task, gold in labels.items():
            loss = loss + torch.nn.functional.cross_entropy(self.heads[task](vectors), gold, ignore_index=-100)
        return loss


def read_docs(path: Path, vocab) -> list[Doc]:
    """Docs of a DocBin file."""
    return list(DocBin().from_disk(path).get_docs(vocab))


def bio_tag(token) -> str:
    """A token's BIO tag."""
    return f"{token.ent_iob_}-{token.ent_type_}" if token.ent_iob_ in ("B", "I") else "O"


def bio(sent) -> list[str]:
    """BIO tags of a sentence's tokens."""
    return [bio_tag(t) for t in sent]


def has_org(sent) -> bool:
    """Whether a sentence names an organisation."""
    return any(e.label_ == "ORG" for e in sent.ents)


def swap_orgs(nlp, sent, pool: list[str], rng: random.Random) -> Doc:
    """The sentence with every ORG span replaced by a name from ``pool`` (tokenised like the corpus);
    the other tokens keep their text, spacing and tags."""
    words, spaces, tags, pos = [], [], [], sent.start
    for ent in [*(e for e in sent.ents if e.label_ == "ORG"), None]:
        kept = sent.doc[pos : ent.start if ent else sent.end]
        words += [t.text for t in kept]
        spaces += [bool(t.whitespace_) for t in kept]
        tags += [bio_tag(t) for t in kept]
        if ent:
            name = nlp.make_doc(rng.choice(pool))
            words += [t.text for t in name]
            spaces += [bool(t.whitespace_) for t in name[:-1]] + [bool(ent[-1].whitespace_)]
            tags += ["B-ORG"] + ["I-ORG"] * (len(name) - 1)
            pos = ent.end
    if tags[0].startswith("I-"):  # an entity carried over from the previous sentence
        tags[0] = "B-" + tags[0][2:]
    return Doc(nlp.vocab, words=words, spaces=spaces, ents=tags)


def make_items(tokenizer, sents, labellers: dict, limit: int) -> list[dict]:
    """Encode sentences (cut to ≤ ``limit`` pieces): piece ids, first/last piece of each word that has
    pieces, and that word's label per task."""
    cls_id, sep_id = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    items = []
    for sent in sents:
        words = [t.text for t in sent]
        gold = {task: fn(sent) for task, fn in labellers.items()}
        ids, piece_words = encoder.word_pieces(tokenizer, words)
        ranges = encoder.segments(words, piece_words, limit - 2)
        for a, piece_ids, first, last in encoder.segment_inputs(ids, piece_words, ranges, cls_id, sep_id, limit - 2):
            kept = [w for w, pos in enumerate(first) if pos >= 0]
            items.append({
                "ids": piece_ids,
                "first": [first[w] for w in kept],
                "last": [last[w] for w in kept],
                "labels": {task: [values[a + w] for w in kept] for task, values in gold.items()},
            })
    return items


def batches(items: list[dict], size: int, rng: random.Random) -> list[list[dict]]:
    """Batches of one task each, length-grouped (sorted within pools of 50 batches), in random order."""
    by_task: dict[tuple, list[dict]] = {}
    for item in items:
        by_task.setdefault(tuple(item["labels"]), []).append(item)
    out = []
    for group in by_task.values():
        rng.shuffle(group)
        for i in range(0, len(group), size * 50):
            pool = sorted(group[i : i + size * 50], key=lambda it: len(it["ids"]))
            out += [pool[j : j + size] for j in range(0, len(pool), size)]
    rng.shuffle(out)
    return out


def collate(batch: list[dict], pad_id: int):
    """(ids, mask, (row, first, last) of every word, labels per task) tensors for one batch."""
    ids, mask = encoder.pad([it["ids"] for it in batch], pad_id)
    row = torch.tensor([i for i, it in enumerate(batch) for _ in it["first"]], dtype=torch.long)
    first = torch.tensor([p for it in batch for p in it["first"]], dtype=torch.long)
    last = torch.tensor([p for it in batch for p in it["last"]], dtype=torch.long)
    labels = {task: torch.tensor([y for it in batch for y in it["labels"][task]], dtype=torch.long)
              for task in batch[0]["labels"]}
    return ids, mask, (row, first, last), labels


def build_runtime(nlp, model: MultiTask, tokenizer, classes: dict, lemma_head: encoder.Lemmatizer):
    """A blank pipeline with the runtime components holding the current weights (for dev scoring/export)."""
    for name in list(nlp.pipe_names):
        nlp.remove_pipe(name)
    trf = nlp.add_pipe("samverkan_transformer", name="transformer")
    trf.set_model(model.bert, tokenizer)
    for task, (name, factory) in RUNTIME_HEADS.items():
        head = nlp.add_pipe(factory, name=name)
        if task == "lemma":
            head.strings, head.trees = lemma_head.strings, lemma_head.trees
        layer = model.heads[task]
        head.set_weights(layer.weight.detach().numpy(), layer.bias.detach().numpy(), classes[task])
    return nlp


def score_dev(nlp, model: MultiTask, tokenizer, classes: dict, lemma_head, gold_dev: list[Doc]) -> dict:
    """NER scores on ner-dev of the runtime components holding ``model``'s weights."""
    runtime = build_runtime(nlp, model, tokenizer, classes, lemma_head)
    pred = runtime.pipe(nlp.make_doc(d.text) for d in gold_dev)
    return ner_scores([Example(p, g) for p, g in zip(pred, gold_dev)])


def train(args: argparse.Namespace) -> dict:
    """Train, keep the best epoch by ner-dev F, write the components; return the report."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from transformers import BertModel, get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    nlp = blank_with_tokenizer(args.tokenizer_from)
    tokenizer = Tokenizer.from_file(str(args.init / "tokenizer.json"))
    pad_id = tokenizer.token_to_id("<pad>")

    ner_sents = [s for d in read_docs(args.corpus / "ner-train.spacy", nlp.vocab) for s in d.sents]
    ud_sents = [s for d in read_docs(args.corpus / "ud-train-tune.spacy", nlp.vocab) for s in d.sents]
    # ud-tune is current UD with gold lemmas, ud-train harmonised UD v1 with silver ones: weigh ud-tune up
    tune_sents = [s for d in read_docs(args.corpus / "ud-tune.spacy", nlp.vocab) for s in d.sents]
    ud_sents += tune_sents * (args.ud_tune_repeat - 1)
    if args.limit:
        ner_sents, ud_sents = ner_sents[: args.limit], ud_sents[: args.limit]
    morph_counts = Counter((t.pos_, str(t.morph)) for s in ud_sents for t in s)
    morph_classes = [list(k) for k, _ in morph_counts.most_common()]
    morph_id = {tuple(k): i for i, k in enumerate(morph_classes)}
    lemma_head = encoder.Lemmatizer("lemmatizer")  # holds the edit trees (and their strings)
    trees = lemma_head.trees
    tree_counts = Counter(trees.add(t.text, t.lemma_) for s in ud_sents for t in s if t.lemma_)
    lemma_classes = [tree for tree, _ in tree_counts.most_common()]
    lemma_id = {tree: i for i, tree in enumerate(lemma_classes)}
    classes = {"ner": NER_CLASSES, "morph": morph_classes, "lemma": lemma_classes}
    ner_id = {tag: i for i, tag in enumerate(NER_CLASSES)}

    def ner_labels(sent):
        tags = bio(sent)
        if tags and tags[0].startswith("I-"):
            tags[0] = "B-" + tags[0][2:]
        return [ner_id[t] for t in tags]

    def morph_labels(sent):
        return [morph_id[(t.pos_, str(t.morph))] for t in sent]

    def lemma_labels(sent):
        return [lemma_id[trees.add(t.text, t.lemma_)] if t.lemma_ else -100 for t in sent]

    # with --org-swap-replace, the sentences naming an organisation are drawn anew each epoch
    org_sents = [s for s in ner_sents if has_org(s)] if args.org_swap_replace else []
    fixed_ner = [s for s in ner_sents if not has_org(s)] if org_sents else ner_sents
    items = make_items(tokenizer, fixed_ner, {"ner": ner_labels}, args.max_len)
    items += make_items(tokenizer, ud_sents, {"morph": morph_labels, "lemma": lemma_labels}, args.max_len)
    swapped: list[list[dict]] = [[] for _ in range(args.epochs)]  # the NER items added in each epoch
    if args.org_swap or args.org_swap_replace:
        pool = sorted({e.text for s in ner_sents for e in s.ents if e.label_ == "ORG"}
                      | {name for canonical, aliases in load_lexicon().known_orgs for name in [canonical, *aliases]})
        swap_rng = random.Random(args.seed)
        for epoch_items in swapped:
            docs = [swap_orgs(nlp, s, pool, swap_rng) for s in ner_sents if has_org(s) for _ in range(args.org_swap)]
            docs += [swap_orgs(nlp, s, pool, swap_rng) if swap_rng.random() < args.org_swap_replace else s for s in org_sents]
            epoch_items += make_items(tokenizer, docs, {"ner": ner_labels}, args.max_len)
        logger.info("org swap: %d names, %d NER items added per epoch", len(pool), len(swapped[0]))
    logger.info("items: %d (NER %d sentences, UD %d); classes: morph %d, lemma trees %d",
                len(items), len(ner_sents), len(ud_sents), len(morph_classes), len(lemma_classes))

    bert = BertModel.from_pretrained(args.init, add_pooling_layer=False, local_files_only=True)
    bert.embeddings.word_embeddings.weight.requires_grad_(args.train_embeddings)
    model = MultiTask(bert, {task: len(c) for task, c in classes.items()})
    if args.ner_head:
        state = load_file(str(args.ner_head))
        # the token classifier read the first piece: the first half of the word vector
        head = model.heads["ner"]
        head.weight.data.zero_()
        head.weight.data[:, : bert.config.hidden_size] = state["classifier.weight"]
        head.bias.data[:] = state["classifier.bias"]

    head_params = list(model.heads.parameters())
    enc_params = [p for p in model.bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": args.lr}, {"params": head_params, "lr": args.head_lr}],
        weight_decay=0.01,
    )
    total = sum(-(-(len(items) + len(extra)) // args.batch_size) for extra in swapped)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    gold_dev = read_docs(args.corpus / "ner-dev.spacy", nlp.vocab)[: args.limit or None]

    report: dict = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "history": []}
    # an exponential moving average of the weights, scored and exported instead of the last weights
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema)) if args.ema else None
    best_f, best_state, step, t0 = -1.0, None, 0, time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        loss_sum = 0.0
        for batch in batches(items + swapped[epoch], args.batch_size, rng):
            ids, mask, words, labels = collate(batch, pad_id)
            loss = model(ids, mask, words, labels)
            apply_gradients(loss, enc_params + head_params, opt, sched)
            if averaged is not None:
                averaged.update_parameters(model)
            step += 1
            loss_sum += loss.item()
            if step % 50 == 0:
                logger.info("epoch %d step %d/%d loss %.4f  %.2f steps/s", epoch + 1, step, total,
                            loss_sum / 50, step / (time.perf_counter() - t0))
                loss_sum = 0.0
        entry = {"epoch": epoch + 1, "step": step, "seconds": round(time.perf_counter() - t0, 1)}
        dev = score_dev(nlp, model, tokenizer, classes, lemma_head, gold_dev)
        entry |= {"dev_core_f": dev["core_micro"]["f"], "dev_org_f": dev["per_label"]["ORG"]["f"]}
        exported = model
        if averaged is not None:
            exported = averaged.module
            dev = score_dev(nlp, exported, tokenizer, classes, lemma_head, gold_dev)
            entry |= {"ema_dev_core_f": dev["core_micro"]["f"], "ema_dev_org_f": dev["per_label"]["ORG"]["f"]}
        report["history"].append(entry)
        logger.info("dev %s", json.dumps(entry))
        if dev["core_micro"]["f"] > best_f:
            best_f, report["best_epoch"] = dev["core_micro"]["f"], epoch + 1
            best_state = {k: v.detach().clone() for k, v in exported.state_dict().items()}
            report["ner_dev"] = dev
    report["train_seconds"] = round(time.perf_counter() - t0, 1)
    model.load_state_dict(best_state)
    runtime = build_runtime(nlp, model, tokenizer, classes, lemma_head)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in runtime.pipe_names:
        runtime.get_pipe(name).to_disk(args.out / name)
    return report


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("init", type=Path, help="pruned transformers BertModel directory (prune_e5.py)")
    parser.add_argument("corpus", type=Path, help="DocBin directory written by convert.py")
    parser.add_argument("out", type=Path, help="where the component directories are written")
    parser.add_argument("--ner-head", type=Path, default=None, help="model.safetensors of ner_hf.py")
    parser.add_argument("--tokenizer-from", type=Path, default=ROOT / "models" / "sv_samverkan_cnn")
    parser.add_argument("--metrics", type=Path, default=ROOT / "models" / "metrics" / "e5_multitask_train.json")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=96)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ema", type=float, default=0.0,
                        help="decay of a moving average of the weights that is scored and kept (0: off)")
    parser.add_argument("--org-swap", type=int, default=0,
                        help="copies per epoch of each ner-train sentence with an ORG, the ORG names swapped (0: off)")
    parser.add_argument("--org-swap-replace", type=float, default=0.0,
                        help="chance that a ner-train sentence with an ORG is seen with the names swapped, each epoch "
                             "(instead of as written; the number of ORG sentences stays the same)")
    parser.add_argument("--train-embeddings", action="store_true",
                        help="also train the (pruned) word-embedding matrix (frozen by default)")
    parser.add_argument("--limit", type=int, default=0, help="first N sentences of each corpus (smoke runs)")
    parser.add_argument("--ud-tune-repeat", type=int, default=1,
                        help="how many times ud-tune's sentences are seen per epoch (ud-train once)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    write_report(args.metrics, train(args))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
