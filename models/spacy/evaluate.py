"""Evaluate a spaCy pipeline on the held-out splits and write a JSON report.

Scores (all on data never trained on nor used for model selection):

* NER on ``ner-test.spacy`` (and ``ner-dev.spacy``, used for checkpoint selection): precision/recall/F per label and micro-averaged over PER, ORG and LOC
  (exact spans), plus the all-label micro score spaCy reports.
* UPOS, morphology, lemma accuracy, UAS/LAS on ``ud-test.spacy`` (raw text → pipeline, aligned to gold).
* Speed: words per second of the full pipeline over the ``ud-test`` text.

Usage: ``python models/spacy/evaluate.py MODEL CORPUS_DIR OUT_JSON [--label NAME]``
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.scorer import PRFScore, Scorer
from spacy.tokens import DocBin
from spacy.training import Example

logger = logging.getLogger(__name__)

CORE_LABELS = ("PER", "ORG", "LOC")
UD_META_KEYS = ("pos_acc", "morph_acc", "lemma_acc", "dep_uas", "dep_las", "sents_f")


def load_examples(nlp: Language, path: Path) -> list[Example]:
    """Read gold Docs and pair each with an un-annotated Doc made from its text."""
    docs = DocBin().from_disk(path).get_docs(nlp.vocab)
    return [Example(nlp.make_doc(doc.text), doc) for doc in docs]


def predict(nlp: Language, examples: list[Example], batch_size: int = 64) -> list[Example]:
    """Run the pipeline over the examples' predicted docs."""
    docs = nlp.pipe((eg.predicted for eg in examples), batch_size=batch_size)
    return [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]


def ner_scores(examples: list[Example]) -> dict:
    """Per-label and PER/ORG/LOC micro P/R/F; a span counts only with exact character offsets."""
    per_type: dict[str, PRFScore] = defaultdict(PRFScore)
    for eg in examples:
        gold = {(e.start_char, e.end_char, e.label_) for e in eg.reference.ents}
        pred = {(e.start_char, e.end_char, e.label_) for e in eg.predicted.ents}
        for label in {lab for _, _, lab in gold | pred}:
            g = {s for s in gold if s[2] == label}
            p = {s for s in pred if s[2] == label}
            per_type[label].tp += len(g & p)
            per_type[label].fp += len(p - g)
            per_type[label].fn += len(g - p)
    core, everything = PRFScore(), PRFScore()
    for label, score in per_type.items():
        everything += score
        if label in CORE_LABELS:
            core += score
    return {
        "core_micro": _prf(core),
        "all_micro": _prf(everything),
        "per_label": {label: _prf(score) for label, score in sorted(per_type.items())},
    }


def _prf(score: PRFScore) -> dict:
    return {
        "p": round(score.precision, 4),
        "r": round(score.recall, 4),
        "f": round(score.fscore, 4),
        "tp": score.tp,
        "fp": score.fp,
        "fn": score.fn,
    }


def ud_scores(nlp: Language, examples: list[Example]) -> dict:
    """UPOS, morphology, lemma accuracy and attachment scores."""
    result: dict = {}
    result.update(Scorer.score_token_attr(examples, "pos"))
    result.update(Scorer.score_token_attr(examples, "morph"))
    result.update(Scorer.score_token_attr(examples, "lemma"))
    deps = Scorer.score_deps(examples, "dep", ignore_labels=("p", "punct"))
    result["dep_uas"] = deps["dep_uas"]
    result["dep_las"] = deps["dep_las"]
    result["sents_f"] = Scorer.score_spans(examples, "sents")["sents_f"]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}


def words_per_second(nlp: Language, texts: list[str], repeats: int = 2, batch_size: int = 64) -> float:
    """Median words/s of ``nlp.pipe`` over ``texts`` (one warm-up pass)."""
    list(nlp.pipe(texts[:10]))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
        rates.append(n_words / (time.perf_counter() - start))
    return round(sorted(rates)[len(rates) // 2], 1)


def size_on_disk(path: Path) -> int:
    """Total bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def evaluate(model: Path, corpus: Path, label: str, speed: bool = True) -> dict:
    """Evaluate ``model`` on the held-out NER and UD splits in ``corpus``."""
    nlp = spacy.load(model)
    report: dict = {"label": label, "model": str(model), "pipeline": nlp.pipe_names}
    if "ner" in nlp.pipe_names:
        for split in ("ner-dev", "ner-test"):  # dev chose the checkpoint; test is reported only
            report[split.replace("-", "_")] = ner_scores(predict(nlp, load_examples(nlp, corpus / f"{split}.spacy")))
    ud_examples = load_examples(nlp, corpus / "ud-test.spacy")
    if any(name in nlp.pipe_names for name in ("morphologizer", "tagger", "parser", "lemmatizer")):
        report["ud_test"] = ud_scores(nlp, predict(nlp, ud_examples))
    if speed:
        texts = [eg.reference.text for eg in ud_examples]
        report["words_per_second"] = words_per_second(nlp, texts)
    report["size_bytes"] = size_on_disk(model)
    return report


def record_in_meta(model: Path, report: dict) -> None:
    """Replace the ``performance`` of ``model``'s meta.json (spaCy's training-time scores on data the UD
    components were trained on) with the held-out scores of ``report``, so ``spacy info`` shows them."""
    meta_path = model / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    performance: dict = {k: report["ud_test"][k] for k in UD_META_KEYS if k in report.get("ud_test", {})}
    if "ner_test" in report:
        scores = report["ner_test"]
        performance.update({f"ents_{k}": scores["all_micro"][k] for k in ("p", "r", "f")})
        performance["ents_per_type"] = {
            label: {k: s[k] for k in ("p", "r", "f")} for label, s in sorted(scores["per_label"].items())
        }
    meta["performance"] = performance
    meta["performance_splits"] = "held out, never trained on: ner-test (entities), ud-test (the rest); models/README.md"
    write_report(meta_path, meta)


def write_report(path: Path, report: dict) -> None:
    """Write a report as indented UTF-8 JSON (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--label", default="")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--record-in-meta", action="store_true", help="write the held-out scores into the model's meta.json")
    args = parser.parse_args()
    report = evaluate(args.model, args.corpus, args.label or args.model.name, speed=not args.no_speed)
    write_report(args.out, report)
    if args.record_in_meta:
        record_in_meta(args.model, report)
    logger.info("%s", json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
