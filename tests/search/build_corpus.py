"""Build the search evaluation corpus: ``corpus.jsonl`` and ``docs.jsonl`` in this folder.

Three parts, all Swedish:

* the demo site (``data/demo_site``), cleaned with ``pipeline.clean`` like a crawl would;
* ``pages.md``: pages written for this evaluation, on municipal, authority and association
  topics (LSS, färdtjänst, bostadsanpassning, elevhälsa, samordningsförbund …);
* Swedish-Talbanken (``models/corpora/ud``, CC BY-SA 4.0): prose from the 1970s grouped into
  paragraphs (``# newpar`` in the conllu file, four consecutive sentences in the v1 file), as
  realistic distractors.

Organisations and people are tagged per document from the small gazetteer below (exact
word matches), so the organisation and person filters can be evaluated.

Run: ``.venv/bin/python tests/search/build_corpus.py``. The output is committed; rerunning gives
the same files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline import clean

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEMO = ROOT / "data" / "demo_site"
UD = ROOT / "models" / "corpora" / "ud"
SENTENCES_PER_PARAGRAPH = 4

ORGANISATIONS: dict[str, list[str]] = {
    "Inspektionen för vård och omsorg": ["IVO"],
    "Försäkringskassan": [],
    "Arbetsförmedlingen": [],
    "Socialstyrelsen": [],
    "Myndigheten för delaktighet": ["MFD"],
    "Specialpedagogiska skolmyndigheten": ["SPSM"],
    "Sveriges Kommuner och Regioner": ["SKR"],
    "Diskrimineringsombudsmannen": ["DO"],
    "Skolverket": [],
    "Samhall": [],
    "Boverket": [],
    "Region Västermark": [],
    "Ålviks kommun": ["Ålvik kommun"],
    "Norrsunds kommun": [],
    "Samordningsförbundet Ålviksbygden": [],
    "Funktionsrätt Ålvik": ["FRÅ"],
    "Lindå kommun": [],
    "Björkvalla kommun": [],
    "Samordningsförbundet Lindå-Björkvalla": ["Finsam Lindå-Björkvalla"],
    "FUB Lindå": [],
    "Autism- och Aspergerföreningen Björkvalla": [],
    "DHR Lindå": [],
    "Synskadades Riksförbund Västermark": ["SRF Västermark"],
    "Hörselskadades förening Lindå": [],
    "Funktionsrätt Björkvalla": [],
}

PEOPLE = [
    "Maria Holm", "Lena Sjöberg", "Jenny Strand", "Gunnar Åkesson", "Birgitta Holmgren", "Marianne Vik",
    "Astrid Tornberg", "Karin Lund", "Sofia Lindqvist", "Johan Berg", "Henrik Dahl", "Elin Forsberg",
    "Ahmed Karimi", "Olof Nyström", "Yasmin Ali", "Peter Nordin",
    "Annika Sved", "Farid Haddad", "Ulla Bergkvist", "Per-Olof Ström", "Sara Lindberg", "Mats Eriksson",
    "Nadia Rahimi", "Kristina Öberg", "Erik Sandgren", "Linnea Holst", "Tove Almqvist", "Jonas Ek",
    "Helena Wik", "Bo Fransson",
]


def demo_documents() -> list[dict]:
    """The demo site's pages and PDF, cleaned like the crawler does."""
    docs = []
    for page in sorted(DEMO.rglob("index.html")):
        rel = page.parent.relative_to(DEMO).as_posix()
        if rel.startswith(("admin", "_src")):
            continue
        slug = "demo-" + (rel.replace("/", "-") if rel != "." else "start")
        doc = clean.extract_html(page.read_text(encoding="utf-8"), url=f"http://demo.local/{rel}/")
        if doc is not None:
            docs.append(_doc(slug, "demo", doc.title, doc.published, doc.paragraphs))
    for pdf in sorted(DEMO.rglob("*.pdf")):
        doc = clean.extract_pdf(pdf.read_bytes(), url=f"http://demo.local/dokument/{pdf.name}")
        if doc is not None:
            docs.append(_doc("demo-" + pdf.stem, "demo", doc.title, doc.published or _date_in(pdf.stem), doc.paragraphs))
    return docs


