"""Translate's quality gates on real human translations, clean and corrupted.

This file is longer than 600 lines because the corruptions need their own French grammar (a tu/vous
converter with its verb tables): kept here, apart from the gates, so that the benchmark does not grade
the gates with their own code.

Real translations: the English/French pairs of the shared data (FRCORPUS_SHARED_DATA, default
../shared/data), the French taken as if a model had translated the English:
  alpaca_seed  the 175 Alpaca seed tasks and vigogne's hand translation (instruction; input when both
               have one; vigogne's outputs are partly written anew, not translated: left out), by id
  mt_bench     the 80 MT-Bench questions, 2 turns each
  mgsm         the 250 MGSM questions
  mmlu         MMLU-FR's 14,042 test questions with English MMLU's, row by row
  hplt         the 50 HPLT test prompts
1. Clean: each French text goes through the gates (`check_many`, with the source masked as the stage
   does); the rate rejected per set and gate, before (the gates as they were: `--before`'s config) and
   after (the defaults). Every reject of the defaults is printed with `--rejects` to be read; the
   verdicts of the reads are in READ below (what the reject is, and whether a careful reader would
   reject it too), and the figures count the rejects a reader would keep as false rejections.
2. Corrupted: the pairs that pass both configs clean, corrupted with a seed, `--per-set` of each set
   for each kind (fewer when fewer qualify), the miss rate (the gates pass the corrupted text) per kind
   and set, before and after:
  truncated_word      cut at a word boundary at 60-95% of the characters
  truncated_sentence  cut at a sentence or line end at 60-95% of the characters (texts that have one)
  truncated_85        cut at the word boundary nearest 85% (the audit's case)
  english_sentence    one sentence put back in English (texts with as many sentences in both, >= 2)
  english_short       the same, with an English sentence of 2 to 6 words
  register_mixed      one sentence of a turn that says vous (tu) turned to tu (vous), while another
                      sentence keeps the first register (this file's converter, not the gate's code)

    .venv/bin/python benchmarks/translation_gates.py [--per-set 200] [--seed 0] [--rejects] [--misses KIND]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from frcorpus.stages.translate.gates import GatesConfig, TranslationGates
from frcorpus.stages.translate.masking import mask

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FRCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
SETS = ("alpaca_seed", "mt_bench", "mgsm", "mmlu", "hplt")
# the gates as they were before issue 20: no truncation read from the text, no short English, no tu/vous
BEFORE = {"truncation": False, "english_words": False, "register_turn": False}


@dataclass(frozen=True)
class Pair:
    set: str
    id: str
    source: str
    french: str


# ---- real pairs ------------------------------------------------------------------------------------


def real_pairs(shared: Path = SHARED) -> list[Pair]:
    """Every English/French pair of the shared data, in a fixed order."""
    pairs = []
    english = {row["id"]: row for row in _jsonl(shared / "instruct_en/alpaca_seed/seed_tasks.jsonl")}
    for row in _jsonl(shared / "instruct_fr/vigogne/seed_tasks_vigogne.jsonl"):
        source = english[row["id"]]
        pairs.append(Pair("alpaca_seed", f"{row['id']}:instruction", source["instruction"], row["instruction"]))
        for j, (a, b) in enumerate(zip(source["instances"], row["instances"], strict=False)):
            if a["input"].strip() and b["input"].strip():
                pairs.append(Pair("alpaca_seed", f"{row['id']}:input{j}", a["input"], b["input"]))
    mt_bench = shared / "benchmarks_fr/mt_bench"
    for a, b in zip(_jsonl(mt_bench / "question_en.jsonl"), _jsonl(mt_bench / "question_fr.jsonl"), strict=True):
        for t, (x, y) in enumerate(zip(a["turns"], b["turns"], strict=True)):
            pairs.append(Pair("mt_bench", f"{a['question_id']}:{t}", x, y))
    mgsm = shared / "benchmarks_fr/mgsm"
    en, fr = (_tsv_first(mgsm / f"mgsm_{lang}.tsv") for lang in ("en", "fr"))
    pairs += [Pair("mgsm", str(i), a, b) for i, (a, b) in enumerate(zip(en, fr, strict=True))]
    mmlu = shared / "benchmarks_fr/mmlu"
    for path in sorted((mmlu / "MMLU/data/test").glob("*_test.csv")):
        french = mmlu / "MMLU-FR/data/test" / f"{path.stem}.fr.csv"
        with path.open(encoding="utf-8") as a, french.open(encoding="utf-8") as b:
            for i, (x, y) in enumerate(zip(csv.reader(a), csv.reader(b), strict=True)):
                pairs.append(Pair("mmlu", f"{path.stem}:{i}", x[0], y[0]))
    hplt = shared / "benchmarks_fr/hplt_test"
    for a, b in zip(_jsonl(hplt / "test_en.jsonl"), _jsonl(hplt / "test_fr.jsonl"), strict=True):
        pairs.append(Pair("hplt", a["id"], a["prompt"], b["prompt"]))
    return pairs


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def _tsv_first(path: Path) -> list[str]:
    return [line.rstrip("\n").split("\t")[0] for line in path.open(encoding="utf-8")]


# ---- corruptions -----------------------------------------------------------------------------------

LOW, HIGH = 0.6, 0.95  # the share of the text a truncation keeps
SPACE = re.compile(r"\s+")
# a sentence ends at .!?… (closing quotes and brackets with it) before a space, or at the end of a line
SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'»”’)\]*]*(?=\s)|(?<=\S)(?=[ \t]*\n)")
LIST_MARKER_ONLY = re.compile(r"(?:^|\n)[ \t]*\d{1,3}[.)]$")
WORDS = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def truncate_at_word(text: str, rng: random.Random, keep: float | None = None) -> str | None:
    """The text cut after the word nearest `keep` (drawn in [LOW, HIGH]) of its characters."""
    target = len(text) * (rng.uniform(LOW, HIGH) if keep is None else keep)
    cuts = [m.start() for m in SPACE.finditer(text) if LOW * len(text) <= m.start() <= HIGH * len(text)]
    if not cuts:
        return None
    return text[: min(cuts, key=lambda c: abs(c - target))].rstrip()


def truncate_at_sentence(text: str, rng: random.Random) -> str | None:
    """The text cut at the sentence or line end nearest a share drawn in [LOW, HIGH]: complete
    sentences, nothing cut inside one."""
    target = len(text) * rng.uniform(LOW, HIGH)
    cuts = [
        m.end()
        for m in SENTENCE_END.finditer(text)
        if LOW * len(text) <= m.end() <= HIGH * len(text) and not LIST_MARKER_ONLY.search(text[: m.end()])
    ]
    if not cuts:
        return None
    return text[: min(cuts, key=lambda c: abs(c - target))].rstrip()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence with a letter: split at sentence ends and line ends."""
    spans, start = [], 0
    for m in [*SENTENCE_END.finditer(text), None]:
        end = len(text) if m is None else m.end()
        piece = text[start:end]
        if WORDS.search(piece):
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, end))
        start = end
    return spans


