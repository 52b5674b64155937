"""Swedish temporal expressions → ISO start/end, anchored on the document date.

``find_dates`` is plain Python over the text; ``DatesComponent`` (``samverkan_dates``) runs it on a Doc,
infers the document date when none is given and stores ``doc._.dates`` (deduplicated DateMention records)
and ``doc._.date_mentions`` (every mention, with flags used by the action-point extractor).
"""

from __future__ import annotations

import calendar
import logging
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta

from spacy.language import Language
from spacy.tokens import Doc

from pipeline.extractors.lexicon import Lexicon, load_lexicon
from pipeline.extractors.text import lines
from pipeline.records import DateMention

logger = logging.getLogger(__name__)

YEAR = r"(?:19[5-9]\d|20[0-4]\d)"
DEADLINE_WORDS = ("senast", "till och med", "t.o.m.", "tom", "före", "innan", "inför", "fram till", "till", "tills")
_PREFIX = (
    r"(?:senast|till och med|t\.o\.m\.|från och med|fr\.o\.m\.|fram till|från|till|tills|före|efter|innan|"
    r"inför|sedan|mellan|under|i|per|om)"
)
_DATE_LABEL = re.compile(
    r"^\s*(publicerad|publicerat|publiceringsdatum|datum|sammanträdesdatum|mötesdatum|tid|"
    r"senast uppdaterad|uppdaterad|sidan uppdaterades|senast ändrad|skriven|postad)\b",
    re.IGNORECASE,
)
_LABEL_PRIORITY = {"publicerad": 0, "publicerat": 0, "publiceringsdatum": 0, "postad": 0, "skriven": 0,
                   "datum": 1, "sammanträdesdatum": 1, "mötesdatum": 1, "tid": 1}


@dataclass(frozen=True)
class DateMatch:
    """One temporal expression found in the text."""

    start_char: int
    end_char: int
    text: str
    start: date | None
    end: date | None
    granularity: str
    explicit_year: bool = False
    prefix: str = ""  # the preposition in front ("senast", "i", ...), lower case
    month: int | None = None  # kept when the year could not be resolved

    @property
    def is_deadline(self) -> bool:
        return self.prefix in DEADLINE_WORDS

    def to_record(self) -> DateMention:
        return DateMention(self.text, self.start, self.end, self.granularity, self.start_char, self.end_char)


def _alt(forms) -> str:
    return "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))


