"""Action points with assignees and due dates (samverkan_actions)."""

from datetime import date

import pytest

from pipeline import nlp as nlp_stage


@pytest.fixture(scope="module")
def nlp():
    return nlp_stage.load("blank")


def actions(nlp, text, day=date(2024, 2, 5)):
    return nlp_stage.extract_text(nlp, text, day).action_points


def test_assignment_with_deadline(nlp):
    text = "Styrgruppen träffades.\n\nSkatteverket får i uppdrag att ta fram en plan senast den 15 mars."
    (a,) = actions(nlp, text)
    assert a.assignees == ["Skatteverket"]
    assert a.due == "2024-03-15" and a.due_start == date(2024, 3, 15)


def test_deferral_to_next_meeting(nlp):
    (a,) = actions(nlp, "Minnesanteckningar\n\nFrågan om lokaler bordläggs till nästa möte.")
    assert a.due == "next meeting"


def test_people_named_by_first_name_are_resolved(nlp):
    text = ("Deltagare:\nHelena Roos, Boverket\nPatrik Sund, Skolverket\n\n"
            "Helena och Patrik jobbar vidare med enkäten.")
    (a,) = actions(nlp, text)
    assert a.assignees == ["Helena Roos", "Patrik Sund"]


def test_recipient_and_reporter_are_not_assignees(nlp):
    text = ("Lina Berg berättade att Kriminalvården ska skicka underlaget till Polismyndigheten "
            "senast vecka 12.")
    (a,) = actions(nlp, text)
    assert a.assignees == ["Kriminalvården"]
    assert a.due == "2024-W12"


def test_decision_without_assignee(nlp):
    (a,) = actions(nlp, "Protokoll\n\nNämnden beslutar att godkänna rapporten.")
    assert a.assignees == []


def test_not_actions(nlp):
    text = ("Syftet är att alla ska få bättre stöd.\n\n"
            "Hur ska vi nå ut till fler?\n\n"
            "– Vi ska göra allt vi kan, säger Ulla Ek.\n\n"
            "Kommunstyrelsen fattade beslut om budgeten i januari.")
    assert actions(nlp, text) == []


def test_future_event_with_organisation(nlp):
    (a,) = actions(nlp, "Studien publiceras.\n\nFolkhälsomyndigheten håller ett webbinarium den 20 mars.")
    assert a.assignees == ["Folkhälsomyndigheten"] and a.due == "2024-03-20"


def test_pronoun_and_role_noun_resolve_to_people(nlp):
    text = ("Övriga närvarande\nAnna Lind, förbundschef\n\n"
            "Förbundschefen får i uppdrag att kalla till ett extra möte. Hon återkommer med datum.")
    found = actions(nlp, text)
    assert found[0].assignees == ["Anna Lind"]
    assert all(a.assignees == ["Anna Lind"] for a in found)


def test_task_table(nlp):
    text = ("Protokoll styrelsemöte 5 februari 2024\n\nNärvarande: Karin Holm (ordförande), Omid Karimi (kassör)\n\n"
            "Att göra\n\nVad | Ansvarig | Klart senast\n"
            "Boka lokal till medlemsträffen 12 april | Karin Holm | v. 8\n"
            "Betala hyran | Omid Karimi | nästa möte")
    found = {a.text: a for a in actions(nlp, text)}
    booking = found["Boka lokal till medlemsträffen 12 april"]
    assert booking.assignees == ["Karin Holm"] and booking.due == "2024-W08"  # the "when" cell, not 12 april
    assert (found["Betala hyran"].assignees, found["Betala hyran"].due) == (["Omid Karimi"], "next meeting")


def test_reported_news_is_not_an_action_but_gives_the_next_one_its_assignee(nlp):
    text = ("Minnesanteckningar 5 februari 2024\n\nNärvarande: Karin Holm, Arbetsförmedlingen\n\n"
            "Karin Holm informerade om att Arbetsförmedlingen öppnar ett nytt kontor i mars. "
            "Ny kontaktperson meddelas senast vecka 10.")
    (a,) = actions(nlp, text)
    assert a.text.startswith("Ny kontaktperson") and a.assignees == ["Arbetsförmedlingen"]


def test_bulleted_tasks_take_the_assignee_of_their_lead(nlp):
    text = ("Minnesanteckningar 3 mars 2024\n\nArbetsgruppen ska:\n- ta fram en ny broschyr om daglig verksamhet\n"
            "- boka lokal\n- skicka inbjudan till alla brukare senast 20 mars\n\nMötet avslutades.")
    found = actions(nlp, text, date(2024, 3, 3))
    assert [a.text for a in found] == ["ta fram en ny broschyr om daglig verksamhet", "boka lokal",
                                       "skicka inbjudan till alla brukare senast 20 mars"]
    assert all(a.assignees == ["Arbetsgruppen"] for a in found)
    assert found[-1].due == "2024-03-20"


def test_a_past_meeting_about_a_later_season_is_not_an_action(nlp):
    assert actions(nlp, "Vi träffades i torsdags och pratade om hösten.", date(2024, 3, 3)) == []
