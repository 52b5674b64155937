"""Swedish temporal expressions → ISO ranges (samverkan_dates)."""

from datetime import date

import pytest

from pipeline.extractors.dates import DateFinder, infer_document_date
from pipeline.extractors.lexicon import load_lexicon

ANCHOR = date(2023, 1, 18)  # a Wednesday


@pytest.fixture(scope="module")
def finder():
    return DateFinder(load_lexicon())


def one(finder, text, anchor=ANCHOR):
    found = finder.find(text, anchor)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "text, start, end, granularity",
    [
        ("Mötet hölls den 7 maj 2021 i Kalmar.", "2021-05-07", "2021-05-07", "day"),
        ("Publicerad 2022-10-03", "2022-10-03", "2022-10-03", "day"),
        ("Vi ses den 14:e mars.", "2023-03-14", "2023-03-14", "day"),
        ("Konferensen pågår 9–10 februari.", "2023-02-09", "2023-02-10", "day"),
        ("Kursen går 9-10 februari.", "2023-02-09", "2023-02-10", "day"),
        ("Ansök från den 1 mars till den 30 april 2024.", "2024-03-01", "2024-04-30", "day"),
        ("Vi hörs i mitten av april.", "2023-04-01", "2023-04-30", "part_of_month"),
        ("Det sker i början på februari.", "2023-02-01", "2023-02-28", "part_of_month"),
        ("Rapporten kommer i slutet av 2024.", "2024-01-01", "2024-12-31", "year"),
        ("Projektet startar under hösten 2021.", "2021-09-01", "2021-11-30", "season"),
        ("Vi planerar en träff under våren.", "2023-03-01", "2023-05-31", "season"),
        ("Satsningen pågår under 2022 och 2023.", "2022-01-01", "2023-12-31", "year"),
        ("Ansökan ska vara inne senast den 30 april 2024.", "2024-04-30", "2024-04-30", "day"),
        ("Svar lämnas senast vecka 7.", "2023-02-13", "2023-02-19", "week"),
        ("Vi har många möten nu i veckan.", "2023-01-16", "2023-01-22", "week"),
        ("Vi ses igen nästa vecka.", "2023-01-23", "2023-01-29", "week"),
        ("Beslutet fattades idag.", "2023-01-18", "2023-01-18", "day"),
        ("Hon började i december.", "2022-12-01", "2022-12-31", "month"),
    ],
)
def test_expressions(finder, text, start, end, granularity):
    d = one(finder, text)
    assert (d.start.isoformat(), d.end.isoformat(), d.granularity) == (start, end, granularity)


def test_weekday_fixes_the_year(finder):
    # 12 mars was a Tuesday in 2024, not in 2023 or 2025
    d = one(finder, "Vi träffas tisdag den 12 mars.", date(2023, 6, 1))
    assert d.start == date(2024, 3, 12)


@pytest.mark.parametrize(
    "text, start",
    [
        ("Synpunkter lämnas senast den 3/2.", "2023-02-03"),
        ("Nästa träff är fredag 20/1 på biblioteket.", "2023-01-20"),
        ("Frågan togs upp på rådet den 9/12.", "2022-12-09"),
    ],
)
def test_day_and_month_in_digits(finder, text, start):
    assert one(finder, text).start.isoformat() == start


def test_day_and_month_alone_in_a_table_cell(finder):
    (d,) = finder.find("Boka lokal | Karin Holm | 3/2", ANCHOR)
    assert d.start == date(2023, 2, 3)


def test_an_adjectival_participle_is_not_past_tense(finder):
    d = one(finder, "Vi undersöker reserverade platser på utbildningen i februari.", date(2024, 10, 17))
    assert d.start == date(2025, 2, 1)


def test_bare_fractions_and_scores_are_not_dates(finder):
    assert finder.find("Ungefär 2/3 av deltagarna svarade, och laget vann med 3/1.", ANCHOR) == []


@pytest.mark.parametrize(
    "text, start",
    [
        # mid-year page: July of the year before and of the year after are equally near
        ("Nämnden beslutade i juli att utöka verksamheten.", "2022-07-01"),
        ("Ett nytt möte planeras till juli.", "2023-07-01"),
        ("Ett uppföljande möte ska hållas vecka 3.", "2024-01-15"),
    ],
)
def test_tense_picks_the_year_of_a_month_or_week(finder, text, start):
    assert one(finder, text, date(2023, 1, 18) if "vecka" not in text else date(2023, 7, 3)).start.isoformat() == start


def test_deadline_prefix_is_kept(finder):
    d = one(finder, "Synpunkter senast den 3 juni.")
    assert d.is_deadline and d.text.startswith("senast")


def test_no_false_dates(finder):
    assert finder.find("Målgruppen är unga mellan 18 och 29 år, 200 deltagare kom.", ANCHOR) == []
    assert finder.find("Vi satsar 2500 kronor per deltagare i vår verksamhet.", ANCHOR) == []


def test_without_anchor_month_only_is_unresolved(finder):
    d = one(finder, "Konferensen hölls i mitten av oktober.", None)
    assert d.start is None and d.month == 10


def test_paragraph_year_carries_to_a_later_month(finder):
    text = "Ansökan är öppen till den 15 april 2025. Besked lämnas i juni."
    found = finder.find(text, date(2024, 12, 2))
    assert found[-1].start == date(2025, 6, 1)


def test_document_date_inference(finder):
    text = "Rubrik\n\nText om något.\n\nSenast uppdaterad: 2021-06-01"
    assert infer_document_date(text, finder.find(text, None)) == date(2021, 6, 1)
    text = "Styrgruppsmöte 4 oktober 2019\n\nNärvarande: ..."
    assert infer_document_date(text, finder.find(text, None)) == date(2019, 10, 4)
    text = "Vi ska lämna svar senast den 1 mars 2020."
    assert infer_document_date(text, finder.find(text, None)) is None


def test_last_and_next_weekday(finder):
    assert one(finder, "Vi träffades i torsdags.").start == date(2023, 1, 12)  # the anchor is a Wednesday
    assert one(finder, "Vi ses på torsdag.").start == date(2023, 1, 19)
    assert one(finder, "Vi ses på onsdag.").start == date(2023, 1, 25)


@pytest.mark.parametrize("text", [
    "Utbildningen hålls i oktober.",
    "Sara och Tomas ansvarar för att planera en temakväll i oktober.",
])
def test_an_announced_or_assigned_month_lies_ahead(finder, text):
    assert one(finder, text, date(2025, 3, 15)).start == date(2025, 10, 1)


def test_a_noun_ending_in_ats_is_not_past_tense(finder):
    text = "Ahmad tar fram ett förslag till ny webbplats till styrelsens möte i maj."
    assert one(finder, text, date(2025, 3, 15)).start == date(2025, 5, 1)


def test_a_bare_day_and_month_with_a_deadline_or_a_clock_time(finder):
    found = finder.find("Nästa möte 14/5 kl. 13.30. Anteckningarna skickas ut senast 5/3.", date(2025, 2, 19))
    assert [d.start for d in found] == [date(2025, 5, 14), date(2025, 3, 5)]
    assert finder.find("Två av tre, alltså 2/3 av deltagarna, kom.", ANCHOR) == []