class DateFinder:
    """Compiled patterns for one lexicon."""

    def __init__(self, lex: Lexicon):
        self.lex = lex
        month = _alt(lex.months)
        wd = _alt(lex.weekdays)
        day = r"(?:[1-9]|[12]\d|3[01])"
        ord_ = r"(?:\s?:\s?[ae]|\s[ae](?=\s))?"
        self.full = re.compile(
            rf"(?:(?P<prefix>{_PREFIX})\s+)?(?:(?P<wd>{wd})\.?,?\s+)?(?:(?:den|d\.)\s+)?"
            rf"(?<![\d.,/])(?P<d1>{day}){ord_}\.?"
            rf"(?:\s*(?:-|–|—|till|och)\s*(?:den\s+)?(?P<d2>{day}){ord_}\.?)?"
            rf"\s+(?P<m>{month})\.?(?![\wåäö])"
            rf"(?:\s*(?:-|–|—)\s*(?P<d3>{day})\s+(?P<m2>{month})\.?(?![\wåäö]))?"
            rf"(?:,?\s+(?P<y>{YEAR})(?!\d))?",
            re.IGNORECASE,
        )
        self.range2 = re.compile(
            rf"(?:(?P<prefix>från|mellan|under perioden|perioden)\s+)?(?:(?:den|d\.)\s+)?(?<![\d.,/])(?P<d1>{day}){ord_}\s+(?P<m1>{month})\.?"
            rf"(?:\s+(?P<y1>{YEAR}))?\s*(?:-|–|—|till|till och med|och)\s*(?:(?:den|d\.)\s+)?(?P<d2>{day}){ord_}\s+(?P<m2>{month})\.?(?![\wåäö])"
            rf"(?:,?\s+(?P<y>{YEAR})(?!\d))?",
            re.IGNORECASE,
        )
        self.iso = re.compile(rf"(?:(?P<prefix>{_PREFIX})\s+)?(?<![\d-])(?P<y>{YEAR})-(?P<m>\d{{2}})-(?P<d>\d{{2}})(?![\d-])",
                              re.IGNORECASE)
        self.numeric = re.compile(
            rf"(?:(?P<prefix>{_PREFIX})\s+)?(?:(?:den|d\.)\s+)?(?<![\d/.])(?P<d>{day})[/.](?P<m>1[0-2]|0?[1-9])"
            rf"(?:[ ./-](?P<y>{YEAR}))(?![\d/])",
            re.IGNORECASE,
        )
        # "den 9/12", "fredag 11/4": day/month without a year, only after "den" or a weekday (or alone in a table cell)
        self.day_month = re.compile(
            rf"(?:(?P<prefix>{_PREFIX})\s+)?(?:(?P<wd>{wd})\.?,?\s+)?(?P<den>(?:den|d\.)\s+)?"
            rf"(?<![\d/.])(?P<d>{day})/(?P<m>1[0-2]|0?[1-9])(?![\d/])(?![ ./-]{YEAR})",
            re.IGNORECASE,
        )
        self.month_only = re.compile(
            rf"(?:(?P<prefix>i|under|från|till|fram till|före|efter|inför|sedan|senast i|senast|per|under hela|hela|"
            rf"till och med|t\.o\.m\.|från och med|fr\.o\.m\.)\s+)?"
            rf"(?:(?P<part>början|mitten|slutet|halvan|andra halvan|första halvan)\s+(?:av|på|utav)\s+)?"
            rf"(?<![\wåäö])(?P<m>{month})(?![\wåäö])(?:\s+(?P<y>{YEAR})(?!\d))?",
            re.IGNORECASE,
        )
        season_forms = _alt(lex.seasons)
        self.season = re.compile(
            rf"(?:(?P<prefix>under|i|till|inför|efter|från|sedan|senast|fram till|under hela)\s+)?"
            rf"(?:(?P<part>början|mitten|slutet)\s+(?:av|på)\s+)?"
            rf"(?<![\wåäö])(?P<s>{season_forms})(?P<gen>s)?(?![\wåäö])(?:\s+(?P<y>{YEAR})(?!\d))?",
            re.IGNORECASE,
        )
        self.season_past = re.compile(r"\bi\s+(?P<s>våras|somras|höstas|vintras)\b", re.IGNORECASE)
        self.year_span = re.compile(
            rf"(?:(?P<prefix>under|mellan|från|åren|perioden|sedan)\s+)?(?<![\d-])(?P<y1>{YEAR})\s*"
            rf"(?:-|–|—|/|och|till och med|till|t\.o\.m\.)\s*(?P<y2>{YEAR})(?![\d-])",
            re.IGNORECASE,
        )
        self.year_part = re.compile(
            rf"(?:(?P<prefix>i|under|till|från|senast i)\s+)?(?P<part>början|mitten|slutet)\s+(?:av|på)\s+(?P<y>{YEAR})(?!\d)",
            re.IGNORECASE,
        )
        self.half = re.compile(
            rf"(?:(?P<prefix>under|till|från|i)\s+)?(?P<n>första|andra|tredje|fjärde)\s+(?P<unit>halvåret|kvartalet|tertialet)"
            rf"(?:\s+(?P<y>{YEAR})(?!\d))?",
            re.IGNORECASE,
        )
        self.year = re.compile(
            rf"(?:(?P<prefix>under|i|sedan|från|till|inför|efter|före|för|år|året|budgetåret|verksamhetsåret|"
            rf"hela|till och med|t\.o\.m\.|senast|budget|verksamhetsplan|inom)\s+)?(?<![\d\-/.,])(?P<y>{YEAR})"
            rf"(?![\d\-/]|\s*(?:kr|kronor|tkr|mkr|st|%|procent|personer|deltagare|invånare|meter|kvadratmeter)\b|\s*%)",
            re.IGNORECASE,
        )
        self.week = re.compile(
            rf"(?:(?P<prefix>under|i|till|senast|från|före|efter|inför)\s+)?(?<![\wåäö])(?:vecka|v\.|v)\s?(?P<w>[1-9]|[1-4]\d|5[0-3])"
            rf"(?:\s*(?:-|–)\s*(?P<w2>[1-9]|[1-4]\d|5[0-3]))?(?![\d:]|\.\d)(?:,?\s+(?:år\s+)?(?P<y>{YEAR})(?!\d))?",
            re.IGNORECASE,
        )
        self.relative = re.compile(
            r"(?<![\wåäö])(?P<r>nu i veckan|i veckan|denna vecka|den här veckan|nästa vecka|kommande vecka|förra veckan|"
            r"i dag|idag|i morgon|imorgon|i övermorgon|igår|i går|nästa månad|förra månaden|denna månad|den här månaden|"
            r"i år|nästa år|förra året|i fjol|innevarande år|i (?:mån|tis|ons|tors|fre|lör|sön)dags|"
            r"på (?:mån|tis|ons|tors|fre|lör|sön)dag(?![\wåäö])(?!\s*[-–]))(?![\wåäö])",  # not "på måndag–fredag"
            re.IGNORECASE,
        )
        self.holiday = re.compile(rf"(?<![\wåäö])(?P<h>{_alt(lex.holidays)})(?![\wåäö])(?:\s+(?P<y>{YEAR})(?!\d))?",
                                  re.IGNORECASE)

    # -- resolution helpers ------------------------------------------------------------------------------
    @staticmethod
    def _nearest_year(anchor: date, make) -> int:
        """Year (anchor.year-1..+1) whose date from ``make(year)`` is closest to ``anchor``."""
        best, best_d = anchor.year, None
        for y in (anchor.year, anchor.year + 1, anchor.year - 1):
            try:
                d = abs((make(y) - anchor).days)
            except ValueError:
                continue
            if best_d is None or d < best_d:
                best, best_d = y, d
        return best

    def _year_of_day(self, day: int, month: int, weekday: str | None, anchor: date | None) -> int | None:
        """Year of a day written without one: from its weekday ("fredag 11/4"), else the nearest to the
        page date; None without either."""
        wd = self.lex.weekdays.get((weekday or "").lower())
        if wd:
            return self._weekday_year(day, month, wd, anchor)
        return self._nearest_year(anchor, lambda yy: date(yy, month, day)) if anchor else None

    def _tensed_year(self, text: str, pos: int, anchor: date, make) -> int:
        """``_nearest_year``, moved to the year before when that lands after the page date in a clause in
        the past tense ("beslutade i mars"), or to the year after when it lands before the page date
        in a sentence about the future ("planeras till vecka 38", "ansvarar för att … i oktober"); with
        both, the nearest."""
        y = self._nearest_year(anchor, make)
        past = bool(_PAST_VERB.search(_sentence_around(text, pos)))
        future = bool(_FUTURE.search(_sentence_around(text, pos, whole=True)))
        if past and not future and make(y) > anchor:
            return y - 1
        if future and not past and make(y) < anchor:
            return y + 1
        return y

    @staticmethod
    def _weekday_year(day: int, month: int, weekday: int, anchor: date | None) -> int | None:
        """The year near ``anchor`` (or the latest up to today) in which day/month falls on ``weekday``."""
        ref = anchor or date.today()
        candidates = []
        for y in range(ref.year - 7, ref.year + 8):
            try:
                d = date(y, month, day)
            except ValueError:
                continue
            if d.isoweekday() == weekday:
                candidates.append(d)
        if not candidates:
            return None
        if anchor is None:
            past = [d for d in candidates if d <= ref]
            return max(past).year if past else None
        return min(candidates, key=lambda d: abs((d - anchor).days)).year

    @staticmethod
    def _month_range(y: int, m: int) -> tuple[date, date]:
        return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])

    def _season_range(self, form: str, y: int) -> tuple[date, date]:
        _, m1, m2 = self.lex.seasons[form.lower()]
        start = date(y, m1, 1)
        end_year = y + 1 if m2 < m1 else y
        return start, date(end_year, m2, calendar.monthrange(end_year, m2)[1])

    # -- main ----------------------------------------------------------------------------------------------
    def find(self, text: str, anchor: date | None) -> list[DateMatch]:
        """Every temporal expression in ``text`` (longest non-overlapping matches, in text order)."""
        cands: list[DateMatch] = []
        for fn in (self._full, self._range2, self._numeric, self._day_month, self._week, self._year_span, self._year_part, self._half,
                   self._season, self._month_only, self._relative, self._holiday, self._year):
            cands.extend(fn(text, anchor))
        cands.sort(key=lambda c: (c.start_char, -(c.end_char - c.start_char)))
        chosen: list[DateMatch] = []
        taken: list[tuple[int, int]] = []
        for c in sorted(cands, key=lambda c: -(c.end_char - c.start_char)):
            if any(c.start_char < e and s < c.end_char for s, e in taken):
                continue
            chosen.append(c)
            taken.append((c.start_char, c.end_char))
        chosen.sort(key=lambda c: c.start_char)
        return self._paragraph_years(text, chosen, anchor) if anchor else chosen

    def _paragraph_years(self, text: str, found: list[DateMatch], anchor: date) -> list[DateMatch]:
        """A date without a year that would fall before the page date takes a later year written earlier
        in the same paragraph ("… till den 15 april 2025. Beslut fattas i juni" → June 2025)."""
        breaks = [m.start() for m in re.finditer(r"\n\s*\n", text)]

        def para(pos: int) -> int:
            return sum(1 for b in breaks if b < pos)

        out = []
        for k, mt in enumerate(found):
            if (mt.explicit_year or mt.start is None or mt.start >= anchor
                    or mt.granularity not in ("day", "month", "part_of_month", "season", "week")):
                out.append(mt)
                continue
            earlier = [e for e in found[:k] if e.explicit_year and e.start and para(e.start_char) == para(mt.start_char)
                       and e.granularity != "year"]
            if not earlier or earlier[-1].end.year <= mt.start.year:
                out.append(mt)
                continue
            y = earlier[-1].end.year
            again = [x for x in self.find(text[mt.start_char: mt.end_char], date(y, 7, 1)) if x.end_char - x.start_char == mt.end_char - mt.start_char]
            if again:
                x = again[0]
                out.append(replace(x, start_char=mt.start_char, end_char=mt.end_char))
            else:
                out.append(mt)
        return out

    def _mk(self, m: re.Match, start, end, gran, explicit_year=False, month=None) -> DateMatch:
        prefix = (m.groupdict().get("prefix") or "").lower()
        s, e = m.start(), m.end()
        txt = m.group(0)
        # a bare preposition like "i"/"under"/"om" belongs to the text but is not a deadline word
        return DateMatch(s, e, txt.strip(), start, end, gran, explicit_year, prefix, month)

    def _full(self, text, anchor):
        for m in self.full.finditer(text):
            try:
                d1 = int(m["d1"])
                mon = self.lex.months[m["m"].lower()]
                d2 = int(m["d2"]) if m["d2"] else None
                y = int(m["y"]) if m["y"] else self._year_of_day(d1, mon, m["wd"], anchor)
                if y is None:
                    yield self._mk(m, None, None, "unresolved", month=mon)
                    continue
                start = date(y, mon, d1)
                if m["d3"]:
                    mon2 = self.lex.months[m["m2"].lower()]
                    end = date(y + (1 if mon2 < mon else 0), mon2, int(m["d3"]))
                elif d2:
                    end = date(y, mon, d2)
                    if end < start:
                        continue
                else:
                    end = start
                yield self._mk(m, start, end, "day", bool(m["y"]))
            except (ValueError, KeyError):
                continue

    def _range2(self, text, anchor):
        for m in self.range2.finditer(text):
            try:
                m1, m2 = self.lex.months[m["m1"].lower()], self.lex.months[m["m2"].lower()]
                d1, d2 = int(m["d1"]), int(m["d2"])
                y2 = int(m["y"]) if m["y"] else None
                y1 = int(m["y1"]) if m["y1"] else (y2 - (1 if m1 > m2 else 0) if y2 else None)
                if y1 is None:
                    if not anchor:
                        yield self._mk(m, None, None, "unresolved", month=m1)
                        continue
                    y1 = self._nearest_year(anchor, lambda yy: date(yy, m1, d1))
                    y2 = y1 + (1 if m2 < m1 else 0)
                start, end = date(y1, m1, d1), date(y2 or y1, m2, d2)
                if end < start:
                    continue
                yield self._mk(m, start, end, "day", bool(m["y"]))
            except (ValueError, KeyError):
                continue

    def _numeric(self, text, anchor):
        """All-digit dates: ISO 2024-03-12 and the other numeric forms of ``self.numeric``."""
        for pattern in (self.iso, self.numeric):
            for m in pattern.finditer(text):
                try:
                    d = date(int(m["y"]), int(m["m"]), int(m["d"]))
                except ValueError:
                    continue
                yield self._mk(m, d, d, "day", True)

    def _day_month(self, text, anchor):
        """Year-less "den 9/12", "fredag 11/4", "senast 5/3", "möte 14/5 kl. 13" (see ``_year_of_day``)."""
        for m in self.day_month.finditer(text):
            cell = _after_bar(text, m.start()) and _CELL_END.match(text, m.end())
            told = (m["prefix"] or "").lower() in _DAY_PREFIXES or _CLOCK.match(text, m.end()) \
                or _MEETING_BEFORE.search(text, max(0, m.start() - 12), m.start())
            if not (m["wd"] or m["den"] or cell or told):
                continue  # a bare "3/4" is as likely a fraction or a score; alone in a table cell it is a date
            d, mon = int(m["d"]), int(m["m"])
            try:
                y = self._year_of_day(d, mon, m["wd"], anchor)
                if y is None:
                    yield self._mk(m, None, None, "unresolved", month=mon)
                    continue
                yield self._mk(m, date(y, mon, d), date(y, mon, d), "day")
            except ValueError:
                continue

    def _week(self, text, anchor):
        for m in self.week.finditer(text):
            w1 = int(m["w"])
            w2 = int(m["w2"]) if m["w2"] else w1
            if m["y"]:
                y = int(m["y"])
            elif anchor:
                y = self._tensed_year(text, m.start(), anchor, lambda yy: date.fromisocalendar(yy, w1, 1))
            else:
                yield self._mk(m, None, None, "unresolved")
                continue
            try:
                start = date.fromisocalendar(y, w1, 1)
                end = date.fromisocalendar(y, w2, 7)
            except ValueError:
                continue
            yield self._mk(m, start, end, "week", bool(m["y"]))

    def _year_span(self, text, anchor):
        for m in self.year_span.finditer(text):
            y1, y2 = int(m["y1"]), int(m["y2"])
            if not (0 < y2 - y1 <= 10):
                continue
            yield self._mk(m, date(y1, 1, 1), date(y2, 12, 31), "year", True)

    def _year_part(self, text, anchor):
        for m in self.year_part.finditer(text):
            y = int(m["y"])
            yield self._mk(m, date(y, 1, 1), date(y, 12, 31), "year", True)

    def _half(self, text, anchor):
        n = {"första": 1, "andra": 2, "tredje": 3, "fjärde": 4}
        size = {"halvåret": 6, "kvartalet": 3, "tertialet": 4}
        for m in self.half.finditer(text):
            k, months = n[m["n"].lower()], size[m["unit"].lower()]
            if k * months > 12:
                continue
            y = int(m["y"]) if m["y"] else (anchor.year if anchor else None)
            if y is None:
                yield self._mk(m, None, None, "unresolved")
                continue
            m1, m2 = (k - 1) * months + 1, k * months
            yield self._mk(m, date(y, m1, 1), self._month_range(y, m2)[1], "season", bool(m["y"]))

    def _season(self, text, anchor):
        for m in self.season.finditer(text):
            form = m["s"].lower()
            season, m1, _ = self.lex.seasons[form]
            definite = form != season
            if not definite and not m["y"]:
                # "i höst", "i vår" only when nothing follows (avoid "i vår verksamhet")
                after = text[m.end(): m.end() + 3]
                if (m["prefix"] or "").lower() != "i" or not re.match(r"^\s*([.,;:!?)]|$|och\b|ska\b)", after):
                    continue
            if m["y"]:
                y = int(m["y"])
            elif anchor:
                # a season without a year is this year's (winter: the one around or after the date) — or
                # next year's when this year's is over and the sentence is not in the past tense
                y = anchor.year - 1 if (m1 > m2_of(self.lex, form) and anchor.month <= m2_of(self.lex, form)) else anchor.year
                if self._season_range(form, y)[1] < anchor and not _past_tense(_sentence_around(text, m.start())):
                    y += 1
            else:
                yield self._mk(m, None, None, "unresolved")
                continue
            start, end = self._season_range(form, y)
            yield self._mk(m, start, end, "season", bool(m["y"]))
        for m in self.season_past.finditer(text):
            if not anchor:
                continue
            form = {"våras": "våren", "somras": "sommaren", "höstas": "hösten", "vintras": "vintern"}[m["s"].lower()]
            y = anchor.year
            start, end = self._season_range(form, y)
            if start > anchor:
                start, end = self._season_range(form, y - 1)
            yield self._mk(m, start, end, "season")

    def _month_only(self, text, anchor):
        for m in self.month_only.finditer(text):
            word = m["m"]
            if not (m["prefix"] or m["part"] or m["y"]):
                continue
            if word[0].isupper() and not m["prefix"] and not m["part"] and m.start() > 0 and text[m.start() - 1] not in "\n":
                # "Maj Lind": a capitalised month word inside a sentence without a preposition is a name
                continue
            mon = self.lex.months[word.lower()]
            if len(word) <= 3 and not m["y"] and word.lower() not in ("maj",):
                continue  # bare abbreviations without a year are too ambiguous ("mar", "dec")
            if m["y"]:
                y = int(m["y"])
            elif anchor:
                y = self._tensed_year(text, m.start(), anchor, lambda yy: date(yy, mon, 15))
            else:
                yield self._mk(m, None, None, "unresolved", month=mon)
                continue
            start, end = self._month_range(y, mon)
            yield self._mk(m, start, end, "part_of_month" if m["part"] else "month", bool(m["y"]))

    def _relative(self, text, anchor):
        for m in self.relative.finditer(text):
            r = re.sub(r"\s+", " ", m["r"].lower())
            if anchor is None:
                yield DateMatch(m.start(), m.end(), m.group(0), None, None, "relative")
                continue
            monday = anchor - timedelta(days=anchor.weekday())
            if r in ("i dag", "idag"):
                s = e = anchor
                g = "day"
            elif r in ("i morgon", "imorgon"):
                s = e = anchor + timedelta(days=1)
                g = "day"
            elif r == "i övermorgon":
                s = e = anchor + timedelta(days=2)
                g = "day"
            elif r in ("igår", "i går"):
                s = e = anchor - timedelta(days=1)
                g = "day"
            elif r in ("nu i veckan", "i veckan", "denna vecka", "den här veckan"):
                s, e, g = monday, monday + timedelta(days=6), "week"
            elif r in ("nästa vecka", "kommande vecka"):
                s, e, g = monday + timedelta(days=7), monday + timedelta(days=13), "week"
            elif r == "förra veckan":
                s, e, g = monday - timedelta(days=7), monday - timedelta(days=1), "week"
            elif r in ("nästa månad",):
                y, mo = (anchor.year + 1, 1) if anchor.month == 12 else (anchor.year, anchor.month + 1)
                (s, e), g = self._month_range(y, mo), "month"
            elif r in ("förra månaden",):
                y, mo = (anchor.year - 1, 12) if anchor.month == 1 else (anchor.year, anchor.month - 1)
                (s, e), g = self._month_range(y, mo), "month"
            elif r in ("denna månad", "den här månaden"):
                (s, e), g = self._month_range(anchor.year, anchor.month), "month"
            elif r in ("i år", "innevarande år"):
                s, e, g = date(anchor.year, 1, 1), date(anchor.year, 12, 31), "year"
            elif r == "nästa år":
                s, e, g = date(anchor.year + 1, 1, 1), date(anchor.year + 1, 12, 31), "year"
            elif r.endswith("dags") or r.startswith("på "):  # "i torsdags": the last one; "på torsdag": the next
                wd = _WEEKDAY_STEMS.index(r.split()[1].removesuffix("s").removesuffix("dag")) + 1
                back, ahead = (anchor.isoweekday() - wd) % 7 or 7, (wd - anchor.isoweekday()) % 7 or 7
                s = e = anchor - timedelta(days=back) if r.endswith("dags") else anchor + timedelta(days=ahead)
                g = "day"
            else:  # förra året, i fjol
                s, e, g = date(anchor.year - 1, 1, 1), date(anchor.year - 1, 12, 31), "year"
            yield DateMatch(m.start(), m.end(), m.group(0), s, e, g)

    def _holiday(self, text, anchor):
        for m in self.holiday.finditer(text):
            mon, day = self.lex.holidays[m["h"].lower()]
            if m["y"]:
                y = int(m["y"])
            elif anchor:
                y = self._nearest_year(anchor, lambda yy: date(yy, mon, day))
            else:
                yield self._mk(m, None, None, "unresolved", month=mon)
                continue
            d = date(y, mon, day)
            yield self._mk(m, d, d, "day", bool(m["y"]))

    def _year(self, text, anchor):
        for m in self.year.finditer(text):
            before = text[max(0, m.start() - 20): m.start()]
            prev = re.findall(r"[\wåäöÅÄÖ]+", before)
            if not m["prefix"] and prev and prev[-1][0].isupper() and before.rstrip()[-1:].isalpha() \
                    and not re.search(r"[.!?:\n]\s*$", before):
                continue  # "Agenda 2030", "Vision 2025": a name, not a date
            y = int(m["y"])
            yield self._mk(m, date(y, 1, 1), date(y, 12, 31), "year", True)


