"""Organisations: mentions from NER, lexicons and patterns, clustered into one canonical name with aliases.

Sources: known national organisations (``known_orgs.txt``), compound heads (``-förvaltningen``,
``-förbundet``), place patterns (``X kommun``, ``Region X``, ``Samordningsförbundet X``), abbreviation
definitions ("Inspektionen för vård och omsorg, IVO," / "(SKR)" / glossary lines "LSS – Lagen om …"),
acronyms spelled by a capitalised name elsewhere on the page, "organisationen X", attendee-list fields,
and the trained NER's ORG spans. Genitive and definite forms, case variants and near-identical spellings
are merged; "kommunen"/"staden"/"regionen" refer back to the one such organisation on the page.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from spacy.language import Language
from spacy.tokens import Doc

from pipeline.extractors.lexicon import Lexicon, load_lexicon
from pipeline.extractors.minutes import Entry, parse_attendees
from pipeline.extractors.text import UPPER, lines
from pipeline.records import OrganisationMention

logger = logging.getLogger(__name__)

_W = r"[\wåäöéüÅÄÖÉÜ]"
_CAP = rf"[{UPPER}][\wåäöéüÅÄÖÉÜ&]*(?:-[\wåäöéüÅÄÖÉÜ]+)*"
_FUNCTION = {"för", "och", "i", "av", "med", "om", "till", "på", "vid", "inom", "de", "det", "den", "the", "of", "for", "and"}
_ABBR = rf"[{UPPER}][{UPPER}0-9&]{{1,6}}"
_ADJ_SKIP = {"nya", "stora", "hela", "samma", "andra", "egna", "olika", "flera", "alla", "vissa", "båda", "övriga", "denna", "detta", "dessa"}
_CITY_WORDS = {"stad", "stads", "kommun", "kommuns", "län", "läns", "landsting", "landstings"}


@dataclass
class Mention:
    start: int
    end: int
    surface: str  # as written, genitive removed
    source: str
    hint: str | None = None  # canonical name from the lexicon
    anaphor_head: str | None = None


@dataclass
class OrgCluster:
    """One organisation on the page."""

    name: str
    aliases: list[str]
    keys: set[str] = field(default_factory=set)
    mentions: list[tuple[int, int]] = field(default_factory=list)

    def to_record(self) -> OrganisationMention:
        return OrganisationMention(self.name, list(self.aliases))


def strip_genitive(surface: str, known: set[str] | None = None) -> tuple[str, bool]:
    """``IVO:s`` → ``IVO``; ``Försäkringskassans`` → ``Försäkringskassan``; keeps ``Bryggan``."""
    if surface.endswith(":s"):
        return surface[:-2], True
    if known and surface.endswith("s") and surface[:-1] in known:
        return surface[:-1], True
    low = surface.lower()
    if re.search(r"(ens|ets|ns|ts|stads|kommuns|läns|förbunds|nämnds|råds|verks|fondens)$", low) and not low.endswith(("ss", "us", "is")):
        return surface[:-1], True
    return surface, False


class OrgFinder:
    """Compiled patterns for one lexicon."""

    def __init__(self, lex: Lexicon):
        self.lex = lex
        self.known: list[tuple[re.Pattern, str]] = []
        for canonical, aliases in lex.known_orgs:
            for form in [canonical, *aliases]:
                if re.fullmatch(r"[A-ZÅÄÖ0-9&\-]{2,8}", form):
                    pat = re.compile(rf"(?<![\w\-]){re.escape(form)}(?::s|s)?(?![\w\-])")
                else:
                    pat = re.compile(rf"(?<![\w\-]){re.escape(form)}(?::s|s)?(?![\w\-])", re.IGNORECASE)
                self.known.append((pat, canonical))
        places = "|".join(re.escape(p) for p in sorted(lex.places, key=len, reverse=True))
        self.place_org = re.compile(
            rf"(?<![\w\-])(?P<p>{_CAP}(?:[ \t]+{_CAP})?)s?[ \t]+(?i:kommun|stad|samordningsförbund|universitet|högskola|sjukhus|läns[ \t]+landsting)"
            rf"(?:s|en|ens|et|ets)?(?![\w\-])"
        )
        self.region_org = re.compile(
            rf"(?<![\w\-])(?P<h>Region|REGION|Landstinget|Länsstyrelsen i|Länsstyrelsen|Samordningsförbundet|"
            rf"SAMORDNINGSFÖRBUNDET|Finsam|FINSAM|Kommunförbundet|Regionförbundet|Riksförbundet|Stiftelsen|Föreningen|Funktionsrätt)"
            rf"[ \t]+(?P<n>{_CAP}(?:[ \t]+{_CAP}){{0,2}})(?:[ \t]+(?P<lan>läns?|LÄNS?))?(?::s|s)?(?![\w\-])"
        )
        # "FUB Norrköping", "Samordningsförbundet i Kalmar län" (not "FUB" + "Kalmar kommun")
        self.place_after = re.compile(rf"[ \t]+(?:(?:i[ \t]+)?(?:{places})s?(?![\w\-])(?![ \t]+(?i:kommun|stad|län|läns))"
                                      rf"|i[ \t]+(?:{places})[ \t]+(?:län|kommun|stad)(?![\w\-]))")
        self.type_noun = re.compile(
            rf"(?<![\w\-])(?:{'|'.join(map(re.escape, sorted(lex.org_type_nouns, key=len, reverse=True)))})"
            rf"[ \t]+(?P<n>{_CAP}(?:[ \t]+{_CAP}){{0,3}})"
        )
        role_forms = "|".join(re.escape(f) for f in sorted(lex.role_forms, key=len, reverse=True))
        self.role_prep = re.compile(
            rf"(?<![\w\-])[\wåäö\-]*(?:{role_forms})[ \t]+(?:för|från|på|vid|hos|inom)[ \t]+(?P<n>{_CAP}(?:[ \t]+{_CAP}){{0,3}})"
        )
        self.word = re.compile(rf"(?<![\w\-]){_W}+(?:-{_W}+)*(?::s)?")
        self.abbr_paren = re.compile(rf"\((?P<a>{_ABBR})\)")
        self.abbr_comma = re.compile(rf",[ \t]+(?P<a>{_ABBR})(?=[ \t]*[,.)]|[ \t]+(?:har|är|inleder|ska|kommer))")
        self.gloss = re.compile(rf"^(?P<a>{_ABBR})(?::s)?[ \t]*(?:–|—|-|:|=|,)[ \t]*(?P<f>[^\n]{{3,120}})$")
        self.abbr_then_paren = re.compile(rf"(?<![\w\-])(?P<a>{_ABBR})[ \t]+\((?P<f>[^)\n]{{3,120}})\)")
        self.caps_token = re.compile(rf"(?<![\w\-])(?P<a>[{UPPER}]{{2,6}})(?::s|s)?(?![\w\-])")

    # ------------------------------------------------------------------------------------------------------
    def is_orgish(self, phrase: str) -> bool:
        """Whether a phrase looks like an organisation's name (not a law or a method)."""
        words = phrase.split()
        if not words:
            return False
        if any(phrase.lower() == c.lower() for c, _ in self.lex.known_orgs):
            return True
        if any(self.lex.org_suffix(w) and w.lower() not in self.lex.org_stopwords and not self.lex.role_singular(w) for w in words):
            return True
        if words[0] in ("Region", "Landstinget", "Länsstyrelsen") or any(w.lower() in ("kommun", "stad") for w in words):
            return True
        content = [w for w in words if w.lower() not in _FUNCTION]
        return len(content) >= 2 and all(w[0].isupper() for w in content)

    def _suffix_ok(self, word: str) -> bool:
        base = word.rstrip(",.;:")
        low = base.lower()
        if low in self.lex.org_stopwords or any(low.endswith(s[1:]) for s in self.lex.org_stopwords if s.startswith("-")):
            return False
        if self.lex.role_singular(base):
            return False
        hit = self.lex.org_suffix(base)
        if not hit:
            return False
        indefinite, definite = hit
        if indefinite in self.lex.org_definite_only and not definite:
            return False
        return base[0].isupper() or definite

    def find(self, text: str, skip: list[tuple[int, int]], ner_spans: list[tuple[int, int, str]],
             entries: list[Entry]) -> tuple[list[Mention], list[tuple[int, int]]]:
        """Mentions and abbreviation links (pairs of mention indexes)."""
        ms: list[Mention] = []
        links: list[tuple[int, int]] = []
        caps_lines = [(ln.start, ln.end) for ln in lines(text) if ln.text.isupper()]

        def add(s, e, surface, source, hint=None, anaphor=None) -> int:
            if any(a <= s < b for a, b in skip):
                return -1
            ms.append(Mention(s, e, surface, source, hint, anaphor))
            return len(ms) - 1

        for pat, canonical in self.known:
            for m in pat.finditer(text):
                raw = m.group(0)
                if len(raw) <= 4 and raw.isupper() and any(a <= m.start() < b for a, b in caps_lines):
                    continue
                surface, _ = strip_genitive(raw, {canonical})
                if surface.lower() != canonical.lower() and not raw.startswith(surface):
                    surface = raw
                add(m.start(), m.start() + len(surface), surface, "known", canonical)
        for m in self.place_org.finditer(text):
            first = m["p"].split()[0]
            if first in self.lex.first_names or first.lower() in _FUNCTION:
                continue
            if m["p"] not in self.lex.places and m["p"].rstrip("s") not in self.lex.places:
                before = text[max(0, m.start() - 3): m.start()]
                if m.start() == 0 or re.search(r"[.!?\n]\s*$", before):
                    continue
            surface, _ = strip_genitive(m.group(0))
            add(m.start(), m.start() + len(surface), surface, "place")
        for m in self.region_org.finditer(text):
            words = m["n"].split()
            while words and (words[-1] in self.lex.first_names or words[-1].lower() in _FUNCTION):
                words = words[:-1]
            if not words or (words[0] in self.lex.first_names and m["h"] in ("Stiftelsen", "Föreningen")):
                continue
            end = m.start("n") + len(" ".join(words)) if words != m["n"].split() else m.end()
            surface, _ = strip_genitive(re.sub(r"[ \t]+", " ", text[m.start(): end]))
            add(m.start(), m.start() + len(surface), surface, "place")
        for m in self.type_noun.finditer(text):
            name = m["n"]
            if name.split()[0] in self.lex.first_names:
                continue
            surface, _ = strip_genitive(name)
            add(m.start("n"), m.start("n") + len(surface), surface, "type")
        for m in self.role_prep.finditer(text):
            name = m["n"]
            words = name.split()
            # stop before a person's name ("Forum Carpe Ingela Nilsson")
            for i, w in enumerate(words):
                if w in self.lex.first_names and i > 0:
                    words = words[:i]
                    break
            if not words or words[0] in self.lex.first_names:
                continue
            name = " ".join(words)
            surface, _ = strip_genitive(name)
            if surface.lower() in self.lex.org_stopwords:
                continue
            add(m.start("n"), m.start("n") + len(surface), surface, "context")
        self._suffix_words(text, add)
        self._abbreviations(text, ms, links, add)
        for s, e, label in ner_spans:
            if label != "ORG":
                continue
            span = self._clean_ner(text, s, e)
            if span:
                add(span[0], span[0] + len(span[1]), span[1], "ner")
        for entry in entries:
            for ftxt, off in entry.fields:
                if self.field_is_role(ftxt):
                    continue
                if not re.search(r"[A-Za-zÅÄÖåäö]", ftxt):
                    continue
                surface, _ = strip_genitive(ftxt)
                idx = add(off, off + len(surface), surface, "attendee")
                if "/" in surface and idx >= 0:
                    pos = 0
                    for k, part in enumerate(surface.split("/")):
                        pidx = add(off + pos, off + pos + len(part), part.strip(), "attendee")
                        if k == 0 and pidx >= 0:
                            links.append((idx, pidx))
                        pos += len(part) + 1
        for word in self.lex.org_nouns:
            for m in re.finditer(rf"(?<![\w\-]){re.escape(word)}s?(?![\w\-])", text, re.IGNORECASE):
                surface, _ = strip_genitive(m.group(0), {m.group(0)[: len(word)]})
                add(m.start(), m.start() + len(surface), surface, "noun",
                    anaphor=self.lex.org_anaphors.get(word))
        for word, head in self.lex.org_anaphors.items():
            for m in re.finditer(rf"(?<![\w\-]){re.escape(word)}s?(?![\w\-])", text, re.IGNORECASE):
                add(m.start(), m.start() + len(word), m.group(0)[: len(word)], "anaphor", anaphor=head)
        self._extend(text, ms)
        self._acronyms(text, ms, links, add)
        self._propagate(text, ms, add)
        self._paren_aliases(text, ms, links)
        return self._drop_nested(ms, links)

    @staticmethod
    def _paren_aliases(text, ms, links):
        """"Hörselskadades förening i Västerås (HRF Västerås)": an abbreviated name (with a place) that
        fills the parentheses right after another name is its short name ("Regeringskansliet
        (Socialdepartementet)" names a part, not the whole)."""
        for i, m in enumerate(ms):
            pm = re.match(r"[ \t]*\([ \t]*", text[m.end: m.end + 6])
            if not pm or m.source in ("anaphor", "noun"):
                continue
            inner = [j for j, o in enumerate(ms) if o.start == m.end + pm.end() and o.source not in ("anaphor", "noun")
                     and re.fullmatch(_ABBR, o.surface.split()[0]) and re.match(r"[ \t]*\)", text[o.end: o.end + 4])]
            links.extend((i, j) for j in inner)

    @staticmethod
    def _drop_nested(ms: list[Mention], links):
        """Forget a head word or abbreviation found inside a longer name ("Riksförbundet" in "Riksförbundet FUB")."""
        keep = []
        for i, m in enumerate(ms):
            inner = m.source in ("suffix", "known", "repeat", "noun", "ner", "context", "type") and any(
                o.start <= m.start and m.end <= o.end and (o.end - o.start) > (m.end - m.start)
                and o.source in ("known", "place", "abbr-full", "type", "attendee", "compound", "acronym-full", "suffix", "ner", "context")
                and not (o.source == "compound" and m.source in ("known", "noun"))
                for o in ms)
            if not inner:
                keep.append(i)
        remap = {old: new for new, old in enumerate(keep)}
        return [ms[i] for i in keep], [(remap[a], remap[b]) for a, b in links if a in remap and b in remap]

    def _clean_ner(self, text: str, s: int, e: int) -> tuple[int, str] | None:
        """An NER ORG span made safe for web text: trimmed at a person's name and trailing function words,
        genitive removed; headings, single common words at a sentence start and place names rejected."""
        raw = text[s:e]
        words = raw.split()
        for i, w in enumerate(words):  # "Forum Carpe Ingela Nilsson" → "Forum Carpe"
            if i > 0 and w in self.lex.first_names and i + 1 < len(words) and words[i + 1][:1].isupper():
                words = words[:i]
                break
        while words and (words[-1].lower() in _FUNCTION or not re.search(r"\w", words[-1])):
            words = words[:-1]
        words = [w.strip(" ,.;:\"”“()") for w in words]
        words = [w for w in words if w]
        if not words or not words[0][:1].isupper():
            return None
        surface = " ".join(words)
        if surface.lower() in self.lex.org_stopwords or surface in self.lex.first_names:
            return None
        prev = re.search(r"([\wåäöÅÄÖ\-]+)[ \t]+$", text[max(0, s - 30): s])
        if prev and all(p in self.lex.first_names for p in prev.group(1).split("-")) and words[0][:1].isupper():
            return None  # "Ivan Kuzhikov": a surname
        first_parts = words[0].split("-")
        if len(words) > 1 and all(p in self.lex.first_names for p in first_parts) and words[1][:1].isupper():
            return None  # a person's name
        if any(surface.lower() == c.lower() for c, _ in self.lex.known_orgs):
            return s, surface
        content = [w for w in words if w.lower() not in _FUNCTION]
        if len(content) > 1 and not all(w[:1].isupper() or self.lex.org_suffix(w) for w in content):
            return None  # "Gemensam ledningsgrupp", "forum i Malmö": a heading or a phrase
        if surface.endswith("s") and re.search(rf"(?<![\w\-]){re.escape(surface[:-1])}(?![\w\-])", text):
            surface = surface[:-1]
        elif surface.endswith(":s"):
            surface = surface[:-2]
        if surface in self.lex.places:
            return None
        if len(words) == 1 and not words[0].isupper() and not self._suffix_ok(words[0]):
            # a single capitalised word: only when it is also capitalised inside a sentence somewhere
            inside = [m for m in re.finditer(rf"(?<![\w\-]){re.escape(surface)}(?![\w\-])", text)
                      if re.search(r"(?:(?<![\w\-])[a-zåäö][\wåäö\-]*|,)[ \t]+$", text[max(0, m.start() - 30): m.start()])]
            if not inside:
                return None
        return s + (raw.find(words[0]) if raw.find(words[0]) >= 0 else 0), surface

    def field_is_role(self, text: str) -> bool:
        """An attendee-list field such as "ordförande" or "vice ordförande" rather than an organisation."""
        words = text.lower().split()
        if not words or text[0].isupper() and not self.lex.role_singular(words[-1]):
            return False
        words = [w for w in words if w not in self.lex.role_modifiers]
        if not words:
            return False
        if self.lex.role_singular(words[0]) and len(words) > 2 and words[1] in ("för", "på", "vid", "inom"):
            return True  # "enhetschef för arbetsmarknadsenheten": the unit is part of the role
        if self._suffix_ok(text.split()[-1]):
            return False
        return bool(self.lex.role_singular(words[0]) or self.lex.role_singular(words[-1]))

    def _suffix_words(self, text, add):
        for m in self.word.finditer(text):
            raw = m.group(0)
            word, gen = strip_genitive(raw)
            adj_only = False
            if not self._suffix_ok(word):
                if raw.endswith("s") and self._suffix_ok(raw[:-1]):
                    word = raw[:-1]
                elif self.lex.org_suffix(word) and re.search(
                        rf"(?<![\w\-])[{UPPER}]{_W}*(?:iska|ska|ala|liga|na)[ \t]+$", text[max(0, m.start() - 40): m.start()]):
                    adj_only = True  # "Tekniska förvaltningen", "Allmänna arvsfonden"
                else:
                    continue
            if not adj_only and (word.lower() in self.lex.org_anaphors or word.lower() in self.lex.org_nouns):
                continue
            start = m.start()
            before = text[max(0, start - 60): start]
            cm = re.search(rf"({_W}+-[ \t]+och[ \t]+)$", before)
            if cm:
                start -= len(cm.group(1))
            else:
                am = re.search(rf"(?<![\w\-])([{UPPER}]{_W}*(?:a|e|ska|iga|ala))[ \t]+$", before)
                if am and am.group(1).lower() not in _ADJ_SKIP | _FUNCTION and am.group(1) not in self.lex.first_names:
                    start -= len(am.group(0))
            if adj_only and start == m.start():
                continue
            surface = text[start: m.start()] + word
            end = start + len(surface)
            # "Avdelningen för mottagande av nyanlända"
            if word[0].isupper() and word.lower() in ("avdelningen", "enheten", "sektionen", "avdelning"):
                fm = re.match(rf"[ \t]+för[ \t]+((?:[a-zåäö\-]+[ \t]*){{1,5}})", text[m.end():])
                if fm:
                    phrase = []
                    for w in fm.group(1).split():
                        if w in ("har", "är", "var", "kan", "ska", "skall", "kommer", "får", "som", "vid", "med", "på", "där", "i"):
                            break
                        phrase.append(w)
                    if phrase:
                        surface = surface + " för " + " ".join(phrase)
                        end = start + len(surface)
            add(start, end, surface, "suffix")

    def _abbreviations(self, text, ms, links, add):
        pairs: list[tuple[int, int, str, int, int, str]] = []  # abbr s,e,abbr, full s,e,full
        for m in self.abbr_paren.finditer(text):
            fb = self._fit_full(text, m.start(), m["a"])
            if fb:
                pairs.append((m.start("a"), m.end("a"), m["a"], fb[0], fb[0] + len(fb[1]), fb[1]))
        for m in self.abbr_comma.finditer(text):
            fb = self._fit_full(text, m.start(), m["a"])
            if fb:
                pairs.append((m.start("a"), m.end("a"), m["a"], fb[0], fb[0] + len(fb[1]), fb[1]))
        for ln in lines(text):
            gm = self.gloss.match(ln.text)
            if gm and _initials_fit(gm["a"], gm["f"].strip()):
                full = gm["f"].strip().rstrip(".")
                fs = ln.start + gm.start("f")
                pairs.append((ln.start, ln.start + len(gm["a"]), gm["a"], fs, fs + len(full), full))
        for m in self.abbr_then_paren.finditer(text):
            full = m["f"].strip()
            if _initials_fit(m["a"], full):
                pairs.append((m.start("a"), m.end("a"), m["a"], m.start("f"), m.start("f") + len(full), full))
        for a_s, a_e, abbr, f_s, f_e, full in pairs:
            if not self.is_orgish(full):
                continue
            full = full[0].upper() + full[1:]
            i = add(f_s, f_e, full, "abbr-full")
            j = add(a_s, a_e, abbr, "abbr")
            if i >= 0 and j >= 0:
                links.append((i, j))

    def _fit_full(self, text: str, pos: int, abbr: str) -> tuple[int, str] | None:
        """The shortest run of words just before ``pos`` whose initials spell ``abbr``."""
        seg_start = max(0, pos - 160)
        seg = text[seg_start:pos].rstrip(" ,")
        cut = max(seg.rfind(c) for c in ".;:!?\n(")
        # keep "Inspektionen för vård och omsorg" but not across a sentence end
        words = list(re.finditer(r"[\wåäöéüÅÄÖÉÜ][\wåäöéüÅÄÖÉÜ\-]*", seg[cut + 1:]))
        for k in range(len(words) - 1, -1, -1):
            first = words[k].group(0)
            if not first[0].isupper() and k != 0 and not self.is_orgish(text[seg_start + cut + 1 + words[k].start(): seg_start + len(seg)]):
                continue
            if first.lower() in _FUNCTION:
                continue
            s = seg_start + cut + 1 + words[k].start()
            phrase = text[s: seg_start + len(seg)].strip(" ,")
            if _initials_fit(abbr, phrase):
                if first[0].isupper() or len(words) - k <= 8:
                    return s, phrase
            if len(words) - k > 8:
                break
        return None

    def _extend(self, text, ms):
        """"FUB" + " Norrköping" → "FUB Norrköping"; "Stockholm Stads" + " Socialförvaltning" → one name."""
        by_start = sorted(range(len(ms)), key=lambda i: ms[i].start)
        for i in by_start:
            m = ms[i]
            # a capitalised "Samordningsförbundet" inside a sentence, with a place, is a name
            named = m.source == "anaphor" and m.surface[:1].isupper() and not re.search(r"(^|[.!?:\n]\s*)$", text[max(0, m.start - 4): m.start])
            if m.source == "anaphor" and not named:
                continue
            pm = self.place_after.match(text, m.end) if m.end < len(text) else None
            if pm and not m.surface.lower().endswith(("kommun", "stad", "län")) and m.source != "place":
                ext = text[m.start: pm.end()]
                ext, _ = strip_genitive(ext)
                ms[i] = Mention(m.start, m.start + len(ext), ext, "suffix" if named else m.source, None, None)
        # a city/municipality directly followed by a unit name, or a unit followed by the municipality
        ordered = sorted([x for x in ms if x.source != "anaphor"], key=lambda x: (x.start, -x.end))
        merged, drop = [], []
        for a in ordered:
            for b in ordered:
                if b.start < a.end or b.start - a.end > 2 or text[a.end: b.start] not in (" ", "s "):
                    continue
                a_city = a.source == "place" and a.surface.split()[-1].lower() in ("stad", "kommun", "stads", "kommuns")
                b_city = b.source == "place" and b.surface.split()[-1].lower() in ("stad", "kommun")
                a_unit = a.source in ("suffix", "noun", "known") or re.fullmatch(_ABBR, a.surface or "")
                b_unit = b.source in ("suffix", "noun")
                if (a_city and b_unit) or (a_unit and b_city and a.source != "known"):
                    surface, _ = strip_genitive(text[a.start: b.end])
                    merged.append(Mention(a.start, a.start + len(surface), surface, "compound"))
                    drop.append(b if a_city else a)
        for d in drop:
            if d in ms:
                ms.remove(d)
        for a in ordered:
            if a.source != "place" or a.surface.split()[-1].lower() not in ("stad", "kommun", "region"):
                continue
            um = re.match(r"s[ \t]+((?:[\wåäö]+-[ \t]+och[ \t]+)?[\wåäö\-]+)", text[a.end:])
            if um and um.group(1)[0].islower() and self.lex.org_suffix(um.group(1).split()[-1]) and not self.lex.role_singular(um.group(1).split()[-1]) \
                    and not any(mm.surface.startswith(a.surface + "s " + um.group(1)) for mm in merged):
                surface = text[a.start: a.end + um.end()]
                merged.append(Mention(a.start, a.start + len(surface), surface, "compound"))
        ms.extend(merged)

    def _acronyms(self, text, ms, links, add):
        """An all-caps word that spells the initials of a capitalised name on the page is its abbreviation."""
        defined = {m.surface for m in ms if m.source in ("abbr", "known")}
        names = {}
        for i, m in enumerate(ms):
            words = m.surface.split()
            if len(words) >= 2 and all(w[0].isupper() for w in words if w.lower() not in _FUNCTION):
                names.setdefault("".join(w[0] for w in words if w.lower() not in _FUNCTION).upper(), i)
        # capitalised word runs (e.g. an English name in a title) spelling a used acronym
        caps_used = Counter(m["a"] for m in self.caps_token.finditer(text))
        for acro, count in caps_used.items():
            if acro in defined or acro in names or len(acro) < 3:
                continue
            if any(other.startswith(acro) and other != acro for other in list(names) + list(caps_used)):
                continue
            spelled = r"[ \t]+".join(c + "[a-zåäöéü]+" for c in acro)
            run = re.search(r"(?<![\w\-])(" + spelled + r")(?![\w\-])", text)
            if run and len(acro) >= 2:
                idx = add(run.start(1), run.end(1), run.group(1), "acronym-full")
                if idx >= 0:
                    names[acro] = idx
        for m in self.caps_token.finditer(text):
            acro = m["a"]
            if acro in names and acro not in defined:
                j = add(m.start("a"), m.end("a"), acro, "abbr")
                if j >= 0:
                    links.append((names[acro], j))

    def _propagate(self, text, ms, add):
        """Other occurrences of a found name (incl. genitive) are mentions too."""
        seen = {(m.start, m.end) for m in ms}
        surfaces = {m.surface for m in ms if m.source not in ("anaphor", "noun") and len(m.surface) >= 2}
        for surface in sorted(surfaces, key=len, reverse=True):
            if surface.lower() in self.lex.org_stopwords:
                continue
            flags = 0 if (len(surface.split()) == 1 or surface.isupper()) else re.IGNORECASE
            for m in re.finditer(rf"(?<![\w\-]){re.escape(surface)}(?::s|s)?(?![\w\-])", text, flags):
                if (m.start(), m.start() + len(surface)) in seen:
                    continue
                if any(x.start <= m.start() < x.end for x in ms):
                    continue
                add(m.start(), m.start() + len(surface), surface, "repeat")
                seen.add((m.start(), m.start() + len(surface)))


