"""Organisations with canonical names and aliases (samverkan_organisations)."""

import pytest

from pipeline import nlp as nlp_stage


@pytest.fixture(scope="module")
def nlp():
    return nlp_stage.load("blank")


def orgs(nlp, text):
    return {o.name: set(o.aliases) for o in nlp_stage.extract_text(nlp, text).organisations}


def test_abbreviation_defined_with_commas(nlp):
    found = orgs(nlp, "Myndigheten för delaktighet, MFD, har granskat kommunerna. MFD:s rapport kom i går.")
    assert "MFD" in found["Myndigheten för delaktighet"]
    assert len(found) == 1


def test_abbreviation_in_parentheses_and_glossary(nlp):
    text = ("Vi samarbetar med Samordningsförbundet Norra Halland (SNH) sedan länge.\n\n"
            "Förkortningar\nKSF – Kommunstyrelseförvaltningen\n\nKSF ansvarar för lokalerna.")
    found = orgs(nlp, text)
    assert "SNH" in found["Samordningsförbundet Norra Halland"]
    assert "KSF" in found["Kommunstyrelseförvaltningen"]


def test_genitive_definite_and_case_variants_merge(nlp):
    text = ("Göteborgs Stad har startat ett råd. Göteborgs stads representanter träffas varje månad. "
            "Staden bjuder in föreningar. Försäkringskassans handläggare deltar, och Försäkringskassan betalar.")
    found = orgs(nlp, text)
    assert set(found) == {"Göteborgs stad", "Försäkringskassan"}
    assert "Staden" in found["Göteborgs stad"]


def test_unit_of_a_city_and_bare_unit(nlp):
    text = "Uppsala kommuns omsorgsförvaltning bjöd in. Omsorgsförvaltningen leder arbetet."
    found = orgs(nlp, text)
    unit = next(name for name in found if "omsorgsförvaltning" in name.lower() and "Uppsala" in name)
    assert "Omsorgsförvaltningen" in found[unit]


def test_suffix_and_place_patterns(nlp):
    text = ("Representanter från Region Halland, Kungsbacka kommun, Hörselskadades Riksförbund och "
            "Neuroförbundet Halmstad deltog. Även Tekniska förvaltningen var med.")
    found = set(orgs(nlp, text))
    assert {"Region Halland", "Kungsbacka kommun", "Hörselskadades Riksförbund", "Neuroförbundet Halmstad",
            "Tekniska förvaltningen"} <= found


def test_laws_and_generic_nouns_are_not_organisations(nlp):
    text = ("Insatser enligt LSS (lagen om stöd och service) ges av förvaltningen. "
            "Färdtjänst är en fråga för nätverket.")
    assert orgs(nlp, text) == {}


def test_spelling_variants_merge(nlp):
    found = orgs(nlp, "Nätverket Forum Vega träffades. Forum Vegas medlemmar och Forum Veg deltog.")
    assert len([n for n in found if n.startswith("Forum")]) <= 1 or not found


def test_acronym_spelled_by_a_name_on_the_page(nlp):
    found = orgs(nlp, "Active Youth Sweden höll ett seminarium. AYS har funnits i tio år och AYS växer.")
    assert "AYS" in found["Active Youth Sweden"]


def test_short_name_in_parentheses(trained):
    found = orgs(trained, "Årsmöte för Hörselskadades förening i Västerås (HRF Västerås) hölls i mars. "
                      "Rapporten lämnas till Regeringskansliet (Socialdepartementet) i juni.")
    assert "HRF Västerås" in found["Hörselskadades förening i Västerås"]
    assert {"Regeringskansliet", "Socialdepartementet"} <= set(found)


def test_a_capitalised_head_with_its_county_is_a_name(nlp):
    found = orgs(nlp, "Projektet drivs av Samordningsförbundet i Kalmar län tillsammans med Försäkringskassan.")
    assert set(found) == {"Samordningsförbundet i Kalmar län", "Försäkringskassan"}


def test_a_committee_joins_its_name_with_the_municipality(nlp):
    found = orgs(nlp, "Per Åhlund är ordförande i individ- och familjenämnden i Umeå kommun. "
                      "Frågan tas upp i individ- och familjenämnden i mars.")
    (name,) = [n for n in found if "familjenämnden" in n.lower()]
    assert "individ- och familjenämnden" in {a.lower() for a in found[name]}


def test_meeting_tools_and_buildings_are_not_organisations(trained):
    found = orgs(trained, "Mötet hålls via Teams eller i Rådhuset. Avgiften betalas med Swish till Riksförbundet FUB.")
    assert not {"Teams", "Rådhuset", "Swish"} & set(found)
