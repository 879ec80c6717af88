"""The verifiable constraints a French or English user prompt states in words, for prompts that carry no
instruction ids: `detect_instructions(prompt)` returns them as (bare IFEval id, kwargs), the kwargs named as
M-IFEval's checkers take them, relations as "less than" / "at least".

Precision comes first: a detection the prompt does not ask for makes the stage reject good answers. So a
detector reads the sentences that ask (an imperative, the reader addressed, what must be), never a mention
("la virgule est un signe de ponctuation", a question about commas, a statement such as "most speakers know
15000 to 20000 words", text quoted), and fires only where the check it leads to is the one asked for:
- a bare length ("un texte de 300 mots", "a 300-word essay", "in 3 sentences") is a target, not a bound: a
  290-word answer is a good answer to it, so it is not detected; bounds are ("au moins", "fewer than", "at
  most", "ne dépasse pas", "exactly", "between 100 and 120"). "At most N" is "less than N+1", "more than
  N" is "at least N+1". Lines of verse are not sentences;
- a paragraph count only where the prompt says the paragraphs are separated by `***` (the checker splits on
  it and counts exactly, so "at least 5 sections" is not read); paragraphs separated by blank lines are not;
- a bullet count only when exact (the checker counts exactly), a title only when its brackets are shown
  (<<titre>> or ##titre##), a postscript only with its marker, an ending only with its exact words.
Measured on M-IFEval's prompts (ids known) and on prompts without constraints (vigogne OASST, Alpaca):
benchmarks/instruction_detection.py.

Over 600 lines: the sixteen detectors share one reader of sentences, numbers and bounds, and each is its
patterns read together with the exclusions that keep its precision; split, an id's patterns and the
mentions they must not match would sit in different files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import NamedTuple

Detection = tuple[str, dict]
LESS, LEAST = "less than", "at least"

# ------------------------------------------------------------------------------ numbers in digits or words

_NUMBER_WORDS = {
    # French
    "zéro": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
    "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15,
    "seize": 16, "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60,
    "cent": 100, "cents": 100, "mille": 1000,
    # English
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
}  # fmt: skip
_WORD = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
_JOIN = r"(?:-et-|-|\s+et\s+|\s+and\s+|\s+)"
NUM = rf"(?:\d{{1,3}}(?:[ ,]\d{{3}})+(?!\d)|\d+|(?:{_WORD})(?:{_JOIN}(?:{_WORD}))*)(?!\w)"


def parse_number(text: str) -> int | None:
    """ "456", "1 200", "trente-deux", "quatre-vingt-dix", "one hundred and fifty" -> the integer."""
    digits = re.sub(r"[ ,]", "", text)
    if digits.isdigit():
        return int(digits)
    total = current = 0
    previous = ""
    for token in re.split(r"-|\s+", text.lower()):
        if token in ("et", "and") and previous:
            continue
        if token not in _NUMBER_WORDS:
            return None
        value = _NUMBER_WORDS[token]
        if value == 100:
            current = (current or 1) * 100
        elif value == 1000:
            total, current = total + (current or 1) * 1000, 0
        elif value == 20 and previous == "quatre":  # quatre-vingt(s) = 80
            current += 76
        else:
            current += value
        previous = token
    return total + current


# ------------------------------------------------------------------------------ sentences that request

# a sentence ends at . ! ? ; before a space, or at a line break; not after "i.e.", "P.S.", "p.-s.", "Dr."
_SENTENCE_END = re.compile(r"[.!?;]+\s+|\n+")
_ABBREVIATION = re.compile(
    r"(?:\b\w|\b(?:etc|ex|cf|Dr|Mr|Mrs|Ms|St|vs|M|Mme|Mlle|No|approx|env)|\.[a-z]|p\.-s)\.$", re.I
)
# a question about a constraint is not a request for it, unless it asks for the answer ("Can you ... ?")
_POLITE_QUESTION = re.compile(
    r"^\W*(?:can|could|would|will)\s+you\b|^\W*(?:pourriez|pouvez|peux|peut)[- ]|^\W*(?:please|s'il)", re.I
)
_QUOTE = re.compile(r'"[^"\n]*"|«[^»\n]*»')


def normalise(prompt: str) -> str:
    """Typographic quotes and spaces as plain ones, so that one pattern reads both."""
    table = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "„": '"', "\u00a0": " ", "\u202f": " "})
    return prompt.translate(table)


def sentences(text: str) -> list[str]:
    found, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        if "\n" not in end.group(0) and _ABBREVIATION.search(text[start : end.start() + 1]):
            continue  # "i.e. <<title>>", "P.S. at the end"
        found.append(text[start : end.end()].strip())
        start = end.end()
    found.append(text[start:].strip())
    return [s for s in found if s]


# a statement, not a request: it starts with a subject or a preposition and nothing in it asks ("most
# speakers have a vocabulary of 15000 to 20000 words", "les titres ne contiennent pas de virgule")
_STATEMENT_START = re.compile(
    r"^\W*(?:the|a|an|most|many|some|this|that|these|those|it|it's|he|she|they|we|there|i|i'm|my|our|his|her|"
    r"their|from|in|on|at|for|with|as|when|if|after|before|since|because|although|while|according|le|la|les|l'|"
    r"un|une|des|du|ce|cet|cette|ces|c'est|il|elle|ils|elles|on|nous|je|j'|mon|ma|mes|notre|nos|son|sa|ses|leur|"
    r"leurs|d'après|selon|en|dans|pour|avec|comme|quand|si|après|avant|depuis|parce|bien|pendant|lorsque)\b",
    re.I,
)
_IMPERATIVE = (
    r"write|give|use|answer|respond|reply|make|create|compose|generate|describe|summari[sz]e|explain|list|provide|"
    r"tell|draft|produce|rewrite|translate|expand|elaborate|include|add|put|wrap|end|finish|start|begin|name|"
    r"suggest|outline|plan|design|imagine|compare|discuss|present|narrate|think|do|don't|avoid|refrain|highlight|"
    r"italici[sz]e|separate|mark|label|organi[sz]e|structure|divide|split|break|format|return|output|choose|select|"
    r"show|keep|limit|écris|rédige|donne|réponds|fais|utilise|résume|explique|décris|liste|propose|compose|raconte|"
    r"imagine|crée|présente|traduis|ajoute|mets|termine|commence|évite|garde|développe|cite|énumère|formule|"
    r"organise|divise|sépare|inclus|intègre|encadre|conclus|finis|choisis|reformule|réécris|génère|emploie|limite"
)
# what asks: the reader addressed, what must be, what the user wants, an imperative (first, or after a comma
# or "and"): "Write", "Donnez", "En conclusion, incluez", "For students, write"
_ASKING = re.compile(
    r"\b(?:you|your|yours|votre|vos|ta|ton|tes|vous|tu|toi|te|t'|should|must|needs?\s+to|has\s+to|have\s+to|"
    r"make\s+sure|ensure|please|let's|doit|doivent|devra|devrai[st]?|devront|devrait|devraient|veuillez|merci\s+de|"
    r"assure[sz]?|veille[sz]?|n'oublie[sz]?|i\s+(?:(?:do\s+not|don't)\s+)?(?:want|need|would\s+like|'d\s+like|wish)|i'd\s+like|je\s+veux|"
    r"je\s+voudrais|j'aimerais|je\s+souhaite)\b|\b(?!(?:chez|assez|nez|rez)\b)[a-zà-ÿ]{3,}ez\b|"
    rf"(?:^\W*(?:\d+[.)]\s*)?|[,:;]\s*|\b(?:and|then|also|et|puis|ensuite|enfin)\s+)(?:{_IMPERATIVE})\b",
    re.I,
)


def _asks(sentence: str) -> bool:
    return not _STATEMENT_START.match(sentence) or bool(_ASKING.search(sentence))


@lru_cache(maxsize=64)
def requests(text: str, *, unquoted: bool = False) -> tuple[str, ...]:
    """The prompt's sentences that can state a constraint: text quoted at length (material to work on) is
    masked, or all quoted text with `unquoted` (a bound or a case quoted is mentioned, not asked for);
    questions and statements are left out."""
    masked = _QUOTE.sub(lambda m: m.group(0) if len(m.group(0)) < 80 and not unquoted else '"…"', text)
    return tuple(
        s for s in sentences(masked) if (not s.rstrip().endswith("?") or _POLITE_QUESTION.search(s)) and _asks(s)
    )


def _any(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.I) is not None


def _sentence_detector(
    pattern: str, *, unless: str | None = None, surely: str | None = None, unquoted: bool = False
) -> Callable[[str], bool]:
    """True when one request sentence matches `pattern` and not `unless`, or matches `surely`."""
    found, excluded = re.compile(pattern, re.I), re.compile(unless, re.I) if unless else None
    certain = re.compile(surely, re.I) if surely else None

    def matches(sentence: str) -> bool:
        if certain and certain.search(sentence):
            return True
        return bool(found.search(sentence)) and not (excluded and excluded.search(sentence))

    return lambda text: any(matches(s) for s in requests(text, unquoted=unquoted))


# ------------------------------------------------------------------------------ counted bounds

_NEGATED = r"(?:\bnot?\b|n't\b|\bnever\b|\bpas\b|\bjamais\b|\bne\b|\bn')"
_LEAST = (
    r"au\s+moins|au\s+minimum|un\s+minimum\s+de|minimum\s+(?:de\s+)?|at\s+least|a\s+minimum\s+of|"
    r"no\s+(?:fewer|less)\s+than|not\s+(?:fewer|less)\s+than|pas\s+moins\s+de"
)
_MOST = (
    r"au\s+plus|au\s+maximum|un\s+maximum\s+de|maximum\s+(?:de\s+)?|at\s+most|a\s+maximum\s+of|"
    r"no\s+more\s+than|not\s+more\s+than|pas\s+plus\s+de|ne\s+(?:doit\s+|devra\s+|doivent\s+)?pas\s+dépasser|"
    r"ne\s+dépasse(?:nt)?\s+pas|(?:not|never)\s+exceed(?:ing)?|up\s+to|jusqu'à"
)
_MORE = r"plus\s+de|more\s+than|over|supérieure?s?\s+à|dépasser|exceed(?:ing)?|longer\s+than"
_FEWER = r"moins\s+de|moins\s+d'|less\s+than|fewer\s+than|under|below|inférieure?s?\s+à|shorter\s+than"
_EXACT = r"exactement|précisément|exactly|precisely"
_ANY_BOUND = rf"(?:{_LEAST}|{_MOST}|{_MORE}|{_FEWER})"
_HAS_NUMBER = re.compile(rf"\d|\b(?:{_WORD}|single|seule?)\b", re.I)


class Bound(NamedTuple):
    relation: str
    n: int
    start: int
    end: int


# (pattern, bounds from its first and last number, usable without a unit after "the number of words ...")
# {u} is the unit with what may stand between it and the number: "300 mots", "300-word", "10 short sentences"
_BOUND_PATTERNS: list[tuple[str, Callable[[int, int], list[tuple[str, int]]], bool]] = [
    (r"\b(?:between|entre)\s+({n})\s+(?:and|et)\s+({n}){u}", lambda a, b: [(LEAST, a), (LESS, b + 1)], True),
    (r"\brange\s+of\s+({n})\s+to\s+({n}){u}", lambda a, b: [(LEAST, a), (LESS, b + 1)], True),
    (r"(?<![\w.])({n})\s*(?:-|to|à|or|ou)\s*({n}){u}", lambda a, b: [(LEAST, a), (LESS, b + 1)], False),
    (r"\b(?:{exact})\s+({n}){u}", lambda n, _: [(LEAST, n), (LESS, n + 1)], True),
    (
        r"\b(?:in|en|with|avec|using|d')\s+(?:une?\s+seule?|a\s+single|one\s+single)(){u}",
        lambda n, _: [(LEAST, 1), (LESS, 2)],
        False,
    ),
    (r"\b(?:{least})\s*({n}){u}", lambda n, _: [(LEAST, n)], True),
    (r"\b(?:{most})\s*({n}){u}", lambda n, _: [(LESS, n + 1)], True),
    (r"(?<![\w.])({n})\s*(?:\+|or\s+more|ou\s+plus){u}", lambda n, _: [(LEAST, n)], True),
    (r"(?<![\w.])({n})\s*(?:or\s+(?:less|fewer)|ou\s+moins){u}", lambda n, _: [(LESS, n + 1)], True),
    (r"(?<![\w.])({n}){u}\s+(?:or|ou)\s+(?:more|plus)\b", lambda n, _: [(LEAST, n)], False),
    (r"(?<![\w.])({n}){u}\s+(?:or|ou)\s+(?:less|fewer|moins)\b", lambda n, _: [(LESS, n + 1)], False),
    (
        r"(?<![\w.])({n}){u}\s+(?:maximum|max|au\s+maximum|au\s+plus|at\s+most|tops)\b",
        lambda n, _: [(LESS, n + 1)],
        False,
    ),
    (r"(?<![\w.])({n}){u}\s+(?:minimum|min|au\s+minimum|au\s+moins|at\s+least)\b", lambda n, _: [(LEAST, n)], False),
    (r"\b(?:{more})\s+({n}){u}", lambda n, _: [(LEAST, n + 1)], True),
    (r"\b(?:{fewer})\s*({n}){u}", lambda n, _: [(LESS, n)], True),
]


@lru_cache(maxsize=32)
def _bound_patterns(unit: str | None) -> list[tuple[re.Pattern, Callable[[int, int], list[tuple[str, int]]]]]:
    unit_pattern = rf"[\s-]*(?:[\w']+\s+)??(?:{unit})\b" if unit else r"(?![\w-])"
    names = dict(n=NUM, u=unit_pattern, exact=_EXACT, least=_LEAST, most=_MOST, more=_MORE, fewer=_FEWER)
    return [(re.compile(t.format(**names), re.I), r) for t, r, bare in _BOUND_PATTERNS if unit or bare]


def bounds(text: str, unit: str | None) -> list[Bound]:
    """The bounds the text puts on `unit` ("mots?|words?") as the checkers read them: "at most 150" is
    "less than 151", "more than 30" is "at least 31", "exactly 1" is both. Without a unit, the bounds
    written alone ("... should be 250 or more")."""
    if not _HAS_NUMBER.search(text) or (unit and not re.search(unit, text, re.I)):
        return []  # most sentences: no number, or not of this unit
    found: list[Bound] = []
    taken: list[tuple[int, int]] = []
    for pattern, relation in _bound_patterns(unit):
        for match in pattern.finditer(text):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            numbers = [parse_number(g) if g else 1 for g in match.groups()]
            if None in numbers:
                continue
            taken.append(match.span())
            first, last = numbers[0], numbers[-1]
            before = text[max(0, match.start() - 30) : match.start()]
            if re.match(rf"(?:{_MORE}|{_FEWER})\s", match.group(0), re.I) and re.search(
                _NEGATED + r"[^.,;]{0,25}$", before, re.I
            ):  # "don't use more than 100 words": at most 100
                pairs = [(LESS, first + 1)] if re.match(_MORE, match.group(0), re.I) else [(LEAST, first)]
            else:
                pairs = relation(first, last)  # type: ignore[arg-type]
            found.extend(Bound(r, n, match.start(), match.end()) for r, n in pairs)
    return sorted(found, key=lambda b: b.start)


# ------------------------------------------------------------------------------ length

# a count that is of a part of the answer ("each paragraph", "the title"), said in the same clause
_PART_OF_ANSWER = re.compile(
    r"\b(?:each|every|per|chaque|par\s+(?:phrase|ligne|paragraphe)|title|titre|headline|slogan)\b[^,;]*$", re.I
)
# the user's own text described, not the answer asked for: "my essay has fewer than 200 words"
_DESCRIBED = re.compile(
    r"^(?!.*\b(?:make\s+sure|ensure|assure|veille|should|must|doit|devra)).*"
    r"\b(?:my|mon|ma|mes|this|these|ce|cet|cette|ces)\s+(?:\w+\s+){0,2}?(?:has|have|had|contains?|is|was|"
    r"compte|contient|comporte|fait|a|avait|est)\s+[^,;]*$",
    re.I,
)
# after the unit: words in capitals (another instruction), or words of a list ("5 words that rhyme")
_CAPITALS_AFTER = re.compile(
    r"^(?:(?!\b(?:and|et)\b)[^.;,]){0,40}?\b(?:majuscules?|capital|caps|uppercase|upper\s+case|capitali[sz]ed)\b", re.I
)
_EACH_AFTER = re.compile(
    r"^\s*(?:each|apiece|chacun\w*|per\s+\w+|par\s+(?:phrase|paragraphe|ligne|section|partie))\b", re.I
)
_LISTED_AFTER = re.compile(
    r"^\s+(?:that|which|qui|que|dont|from|of\s+the|de\s+la\s+liste|starting|beginning|ending|rhyming|"
    r"commençant|finissant|related|describing|to\s+describe|pour\s+décrire|de\s+(?:votre|ton|ta)|of\s+your)\b",
    re.I,
)


def length_bounds(text: str, unit: str, *, listed: bool) -> list[tuple[str, int]]:
    """The answer's length bounds in `unit`; `listed`: a relative clause after the unit makes it a list
    of such units, not a length ("at least 5 words that rhyme with cat")."""
    found = []
    for sentence in requests(text, unquoted=True):
        for bound in bounds(sentence, unit):
            after = sentence[bound.end :]
            before = sentence[: bound.start]
            if _PART_OF_ANSWER.search(before) or _DESCRIBED.search(before):
                continue
            if _CAPITALS_AFTER.match(after) or _EACH_AFTER.match(after):
                continue
            if not (listed and _LISTED_AFTER.match(after)):
                found.append((bound.relation, bound.n))
        # "the number of sentences ... should be in the range of 40 to 60", "... should be 250 or more"
        for match in re.finditer(rf"\b(?:number|nombre)\s+(?:of|de)\s+(?:{unit})\b([^.;]{{0,70}})", sentence, re.I):
            if not re.match(
                r"\s*(?:with|in|en|écrits)\s+(?:all\s+|lettres\s+)?(?:cap|maj|upper)", match.group(1), re.I
            ):
                found.extend((b.relation, b.n) for b in bounds(match.group(1), None))
    if (LESS, 2) not in found:  # "1 or 2 sentences": a floor of one says nothing
        found = [(relation, n) for relation, n in found if relation == LESS or n > 1]
    return list(dict.fromkeys(found))


def detect_length(text: str) -> Iterator[Detection]:
    for relation, n in length_bounds(text, r"mots?|words?", listed=True):
        yield "length_constraints:number_words", {"num_words": n, "relation": relation}
    for relation, n in length_bounds(text, r"phrases?|sentences?", listed=False):
        yield "length_constraints:number_sentences", {"num_sentences": n, "relation": relation}


_THREE_STARS = (
    r"(?<!\*)\*{3}(?!\*)|\b(?:three|trois|3)\s+(?:\w+\s+)?(?:asterisks?|aterisks?|astérisques?)|"
    r"markdown\s+divider|(?:séparateur|délimiteur|diviseur|symbole)\s+markdown"
)
# the separation asked for ("Separate the paragraphs with ***", "séparés par le séparateur Markdown"), not
# described ("le texte suivant contient 3 paragraphes séparés par ***")
_separated_by_stars = _sentence_detector(
    rf"^(?=.*(?:{_THREE_STARS}))(?=.*(?:\bsepar\w*|\bsépar\w*|divid|divis|délimit|distingu|between|entre))"
    r"(?=.*\b(?:separate[sd]?|sépare[rz]?|should|must|doi[st]|doivent|devr\w+|use|using|utilise[rz]?|put|mettez|insérez|"
    r"divide|divisez|organise[rz]?|structure[rz]?|séparateur|délimiteur|diviseur|divider|veuillez|please|make\s+sure|"
    r"assurez|there\s+should)\b)"
)
_PARAGRAPHS = r"paragraphes?|paragraphs?|parties|sections?|parts?|stanzas?|strophes?|steps?|étapes?"


def detect_paragraphs(text: str) -> Iterator[Detection]:
    """N paragraphs only where the prompt says they are separated by `***` (what the checker splits on,
    counting exactly)."""
    template = re.findall(r"^\s*\*\*\*\s*$", text, re.M)
    if template and _any(r"exact\s+format|format\s+exact|following\s+format|format\s+suivant", text):
        yield "length_constraints:number_paragraphs", {"num_paragraphs": len(template) + 1}
        return
    if not _separated_by_stars(text):
        return
    counts = set()
    for match in re.finditer(rf"(?<![\w.])({NUM})[ \t]+(?:\w+[ \t]+)?(?:{_PARAGRAPHS})\b", text, re.I):
        before = text[max(0, match.start() - 25) : match.start()]
        if re.search(
            rf"(?:{_ANY_BOUND}|\bin|\bdans|\beach|\bchaque|{_PARAGRAPHS}|{_SECTION_WORDS})[ \t]*$", before, re.I
        ):
            continue  # a bound is not what the checker counts; nor "dans un paragraphe", "Section 1 and 2"
        counts.add(parse_number(match.group(1)))
    counts.discard(None)
    if len(counts) == 1 and (n := counts.pop()) and n > 1:
        yield "length_constraints:number_paragraphs", {"num_paragraphs": n}


# ------------------------------------------------------------------------------ case

# the whole answer: "entièrement en majuscules", "your response ... in all capital letters"
_WHOLE = (
    r"entière(?:ment)?|intégral(?:ement|ité)|exclusivement|uniquement|complètement|totalement|seulement|"
    r"l'ensemble|tout\s+(?:le|ton|votre)|toute\s+(?:la|ta|votre)|entire|whole|only|solely|all\s+(?:of\s+)?(?:your|the)|everything|"
    r"(?:your|the|ta|votre|la)\s+(?:response|answer|reply|output|réponse)\b|in\s+english|en\s+français"
)
_UPPER = (
    r"(?:en\s+(?:lettres\s+)?majuscules|in\s+(?:all\s+)?(?:capital\s+letters|capitals|caps|upper\s*case)|"
    r"all\s+capital\s+letters|all\s+caps)"
)
_LOWER = (
    r"(?:(?:en|des)\s+(?:lettres\s+)?minuscules|(?:in\s+)?(?:all\s+)?lower\s*case(?:d|\s+letters)?|all\s+lowercased?)"
)
# an imperative that writes the whole answer: "Write an essay ... in all capital letters"
_WRITE = (
    r"^\W*(?:réponds|répondez|écris|écrivez|rédige|rédigez|compose|composez|write|answer|respond|reply|generate|"
    r"create|compose|give|provide|make)\b(?:(?!\b(?:where|who|whose|when|qui|dont|où)\b|(?<!-)\b(?:names?|titles?|words?|acronyms?|"
    r"headings?|headers?|keywords?|terms?|initials?|noms?|titres?|mots?|sigles?|initiales?)\b)[^.;:]){0,90}?"
)
# a count of words in capitals is another instruction (capital_word_frequency)
_CAPITAL_WORDS = (
    r"\b(?:mots?|words?|fois|times|occurrences?|keywords?|key\s+(?:points|abilities))\b[^.;]{0,40}(?:majuscule|capital|caps)|"
    r"(?:majuscule|capital|caps)[^.;]{0,40}\b(?:mots?|words?|fois|times|occurrences?)\b|all-caps|title|titre|first\s+letter|"
    r"première\s+lettre|initial"
)
_COUNTED_CAPITALS = (
    r"(?:majuscule|capital|caps)[^.;]{0,40}\b(?:fois|times|occurrences?)\b|"
    rf"(?:{NUM}|some|a\s+few|quelques|certains|des)\s+(?:\w+\s+)?(?:mots|words)[^.;]{{0,30}}(?:majuscule|capital|caps)"
)
_NO_LOWERCASE = (
    r"sans\s+(?:aucune?\s+|utiliser\s+(?:de|des)\s+|inclure\s+de\s+|employer\s+de\s+)?(?:lettres?\s+)?minuscules?|"
    r"aucune\s+lettre\s+(?:en\s+)?minuscule|minuscules?\s+(?:doivent|ne\s+doi)|\bno\s+lower\s*case|"
    r"not\s+a\s+single\s+(?:word|letter)[^.]{0,60}lower\s*case"
)
_NO_CAPITALS = (
    r"(?:sans|aucune?)\s+(?:aucune?\s+|utiliser\s+(?:de|des)\s+|employer\s+de\s+)?(?:lettres?\s+|mot\s+en\s+)?majuscules?|"
    r"(?:utilisation|usage)\s+de\s+(?:lettres\s+)?majuscules\s+est\s+\w*\s*(?:interdite|proscrite)|"
    r"(?:évite|évitez|n'utilise\w*\s+pas)\s+(?:d'utiliser\s+)?(?:des|de|les)\s+majuscules|lettres\s+majuscules\s+ne\s+doivent|"
    r"\bno\s+capital(?:s|\s+letters|izations?)\b|(?:without|not\s+(?:contain|use|include)|don't\s+use)\s+(?:using\s+|use\s+)?"
    r"(?:any\s+)?capital\s+letters|not\s+a\s+single\s+letter\s+[^.]{0,40}capitali[sz]ed"
)
_capital = _sentence_detector(
    rf"(?:{_WHOLE})[^.;]{{0,60}}?{_UPPER}|{_WRITE}{_UPPER}|{_NO_LOWERCASE}|(?:only|solely)\s+(?:use\s+)?capital\s+letters|"
    r"all\s+(?:of\s+the\s+)?letters\s+[^.;]{0,40}\b(?:be|are)\s+(?:capitali[sz]ed|in\s+capitals|upper\s*case)",
    unless=_CAPITAL_WORDS + "|" + _NO_CAPITALS,
    surely=r"\bcapitali[sz]e\s+(?:all|every)\s+(?:your\s+|the\s+|single\s+)?(?:words|letters?)\b|"
    r"not\s+a\s+single\s+(?:word|letter)[^.]{0,60}lower\s*case|\bno\s+lower\s*case",
    unquoted=True,
)
_lowercase = _sentence_detector(
    rf"(?:{_WHOLE})[^.;]{{0,60}}?{_LOWER}|{_WRITE}{_LOWER}|{_NO_CAPITALS}|"
    r"all\s+(?:of\s+the\s+)?letters\s+(?:in\s+your\s+response\s+)?(?:are\s+|must\s+be\s+|should\s+be\s+)?lower|"
    r"(?:use|using|answer\s+with|with|in)\s+(?:only\s+)?(?:all\s+)?lower\s*case\s+letters",
    unless=_COUNTED_CAPITALS + "|" + _NO_LOWERCASE + r"|title|titre|first\s+letter|première\s+lettre",
    unquoted=True,
)


def detect_case(text: str) -> Iterator[Detection]:
    capital, lowercase = _capital(text), _lowercase(text)
    if capital and not lowercase:  # both: the prompt was misread, say nothing
        yield "change_case:capital", {}
    if lowercase and not capital:
        yield "change_case:lowercase", {}


# ------------------------------------------------------------------------------ commas, JSON, title

_no_comma = _sentence_detector(
    r"\b(?:sans|aucune?|pas\s+(?:de|d'une?|une\s+seule)|ni)\s+(?:[\w']+\s+){0,4}?virgules?\b|"
    r"(?:\bévit\w*|n'utilis\w*\s+pas|\bne\s+(?:\w+\s+)?pas|\binterdi\w*)\s+(?:[\w']+\s+){0,4}?virgules?\b|"
    r"virgules?\s+(?:est|sont)\s+(?:interdite|proscrite)|"
    r"\b(?:no|without|avoid|refrain\s+from|free\s+of|not\s+(?:allowed\s+to\s+)?(?:use|contain|include|have|put)|"
    r"(?:do|does|should|must|can)\s*(?:not|n't)\s+(?:\w+\s+)?(?:use|contain|include|have|put)|cannot\s+(?:use|contain|include))"
    r"\s+(?:[\w']+\s+){0,4}?commas?\b|\bcomma-free\b|\bcommas?\s+(?:are|is)\s+not\s+allowed",
    unless=r"virgule\s+flottante|à\s+virgule|après\s+la\s+virgule|nombres?\s+(?:\w+\s+)?sans\s+virgule|"
    r"(?:has|have|had|there\s+(?:is|are|were))\s+no\s+commas?|comma[- ]separated|separated\s+by\s+commas|"
    r"\b(?:ce|cet|cette|this|le\s+texte\s+suivant|the\s+following)\s+(?:\w+\s+)?(?:ne\s+)?(?:contient|comporte|has|contains|does)\b",
    unquoted=True,
)

_JSON_WHOLE = (
    r"(?:entire|whole|all)\s+(?:\w+\s+){0,2}?(?:output|response|answer|reply|words)|\bENTIRE\b|"
    r"(?:l'ensemble|l'intégralité|toute?)\s+(?:de\s+)?(?:ta|votre|la)\s+réponse|réponse\s+(?:complète|entière)|"
    r"nothing\s+(?:else|outside)|outside\s+(?:of\s+)?the\s+JSON|(?:only|just)\s+(?:contain|output|include)\s+(?:a\s+|one\s+)?JSON"
)
_JSON_ANSWER = (
    r"(?:\b(?:your|the|ta|votre|la)\s+(?:response|answer|output|reply|réponse)\b|\b(?:respond|answer|reply|réponds|répondez|"
    r"format\w*|structur\w*|wrap|put|use|utilis\w*|present|présent\w*|rédig\w*|formul\w*|provide|give|list))"
    r"[^.;]{0,60}?(?:\bin|into|en|au|as|using|utilisant|sous)\s+(?:(?:a|the|le|la)\s+)?(?:format\s+)?JSON|"
    r"\bin\s+JSON\s+format\b|\bJSON\s+(?:block|bloc)\b"
)
_json = _sentence_detector(
    rf"^(?=.*\bJSON\b)(?:.*(?:{_JSON_WHOLE})|(?!.*\b(?:code|script|function|fonction|program|programme|parse|parser|"
    rf"schema|API|endpoint|convert|convertir|file|fichier|python|javascript|class|classe|YAML|XML|CSV|example|exemple|"
    rf"keywords?|mots?[- ]clés)\b).*(?:{_JSON_ANSWER}))",
    unquoted=True,
)
# a title between the brackets the prompt shows: <<titre>> (IFEval) or ##titre## (M-IFEval's French prompts)
_title = _sentence_detector(
    r"(?:^|[\s:(\"'])(?:<<[^\s<>][^<>\n]{0,80}>>|##[^\s#][^#\n]{0,80}##)|double\s+angular\s+brackets|doubles?\s+(?:chevrons|dièses)",
    unless=r"\b(?:code|cout|cin|operator|opérateur|bit\s*shift|décalage)\b",
)


def detect_format(text: str) -> Iterator[Detection]:
    if _no_comma(text):
        yield "punctuation:no_comma", {}
    if _json(text):
        yield "detectable_format:json_format", {}
    if _title(text):
        yield "detectable_format:title", {}


# ------------------------------------------------------------------------------ start and end

_QUOTED = r"\"\s*(?P<quoted>[^\"\n]{2,160}?)\s*\"|«\s*(?P<guillemets>[^»\n]{2,160}?)\s*»"
_ENDING_VERB = (
    r"\b(?:end|ends|ending|finish|finishes|conclude|concludes|close|termin\w+|conclu\w*|finis\w+|clôtur\w+|achev\w+)\b|"
    r"\b(?:very\s+(?:last\s+sentence|end)|last\s+sentence|dernière\s+phrase|derniers\s+mots)\b"
)
_EXACTLY = r"exact\w*|mot\s+pour\s+mot|word\s+for\s+word|verbatim"
_ENDING = re.compile(
    rf"(?:{_ENDING_VERB})(?P<gap>[^\"«\n]{{0,90}}?)(?:{_QUOTED})|"
    rf"(?:{_ENDING_VERB})[^\"«\n.]{{0,60}}?(?:{_EXACTLY})[^:\n\"«.]{{0,25}}:\s*(?P<bare>[^\n\"«]+?[.!?])(?=\s|$)|"
    rf"(?:{_ENDING_VERB})[^\"«\n.]{{0,40}}?\bexact\s+(?:phrase|sentence|question|words)\s+(?P<tail>[A-Z][^\n\"«]+?[.!?])\s*$|"
    rf"(?:{_ENDING_VERB})[^\"«\n.:]{{0,60}}?\bwith\s*:\s*(?:\n\s*)+(?P<line>[^\n]{{2,160}}?)\s*(?:\n|$)|"
    rf"(?:{_ENDING_VERB})[^\"«\n.:]{{0,60}}?\bwith\s*:\s*(?P<last>[^\n\"«]{{2,160}}?[.!?])\s*$",
    re.I,
)


# an ending asked for, not told: "End your response with", "should end with", "Concluez votre texte par"
_ASKED = re.compile(
    r"^\W*(?:end|finish|conclude|close|termin\w+|conclu\w*|finis\w+|clôtur\w+|achev\w+|please|make\s+sure|ensure|"
    r"assure[sz]?|veille[sz]?|n'oublie[sz]?)\b|\b(?:should|must|needs?\s+to|has\s+to|have\s+to|doi[st]|doivent|"
    r"devr\w+|your|votre|ta|ton|and\s+(?:end|finish|conclude)|terminez|concluez|finissez|clôturez|achevez|conclus)\b|"
    r"(?<!\bse\s)\b(?:termine|finis|clôture|achève)\s+(?:ton|ta|tes|le|la|avec|par)\b",
    re.I,
)


def detect_end(text: str) -> Iterator[Detection]:
    for match in _ENDING.finditer(text):
        sentence_start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, match.start())), default=0)
        if not _ASKED.search(text[sentence_start : match.start() + 40]):
            continue  # 'the campaign will end," Tracey said': an ending told, not asked for
        gap = match.group("gap") or ""
        if re.search(
            r"post-?script|p\.?-?s\b|start\w*|begin\w*|commen\w+|début\w+|question\s+(?!suivante)|"
            r"\bwords?\s+(?!after|following|other)|\ble\s+mot\b|\bthe\s+(?:word|letter)\b|\bla\s+lettre\b|\.\s",
            gap,
            re.I,
        ):
            continue  # "un post-scriptum qui commence par "PS"", "le mot "publié"" (the full stop may follow)
        groups = ("bare", "tail", "line", "last", "quoted", "guillemets")
        phrase = next(match.group(g) for g in groups if match.group(g))
        yield "startend:end_checker", {"end_phrase": phrase.strip()}
        return


_quotation = _sentence_detector(
    r"^(?=.*(?:guillemets|quotations?\s+marks?|double\s+quotes|(?:in|with|inside|within)\s+quotes))"
    r"(?=.*\b(?:wrap|enclose|surround|put|place|encadr|envelopp|entour|encapsul|mett|met|présent|plac|inside|within|entre)\w*)"
    r"(?:.*(?:entire|whole|complete)\s+(?:[\w-]+\s+){0,2}?(?:response|answer|reply|output|email|letter|text|essay|story|poem)"
    r"|.*(?:l'intégralité|l'ensemble)\s+de\s+(?:votre|ta|la|ton)\s+\w+|.*\b(?:toute?)\s+(?:votre|ta|la|le|ton)\s+(?:réponse|texte|récit)"
    r"|.*(?:wrap|enclose|put|place|encadr\w*|envelopp\w*|encapsul\w*|entour\w*|mets|mettez|mettre|place[rz]?)\s+(?:\w+\s+)?"
    r"(?:your|the|votre|ta|la)\s+(?:response|answer|reply|réponse)\b"
    r"|.*\b(?:your|the)\s+(?:response|answer|reply)\b[^.;]{0,60}\b(?:wrapped|enclosed|surrounded))"
)


def detect_quotation(text: str) -> Iterator[Detection]:
    if _quotation(text):
        yield "startend:quotation", {}


# ------------------------------------------------------------------------------ postscript, placeholders

_PS_MARKER = r"[\"«']?\s*(?P<marker>[^\s\"«»']+)"
_POSTSCRIPT = re.compile(
    r"\b(?:post-?scriptum|post-?script|post\s+script)\b[^.\n]{0,40}?\b(?:commen\w+|début\w+|start\w*|begin\w*|"
    rf"indicated\s+by|introduced\s+by|marked\s+(?:by|with)|précédé|introduit)\s+(?:par|with|by|avec)?\s*{_PS_MARKER}|"
    r"\bnote\s+(?:starting|beginning)\s+with\s+[\"«']?\s*(?P<note>P\.\s?(?:P\.\s?)?S\.?)|"
    r"\b(?:with|add|include|avec|ajout\w*|inclu\w*)\s+(?:a|an|un)\s+(?P<bare>P\.\s?(?:P\.\s?)?S\.?)\s+(?:at\s+the\s+end|à\s+la\s+fin)",
    re.I,
)


def _postscript_marker(token: str) -> str:
    """The marker as the checker reads it: the sentence's full stop dropped, an abbreviation's kept."""
    token = token.strip(",;:)?!")
    return token if re.fullmatch(r"(?i)p\.-?s\.", token) else token.rstrip(".")  # P.S., p.-s. keep theirs


def detect_postscript(text: str) -> Iterator[Detection]:
    for sentence in requests(text):
        if match := _POSTSCRIPT.search(sentence):
            marker = match.group("marker") or match.group("note") or match.group("bare")
            yield "detectable_content:postscript", {"postscript_marker": _postscript_marker(marker)}
            return


_PLACEHOLDER = r"(?:placeholders?|espaces?\s+réservés?|éléments?\s+manquants?|emplacements?|champs?\s+à\s+remplir)"


def detect_placeholders(text: str) -> Iterator[Detection]:
    """ "at least 3 placeholders in square brackets": the checker counts at least, so an exact or bare count
    is read as a floor; a ceiling alone ("at most 2") is not checked."""
    if not _any(r"crochets|square\s+brackets|\[[^\]\n]{1,40}\]", text):
        return
    for sentence in requests(text):
        if _any(r"\b(?:replace|remplac\w*|fill|rempli\w*|complète\w*)\b", re.sub(r"\[[^\]]*\]", "", sentence)):
            continue  # the prompt's own placeholders, to be filled
        floors = [b.n for b in bounds(sentence, _PLACEHOLDER) if b.relation == LEAST]
        bare = re.search(rf"(?<![\w.])({NUM})\s+{_PLACEHOLDER}", sentence, re.I)
        if not floors and bare and _any(r"\b(?:include|contain|use|inclu\w*|intégr\w*|compor\w*|conten\w*)", sentence):
            floors = [parse_number(bare.group(1)) or 0]
        if floors and floors[0] > 0:
            yield "detectable_content:number_placeholders", {"num_placeholders": floors[0]}
            return


# ------------------------------------------------------------------------------ bullets, sections, highlights

_BULLET_ADJECTIVES = (
    r"(?:(?:very|short|brief|concise|distinct|different|main|key|markdown|précis|courts?|principaux|distincts?)\s+)"
)
_BULLETS = re.compile(
    rf"(?<![\w.])(?P<n>{NUM})\s+{_BULLET_ADJECTIVES}{{0,2}}(?:bullet(?:\s+points?|s)?|puces?|points?\s+(?:\w+\s+){{0,2}}?puces?)\b|"
    rf"(?<![\w.])(?P<points>{NUM})\s+points?\b(?=[^\n]{{0,200}}(?:puces?|bullet|markdown[^\n]{{0,80}}\n\s*\*\s))",
    re.I,
)


def detect_bullets(text: str) -> Iterator[Detection]:
    """An exact number of markdown bullets (the checker counts exactly): "at least 3 bullets" is not read."""
    for match in _BULLETS.finditer(_QUOTE.sub(lambda m: m.group(0) if len(m.group(0)) < 80 else '"…"', text)):
        before = text[max(0, match.start() - 25) : match.start()]
        if re.search(rf"{_ANY_BOUND}\s*$", before, re.I):
            continue
        if n := parse_number(match.group("n") or match.group("points")):
            yield "detectable_format:number_bullet_lists", {"num_bullets": n}
            return


_SECTION_WORDS = r"parties|partie|sections?|paragraphes?|paragraphs?|parts?|chapitres?|chapters?|défauts?"
_SECTION_MARK = re.compile(
    r"(?:mention|with|avec|par|by|as|labell?ed|label|marked|noted|commen\w+|début\w+|introdu\w+|start\w*|begin\w*)"
    r"\s+(?:the\s+|la\s+|le\s+|une?\s+)?(?:mention\s+|word\s+|mot\s+)?[\"'«]?\s*(?P<word>[^\W\d_]+)\s+X\b(?!\w|'\w)|"
    r"[(\"'«]\s*(?P<first>[^\W\d_]+)\s+1[\"'»]?\s+(?:and|et)\s+[\"'«]?(?P=first)\s+2\b",
    re.I,
)


def detect_sections(text: str) -> Iterator[Detection]:
    """ "N parts, each starting with SECTION X": the marker as written (the checker reads its case)."""
    if not (mark := _SECTION_MARK.search(text)):
        return
    counts = {
        parse_number(m.group(1))
        for m in re.finditer(rf"(?<![\w.])({NUM})[ \t-]+(?:\w+[ \t]+)?(?:{_SECTION_WORDS})\b", text, re.I)
        if not re.search(rf"(?:{_SECTION_WORDS})[ \t]*$", text[: m.start()], re.I)  # "Section 1 and Section 2"
    }
    counts.discard(None)
    if len(counts) == 1 and (n := counts.pop()) and n > 1:
        spliter = mark.group("word") or mark.group("first")
        yield "detectable_format:multiple_sections", {"section_spliter": spliter, "num_sections": n}


_HIGHLIGHT_VERB = (
    r"\b(?:highlight(?!ed)\w*|(?:be|être)\s+highlighted|italici[sz]e\b|mett\w*\s+en\s+(?:avant|évidence)|"
    r"met\s+en\s+avant|surlign\w*|soulign\w*|mise\s+en\s+(?:avant|évidence)|italic\s+text|texte\s+en\s+italique|emphasi[sz]e\b)"
)
# the markdown the checker counts, named or shown: "*partie mise en avant*", "with markdown", "use *"
_HIGHLIGHT_MARKUP = r"markdown|astérisques?|asterisks?|\*[^*\s][^*\n]{0,60}\*|(?<!\*)\*(?![*\w])"
_HIGHLIGHTED = (
    r"sections?|parties|partie|parts?|passages?|mots|words?|phrases?|points?|éléments|segments?|keywords?|names|"
    r"noms|items|terms|termes"
)


def _examples(following: tuple[str, ...]) -> list[str]:
    """The sentences right after a request that show what it asks for."""
    shown = []
    for i, sentence in enumerate(following):
        if i == 0 and _any(r"italic|highlight|surlign|mise?\s+en\s+(?:avant|évidence)|wrap|encadr|entour", sentence):
            shown.append(sentence)  # "To indicate an italic word, wrap it with asterisks"
            continue
        if not re.match(
            r"(?:for\s+example|par\s+exemple|example|exemple|e\.g\.|i\.e\.|like|comme|tel\s+que|\d+\.|[*-])",
            sentence,
            re.I,
        ):
            break
        shown.append(sentence)
    return shown


def detect_highlights(text: str) -> Iterator[Detection]:
    """ "Highlight at least 3 sections with markdown, i.e. *highlighted section*": the checker counts at
    least; the count nearest the verb is taken, and a request without one asks for one."""
    said = requests(text)
    for i, sentence in enumerate(said):
        shown = " ".join([sentence, *_examples(said[i + 1 : i + 4])])  # "... For example:\n1. *NAME 1*"
        verb = re.search(
            _HIGHLIGHT_VERB,
            re.sub(r"(?<!\*)\*[^*\s][^*\n]{0,60}\*(?!\*)", lambda m: " " * len(m.group(0)), sentence),
            re.I,
        )  # not in "*highlighted*"
        if not (verb and _any(_HIGHLIGHT_MARKUP, shown)):
            continue
        counts = [b for b in bounds(sentence, r"[\w'-]+") if b.relation == LEAST]
        counts = [b for b in counts if not _any(r"\b(?:fois|times)$", sentence[b.start : b.end])]  # a keyword's
        counts += [
            Bound(LEAST, parse_number(m.group(1)) or 0, m.start(), m.end())
            for m in re.finditer(rf"(?<![\w.*])({NUM})\s+(?:[\w-]+\s+){{0,3}}?(?:{_HIGHLIGHTED})\b", sentence, re.I)
            if not re.search(rf"{_ANY_BOUND}\s*$", sentence[: m.start()], re.I)
        ]
        if counts:
            n = min(counts, key=lambda b: abs(b.start - verb.start())).n
        elif _any(r"\beach\b|\bchaque\b|\btwice\b|\bdeux\s+fois\b", sentence):
            continue  # "highlight each section name": the number is elsewhere
        else:
            n = 1
        if n > 0:
            yield "detectable_format:number_highlighted_sections", {"num_highlights": n}
            return


# ------------------------------------------------------------------------------ two answers

_SIX_STARS = r"(?<!\*)\*{6,7}(?!\*)|\b(?:six|6)\s+(?:\w+\s+)?(?:asterisks?|astérisques?|étoiles)"
_OTHER_NUMBER_OF_ANSWERS = (
    r"\b(?:three|four|five|trois|quatre|cinq|[3-9])\s+(?:\w+\s+)?"
    r"(?:responses|answers|réponses|versions|variantes|options)"
)


def detect_two_responses(text: str) -> Iterator[Detection]:
    """Two answers separated by ******: the separator said in the sentence that asks to separate, or shown
    in the lines right after it ("Separate the two poems like below:\\nPoem 1\\n******")."""
    said = requests(text)
    for i, sentence in enumerate(said):
        shown = " ".join(said[i : i + 3])
        if (
            _any(r"separ|sépar|split|between|entre|divid", sentence)
            and _any(_SIX_STARS, shown)
            and not _any(_OTHER_NUMBER_OF_ANSWERS, text)
        ):
            yield "combination:two_responses", {}
            return


# ------------------------------------------------------------------------------ all of them

DETECTORS: tuple[Callable[[str], Iterator[Detection]], ...] = (
    detect_length,
    detect_paragraphs,
    detect_case,
    detect_format,
    detect_end,
    detect_bullets,
    detect_sections,
    detect_postscript,
    detect_placeholders,
    detect_quotation,
    detect_highlights,
    detect_two_responses,
)


def detect_instructions(prompt: str) -> list[Detection]:
    """The verifiable constraints a French or English prompt states, as (bare id, kwargs)."""
    text = normalise(prompt)
    found: list[Detection] = []
    for detector in DETECTORS:
        for detection in detector(text):
            if detection not in found:
                found.append(detection)
    return found
