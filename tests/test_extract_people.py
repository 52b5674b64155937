"""People with role and organisation (samverkan_people)."""

import pytest

from pipeline import nlp as nlp_stage


@pytest.fixture(scope="module")
def nlp():
    return nlp_stage.load("blank")


def people(nlp, text):
    return {p.name: p for p in nlp_stage.extract_text(nlp, text).people}


def test_apposition_with_role_and_organisation(nlp):
    p = people(nlp, "Vid mötet deltog Sara Lindholm, verksamhetschef på Skatteverket, som berättade om arbetet.")
    assert (p["Sara Lindholm"].role, p["Sara Lindholm"].organisation) == ("verksamhetschef", "Skatteverket")


def test_relative_clause(nlp):
    p = people(nlp, "Mötet leddes av Johan Ekberg som är samordnare i brukarfrågor på Region Skåne.")
    assert p["Johan Ekberg"].role == "samordnare i brukarfrågor"
    assert p["Johan Ekberg"].organisation == "Region Skåne"


def test_quote_attribution(nlp):
    text = "– Vi behöver fler platser, säger Elin Sjöberg, handläggare vid Migrationsverket."
    p = people(nlp, text)
    assert (p["Elin Sjöberg"].role, p["Elin Sjöberg"].organisation) == ("handläggare", "Migrationsverket")


def test_role_first_with_genitive_organisation(nlp):
    text = "Eskilstuna kommun har en ny plan. Kommunens förvaltningschef Peter Lund presenterade den."
    p = people(nlp, text)
    assert (p["Peter Lund"].role, p["Peter Lund"].organisation) == ("förvaltningschef", "Eskilstuna kommun")


def test_several_people_share_role_and_organisation(nlp):
    text = "Mötet gästades av representanter för Attention Uppsala Karin Holm och Omid Karimi."
    p = people(nlp, text)
    for name in ("Karin Holm", "Omid Karimi"):
        assert (p[name].role, p[name].organisation) == ("representant", "Attention Uppsala")


def test_first_names_nicknames_and_misspellings_resolve(nlp):
    text = ("Lars Holmqvist, ekonom på Statskontoret, inledde. Senare tog Lasse upp budgeten. "
            "Lars Holmkvist avslutade.")
    p = people(nlp, text)
    assert list(p) == ["Lars Holmqvist"]
    assert {"Lasse", "Lars Holmkvist"} <= set(p["Lars Holmqvist"].aliases)


def test_attendee_list(nlp):
    text = ("Möte i samverkansgruppen 3 maj 2022\n\nNärvarande:\nEva Nord, Boverket\nOlof Sten, Trafikverket "
            "(ej närvarande)\nNina Berg\n\nVid pennan: Nina Berg")
    p = people(nlp, text)
    assert (p["Eva Nord"].organisation, p["Eva Nord"].present) == ("Boverket", True)
    assert p["Olof Sten"].present is False
    assert (p["Nina Berg"].organisation, p["Nina Berg"].role) == (None, "sekreterare")


def test_inline_attendees_with_roles(nlp):
    text = "Protokoll 2021-02-02\n\nNärvarande: Ali Hassan (ordförande, Region Kalmar län), Mona Ek (Kalmar kommun)"
    p = people(nlp, text)
    assert (p["Ali Hassan"].role, p["Ali Hassan"].organisation) == ("ordförande", "Region Kalmar län")
    assert p["Mona Ek"].organisation == "Kalmar kommun"