def english_left(pair: Pair, rng: random.Random, short: bool = False) -> str | None:
    """The translation with one of its sentences put back as the source's sentence at the same place
    (both must have as many sentences, two or more); `short`: one of 2-6 words."""
    french, english = sentence_spans(pair.french), sentence_spans(pair.source)
    if len(french) != len(english) or len(french) < 2:
        return None
    chosen = [i for i, (s, e) in enumerate(english) if not short or 2 <= len(WORDS.findall(pair.source[s:e])) <= 6]
    if not chosen:
        return None
    i = rng.choice(chosen)
    (fs, fe), (es, ee) = french[i], english[i]
    return pair.french[:fs] + pair.source[es:ee] + pair.french[fe:]


# ---- the tu/vous converter -------------------------------------------------------------------------

# vous form -> (tu present, tu imperative) of the verbs that are not regular -er or -ir verbs
IRREGULAR = {
    "êtes": ("es", None), "soyez": (None, "sois"), "avez": ("as", None), "ayez": (None, "aie"),
    "pouvez": ("peux", None), "voulez": ("veux", None), "veuillez": (None, "veuille"), "devez": ("dois", None),
    "savez": ("sais", None), "sachez": (None, "sache"), "faites": ("fais", "fais"), "dites": ("dis", "dis"),
    "allez": ("vas", "va"), "venez": ("viens", "viens"), "prenez": ("prends", "prends"),
    "mettez": ("mets", "mets"), "écrivez": ("écris", "écris"), "lisez": ("lis", "lis"), "voyez": ("vois", "vois"),
    "croyez": ("crois", "crois"), "connaissez": ("connais", "connais"), "tenez": ("tiens", "tiens"),
    "suivez": ("suis", "suis"), "vivez": ("vis", "vis"), "répondez": ("réponds", "réponds"),
    "attendez": ("attends", "attends"), "entendez": ("entends", "entends"), "rendez": ("rends", "rends"),
    "vendez": ("vends", "vends"), "perdez": ("perds", "perds"), "descendez": ("descends", "descends"),
    "résolvez": ("résous", "résous"), "traduisez": ("traduis", "traduis"), "construisez": ("construis", "construis"),
    "produisez": ("produis", "produis"), "réduisez": ("réduis", "réduis"), "conduisez": ("conduis", "conduis"),
    "introduisez": ("introduis", "introduis"), "concevez": ("conçois", "conçois"), "recevez": ("reçois", "reçois"),
    "ouvrez": ("ouvres", "ouvre"), "offrez": ("offres", "offre"), "couvrez": ("couvres", "couvre"),
    "partez": ("pars", "pars"), "sortez": ("sors", "sors"), "dormez": ("dors", "dors"), "servez": ("sers", "sers"),
    "sentez": ("sens", "sens"), "courez": ("cours", "cours"), "buvez": ("bois", "bois"),
    "paraissez": ("parais", "parais"), "plaisez": ("plais", "plais"),
}  # fmt: skip
# prefixes that keep the verb's forms: comprenez, décrivez, obtenez, permettez, relisez...
PREFIXED = ("com", "ap", "re", "ré", "sur", "entre", "dé", "ob", "main", "sou", "con", "per", "pro", "o", "ad",
            "trans", "sou", "in", "pres", "pré", "pour", "dis", "ab", "ap", "at", "pré")  # fmt: skip
