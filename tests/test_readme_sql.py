"""The SQL queries shown in the README run against the schema and answer their questions."""

import re
from datetime import date
from pathlib import Path

import pytest

from conftest import make_doc
from pipeline.records import ActionPoint, Extraction, OrganisationMention, PersonMention

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_queries() -> dict[str, str]:
    block = re.search(r"```sql\n(.*?)```", README.read_text("utf-8"), re.S).group(1)
    queries = {}
    for chunk in block.split("\n\n"):
        title, _, sql = chunk.strip().partition("\n")
        queries[title.lstrip("- ").strip()] = sql
    return queries


@pytest.fixture
def filled(store):
    a = Extraction(
        document_date=date(2024, 3, 14),
        people=[PersonMention("Eva Ek", "förvaltningschef", "Socialförvaltningen"),
                PersonMention("Bo Lind", "ordförande", "Funktionsrätt Norrby")],
        organisations=[OrganisationMention("Socialförvaltningen"), OrganisationMention("Funktionsrätt Norrby", ["FRN"]),
                       OrganisationMention("Inspektionen för vård och omsorg", ["IVO"])],
        action_points=[ActionPoint("Eva återkommer med en tidsplan.", ["Eva Ek"], "2024-04-15", date(2024, 4, 15), date(2024, 4, 15)),
                       ActionPoint("Frågan tas upp vid nästa möte.", [], "next meeting")],
    )
    b = Extraction(document_date=date(2023, 5, 2), people=[PersonMention("Eva Ek", "chef", "Socialförvaltningen")],
                   organisations=[OrganisationMention("Socialförvaltningen")])
    store.save_documents([make_doc("http://h/protokoll", ["Protokoll."], published=date(2024, 3, 14), extraction=a),
                          make_doc("http://h/nyhet", ["Nyhet."], extraction=b)])
    return store


def test_readme_has_the_queries_users_write():
    titles = readme_queries()
    for expected in ("people by organisation", "an organisation's aliases", "action points due in a date range",
                     "every document that mentions a person"):
        assert expected in titles


def test_people_by_organisation(filled):
    rows = filled.query(readme_queries()["people by organisation"])
    assert list(zip(rows["organisation"], rows["name"])) == [("Funktionsrätt Norrby", "Bo Lind"), ("Socialförvaltningen", "Eva Ek")]


def test_aliases(filled):
    rows = filled.query(readme_queries()["an organisation's aliases"])
    assert rows["name"].tolist() == ["Inspektionen för vård och omsorg"] and list(rows["aliases"][0]) == ["IVO"]


def test_action_points_due(filled):
    rows = filled.query(readme_queries()["action points due in a date range"])
    assert rows["text"].tolist() == ["Eva återkommer med en tidsplan."]


def test_documents_mentioning_a_person(filled):
    rows = filled.query(readme_queries()["every document that mentions a person"])
    assert sorted(rows["url"]) == ["http://h/nyhet", "http://h/protokoll"]


def test_who_met_us(filled):
    rows = filled.query(readme_queries()["who from Socialförvaltningen met us in 2024?"])
    assert rows["name"].tolist() == ["Eva Ek"] and rows["role"].tolist() == ["förvaltningschef"]
