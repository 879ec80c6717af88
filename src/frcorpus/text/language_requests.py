"""Requests for an answer in a given language, in French or English wording: « réponds en anglais »,
« écris-le en espagnol », « traduis ce texte de l'anglais vers le français », « Votre réponse doit être
entièrement en coréen », "answer in Spanish", "translate this into Japanese", "Your entire response
should be in Gujarati, no other language is allowed".

A language named without a request is not one: "the difference between British and American
English", "I am learning Spanish", « un texte écrit en anglais », « ne réponds pas en anglais », a user
turn written in Spanish. Language names come in French and English (from langcodes, with the French
feminine forms: « la version anglaise », « en langue coréenne ») and map to the ISO codes of
`languages.iso_code`, those language identification gives.

Measured on the M-IFEval prompts, whose `language:response_language` instructions say which prompts
ask for an answer in another language (tests/test_language_requests.py): every one of the 9 French
and 31 English ones is found with its language, and none of the 736 other prompts asks for one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from frcorpus.text.languages import iso_code

# Names that langcodes does not give, or gives in another form, as prompts write them.
ALIASES = {
    "bengali": "bn",
    "farsi": "fa",
    "mandarin": "zh",
    "cantonais": "zh",
    "cantonese": "zh",
    "castillan": "es",
    "castilian": "es",
    "flamand": "nl",
    "flemish": "nl",
    "tagalog": "tl",
    "oriya": "or",
    "gujarati": "gu",
    "punjabi": "pa",
    "telugu": "te",
    "tamil": "ta",
    "urdu": "ur",
    "hébraïque": "he",
}
# Display names that are common words before "in"/"en" (« en Corse » is the island, "the same language").
NOT_NAMES = {"corse", "same"}


@dataclass(frozen=True, slots=True)
class LanguageRequest:
    """What a text asks for: the languages its answer should be in (`targets`) and the languages a
    translation it asks for starts from (`sources`: an answer may quote them)."""

    targets: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.targets or self.sources)


NAMES_FILE = Path(__file__).with_name("language_names.json")


@cache
def language_names() -> dict[str, str]:
    """Every language name (lower case) in French and English -> its ISO code: the ISO 639-1
    languages as langcodes names them (`NAMES_FILE`), their French feminine forms and the ALIASES."""
    names = json.loads(NAMES_FILE.read_text(encoding="utf-8"))
    for name, code in ALIASES.items():
        names.setdefault(name, code)
    return names


def langcodes_names() -> dict[str, str]:
    """The names of `NAMES_FILE`, from langcodes. Kept in a file because langcodes' names cost 18 MB
    of memory and a third of a second in every process that reads them (each task of a run with
    langid); tests/test_language_requests.py checks that the file is current."""
    import itertools
    import string

    import langcodes

    names: dict[str, str] = {}
    for a, b in itertools.product(string.ascii_lowercase, repeat=2):
        language = langcodes.Language.get(a + b)
        english = language.display_name("en")
        if english.startswith("Unknown") or english.lower() == a + b:
            continue
        code = iso_code(a + b)
        for name in (english, language.display_name("fr")):
            name = name.lower().replace("’", "'")
            if "(" in name or name in NOT_NAMES:
                continue
            names.setdefault(name, code)
            for feminine in _feminine(name):
                names.setdefault(feminine, code)
    return names


def _feminine(name: str) -> tuple[str, ...]:
    """The French feminine forms of a language adjective: anglais -> anglaise, coréen -> coréenne,
    grec -> grecque (only one-word names, the others are nouns)."""
    if " " in name or name.endswith("e"):
        return ()
    if name.endswith(("ien", "éen", "on")):
        return (name + "ne",)
    if name.endswith("c"):
        return (name + "que",)
    return (name + "e",)


@cache
def _names_pattern() -> str:
    """A regex of every language name, as a trie: Python's `re` tries the branches of a plain
    alternation one after the other (556 names: 11 ms a prompt, against well under 1 ms)."""
    trie: dict = {}
    for name in language_names():
        node = trie
        for char in name:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: dict) -> str:
        alternatives = [re.escape(char) + branch(child) for char, child in sorted(node.items()) if char]
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
        return f"(?:{body})?" if "" in node else body

    return "(?:" + branch(trie) + ")"


@cache
def _any_name() -> re.Pattern:
    """Any language name: a text without one asks for no language (most prompts)."""
    return re.compile(rf"\b{_names_pattern()}(?![\w-])", re.I)


CONTEXT = 160  # characters looked at before a language name (a verb, a window of 70, a preposition)
# within the same sentence, and not across a negation
NEAR = r"(?:(?!\b(?:pas|jamais|not|never|no)\b)[^.!?\n]){0,70}?"
THE = r"(?:(?:the|l'|le|la)\s*)?"
# French: imperative, infinitive, subjunctive and future forms (not « écrit », « répond »: a text
# written in English, a person who answers in English), not after « ne », « je », « j' »
FR_VERBS = (
    r"r[ée]pon(?:ds|dez|dre|dons|de|des|drez|dras|dra)|[ée]cri(?:s|vez|re|vons|ve|ves|rez|ras)"
    r"|r[ée][ée]cri(?:s|vez|re|ve)|r[ée]dig(?:e|ez|er|es)|tradui(?:s|sez|re|sons|se|ses|rez|ras)"
    r"|reformul(?:e|ez|er)|formul(?:e|ez|er)|parle(?:z|r)?-(?:moi|nous)|parlons|parlez"
    r"|expliqu(?:e|ez|er)|exprim(?:e|ez|er)|continu(?:e|ez|er|ons)|compos(?:e|ez|er)"
    r"|raconte(?:z|r)?|r[ée]sum(?:e|ez|er)|dis-(?:moi|le|nous)|dites|donne(?:z|r)?|fais|faites"
    r"|transcri(?:s|vez|re)|convertis(?:sez)?|pass(?:e|ez|er)|mets|mettez|mettre|propose(?:z|r)?"
    r"|fournis(?:sez)?|[ée]labor(?:e|ez|er)|cr[ée](?:e|ez|er)|g[ée]n[èée]r(?:e|ez|er)|ajout(?:e|ez|er)"
    r"|inclu(?:s|ez|re)|ins[èée]r(?:e|ez|er)|termin(?:e|ez|er)|commenc(?:e|ez|er)|conclu(?:s|ez|re)"
    r"|qui\s+(?:r[ée]pond|[ée]crit|parle|s'exprime)"
)
FR_RESPONSE = (
    r"(?:(?:votre|vos|ta|tes|ton)\s+(?:r[ée]ponses?|textes?|messages?|r[ée]dactions?|productions?|contenus?"
    r"|sorties?|propos|descriptions?|histoires?|lettres?|po[èe]mes?|r[ée]cits?)|(?:la|les)\s+r[ée]ponses?)\b"
)
EN_VERBS = (
    r"answer|respond|reply|write|rewrite|re-write|translate|say|speak|talk|explain|tell|describe"
    r"|express|compose|draft|summari[sz]e|give|provide|generate|produce|put|convert|render|continue"
    r"|create|output|list|repeat|redo|use|make|(?:that|who)\s+(?:always\s+)?(?:answers|responds|"
    r"replies|writes|speaks)"
)
EN_RESPONSE = (
    r"\b(?:(?:your\s+(?:entire\s+|whole\s+|full\s+|complete\s+)?|the\s+(?:entire|whole|full|complete)\s+)"
    r"(?:response|answer|reply|output|text|essay|poem|story|letter|translation)|the\s+(?:response|answer"
    r"|reply|output))s?\b"
)
NOT_FIRST_PERSON = r"(?<!\bje )(?<!\bj')(?<!\bne )(?<!\bn')(?<!\bI )(?<!\bwe )(?<!\bthey )(?<!n't )(?<!not )(?<!never )"
# what comes right before a language name: « en », "in", « en langue », « la version »...
FR_IN = r"\ben\s+(?:langue\s+)?"
FR_FEMININE = r"(?:(?:en|dans\s+(?:la|une))\s+(?:langue|version)|(?:la|une)\s+(?:version|traduction))\s+"
EN_IN = rf"\b(?:in|into|to|using)\s+(?:only\s+)?{THE}"
# A request is a language name with one of these before it (the text up to the name), or before and
# after it (the text from the end of the name).
BEFORE = [
    # a verb asking for the answer, then « en anglais » / "in English"
    rf"{NOT_FIRST_PERSON}(?<![\w-])(?:{FR_VERBS})(?!\w)(?:-(?:le|la|les|moi|nous|lui))*{NEAR}(?:{FR_IN}|{FR_FEMININE})",
    rf"{NOT_FIRST_PERSON}\b(?:{EN_VERBS})\b{NEAR}{EN_IN}",
    # « votre réponse doit être en coréen », "your entire response should be in Gujarati"
    rf"{FR_RESPONSE}{NEAR}(?:{FR_IN}|{FR_FEMININE})",
    rf"{EN_RESPONSE}{NEAR}{EN_IN}",
    # « uniquement en chinois », "only in Korean", "use only Hindi", "no other language except Thai"
    r"\b(?:uniquement|seulement|exclusivement|enti[èe]rement|int[ée]gralement|totalement|strictement)"
    r"\s+en\s+(?:langue\s+)?",
    rf"\b(?:only|entirely|completely|exclusively|solely|purely|fully)\s+(?:in|using)\s+{THE}",
    rf"\b(?:use|using)\s+(?:only|exclusively|solely)\s+{THE}",
    rf"\bin\s+(?:entirely|only|purely|exclusively)\s+{THE}",
    rf"\b(?:no\s+other\s+language\s+(?:than|except|but)|outside\s+of|other\s+than|except)\s+{THE}",
    # « comment dit-on "chat" en anglais ? », "how do you say 'cat' in Spanish?"
    rf"\bcomment\s+(?:dit-on|dire|on\s+dit|se\s+dit|[ée]crit-on|[ée]crire|traduit-on|traduire|"
    rf"prononce-t-on|prononcer)\b{NEAR}{FR_IN}",
    rf"\bhow\s+(?:do|would|can|could|should)\s+(?:you|i|we|one)\s+(?:say|write|spell|translate|"
    rf"pronounce)\b{NEAR}\bin\s+{THE}",
    # « parlons espagnol », "let's talk in Spanish", « la traduction anglaise de ... »
    r"(?:\bparlons|\bparlez|\bparle-(?:moi|nous)|\bparlez-(?:moi|nous)|\blet's\s+(?:talk|speak)"
    r"|(?<!you )(?<!\bI )(?<!\bwe )\bspeak(?:\s+to\s+me)?)\s+(?:en\s+|in\s+)?",
    r"\btraduction\s+(?:en\s+)?",
]
BEFORE_AND_AFTER = [
    # "in Korean only", "use Swahili language only"
    (rf"\b(?:in|using|use)\s+{THE}", r"(?:\s+language)?\s+only\b"),
    # « en anglais s'il te plaît », "in Spanish please"
    (r"\b(?:en|in)\s+", r"\s*,?\s*(?:s'il\s+(?:te|vous)\s+pla[iî]t|svp|stp|please|pls)\b"),
    # "the Spanish translation"
    ("", r"\s+translation\b"),
]
# « traduis ce texte de l'anglais vers le français », "translate it from English into French": the
# language a translation starts from, just before the one asked for
TRANSLATION = (
    rf"\b(?:tradui\w*|traduction|translat\w*)\b{NEAR}\b(?:de|depuis|du|from)\s+{THE}"
    rf"(?P<source>[^\W\d_]+(?:\s[^\W\d_]+)?)\s+(?:vers|en|à|au|in|into|to)\s+{THE}"
)


@cache
def _rules() -> tuple[re.Pattern, list[tuple[re.Pattern | None, re.Pattern | None]], re.Pattern]:
    """The compiled rules: one pattern for every `BEFORE` (ending where the name starts), the
    before-and-after pairs, and the translation's."""
    before = re.compile("(?:" + "|".join(BEFORE) + ")$", re.I)
    pairs = [(re.compile(b + "$", re.I) if b else None, re.compile(a, re.I)) for b, a in BEFORE_AND_AFTER]
    return before, pairs, re.compile(TRANSLATION + "$", re.I)


