"""Domain check of the spaCy NER alone: how many gold people and organisations of web pages it finds.

A gold person counts as found when its name or an alias overlaps a PER span of the model; a gold
organisation when its name or an alias overlaps an ORG span. Only the NER is scored here (the
extractors' rules and lexicons come on top, see bench/eval_extraction.py). Misses are listed.

Usage: .venv/bin/python bench/eval_ner_domain.py [GOLD_DIR SAMPLES_DIR] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline import nlp as nlp_stage


def found(forms: list[str], text: str, spans: list[tuple[int, int]]) -> bool:
    """True when any occurrence of any form overlaps one of the spans."""
    for form in filter(None, forms):
        start = text.find(form)
        while start >= 0:
            if any(s < start + len(form) and start < e for s, e in spans):
                return True
            start = text.find(form, start + 1)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold_dir", type=Path, nargs="?", default=Path("../shared/gold"))
    parser.add_argument("samples_dir", type=Path, nargs="?", default=Path("../shared/samples"))
    parser.add_argument("--model", action="append",
                        help="spaCy pipeline (repeatable; default: the shipped one and the CNN fallback)")
    args = parser.parse_args()
    for model in args.model or [None, str(nlp_stage.CNN_MODEL)]:
        print(f"model: {model or nlp_stage.DEFAULT_MODEL}")
        report(nlp_stage.load(model), args.gold_dir, args.samples_dir)


def report(nlp, gold_dir: Path, samples_dir: Path) -> None:
    """Print the gold people and organisations the NER misses, and the recall per label."""
    totals = {"PER": [0, 0], "ORG": [0, 0]}
    for gpath in sorted(gold_dir.glob("*.json")):
        gold = json.loads(gpath.read_text(encoding="utf-8"))
        tpath = samples_dir / (gold.get("doc") or gpath.with_suffix(".txt").name)
        if not tpath.exists():
            continue
        text = tpath.read_text(encoding="utf-8")
        doc = nlp(text)
        for label, key in (("PER", "people"), ("ORG", "organisations")):
            spans = [(e.start_char, e.end_char) for e in doc.ents if e.label_ == label]
            for item in gold.get(key, []):
                hit = found([item.get("name"), *item.get("aliases", [])], text, spans)
                totals[label][0] += hit
                totals[label][1] += 1
                if not hit:
                    print(f"  {gpath.stem}: {label} missed {item.get('name')!r}")
    for label, (hit, total) in totals.items():
        print(f"{label}: {hit}/{total} gold {'people' if label == 'PER' else 'organisations'} found by the NER "
              f"(recall {hit / max(1, total):.3f})")


if __name__ == "__main__":
    main()
