"""Typed records passed between the stages: sources → fetch → clean → nlp → embed → store → search.

Each stage takes records from the one before and returns its own; no stage reaches back.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Source:
    """One partner site to crawl, as configured in ``data/sources.yaml``."""

    name: str
    start_urls: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    schedule: str = "0 3 * * *"
    page_limit: int = 200
    allow_private: bool = False
    max_depth: int = 5
    delay: float = 1.0  # seconds between requests to one host (robots crawl-delay may raise it)


@dataclass
class FetchResult:
    """What one HTTP fetch returned (or why it failed)."""

    url: str
    source: str
    status: int | None
    fetched_at: datetime
    final_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""
    content_type: str = ""
    content_hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    outcome: str = "ok"  # ok | not_modified | skipped | gone | failed | disallowed
    depth: int = 0
    links: list[str] = field(default_factory=list)  # same-site links found on the page

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class Document:
    """A page cleaned down to its main text, split into paragraphs."""

    url: str
    source: str
    title: str | None
    published: date | None
    author: str | None
    paragraphs: list[str]
    content_hash: str
    kind: str = "html"  # html | pdf | text
    headings: list[int] = field(default_factory=list)  # indexes of the paragraphs that are headings

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True)
class EntityMention:
    """A named-entity span found by the NER component."""

    label: str
    text: str
    start_char: int
    end_char: int


@dataclass(frozen=True)
class DateMention:
    """A temporal expression normalised to an ISO range."""

    text: str
    start: date | None
    end: date | None
    granularity: str  # day | week | month | part_of_month | season | year | relative | unresolved
    start_char: int = -1
    end_char: int = -1


@dataclass
class PersonMention:
    """A person as named in one document, with the role and organisation given there."""

    name: str
    role: str | None = None
    organisation: str | None = None
    aliases: list[str] = field(default_factory=list)
    present: bool | None = None


@dataclass
class OrganisationMention:
    """An organisation with its canonical name and the other forms used in one document."""

    name: str
    aliases: list[str] = field(default_factory=list)


@dataclass
class ActionPoint:
    """A sentence that commits someone to do something."""

    text: str
    assignees: list[str] = field(default_factory=list)
    due: str | None = None  # ISO date, ISO month, or "next meeting"
    due_start: date | None = None
    due_end: date | None = None


@dataclass
class Meeting:
    """Header facts of a set of meeting minutes."""

    title: str | None
    date: date | None
    secretary: str | None = None


@dataclass
class Extraction:
    """Everything the NLP stage found in one document."""

    document_date: date | None = None
    entities: list[EntityMention] = field(default_factory=list)
    dates: list[DateMention] = field(default_factory=list)
    people: list[PersonMention] = field(default_factory=list)
    organisations: list[OrganisationMention] = field(default_factory=list)
    action_points: list[ActionPoint] = field(default_factory=list)
    meeting: Meeting | None = None
    boilerplate: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The extraction in the gold-file format (ISO strings for dates)."""
        return jsonable(
            {
                "document_date": self.document_date,
                "meeting": self.meeting,
                "people": self.people,
                "organisations": self.organisations,
                "dates": [
                    {"text": d.text, "start": d.start, "end": d.end, "granularity": d.granularity}
                    for d in self.dates
                ],
                "action_points": [
                    {"text": a.text, "assignees": a.assignees, "due": a.due} for a in self.action_points
                ],
                "boilerplate": self.boilerplate,
            }
        )


@dataclass
class AnnotatedDocument:
    """A document together with what the NLP stage found in it."""

    document: Document
    extraction: Extraction


@dataclass
class EmbeddedDocument:
    """An annotated document with one embedding per paragraph."""

    document: Document
    extraction: Extraction
    embeddings: Any  # numpy array, shape (len(paragraphs), dim)


def jsonable(value: Any) -> Any:
    """Dataclasses as dicts and dates as ISO strings, recursively (for JSON)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def paragraph_key(text: str) -> str:
    """Key of a paragraph's text: equal texts share one embedding."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def name_key(name: str) -> str:
    """Case- and punctuation-insensitive key for names of people and organisations."""
    import unicodedata

    text = unicodedata.normalize("NFC", name).casefold()
    return " ".join(text.replace(".", " ").replace(",", " ").split())


def name_hash(salt: str, name: str) -> str:
    """Salted hash of a name: how erased names are remembered without keeping them."""
    return hashlib.sha256(f"{salt}\x00{name_key(name)}".encode("utf-8")).hexdigest()