PREPOSITIONS = frozenset(
    "à de pour avec sans chez par sur sous vers contre entre selon comme que qu' et ou envers après avant".split()
)
OBJECT_CLITICS = frozenset("le la les l' lui leur en y me m' nous ne n'".split())
VOWEL = re.compile(r"[aeiouyhéèêàâîôûœ]", re.I)


def _stem_change(stem: str) -> str:
    """The tu stem of a first-group verb from its vous stem: répét -> répèt, achet -> achèt, appel -> appell,
    envoy -> envoi, essay -> essai."""
    if m := re.search(r"é([^\W\d_aeiouyéèê]+)$", stem):
        return stem[: m.start()] + "è" + m.group(1)
    if stem.endswith(("oy", "uy", "ay")):
        return stem[:-1] + "i"
    if re.search(r"[^e]el$|[^e]et$", stem) and stem.endswith(("appel", "rappel", "jet", "rejet", "épel")):
        return stem + stem[-1]
    if m := re.search(r"e([^\W\d_aeiouyéèê])$", stem):  # achet, lev, men (one consonant after a mute e)
        if len(stem) > 3:
            return stem[: m.start()] + "è" + m.group(1)
    return stem


def vous_to_tu_verb(form: str, imperative: bool) -> str | None:
    """The tu form (present or imperative) of a vous form, or None when it is not one this knows."""
    lower = form.lower()
    found = None
    for prefix in ("", *PREFIXED):
        base = lower[len(prefix) :] if lower.startswith(prefix) else None
        if base in IRREGULAR and (prefix == "" or len(base) > 4):
            forms = IRREGULAR[base]
            tu = forms[1] if imperative else forms[0]
            if tu is None:
                return None
            found = prefix + tu
            break
    if found is None:
        if not lower.endswith("ez") or len(lower) < 5:
            return None
        if lower.endswith("issez") and _zipf(lower[:-5] + "ir") >= 2:
            found = lower[:-5] + "is"
        elif _zipf(lower[:-2] + "er") >= 1:
            stem = _stem_change(lower[:-2])
            found = stem + ("e" if imperative else "es")
        elif lower.endswith("iez"):  # imperfect, conditional: pouviez -> pouvais, pourriez -> pourrais
            found = lower[:-3] + "ais"
        elif lower.endswith("rez"):  # future: pourrez -> pourras
            found = lower[:-2] + "as"
        else:
            return None
    return _case_like(found, form)


def tu_to_vous_verb(form: str, imperative: bool) -> str | None:
    """The vous form of a tu form (present or imperative), or None."""
    lower = form.lower()
    for vous, (present, imper) in IRREGULAR.items():
        for prefix in ("", *PREFIXED):
            tu = imper if imperative else present
            if tu is not None and lower == prefix + tu and (prefix == "" or len(tu) > 3):
                return _case_like(prefix + vous, form)
    if lower.endswith("is") and _zipf(lower[:-2] + "ir") >= 2:
        return _case_like(lower[:-2] + "issez", form)
    ending = "e" if imperative else "es"
    if lower.endswith(ending) and len(lower) > 3:
        stem = lower[: -len(ending)]
        for candidate in _vous_stems(stem):
            if _zipf(candidate + "er") >= 3:
                return _case_like(candidate + "ez", form)
    return None