def test_a_line_break_ends_an_entity_the_ner_ran_on():
    import spacy
    from spacy.tokens import Span

    from pipeline.extractors.segment import line_starts

    nlp = spacy.blank("sv")
    doc = nlp("Anna Berg, Riksförbundet FUB\n\nReferensgruppen träffas i maj.")
    doc.ents = [Span(doc, 0, 2, "PER"), Span(doc, 3, 7, "ORG")]  # the ORG runs over the blank line
    doc = line_starts(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [("Anna Berg", "PER"), ("Riksförbundet FUB", "ORG")]
    assert doc[6].is_sent_start


def test_party_in_parentheses_is_not_an_organisation(nlp):
    text = ("Protokoll från rådet 2 maj 2023\n\nLedamöter\nAnna Berg (S), ordförande, socialnämnden\n"
            "Jonas Ek (KD), ledamot, kommunstyrelsen")
    result = nlp_stage.extract_text(nlp, text)
    p = {x.name: x for x in result.people}
    assert (p["Anna Berg"].role, p["Anna Berg"].organisation) == ("ordförande", "Socialnämnden")
    assert p["Jonas Ek"].organisation == "Kommunstyrelsen"
    assert not {"S", "KD"} & {o.name for o in result.organisations}


def test_table_of_people(nlp):
    text = ("Styrgrupp\n\nGruppen träffas fyra gånger per år.\n\nNamn | Organisation | Roll\n"
            "Karin Holm | Region Örebro län | ordförande\nOmid Karimi | Arbetsförmedlingen | ledamot")
    p = people(nlp, text)
    assert (p["Karin Holm"].role, p["Karin Holm"].organisation) == ("ordförande", "Region Örebro län")
    assert (p["Omid Karimi"].role, p["Omid Karimi"].organisation) == ("ledamot", "Arbetsförmedlingen")


def test_wide_table_of_people(nlp):
    text = ("Projektet Steget\n\nKontakt\n\nNamn | Organisation | Funktion | Kontaktuppgifter\n"
            "Lena Sjöström | Socialförvaltningen | enhetschef | lena@example.se")
    p = people(nlp, text)
    assert (p["Lena Sjöström"].role, p["Lena Sjöström"].organisation) == ("enhetschef", "Socialförvaltningen")


def test_own_board_members_belong_to_the_organisation(nlp):
    own = ("Styrelsemöte 3 mars 2024\n\nHem | Om oss | Kontakt\n\nRSMH Kalmar\n\n"
           "Närvarande: Karin Holm (ordförande), Omid Karimi (kassör)")
    p = people(nlp, own)
    assert {p[n].organisation for n in ("Karin Holm", "Omid Karimi")} == {"RSMH Kalmar"}
    # a board of representatives: a member listed without an organisation stays without one
    representatives = ("Styrelsen för Samordningsförbundet Kalmar\n\nNärvarande\nKarin Holm, Kalmar kommun, ordförande\n"
                       "Omid Karimi, ledamot")
    p = people(nlp, representatives)
    assert p["Karin Holm"].organisation == "Kalmar kommun" and p["Omid Karimi"].organisation is None


@pytest.mark.parametrize("party", ["S", "M", "KD"])
def test_party_tag_in_running_text(trained, party):
    text = (f"Dialogmöte om assistans\n\nPer Åhlund ({party}), ordförande i socialnämnden i Umeå kommun, "
            "medgav att handläggningstiderna är för långa.")
    result = nlp_stage.extract_text(trained, text)
    (p,) = result.people
    assert (p.role, p.organisation) == ("ordförande", "Socialnämnden i Umeå kommun")
    assert party not in {o.name for o in result.organisations}


def test_role_fields_with_a_unit_and_titles_ending_in_ansvarig(nlp):
    text = ("Minnesanteckningar 3 maj 2024\n\nNärvarande\nTobias Lind, enhetschef för arbetsmarknadsenheten, Växjö kommun\n"
            "Marcus Petrén, samverkansansvarig, Försäkringskassan\n\nKarin Ek deltar som adjungerad.")
    result = nlp_stage.extract_text(nlp, text)
    p = {x.name: x for x in result.people}
    assert p["Tobias Lind"].organisation == "Växjö kommun"
    assert (p["Marcus Petrén"].role, p["Marcus Petrén"].organisation) == ("samverkansansvarig", "Försäkringskassan")
    assert not {"Enhetschef för arbetsmarknadsenheten", "Samverkansansvarig", "Adjungerad"} & {o.name for o in result.organisations}


def test_role_with_an_acronym_prefix(nlp):
    text = "Nätverksträff 3 maj 2024\n\nNärvarande\nJenny Åkesson, LSS-samordnare, Uddevalla kommun\nOla Berg, IT-chef, Lysekils kommun"
    result = nlp_stage.extract_text(nlp, text)
    p = {x.name: x for x in result.people}
    assert (p["Jenny Åkesson"].role.lower(), p["Jenny Åkesson"].organisation) == ("lss-samordnare", "Uddevalla kommun")
    assert (p["Ola Berg"].role.lower(), p["Ola Berg"].organisation) == ("it-chef", "Lysekils kommun")
    assert "LSS-samordnare" not in {o.name for o in result.organisations}


def test_attendee_list_separated_by_semicolons(nlp):
    text = ("Minnesanteckningar 3 mars 2026\n\n"
            "Närvarande: Karin Holm, enhetschef, Vallby kommun; Ahmed Yusuf, ordförande, FUB Vallby.")
    p = people(nlp, text)
    assert (p["Karin Holm"].role, p["Karin Holm"].organisation) == ("enhetschef", "Vallby kommun")
    assert (p["Ahmed Yusuf"].role, p["Ahmed Yusuf"].organisation) == ("ordförande", "FUB Vallby")


def test_our_treasurer_belongs_to_the_page_organisation(nlp):
    text = ("Protokoll styrelsemöte FUB Växjö\nDatum: 3 mars 2026\nPlats: föreningslokalen\n\nBidraget till resan kommer från Växjö kommun. "
            "Vår kassör Lena Ek redovisade ekonomin.")
    (p,) = nlp_stage.extract_text(nlp, text).people
    assert (p.role, p.organisation) == ("kassör", "FUB Växjö")


def test_posts_from_elections_in_annual_meeting_minutes(nlp):
    text = ("Protokoll årsmöte DHR Kalmar 2025\n\n§ 2 Val av mötesordförande\n"
            "Till mötesordförande valdes Kjell Rosén från DHR Växjö.\n\n§ 5 Val av styrelse\n"
            "Till ordinarie ledamöter för två år valdes Nils Berg (omval), Siv Ekholm (nyval) och Tove Lind (nyval). "
            "Ulla Dahlberg omvaldes till revisor och Bo Lundin till revisorsersättare, båda för ett år.")
    p = people(nlp, text)
    assert (p["Kjell Rosén"].role, p["Kjell Rosén"].organisation) == ("mötesordförande", "DHR Växjö")
    for name in ("Nils Berg", "Siv Ekholm", "Tove Lind"):
        assert (p[name].role, p[name].organisation) == ("ledamot", "DHR Kalmar")
    assert (p["Ulla Dahlberg"].role, p["Ulla Dahlberg"].organisation) == ("revisor", "DHR Kalmar")
    assert p["Bo Lundin"].role == "revisorsersättare"


def test_a_role_with_a_lowercase_unit_is_the_whole_field(trained):
    text = ("Styrgrupp\n\nOmid Rahimi, verksamhetschef vuxenpsykiatrin, Region Kalmar län\n\n"
            "Anmäl dig till Petra Gustavsson, som är sekreterare i föreningens styrelse, senast 1 maj.")
    p = people(trained, text)
    assert (p["Omid Rahimi"].role, p["Omid Rahimi"].organisation) == ("verksamhetschef vuxenpsykiatrin", "Region Kalmar län")
    assert p["Petra Gustavsson"].role == "sekreterare"
