"""DuckLake or Parquet staging + one loader? A side-by-side write/query benchmark (issue 8).

Synthetic paragraph rows shaped like ours (para_id, doc_id, idx, ~400 chars of Swedish-like
text, text_hash, a normalised 384-dim float32 embedding), in batches of 16 documents x 15
paragraphs = 240 rows. Batch ``i`` is the same in every scenario; writer ``w`` of ``N`` takes
the batches with ``i % N == w``. Each process builds its batches before a common start barrier,
so data generation and process start-up are not timed.

Scenarios, each on fresh files in a temporary folder:

* ``staging N=1|2`` (our pattern): N writer processes write each batch as a Parquet file with
  pyarrow (temporary name + rename); one loader process polls the folder and merges each new
  file in its own transaction (``INSERT ... SELECT FROM read_parquet`` into ``paragraphs`` with
  its primary key, plus a ``loaded_batches`` row, skipped when already there), then deletes it.
  The loader holds the DuckDB file open for the run; a third variant opens and closes it once
  per poll round, as ``flows/crawl.py`` does with ``Store`` (closing checkpoints the file).
  Reported: end to end (start to last commit) and the loader's busy time alone.
* ``ducklake:<catalog> N=1|2``: N writer processes append their batches straight into a DuckLake
  table, one transaction per batch that also inserts a ``loaded_batches`` row (the same
  idempotence bookkeeping). Catalogs: a DuckDB file (held attached, and attached per batch
  with retries while another process holds it), a SQLite file, and a SQLite file put in WAL
  mode before DuckLake creates its tables. DuckLake's own commit retry is switched off so that
  every conflict or lock error reaches the writer, which counts it and retries; the first
  message of each kind is shown.

DuckLake has no fixed-size ARRAY type ("unsupported type FLOAT[384]") and no primary keys: its
table stores ``embedding FLOAT[]`` and queries cast it to ``FLOAT[384]``. Its one-row
``loaded_batches`` inserts stay inlined in the catalog (data inlining, default limit 10 rows).

Afterwards each result is queried (median of 3 after one warm-up): ``count(*), avg(len(text))``
and a top-10 by ``array_cosine_similarity`` against a random query vector; the DuckLake
table is queried again after ``ducklake_merge_adjacent_files`` (compaction).

DuckDB extensions are loaded by path from their pip packages (duckdb-extension-ducklake,
duckdb-extension-sqlite-scanner, both ==1.5.5), never downloaded.

Usage: .venv/bin/python bench/bench_ducklake.py [--batches 100] [--only staging,ducklake]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from contextlib import closing
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DIM = 384
DOCS_PER_BATCH = 16
PARAS_PER_DOC = 15
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
SCHEMA = pa.schema([("para_id", pa.string()), ("doc_id", pa.string()), ("idx", pa.int32()), ("text", pa.string()),
                    ("text_hash", pa.string()), ("embedding", pa.list_(pa.float32()))])
RETRYABLE = ("conflict", "lock", "busy", "retry")
PATIENCE = 30.0  # seconds a writer keeps retrying one batch before it gives up

_WORDS = ("och att det som en på är för med av till den har de inte om ett kommun region samverkan "
          "funktionsnedsättning förening möte protokoll beslut ordförande ledamot nämnd förvaltning "
          "handlingsplan åtgärd tillgänglighet stöd insatser boende daglig verksamhet assistans brukare "
          "anhöriga skola elever vårdnadshavare socialtjänst hälso sjukvård överenskommelse uppföljning "
          "rapport remiss yttrande samråd dialog representanter organisationer länsstyrelsen myndighet "
          "projekt finansiering ansökan bidrag verksamhetsplan budget årsmöte styrelse sekreterare "
          "kontaktperson samordnare handläggare utredning kartläggning enkät resultat förslag ärende "
          "information inbjudan anmälan datum lokal digitalt deltagare frågor synpunkter").split()


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file inside the pip package ``duckdb-extension-<name>``."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        raise SystemExit(f"pip package duckdb-extension-{name.replace('_', '-')}==1.5.5 is not installed")
    return sorted((Path(spec.origin).parent / "extensions").glob(f"v*/{name}.duckdb_extension"))[-1]


def connect(path: str = ":memory:", read_only: bool = False, lake: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with autoinstall off and, for lakes, ducklake + sqlite loaded by path."""
    con = duckdb.connect(path, read_only=read_only, config=CONFIG)
    con.execute("SET enable_progress_bar = false")
    if lake:
        con.execute(f"LOAD '{extension_path('ducklake')}'")
        con.execute(f"LOAD '{extension_path('sqlite_scanner')}'")
    return con