def _vous_stems(stem: str) -> list[str]:
    found = [stem]
    if "è" in stem:
        i = stem.rindex("è")
        found += [stem[:i] + "é" + stem[i + 1 :], stem[:i] + "e" + stem[i + 1 :]]
    if stem.endswith(("oi", "ui", "ai")):
        found.append(stem[:-1] + "y")
    if stem.endswith(("ll", "tt")):
        found.append(stem[:-1])
    return found


def _case_like(word: str, model: str) -> str:
    return word[0].upper() + word[1:] if model[:1].isupper() else word


@cache
def _zipf(word: str) -> float:
    import wordfreq

    return wordfreq.zipf_frequency(word, "fr")


TOKEN = re.compile(r"[^\W\d_]+['’]|[^\W\d_]+|[^\w\s]|\d+|\s+")  # "t'" and "aime" apart


def vous_to_tu(sentence: str) -> str | None:
    """The sentence addressed with tu instead of vous, or None when it has no form this converts."""
    tokens = TOKEN.findall(sentence)
    words = [i for i, t in enumerate(tokens) if not t.isspace()]
    out = list(tokens)
    changed = False
    question = sentence.rstrip().endswith("?")
    for n, i in enumerate(words):
        token = tokens[i]
        lower = token.lower()
        previous = tokens[words[n - 1]].lower() if n else ""
        following = [tokens[j] for j in words[n + 1 : n + 5]]
        if lower in ("votre", "vôtre"):
            noun = following[0] if following else ""
            out[i] = _case_like("ton" if VOWEL.match(noun) or not noun.lower().endswith("e") else "ta", token)
        elif lower == "vos":
            out[i] = _case_like("tes", token)
        elif lower == "vous":
            if previous == "-":  # "Assurez-vous", "Pouvez-vous"
                out[i] = "tu" if question else "toi"
            elif following[:2] == ["-", "même"]:
                out[i] = _case_like("toi", token)
            elif previous in PREPOSITIONS or not following or following[0] in ".,;:!?)":
                out[i] = _case_like("toi", token)
            else:
                verb = next((f for f in following if f.lower() not in OBJECT_CLITICS and f.lower() != "vous"), "")
                subject = verb and vous_to_tu_verb(verb, imperative=False) is not None
                next_word = following[0]
                if subject and not (n and tokens[words[n - 1]].lower() == "vous"):
                    out[i] = _case_like("tu", token)
                else:
                    out[i] = _case_like("t'" if VOWEL.match(next_word) else "te", token)
                    if out[i].endswith("'") and i + 1 < len(out) and out[i + 1].isspace():
                        out[i + 1] = ""
        else:
            continue
        changed = True
    # every -ez verb of the sentence: the present after a subject "tu", else the imperative
    for n, i in enumerate(words):
        token = tokens[i]
        if not token.lower().endswith(("ez", "faites", "dites")) or token.lower() in ("chez", "assez", "nez"):
            continue
        before = [out[words[k]].lower() for k in range(max(0, n - 4), n)]
        subject = "tu" in before
        inverted = n + 2 < len(words) and tokens[words[n + 1]] == "-" and out[words[n + 2]].lower() == "tu"
        tu = vous_to_tu_verb(token, imperative=not (subject or inverted))
        if tu is not None:
            out[i] = tu
            changed = True
    result = "".join(out)
    return result if changed and result != sentence else None