def language_request(text: str) -> LanguageRequest:
    """The languages a text asks its answer to be in, and those a translation it asks for starts
    from, as ISO codes in the order they come; empty when it asks for none. Each language name the
    text holds is a request when what comes before it (and, for a few, after it) asks for it."""
    names = language_names()
    targets: dict[str, None] = {}
    sources: dict[str, None] = {}
    lowered = text.replace("’", "'")
    before, pairs, translation = _rules()
    for m in _any_name().finditer(lowered):
        context = lowered[max(0, m.start() - CONTEXT) : m.start()]
        following = lowered[m.end() : m.end() + CONTEXT]
        asked = before.search(context) is not None or any(
            (b is None or b.search(context) is not None) and a.match(following) is not None for b, a in pairs
        )
        start = translation.search(context)
        source = names.get(_name(start["source"])) if start else None
        if source is not None:
            asked = True
            sources[source] = None
        if asked:
            targets[names[_name(m.group(0))]] = None
    return LanguageRequest(tuple(targets), tuple(c for c in sources if c not in targets))


def requested_languages(text: str) -> tuple[str, ...]:
    """The ISO codes of the languages a text asks its answer to be in (« réponds en anglais » -> en)."""
    return language_request(text).targets


def requested_language(text: str) -> str | None:
    """The language a text asks its answer to be in, the first if it asks for several; None if none."""
    targets = requested_languages(text)
    return targets[0] if targets else None


def requests_per_turn(messages: list[dict[str, str]]) -> list[tuple[frozenset[str], frozenset[str]]]:
    """Per turn of a conversation, and once more after the last: the languages the user and system
    turns before it asked the answer to be in (« réponds en anglais », "translate it into Spanish"),
    and those a translation they asked for starts from. A language named without a request ("I am
    learning Spanish") is not asked for, nor is the language a user writes in."""
    asked: set[str] = set()
    translated_from: set[str] = set()
    requests = []
    for m in messages:
        requests.append((frozenset(asked), frozenset(translated_from)))
        if m["role"] in ("user", "system"):
            request = language_request(m["content"])
            asked.update(request.targets)
            translated_from.update(request.sources)
    requests.append((frozenset(asked), frozenset(translated_from)))
    return requests


def _name(matched: str) -> str:
    return " ".join(matched.lower().replace("’", "'").split())