def _initials_fit(abbr: str, phrase: str) -> bool:
    """"ISF" fits "Inspektionen för socialförsäkringen": first letters agree, the rest appear in order."""
    letters = [c.lower() for c in abbr if c.isalpha()]
    low = phrase.lower()
    words = [w for w in re.findall(r"[\wåäöéü]+", low)]
    if not letters or not words or words[0][0] != letters[0]:
        return False
    if len(words) > len(letters) + 4:
        return False
    pos = 1
    for c in letters[1:]:
        pos = low.find(c, pos)
        if pos < 0:
            return False
        pos += 1
    initials = {w[0] for w in words if w not in _FUNCTION}
    hits = sum(1 for c in letters if c in initials)
    return hits * 2 >= len(letters) or (len(words) == 1 and len(words[0]) >= 3 * len(letters))


def org_key(surface: str, lex: Lexicon) -> str:
    """Key under which spellings of one organisation agree (case, genitive, definite form, "Finsam X")."""
    s = re.sub(r"\s+", " ", surface.strip().lower()).replace(":s", "")
    words = s.split(" ")
    if words:
        last = words[-1]
        hit = lex.org_suffix(last)
        if hit and hit[1]:
            ind, _ = hit
            for form, base in lex.org_suffixes.items():
                if base == ind and last.endswith(form) and form != ind:
                    words[-1] = last[: len(last) - len(form)] + ind
                    break
    words = [w[:-1] if (i < len(words) - 1 and w.endswith("s") and len(w) > 4 and w not in _CITY_WORDS - {"stads", "kommuns", "läns"})
             else w for i, w in enumerate(words)]
    words = [{"stads": "stad", "kommuns": "kommun", "läns": "län"}.get(w, w) for w in words]
    joined = " ".join(words)
    if "samordningsförbund" in joined or words[0] == "finsam":
        rest = [w for w in words if "samordningsförbund" not in w and w != "finsam"]
        return "samordningsförbund:" + " ".join(rest)
    return joined