_CELL_END = re.compile(r"[ \t]*(\||\n|\Z)")
# what makes a bare "5/3" a day: a deadline word before it, a clock time after it, a meeting before it
_DAY_PREFIXES = {"senast", "till och med", "t.o.m.", "från och med", "fr.o.m.", "före", "innan", "inför"}
_CLOCK = re.compile(r",?\s*(?:kl\.?|klockan)\s*\d")
_MEETING_BEFORE = re.compile(r"\b(?:möte|mötet|träff|träffen|sammanträde)\s+$", re.IGNORECASE)


def _after_bar(text: str, pos: int) -> bool:
    """Whether a table cell opens right before ``pos`` ("| " and spaces)."""
    while pos > 0 and text[pos - 1] in " \t":
        pos -= 1
    return pos > 0 and text[pos - 1] == "|"


_WEEKDAY_STEMS = ("mån", "tis", "ons", "tors", "fre", "lör", "sön")
# a plan, or an event announced in the present tense ("Utbildningen hålls i oktober")
_FUTURE = re.compile(r"\b(ska|skall|kommer att|planeras|planerar|preliminärt|hålls|äger rum|anordnas|arrangeras|"
                     r"genomförs|startar|börjar|inleds|öppnar|ansvarar för|i uppdrag)\b", re.IGNORECASE)