def make_batch(i: int) -> pa.Table:
    """Batch ``i``: 16 documents x 15 paragraphs, deterministic in ``i``."""
    rng = np.random.default_rng(i)
    words = np.array(_WORDS + [w.capitalize() for w in _WORDS[20:60]])
    n = DOCS_PER_BATCH * PARAS_PER_DOC
    picks = rng.integers(0, len(words), size=(n, 80))
    texts = [" ".join(words[row])[:400].rsplit(" ", 1)[0] + "." for row in picks]
    doc_ids = [f"doc-{i:05d}-{d:02d}" for d in range(DOCS_PER_BATCH) for _ in range(PARAS_PER_DOC)]
    idx = [p for _ in range(DOCS_PER_BATCH) for p in range(PARAS_PER_DOC)]
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embedding = pa.ListArray.from_arrays(pa.array(np.arange(0, n * DIM + 1, DIM, dtype=np.int32)),
                                         pa.array(vectors.ravel()))
    return pa.Table.from_arrays([
        pa.array([hashlib.sha1(f"{d}#{k}".encode()).hexdigest()[:16] for d, k in zip(doc_ids, idx)]),
        pa.array(doc_ids), pa.array(idx, pa.int32()), pa.array(texts),
        pa.array([hashlib.sha1(t.encode()).hexdigest() for t in texts]), embedding], schema=SCHEMA)


# ---------------------------------------------------------------- (a) Parquet staging + one loader

def staging_writer(w: int, n: int, batches: int, folder: str, barrier, out) -> None:
    """Write this writer's batches as Parquet files (temporary name, then rename)."""
    try:
        mine = [(i, make_batch(i)) for i in range(w, batches, n)]
        barrier.wait(timeout=120)
        start = time.time()
        for i, table in mine:
            path = Path(folder) / f"docs-{i:05d}.parquet"
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        out.put({"role": "writer", "start": start, "end": time.time(), "batches": len(mine)})
    except Exception:  # noqa: BLE001 - reported in the table
        barrier.abort()
        out.put({"role": "writer", "error": traceback.format_exc(limit=1)})


def staging_loader(db: str, batches: int, folder: str, reopen: bool, barrier, out) -> None:
    """Poll the folder and merge each new batch in one transaction; with ``reopen`` the database is
    opened and closed (checkpointed) once per poll round, as ``flows/crawl.py``'s ``Store`` does."""
    try:
        con = connect(db)
        con.execute(f"""CREATE TABLE paragraphs (para_id VARCHAR PRIMARY KEY, doc_id VARCHAR, idx INTEGER,
                        text VARCHAR, text_hash VARCHAR, embedding FLOAT[{DIM}]);
                        CREATE TABLE loaded_batches (batch_id VARCHAR PRIMARY KEY, rows INTEGER,
                        loaded_at TIMESTAMP)""")
        if reopen:
            con.close()
        barrier.wait(timeout=120)
        start = time.time()
        loaded, busy, rounds = 0, 0.0, 0
        while loaded < batches:
            files = sorted((p for p in os.scandir(folder) if p.name.endswith(".parquet")), key=lambda p: p.name)
            if not files:
                time.sleep(0.005)
                continue
            t0 = time.perf_counter()
            rounds += 1
            if reopen:
                con = connect(db)
            for entry in files:
                batch_id = entry.name.removesuffix(".parquet")
                if not con.execute("SELECT 1 FROM loaded_batches WHERE batch_id = ?", [batch_id]).fetchone():
                    con.execute("BEGIN")
                    rows = con.execute(f"""INSERT INTO paragraphs SELECT para_id, doc_id, idx, text, text_hash,
                                    embedding::FLOAT[{DIM}] FROM read_parquet('{entry.path}')""").fetchone()[0]
                    con.execute("INSERT INTO loaded_batches VALUES (?, ?, now())", [batch_id, rows])
                    con.execute("COMMIT")
                os.unlink(entry.path)
                loaded += 1
            if reopen:
                con.close()
            busy += time.perf_counter() - t0
        if not reopen:
            con.close()
        out.put({"role": "loader", "start": start, "end": time.time(), "busy": busy, "rounds": rounds})
    except Exception:  # noqa: BLE001
        barrier.abort()
        out.put({"role": "loader", "error": traceback.format_exc(limit=1)})


