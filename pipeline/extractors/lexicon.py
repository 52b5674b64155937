"""Read the extraction lexicons (plain data files in ``pipeline/lexicons/``) into one object."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "lexicons"


_SHORT_PREFIX = re.compile(r"[a-zåäö]{2,4}-")


def _lines(path: Path) -> list[str]:
    if not path.exists():
        logger.warning("lexicon file missing: %s", path)
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _rows(path: Path, sep: str = "|") -> list[list[str]]:
    return [[part.strip() for part in line.split(sep)] for line in _lines(path)]


@dataclass
class Lexicon:
    """All word lists used by the extractors, lower-cased where matching is case-insensitive."""

    directory: Path
    role_forms: dict[str, str] = field(default_factory=dict)  # any form (lower) -> singular
    role_modifiers: set[str] = field(default_factory=set)
    first_names: set[str] = field(default_factory=set)
    nicknames: dict[str, list[str]] = field(default_factory=dict)  # lower nickname -> full first names
    org_suffixes: dict[str, str] = field(default_factory=dict)  # any form (lower) -> indefinite
    org_definite_only: set[str] = field(default_factory=set)
    org_nouns: set[str] = field(default_factory=set)
    org_anaphors: dict[str, str] = field(default_factory=dict)
    org_type_nouns: set[str] = field(default_factory=set)
    org_stopwords: set[str] = field(default_factory=set)
    known_orgs: list[tuple[str, list[str]]] = field(default_factory=list)
    places: set[str] = field(default_factory=set)
    months: dict[str, int] = field(default_factory=dict)
    weekdays: dict[str, int] = field(default_factory=dict)
    seasons: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # form -> (season, m1, m2)
    holidays: dict[str, tuple[int, int]] = field(default_factory=dict)
    action_cues: list[tuple[str, re.Pattern]] = field(default_factory=list)
    reporting_verbs: set[str] = field(default_factory=set)
    recipient_words: set[str] = field(default_factory=set)
    group_nouns: set[str] = field(default_factory=set)
    attendee_headings: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    secretary_labels: set[str] = field(default_factory=set)
    parties: dict[str, str] = field(default_factory=dict)  # abbreviation (case-sensitive) -> name
    boilerplate: list[re.Pattern] = field(default_factory=list)

    def role_singular(self, word: str) -> str | None:
        """The singular role for a (possibly compound, plural or definite) role word, else None.

        ``funktionshinderombudspersoner`` → ``funktionshinderombudsperson``.
        """
        low = word.lower().strip(".,:;")
        if low in self.role_forms:
            return self.role_forms[low]
        # compound: longest known form that ends the word, prefix of 3+ letters
        for form in self._role_forms_by_length:
            if low.endswith(form) and len(low) - len(form) >= 3:
                prefix = low[: len(low) - len(form)]
                if prefix.endswith("-") and not _SHORT_PREFIX.fullmatch(prefix):
                    continue  # a hyphenated name part; a short prefix is a role's ("LSS-samordnare", "IT-chef")
                return prefix + self.role_forms[form]
        return None

    def org_suffix(self, word: str) -> tuple[str, bool] | None:
        """(indefinite suffix, is_definite) when ``word`` ends in an organisation head, else None."""
        low = word.lower()
        for form in self._org_forms_by_length:
            if low.endswith(form) and (len(low) - len(form) >= 3 or low == form):
                indefinite = self.org_suffixes[form]
                return indefinite, form != indefinite
        return None

    @functools.cached_property
    def _role_forms_by_length(self) -> list[str]:
        return sorted((f for f in self.role_forms if " " not in f and len(f) >= 4), key=len, reverse=True)

    @functools.cached_property
    def _org_forms_by_length(self) -> list[str]:
        return sorted(self.org_suffixes, key=len, reverse=True)

    @functools.cached_property
    def first_name_lower(self) -> set[str]:
        return {n.lower() for n in self.first_names}


@functools.lru_cache(maxsize=8)
def load_lexicon(directory: str | Path | None = None) -> Lexicon:
    """Load every lexicon file from ``directory`` (default: ``pipeline/lexicons``)."""
    d = Path(directory) if directory else DEFAULT_DIR
    lex = Lexicon(directory=d)
    for row in _rows(d / "roles.txt"):
        singular = row[0].lower()
        for form in row:
            lex.role_forms.setdefault(form.lower(), singular)
    lex.role_modifiers = {w.lower() for w in _lines(d / "role_modifiers.txt")}
    lex.first_names = set(_lines(d / "first_names.txt"))
    for row in _rows(d / "nicknames.txt"):
        if len(row) > 1:
            lex.nicknames[row[0].lower()] = row[1:]
    for row in _rows(d / "org_suffixes.txt"):
        if row[-1] == "definite-only":
            row = row[:-1]
            lex.org_definite_only.add(row[0].lower())
        for form in row:
            lex.org_suffixes.setdefault(form.lower(), row[0].lower())
    lex.org_nouns = {w.lower() for w in _lines(d / "org_nouns.txt")}
    lex.org_anaphors = {r[0].lower(): r[1].lower() for r in _rows(d / "org_anaphors.txt") if len(r) > 1}
    lex.org_type_nouns = {w.lower() for w in _lines(d / "org_type_nouns.txt")}
    lex.org_stopwords = {w.lower() for w in _lines(d / "org_stopwords.txt")}
    lex.known_orgs = [(r[0], r[1:]) for r in _rows(d / "known_orgs.txt")]
    lex.places = set(_lines(d / "places.txt"))
    for row in _rows(d / "months.txt"):
        for form in row[1:]:
            lex.months[form.lower()] = int(row[0])
    for row in _rows(d / "weekdays.txt"):
        for form in row[1:]:
            lex.weekdays[form.lower()] = int(row[0])
    for row in _rows(d / "seasons.txt"):
        for form in row[3:]:
            lex.seasons[form.lower()] = (row[0], int(row[1]), int(row[2]))
    for row in _rows(d / "holidays.txt"):
        month, day = (int(x) for x in row[0].split("-"))
        for name in row[1:]:
            lex.holidays[name.lower()] = (month, day)
    for line in _lines(d / "action_cues.txt"):
        tag, _, pattern = line.partition("\t")
        lex.action_cues.append((tag.strip(), re.compile(pattern.strip(), re.IGNORECASE)))
    lex.reporting_verbs = {w.lower() for w in _lines(d / "reporting_verbs.txt")}
    lex.recipient_words = {w.lower() for w in _lines(d / "recipient_words.txt")}
    lex.group_nouns = {w.lower() for w in _lines(d / "group_nouns.txt")}
    for row in _rows(d / "attendee_headings.txt"):
        role = None if row[1] in ("", "-") else row[1]
        lex.attendee_headings[row[0].lower()] = (role, row[2].lower() == "true")
    lex.secretary_labels = {w.lower() for w in _lines(d / "secretary_labels.txt")}
    lex.parties = {r[0]: r[1] for r in _rows(d / "parties.txt") if len(r) > 1}
    lex.boilerplate = [re.compile(p, re.IGNORECASE) for p in _lines(d / "boilerplate.txt")]
    return lex