def _display(surface: str, lex: Lexicon) -> str:
    words = surface.split()
    if len(words) > 1 and (words[0] in lex.places or words[0].rstrip("s") in lex.places):
        words = [words[0]] + [w.lower() if (w.lower() in _CITY_WORDS or lex.org_suffix(w)) else w for w in words[1:]]
    out = " ".join(words)
    return out[0].upper() + out[1:] if out and out[0].islower() else out


def cluster(ms: list[Mention], links: list[tuple[int, int]], lex: Lexicon) -> tuple[list[OrgCluster], list[tuple[int, int, int]]]:
    """Merge mentions into organisations; returns clusters and (start, end, cluster index) spans."""
    parent = list(range(len(ms)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    keys = [org_key(m.surface, lex) for m in ms]
    real = [i for i, m in enumerate(ms) if m.source != "anaphor"]
    first_by_key: dict[str, int] = {}
    first_by_hint: dict[str, int] = {}
    for i in real:
        if keys[i] in first_by_key:
            union(i, first_by_key[keys[i]])
        else:
            first_by_key[keys[i]] = i
        if ms[i].hint:
            if ms[i].hint in first_by_hint:
                union(i, first_by_hint[ms[i].hint])
            else:
                first_by_hint[ms[i].hint] = i
            hk = org_key(ms[i].hint, lex)
            if hk in first_by_key:
                union(i, first_by_key[hk])
    for i, j in links:
        union(i, j)
    # near-identical spellings ("Forum Cape" / "Forum Carpe")
    distinct = list(first_by_key.items())
    for a in range(len(distinct)):
        ka, ia = distinct[a]
        for b in range(a + 1, len(distinct)):
            kb, ib = distinct[b]
            if len(ka) < 8 or len(kb) < 8 or ka[0] != kb[0] or len(ka.split()) != len(kb.split()):
                continue
            if ka.split()[-1] != kb.split()[-1] and len(ka.split()) > 1 and ka.split()[0] != kb.split()[0]:
                continue
            if fuzz.ratio(ka, kb) >= 90:
                union(ia, ib)
    # a bare head ("Socialförvaltningen", "Samordningsförbundet") joins the one fuller name ending in it
    roots_multi: dict[str, set[int]] = {}
    for i in real:
        k = keys[i]
        if k.startswith("samordningsförbund:") and k != "samordningsförbund:":
            roots_multi.setdefault("samordningsförbund:", set()).add(find(i))
        elif len(k.split()) > 1:
            roots_multi.setdefault(k.split()[-1], set()).add(find(i))
    # "Länsstyrelsen i Värmlands län", "Individ- och familjenämnden i Umeå kommun", "Inspektionen för …":
    # the words before "i"/"för" are the head
    qualified: dict[str, set[int]] = {}
    for i in real:
        hm = re.match(r"(.+?) (?:i|för) ", keys[i])
        if hm:
            qualified.setdefault(org_key(hm.group(1), lex), set()).add(find(i))
    for i in real:
        k = keys[i]
        cands = (roots_multi.get(k, set()) if len(k.split()) == 1 or k == "samordningsförbund:" else set()) | qualified.get(k, set())
        cands -= {find(i)}
        if len({find(c) for c in cands}) == 1:
            union(i, next(iter(cands)))
    # "RSMH" alone joins the one local "RSMH Gävle" on the page
    local: dict[str, set[int]] = {}
    for i in real:
        words = ms[i].surface.split()
        if len(words) >= 2 and (words[-1] in lex.places or " ".join(words[1:]) in lex.places):
            local.setdefault(words[0], set()).add(find(i))
    for i in real:
        if len(ms[i].surface.split()) == 1 and len(local.get(ms[i].surface, set())) == 1:
            ms[i].hint = None
            union(i, next(iter(local[ms[i].surface])))
    # anaphors: "kommunen", "staden", "regionen" → the one organisation of that kind (nearest before)
    for i, m in enumerate(ms):
        if m.anaphor_head is None:
            continue
        head = m.anaphor_head
        cands = []
        for j in real:
            if ms[j].anaphor_head is not None and ms[j].source == "noun":
                continue
            words = keys[j].replace("samordningsförbund:", "samordningsförbund ").split()
            if not words or keys[j] == keys[i]:
                continue
            if (len(words) > 1 and (words[-1] == head or words[0] == head or any(w.endswith(head) for w in words))) or \
                    (head == "region" and words[0] == "region") or (len(words) == 1 and words[0].endswith(head) and words[0] != head):
                cands.append(j)
        roots = {find(j) for j in cands}
        if len(roots) == 1:
            union(i, cands[0])
        elif len(roots) > 1:
            before = [j for j in cands if ms[j].start < m.start]
            pick = max(before, key=lambda j: ms[j].start) if before else min(cands, key=lambda j: ms[j].start)
            union(i, pick)
    groups: dict[int, list[int]] = {}
    for i in range(len(ms)):
        groups.setdefault(find(i), []).append(i)
    clusters: list[OrgCluster] = []
    spans: list[tuple[int, int, int]] = []
    for root, members in sorted(groups.items(), key=lambda kv: min(ms[i].start for i in kv[1])):
        solid = [i for i in members if ms[i].source != "anaphor"]
        if not solid:
            continue
        if all(ms[i].source == "noun" and ms[i].anaphor_head and ms[i].surface.lower() not in lex.org_nouns for i in solid):
            continue
        name = _canonical([ms[i] for i in solid], lex)
        aliases = []
        for i in sorted(members, key=lambda i: ms[i].start):
            form = ms[i].surface
            form = form[0].upper() + form[1:] if ms[i].source == "anaphor" else form
            if form != name and form not in aliases:
                aliases.append(form)
        idx = len(clusters)
        clusters.append(OrgCluster(name, aliases, {keys[i] for i in members}, [(ms[i].start, ms[i].end) for i in members]))
        spans.extend((ms[i].start, ms[i].end, idx) for i in members)
    spans.sort()
    return clusters, spans


def _canonical(members: list[Mention], lex: Lexicon) -> str:
    full = [m for m in members if not re.fullmatch(_ABBR, m.surface)] or members
    counts = Counter(m.surface.lower() for m in full)
    order = {m.surface.lower(): k for k, m in enumerate(sorted(full, key=lambda m: m.start))}
    best = max(full, key=lambda m: (len(m.surface.split()), counts[m.surface.lower()], -order[m.surface.lower()]))
    hints = Counter(m.hint for m in members if m.hint)
    if hints:
        hint = hints.most_common(1)[0][0]
        if len(hint.split()) >= len(best.surface.split()) or re.fullmatch(_ABBR, best.surface):
            return hint
    return _display(best.surface, lex)


@Language.factory("samverkan_organisations", default_config={"lexicon_dir": None, "use_ner": True})
def make_organisations(nlp: Language, name: str, lexicon_dir: str | None, use_ner: bool):
    """Organisations with aliases → ``doc._.organisations`` and ``doc._.org_spans``."""
    return OrganisationsComponent(load_lexicon(lexicon_dir), use_ner)


class OrganisationsComponent:
    def __init__(self, lex: Lexicon, use_ner: bool = True):
        self.lex = lex
        self.finder = OrgFinder(lex)
        self.use_ner = use_ner

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        skip = doc._.boilerplate_spans or []
        entries = parse_attendees(text, self.lex)
        doc._.attendees = entries
        ner = []
        if self.use_ner:
            for e in doc.ents:
                # a lone common noun ("Bakgrunden", "Revision") tagged ORG is not a name
                if len(e) == 1 and e[0].pos_ == "NOUN":
                    continue
                if e.text in self.lex.parties and text[e.start_char - 1: e.start_char] == "(" and text[e.end_char: e.end_char + 1] == ")":
                    continue  # "Erik Ek (M)": a politician's party tag
                ner.append((e.start_char, e.end_char, e.label_))
        ms, links = self.finder.find(text, skip, ner, entries)
        clusters, spans = cluster(ms, links, self.lex)
        doc._.org_clusters = clusters
        doc._.org_spans = spans
        doc._.organisations = [c.to_record() for c in clusters]
        return doc


def org_at(doc: Doc, start: int, end: int) -> int | None:
    """Index of the organisation whose mention overlaps [start, end), if any (longest mention wins)."""
    best, best_len = None, 0
    for s, e, idx in doc._.org_spans or []:
        if s < end and start < e and e - s > best_len:
            best, best_len = idx, e - s
    return best