# "-ats" only after "har"/"hade" ("har beslutats"): alone it is as often a noun ("webbplats till")
_PAST_WORDS = r"\w{3,}(ade|ades|dde|tte|des)|var|hade|blev|fick|gick|kom|gjorde|(?:har|hade)\s+\w+ts?"
_PAST = re.compile(rf"\b({_PAST_WORDS})\b", re.IGNORECASE)
# the same, told from a participle used as an adjective ("reserverade platser") by the word after it
_PAST_VERB = re.compile(
    rf"\b({_PAST_WORDS})\s+(i|att|om|på|under|den|det|sig|ut|in|upp|fram|till|med|för|vid|efter|redan|också|inte|en|ett)\b",
    re.IGNORECASE,
)


def _sentence_around(text: str, pos: int, whole: bool = False) -> str:
    """The clause holding ``pos``: its sentence, from the last "att" before it ("berättade att X kan …"),
    or the whole sentence."""
    start = max(text.rfind(c, 0, pos) for c in ".!?\n") + 1
    ends = [i for i in (text.find(c, pos) for c in ".!?\n") if i >= 0]
    att = text.rfind(" att ", start, pos)
    if att >= 0 and not whole:
        start = att
    return text[start: min(ends) if ends else len(text)]


def told_in_past(sentence: str) -> bool:
    """Whether a sentence is told in the past tense ("Vi träffades i torsdags och pratade om hösten"),
    with no word of a plan in it; of reported speech only what was said counts ("informerade om att
    Arbetsförmedlingen organiserar om …" is not past)."""
    clause = sentence[sentence.rfind(" att ") + 1:]
    return bool(_PAST_VERB.search(clause)) and not _FUTURE.search(clause)


