"""Action points: sentences that commit someone to do something, with assignees and a due date.

A sentence is an action point when it carries a cue from ``action_cues.txt`` (modal "ska"/"kommer att",
"får i uppdrag", "bordläggs", "beslutar att", "senast", "planerar", "jobbar vidare", …), names a person who
does something in the present tense ("Pelle bokar lokal"), is a bullet in a list of commitments, or states
something that will happen after the document date. Questions, quotes, headings and label lines are not.
Assignees are the people/organisations/groups the sentence gives the task to (recipients after "till",
"för", … are not; the reporter of "X berättade att …" is not); with a parse, the subject of the cue verb
is preferred. The due date is the deadline ("senast …"), else the date in the sentence, else "next meeting".
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from spacy.language import Language
from spacy.tokens import Doc

from pipeline.extractors.dates import DateMatch, due_string, told_in_past
from pipeline.extractors.lexicon import Lexicon, load_lexicon
from pipeline.extractors.text import UPPER, Sentence, lines, sentences, word_tokens
from pipeline.records import ActionPoint

logger = logging.getLogger(__name__)

_BULLET = re.compile(r"^\s*[•·*▪◦●\-]\s+")
_QUOTE = re.compile(r"^\s*[–—\"”“]")
_LABEL = re.compile(r"^[\wåäöÅÄÖ .]{2,30}:\s")
_RESPONSIBLE = re.compile(r"^(ansvarig|ansvariga|ansvar)\s*:\s*", re.IGNORECASE)
_ACTION_LABEL = re.compile(r"^(beslut|åtgärd|åtgärder|ansvarig|ansvar|uppdrag|att göra|to do)\s*:", re.IGNORECASE)
_NOT_COMMIT = re.compile(
    r"\b(syftet|målet|mål|tanken|ambitionen|avsikten|meningen|visionen|önskan|idén)\s+(?:är|var|med\s+\w+\s+är)?\s*(?:att|om att)\b",
    re.IGNORECASE,
)
_SUBORDINATE_MODAL = re.compile(r"\b(som|där|vilket|vilka|när|eftersom|om|att|hur)\s+(?:\S+\s+){0,2}(ska|skall|kommer att|bör|måste|behöver)\b",
                                re.IGNORECASE)
_NEXT_MEETING = re.compile(r"\bnästa\s+(möte|mötet|sammanträde|sammanträdet|träff|träffen|styrelsemöte|gruppmöte)\b", re.IGNORECASE)
_ANAPHORIC_START = re.compile(r"^(frågan|ärendet|punkten|den|det|detta|denna|dessa|han|hon|de|uppdraget)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"^(Hon|Han)\b")
_TASK_COLUMNS = {"vad", "åtgärd", "åtgärder", "uppgift", "uppgifter", "aktivitet", "att göra", "uppdrag"}
_WHO_COLUMNS = {"ansvarig", "ansvariga", "vem", "ansvar", "vem gör"}
_WHEN_COLUMNS = {"klart senast", "klart", "när", "datum", "senast", "deadline", "klart till", "tidplan"}
_NON_VERBS = {"är", "har", "var", "hade", "blir", "kan", "ska", "vill", "får", "och", "eller", "som", "för", "per", "år"}


@dataclass
class Candidate:
    start: int
    end: int
    text: str
    paragraph: int
    tags: set[str] = field(default_factory=set)
    assignees: list[str] = field(default_factory=list)
    due: str | None = None
    due_match: DateMatch | None = None
    responsible: tuple[int, int] | None = None
    due_from: tuple[int, int] | None = None  # where the due date is written, when not in the text itself
    lead: Candidate | None = None  # "Arbetsgruppen ska:" above a bulleted task: who, and by when


class ActionFinder:
    def __init__(self, lex: Lexicon):
        self.lex = lex
        self.report = re.compile(
            r"\b(" + "|".join(map(re.escape, sorted(lex.reporting_verbs, key=len, reverse=True))) + r")\s+(?:om\s+)?att\b",
            re.IGNORECASE,
        )
        # after the subject: its surname if the subject was found by first name, then "informerade (om) att"
        self.report_after_subject = re.compile(
            rf"(?:\s+[{UPPER}][\w'’-]*){{0,2}}\s+(?:också\s+|även\s+)?("
            + "|".join(map(re.escape, sorted(lex.reporting_verbs, key=len, reverse=True)))
            + r")\s+(?:också\s+|även\s+)?(?:om\s+)?att\b"
        )

    # -- which sentences ------------------------------------------------------------------------------------
    def tags(self, doc: Doc, sent: Sentence, text: str, is_bullet: bool) -> set[str]:
        found: set[str] = set()
        low = text.lower()
        if text.rstrip().endswith("?"):
            return found
        for tag, pat in self.lex.action_cues:
            m = pat.search(text)
            if not m:
                continue
            if tag == "modal":
                ok = False
                for mm in pat.finditer(text):
                    pre = text[: mm.start()]
                    if _SUBORDINATE_MODAL.search(text[max(0, mm.start() - 40): mm.end()]) and \
                            _SUBORDINATE_MODAL.search(text[max(0, mm.start() - 40): mm.end()]).end() >= len(text[max(0, mm.start() - 40): mm.end()]) - 1:
                        continue
                    if _NOT_COMMIT.search(pre):
                        continue
                    if re.search(r"\b(hur|varför|vad)\s+\S*\s*$", pre, re.IGNORECASE):
                        continue
                    ok = True
                    break
                if not ok:
                    continue
            found.add(tag)
        if is_bullet and len(word_tokens(text)) >= 5:
            found.add("bullet")
        anchor = doc._.document_date
        dates = [d for d in doc._.date_mentions or [] if sent.start <= d.start_char < sent.end]
        covered = sum(d.end_char - d.start_char for d in dates)
        if anchor and dates and covered < 0.6 * len(text):
            if any(d.start and d.start > anchor and d.granularity != "relative" for d in dates) and len(word_tokens(text)) >= 5 \
                    and not told_in_past(text):
                found.add("future")
        # "Per tar fram …", "Hasse och Rickard sammanställer …": a person doing something now
        pm = self._person_subject_verb(doc, sent)
        if pm:
            found.add("person")
        if _NOT_COMMIT.search(low) and found <= {"modal"}:
            found.clear()
        if found and not found & {"deadline", "assign"} and self._reported(doc, sent):
            # news someone brought ("Lina informerade om att … öppnar i december"), without a deadline or
            # an assignment: context for the next sentence's assignee, not an action point itself
            return {"reported"}
        return found

    @staticmethod
    def _people_subject_end(doc: Doc, sent: Sentence) -> int | None:
        """End of the people the sentence starts with ("Per", "Hasse och Rickard"), or None."""
        spans = [(s, e) for s, e, _ in doc._.person_spans or [] if sent.start <= s < sent.end]
        if not spans or spans[0][0] != sent.start:
            return None
        pos = spans[0][1]
        for s, e in spans[1:]:
            if re.fullmatch(r"\s*(,|och)\s*", doc.text[pos:s]):
                pos = e
            else:
                break
        return pos

    def _person_subject_verb(self, doc: Doc, sent: Sentence) -> bool:
        pos = self._people_subject_end(doc, sent)
        m = re.match(r"\s+([a-zåäö]+)\b", doc.text[pos: sent.end]) if pos is not None else None
        if not m:
            return False
        verb = m.group(1)
        return verb not in _NON_VERBS and verb not in self.lex.reporting_verbs and verb.endswith("r") and not verb.endswith("ar" + "e")

    def _reported(self, doc: Doc, sent: Sentence) -> bool:
        """Whether the sentence reports what someone said ("Lina informerade om att …", "Han berättade att …")."""
        pos = self._people_subject_end(doc, sent)
        if pos is None:
            pronoun = re.match(r"\s*(han|hon|de)\b", doc.text[sent.start: sent.end], re.IGNORECASE)
            if not pronoun:
                return False
            pos = sent.start + pronoun.end()
        return bool(self.report_after_subject.match(doc.text[pos: sent.end]))

    # -- assignees --------------------------------------------------------------------------------------------
    def assignees(self, doc: Doc, cand: Candidate, people) -> list[str]:
        text = doc.text
        s0, e0 = cand.start, cand.end
        seg = text[s0:e0]
        items: list[tuple[int, str, str]] = []  # (offset, name, kind)
        for s, e, idx in doc._.person_spans or []:
            if s0 <= s < e0:
                items.append((s, people[idx].name, "person"))
        org_spans = [(s, e, i) for s, e, i in doc._.org_spans or [] if s0 <= s < e0]
        for s, e, i in org_spans:
            if any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in org_spans):
                continue  # nested in a longer name
            if any(ps <= s < pe for ps, pe, _ in doc._.person_spans or []):
                continue
            items.append((s, doc._.org_clusters[i].name, "org"))
        items.sort()
        # "X har gett Y i uppdrag": only Y
        gm = re.search(r"\b(gett|ger|gav|givit|ge)\s+(.+?)\s+i uppdrag\b", seg)
        if gm:
            items = [it for it in items if s0 + gm.start(2) <= it[0] < s0 + gm.end(2)]
        # "X berättade att …": not X
        rm = self.report.search(seg)
        if rm:
            after = [it for it in items if it[0] >= s0 + rm.end()]
            items = after
        # decisions: only who the decision names after "beslutar att"
        dm = re.search(r"\b(beslutar|beslutade|beslutat|beslöt|beslutades|beslutas)\s+(att|om)\b", seg, re.IGNORECASE)
        if dm:
            after_decision = [it for it in items if it[0] >= s0 + dm.end()]
            # "Region X har beslutat att se över …": a named decider does it itself; a board deciding does not
            items = after_decision or [it for it in items if it[0] < s0 + dm.start()]
        kept: list[str] = []
        kept_at: list[tuple[int, str]] = []
        for off, name, kind in items:
            pre = text[max(s0, off - 40): off]
            words = re.findall(r"[\wåäö\-]+", pre.lower())
            if re.search(r"(samråd|samarbete|dialog)\s+med\s+$", pre.lower()):
                continue
            recent = words[-3:]
            if "att" in recent:
                recent = recent[recent.index("att") + 1:]
            if any(w in self.lex.recipient_words for w in recent):
                # "bjuda in X", "till Y", "för Z" … but "i" alone does not make a recipient
                if not (recent and recent[-1] in ("med",)):
                    continue
            if pre.rstrip().endswith(("(", "-")):
                continue
            if name not in kept:
                kept.append(name)
                kept_at.append((off, name))
        kept = self._prefer_subjects(doc, kept_at) if doc.has_annotation("DEP") else kept
        persons = [n for n in kept if any(p.name == n for p in people)]
        first_word = re.match(r"\s*([\wåäöÅÄÖ\-]+)", seg)
        if first_word and not dm:
            w = first_word.group(1)
            low = w.lower()
            role = self.lex.role_singular(w) if w[0].isupper() else None
            if _PRONOUN.match(seg.lstrip()):
                prev = [(s, idx) for s, e, idx in doc._.person_spans or [] if s < s0]
                if prev:
                    name = people[max(prev)[1]].name
                    if name not in kept:
                        kept.insert(0, name)
            elif role and low != role:  # "Förbundschefen får i uppdrag" → the person with that role
                holders = [p.name for p in people if p.role and p.role.split()[-1] == role]
                if len(holders) == 1 and holders[0] not in kept:
                    kept.insert(0, holders[0])
            elif low in self.lex.group_nouns and not persons and not any(
                    s0 <= s < s0 + len(w) + 2 for s, _, _ in doc._.org_spans or []):
                kept.insert(0, w)
        return kept

    @staticmethod
    def _prefer_subjects(doc: Doc, kept_at: list[tuple[int, str]]) -> list[str]:
        """With a dependency parse: when some named assignee is a subject (or passive agent), drop the
        ones that are only objects ("… bjuda in X", "DRW stödjer staden")."""
        def role(off: int) -> str:
            span = doc.char_span(off, off + 1, alignment_mode="expand")
            if span is None:
                return "other"
            tok = span[0]
            seen = 0
            while tok.dep_ in ("flat:name", "flat", "compound", "conj", "appos", "nmod:poss", "amod", "advmod") \
                    and tok.head is not tok and seen < 6:
                if tok.dep_ == "conj" and tok.head.dep_.startswith(("nsubj", "obl:agent")):
                    return "subject"
                tok, seen = tok.head, seen + 1
            if tok.dep_.startswith("nsubj") or tok.dep_ == "obl:agent":
                return "subject"
            if tok.dep_ in ("obj", "iobj") or tok.dep_.startswith("nmod"):
                return "object"
            return "other"

        roles = [role(off) for off, _ in kept_at]
        for k in range(1, len(roles)):  # "X och Y": Y shares X's role whatever the parse says
            gap = doc.text[kept_at[k - 1][0]: kept_at[k][0]]
            if roles[k - 1] == "subject" and len(gap) < 60 and re.search(r"\s(och|samt)\s+$", gap) and "," not in gap[-3:] \
                    and len(re.findall(r"\s", gap.strip())) <= 4:
                roles[k] = "subject"
        if "subject" not in roles:
            return [name for _, name in kept_at]
        return [name for (_, name), r in zip(kept_at, roles) if r != "object"]

    def due(self, doc: Doc, cand: Candidate) -> tuple[str | None, DateMatch | None]:
        dates = [d for d in doc._.date_mentions or [] if cand.start <= d.start_char < cand.end and d.granularity != "relative"]
        if dates:
            pick = next((d for d in dates if d.is_deadline), None) or dates[-1 if len(dates) > 1 and dates[0].start and doc._.document_date and dates[0].start <= doc._.document_date else 0]
            return due_string(pick), pick
        if _NEXT_MEETING.search(cand.text):
            return "next meeting", None
        return None, None


@dataclass
class TableRow:
    """One row of a task table: the task cell, and the "who" and "when" cells when the table has them."""

    line: tuple[int, int]
    task: tuple[int, int]
    who: tuple[int, int] | None
    when: tuple[int, int] | None
    paragraph: int


def _cells(line) -> list[tuple[int, int, str]]:
    """The " | "-separated cells of a line (as the clean stage renders table rows), with offsets."""
    out, pos = [], line.start
    for raw in line.text.split("|"):
        lead = len(raw) - len(raw.lstrip())
        cell = raw.strip()
        out.append((pos + lead, pos + lead + len(cell), cell))
        pos += len(raw) + 1
    return out


def _column(names: list[str], heads: set[str]) -> int | None:
    return next((i for i, name in enumerate(names) if name in heads), None)


def action_table_rows(all_lines) -> list[TableRow]:
    """Rows of task tables: a header with a task column ("Vad", "Åtgärd") and a "who" ("Ansvarig")
    or "when" ("Klart senast") column, then rows with as many cells, in the same paragraph."""
    rows: list[TableRow] = []
    for i, line in enumerate(all_lines):
        header = _cells(line)
        names = [c[2].lower().rstrip(":") for c in header]
        task, who, when = (_column(names, heads) for heads in (_TASK_COLUMNS, _WHO_COLUMNS, _WHEN_COLUMNS))
        if len(header) < 2 or task is None or (who is None and when is None):
            continue
        for row in all_lines[i + 1:]:
            cells = _cells(row)
            if row.paragraph != line.paragraph or len(cells) != len(header):
                break

            def span(k: int | None) -> tuple[int, int] | None:
                return (cells[k][0], cells[k][1]) if k is not None and cells[k][2] else None

            if span(task):
                rows.append(TableRow((row.start, row.end), span(task), span(who), span(when), row.paragraph))
    return rows


def _table_candidate(text: str, row: TableRow) -> Candidate:
    cand = Candidate(*row.task, text[row.task[0]: row.task[1]], row.paragraph, {"table"})
    cand.responsible, cand.due_from = row.who, row.when
    return cand


def _heading_date(doc: Doc, cand: Candidate, all_lines) -> tuple[str | None, DateMatch | None]:
    """A date in the heading line just above the paragraph ("Planering av nästa möte (13 februari)")."""
    prev = [ln for ln in all_lines if ln.end <= cand.start]
    if not prev:
        return None, None
    head = prev[-1]
    if head.text.endswith((".", "!", "?")) or len(head.text.split()) > 12:
        return None, None
    for d in doc._.date_mentions or []:
        if head.start <= d.start_char < head.end and d.start:
            return due_string(d), d
    return None, None


@Language.factory("samverkan_actions", default_config={"lexicon_dir": None, "merge_short": 6})
def make_actions(nlp: Language, name: str, lexicon_dir: str | None, merge_short: int):
    """Action points with assignees and due dates → ``doc._.action_points``."""
    return ActionsComponent(load_lexicon(lexicon_dir), merge_short)


class ActionsComponent:
    def __init__(self, lex: Lexicon, merge_short: int = 6):
        self.lex = lex
        self.finder = ActionFinder(lex)
        self.merge_short = merge_short

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        skip = list(doc._.boilerplate_spans or [])
        for entry in doc._.attendees or []:
            line_start = text.rfind("\n", 0, entry.start) + 1
            line_end = text.find("\n", entry.end)
            skip.append((line_start, len(text) if line_end < 0 else line_end))
        all_lines = lines(text)
        table_rows = action_table_rows(all_lines)
        table_cands = [_table_candidate(text, row) for row in table_rows]
        skip += [row.line for row in table_rows]
        bullets = {ln.start for ln in all_lines if _BULLET.match(text[ln.start: ln.end])}
        quotes = [(ln.start, ln.end) for ln in all_lines if _QUOTE.match(ln.text)]
        people = doc._.people_internal or []
        cands: list[Candidate] = []
        lead, lead_end = None, 0  # the open "X ska:" whose bullets follow, and where its list has got to
        for sent in sentences(text, skip):
            if lead is not None and (sent.start not in bullets or text[lead_end: sent.start].count("\n") > 1):
                lead = None
            if any(s <= sent.start < e for s, e in quotes):
                continue
            stext = _BULLET.sub("", sent.text)
            offset = sent.start + (len(sent.text) - len(stext))
            is_bullet = sent.start in bullets
            rm = _RESPONSIBLE.match(stext)
            if rm and cands and sent.paragraph - cands[-1].paragraph <= 1:
                last = cands[-1]
                cands[-1] = Candidate(last.start, sent.end, text[last.start: sent.end], last.paragraph, last.tags | {"responsible"})
                cands[-1].responsible = (offset + rm.end(), sent.end)
                continue
            if _LABEL.match(stext) and not _ACTION_LABEL.match(stext):
                continue
            if (sent.line == 0 and not re.search(r"[.!?]$", stext)) or (not is_bullet and not re.search(r"[.!:]$", stext) and len(word_tokens(stext)) <= 12
                                  and not _ACTION_LABEL.match(stext)):
                continue  # the title or a heading
            tags = self.finder.tags(doc, sent, stext, is_bullet)
            if lead is not None and len(word_tokens(stext)) >= 2:
                tags.add("listed")
            if tags == {"future"} and re.search(r"\bkl\.?\s*\d", stext) and any(
                    d.start_char - offset <= 12 for d in doc._.date_mentions or [] if offset <= d.start_char < sent.end):
                tags = set()  # "Onsdag 8 juni kl. 14.00 i …": a meeting time, not a task
            if not tags:
                if cands and self._continues(doc, cands[-1], sent):
                    last = cands[-1]
                    cands[-1] = Candidate(last.start, sent.end, text[last.start: sent.end], last.paragraph, last.tags)
                continue
            s, e, t = offset, sent.end, stext
            # one " – " splits an aside from the commitment: keep the part with the cue
            parts = re.split(r"\s[–—]\s", stext)
            if len(parts) == 2:
                first_tags = self.finder.tags(doc, Sentence(offset, offset + len(parts[0]), parts[0], sent.line, sent.paragraph), parts[0], False)
                if not first_tags - {"person"}:
                    cut = stext.index(parts[1])
                    s, t = offset + cut, parts[1]
            cand = Candidate(s, e, t.strip(), sent.paragraph, tags, lead=lead)
            cands.append(cand)
            if stext.rstrip().endswith(":") and tags & {"modal", "assign", "plan"}:
                cand.tags.add("lead")
                lead = cand
            lead_end = sent.end
        cands = sorted(self._merge(cands, doc) + table_cands, key=lambda c: c.start)
        out: list[ActionPoint] = []
        last: Candidate | None = None
        for c in cands:
            if c.responsible:
                rs, re_ = c.responsible
                sub = Candidate(rs, re_, text[rs:re_], c.paragraph)
                c.assignees = self.finder.assignees(doc, sub, people) or [text[rs:re_].strip(" .")]
            else:
                c.assignees = self.finder.assignees(doc, c, people)
            if not c.assignees and re.search(r"\b\w+(as|s)\b", c.text) and "decide" not in c.tags:
                prev = last
                if prev and len(prev.assignees) == 1 and not re.match(r"^\s*(vi|man)\b", c.text, re.IGNORECASE) and \
                        re.search(r"\b(ska|skall)\s+(\w+\s+)?\w+as\b|\b\w+(as)\b\s+(senast|till|före)", c.text):
                    c.assignees = list(prev.assignees)
            if c.due_from:
                ds, de = c.due_from
                c.due, c.due_match = self.finder.due(doc, Candidate(ds, de, text[ds:de], c.paragraph))
            else:
                c.due, c.due_match = self.finder.due(doc, c)
            if c.lead is not None:  # a bulleted task takes what its lead says it lacks
                c.assignees = c.assignees or c.lead.assignees
                if c.due is None:
                    c.due, c.due_match = c.lead.due, c.lead.due_match
            if c.due is None and "decide" in c.tags:
                c.due, c.due_match = _heading_date(doc, c, all_lines)
            last = c
            if c.tags & {"reported", "lead"}:
                continue
            dm = c.due_match
            out.append(ActionPoint(c.text, c.assignees, c.due, dm.start if dm else None, dm.end if dm else None))
        doc._.action_points = out
        return doc

    def _continues(self, doc: Doc, prev: Candidate, sent: Sentence) -> bool:
        """A non-cue sentence right after a very short action that names who takes part."""
        text = doc.text
        if prev.paragraph != sent.paragraph or text[prev.end: sent.start].strip() or len(word_tokens(prev.text)) > 4:
            return False
        return any(sent.start <= s < sent.end for s, _, _ in doc._.person_spans or [])

    def _merge(self, cands: list[Candidate], doc: Doc) -> list[Candidate]:
        """Join a short follow-up ("Frågan tas upp vid nästa möte.") or a short lead ("Vi bildar en
        arbetsgrupp.") with its neighbour in the same paragraph."""
        out: list[Candidate] = []
        text = doc.text
        for c in cands:
            if out and not out[-1].responsible and not ({"lead", "listed"} & (out[-1].tags | c.tags)):
                p = out[-1]
                adjacent = p.paragraph == c.paragraph and not text[p.end: c.start].strip()
                n_c, n_p = len(word_tokens(c.text)), len(word_tokens(p.text))
                if adjacent and ((n_c <= self.merge_short and _ANAPHORIC_START.match(c.text)) or n_p <= 4):
                    out[-1] = Candidate(p.start, c.end, text[p.start: c.end], p.paragraph, p.tags | c.tags)
                    continue
            out.append(c)
        # a short lead followed by a non-cue sentence that names people ("I första hand är Allan, Per …")
        return out
