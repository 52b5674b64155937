"""Scale-out: the flow on a Dask LocalCluster gives the same tables as the local run, survives a
killed worker, and its loader merges each staged Parquet batch exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import demo_site
from pipeline.store import Store

pytestmark = pytest.mark.usefixtures("e5_model", "prefect_api")

# Every stored fact, without the columns that record when (or in which run) it was stored.
COMPARED = {
    "pages": "page_id, url, source, status, outcome, content_type, content_hash, text_hash, version, gone",
    "documents": "doc_id, url, source, kind, title, published, document_date, author, text, text_hash, version",
    "paragraphs": "para_id, doc_id, idx, text, text_hash, embedding",
    "entities": "*", "organisations": "*", "organisation_mentions": "*", "people": "*", "person_mentions": "*",
    "dates": "*", "action_points": "*", "meetings": "*", "boilerplate": "*",
    "page_versions": "page_id, version, text_hash, title, text",
}


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1", memory_limit="6GiB") as local_cluster:
        yield local_cluster


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    with demo_site.running(port=0) as base_url:
        sources = tmp / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": [{
            "name": "demo", "start_urls": [base_url + "/"], "allowed_hosts": ["127.0.0.1"],
            "delay": 0, "allow_private": True, "page_limit": 100}]}))
        yield tmp, str(sources)


@pytest.fixture(scope="module")
def local_tables(site):
    from flows.crawl import crawl_flow

    tmp, sources = site
    db = str(tmp / "local.duckdb")
    crawl_flow("demo", sources_file=sources, db=db)
    return _tables(db)


def _tables(db: str) -> dict[str, pd.DataFrame]:
    with Store(db, read_only=True) as store:
        out = {}
        for table, columns in COMPARED.items():
            frame = store.query(f"SELECT {columns} FROM {table}")
            key = [c for c in frame.columns if c != "embedding"]
            out[table] = frame.sort_values(key, key=lambda s: s.astype(str)).reset_index(drop=True)
        return out


def _assert_same_tables(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for table, frame in expected.items():
        other = got[table]
        assert len(other) == len(frame), f"{table}: {len(other)} rows, the local run has {len(frame)}"
        if table == "paragraphs":  # same texts, same batches: vectors equal up to float rounding
            unembedded = frame["embedding"].isna()  # headings
            assert other["embedding"].isna().tolist() == unembedded.tolist()
            np.testing.assert_allclose(np.vstack(other["embedding"][~unembedded]), np.vstack(frame["embedding"][~unembedded]),
                                       atol=1e-5)
            other, frame = other.drop(columns="embedding"), frame.drop(columns="embedding")
        pd.testing.assert_frame_equal(other, frame, check_dtype=False, obj=table)


def test_two_dask_workers_give_the_same_tables_as_the_local_run(site, cluster, local_tables):
    from flows.crawl import crawl_flow

    tmp, sources = site
    db = str(tmp / "dask.duckdb")
    summary = crawl_flow("demo", sources_file=sources, db=db, dask_address=cluster.scheduler_address)
    assert summary["documents"] == len(local_tables["documents"]) > 10
    _assert_same_tables(_tables(db), local_tables)
    with Store(db, read_only=True) as store:
        batches = store.query("SELECT kind, count(*) AS n FROM loaded_batches GROUP BY kind")
        assert set(batches["kind"]) == {"fetch", "docs"}
        assert store.query("SELECT count(*) AS n FROM staged_pages")["n"][0] == 0
    assert not list((tmp / "dask.duckdb.staging").rglob("*.parquet")), "merged batches are deleted"


def test_a_worker_killed_mid_run_leaves_the_loader_consistent(site, cluster, local_tables):
    from distributed import Client

    from flows.crawl import crawl_flow

    tmp, sources = site
    db = str(tmp / "killed.duckdb")
    outcome: dict[str, object] = {}

    def crawl():
        try:
            outcome["summary"] = crawl_flow("demo", sources_file=sources, db=db, dask_address=cluster.scheduler_address)
        except BaseException as exc:  # the run may fail when its worker dies: the rerun must complete it
            outcome["error"] = exc

    with Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
        runner = threading.Thread(target=crawl)
        runner.start()
        deadline, victim = time.monotonic() + 300, None
        while victim is None and runner.is_alive():
            assert time.monotonic() < deadline, "no processing task ever started"
            busy = {w: keys for w, keys in client.processing().items() if any("process_task" in str(k) for k in keys)}
            victim = next(iter(busy), None)
            time.sleep(0.1)
        assert victim is not None, "the run finished before a worker could be killed"
        os.kill(pids[victim], signal.SIGKILL)
        runner.join(600)
    assert not runner.is_alive()

    rerun = crawl_flow("demo", sources_file=sources, db=db, dask_address=cluster.scheduler_address)
    assert rerun["pages_failed"] == 0
    _assert_same_tables(_tables(db), local_tables)
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*) - count(DISTINCT batch_id) AS d FROM loaded_batches")["d"][0] == 0
        assert store.query("SELECT count(*) AS n FROM staged_pages")["n"][0] == 0
        assert store.query("SELECT count(*) AS n FROM runs WHERE status = 'completed'")["n"][0] >= 1