def run_staging(tmp: Path, n: int, batches: int, reopen: bool) -> dict:
    tag = f"staging{n}{'-reopen' if reopen else ''}"
    folder = tmp / tag
    folder.mkdir()
    db = str(tmp / f"{tag}.duckdb")
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=staging_writer, args=(w, n, batches, str(folder), barrier, out)) for w in range(n)]
    procs.append(ctx.Process(target=staging_loader, args=(db, batches, str(folder), reopen, barrier, out)))
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    errors = [r["error"] for r in results if "error" in r]
    label = f"staging+loader N={n}" + (", loader reopens the file per round" if reopen else "")
    row = {"scenario": label, "errors": errors, "db": db, "kind": "duckdb"}
    if errors:
        return row
    loader = next(r for r in results if r["role"] == "loader")
    start = min(r["start"] for r in results)
    row.update(seconds=loader["end"] - start, loader_busy=loader["busy"], batches=batches,
               writers_done=max(r["end"] for r in results if r["role"] == "writer") - start,
               note=f"{loader['rounds']} loader rounds")
    return row


# ---------------------------------------------------------------- (b) DuckLake, writers append directly

def lake_uri(catalog: str, tmp: Path, tag: str) -> str:
    """The DuckLake catalog: a DuckDB file, or a SQLite file (``sqlite-wal``: created in WAL mode first)."""
    if catalog == "duckdb":
        return f"ducklake:{tmp / f'{tag}.ducklake'}"
    path = tmp / f"{tag}.sqlite"
    if catalog == "sqlite-wal":
        with closing(sqlite3.connect(path)) as db:  # WAL mode is stored in the file; DuckLake keeps it
            db.execute("PRAGMA journal_mode=WAL")
    return f"ducklake:sqlite:{path}"


def attach(con, uri: str, data: Path, read_only: bool = False) -> None:
    con.execute(f"ATTACH '{uri}' AS lake (DATA_PATH '{data}/'{', READ_ONLY' if read_only else ''})")


def retryable(exc: Exception) -> bool:
    return any(word in str(exc).lower() for word in RETRYABLE)


def lake_writer(w: int, n: int, batches: int, uri: str, data: str, per_batch: bool, own_retries: bool,
                barrier, out) -> None:
    """Append this writer's batches to the lake, one transaction per batch (retried on conflicts).

    With ``own_retries`` DuckLake's built-in commit retry is off, so every conflict reaches
    this loop and is counted; otherwise DuckLake retries (by default 10 times, 100 ms x 1.5^k).
    """
    errors: dict[str, str] = {}
    retries = 0

    def note(exc: Exception) -> None:
        errors.setdefault(type(exc).__name__ + ": " + " ".join(str(exc).split())[:300], "")

    try:
        mine = [(i, make_batch(i)) for i in range(w, batches, n)]
        con = connect(lake=True)
        if own_retries:
            con.execute("SET ducklake_max_retry_count = 0")
        barrier.wait(timeout=120)
        start = time.time()
        attached = False
        done = 0
        for i, table in mine:
            batch_id = f"docs-{i:05d}"
            deadline = time.monotonic() + PATIENCE
            while time.monotonic() < deadline:
                try:
                    if not attached:
                        try:
                            attach(con, uri, Path(data))
                        except duckdb.Error as exc:
                            if per_batch:
                                raise
                            # held attachment: a process that cannot attach while another holds it has failed
                            raise RuntimeError(f"ATTACH: {str(exc).splitlines()[0][:200]}") from exc
                        attached = True
                    if not con.execute("SELECT 1 FROM lake.loaded_batches WHERE batch_id = ?", [batch_id]).fetchone():
                        con.execute("BEGIN")
                        con.register("batch", table)
                        con.execute("INSERT INTO lake.paragraphs SELECT * FROM batch")
                        con.execute("INSERT INTO lake.loaded_batches VALUES (?, ?, now())", [batch_id, table.num_rows])
                        con.execute("COMMIT")
                        con.unregister("batch")
                    if per_batch:
                        con.execute("DETACH lake")
                        attached = False
                    done += 1
                    break
                except duckdb.Error as exc:
                    note(exc)
                    try:
                        con.execute("ROLLBACK")
                    except duckdb.Error:
                        pass
                    if not retryable(exc):
                        raise
                    retries += 1
                    if per_batch and attached:
                        con.execute("DETACH lake")
                        attached = False
                    time.sleep(0.002 * (1 + retries % 10))
            else:
                raise RuntimeError(f"{batch_id}: gave up after {PATIENCE:.0f} s of retries")
        out.put({"role": "writer", "start": start, "end": time.time(), "batches": done, "retries": retries,
                 "messages": list(errors)})
    except Exception as exc:  # noqa: BLE001
        if not isinstance(exc, RuntimeError):
            barrier.abort()
        out.put({"role": "writer", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}",
                 "retries": retries, "messages": list(errors)})