def tu_to_vous(sentence: str) -> str | None:
    """The sentence addressed with vous instead of tu, or None when it has no form this converts."""
    tokens = TOKEN.findall(sentence)
    words = [i for i, t in enumerate(tokens) if not t.isspace()]
    out = list(tokens)
    changed = False
    for n, i in enumerate(words):
        token = tokens[i]
        lower = token.lower().replace("’", "'")
        previous = tokens[words[n - 1]] if n else ""
        following = [tokens[j] for j in words[n + 1 : n + 5]]
        if lower in ("ton", "ta"):
            if previous.lower() in ("le", "un", "du", "au", "ce", "de"):
                continue  # "le ton"
            out[i] = _case_like("votre", token)
        elif lower == "tes":
            out[i] = _case_like("vos", token)
        elif lower in ("tu", "te", "t'", "toi"):
            replacement = "vous " if lower == "t'" else "vous"
            out[i] = _case_like(replacement, token)
            if lower == "tu" or lower == "t'":
                verb = next((f for f in following if f.lower() not in OBJECT_CLITICS), "")
                j = words[n + 1 + following.index(verb)] if verb in following else None
                if j is not None and (vous := tu_to_vous_verb(verb, imperative=False)) is not None:
                    out[j] = vous
            if lower == "tu" and previous == "-" and n >= 2:  # "Peux-tu"
                j = words[n - 2]
                if (vous := tu_to_vous_verb(tokens[j], imperative=False)) is not None:
                    out[j] = vous
        else:
            continue
        changed = True
    # an imperative at the head of the sentence: "Écris", "Donne-moi", "N'oublie pas"
    head = 1 if words and tokens[words[0]].lower().replace("’", "'") in ("n'", "ne") else 0
    if len(words) > head:
        i = words[head]
        vous = tu_to_vous_verb(tokens[i], imperative=True)
        if vous is not None and tokens[i][:1].isupper() | bool(head):
            out[i] = vous
            changed = True
    result = "".join(out)
    return result if changed and result != sentence else None


QUOTED_SPAN = re.compile(r'«[^»]*»|“[^”]*”|"[^"\n]*"|\[[^\]\n]*\]')
VOUS_MARK = re.compile(r"\b(?:vous|votre|vos)\b|^\W*(?:n['’])?[A-ZÉÈÀ][^\W\d_]+ez\b", re.I | re.M)
TU_MARK = re.compile(r"\b(?:tu|te|toi|ton|ta|tes)\b|\bt['’]\w|^\W*[A-ZÉÈ][^\W\d_]*-(?:moi|toi)\b", re.I | re.M)


def register_mixed(pair: Pair, rng: random.Random) -> str | None:
    """The translation with one sentence turned to the other register (vous -> tu, or tu -> vous), when
    another sentence keeps a mark of the first one. Sentences with a quotation or a [placeholder] are
    left alone: a character may say tu in a vous text, and the gates do not judge quotations."""
    spans = sentence_spans(pair.french)
    if len(spans) < 2:
        return None
    quoted = [(m.start(), m.end()) for m in QUOTED_SPAN.finditer(pair.french)]
    sentences = [
        ""
        if any(qs < e and s < qe for qs, qe in quoted) or re.search('[«»“”"]', pair.french[s:e])
        else pair.french[s:e]
        for s, e in spans
    ]
    vous = [i for i, s in enumerate(sentences) if VOUS_MARK.search(s)]
    tu = [i for i, s in enumerate(sentences) if TU_MARK.search(s)]
    if len(vous) >= 2 and not tu:
        marked, convert = vous, vous_to_tu
    elif len(tu) >= 2 and not vous:
        marked, convert = tu, tu_to_vous
    else:
        return None
    candidates = marked[:]
    rng.shuffle(candidates)
    for i in candidates:
        converted = convert(sentences[i])
        if converted is not None:
            s, e = spans[i]
            return pair.french[:s] + converted + pair.french[e:]
    return None


Corruption = Callable[[Pair, random.Random], "str | None"]
KINDS: dict[str, Corruption] = {
    "truncated_word": lambda p, rng: truncate_at_word(p.french, rng),
    "truncated_sentence": lambda p, rng: truncate_at_sentence(p.french, rng),
    "truncated_85": lambda p, rng: truncate_at_word(p.french, rng, keep=0.85),
    "english_sentence": lambda p, rng: english_left(p, rng),
    "english_short": lambda p, rng: english_left(p, rng, short=True),
    "register_mixed": register_mixed,
}


def corrupt(
    pairs: list[Pair], per_set: int, seed: int, usable: Callable[[Pair], bool] = lambda p: True
) -> dict[str, list[tuple[Pair, str]]]:
    """kind -> (pair, corrupted French), up to `per_set` of each set, drawn with `seed` from all the pairs
    (the same draw whatever the gates do), skipping those that are not `usable`."""
    out: dict[str, list[tuple[Pair, str]]] = {}
    for kind, function in KINDS.items():
        chosen = []
        for name in SETS:
            rng = random.Random(f"{seed}:{kind}:{name}")
            members = [p for p in pairs if p.set == name]
            rng.shuffle(members)
            taken = 0
            for pair in members:
                if taken == per_set:
                    break
                if not usable(pair):
                    continue
                text = function(pair, rng)
                if text is not None and text.strip() != pair.french.strip():
                    chosen.append((pair, text))
                    taken += 1
        out[kind] = chosen
    return out


