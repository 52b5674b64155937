"""Prefect schedules: one deployment of the crawl flow per configured source."""

from __future__ import annotations

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.crawl import crawl_flow
from pipeline.sources import DEFAULT_SOURCES_FILE, load_sources
from pipeline.store import DEFAULT_DB


def deployments(sources_file: str | None = None, db: str = str(DEFAULT_DB)) -> list:
    """A deployment per source, on the source's cron, never two runs of one source at once
    (each run reads the file's ``cluster`` section: Dask or local)."""
    return [
        crawl_flow.to_deployment(
            name=f"crawl-{source.name}",
            cron=source.schedule,
            parameters={"source_name": source.name, "sources_file": sources_file, "db": db},
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
            description=f"Crawl {source.name} ({', '.join(source.start_urls)})",
            tags=["samverkan", source.name],
        )
        for source in load_sources(sources_file or DEFAULT_SOURCES_FILE)
    ]


def serve_sources(sources_file: str | None = None, db: str = str(DEFAULT_DB)) -> None:
    """Run every source's schedule until interrupted (Prefect's ``serve``)."""
    serve(*deployments(sources_file, db))
