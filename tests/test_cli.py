"""The samverkan command line: every command documented, SQL/person/export/status/search/extract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import make_doc
from pipeline.cli import cli
from pipeline.records import ActionPoint, Extraction, OrganisationMention, PersonMention
from pipeline.search import stopwords
from pipeline.store import Store

README = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "cli.duckdb"
    ex = Extraction(
        document_date=date(2024, 3, 14),
        people=[PersonMention("Eva Ek", "förvaltningschef", "Socialförvaltningen", ["Eva"])],
        organisations=[OrganisationMention("Socialförvaltningen")],
        action_points=[ActionPoint("Eva återkommer med en tidsplan.", ["Eva Ek"], "2024-04-15", date(2024, 4, 15), date(2024, 4, 15))],
    )
    with Store(path) as store:
        store.sync_sources([])
        store.save_documents([make_doc("http://h/protokoll", ["Biståndshandläggarna följer upp insatserna enligt LSS.",
                                                              "Eva återkommer med en tidsplan."],
                                       published=date(2024, 3, 14), extraction=ex)])
        store.rebuild_fts(stopwords())
    return path


def test_every_command_has_help_and_is_in_the_readme():
    runner = CliRunner()
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "-h"])
        assert result.exit_code == 0, name
        assert "Example:" in (command.help or ""), f"{name} has no example"
        assert f"samverkan {name}" in README, f"{name} is not documented in the README"


def test_sql_prints_a_table_and_json(db):
    runner = CliRunner()
    result = runner.invoke(cli, ["sql", "SELECT name, roles FROM people", "--db", str(db)])
    assert result.exit_code == 0 and "Eva Ek" in result.output and "1 rows" in result.output
    result = runner.invoke(cli, ["sql", "SELECT name FROM people", "--db", str(db), "--json"])
    assert json.loads(result.output) == [{"name": "Eva Ek"}]


def test_sql_is_read_only(db):
    result = CliRunner().invoke(cli, ["sql", "DELETE FROM people", "--db", str(db)])
    assert result.exit_code != 0
    with Store(db, read_only=True) as store:
        assert len(store.query("SELECT * FROM people")) == 1


def test_person_report(db):
    result = CliRunner().invoke(cli, ["person", "eva", "--db", str(db), "--json"])
    report = json.loads(result.output)
    assert report["people"][0]["name"] == "Eva Ek" and report["people"][0]["roles"] == ["förvaltningschef"]
    assert report["mentions"][0]["url"] == "http://h/protokoll"
    assert report["action_points"][0]["text"] == "Eva återkommer med en tidsplan."
    missing = CliRunner().invoke(cli, ["person", "Ingen Alls", "--db", str(db)])
    assert missing.exit_code == 1 and "nothing stored" in missing.output


def test_export_writes_parquet_readable_elsewhere(db, tmp_path):
    out = tmp_path / "export"
    assert CliRunner().invoke(cli, ["export", str(out), "--db", str(db)]).exit_code == 0
    schema = json.loads((out / "schema.json").read_text())
    assert schema["people"]["rows"] == 1 and {"name": "roles", "type": "VARCHAR[]"} in schema["people"]["columns"]
    assert pd.read_parquet(out / "people.parquet")["name"].tolist() == ["Eva Ek"]
    assert duckdb.sql(f"SELECT count(*) FROM '{out / 'paragraphs.parquet'}'").fetchone()[0] == 2


def test_status_and_search(db):
    runner = CliRunner()
    result = runner.invoke(cli, ["status", "--db", str(db), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["size_mb"] > 0
    result = runner.invoke(cli, ["search", "uppföljning av insatser", "--method", "bm25", "--db", str(db), "--json"])
    assert json.loads(result.output)[0]["url"] == "http://h/protokoll"
    table = runner.invoke(cli, ["search", "uppföljning av insatser", "--method", "bm25", "--db", str(db)])
    assert "Biståndshandläggarna" in table.output


def test_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "sql", "SELECT 1", "--db", str(tmp_path / "none.duckdb")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert re.fullmatch(r"Error: [^\n]*does not exist yet[^\n]*\n", result.stderr)


@pytest.mark.usefixtures("trained_nlp")
def test_extract_json_is_the_gold_format(tmp_path):
    page = tmp_path / "protokoll.txt"
    page.write_text("Minnesanteckningar, brukarrådet 12 mars 2024\n\nNärvarande:\nKarin Lund, Arbetsförmedlingen\n"
                    "Johan Berg, Försäkringskassan (ej närvarande)\n\nKarin återkommer med ett förslag senast den 15 april.\n\n"
                    "Vid pennan\nKarin Lund\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["extract", str(page), "--json"])
    data = json.loads(result.output)
    assert set(data) == {"document_date", "meeting", "people", "organisations", "dates", "action_points", "boilerplate"}
    assert data["document_date"] == "2024-03-12"
    assert {p["name"] for p in data["people"]} >= {"Karin Lund", "Johan Berg"}
    assert any(a["due"] == "2024-04-15" for a in data["action_points"])


def test_crawl_passes_its_options_to_the_flow(monkeypatch, tmp_path):
    import flows.crawl

    calls = []
    monkeypatch.setattr(flows.crawl, "crawl_flow", lambda source, **kwargs: calls.append((source, kwargs)))
    result = CliRunner().invoke(cli, ["crawl", "demo", "--db", str(tmp_path / "x.duckdb"),
                                      "--nlp-model", "models/sv_samverkan_cnn", "--keep-staging"])
    assert result.exit_code == 0, result.output
    [(source, kwargs)] = calls
    assert source == "demo"
    assert kwargs["nlp_model"] == "models/sv_samverkan_cnn" and kwargs["keep_staging"] is True
    assert kwargs["db"] == str(tmp_path / "x.duckdb") and kwargs["dask_address"] is None
