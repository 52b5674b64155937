"""People with role and organisation, from attendee lists, NER PER spans and name patterns.

Roles and organisations come from appositions ("X, enhetschef på Y"), relative clauses ("X som är strateg
i …"), quotes ("…, säger X, handläggare vid Y"), role-first phrases ("förbundschef X"), group phrases
("representanter för Y X och Z"), label lines ("Projektledare: X, Y") and attendee lists. First names and
nicknames later in a page resolve to the full name; misspelled repeats merge (rapidfuzz).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.extractors.lexicon import Lexicon, load_lexicon
from pipeline.extractors.minutes import Entry
from pipeline.extractors.orgs import OrgFinder, org_at
from pipeline.extractors.text import UPPER, Sentence, lines, sentences
from pipeline.records import PersonMention

logger = logging.getLogger(__name__)

_NW = rf"[{UPPER}][\wåäöéüćčšžđÅÄÖÉÜ'’]*(?:-[{UPPER}][\wåäöéüćčšžđÅÄÖÉÜ'’]*)?"
_PARTICLE = r"(?:von|van|af|de|der|den|la|du|el|al|bin|ben|da)"
_NICK = r"(?:[ \t]+[\"“”'][^\"“”'\n]{2,20}[\"“”'])?"
_CONTEXT_NAME = re.compile(rf"(?<![\w\-])(?P<n>{_NW}(?:[ \t]+{_PARTICLE})*(?:[ \t]+{_NW}){{1,2}})(?![\w\-])")
_SAYS = re.compile(r"(säger|sa|sade|enligt|berättar|berättade|menar|tycker|anser)\s*$", re.IGNORECASE)
_REL = re.compile(r"^\s*,?\s*som\s+(?:(?:är|var|arbetar|jobbar|verkar|har varit|blir)\s+)?(?:som\s+)?(?:(?:en|ett)\s+av\s+)?", re.IGNORECASE)
_PREP_ORG = re.compile(r"^\s*(?:från|på|vid|hos|inom|för|i)\s+", re.IGNORECASE)
_STOP_SURNAME = {"och", "eller", "men", "samt"}
_FIELD_LINKS = {"och", "samt", "i", "på", "för", "vid", "inom", "hos", "från"}
_ELECTED_VERB = re.compile(r"\b(?:om|ny)?valdes\b", re.IGNORECASE)
_ELECTED_AFTER = re.compile(r"^[^.]*?\s(?:om|ny)?valdes\s+(?:[\wåäö]+\s+)?(?:till|som)\s+(?P<post>(?:[\wåäö\-]+\s+)?[\wåäö\-]+)", re.IGNORECASE)
_ELECTED_BEFORE = re.compile(
    r"\btill\s+(?P<post>(?:[\wåäö\-]+\s+)?[\wåäö\-]+)\s+(?:för\s+(?:[\wåäö]+\s+){1,2})?(?:om|ny)?valdes\s+", re.IGNORECASE)


@dataclass
class Mention:
    start: int
    end: int
    name: str  # as written (nickname in quotes removed)
    nickname: str | None = None
    kind: str = "full"  # full | first


@dataclass
class Person:
    name: str
    aliases: list[str] = field(default_factory=list)
    role: str | None = None
    role_rank: int = 9  # lower = more authoritative source
    organisation: str | None = None
    org_rank: int = 9
    present: bool | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    attendee: bool = False

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def surname(self) -> str:
        return self.name.split()[-1] if len(self.name.split()) > 1 else ""

    def set_role(self, role: str | None, rank: int) -> None:
        if role and rank < self.role_rank:
            self.role, self.role_rank = role, rank

    def set_org(self, org: str | None, rank: int) -> None:
        if org and rank < self.org_rank:
            self.organisation, self.org_rank = org, rank

    def to_record(self) -> PersonMention:
        return PersonMention(self.name, self.role, self.organisation, list(self.aliases), self.present)


class PeopleFinder:
    def __init__(self, lex: Lexicon):
        self.lex = lex
        self.orgs = OrgFinder(lex)
        self.mods = "|".join(re.escape(m) for m in sorted(lex.role_modifiers, key=len, reverse=True))
        firsts = "|".join(re.escape(n) for n in sorted(lex.first_names, key=len, reverse=True))
        self.fullname = re.compile(
            rf"(?<![\w\-])(?P<f>(?:{firsts})(?:-(?:{firsts}))?){_NICK}(?P<rest>(?:[ \t]+{_PARTICLE})*(?:[ \t]+{_NW}){{1,2}})(?![\w\-])"
        )
        self.surname_stop = (
            {m for m in lex.months} | {w for w in lex.weekdays} | _STOP_SURNAME
            | {"Region", "Kommun", "Stad"}
        )
        # "vår kassör", "föreningens ordförande": a role in the page's own organisation
        owners = "|".join(["vår", "vårt", "våra", *(re.escape(a) + "s" for a in lex.org_anaphors)])
        self.own_role = re.compile(rf"(?<![\w\-])(?:{owners})\s+(?:[\wåäö\-]+\s+){{1,2}}$", re.IGNORECASE)

    # -- candidates ---------------------------------------------------------------------------------------
    def _is_first(self, token: str) -> bool:
        parts = token.split("-")
        return token in self.lex.first_names or all(p in self.lex.first_names for p in parts)

    def _bad_name(self, name: str, doc: Doc, s: int, e: int) -> bool:
        words = name.split()
        if any(w.lower() in self.surname_stop or w in self.surname_stop for w in words[1:]):
            return True
        if any(self.lex.role_singular(w) and w[0].islower() for w in words):
            return True
        if any(self.orgs._suffix_ok(w) or w.upper() == w and len(w) > 1 for w in words[1:]):
            return True
        if any(w in self.lex.places for w in words[1:]) and not self._is_first(words[0]):
            return True
        oi = org_at(doc, s, e)
        if oi is not None:
            for os_, oe, idx in doc._.org_spans:
                if idx == oi and os_ <= s and e <= oe and (oe - os_) > (e - s) // 2:
                    return True
        return False

    def full_mentions(self, doc: Doc, skip) -> list[Mention]:
        text = doc.text
        out: list[Mention] = []

        def take(s, e, name, nick=None):
            if any(a <= s < b for a, b in skip):
                return
            if any(m.start < e and s < m.end for m in out):
                return
            out.append(Mention(s, e, name, nick))

        for entry in doc._.attendees or []:
            take(entry.start, entry.end, entry.name)
        for ent in doc.ents:
            if ent.label_ != "PER":
                continue
            raw = ent.text.strip(" ,.;:\"”“")
            if raw.endswith(":s"):
                raw = raw[:-2]
            words = raw.split()
            if len(words) < 2 or not all(w[0].isupper() for w in words if not re.fullmatch(_PARTICLE, w)):
                continue
            # web text is not news: an NER name needs a known first name or a person's context
            after = text[ent.start_char + len(raw): ent.start_char + len(raw) + 60]
            before = text[max(0, ent.start_char - 40): ent.start_char]
            context = bool(_SAYS.search(before)) or bool(re.match(r"^\s*(,\s*(som\s+)?[a-zåäö]|\s+som\s+(är|arbetar))", after)
                                                         and self._role_at_start(re.sub(r"^\s*,?\s*(som\s+(är\s+)?)?", "", after)))
            if not (self._is_first(words[0]) or context):
                continue
            if self._bad_name(raw, doc, ent.start_char, ent.start_char + len(raw)):
                continue
            take(ent.start_char, ent.start_char + len(raw), raw)
        for m in self.fullname.finditer(text):
            nick = re.search(r"[\"“”']([^\"“”']+)[\"“”']", m.group(0))
            words = [(w.group(0), m.start() + w.start(), m.start() + w.end())
                     for w in re.finditer(r"[^\s\"“”']+", m.group(0).replace(nick.group(0), " " * len(nick.group(0))) if nick else m.group(0))]
            while len(words) >= 2:
                name = " ".join(w for w, _, _ in words)
                if not self._bad_name(name, doc, words[0][1], words[-1][2]):
                    break
                words = words[:-1]
            if len(words) < 2 or re.fullmatch(_PARTICLE, words[-1][0]):
                continue
            take(words[0][1], words[-1][2], " ".join(w for w, _, _ in words), nick.group(1) if nick else None)
        # names with an unknown first name, in a clear context ("säger X Y,", "X Y, handläggare", "X Y som är")
        for m in _CONTEXT_NAME.finditer(text):
            name = re.sub(r"\s+", " ", m["n"])
            if any(m.start() < o.end and o.start < m.end() for o in out):
                continue
            words = name.split()
            if words[0].lower() in self.lex.org_stopwords or words[0] in self.lex.places or self.lex.role_singular(words[0]):
                continue
            if any(w.isupper() for w in words) or self._bad_name(name, doc, m.start(), m.end()):
                continue
            before = text[max(0, m.start() - 40): m.start()]
            after = text[m.end(): m.end() + 60]
            role_before = bool(before.split()) and bool(self.lex.role_singular(before.split()[-1].rstrip(":")))
            ctx = bool(_SAYS.search(before)) or role_before
            ctx = ctx or bool(re.match(r"^\s*,\s*(?:som\s+)?[a-zåäö\-]+", after) and self._role_at_start(after.lstrip(" ,")))
            ctx = ctx or bool(re.match(r"^\s+som\s+(?:är|arbetar|jobbar)\s", after))
            om = re.search(r"(?:,|\s+och)\s+$", before)
            ctx = ctx or bool(om and any(o.end == m.start() - len(om.group(0)) for o in out))
            if ctx and (role_before or _SAYS.search(before) or not re.search(r"[.!?]\s*$|^\s*$", text[max(0, m.start() - 2): m.start()])):
                take(m.start(), m.end(), name)
        return sorted(out, key=lambda x: x.start)

    def _role_at_start(self, text: str) -> bool:
        words = text.split()
        for w in words[:3]:
            w = w.strip(",.;:")
            if w.lower() in self.lex.role_modifiers:
                continue
            if "/" in w:
                return any(self.lex.role_singular(p) for p in w.split("/"))
            return bool(w) and w[0].islower() and self.lex.role_singular(w) is not None
        return False

    # -- role and organisation around a mention ------------------------------------------------------------
    def role_phrase(self, text: str) -> tuple[str, int, str] | None:
        """Parse a role at the start of ``text``: (role, chars used, rest after the role)."""
        m = re.match(r"\s*((?:(?:" + "|".join(map(re.escape, sorted(self.lex.role_modifiers, key=len, reverse=True)))
                     + r")\s+)*)((?:[\wåäö]+-\s+och\s+)?[\wåäöÅÄÖ/\-]+)", text, re.IGNORECASE)
        if not m:
            return None
        word = m.group(2)
        parts = word.split("/")
        singular = [self.lex.role_singular(p) for p in parts]
        if not all(singular) or not word[0].islower() and word.lower() not in self.lex.role_forms and not word[0].isupper():
            return None
        head = word.split()[-1]
        coord = word[: len(word) - len(head)]
        role = coord.lower() + "/".join(s for s in singular)
        mods = m.group(1).strip().lower()
        role = (mods + " " + role).strip() if mods else role
        used = m.end()
        rest = text[used:]
        dm = re.match(r"\s+(i|inom|för|med inriktning mot)\s+([a-zåäö][\wåäö\-]+(?:\s+och\s+[a-zåäö][\wåäö\-]+)?)", rest)
        if dm and not self.orgs._suffix_ok(dm.group(2).split()[-1]) and dm.group(2).split()[0] not in (
                "en", "ett", "den", "det", "de", "sin", "sitt", "sina") \
                and not re.match(r"s\s+[a-zåäö]", rest[dm.end() - 1: dm.end() + 2]):  # not "i föreningens styrelse"
            role += f" {dm.group(1)} {dm.group(2)}"
            used += dm.end()
            rest = text[used:]
        return role, used, rest

    def field_role(self, field_txt: str) -> tuple[str, int, str] | None:
        """``role_phrase`` of a comma-separated field; a role with one lowercase word after it
        ("avdelningschef funktionsstöd", "verksamhetschef vuxenpsykiatrin") is the whole field."""
        rp = self.role_phrase(field_txt)
        if rp and re.fullmatch(r"\s+[a-zåäö][\wåäö\-]+\s*", rp[2]) and rp[2].strip() not in _FIELD_LINKS:
            return field_txt.strip().lower(), len(field_txt), ""
        return rp

    def describe(self, doc: Doc, sent: Sentence, mention: Mention, people_spans,
                 meeting_org: str | None = None) -> tuple[str | None, str | None, int]:
        """Role, organisation (canonical) and the rank of the evidence for one name mention
        (``meeting_org``: the body whose minutes these are, see ``_meeting_org``)."""
        text = doc.text
        after = text[mention.end: sent.end]
        before = text[sent.start: mention.start]
        role = org = None

        def org_in(offset_start: int, offset_end: int) -> str | None:
            oi = org_at(doc, offset_start, offset_end)
            return doc._.org_clusters[oi].name if oi is not None else None

        def org_after_prep(rest_start: int) -> str | None:
            pm = _PREP_ORG.match(text[rest_start: sent.end])
            if not pm:
                return None
            s = rest_start + pm.end()
            return self._org_starting(doc, s)

        # role-first: "förbundschef X", "regionens hälso- och sjukvårdsdirektör X", "Projektledare: X", "Projektledare är X"
        pre_role = pre_org = None
        bm = re.search(r"(?:(?P<gen>[\wåäöÅÄÖ\-]+(?:\s+[\wåäöÅÄÖ\-]+)?)s\s+)?(?P<role>(?:[\wåäöÅÄÖ]+-\s+och\s+)?(?:(?:" + self.mods + r")\s+)?[\wåäöÅÄÖ/\-]+)(?:\s*:|\s+(?:är|var|blir))?\s+$", before, re.IGNORECASE)
        if bm:
            rword = bm.group("role")
            head = rword.split()[-1]
            sing = [self.lex.role_singular(p) for p in head.split("/")]
            if all(sing) and len(head) > 2:
                coord = rword[: len(rword) - len(head)]
                pre_role = (coord.lower() + "/".join(sing)).strip()
                if bm.group("gen") and bm.group("gen").lower() in self.lex.role_modifiers:
                    pre_role = f"{bm.group('gen').lower()}s {pre_role}"
                if bm.group("gen"):
                    pre_org = org_in(sent.start + bm.start("gen"), sent.start + bm.end("gen") + 1)
        found = self._after(doc, sent, mention, people_spans, after, org_in, org_after_prep)
        if found:
            role, org, rank = found
            return role or pre_role, org or pre_org, rank
        if pre_role:
            return pre_role, pre_org or org_after_prep(mention.end), 3
        elected = self._elected(text, sent, mention, people_spans)
        if elected:  # elected in the minutes of a body: to a post in that body, unless "från Y" says otherwise
            return elected, org_after_prep(mention.end) or meeting_org, 3
        # group: "representanter för Y X och Z", "två jobbcoacher från Y, X och Z"
        for gm in re.finditer(r"([\wåäö\-]+)\s+(?:för|från|på|vid|hos|inom)\s+", before):
            word = gm.group(1)
            sing = self.lex.role_singular(word)
            if not sing or word.lower() == sing:
                continue
            ostart = sent.start + gm.end()
            oi = org_at(doc, ostart, ostart + 1)
            if oi is None:
                continue
            oend = max(e for s, e, i in doc._.org_spans if i == oi and s <= ostart < e)
            if re.fullmatch(r"[\s,:]*(?:(?:,|och)\s*)*", _without_names(text, oend, mention.start, people_spans)):
                return sing, doc._.org_clusters[oi].name, 3
        # "Handläggare på Y är X och Z"
        for gm in re.finditer(r"([\wåäöÅÄÖ\-]+)(?:\s+(?:på|vid|hos|inom|för)\s+(?P<o>[^,.]+?))?\s+(?:är|var|blir)\s+", before):
            sing = self.lex.role_singular(gm.group(1))
            if not sing:
                continue
            if re.fullmatch(r"[\s,]*(?:(?:,|och)\s*)*", _without_names(text, sent.start + gm.end(), mention.start, people_spans)):
                org = org_in(sent.start + gm.start("o"), sent.start + gm.end("o")) if gm.group("o") else None
                return sing, org, 3
        # "X från Y", "X på Y"; "X och Z från Y"
        o = org_after_prep(mention.end)
        if o:
            return None, o, 4
        cm = re.match(r"\s+och\s+", after)
        if cm:
            nxt = next(((s, e) for s, e, _ in people_spans if s == mention.end + cm.end()), None)
            if nxt:
                o = org_after_prep(nxt[1])
                if o:
                    return None, o, 4
        return None, None, 9

    def _after(self, doc, sent, mention, people_spans, after, org_in, org_after_prep):
        """Role/organisation written after the name: (…), ", som är …", ", roll på Org"."""
        text = doc.text
        role = org = None
        # (role, org) in parentheses; a party tag ("Erik Ek (M), ordförande") is read past, as blanks
        pm = re.match(r"^\s*\(([^)]*)\)", after)
        if pm and pm.group(1).strip() in self.lex.parties:
            after = " " * pm.end() + after[pm.end():]
            pm = None
        if pm:
            base = mention.end + pm.start(1)
            for part in re.finditer(r"[^,]+", pm.group(1)):
                ptxt = part.group(0).strip()
                if not ptxt:
                    continue
                rp = self.role_phrase(ptxt)
                if rp and not role:
                    role = rp[0]
                    o = org_after_prep(base + part.start() + len(part.group(0)) - len(part.group(0).lstrip()) + rp[1])
                    org = org or o
                else:
                    o = org_in(base + part.start(), base + part.end())
                    org = org or o
            if role or org:
                return role, org, 1
        # relative clause: "X som är strateg i …", "som är en av stadens ombudspersoner"
        rm = _REL.match(after)
        if rm:
            pos = mention.end + rm.end()
            gen_org = None
            gm = re.match(rf"([{UPPER}a-zåäö][\wåäö\-]*(?:\s+[\wåäö\-]+)?)s\s+", text[pos: sent.end])
            if gm:
                o = org_in(pos, pos + gm.end(1) + 1)
                if o:
                    gen_org, pos = o, pos + gm.end()
            rp = self.role_phrase(text[pos: sent.end])
            if rp:
                role = rp[0]
                org = gen_org or org_after_prep(pos + rp[1])
                return role, org, 2
        # apposition: "X, enhetschef på Y, …" / "X, Y, ordförande"
        if re.match(r"^\s*[,–—]\s*", after):
            pos = mention.end + re.match(r"^\s*[,–—]\s*", after).end()
            for _ in range(2):
                seg = text[pos: sent.end]
                if _REL.match(seg) and seg.lstrip().startswith("som"):
                    rm2 = _REL.match(seg)
                    rp = self.role_phrase(seg[rm2.end():])
                    if rp:
                        role = role or rp[0]
                        org = org or org_after_prep(pos + rm2.end() + rp[1])
                    break
                fm = re.match(r"[^,.;()]+", seg)
                if not fm:
                    break
                field_txt = fm.group(0)
                if any(s < pos + len(field_txt) and pos <= s for s, e, _ in people_spans if s != mention.start):
                    # another person's name inside: a role-first phrase for someone else
                    break
                rp = self.field_role(field_txt)
                if rp and not role:
                    role = rp[0]
                    org = org or org_after_prep(pos + rp[1])
                else:
                    o = self._org_starting(doc, pos + (len(field_txt) - len(field_txt.lstrip())))
                    if o and not org:
                        org = o
                    else:
                        break
                nxt = re.match(r"[^,.;()]+,\s*", seg)
                if not nxt:
                    break
                pos += nxt.end()
            if role or org:
                return role, org, 2
        return None

    def _elected(self, text: str, sent: Sentence, mention: Mention, people_spans) -> str | None:
        """The post a person is elected to: "X (omval) och Y valdes till ledamöter", "Till ersättare
        valdes X", "X omvaldes till revisor och Y till revisorsersättare"."""

        def only_names(a: int, b: int) -> bool:
            return bool(re.fullmatch(r"(?:\s*\([^)]*\)|\s*,|\s+och|\s+samt|\s)*", _without_names(text, a, b, people_spans)))

        def post(phrase: str) -> str | None:  # "ordinarie styrelseledamöter", "revisor och"
            return next((r for w in reversed(phrase.split()) if (r := self.lex.role_singular(w))), None)

        after = text[mention.end: sent.end]
        am = _ELECTED_AFTER.search(after)
        if am and only_names(mention.end, mention.end + am.start()):
            return post(am["post"])
        bm = _ELECTED_BEFORE.search(text[sent.start: mention.start])
        if bm and only_names(sent.start + bm.end(), mention.start):
            return post(bm["post"])
        tm = re.match(r"\s+till\s+([\wåäö\-]+)", after)  # "… och Y till revisorsersättare"
        if tm and _ELECTED_VERB.search(text[sent.start: mention.start]):
            return post(tm.group(1))
        return None

    def _org_starting(self, doc: Doc, pos: int) -> str | None:
        best = None
        for s, e, idx in doc._.org_spans or []:
            if s == pos or (s <= pos < e and pos - s <= 1):
                if best is None or e - s > best[0]:
                    best = (e - s, idx)
        return doc._.org_clusters[best[1]].name if best else None

    def _org_by_role_type(self, doc: Doc, role: str | None) -> str | None:
        """"regiondirektör" → the one Region on the page; "kommundirektör" → the one kommun."""
        if not role:
            return None
        for kind in ("region", "kommun", "förbund", "stad", "lands", "läns"):
            if role.startswith(kind):
                hits = {c.name for c in doc._.org_clusters or [] if kind in c.name.lower()}
                if len(hits) == 1:
                    return hits.pop()
        return None

    def fallback_org(self, doc: Doc, sent: Sentence, mention: Mention, paragraph_start: int, has_role: bool,
                     role: str | None = None, meeting_org: str | None = None) -> str | None:
        """Nearest organisation around a person with no organisation of their own; for "vår kassör X",
        "föreningens ordförande X" the organisation the page is about (named at its head), if any."""
        text = doc.text
        if self.own_role.search(text[sent.start: mention.start]):
            return meeting_org
        spans = doc._.org_spans or []
        # before the person in the same sentence
        before = [(s, e, i) for s, e, i in spans if sent.start <= s and e <= mention.start]
        if before:
            s, e, i = max(before, key=lambda t: (t[1], t[1] - t[0]))
            return doc._.org_clusters[i].name
        # after the person, in their own clause (stop at a reporting verb's "att")
        clause_end = sent.end
        cm = re.search(r"\b(" + "|".join(map(re.escape, self.lex.reporting_verbs)) + r")\s+(att|om)\b", text[mention.end: sent.end])
        if cm:
            clause_end = mention.end + cm.start()
        after = [(s, e, i) for s, e, i in spans if mention.end <= s and e <= clause_end]
        if after:
            s, e, i = min(after, key=lambda t: (t[0], -(t[1] - t[0])))
            return doc._.org_clusters[i].name
        if not has_role:
            return None
        typed = self._org_by_role_type(doc, role)
        if typed:
            return typed
        prev = [(s, e, i) for s, e, i in spans if e <= sent.start and s >= paragraph_start]
        if not prev:
            prev = [(s, e, i) for s, e, i in spans if e <= sent.start]
        if prev:
            s, e, i = max(prev, key=lambda t: (t[1], t[1] - t[0]))
            return doc._.org_clusters[i].name
        return None


