"""Meeting minutes header, boilerplate lines and the nlp stage API."""

from datetime import date

import pytest

from pipeline import nlp as nlp_stage
from pipeline.records import Document

MINUTES = """Protokoll – Tillgänglighetsrådet

Sammanträde onsdag den 6 september 2023

Närvarande ledamöter
Kerstin Alm, DHR Sundsvall
Göran Nyberg, kommunstyrelsen

Frånvarande
Ahmed Ali, SRF Västernorrland

Sekreterare: Göran Nyberg

§ 1 Öppnande
Ordföranden öppnade mötet."""


@pytest.fixture(scope="module")
def nlp():
    return nlp_stage.load("blank")


def test_meeting_header(nlp):
    ex = nlp_stage.extract_text(nlp, MINUTES)
    assert ex.document_date == date(2023, 9, 6)
    assert ex.meeting.title == "Tillgänglighetsrådet"
    assert ex.meeting.date == date(2023, 9, 6)
    assert ex.meeting.secretary == "Göran Nyberg"
    people = {p.name: p for p in ex.people}
    assert people["Ahmed Ali"].present is False
    assert people["Kerstin Alm"].role == "ledamot"
    assert people["Göran Nyberg"].role == "sekreterare"  # took the minutes: that is the role given


def test_news_page_has_no_meeting(nlp):
    ex = nlp_stage.extract_text(nlp, "Ny rapport om LSS\n\nSocialstyrelsen publicerade i dag en rapport.")
    assert ex.meeting is None


def test_boilerplate_lines_are_flagged_and_skipped(nlp):
    text = ("Nyhet om träffen\n\nEva Ek, handläggare på Boverket, talade.\n\nbild_2019_01.jpg\n\n"
            "Läs mer >> Program (pdf)\n\nSe hela presentationen här\n\nLämna ett svar\n\n"
            "E-postadressen publiceras inte. Obligatoriska fält är märkta *")
    ex = nlp_stage.extract_text(nlp, text)
    assert ex.boilerplate == ["bild_2019_01.jpg", "Läs mer >> Program (pdf)", "Se hela presentationen här",
                              "Lämna ett svar", "E-postadressen publiceras inte. Obligatoriska fält är märkta *"]
    assert [p.name for p in ex.people] == ["Eva Ek"]


def test_site_furniture_lines_are_boilerplate(nlp):
    furniture = ["Startsida / Om oss / Nyheter", "Umeå kommun > Stöd och omsorg > Brukarråd",
                 "Verksamhetsplan 2024 (pdf, 310 kB)", "Var den här sidan till hjälp? Ja | Nej",
                 "© Föreningen Gemenskap 2024", "Prenumerera på våra nyheter",
                 "Föreningen Gemenskap | Org.nr 802000-0000 | Kakor"]
    text = "Nyhet om träffen\n\n" + "\n\n".join(furniture[:3]) + "\n\nEva Ek, handläggare på Boverket, talade.\n\n" + \
        "\n\n".join(furniture[3:])
    ex = nlp_stage.extract_text(nlp, text)
    assert ex.boilerplate == furniture
    assert [p.name for p in ex.people] == ["Eva Ek"]
    # a table row or a sentence with a slash is not furniture
    assert nlp_stage.extract_text(nlp, "Vad | Ansvarig | Klart\n\nSvar på remissen och/eller en skrivelse.").boilerplate == []


def test_to_json_is_the_gold_format(nlp):
    data = nlp_stage.extract_text(nlp, MINUTES).to_json()
    assert set(data) == {"document_date", "meeting", "people", "organisations", "dates", "action_points", "boilerplate"}
    assert data["dates"][0] == {"text": "onsdag den 6 september 2023", "start": "2023-09-06", "end": "2023-09-06",
                                "granularity": "day"}


def test_annotate_uses_published_and_keeps_offsets(nlp):
    doc = Document(url="https://example.org/a", source="t", title="A", published=date(2020, 5, 4), author=None,
                   paragraphs=["Rubrik", "Mötet hålls nästa vecka hos Boverket."], content_hash="x")
    (ann,) = nlp_stage.annotate(nlp, [doc])
    ex = ann.extraction
    assert ex.document_date == date(2020, 5, 4)
    (d,) = ex.dates
    assert (d.start, d.end) == (date(2020, 5, 11), date(2020, 5, 17))
    assert doc.text[d.start_char:d.end_char] == "nästa vecka"


def test_load_adds_components_once(nlp):
    again = nlp_stage.load("blank")
    names = again.pipe_names
    for name in ("samverkan_dates", "samverkan_organisations", "samverkan_people", "samverkan_meeting",
                 "samverkan_actions"):
        assert names.count(name) == 1
    assert names.index("samverkan_dates") < names.index("samverkan_people") < names.index("samverkan_actions")
