"""Text helpers shared by the extractors: lines, paragraphs and sentences with character offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.extractors.lexicon import Lexicon

UPPER = "A-ZÅÄÖÉÜÆØ"
WORD_RE = re.compile(r"[\wÅÄÖåäöéüÉÜ]+(?:[-'’][\wÅÄÖåäöéüÉÜ]+)*")
# abbreviations after which a full stop does not end a sentence
_ABBREV = {
    "kl", "t.ex", "bl.a", "m.m", "s.k", "ca", "nr", "tel", "resp", "jfr", "p.g.a", "o.s.v", "dvs", "fr.o.m",
    "t.o.m", "d.v.s", "bitr", "tf", "t.f", "sekr", "st", "mfl", "m.fl", "inkl", "exkl", "ang", "enl", "f.d",
    "v", "s", "kap", "prop", "dnr", "bl", "a", "e", "o", "mm", "etc",
}
_SENT_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“”'–—\-•]?\s*[" + UPPER + r"0-9§])")


@dataclass(frozen=True)
class Sentence:
    """A sentence (or a list/heading line) with its offsets in the document text."""

    start: int
    end: int
    text: str
    line: int  # index of the line it is on
    paragraph: int  # index of the paragraph (block separated by blank lines)


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str
    paragraph: int


def lines(text: str) -> list[Line]:
    """Non-empty lines with offsets (leading/trailing whitespace trimmed) and paragraph numbers."""
    out: list[Line] = []
    paragraph, pos, blank = 0, 0, False
    for raw in text.split("\n"):
        stripped = raw.strip()
        if not stripped:
            blank = True
        else:
            if blank and out:
                paragraph += 1
            blank = False
            lead = len(raw) - len(raw.lstrip())
            out.append(Line(pos + lead, pos + lead + len(stripped), stripped, paragraph))
        pos += len(raw) + 1
    return out


def split_sentences(line: Line, index: int) -> list[Sentence]:
    """Split one line into sentences on . ! ? followed by a capital, digit or dash."""
    out: list[Sentence] = []
    start = 0
    for m in _SENT_END.finditer(line.text):
        before = line.text[start : m.start()].rstrip()
        last = before.split()[-1] if before.split() else ""
        if last.rstrip(".").lower() in _ABBREV or re.fullmatch(r"\d{1,2}\.", last):
            continue
        seg = line.text[start : m.start()].strip()
        if seg:
            s = line.start + start + (len(line.text[start:]) - len(line.text[start:].lstrip()))
            out.append(Sentence(s, s + len(seg), seg, index, line.paragraph))
        start = m.end()
    seg = line.text[start:].strip()
    if seg:
        s = line.start + start + (len(line.text[start:]) - len(line.text[start:].lstrip()))
        out.append(Sentence(s, s + len(seg), seg, index, line.paragraph))
    return out


def sentences(text: str, skip: list[tuple[int, int]] | None = None) -> list[Sentence]:
    """All sentences of ``text`` (line breaks always end a sentence), minus those inside ``skip`` spans."""
    out: list[Sentence] = []
    for i, line in enumerate(lines(text)):
        if skip and any(s <= line.start and line.end <= e for s, e in skip):
            continue
        out.extend(split_sentences(line, i))
    return out


def boilerplate_lines(text: str, lex: Lexicon) -> list[tuple[int, int, str]]:
    """Lines that are page furniture (comment forms, "Läs mer >>", image file names, share bars)."""
    found = []
    for line in lines(text):
        if any(p.search(line.text) for p in lex.boilerplate):
            found.append((line.start, line.end, line.text))
    return found


def is_capitalised(word: str) -> bool:
    return bool(word) and word[0].isupper()


def normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def word_tokens(text: str) -> list[str]:
    return WORD_RE.findall(text)