def run_lake(tmp: Path, catalog: str, n: int, batches: int, per_batch: bool = False, own_retries: bool = True) -> dict:
    tag = f"lake-{catalog}{n}{'-turns' if per_batch else ''}{'' if own_retries else '-builtin'}"
    uri, data = lake_uri(catalog, tmp, tag), tmp / f"{tag}.files"
    con = connect(lake=True)
    attach(con, uri, data)
    con.execute("""CREATE TABLE lake.paragraphs (para_id VARCHAR, doc_id VARCHAR, idx INTEGER, text VARCHAR,
                   text_hash VARCHAR, embedding FLOAT[]);
                   CREATE TABLE lake.loaded_batches (batch_id VARCHAR, rows INTEGER, loaded_at TIMESTAMP)""")
    con.close()
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=lake_writer, args=(w, n, batches, uri, str(data), per_batch, own_retries, barrier, out))
             for w in range(n)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    label = (f"ducklake:{catalog} N={n}" + (" attach/detach per batch" if per_batch else "")
             + ("" if own_retries else " (DuckLake's built-in retries, not counted)"))
    row = {"scenario": label, "errors": [r["error"] for r in results if "error" in r], "uri": uri, "data": data,
           "kind": "lake", "retries": sum(r.get("retries", 0) for r in results),
           "messages": sorted({m for r in results for m in r.get("messages", [])})}
    ok = [r for r in results if "error" not in r]
    if ok:
        start = min(r["start"] for r in ok)
        row.update(seconds=max(r["end"] for r in ok) - start, batches=sum(r["batches"] for r in ok))
    return row


# ---------------------------------------------------------------- queries

def timed(con, sql: str, params=None, runs: int = 3) -> tuple[float, list]:
    result = con.execute(sql, params).fetchall()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        con.execute(sql, params).fetchall()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, result


def query(con, table: str, vector_expr: str, q: list[float]) -> dict:
    count_ms, (stats,) = timed(con, f"SELECT count(*), avg(len(text)) FROM {table}")
    top_ms, top = timed(con, f"""SELECT para_id, array_cosine_similarity({vector_expr}, $q::FLOAT[{DIM}]) AS s
                                 FROM {table} ORDER BY s DESC LIMIT 10""", {"q": q})
    return {"rows_found": stats[0], "avg_len": stats[1], "count_ms": count_ms, "top10_ms": top_ms,
            "top10": [p for p, _ in top]}


def query_result(row: dict, q: list[float]) -> None:
    if row["kind"] == "duckdb":
        con = connect(row["db"], read_only=True)
        row.update(query(con, "paragraphs", "embedding", q))
        row["files"] = "1 .duckdb"
        row["size_mb"] = os.path.getsize(row["db"]) / 1e6
        con.close()
        return
    con = connect(lake=True)
    attach(con, row["uri"], row["data"])
    vector = f"embedding::FLOAT[{DIM}]"
    row.update(query(con, "lake.paragraphs", vector, q))
    para_files = con.execute("SELECT count(*) FROM ducklake_list_files('lake', 'paragraphs')").fetchone()[0]
    book_files = con.execute("SELECT count(*) FROM ducklake_list_files('lake', 'loaded_batches')").fetchone()[0]
    row["files"] = f"{para_files}+{book_files}"
    row["size_mb"] = sum(f.stat().st_size for f in Path(row["data"]).rglob("*.parquet")) / 1e6
    t0 = time.perf_counter()
    con.execute("CALL ducklake_merge_adjacent_files('lake')")
    row["compact_s"] = time.perf_counter() - t0
    row["files_compacted"] = con.execute(
        "SELECT count(*) FROM ducklake_list_files('lake', 'paragraphs')").fetchone()[0]
    after = query(con, "lake.paragraphs", vector, q)
    row["count_ms_compacted"], row["top10_ms_compacted"] = after["count_ms"], after["top10_ms"]
    con.close()