def _past_tense(sentence: str) -> bool:
    return bool(_PAST.search(sentence))


def m2_of(lex: Lexicon, form: str) -> int:
    return lex.seasons[form.lower()][2]


def infer_document_date(text: str, matches: list[DateMatch], header_chars: int = 600) -> date | None:
    """A page's date from its text: a labelled date ("Publicerad 2023-09-18", "Datum: …") or else the
    first full date with a year in the first lines (title, lede) that is not a deadline."""
    labelled: list[tuple[int, date]] = []
    for line in lines(text):
        lm = _DATE_LABEL.match(line.text)
        if not lm:
            continue
        for mt in matches:
            if line.start <= mt.start_char < line.end and mt.granularity == "day" and mt.explicit_year and mt.start:
                labelled.append((_LABEL_PRIORITY.get(lm.group(1).lower(), 2), mt.start))
                break
    if labelled:
        return min(labelled, key=lambda t: t[0])[1]
    for mt in matches:
        if mt.start_char > header_chars:
            break
        if mt.granularity == "day" and mt.explicit_year and mt.start and not mt.is_deadline and mt.prefix not in (
                "från och med", "fr.o.m.", "från", "sedan", "efter"):
            return mt.start
    # a dateline anywhere: a line that is a full date, maybe after a place ("Gotland 2019-06-12")
    for line in lines(text):
        for mt in matches:
            if line.start <= mt.start_char < line.end and mt.granularity == "day" and mt.explicit_year and mt.start:
                rest = (line.text[: mt.start_char - line.start] + line.text[mt.end_char - line.start:]).strip(" ,.–-")
                if len(rest.split()) <= 2 and all(w[:1].isupper() for w in rest.split()):
                    return mt.start
    # a weekday + date without a year in the header fixes the year (latest such year up to today)
    for mt in matches:
        if mt.start_char > header_chars:
            break
        if mt.granularity == "day" and mt.start and not mt.explicit_year:
            return mt.start
    return None


