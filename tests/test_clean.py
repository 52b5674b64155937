"""Clean stage: main text, metadata, paragraphs, repeated blocks, PDFs."""

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from pipeline.clean import CleanSettings, clean_batch, extract, extract_html, extract_pdf, fingerprint, repeated_blocks
from pipeline.records import FetchResult

FIXTURES = Path(__file__).parent / "fixtures"


def _result(url: str, body: bytes, content_type: str = "text/html; charset=utf-8") -> FetchResult:
    return FetchResult(url=url, source="t", status=200, fetched_at=datetime.now(timezone.utc), content=body, content_type=content_type)


def test_main_text_and_metadata():
    doc = extract_html((FIXTURES / "page_news.html").read_text("utf-8"), url="http://127.0.0.1/nyheter/rad")
    assert doc.title.startswith("Nytt brukarråd i Norrby")
    assert doc.published == date(2024, 5, 7)
    assert doc.author == "Lina Ström"
    assert doc.paragraphs[0].startswith("Norrby kommun har bildat ett brukarråd")
    assert "Vad gör rådet?" in doc.paragraphs  # headings stay their own paragraph, marked as headings
    assert [doc.paragraphs[i] for i in doc.headings] == ["Vad gör rådet?"]
    assert "Daglig verksamhet" in doc.paragraphs  # list items stay separate
    text = doc.text
    for chrome in ("Godkänn alla kakor", "Storgatan 1", "Till toppen", "Om oss"):
        assert chrome not in text


def _site_page(i: int) -> bytes:
    return f"""<html><head><title>Sida {i}</title></head><body><article><h1>Sida {i}</h1>
    <p>Det här är den unika texten för sida nummer {i} om samverkan mellan kommunen och regionen i frågor om stöd.</p>
    <p>Lämna ett svar. E-postadressen publiceras inte. Obligatoriska fält är märkta *</p>
    <p>Ytterligare ett unikt stycke {i} om hur Försäkringskassan och Arbetsförmedlingen arbetar tillsammans här.</p>
    </article></body></html>""".encode()


def test_blocks_repeated_across_a_site_are_dropped():
    results = [_result(f"http://127.0.0.1/s{i}", _site_page(i)) for i in range(5)]
    batch = clean_batch(results)
    assert len(batch.documents) == 5
    assert fingerprint("Lämna ett svar. E-postadressen publiceras inte. Obligatoriska fält är märkta *") in batch.boilerplate
    for doc in batch.documents:
        assert not any("E-postadressen" in p for p in doc.paragraphs)
        assert any("unika texten" in p for p in doc.paragraphs)
    # the same site later, one page only: known boilerplate still applies
    later = clean_batch([_result("http://127.0.0.1/s9", _site_page(9))], known_boilerplate=batch.boilerplate)
    assert not any("E-postadressen" in p for p in later.documents[0].paragraphs)


def test_repeated_blocks_thresholds():
    pages = [["meny", f"text {i}"] for i in range(10)] + [["bara här"]]
    found = repeated_blocks(pages, CleanSettings(repeat_share=0.5, repeat_min_pages=3))
    assert found == {fingerprint("meny")}
    assert repeated_blocks([["a"], ["a"]], CleanSettings(repeat_min_pages=3)) == set()


def test_pdf_text_becomes_paragraphs():
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, "Protokoll fört vid samverkansmöte", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.multi_cell(0, 6, "Beslut: gruppen tar upp frågan vid nästa möte.", new_x="LMARGIN", new_y="NEXT")
    long = ("Karin rapporterade att trettioen deltagare hittills har skrivits in i projektet och att nio av dem "
            "har fått ett arbete, vilket gruppen tyckte var ett gott resultat.")
    pdf.multi_cell(0, 6, long, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 6, "- Nadia skickar planen till styrelsen.", new_x="LMARGIN", new_y="NEXT")
    doc = extract_pdf(bytes(pdf.output()), url="http://127.0.0.1/p.pdf", source="t")
    assert doc.kind == "pdf"
    assert doc.paragraphs == ["Protokoll fört vid samverkansmöte", "Beslut: gruppen tar upp frågan vid nästa möte.",
                              long, "- Nadia skickar planen till styrelsen."]
    via_fetch = extract(_result("http://127.0.0.1/p.pdf", bytes(pdf.output()), "application/pdf"))
    assert via_fetch.paragraphs == doc.paragraphs


def test_bad_inputs_become_recorded_failures():
    results = [
        _result("http://127.0.0.1/empty", b"<html><body></body></html>"),
        _result("http://127.0.0.1/broken.pdf", b"%PDF-1.4 not really a pdf", "application/pdf"),
        _result("http://127.0.0.1/ok", _site_page(1)),
    ]
    batch = clean_batch(results)
    assert [d.url for d in batch.documents] == ["http://127.0.0.1/ok"]
    assert {url for url, _ in batch.failures} == {"http://127.0.0.1/empty", "http://127.0.0.1/broken.pdf"}


def test_content_hash_follows_cleaned_text_only():
    a = extract(_result("http://127.0.0.1/a", _site_page(1)))
    b = extract(_result("http://127.0.0.1/a", _site_page(1).replace(b"<title>Sida 1</title>", b"<title>Sida 1</title><meta name='x' content='y'>")))
    c = extract(_result("http://127.0.0.1/a", _site_page(2)))
    assert a.content_hash == b.content_hash != c.content_hash


def test_heading_marks_follow_the_paragraphs_when_blocks_are_dropped():
    page = """<html><head><title>Sida</title></head><body><article><h1>Sida</h1>
    <p>Meny och annat som upprepas.</p><h2>Vem gör vad?</h2>
    <p>Karin bokar lokalen och Omid skickar inbjudan till alla medlemmar i god tid.</p></article></body></html>""".encode()
    doc = extract(_result("http://127.0.0.1/a", page), boilerplate={fingerprint("Meny och annat som upprepas.")})
    assert doc.paragraphs[0] == "Vem gör vad?" and doc.headings == [0]