# ---- what the hand reads of the defaults' rejects found ---------------------------------------------


def _read(name: str, verdict: str, note: str, *ids: str) -> dict[tuple[str, str], tuple[str, str]]:
    return {(name, i): (verdict, note) for i in ids}


# (set, id) -> (verdict, what it is) of every reject of the defaults, read by hand (`--rejects` prints
# them). "bad": a careful reader rejects this translation too; "good": a false rejection, and which
# gate made it. The real pairs are not all translations: vigogne rewrote some Alpaca seed inputs.
READ: dict[tuple[str, str], tuple[str, str]] = {
    **_read(
        "alpaca_seed",
        "bad",
        "not a translation: vigogne wrote another text",
        "seed_task_62:input0",
        "seed_task_74:input0",
        "seed_task_79:input0",
        "seed_task_83:input0",
        "seed_task_96:input0",
        "seed_task_134:input0",
        "seed_task_148:input0",
        "seed_task_152:input0",
    ),
    **_read("alpaca_seed", "bad", "the three sentences, each with a pun, are lost", "seed_task_93:instruction"),
    **_read(
        "alpaca_seed",
        "bad",
        "tu and vous to the same reader",
        "seed_task_105:instruction",
        "seed_task_144:instruction",
        "seed_task_161:instruction",
    ),
    **_read("alpaca_seed", "bad", "the list lacks 'staying alive'", "seed_task_119:input0"),
    **_read("alpaca_seed", "good", "shorter, the meaning kept (length_ratio)", "seed_task_75:instruction"),
    **_read(
        "alpaca_seed",
        "good",
        "a blank line added between paragraphs (structure_changed)",
        "seed_task_122:input0",
        "seed_task_162:input0",
    ),
    **_read("mt_bench", "bad", "not a translation: the email itself, not the request", "82:0"),
    **_read("mt_bench", "bad", "a second 'Translation:' appended", "148:0"),
    **_read("mt_bench", "bad", "'to' translated inside the code block", "139:0"),
    **_read(
        "mt_bench", "good", "a comment translated inside the code block (segments_changed keeps code verbatim)", "124:1"
    ),
    **_read("mgsm", "good", "terse, nothing lost (length_ratio)", "100", "149"),
    **_read(
        "mmlu",
        "bad",
        "'Femme, réveille-toi ... Découvrez vos droits': tu and vous to one reader",
        "high_school_world_history_test:6",
        "high_school_world_history_test:72",
        "high_school_world_history_test:167",
        "high_school_world_history_test:221",
    ),
    **_read(
        "mmlu",
        "bad",
        "'honte à toi, pauvre Roi ... Qu'est-ce que vous avez fait': tu and vous to one king",
        "high_school_world_history_test:33",
        "high_school_world_history_test:111",
        "high_school_world_history_test:153",
        "high_school_world_history_test:194",
        "high_school_world_history_test:206",
    ),
    **_read(
        "mmlu",
        "bad",
        "'ceux qui te résistent. Laissez les actes de vos ancêtres': tu and vous to one crowd",
        "high_school_world_history_test:32",
        "high_school_world_history_test:54",
        "high_school_world_history_test:104",
        "high_school_world_history_test:166",
    ),
    **_read(
        "mmlu",
        "bad",
        "'votre pays ... Il t'appartient, ô Roi': tu and vous to one king",
        "high_school_world_history_test:41",
        "high_school_world_history_test:130",
        "high_school_world_history_test:220",
        "high_school_world_history_test:234",
    ),
    **_read(
        "mmlu", "bad", "'Je t'ai demandé ... Comme vous n'avez pas' in one quotation", "professional_law_test:1327"
    ),
    **_read(
        "mmlu",
        "good",
        "Candide's dialogue: two speakers, one says tu, the other vous (register_mixed)",
        "high_school_european_history_test:29",
        "high_school_european_history_test:99",
        "high_school_european_history_test:105",
    ),
    **_read(
        "mmlu",
        "good",
        "'donne-moi la liberté ou donne-moi la mort' in a speech that says vous to its audience (register_mixed)",
        "high_school_us_history_test:71",
        "high_school_us_history_test:110",
        "high_school_us_history_test:202",
    ),
    **_read(
        "mmlu",
        "good",
        "a poem that says vous to its men and 'Fais attention' (register_mixed; read as doubtful, counted good)",
        "high_school_world_history_test:158",
        "high_school_world_history_test:200",
        "high_school_world_history_test:226",
    ),
    **_read(
        "mmlu",
        "good",
        "verses quoted without quotation marks say tu, the passage vous (register_mixed; doubtful, counted good)",
        "high_school_world_history_test:42",
        "high_school_world_history_test:103",
        "high_school_world_history_test:155",
        "high_school_world_history_test:211",
    ),
    **_read(
        "mmlu",
        "good",
        "the formula without its $ delimiters, or with French decimals (segments_changed)",
        "econometrics_test:45",
        "econometrics_test:62",
        "high_school_mathematics_test:46",
        "high_school_mathematics_test:51",
        "high_school_mathematics_test:55",
        "high_school_mathematics_test:88",
        "high_school_mathematics_test:89",
        "high_school_mathematics_test:136",
        "high_school_mathematics_test:143",
        "high_school_mathematics_test:159",
        "high_school_mathematics_test:168",
        "high_school_mathematics_test:173",
        "high_school_mathematics_test:188",
        "high_school_mathematics_test:195",
        "high_school_mathematics_test:200",
        "high_school_mathematics_test:226",
        "high_school_mathematics_test:236",
        "high_school_mathematics_test:244",
        "high_school_mathematics_test:257",
        "high_school_mathematics_test:265",
        "machine_learning_test:110",
    ),
    **_read("mmlu", "bad", "English left: 'Un proxy rewall lters at the'", "computer_security_test:57"),
    **_read("mmlu", "bad", "part of the question lost", "college_biology_test:83", "world_religions_test:98"),
    **_read(
        "mmlu",
        "bad",
        "the fill-in question completed by the translator",
        "computer_security_test:40",
        "conceptual_physics_test:7",
        "conceptual_physics_test:88",
        "conceptual_physics_test:206",
        "high_school_biology_test:143",
        "high_school_microeconomics_test:198",
        "professional_psychology_test:324",
    ),
    **_read(
        "mmlu",
        "good",
        "shorter or longer, the meaning kept (length_ratio)",
        "anatomy_test:126",
        "high_school_psychology_test:455",
        "machine_learning_test:98",
        "moral_disputes_test:24",
        "prehistory_test:216",
        "professional_psychology_test:79",
        "us_foreign_policy_test:65",
        "us_foreign_policy_test:71",
    ),
    **_read(
        "mmlu",
        "good",
        "French with English names, or too short to judge (not_french)",
        "high_school_macroeconomics_test:35",
        "machine_learning_test:90",
        "moral_disputes_test:293",
        "professional_psychology_test:137",
        "us_foreign_policy_test:72",
    ),
    **_read(
        "mmlu",
        "good",
        "a '*' footnote read as a list item, or pipes as a table (structure_changed)",
        "high_school_world_history_test:68",
        "high_school_world_history_test:148",
        "high_school_world_history_test:159",
        "professional_law_test:71",
    ),
    **_read(
        "mmlu",
        "bad",
        "the end lost: a clause, the question",
        "professional_law_test:245",
        "professional_law_test:441",
        "professional_law_test:888",
        "public_relations_test:23",
    ),
    **_read("mmlu", "good", "the question without its '?', nothing else lost (truncated)", "us_foreign_policy_test:39"),
    **_read(
        "mmlu",
        "good",
        "a fill-in question that ends as openly as the English (truncated)",
        "human_aging_test:37",
        "professional_accounting_test:4",
    ),
    **_read(
        "mmlu",
        "good",
        "quotations split into sentences otherwise than the English (truncated, by the alignment)",
        "high_school_european_history_test:67",
        "high_school_european_history_test:96",
        "professional_law_test:18",
        "professional_law_test:1224",
    ),
}


