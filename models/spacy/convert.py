"""Convert the Swedish corpora in ``models/corpora`` into spaCy DocBin files.

Splits (fixed, no randomness):

* NER (``ner/train_corpus.txt``, one ``token<TAB>tag`` per line, IO tags): sentences are cut into
  contiguous blocks of 50; block ``b`` goes to ``ner-test`` if ``b % 10 == 9`` (reported, never
  trained on or used for model selection), to ``ner-dev`` if ``b % 10 == 4`` (model selection),
  otherwise to ``ner-train``. Adjacent tokens with the same tag form one entity.
* UD: ``sv_talbanken-ud-train-v1-2015.conll`` (UD v1, no lemmas) is harmonised to UD v2 labels and
  becomes ``ud-train``. The current UD dev file is split by document (``# newdoc``): documents at
  even positions (P408, P410, P413, P417) form ``ud-tune`` (lemma training / model selection), the
  others (P409, P411, P414, P418) form ``ud-test`` (reported only).

The v1 → v2 harmonisation uses fixed rules (label renames, AUX for aux/cop verbs, obl for nominal
dependents of predicates, ADV for neuter adjectives used as adverbs) plus a lexicon of (form, XPOS) →
UPOS/features/lemma read from ``ud-tune`` only. v1 tokens get silver lemmas from the same lexicon, the
conventions of current UD seen in ``ud-tune`` (adjectival participles keep a participle lemma, ``-t``
adverbs take their adjective's) and the Swedish lookup table of ``spacy-lookups-data``;
``--no-silver-lemmas`` leaves them missing.

Usage: ``python models/spacy/convert.py CORPORA_DIR OUT_DIR``
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin, Span

logger = logging.getLogger(__name__)

NER_BLOCK = 50
SENTS_PER_DOC = 10
OPEN_CLASS = {"NOUN", "VERB", "ADJ", "ADV"}
NO_SPACE_BEFORE = {",", ".", ":", ";", "!", "?", ")", "]", "}", "%", "...", "…", "”", "»"}
NO_SPACE_AFTER = {"(", "[", "{", "“", "«"}

DEPREL_V1_TO_V2 = {
    "dobj": "obj",
    "nsubjpass": "nsubj:pass",
    "csubjpass": "csubj:pass",
    "auxpass": "aux:pass",
    "neg": "advmod",
    "mwe": "fixed",
    "name": "flat:name",
    "foreign": "flat:foreign",
    "remnant": "orphan",
    "nmod:agent": "obl:agent",
}
PREDICATE_UPOS = {"VERB", "AUX", "ADJ", "ADV"}
FUNCTION_RELATIONS = {"amod", "det", "mark", "cc", "advmod", "case"}


@dataclass
class Token:
    """One CoNLL-U word."""

    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str
    head: int
    deprel: str
    space_after: bool = True


@dataclass
class Sentence:
    """One CoNLL-U sentence with the document it belongs to."""

    tokens: list[Token]
    doc_id: str | None = None
    ents: list[str] = field(default_factory=list)


def read_conllu(path: Path) -> list[Sentence]:
    """Read a CoNLL(-U) file; multi-word and empty-node lines are skipped."""
    sents: list[Sentence] = []
    tokens: list[Token] = []
    doc_id = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# newdoc"):
            doc_id = line.split("=", 1)[1].strip()
        elif line.startswith("#"):
            continue
        elif not line.strip():
            if tokens:
                sents.append(Sentence(tokens, doc_id))
                tokens = []
        else:
            c = line.split("\t")
            if "-" in c[0] or "." in c[0]:
                continue
            space = "SpaceAfter=No" not in c[9]
            tokens.append(Token(c[1], c[2], c[3], c[4], c[5], int(c[6]), c[7], space))
    if tokens:
        sents.append(Sentence(tokens, doc_id))
    return sents


ENT_TYPES = ("PER", "ORG", "LOC", "MISC")


def read_ner(path: Path) -> list[Sentence]:
    """Read the token<TAB>tag NER corpus; soft hyphens are removed from tokens.

    From line 41,122 on, 47,176 lines of the corpus separate token and tag with spaces instead of
    a tab: such a line's last field is its tag when it is one (PER/ORG/LOC/MISC/0); otherwise the
    whole line is the token, tagged 0.
    """
    sents: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if words:
                toks = [Token(w, "", "", "", "_", 0, "") for w in words]
                sents.append(Sentence(toks, None, tags))
                words, tags = [], []
            continue
        if "\t" in line:
            word, _, tag = line.partition("\t")
        else:
            parts = line.rsplit(None, 1)
            word, tag = (parts[0], parts[1]) if len(parts) == 2 and parts[1] in (*ENT_TYPES, "0") else (line, "0")
        word = word.strip().replace("\u00ad", "") or word
        words.append(word)
        tags.append(tag.strip() or "0")
    return sents


def guess_spaces(words: list[str]) -> list[bool]:
    """Heuristic detokenisation for corpora without SpaceAfter information."""
    spaces = []
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else None
        sp = not (w in NO_SPACE_AFTER or (nxt is not None and nxt in NO_SPACE_BEFORE))
        spaces.append(sp)
    return spaces


def io_to_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """Turn IO tags (``0`` = outside) into (start, end, label) spans."""
    spans = []
    start = None
    for i, tag in enumerate(tags + ["0"]):
        prev = tags[i - 1] if i > 0 else "0"
        if start is not None and tag != prev:
            spans.append((start, i, prev))
            start = None
        if tag != "0" and start is None:
            start = i
    return spans


def split_ner(sents: list[Sentence]) -> dict[str, list[Sentence]]:
    """Split NER sentences by contiguous blocks (see module docstring)."""
    out: dict[str, list[Sentence]] = {"ner-train": [], "ner-dev": [], "ner-test": []}
    for i, s in enumerate(sents):
        block = i // NER_BLOCK
        key = "ner-test" if block % 10 == 9 else "ner-dev" if block % 10 == 4 else "ner-train"
        out[key].append(s)
    return out


def split_ud_dev(sents: list[Sentence]) -> tuple[list[Sentence], list[Sentence]]:
    """Split the UD dev file by document: even-position documents → tune, odd → test."""
    order: list[str] = []
    for s in sents:
        if s.doc_id not in order:
            order.append(s.doc_id)
    tune_ids = set(order[0::2])
    return [s for s in sents if s.doc_id in tune_ids], [s for s in sents if s.doc_id not in tune_ids]


class Lexicon:
    """Majority UPOS/features/lemma per (lower-cased form, XPOS) and per word class, from UD v2 data."""

    def __init__(self, sents: list[Sentence]):
        by_key: dict[tuple[str, str], Counter] = defaultdict(Counter)
        lemma_by_form: dict[tuple[str, str], Counter] = defaultdict(Counter)
        feats_by_xpos: dict[str, Counter] = defaultdict(Counter)
        deprel_by_form: dict[str, Counter] = defaultdict(Counter)
        for s in sents:
            for t in s.tokens:
                by_key[(t.form.lower(), t.xpos)][(t.upos, t.feats)] += 1
                deprel_by_form[t.form.lower()][t.deprel] += 1
                lemma_by_form[(t.form.lower(), t.upos)][t.lemma] += 1
                feats_by_xpos[t.xpos][t.feats] += 1
        self.by_key = {k: c.most_common(1)[0][0] for k, c in by_key.items() if _confident(c)}
        self.lemma = {k: c.most_common(1)[0][0] for k, c in lemma_by_form.items() if _confident(c)}
        self.feats_by_xpos = {k: c.most_common(1)[0][0] for k, c in feats_by_xpos.items()}
        self.deprel_counts = deprel_by_form


def _confident(counter: Counter) -> bool:
    (_, top), total = counter.most_common(1)[0], sum(counter.values())
    return top / total >= 0.75


def _feats(s: str) -> dict[str, str]:
    return dict(f.split("=", 1) for f in s.split("|") if "=" in f)


def _feats_str(d: dict[str, str]) -> str:
    return "|".join(f"{k}={d[k]}" for k in sorted(d)) or "_"


def deprel_changes(v1: list[Sentence], lex: Lexicon, min_count: int = 3) -> dict[tuple[str, str], str]:
    """(form, v1 relation) → v2 relation where a word's usual relation differs between the versions.

    E.g. ``många``: ``det`` in v1, ``amod`` in v2; ``när``: ``advmod`` in v1, ``mark`` in v2.
    """
    v1_counts: dict[str, Counter] = defaultdict(Counter)
    for s in v1:
        for t in s.tokens:
            v1_counts[t.form.lower()][DEPREL_V1_TO_V2.get(t.deprel, t.deprel)] += 1
    changes = {}
    for form, c2 in lex.deprel_counts.items():
        c1 = v1_counts.get(form)
        if not c1:
            continue
        (d1, n1), (d2, n2) = c1.most_common(1)[0], c2.most_common(1)[0]
        if (
            d1 != d2
            and {d1, d2} <= FUNCTION_RELATIONS
            and n1 >= min_count
            and n2 >= min_count
            and _confident(c2)
            and c2[d1] <= 0.25 * sum(c2.values())
        ):
            changes[(form, d1)] = d2
    return changes


def reattach_coordination(toks: list[Token]) -> None:
    """UD v2: ``cc`` and commas inside a coordination attach to the following conjunct, not the first."""
    conjuncts: dict[int, list[int]] = defaultdict(list)
    for i, t in enumerate(toks, start=1):
        if t.deprel == "conj":
            conjuncts[t.head].append(i)
    for i, t in enumerate(toks, start=1):
        if t.deprel not in {"cc", "punct"} or t.head not in conjuncts or i < t.head:
            continue
        following = [c for c in conjuncts[t.head] if c > i]
        if following and (t.deprel == "cc" or t.form in {",", ";"}):
            t.head = following[0]


def harmonise_v1(
    sent: Sentence, lex: Lexicon, v1_feats_by_xpos: dict[str, str], dep_changes: dict[tuple[str, str], str]
) -> Sentence:
    """Map one UD v1 Talbanken sentence to UD v2 conventions (in place) and return it."""
    toks = sent.tokens
    reattach_coordination(toks)
    for t in toks:
        t.deprel = DEPREL_V1_TO_V2.get(t.deprel, t.deprel)
        t.deprel = dep_changes.get((t.form.lower(), t.deprel), t.deprel)
        if t.upos == "CONJ":
            t.upos = "CCONJ"
        elif t.upos == "DT":
            t.upos = "PRON" if t.xpos.startswith(("PS", "HS")) else "DET"
        if t.upos == "VERB" and t.deprel.split(":")[0] in {"aux", "cop"}:
            t.upos = "AUX"
        # feature differences that depend on the XPOS only (e.g. Mood=Ind on finite verbs)
        v2 = _feats(lex.feats_by_xpos.get(t.xpos, ""))
        v1 = _feats(v1_feats_by_xpos.get(t.xpos, ""))
        feats = _feats(t.feats)
        for k, v in v2.items():
            if k not in v1 and k not in feats:
                feats[k] = v
        t.feats = _feats_str(feats)
        known = lex.by_key.get((t.form.lower(), t.xpos))
        if known is not None and not (known[0] == "VERB" and t.upos == "AUX"):
            t.upos, t.feats = known
    for t in toks:
        if t.deprel == "nmod" and t.head > 0 and toks[t.head - 1].upos in PREDICATE_UPOS:
            t.deprel = "obl"
        if is_adverbial_adjective(t):
            t.upos, t.feats = "ADV", "Degree=Pos"
    return sent


def is_adverbial_adjective(t: Token) -> bool:
    """A neuter ``-t`` adjective used as an adverb (``ekonomiskt``): ADJ in UD v1, ADV in v2 (no v2 ADJ is advmod)."""
    return (
        t.upos == "ADJ"
        and t.deprel == "advmod"
        and t.form.endswith("t")
        and _feats(t.feats).get("Gender") == "Neut"
    )


PAST_PARTICIPLE_ENDINGS = (("ade", "ad"), ("at", "ad"), ("da", "d"), ("ta", "t"), ("na", "en"), ("et", "en"), ("tt", "dd"))
VOICED_BEFORE_T = set("bglmnrv")  # ``valt`` → ``vald``, ``bestämt`` → ``bestämd``; ``märkt`` stays


def participle_base(form: str) -> str:
    """UD v2 lemma of an adjectival participle: present ones are their own (``ledande``), past ones
    take the common-gender singular (``ökade``, ``ökat`` → ``ökad``; ``bestämda``, ``bestämt`` →
    ``bestämd``; ``obundna`` → ``obunden``; ``sett`` → ``sedd``), not the verb."""
    if form.endswith(("ande", "ende")):
        return form
    for ending, base in PAST_PARTICIPLE_ENDINGS:
        if form.endswith(ending) and len(form) > len(ending) + 1 and not form.endswith("att"):  # ``bosatt``
            return form[: -len(ending)] + base
    if form.endswith("t") and len(form) > 3 and form[-2] in VOICED_BEFORE_T:
        return form[:-1] + "d"
    return form


class SilverLemmatizer:
    """Lemma guesses for tokens without gold lemmas: v2 lexicon, then lookup table, then rules."""

    def __init__(self, lex: Lexicon, lookup: dict[str, str]):
        self.lex = lex
        self.lookup = lookup

    def __call__(self, t: Token) -> str:
        low = t.form.lower()
        known = self.lex.lemma.get((low, t.upos))
        if known is not None:
            return known
        if t.upos == "PROPN":
            return t.form
        if t.upos not in OPEN_CLASS:
            return low
        feats = _feats(t.feats)
        if t.upos == "ADJ" and (feats.get("VerbForm") == "Part" or low.endswith(("ande", "ende"))):
            return participle_base(low)
        guess = self.lookup.get(t.form) or self.lookup.get(low)
        if t.upos == "ADV" and low.endswith("t") and guess:
            adjective = guess.lower()
            # ``snabbt`` → ``snabb``: v2 lemmatises -t adverbs to their adjective
            return adjective if low.startswith(adjective[: max(1, len(adjective) - 2)]) else low
        if self._is_base_form(t.upos, feats):
            return low
        return guess.lower() if guess else ""

    @staticmethod
    def _is_base_form(upos: str, f: dict[str, str]) -> bool:
        if upos == "NOUN":
            return f.get("Number") == "Sing" and f.get("Definite") == "Ind" and f.get("Case") == "Nom"
        if upos == "VERB":
            return f.get("VerbForm") == "Inf" and f.get("Voice", "Act") == "Act"
        if upos == "ADJ":
            return (
                f.get("Degree", "Pos") == "Pos"
                and f.get("Gender") == "Com"
                and f.get("Number") == "Sing"
                and f.get("Definite") == "Ind"
                and f.get("Case", "Nom") == "Nom"
            )
        return upos == "ADV" and f.get("Degree", "Pos") == "Pos"


def load_lookup() -> dict[str, str]:
    """Load the Swedish lemma lookup table shipped by spacy-lookups-data."""
    import spacy_lookups_data

    path = Path(spacy_lookups_data.__file__).parent / "data" / "sv_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def sentences_to_docs(
    nlp: spacy.language.Language, sents: list[Sentence], with_parse: bool, with_lemma: bool = True
) -> list[Doc]:
    """Group consecutive sentences (same document) into Docs of ``SENTS_PER_DOC`` sentences."""
    groups: list[list[Sentence]] = []
    for s in sents:
        if groups and len(groups[-1]) < SENTS_PER_DOC and groups[-1][-1].doc_id == s.doc_id:
            groups[-1].append(s)
        else:
            groups.append([s])
    docs = []
    for group in groups:
        words, spaces, heads, deps, pos, tags, morphs, lemmas, starts, ents = ([] for _ in range(10))
        for s in group:
            offset = len(words)
            w = [t.form for t in s.tokens]
            words += w
            if with_parse and any(not t.space_after for t in s.tokens):
                spaces += [t.space_after for t in s.tokens]
            else:
                spaces += guess_spaces(w)
            starts += [True] + [False] * (len(w) - 1)
            if with_parse:
                heads += [offset + t.head - 1 if t.head > 0 else offset + i for i, t in enumerate(s.tokens)]
                deps += ["ROOT" if t.deprel == "root" else t.deprel for t in s.tokens]
                pos += [t.upos for t in s.tokens]
                tags += [t.xpos for t in s.tokens]
                morphs += ["" if t.feats == "_" else t.feats for t in s.tokens]
                lemmas += [t.lemma if with_lemma and t.lemma != "_" else "" for t in s.tokens]
            else:
                ents += [(offset + a, offset + b, lab) for a, b, lab in io_to_spans(s.ents)]
        spaces[-1] = False
        if with_parse:
            doc = Doc(
                nlp.vocab, words=words, spaces=spaces, heads=heads, deps=deps, pos=pos,
                tags=tags, morphs=morphs, lemmas=lemmas,
            )
        else:
            doc = Doc(nlp.vocab, words=words, spaces=spaces, sent_starts=starts)
            # every token outside the spans becomes "O": the NER corpus is fully annotated
            doc.ents = [Span(doc, a, b, label=lab) for a, b, lab in ents]
        docs.append(doc)
    return docs


def write(docs: list[Doc], path: Path) -> None:
    """Write Docs to a DocBin file."""
    DocBin(docs=docs, store_user_data=False).to_disk(path)
    logger.info("%s: %d docs, %d tokens", path.name, len(docs), sum(len(d) for d in docs))


def main(corpora: Path, out: Path, silver_lemmas: bool = True) -> None:
    """Convert all corpora under ``corpora`` into DocBin files under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank("sv")
    for name, sents in split_ner(read_ner(corpora / "ner" / "train_corpus.txt")).items():
        write(sentences_to_docs(nlp, sents, with_parse=False), out / f"{name}.spacy")

    ud = corpora / "ud"
    tune, test = split_ud_dev(read_conllu(ud / "sv_talbanken-ud-dev.conllu"))
    lex = Lexicon(tune)
    v1 = read_conllu(ud / "sv_talbanken-ud-train-v1-2015.conll")
    v1_feats: dict[str, Counter] = defaultdict(Counter)
    for s in v1:
        for t in s.tokens:
            v1_feats[t.xpos][t.feats] += 1
    v1_majority = {k: c.most_common(1)[0][0] for k, c in v1_feats.items()}
    silver = SilverLemmatizer(lex, load_lookup()) if silver_lemmas else None
    dep_changes = deprel_changes(v1, lex)
    logger.info("relation changes v1 -> v2 by word: %s", dep_changes)
    for s in v1:
        harmonise_v1(s, lex, v1_majority, dep_changes)
        for t in s.tokens:
            t.lemma = silver(t) if silver else ""
    write(sentences_to_docs(nlp, v1, with_parse=True), out / "ud-train.spacy")
    write(sentences_to_docs(nlp, tune, with_parse=True), out / "ud-tune.spacy")
    write(sentences_to_docs(nlp, test, with_parse=True), out / "ud-test.spacy")
    write(sentences_to_docs(nlp, v1 + tune, with_parse=True), out / "ud-train-tune.spacy")
    stats = {"ud_tune_docs": sorted({s.doc_id for s in tune}), "ud_test_docs": sorted({s.doc_id for s in test})}
    (out / "splits.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--no-silver-lemmas", action="store_true")
    args = parser.parse_args()
    main(args.corpora, args.out, silver_lemmas=not args.no_silver_lemmas)
