"""Average the weights of several stage-2 runs ("model soup") and score the average's NER on ner-dev.

The runs start from the same stage-1 encoder, so their weights can be averaged element-wise: the
encoder (dequantized from int8 storage) and each head. The soup is written as component
directories like ``e5_multitask.py``'s, and its ner-dev scores (with each run's own) go to a JSON
report. An experiment (models/README.md): no soup has been shipped.

Usage: ``python models/spacy/weight_soup.py OUT_DIR RUN_DIR RUN_DIR [...] --metrics FILE``
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from evaluate import load_examples, ner_scores, predict, write_report  # noqa: E402
from ner_hf import blank_with_tokenizer  # noqa: E402

from pipeline import encoder  # noqa: E402

logger = logging.getLogger(__name__)

HEADS = {"ner": encoder.EntityRecognizer, "morphologizer": encoder.Morphologizer, "lemmatizer": encoder.Lemmatizer}


def soup(runs: list[Path], out: Path) -> None:
    """Write the element-wise mean of the runs' encoder and head weights to ``out``."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(runs[0], out)
    states = [encoder.dequantize_state(load_file(str(run / "transformer" / encoder.WEIGHTS))) for run in runs]
    transformer = encoder.Transformer().from_disk(runs[0] / "transformer")
    transformer.model.load_state_dict({name: sum(s[name] for s in states) / len(states) for name in states[0]})
    transformer.to_disk(out / "transformer")
    for name, cls in HEADS.items():
        heads = [cls(name).from_disk(run / name) for run in runs]
        if any(head.classes != heads[0].classes for head in heads):
            raise ValueError(f"the runs' {name} heads have different classes: they cannot be averaged")
        mean = heads[0]
        mean.set_weights(sum(h.weight for h in heads) / len(heads), sum(h.bias for h in heads) / len(heads), mean.classes)
        mean.to_disk(out / name)


def ner_dev(e5_dir: Path, corpus: Path) -> dict:
    """Core (PER/ORG/LOC) F and ORG F on ner-dev of the encoder + NER head in ``e5_dir``."""
    nlp = blank_with_tokenizer(ROOT / "models" / "sv_samverkan_cnn")
    nlp.add_pipe("samverkan_transformer", name="transformer").from_disk(e5_dir / "transformer")
    nlp.add_pipe("samverkan_ner", name="ner").from_disk(e5_dir / "ner")
    scores = ner_scores(predict(nlp, load_examples(nlp, corpus / "ner-dev.spacy")))
    return {"core_f": scores["core_micro"]["f"], "org_f": scores["per_label"]["ORG"]["f"]}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where the averaged components are written")
    parser.add_argument("runs", type=Path, nargs="+", help="component directories of e5_multitask.py runs")
    parser.add_argument("--corpus", type=Path, default=ROOT / "models" / ".build" / "corpus")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("give at least two runs")
    torch.set_num_threads(args.threads)
    soup(args.runs, args.out)
    report = {"runs": {str(run): ner_dev(run, args.corpus) for run in args.runs},
              "soup": ner_dev(args.out, args.corpus)}
    logger.info("%s", report)
    write_report(args.metrics, report)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
