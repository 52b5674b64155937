"""Parse the attendee block of meeting minutes: headings, "Name, Org (ej närvarande)" lines, inline lists
("Närvarande: A (roll, org), B (org)") and who took the minutes ("Vid pennan", "Sekreterare: X")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.extractors.lexicon import Lexicon
from pipeline.extractors.text import UPPER, Line, lines

_NAME_WORD = rf"[{UPPER}][\wåäöéüÅÄÖÉÜ'’]*(?:-[{UPPER}][\wåäöéüÅÄÖÉÜ'’]*)?"
_PARTICLE = r"(?:von|van|af|de|der|den|la|du|el|al|bin|ben|da)"
NAME_RE = re.compile(rf"{_NAME_WORD}(?:\s+{_PARTICLE})*(?:\s+{_NAME_WORD}){{1,3}}")
_ABSENT = re.compile(r"^(ej|inte|icke)\s+närvarande|^frånvarande|^förhinder|^anmält förhinder|^ej närv", re.IGNORECASE)
_PEOPLE_COLUMNS = {"namn", "deltagare", "ledamot", "ledamöter", "person", "kontaktperson"}


@dataclass
class Entry:
    """One person in an attendee list (or under a "Vid pennan" / "Justeras" label)."""

    name: str
    start: int  # char offset of the name
    end: int
    fields: list[tuple[str, int]] = field(default_factory=list)  # (text, offset) after the name
    present: bool | None = True
    heading_role: str | None = None
    section: str = "attendees"  # attendees | secretary | other
    substitute_for: str | None = None


def _heading_key(text: str) -> str:
    return re.sub(r"[:\s]+$", "", text.strip()).lower()


def _split_top(text: str, seps: str = ",\t|", dashes: bool = True) -> list[tuple[str, int]]:
    """Split at ``seps`` (commas, tabs, table-cell bars) and spaced dashes that are not inside
    parentheses; keep offsets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and ch in seps:
            parts.append((text[start:i], start))
            start = i + 1
        elif depth == 0 and dashes and ch == " " and re.match(r" [–—-] ", text[i : i + 3]):
            parts.append((text[start:i], start))
            start = i + 3
            i += 3
            continue
        i += 1
    parts.append((text[start:], start))
    return [(p.strip(), off + (len(p) - len(p.lstrip()))) for p, off in parts if p.strip()]


def _parse_item(text: str, offset: int, lex: Lexicon | None = None) -> Entry | None:
    """"Name, field, field (paren)" → Entry, when it starts with a name ("enhetschef Name" too)."""
    role_first = None
    if lex is not None:
        rm = re.match(r"((?:[a-zåäö]+\.?\s+){1,2})(?=[" + UPPER + "])", text)
        if rm and lex.role_singular(rm.group(1).split()[-1]):
            role_first = (rm.group(1).strip(), offset)
            text, offset = text[rm.end():], offset + rm.end()
    m = NAME_RE.match(text)
    if not m:
        return None
    name = m.group(0)
    rest = text[m.end():]
    entry = Entry(name, offset, offset + len(name))
    if role_first:
        entry.fields.append(role_first)
    base = offset + m.end()
    # parenthesised parts become fields too
    for pm in re.finditer(r"\(([^)]*)\)", rest):
        inner = pm.group(1).strip()
        if _ABSENT.match(inner):
            entry.present = False
            continue
        sub = re.match(r"(ersättare|ers\.?)\s+(?:för\s+)?(.+)", inner, re.IGNORECASE)
        if sub:
            entry.fields.append(("ersättare", base + pm.start(1)))
            entry.substitute_for = sub.group(2).strip()
            continue
        if re.match(r"^§|^\d", inner) or (lex is not None and inner in lex.parties):
            continue  # a paragraph reference, or a politician's party
        for part, off in _split_top(inner):
            entry.fields.append((part, base + pm.start(1) + off))
    outside = re.sub(r"\([^)]*\)", lambda x: " " * len(x.group(0)), rest)
    for part, off in _split_top(outside):
        part = part.strip(" .;:")
        if not part:
            continue
        pm = re.match(r"(från|på|vid|hos|inom|för)\s+", part, re.IGNORECASE)
        if pm:
            off += pm.end()
            part = part[pm.end():]
        if _ABSENT.match(part):
            entry.present = False
            continue
        entry.fields.append((part, base + off))
    return entry