# ---- the run ---------------------------------------------------------------------------------------


def run_gates(gates: TranslationGates, items: list[tuple[str, str]]):
    return gates.check_many([(source, output, mask(source)) for source, output in items])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-set", type=int, default=200, help="corrupted texts of each set for each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rejects", action="store_true", help="print every reject of clean text (defaults)")
    parser.add_argument("--misses", default="", help="print the corrupted texts of this kind the defaults pass")
    args = parser.parse_args()
    started = time.time()
    pairs = real_pairs()
    configs = {"before": GatesConfig(**BEFORE), "after": GatesConfig()}
    gates = {name: TranslationGates(cfg) for name, cfg in configs.items()}
    for g in gates.values():
        g.setup()

    print(f"## Clean: {len(pairs)} real translations (seconds so far: {time.time() - started:.0f})")
    clean = {name: run_gates(g, [(p.source, p.french) for p in pairs]) for name, g in gates.items()}
    print(f"{'set':<12} {'pairs':>6} {'before':>14} {'after':>14} {'false (read)':>13}  after, by gate")
    for name in (*SETS, "all"):
        rows = [i for i, p in enumerate(pairs) if name in ("all", p.set)]
        counts = {cfg: sum(clean[cfg][i] is not None for i in rows) for cfg in clean}
        false = sum(
            clean["after"][i] is not None and READ.get((pairs[i].set, pairs[i].id), ("?",))[0] == "good" for i in rows
        )
        unread = sum(clean["after"][i] is not None and (pairs[i].set, pairs[i].id) not in READ for i in rows)
        gates_hit = Counter(clean["after"][i].gate for i in rows if clean["after"][i] is not None)
        before, after = _rate(counts["before"], len(rows)), _rate(counts["after"], len(rows))
        print(
            f"{name:<12} {len(rows):>6} {before:>14} {after:>14} {_rate(false, len(rows)):>13}"
            f"  {dict(gates_hit.most_common())}" + (f" unread {unread}" if unread else "")
        )
    false_by_gate = Counter(
        f"{clean['after'][i].gate}"
        for i, p in enumerate(pairs)
        if clean["after"][i] is not None and READ.get((p.set, p.id), ("?",))[0] == "good"
    )
    print(f"false rejections (read), by gate: {dict(false_by_gate.most_common())}")
    if args.rejects:
        for i, p in enumerate(pairs):
            failure = clean["after"][i]
            if failure is not None:
                verdict = READ.get((p.set, p.id), ("unread", ""))
                print(f"\n-- {p.set} {p.id}: {failure.gate}: {failure.detail}  [{verdict[0]}: {verdict[1]}]")
                print(f"   EN: {p.source[-300:]!r}\n   FR: {p.french[-300:]!r}")

    passing = {p for i, p in enumerate(pairs) if all(clean[cfg][i] is None for cfg in clean)}
    corrupted = corrupt(pairs, args.per_set, args.seed, usable=passing.__contains__)
    print(f"\n## Corrupted: {args.per_set} per set and kind, seed {args.seed}, of the {len(passing)} pairs both pass")
    print(f"{'kind':<20} {'texts':>6} {'missed before':>15} {'missed after':>15}  after, by set (missed/texts)")
    totals = Counter()
    for kind, items in corrupted.items():
        results = {cfg: run_gates(g, [(p.source, text) for p, text in items]) for cfg, g in gates.items()}
        missed = {cfg: [r is None for r in rs] for cfg, rs in results.items()}
        by_set = defaultdict(lambda: [0, 0])
        for (p, _), miss in zip(items, missed["after"], strict=True):
            by_set[p.set][0] += miss
            by_set[p.set][1] += 1
        totals.update({"texts": len(items), "before": sum(missed["before"]), "after": sum(missed["after"])})
        print(
            f"{kind:<20} {len(items):>6} {_rate(sum(missed['before']), len(items)):>15}"
            f" {_rate(sum(missed['after']), len(items)):>15}  "
            + " ".join(f"{s}:{m}/{n}" for s, (m, n) in by_set.items())
        )
        if kind == args.misses:
            for (p, text), miss in zip(items, missed["after"], strict=True):
                if miss:
                    print(
                        f"\n-- missed {p.set} {p.id}\n   EN: {p.source[-300:]!r}\n   FR: {_changed(p.french, text)!r}"
                    )
    print(
        f"{'all':<20} {totals['texts']:>6} {_rate(totals['before'], totals['texts']):>15}"
        f" {_rate(totals['after'], totals['texts']):>15}"
    )
    print(f"\n{time.time() - started:.0f} s")


def _changed(before: str, after: str, context: int = 150) -> str:
    """The part of `after` that differs from `before`, with some context (the end, for a truncation)."""
    start = next(
        (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), min(len(before), len(after))
    )
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    return ("…" if start > context else "") + after[max(0, start - context) : len(after) - end + context]


def _rate(n: int, total: int) -> str:
    return f"{n} ({100 * n / total:.1f}%)" if total else "-"


if __name__ == "__main__":
    main()
