"""Throughput of the shipped Swedish spaCy pipeline and its CNN fallback in words per second.

Pipelines: ``models/sv_samverkan`` (e5 transformer; shipped) and ``models/sv_samverkan_cnn`` (CNN only,
the faster fallback), measured one after the other in one run.

Text: the held-out half of UD Swedish-Talbanken's dev file (documents P409, P411, P414, P418 of
``models/corpora/ud/sv_talbanken-ud-dev.conllu``), one document per text, repeated to ``--min-words``.
Runs on the CPU with ``--threads`` threads (default 2) and, when CUDA is available, on the GPU too.
Also reports the speed with only ``ner`` (and the encoder it reads) enabled, and each component's
share of the time of one pass.

    .venv/bin/python bench/bench_nlp.py [--model DIR ...] [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONLLU = ROOT / "models" / "corpora" / "ud" / "sv_talbanken-ud-dev.conllu"
HELD_OUT = {"P409", "P411", "P414", "P418"}


def held_out_texts(path: Path = CONLLU) -> list[str]:
    """Paragraph texts of the held-out UD documents."""
    texts: list[str] = []
    doc_id, para = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(("# newdoc", "# newpar")) and para:
            texts.append(" ".join(para))
            para = []
        if line.startswith("# newdoc"):
            doc_id = line.split("=", 1)[1].strip()
        elif line.startswith("# text =") and doc_id in HELD_OUT:
            para.append(line.split("=", 1)[1].strip())
    if para:
        texts.append(" ".join(para))
    return texts


def run(nlp, texts: list[str], repeat: int, batch_size: int) -> tuple[float, int]:
    """Median words/s of ``nlp.pipe`` over ``texts`` and the word count of one pass."""
    list(nlp.pipe(texts[:20], batch_size=batch_size))  # warm-up
    rates, n_words = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
        rates.append(n_words / (time.perf_counter() - start))
    return statistics.median(rates), n_words


def component_shares(nlp, texts: list[str], batch_size: int) -> dict[str, float]:
    """Share of one pass's time spent in each component (run in order on the same batches, as ``nlp.pipe``)."""
    seconds = dict.fromkeys(nlp.pipe_names, 0.0)
    for i in range(0, len(texts), batch_size):
        docs = [nlp.make_doc(text) for text in texts[i : i + batch_size]]
        for name, component in nlp.pipeline:
            start = time.perf_counter()
            docs = list(component.pipe(docs)) if hasattr(component, "pipe") else [component(doc) for doc in docs]
            seconds[name] += time.perf_counter() - start
    total = sum(seconds.values())
    return {name: s / total for name, s in seconds.items()}


def main() -> None:
    """Print words/s of the full pipeline and of NER alone, on CPU (and GPU if present)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append",
                        help="pipeline directory (repeatable; default: sv_samverkan and sv_samverkan_cnn)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--min-words", type=int, default=20000)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import spacy

    models = args.model or [ROOT / "models" / "sv_samverkan", ROOT / "models" / "sv_samverkan_cnn"]
    for model in models:
        if not (model / "config.cfg").exists():
            raise SystemExit(f"no pipeline at {model}: run `make models` (bash models/build.sh)")
    texts = held_out_texts()
    words = sum(len(t.split()) for t in texts)
    texts = texts * max(1, -(-args.min_words // max(words, 1)))

    devices = ["cpu"]
    try:
        import torch

        torch.set_num_threads(args.threads)
        if torch.cuda.is_available():
            devices.append("gpu")
    except ImportError:
        pass
    print(f"texts: {len(texts)}  threads: {args.threads}")
    for device in devices:
        if device == "gpu":
            spacy.require_gpu()
        for model in models:
            nlp = spacy.load(model)
            rate, n = run(nlp, texts, args.repeat, args.batch_size)
            print(f"{model.name} {device}  full pipeline {nlp.pipe_names}: {rate:,.0f} words/s ({n} words per pass)")
            shares = component_shares(nlp, texts, args.batch_size)
            print(f"{model.name} {device}  time per component: "
                  + ", ".join(f"{name} {share:.1%}" for name, share in shares.items()))
            # a CNN ner carries its own encoder (listeners replaced when assembled); the e5 ner reads the transformer
            with nlp.select_pipes(enable=[name for name in ("transformer", "ner") if name in nlp.pipe_names]):
                rate, n = run(nlp, texts, args.repeat, args.batch_size)
                print(f"{model.name} {device}  NER only {nlp.pipe_names}: {rate:,.0f} words/s")


if __name__ == "__main__":
    main()
