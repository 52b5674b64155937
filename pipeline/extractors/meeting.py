"""Meeting minutes: title, date and who took the minutes."""

from __future__ import annotations

import re

from spacy.language import Language
from spacy.tokens import Doc

from pipeline.extractors.lexicon import Lexicon, load_lexicon
from pipeline.extractors.text import lines
from pipeline.records import Meeting

_MINUTES_WORDS = re.compile(
    r"\b(protokoll|minnesanteckningar|mötesanteckningar|anteckningar|sammanträde|dagordning|justeras|vid pennan)\b",
    re.IGNORECASE,
)
_TITLE_PREFIX = re.compile(
    r"^(?:protokoll(?:et)?|minnesanteckningar|mötesanteckningar|anteckningar|sammanträdesprotokoll)"
    r"(?:\s+(?:från|för|vid))?\s*(?:[–—:\-]\s*)?",
    re.IGNORECASE,
)
_TITLE_SUFFIX = re.compile(r"\s*[–—:\-]\s*(?:protokoll|minnesanteckningar|mötesanteckningar|anteckningar)\s*$", re.IGNORECASE)


def is_minutes(doc: Doc, lex: Lexicon) -> bool:
    """Whether the page is meeting minutes (attendee list, or minutes words near the top)."""
    if any(e.section == "attendees" for e in doc._.attendees or []):
        return True
    head = doc.text[:300]
    return bool(_MINUTES_WORDS.search(head)) and any(e.section == "secretary" for e in doc._.attendees or [])


def meeting_title(doc: Doc) -> str | None:
    """The first heading line without "Protokoll –" and the date."""
    for line in lines(doc.text)[:3]:
        t = line.text.strip()
        bare = _TITLE_PREFIX.sub("", t).strip()
        bare = _TITLE_SUFFIX.sub("", bare).strip()
        # drop a date at the end ("Gemensam ledningsgrupp 23 januari 2017")
        for mt in doc._.date_mentions or []:
            if line.start <= mt.start_char < line.end:
                cut = mt.start_char - line.start
                head = t[:cut].rstrip(" ,–—-:")
                bare = _TITLE_SUFFIX.sub("", _TITLE_PREFIX.sub("", head).strip()).strip()
                break
        if bare and len(bare) > 2:
            return bare[0].upper() + bare[1:]
    return None


@Language.factory("samverkan_meeting", default_config={"lexicon_dir": None})
def make_meeting(nlp: Language, name: str, lexicon_dir: str | None):
    """Meeting minutes header facts → ``doc._.meeting`` (None for other pages)."""
    return MeetingComponent(load_lexicon(lexicon_dir))


class MeetingComponent:
    def __init__(self, lex: Lexicon):
        self.lex = lex

    def __call__(self, doc: Doc) -> Doc:
        if not is_minutes(doc, self.lex):
            doc._.meeting = None
            return doc
        secretary = None
        people = doc._.people_internal or []
        for entry in doc._.attendees or []:
            if entry.section == "secretary":
                idx = next((i for s, e, i in doc._.person_spans or [] if s == entry.start), None)
                secretary = people[idx].name if idx is not None else entry.name
                break
        doc._.meeting = Meeting(title=meeting_title(doc), date=doc._.document_date, secretary=secretary)
        return doc