def _similar_surname(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    if min(len(a), len(b)) < 3:
        return False
    common = len(os.path.commonprefix([a, b]))
    return fuzz.ratio(a, b) >= 72 or Levenshtein.distance(a, b) <= 1 or (common >= 4 and fuzz.ratio(a, b) >= 60)


@Language.factory("samverkan_people", default_config={"lexicon_dir": None, "use_ner": True})
def make_people(nlp: Language, name: str, lexicon_dir: str | None, use_ner: bool):
    """People with role/organisation → ``doc._.people`` and ``doc._.person_spans``."""
    return PeopleComponent(load_lexicon(lexicon_dir), use_ner)


class PeopleComponent:
    def __init__(self, lex: Lexicon, use_ner: bool = True):
        self.lex = lex
        self.finder = PeopleFinder(lex)
        self.use_ner = use_ner

    def __call__(self, doc: Doc) -> Doc:
        lex, text = self.lex, doc.text
        skip = doc._.boilerplate_spans or []
        sents = sentences(text, skip)
        mentions = self.finder.full_mentions(doc, skip) if self.use_ner else []
        if not self.use_ner:
            saved = doc.ents
            doc.ents = []
            mentions = self.finder.full_mentions(doc, skip)
            doc.ents = saved
        people: list[Person] = []
        spans: list[tuple[int, int, int]] = []
        entries: dict[int, Entry] = {e.start: e for e in doc._.attendees or []}

        def person_for(name: str) -> int:
            first, last = name.split()[0], name.split()[-1]
            for i, p in enumerate(people):
                if p.name == name or name in p.aliases:
                    return i
            for i, p in enumerate(people):
                if p.first == first and p.surname and len(name.split()) > 1 and _similar_surname(p.surname, last):
                    if name not in p.aliases:
                        p.aliases.append(name)
                    return i
            people.append(Person(name))
            return len(people) - 1

        # full names
        for m in mentions:
            idx = person_for(m.name)
            if m.nickname and m.nickname not in people[idx].aliases:
                people[idx].aliases.append(m.nickname)
            spans.append((m.start, m.end, idx))
        # first names and nicknames
        taken = [(s, e) for s, e, _ in spans]
        org_spans = [(s, e) for s, e, _ in doc._.org_spans or []]
        for wm in re.finditer(rf"(?<![\w\-])([{UPPER}][\wåäöéü]+(?:-[{UPPER}][\wåäöéü]+)?)(?![\w\-])", text):
            token, s, e = wm.group(1), wm.start(1), wm.end(1)
            if any(a <= s < b for a, b in taken) or any(a <= s < b for a, b in skip):
                continue
            if any(a <= s < b for a, b in org_spans):
                continue
            targets = [p for p in people if p.first == token or p.first.split("-")[0] == token and "-" in p.first]
            if not targets:
                full = lex.nicknames.get(token.lower(), [])
                targets = [p for p in people if p.first in full or p.first.split("-")[0] in full]
            if len(targets) == 1:
                idx = people.index(targets[0])
                if token not in people[idx].aliases:
                    people[idx].aliases.append(token)
                spans.append((s, e, idx))
                continue
            if targets:
                continue
            if token in lex.first_names or token.lower() in lex.nicknames:
                nxt = text[e: e + 25]
                prev = text[max(0, s - 2): s]
                sentence_start = s == 0 or re.search(r"[.!?\n]\s*$", text[max(0, s - 3): s])
                follows = re.match(r"^\s*(\(|och\s+[A-ZÅÄÖ]|,\s*[A-ZÅÄÖ][a-zåäö]+\s+och\b|[a-zåäö]+\s)", nxt)
                if not follows and not re.match(r"^[.!?,]", nxt):
                    continue
                if sentence_start and not follows:
                    continue
                if re.match(r"^\s+[A-ZÅÄÖ]", nxt) or prev.endswith("-"):
                    continue
                # a lone first name: its own person (e.g. a trainee only named by nickname)
                idx = person_for(token)
                spans.append((s, e, idx))
        spans.sort()
        doc._.person_spans = spans
        # roles and organisations
        para_start = {}
        for st in sents:
            para_start.setdefault(st.paragraph, st.start)
        meeting_org = _meeting_org(doc)
        for s, e, idx in spans:
            p = people[idx]
            entry = entries.get(s)
            if entry is not None:
                self._from_entry(doc, p, entry, meeting_org)
                continue
            sent = next((st for st in sents if st.start <= s < st.end), None)
            if sent is None:
                continue
            mention = Mention(s, e, p.name)
            role, org, rank = self.finder.describe(doc, sent, mention, spans, meeting_org)
            p.set_role(role, rank)
            p.set_org(org, rank)
            if org is None and not p.attendee and len(p.name.split()) > 1:
                fb = self.finder.fallback_org(doc, sent, mention, para_start.get(sent.paragraph, sent.start), bool(role or p.role),
                                              role or p.role, meeting_org)
                p.set_org(fb, 8)
        attendees = [p for p in people if p.attendee]
        if meeting_org and attendees and all(p.organisation in (None, meeting_org) for p in attendees):
            # no attendee is listed with another organisation: the body's own board or group
            for p in attendees:
                p.set_org(meeting_org, 6)
        doc._.people_internal = people
        doc._.people = [p.to_record() for p in people]
        return doc

    def _from_entry(self, doc: Doc, p: Person, entry: Entry, meeting_org: str | None) -> None:
        p.attendee = True
        explicit = None
        for ftxt, off in entry.fields:
            if self.finder.orgs.field_is_role(ftxt):
                rp = self.finder.field_role(ftxt.lower() if ftxt[:1].isupper() else ftxt)
                explicit = explicit or (rp[0] if rp else ftxt.lower())
            else:
                oi = org_at(doc, off, off + max(1, len(ftxt)))
                if oi is not None:
                    p.set_org(doc._.org_clusters[oi].name, 0)
                else:
                    p.set_org(ftxt, 1)
        if explicit:
            p.set_role(explicit, 0)
        elif entry.section == "secretary":
            p.set_role("sekreterare", 1)
        elif entry.heading_role:
            p.set_role(entry.heading_role, 2)
        if entry.section == "attendees":
            if p.present is None or entry.present is False:
                p.present = entry.present
        elif entry.section == "secretary" and p.present is None:
            p.present = True
        governance = {"ordförande", "vice ordförande", "ledamot", "ersättare", "sekreterare", "justerare", "adjungerad"}
        if p.organisation is None and p.role and p.role not in governance and meeting_org and entry.section == "attendees":
            p.set_org(meeting_org, 5)


def _without_names(text: str, a: int, b: int, people_spans) -> str:
    """``text[a:b]`` with the names of the people found inside it taken out."""
    gap = text[a:b]
    for s, e, _ in people_spans:
        if a <= s and e <= b:
            gap = gap.replace(text[s:e], "")
    return gap


def _meeting_org(doc: Doc) -> str | None:
    """The organisation named in the first three lines that are not page furniture (the body whose
    minutes these are), unless it is a council or group (then its members are not its staff)."""
    skip = doc._.boilerplate_spans or []
    head = [ln for ln in lines(doc.text) if not any(a <= ln.start < b for a, b in skip)][:3]
    head_end = head[-1].end if head else 0
    entry_lines = {(doc.text.rfind("\n", 0, e.start) + 1) for e in doc._.attendees or []}
    best = None
    for s, e, idx in doc._.org_spans or []:
        if s >= head_end or (doc.text.rfind("\n", 0, s) + 1) in entry_lines:
            continue
        if best is None or e - s > best[0]:
            best = (e - s, idx)
    if not best:
        return None
    name = doc._.org_clusters[best[1]].name
    if re.search(r"(råd|rådet|grupp|gruppen|nämnd|nämnden|styrelse|styrelsen|fullmäktige)$", name.split()[-1].lower()):
        return None
    return name
