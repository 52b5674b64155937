"""The ``samverkan`` command line: crawl, search, ask SQL, extract, serve the demo site."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.store import DEFAULT_DB, StoreError

console = Console()
DEMO_PORT = 8765
DEMO_QUERY = "Vem följer upp att insatserna enligt LSS fungerar för den enskilde?"

db_option = click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB, show_default=True,
    help="DuckDB database file.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """samverkan: Swedish partner-site intelligence in DuckDB."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)])


@cli.command()
@click.argument("source")
@click.option("--sources", "sources_file", type=click.Path(exists=True, dir_okay=False), help="Sources YAML file.")
@db_option
@click.option("--dask", "dask_address", help="Dask scheduler to run the per-page work on (default: the config's, or local).")
@click.option("--staging", "staging_dir", type=click.Path(file_okay=False), help="Parquet staging folder shared with the workers.")
@click.option("--keep-staging", is_flag=True, default=None, help="Keep merged Parquet batches instead of deleting them.")
@click.option("--nlp-model", help="spaCy pipeline (default models/sv_samverkan; models/sv_samverkan_cnn is ~4x faster).")
def crawl(source: str, sources_file: str | None, db: Path, dask_address, staging_dir, keep_staging, nlp_model) -> None:
    """Crawl SOURCE now and load it into the database.

    Example: samverkan crawl demo --dask tcp://10.0.0.5:8786 --staging /mnt/staging
    """
    from flows.crawl import crawl_flow

    crawl_flow(source, sources_file=sources_file, db=str(db), nlp_model=nlp_model, dask_address=dask_address,
               staging_dir=staging_dir, keep_staging=keep_staging)


@cli.command()
@click.option("--sources", "sources_file", type=click.Path(exists=True, dir_okay=False), help="Sources YAML file.")
@db_option
def serve(sources_file: str | None, db: Path) -> None:
    """Run every source's crawl on its cron schedule (Prefect serve) until interrupted.

    Example: samverkan serve
    """
    from flows.serve import serve_sources

    serve_sources(sources_file, db=str(db))


@cli.command()
@db_option
@click.option("--port", default=DEMO_PORT, show_default=True, help="Port of the demo site on 127.0.0.1.")
@click.option("--query", default=DEMO_QUERY, show_default=True, help="Question to search for afterwards.")
def demo(db: Path, port: int, query: str) -> None:
    """Serve the demo site, crawl it with the flow, and search it.

    Example: samverkan demo
    """
    from flows.crawl import crawl_flow
    from pipeline import demo_site, search, sources

    config = sources.load_sources()
    demo_source = sources.get_source(config, "demo")
    with demo_site.running(port=port) as base_url:
        if not demo_source.start_urls[0].startswith(base_url):
            raise click.ClickException(f"data/sources.yaml's demo source must start at {base_url}/")
        crawl_flow("demo", db=str(db))
    console.print(f"\n[bold]Search:[/bold] {query}")
    _print_results(search.search(query, k=3, db=db), query)


@cli.command("demo-site")
@click.option("--port", default=DEMO_PORT, show_default=True, help="Port on 127.0.0.1.")
def demo_site_cmd(port: int) -> None:
    """Serve the bundled demo partner site on 127.0.0.1 until interrupted.

    Example: samverkan demo-site --port 8765
    """
    from pipeline import demo_site

    console.print(f"Demo site on http://127.0.0.1:{port}/ (Ctrl-C stops)")
    demo_site.serve(port)