# ---------------------------------------------------------------- report

def fmt(row: dict, reference: list | None) -> str:
    if "seconds" not in row:
        return f"| {row['scenario']} | FAILED | | | | | | | | |"
    rows = row["batches"] * DOCS_PER_BATCH * PARAS_PER_DOC
    loader = f"{row['loader_busy']:.1f}" if "loader_busy" in row else "–"
    same = ("n/a" if row["errors"] or reference is None else "yes" if row.get("top10") == reference else "NO")
    compact = (f"{row['files_compacted']} files: {row['count_ms_compacted']:.0f} / {row['top10_ms_compacted']:.0f}"
               if "files_compacted" in row else "–")
    partial = "" if not row["errors"] else f" (partial: {len(row['errors'])} writer(s) failed)"
    return (f"| {row['scenario']}{partial} | {row['batches'] / row['seconds']:.1f} | {rows / row['seconds']:,.0f} | "
            f"{row['seconds']:.1f} | {loader} | {row.get('retries', 0)} | {row['files']} | {row['size_mb']:.0f} | "
            f"{row['count_ms']:.1f} / {row['top10_ms']:.0f} {same} | {compact} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--only", default="staging,ducklake", help="comma-separated: staging, ducklake")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"duckdb {duckdb.__version__}; {args.batches} batches x {DOCS_PER_BATCH * PARAS_PER_DOC} rows; "
          f"ducklake {extension_path('ducklake')}", file=sys.stderr)
    plan = []
    if "staging" in only:
        plan += [("staging", 1, False, True), ("staging", 2, False, True), ("staging", 2, True, True)]
    if "ducklake" in only:
        plan += [("duckdb", 1, False, True), ("duckdb", 2, False, True), ("duckdb", 2, True, True),
                 ("sqlite", 1, False, True), ("sqlite", 2, False, True), ("sqlite-wal", 2, False, True)]
    q = np.random.default_rng(12345).standard_normal(DIM).astype(np.float32)
    q = (q / np.linalg.norm(q)).tolist()
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-ducklake-"))
    started = time.time()
    try:
        for kind, n, variant, own_retries in plan:  # variant: loader reopens / lake attached per batch
            t0 = time.time()
            row = (run_staging(tmp, n, args.batches, variant) if kind == "staging"
                   else run_lake(tmp, kind, n, args.batches, variant, own_retries))
            if "seconds" in row:
                query_result(row, q)
            rows.append(row)
            print(f"  {row['scenario']}: {time.time() - t0:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    reference = next((r.get("top10") for r in rows if r["kind"] == "duckdb" and "top10" in r), None)
    print(f"\n{args.batches} batches x {DOCS_PER_BATCH * PARAS_PER_DOC} rows "
          f"({args.batches * DOCS_PER_BATCH * PARAS_PER_DOC:,} rows), duckdb {duckdb.__version__}, "
          f"{os.cpu_count()} cores; total {time.time() - started:.0f} s\n")
    print("| scenario | batches/s | rows/s | end-to-end s | loader busy s | retries | data files (paras+bookkeeping)"
          " | MB | count ms / top-10 ms (same top-10 as DuckDB) | after compaction: files, count / top-10 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(fmt(row, reference))
    print()
    for row in rows:
        if row.get("note"):
            print(f"- {row['scenario']}: {row['note']}")
        for err in row["errors"]:
            print(f"- {row['scenario']}: writer failed: {err}")
        for msg in row.get("messages", []):
            print(f"- {row['scenario']}: seen (retried or fatal): {msg}")
        if "rows_found" in row and row["rows_found"] != row["batches"] * DOCS_PER_BATCH * PARAS_PER_DOC:
            print(f"- {row['scenario']}: row count {row['rows_found']} != expected")


if __name__ == "__main__":
    main()