def dedupe(matches: list[DateMatch]) -> list[DateMatch]:
    """One mention per distinct value and wording ("2021" three times → once; "för 2021" = "2021")."""
    seen, out = set(), []
    for mt in matches:
        words = mt.text.lower().split()
        if mt.prefix and words[: len(mt.prefix.split())] == mt.prefix.split():
            words = words[len(mt.prefix.split()):]
        key = (mt.start, mt.end, mt.granularity, " ".join(words))
        if key in seen:
            continue
        seen.add(key)
        out.append(mt)
    return out


@Language.factory(
    "samverkan_dates",
    default_config={"lexicon_dir": None, "header_chars": 600},
)
def make_dates(nlp: Language, name: str, lexicon_dir: str | None, header_chars: int):
    """Swedish temporal expressions → ``doc._.dates`` (and ``doc._.document_date`` when inferred)."""
    return DatesComponent(load_lexicon(lexicon_dir), header_chars)


class DatesComponent:
    def __init__(self, lex: Lexicon, header_chars: int = 600):
        self.finder = DateFinder(lex)
        self.header_chars = header_chars

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        skip = doc._.boilerplate_spans or []
        anchor = doc._.document_date
        if anchor is None and doc._.infer_date:
            first = self.finder.find(text, None)
            anchor = infer_document_date(text, first, self.header_chars)
            doc._.document_date = anchor
        found = [m for m in self.finder.find(text, anchor) if not any(s <= m.start_char < e for s, e in skip)]
        doc._.date_mentions = found
        doc._.dates = [m.to_record() for m in dedupe(found)]
        return doc


def due_string(mt: DateMatch) -> str | None:
    """The ``ActionPoint.due`` form of a date: ISO day, ISO week, ISO month, year, or ``--MM``."""
    if mt.start is None:
        return f"--{mt.month:02d}" if mt.month else None
    d = mt.end if mt.is_deadline and mt.end else mt.start
    if mt.granularity == "day":
        return d.isoformat()
    if mt.granularity == "week":
        iso = d.isocalendar()
        return f"{iso[0]}-W{iso[1]:02d}"
    if mt.granularity in ("month", "part_of_month", "season"):
        return f"{mt.start.year}-{mt.start.month:02d}"
    if mt.granularity == "year":
        return str(d.year)
    return d.isoformat()


__all__ = ["DateFinder", "DateMatch", "infer_document_date", "due_string", "dedupe"]
