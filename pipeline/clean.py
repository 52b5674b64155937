"""Clean stage: fetched HTML or PDF → a Document of main-text paragraphs.

1. trafilatura finds the main text and metadata (title, publication date, author);
   its XML body keeps headings, paragraphs, list items, table rows and quotes apart.
2. PDFs are read with pypdf; blank lines separate paragraphs.
3. Blocks that repeat across pages of one site (menus, banners, comment-form text that
   slipped through) are dropped: ``repeated_blocks`` finds them over a batch of pages.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date

import trafilatura
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from pipeline.fetch import decode_html
from pipeline.records import Document, FetchResult, name_hash

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_BLOCK_TAGS = {"head", "p", "item", "row", "quote", "code"}
_SPACE = re.compile(r"\s+")
_NAME_WORD = re.compile(r"[A-ZÅÄÖÉÜ][\w'’-]*|\b(?:von|af|av|de|van|der|la)\b")
REDACTED = "[borttaget]"
_PDF_NEW_BLOCK = re.compile(r"^([•\-–*§]|\d+[.)] )")


@dataclass(frozen=True)
class CleanSettings:
    """Knobs of the clean stage.

    Attributes:
        repeat_share: a block found on at least this share of a site's pages is boilerplate.
        repeat_min_pages: ...and on at least this many pages.
        min_chars: paragraphs shorter than this are dropped.
        favor_precision: ask trafilatura to prefer precision over recall.
    """

    repeat_share: float = 0.4
    repeat_min_pages: int = 3
    min_chars: int = 2
    favor_precision: bool = False


@dataclass
class CleanBatch:
    """Documents made from one batch of fetched pages, and what was dropped on the way."""

    documents: list[Document] = field(default_factory=list)
    boilerplate: set[str] = field(default_factory=set)  # fingerprints of repeated blocks
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


def fingerprint(block: str) -> str:
    """A stable key for a text block: case, spacing and accents of whitespace ignored."""
    norm = _SPACE.sub(" ", unicodedata.normalize("NFC", block)).strip().casefold()
    return hashlib.sha1(norm.encode("utf-8")).hexdigest()[:16]


def text_hash(paragraphs: Iterable[str]) -> str:
    """sha256 of the cleaned text: decides whether a page changed in substance."""
    return hashlib.sha256("\n\n".join(paragraphs).encode("utf-8")).hexdigest()


def extract(result: FetchResult, boilerplate: Collection[str] = (), settings: CleanSettings = CleanSettings()) -> Document | None:
    """Turn one fetched page or PDF into a Document, or None when it has no main text.

    Args:
        result: an ``ok`` fetch result.
        boilerplate: block fingerprints to drop (see ``repeated_blocks``).
        settings: clean settings.
    """
    if _is_pdf(result):
        doc = extract_pdf(result.content, url=result.url, source=result.source)
    else:
        html = decode_html(result.content, result.content_type)
        doc = extract_html(html, url=result.final_url or result.url, source=result.source, settings=settings)
        if doc is not None:
            doc.url = result.url
    return _without_blocks(doc, boilerplate) if doc is not None else None


def extract_html(html: str, url: str | None = None, source: str = "", settings: CleanSettings = CleanSettings()) -> Document | None:
    """Main text of an HTML page as paragraphs, with title, date and author."""
    parsed = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        favor_precision=settings.favor_precision,
    )
    if parsed is None or parsed.body is None:
        log.info("discarding %s: no main text", url)
        return None
    blocks = [(_block_text(el), el.tag == "head") for el in parsed.body.iter() if el.tag in _BLOCK_TAGS and not _has_block_parent(el)]
    blocks = [(text, head) for text, head in blocks if len(text) >= settings.min_chars]
    if blocks and parsed.title and blocks[0][0] == parsed.title.strip():
        blocks = blocks[1:]
    if not blocks:
        return None
    paragraphs = [text for text, _ in blocks]
    return Document(
        url=url or "",
        source=source,
        title=parsed.title,
        published=_iso_date(parsed.date),
        author=parsed.author,
        paragraphs=paragraphs,
        content_hash=text_hash(paragraphs),
        kind="html",
        headings=[i for i, (_, head) in enumerate(blocks) if head],
    )


def extract_pdf(content: bytes, url: str = "", source: str = "") -> Document | None:
    """Text of a PDF, one paragraph per block separated by blank lines (or per line)."""
    try:
        reader = PdfReader(io.BytesIO(content))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        log.warning("discarding %s: unreadable PDF (%s)", url, exc)
        return None
    paragraphs = _pdf_paragraphs("\n".join(pages))
    if not paragraphs:
        return None
    return Document(
        url=url,
        source=source,
        title=title or paragraphs[0][:200],
        published=None,
        author=None,
        paragraphs=paragraphs,
        content_hash=text_hash(paragraphs),
        kind="pdf",
    )


def repeated_blocks(pages: Iterable[Iterable[str]], settings: CleanSettings = CleanSettings()) -> set[str]:
    """Fingerprints of blocks that occur on many pages of one site.

    Args:
        pages: the paragraphs of each page of one site (one iterable per page).
        settings: how many pages, absolutely and as a share, make a block boilerplate.
    """
    counts: Counter[str] = Counter()
    total = 0
    for paragraphs in pages:
        total += 1
        counts.update({fingerprint(p) for p in paragraphs})
    needed = max(settings.repeat_min_pages, settings.repeat_share * total)
    return {fp for fp, n in counts.items() if n >= needed}


def clean_batch(
    results: Iterable[FetchResult],
    known_boilerplate: Collection[str] = (),
    settings: CleanSettings = CleanSettings(),
    suppressed: tuple[str, Collection[str]] = ("", ()),
) -> CleanBatch:
    """Clean every ok page of one site's batch, dropping blocks repeated across its pages.

    Args:
        results: fetch results of one source (only ``ok`` ones are cleaned).
        known_boilerplate: fingerprints already known for this site from earlier runs.
        settings: clean settings.
        suppressed: (salt, salted name hashes) of erased people: their names are redacted.

    Returns:
        The documents, the site's boilerplate fingerprints (known plus newly found) and
        the pages that gave no document, with the reason.
    """
    batch = CleanBatch()
    drafts: list[Document] = []
    for result in results:
        if not result.ok:
            continue
        try:
            doc = extract(result, settings=settings)
        except Exception as exc:  # a hostile page must not stop the batch
            log.warning("discarding %s: %s", result.url, exc)
            batch.failures.append((result.url, f"clean error: {exc}"))
            continue
        if doc is None:
            batch.failures.append((result.url, "no main text"))
        else:
            drafts.append(doc)
    batch.boilerplate = set(known_boilerplate) | repeated_blocks(
        (d.paragraphs for d in drafts if d.kind == "html"), settings
    )
    for draft in drafts:
        draft.paragraphs = redact_names(draft.paragraphs, *suppressed)
        doc = _without_blocks(draft, batch.boilerplate)
        if doc is None:
            batch.failures.append((draft.url, "only boilerplate"))
        else:
            batch.documents.append(doc)
    return batch


def redact_names(paragraphs: list[str], salt: str, hashes: Collection[str]) -> list[str]:
    """Replace names whose salted hash is on the suppression list with ``[borttaget]``.

    Candidates are runs of two to four capitalised words (name particles such as "von"
    allowed inside), also with a genitive -s removed.
    """
    if not hashes:
        return paragraphs
    return [_redact_paragraph(p, salt, hashes) for p in paragraphs]


def _redact_paragraph(text: str, salt: str, hashes: Collection[str]) -> str:
    words = list(_NAME_WORD.finditer(text))
    spans = []
    for i, first in enumerate(words):
        if not first.group()[0].isupper():
            continue
        for j in range(i + 1, min(i + 5, len(words))):
            if text[words[j - 1].end() : words[j].start()] != " ":
                break
            candidate = text[first.start() : words[j].end()]
            if not words[j].group()[0].isupper():
                continue
            for name in (candidate, candidate[:-1] if candidate.endswith("s") else None):
                if name and name_hash(salt, name) in hashes:
                    spans.append((first.start(), words[j].end()))
    for start, end in sorted(set(spans), reverse=True):
        text = text[:start] + REDACTED + text[end:]
    return text


def _without_blocks(doc: Document, boilerplate: Collection[str]) -> Document | None:
    kept = [i for i, p in enumerate(doc.paragraphs) if fingerprint(p) not in boilerplate]
    if not kept:
        log.info("discarding %s: only boilerplate", doc.url)
        return None
    doc.headings = [k for k, i in enumerate(kept) if i in doc.headings]
    doc.paragraphs = [doc.paragraphs[i] for i in kept]
    doc.content_hash = text_hash(doc.paragraphs)
    return doc


def _is_pdf(result: FetchResult) -> bool:
    return "pdf" in (result.content_type or "").lower() or result.content[:5] == b"%PDF-"


def _block_text(el) -> str:
    return _SPACE.sub(" ", "".join(el.itertext()) if el.tag != "row" else " | ".join(
        _SPACE.sub(" ", "".join(c.itertext())).strip() for c in el
    )).strip()


def _has_block_parent(el) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent.tag in _BLOCK_TAGS:
            return True
        parent = parent.getparent()
    return False


def _pdf_paragraphs(text: str) -> list[str]:
    """Re-join the lines a PDF wrapped: a line continues the previous one when that one
    does not end a sentence and this one starts in lower case, or the previous was cut
    after a comma or dash, or filled the line width. Bullets and blank lines start anew."""
    paragraphs: list[str] = []
    previous = ""
    for raw in text.splitlines():
        line = _SPACE.sub(" ", raw).strip()
        if not line:
            previous = ""
            continue
        continues = (
            paragraphs and previous and not _PDF_NEW_BLOCK.match(line)
            and not previous.endswith((".", "!", "?", ":"))
            and (line[0].islower() or line[0].isdigit() or previous.endswith((",", "–", "-", ";")) or len(previous) >= 70)
        )
        if continues:
            paragraphs[-1] = f"{paragraphs[-1][:-1]}{line}" if previous.endswith("-") and line[0].islower() else f"{paragraphs[-1]} {line}"
        else:
            paragraphs.append(line)
        previous = line
    return paragraphs


def _iso_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None