@cli.command("search")
@click.argument("query")
@click.option("-k", default=10, show_default=True, help="Number of results.")
@click.option("--source", help="Only this source.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Documents dated on or after (YYYY-MM-DD).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Documents dated on or before (YYYY-MM-DD).")
@click.option("--org", "organisation", help="Documents that mention this organisation (name or alias).")
@click.option("--person", help="Documents that mention this person.")
@click.option("--method", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid", show_default=True)
@db_option
@json_option
def search_cmd(query, k, source, since, until, organisation, person, method, db, as_json) -> None:
    """Search the stored paragraphs with a Swedish question.

    Example: samverkan search "vem ansvarar för uppföljningen av LSS-insatser?" --since 2024-01-01
    """
    from pipeline import search

    results = search.search(
        query, k, source=source, since=since and since.date(), until=until and until.date(),
        organisation=organisation, person=person, method=method, db=db,
    )
    if as_json:
        click.echo(results.to_json(orient="records", force_ascii=False, date_format="iso"))
    else:
        _print_results(results, query)


@cli.command()
@click.argument("query")
@db_option
@json_option
def sql(query: str, db: Path, as_json: bool) -> None:
    """Run a read-only SQL query against the database and print the result.

    Example: samverkan sql "SELECT name, organisation FROM people ORDER BY name"
    """
    from pipeline.store import Store

    with Store(db, read_only=True) as store:
        frame = store.query(query)
    if as_json:
        click.echo(frame.to_json(orient="records", force_ascii=False, date_format="iso"))
        return
    _print_frame(frame)
    console.print(f"{len(frame)} rows")


@cli.command()
@click.option("--sources", "sources_file", type=click.Path(exists=True, dir_okay=False), help="Sources YAML file.")
@db_option
@json_option
def status(sources_file: str | None, db: Path, as_json: bool) -> None:
    """Per source: last run, pages ok / unchanged / failed, next scheduled run; and the database size.

    Example: samverkan status
    """
    from pipeline import sources
    from pipeline.store import Store

    with Store(db, read_only=True) as store:
        frame = store.status()
    schedules = {s.name: s for s in sources.load_sources(sources_file or sources.DEFAULT_SOURCES_FILE)}
    frame["next_run"] = [sources.next_run(schedules[n]) if n in schedules else None for n in frame["source"]]
    size_mb = db.stat().st_size / 1e6
    if as_json:
        click.echo(json.dumps({"database": str(db), "size_mb": round(size_mb, 2),
                               "sources": json.loads(frame.to_json(orient="records", date_format="iso"))}, ensure_ascii=False))
        return
    _print_frame(frame)
    console.print(f"database {db}: {size_mb:.1f} MB")


@cli.command()
@click.argument("name")
@db_option
@json_option
def person(name: str, db: Path, as_json: bool) -> None:
    """Everything stored about a person: roles, organisations, mentions and action points.

    Example: samverkan person "Eva Ek" --json
    """
    from pipeline.store import Store

    with Store(db, read_only=True) as store:
        report = store.person(name)
    if report["people"].empty:
        raise click.ClickException(f"nothing stored about {name!r}")
    if as_json:
        click.echo(json.dumps({k: json.loads(v.to_json(orient="records", date_format="iso", force_ascii=False))
                               for k, v in report.items()}, ensure_ascii=False, indent=2))
        return
    for title, frame in report.items():
        console.print(f"[bold]{title.replace('_', ' ')}[/bold]")
        _print_frame(frame.drop(columns=["person_id"], errors="ignore"))


@cli.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Erase without asking for confirmation.")
@click.option("--staging", "staging_dir", type=click.Path(file_okay=False), help="Parquet staging folder (default: <db>.staging).")
@db_option
def forget(name: str, yes: bool, staging_dir: str | None, db: Path) -> None:
    """Erase a person (GDPR): rows, mentions, assignments, the name in stored text and staged
    batches; later crawls redact it.

    Example: samverkan forget "Eva Ek" --yes
    """
    from pipeline import embed, load, search
    from pipeline.staging import StagingArea
    from pipeline.store import Store

    if not yes:
        click.confirm(f"Erase everything stored about {name!r}? This cannot be undone", abort=True)
    staging = StagingArea.for_database(db, staging_dir)
    with Store(db) as store:
        load.load_pending(store, staging)  # staged results would bring the name back: merge them first
        names = [name, *store.person(name)["people"]["name"]]
        counts, changed = store.erase_person(name)
    vectors = embed.embed_passages(embed.load_model(), [text for _, text in changed]) if changed else None
    with Store(db) as store:
        if changed:
            store.set_embeddings([para_id for para_id, _ in changed], vectors)
        store.rebuild_fts(search.stopwords())
        store.update_search_index(full_text=True)
    counts["staged_batches"] = staging.remove_mentioning(names)
    console.print(", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in counts.items()))
    console.print("The name is on the suppression list (stored only as a salted hash).")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@db_option
def export(directory: Path, db: Path) -> None:
    """Write every table as Parquet, with schema.json (readable by pandas, polars, DuckDB).

    Example: samverkan export export/
    """
    from pipeline.store import Store

    with Store(db, read_only=True) as store:
        written = store.export(directory)
    console.print(f"wrote {len(written)} tables and schema.json to {directory}")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--date", "doc_date", type=click.DateTime(["%Y-%m-%d"]), help="Document date (default: from the page or the text).")
@click.option("--model", default=None, help="spaCy pipeline path or package (default: models/sv_samverkan; "
              "models/sv_samverkan_cnn is the faster CNN-only one).")
@json_option
def extract(file: Path, doc_date, model, as_json: bool) -> None:
    """Extract people, organisations, dates and action points from a text or HTML file.

    Example: samverkan extract protokoll.html --json
    """
    from pipeline import clean, nlp

    raw = file.read_bytes()
    text, published = raw.decode("utf-8", errors="replace"), None
    if file.suffix.lower() in (".html", ".htm") or raw.lstrip()[:1] == b"<":
        document = clean.extract_html(text, url=file.resolve().as_uri())
        if document is None:
            raise click.ClickException(f"{file}: no main text found")
        text, published = document.text, document.published
    extraction = nlp.extract_text(nlp.load(model), text, (doc_date and doc_date.date()) or published)
    if as_json:
        click.echo(json.dumps(extraction.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_extraction(extraction)


def _print_frame(frame) -> None:
    table = Table(show_lines=False)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    console.print(table)


def _print_results(results, query: str) -> None:
    if results.empty:
        console.print("No results.")
        return
    terms = [t for t in re.findall(r"\w+", query.lower()) if len(t) > 3]
    table = Table(show_lines=True)
    for name, style in (("#", "dim"), ("score", ""), ("paragraph", ""), ("title / url", "cyan"), ("date", "")):
        table.add_column(name, style=style, overflow="fold")
    for rank, row in enumerate(results.itertuples(index=False), start=1):
        table.add_row(str(rank), f"{row.score:.4f}", _highlight(row.paragraph, terms), f"{row.title}\n{row.url}", str(row.published or ""))
    console.print(table)


def _highlight(text: str, terms: list[str]) -> Text:
    out = Text(text)
    for term in terms:
        stem = term[: max(4, len(term) - 2)]
        out.highlight_regex(rf"(?i)\b{re.escape(stem)}\w*", "bold yellow")
    return out


def _print_extraction(extraction) -> None:
    data = extraction.to_json()
    console.print(f"[bold]Document date:[/bold] {data['document_date']}")
    if data["meeting"]:
        console.print(f"[bold]Meeting:[/bold] {data['meeting']}")
    for key, columns in (
        ("people", ["name", "role", "organisation", "aliases", "present"]),
        ("organisations", ["name", "aliases"]),
        ("dates", ["text", "start", "end", "granularity"]),
        ("action_points", ["text", "assignees", "due"]),
    ):
        table = Table(title=key.replace("_", " "), show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for item in data[key]:
            table.add_row(*[_cell(item.get(c)) for c in columns])
        console.print(table)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) == 1:
        return ", ".join(map(str, value))
    return str(value)


def main() -> None:
    """Entry point: run the CLI, printing known errors as one line."""
    from pipeline.sources import ConfigError

    try:
        cli.main(standalone_mode=False)
    except (ConfigError, StoreError, ValueError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
