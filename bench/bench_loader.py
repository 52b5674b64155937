"""Loader cost per batch as the database grows: the schema as shipped against the same schema
with the old primary-key index on ``paragraphs.para_id``, side by side in one run.

Each batch is what the flow's loader does: open the file, ``save_documents`` for 16 documents of
15 paragraphs (random 384-dim vectors), close (which checkpoints). Prints ms per batch over the
first and the last ten batches.

Usage: .venv/bin/python bench/bench_loader.py [--batches 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import make_doc  # noqa: E402

from pipeline.store import Store  # noqa: E402

WORDS = "kommunen brukarrådet insatser enligt LSS uppföljning handläggare beslut daglig verksamhet".split()


def run(db: Path, batches: int, with_index: bool) -> list[float]:
    """Seconds per batch, reopening the database for every batch as the flow's loader does."""
    with Store(db) as store:
        if with_index:
            store.query("CREATE UNIQUE INDEX paragraphs_pk ON paragraphs (para_id)")
    times = []
    for b in range(batches):
        docs = [make_doc(f"http://h/{b}/{d}", [f"{' '.join(WORDS)} {b} {d} {i}." * 5 for i in range(15)], seed=b * 16 + d)
                for d in range(16)]
        start = time.perf_counter()
        with Store(db) as store:
            store.save_documents(docs)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    print(f"{args.batches} batches × 16 documents × 15 paragraphs, file reopened per batch")
    print(f"{'schema':44} {'first 10 ms/batch':>18} {'last 10 ms/batch':>17} {'total s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, with_index in (("shipped (paragraphs without index)", False),
                                  ("with the old para_id primary-key index", True)):
            times = run(Path(tmp) / f"{with_index}.duckdb", args.batches, with_index)
            first, last = sum(times[:10]) / 10 * 1000, sum(times[-10:]) / 10 * 1000
            print(f"{label:44} {first:18.0f} {last:17.0f} {sum(times):8.1f}")


if __name__ == "__main__":
    main()
