#!/usr/bin/env python3
"""Score samverkan's extraction against a gold directory: P/R/F1 per field.

Usage: bench/eval_extraction.py GOLD_DIR [SAMPLES_DIR] [--model PATH|blank] [-v]

GOLD_DIR holds ``NNN_slug.json`` files in the gold format; the texts are ``NNN_slug.txt`` in SAMPLES_DIR
(default: GOLD_DIR itself). Required gold items count for recall; a prediction that matches only an
optional item is neither right nor wrong.

Matching:
- people: same person if a name or alias agrees (case-insensitive); correct if role and organisation
  also agree (role: equal or fuzzy ≥ 85; organisation: equal to the gold organisation or one of its aliases).
- organisations: a name or alias agrees; one prediction per gold organisation (duplicates are wrong).
- dates: same ISO start and end, and the texts overlap (gold without a year: month and text agree).
- action points: token Dice overlap ≥ 0.5; assignees scored on each found required action point.
- meeting: title (fuzzy ≥ 80), date and secretary, on pages whose gold has minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rapidfuzz import fuzz

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def norm(s: str | None) -> str:
    if s is None:
        return ""
    s = s.replace("“", '"').replace("”", '"').replace("’", "'")
    return re.sub(r"\s+", " ", s).strip(" .,;:").lower()


def tokens(s: str) -> list[str]:
    return re.findall(r"[\wåäöéü]+", (s or "").lower())


def dice(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    common = 0
    pool = list(tb)
    for t in ta:
        if t in pool:
            pool.remove(t)
            common += 1
    return 2 * common / (len(ta) + len(tb))


@dataclass
class Score:
    tp: int = 0  # predictions that are right
    fp: int = 0
    found: int = 0  # required gold items found
    required: int = 0
    misses: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def count_required(self, gold: list[dict], used, label) -> None:
        """Count required gold items for recall: found when their index is in ``used``."""
        for i, g in enumerate(gold):
            if g.get("required", True):
                self.required += 1
                if i in used:
                    self.found += 1
                else:
                    self.misses.append(label(g))

    def add(self, other: "Score") -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.found += other.found
        self.required += other.required
        self.misses += other.misses
        self.wrong += other.wrong

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.required if self.required else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def org_forms(orgs: list[dict]) -> list[set[str]]:
    return [{norm(o["name"]), *(norm(a) for a in o.get("aliases") or [])} for o in orgs]


def _forms_of(name: str | None, clusters: list[set[str]]) -> set[str]:
    if not name:
        return set()
    n = norm(name)
    for c in clusters:
        if n in c:
            return c | {n}
    return {n}


def score_orgs(gold: list[dict], pred: list[dict]) -> Score:
    sc = Score()
    gforms = org_forms(gold)
    used: set[int] = set()
    for p in pred:
        pf = {norm(p["name"]), *(norm(a) for a in p.get("aliases") or [])}
        hits = [i for i, g in enumerate(gforms) if pf & g]
        free = [i for i in hits if i not in used]
        if free:
            i = free[0]
            used.add(i)
            if gold[i].get("required", True):
                sc.tp += 1
        elif hits and not any(gold[i].get("required", True) for i in hits):
            pass  # another form of an optional organisation
        else:
            sc.fp += 1
            sc.wrong.append(p["name"])
    sc.count_required(gold, used, lambda g: g["name"])
    return sc


def role_ok(g: str | None, p: str | None) -> bool:
    if not g and not p:
        return True
    if not g or not p:
        return False
    g, p = norm(g), norm(p)
    return g == p or fuzz.ratio(g, p) >= 85


def score_people(gold: list[dict], pred: list[dict], gold_orgs: list[dict], pred_orgs: list[dict],
                 strict: bool = True) -> Score:
    sc = Score()
    gclusters, pclusters = org_forms(gold_orgs), org_forms(pred_orgs)
    used: set[int] = set()
    for p in pred:
        pf = {norm(p["name"]), *(norm(a) for a in p.get("aliases") or [])}
        hits = [i for i, g in enumerate(gold) if pf & {norm(g["name"]), *(norm(a) for a in g.get("aliases") or [])}]
        if not hits:
            sc.fp += 1
            sc.wrong.append(f"{p['name']} (not in gold)")
            continue
        i = next((h for h in hits if h not in used), hits[0])
        g = gold[i]
        if not g.get("required", True):
            used.add(i)
            continue
        if i in used:
            sc.fp += 1
            sc.wrong.append(f"{p['name']} (duplicate)")
            continue
        used.add(i)
        ok = True
        if strict:
            r_ok = role_ok(g.get("role"), p.get("role"))
            gorg, porg = g.get("organisation"), p.get("organisation")
            o_ok = (not gorg and not porg) or bool(gorg and porg and (_forms_of(gorg, gclusters) & _forms_of(porg, pclusters)))
            ok = r_ok and o_ok
            if not ok:
                sc.wrong.append(f"{p['name']}: role {p.get('role')!r} vs {g.get('role')!r}; org {porg!r} vs {gorg!r}")
        if ok:
            sc.tp += 1
            sc.found += 1
        else:
            sc.fp += 1
    for i, g in enumerate(gold):
        if g.get("required", True):
            sc.required += 1
            if i not in used:
                sc.misses.append(g["name"])
    return sc


def _d(s):
    return date.fromisoformat(s) if s else None


def score_dates(gold: list[dict], pred: list[dict]) -> Score:
    sc = Score()
    used: set[int] = set()

    def match(g, p) -> bool:
        text_ok = dice(g["text"], p["text"]) > 0 or norm(g["text"]) in norm(p["text"]) or norm(p["text"]) in norm(g["text"])
        if "start" in g:
            return text_ok and _d(g["start"]) == _d(p.get("start")) and _d(g["end"]) == _d(p.get("end"))
        ps = _d(p.get("start"))
        if not text_ok:
            return False
        if ps is None:
            return True
        return ps.month == g.get("month") and (g.get("year") is None or ps.year == g["year"])

    for p in pred:
        hits = [i for i, g in enumerate(gold) if match(g, p)]
        free = [i for i in hits if i not in used]
        if free:
            used.add(free[0])
            if gold[free[0]].get("required", True):
                sc.tp += 1
        elif hits:
            if any(gold[i].get("required", True) for i in hits):
                sc.fp += 1
                sc.wrong.append(f"{p['text']} (duplicate)")
        else:
            # an optional gold item with the same text (any value) is neutral
            if any(not g.get("required", True) and dice(g["text"], p["text"]) >= 0.5 for g in gold):
                continue
            sc.fp += 1
            sc.wrong.append(f"{p['text']} → {p.get('start')}..{p.get('end')}")
    sc.count_required(gold, used, lambda g: f"{g['text']} ({g.get('start', g.get('month'))})")
    return sc


def _due_range(s: str | None):
    if not s:
        return None
    s = s.strip()
    if s == "next meeting":
        return ("next", None)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        d = date.fromisoformat(s)
        return (d, d)
    if re.fullmatch(r"\d{4}-\d{2}", s):
        y, m = map(int, s.split("-"))
        return (date(y, m, 1), date(y + (m == 12), m % 12 + 1, 1))
    if re.fullmatch(r"\d{4}-W\d{2}", s):
        y, w = int(s[:4]), int(s[6:])
        return (date.fromisocalendar(y, w, 1), date.fromisocalendar(y, w, 7))
    if re.fullmatch(r"\d{4}", s):
        return (date(int(s), 1, 1), date(int(s), 12, 31))
    if re.fullmatch(r"-*\d{1,2}", s):
        return ("month", int(s.strip("-")))
    return (s, None)


def due_ok(g: str | None, p: str | None) -> bool:
    rg, rp = _due_range(g), _due_range(p)
    if rg is None or rp is None:
        return rg is None and rp is None
    if isinstance(rg[0], date) and isinstance(rp[0], date):
        return rg[0] <= rp[0] <= rg[1] or rp[0] <= rg[0] <= rp[1]
    return rg == rp


def score_actions(gold: list[dict], pred: list[dict], gold_doc: dict, pred_doc: dict) -> tuple[Score, Score, list[int]]:
    sc, asg = Score(), Score()
    due = [0, 0]
    best_for_gold: dict[int, tuple[float, dict]] = {}
    gclusters = org_forms(gold_doc.get("organisations", [])) + [
        {norm(p["name"]), *(norm(a) for a in p.get("aliases") or [])} for p in gold_doc.get("people", [])]
    pclusters = org_forms(pred_doc.get("organisations", [])) + [
        {norm(p["name"]), *(norm(a) for a in p.get("aliases") or [])} for p in pred_doc.get("people", [])]
    for p in pred:
        scores = [(dice(g["text"], p["text"]), i) for i, g in enumerate(gold)]
        good = [(s, i) for s, i in scores if s >= 0.5]
        if not good:
            sc.fp += 1
            sc.wrong.append(p["text"])
            continue
        s, i = max(good)
        req = [(s2, i2) for s2, i2 in good if gold[i2].get("required", True)]
        if req:
            sc.tp += 1
            for s2, i2 in req:
                if i2 not in best_for_gold or s2 > best_for_gold[i2][0]:
                    best_for_gold[i2] = (s2, p)
    for i, g in enumerate(gold):
        if not g.get("required", True):
            continue
        sc.required += 1
        if i not in best_for_gold:
            sc.misses.append(g["text"])
            continue
        sc.found += 1
        p = best_for_gold[i][1]
        due[1] += 1
        due[0] += due_ok(g.get("due"), p.get("due"))
        gset = [_forms_of(a, gclusters) for a in g.get("assignees") or []]
        pset = [_forms_of(a, pclusters) for a in p.get("assignees") or []]
        matched = set()
        for pf in pset:
            hit = next((k for k, gf in enumerate(gset) if k not in matched and gf & pf), None)
            if hit is None:
                asg.fp += 1
                asg.wrong.append(f"{sorted(pf)[0]} in: {g['text'][:60]}")
            else:
                matched.add(hit)
                asg.tp += 1
        asg.required += len(gset)
        asg.found += len(matched)
        for k, gf in enumerate(gset):
            if k not in matched:
                asg.misses.append(f"{g['assignees'][k]} in: {g['text'][:60]}")
    return sc, asg, due


def score_meeting(gold: dict | None, pred: dict | None) -> tuple[int, int]:
    if not gold:
        return (0, 1) if pred else (0, 0)
    if not pred:
        return 0, 3
    ok = 0
    ok += fuzz.ratio(norm(gold.get("title")), norm(pred.get("title"))) >= 80
    ok += gold.get("date") == pred.get("date")
    ok += norm(gold.get("secretary")) == norm(pred.get("secretary"))
    return ok, 3


def evaluate(gold_dir: Path, samples_dir: Path | None, nlp, verbose: bool = False) -> dict:
    """Run the extraction on every gold page; return per-field Scores (and print nothing)."""
    from pipeline import nlp as nlp_stage

    samples_dir = samples_dir or gold_dir
    fields = {k: Score() for k in ("people", "people_names", "organisations", "dates", "action_points", "assignees")}
    meeting = [0, 0]
    due = [0, 0]
    docdate = [0, 0]
    boiler = Score()
    per_doc = {}
    for gpath in sorted(gold_dir.glob("*.json")):
        gold = json.loads(gpath.read_text(encoding="utf-8"))
        tpath = samples_dir / (gold.get("doc") or gpath.with_suffix(".txt").name)
        if not tpath.exists():
            continue
        pred = nlp_stage.extract_text(nlp, tpath.read_text(encoding="utf-8")).to_json()
        s = {
            "people": score_people(gold.get("people", []), pred["people"], gold.get("organisations", []), pred["organisations"]),
            "people_names": score_people(gold.get("people", []), pred["people"], gold.get("organisations", []), pred["organisations"], strict=False),
            "organisations": score_orgs(gold.get("organisations", []), pred["organisations"]),
            "dates": score_dates(gold.get("dates", []), pred["dates"]),
        }
        s["action_points"], s["assignees"], d = score_actions(gold.get("action_points", []), pred["action_points"], gold, pred)
        for k, v in s.items():
            fields[k].add(v)
        due[0] += d[0]
        due[1] += d[1]
        m = score_meeting(gold.get("meeting"), pred.get("meeting"))
        meeting[0] += m[0]
        meeting[1] += m[1]
        docdate[0] += gold.get("document_date") == pred.get("document_date")
        docdate[1] += 1
        gb = {norm(b) for b in gold.get("boilerplate", [])}
        pb = {norm(b) for b in pred.get("boilerplate", [])}
        boiler.add(Score(tp=len(gb & pb), fp=len(pb - gb), found=len(gb & pb), required=len(gb),
                         misses=sorted(gb - pb), wrong=sorted(pb - gb)))
        per_doc[gpath.stem] = (s, pred)
    return {"fields": fields, "meeting": meeting, "due": due, "document_date": docdate, "boilerplate": boiler,
            "per_doc": per_doc}


def print_table(result: dict, title: str, verbose: bool = False) -> None:
    print(f"\n{title}")
    print(f"{'field':<16}{'P':>7}{'R':>7}{'F1':>7}{'found':>8}{'req':>6}{'right':>7}{'wrong':>7}")
    for k, v in result["fields"].items():
        print(f"{k:<16}{v.precision:>7.3f}{v.recall:>7.3f}{v.f1:>7.3f}{v.found:>8}{v.required:>6}{v.tp:>7}{v.fp:>7}")
    b = result["boilerplate"]
    print(f"{'boilerplate':<16}{b.precision:>7.3f}{b.recall:>7.3f}{b.f1:>7.3f}{b.found:>8}{b.required:>6}{b.tp:>7}{b.fp:>7}")
    for k in ("document_date", "meeting", "due"):
        ok, n = result[k]
        print(f"{k:<16} {ok}/{n} correct" + (f" ({ok / n:.3f})" if n else ""))
    if verbose:
        for doc, (s, _) in result["per_doc"].items():
            lines = []
            for k, v in s.items():
                if k == "people_names":
                    continue
                for miss in v.misses:
                    lines.append(f"  {k} MISSED: {miss}")
                for w in v.wrong:
                    lines.append(f"  {k} WRONG:  {w}")
            if lines:
                print(f"-- {doc}")
                print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gold_dir", type=Path)
    ap.add_argument("samples_dir", type=Path, nargs="?")
    ap.add_argument("--model", default=None, help="spaCy pipeline (default models/sv_samverkan; 'blank' for rules only)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list misses and wrong predictions per page")
    args = ap.parse_args(argv)
    from pipeline import nlp as nlp_stage

    nlp = nlp_stage.load(args.model)
    result = evaluate(args.gold_dir, args.samples_dir, nlp, args.verbose)
    model = "blank (rules only)" if "ner" not in nlp.pipe_names else (args.model or "models/sv_samverkan")
    print_table(result, f"Extraction vs {args.gold_dir} ({len(result['per_doc'])} pages, model: {model})", args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