def parse_attendees(text: str, lex: Lexicon) -> list[Entry]:
    """All attendee/secretary entries of a minutes text (empty for other pages)."""
    entries: list[Entry] = []
    all_lines = lines(text)
    i = 0
    while i < len(all_lines):
        line = all_lines[i]
        head, sep, tail = line.text.partition(":")
        key = _heading_key(head if sep else line.text)
        section, role, present = None, None, True
        table = _table_header(line.text)
        if key in lex.attendee_headings:
            role, present = lex.attendee_headings[key]
            section = "attendees"
        elif table:  # a table of people without an attendee heading (a steering group)
            section, present, sep = "attendees", None, ""
        elif key in lex.secretary_labels:
            section = "secretary"
        elif key in ("justeras", "justerare", "justering", "ordförande", "mötesordförande", "ordf."):
            section = "other"
            role = "ordförande" if key.startswith("ordf") or key == "mötesordförande" else None
        if section is None or (not sep and not table and len(line.text) > 40):
            i += 1
            continue
        items: list[tuple[str, int]] = []
        if sep and tail.strip():
            tail_off = line.start + len(head) + 1
            lead = len(tail) - len(tail.lstrip())
            items = _split_items(tail.strip(), tail_off + lead, lex)
            i += 1
        else:
            i += 1
            first_paragraph = None
            if i < len(all_lines) and _table_header(all_lines[i].text):
                i += 1
            while i < len(all_lines):
                nxt = all_lines[i]
                if first_paragraph is not None and nxt.paragraph != first_paragraph:
                    break
                if not _is_entry(nxt.text, lex):
                    break
                first_paragraph = nxt.paragraph
                items.append((nxt.text, nxt.start))
                i += 1
                if section == "secretary":
                    break
        parsed: list[Entry] = []
        for item, off in items:
            entry = _parse_item(item, off, lex)
            if entry is None:
                continue
            parsed.append(entry)
        for k in range(len(parsed) - 1):  # "A och B från X": A shares B's organisation
            if not parsed[k].fields and text[parsed[k].end: parsed[k + 1].start].strip() == "och":
                parsed[k].fields = [f for f in parsed[k + 1].fields if not lex.role_singular(f[0].split()[-1])]
        for entry in parsed:
            if present is False:
                entry.present = False
            entry.heading_role = role
            entry.section = section
            entries.append(entry)
    return entries


def _split_items(text: str, offset: int, lex: Lexicon) -> list[tuple[str, int]]:
    """Inline list "A (x, y), B och C från Z samt roll D" → items, each starting with a person's name.
    Semicolons, where the list has them, end an item ("A, roll, org; B, roll, org")."""
    items: list[tuple[int, int]] = []  # (start, end) relative to text
    for group, goff in _split_top(text, ";", dashes=False):
        group_start = True
        for part, off in _split_top(group):
            pos = 0
            for sub in re.split(r"\s+(?:och|samt)\s+(?=[" + UPPER + "a-zåäö])", part):
                soff = goff + off + part.find(sub, pos)
                pos = soff - goff - off + len(sub)
                if group_start or _person_like(sub, lex) or _role_then_name(sub, lex):
                    items.append((soff, soff + len(sub)))
                else:  # a field of the previous item ("Jan Olsson, Gävle kommun")
                    items[-1] = (items[-1][0], soff + len(sub))
                group_start = False
    return [(text[s:e], offset + s) for s, e in items]


def _table_header(text: str) -> bool:
    """A table's header row that names people in its first column ("Namn | Organisation | Roll")."""
    first, bar, _ = text.partition("|")
    return bool(bar) and first.strip().lower() in _PEOPLE_COLUMNS


def _role_then_name(text: str, lex: Lexicon) -> bool:
    rm = re.match(r"((?:[a-zåäö]+\.?\s+){1,2})(?=[" + UPPER + "])", text)
    return bool(rm and lex.role_singular(rm.group(1).split()[-1]) and _person_like(text[rm.end():], lex))


def _person_like(text: str, lex: Lexicon) -> bool:
    m = NAME_RE.match(text)
    if not m:
        return False
    first = m.group(0).split()[0]
    return any(part in lex.first_names for part in first.split("-")) or text[m.end():].lstrip().startswith("(")


def _is_entry(text: str, lex: Lexicon) -> bool:
    m = NAME_RE.match(text)
    if not m:
        return False
    if len(text) > 120:
        return False
    rest = text[m.end():].lstrip()
    if rest and rest[0] not in ",(–—-\t|":
        return False
    first = m.group(0).split()[0]
    # "Region Dalarna" or "Socialförvaltningen X" are not people
    return first.lower() not in lex.org_suffixes and first.lower() not in ("region", "landstinget", "kommunen")


__all__ = ["Entry", "parse_attendees", "NAME_RE", "Line"]