def written_documents(path: Path = HERE / "pages.md") -> list[dict]:
    """Pages written for the evaluation: ``## doc: slug`` blocks with a small header."""
    docs = []
    for block in re.split(r"^## doc: ", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
        slug, _, rest = block.partition("\n")
        header, _, body = rest.partition("\n\n")
        meta = dict(line.split(": ", 1) for line in header.strip().splitlines())
        paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
        docs.append(_doc(slug.strip(), meta["source"], meta["title"], meta.get("published"), paragraphs))
    return docs


def talbanken_documents() -> list[dict]:
    """Talbanken prose as paragraphs: conllu ``# newpar`` groups, v1 sentences in fours."""
    docs = []
    paragraphs, current = [], []
    for line in (UD / "sv_talbanken-ud-dev.conllu").read_text(encoding="utf-8").splitlines():
        if line.startswith("# newpar") and current:
            paragraphs.append(" ".join(current))
            current = []
        elif line.startswith("# text = "):
            current.append(line[len("# text = "):])
    if current:
        paragraphs.append(" ".join(current))
    for start in range(0, len(paragraphs), 8):
        docs.append(_doc(f"talbanken-dev-{start // 8:03d}", "talbanken", None, None, paragraphs[start:start + 8]))
    sentences = _v1_sentences(UD / "sv_talbanken-ud-train-v1-2015.conll")
    grouped = [" ".join(sentences[i:i + SENTENCES_PER_PARAGRAPH]) for i in range(0, len(sentences), SENTENCES_PER_PARAGRAPH)]
    for start in range(0, len(grouped), 8):
        docs.append(_doc(f"talbanken-v1-{start // 8:03d}", "talbanken", None, None, grouped[start:start + 8]))
    return docs


def _v1_sentences(path: Path) -> list[str]:
    sentences, tokens = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if tokens:
                sentences.append(_detokenize(tokens))
                tokens = []
            continue
        tokens.append(line.split("\t")[1])
    return sentences


def _detokenize(tokens: list[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([.,:;!?)\]])", r"\1", text)
    text = re.sub(r"([(\[]) ", r"\1", text)
    return text


def _date_in(name: str) -> str | None:
    found = re.search(r"\d{4}-\d{2}-\d{2}", name)
    return found.group(0) if found else None


def _doc(slug: str, source: str, title: str | None, published, paragraphs: list[str]) -> dict:
    return {"doc": slug, "source": source, "title": title, "published": str(published) if published else None,
            "paragraphs": [p.strip() for p in paragraphs if p.strip()]}


def _mentions(text: str) -> tuple[list[str], list[str]]:
    orgs = [name for name, aliases in ORGANISATIONS.items()
            if any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text) for n in (name, *aliases))]
    people = [p for p in PEOPLE if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", text)]
    return orgs, people


def build() -> tuple[int, int]:
    """Write corpus.jsonl (one paragraph a line) and docs.jsonl; return their line counts."""
    docs = demo_documents() + written_documents() + talbanken_documents()
    slugs = [d["doc"] for d in docs]
    assert len(slugs) == len(set(slugs)), "duplicate document slugs"
    n = 0
    with (HERE / "corpus.jsonl").open("w", encoding="utf-8") as corpus, (HERE / "docs.jsonl").open("w", encoding="utf-8") as meta:
        for d in docs:
            text = "\n".join(filter(None, [d["title"] or "", *d["paragraphs"]]))
            orgs, people = _mentions(text)
            meta.write(json.dumps({"doc": d["doc"], "source": d["source"], "title": d["title"], "published": d["published"],
                                   "organisations": orgs, "people": people}, ensure_ascii=False) + "\n")
            for i, para in enumerate(d["paragraphs"]):
                corpus.write(json.dumps({"id": f"{d['doc']}:{i}", "source": d["source"], "title": d["title"],
                                         "published": d["published"], "text": para}, ensure_ascii=False) + "\n")
                n += 1
    return n, len(docs)


if __name__ == "__main__":
    paragraphs, documents = build()
    print(f"{paragraphs} paragraphs in {documents} documents")
