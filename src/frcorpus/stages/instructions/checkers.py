"""frcorpus's checkers for the 30 French instruction ids of M-IFEval (`fr:...` in
`benchmarks_fr/mifeval/fr_input_data.jsonl`), and the language-neutral checkers of the bare ids that
`detect.py` finds in prompts without ids (`NEUTRAL_CHECKERS`, at the end).

What each instruction means is M-IFEval's definition (Dussolle et al. 2025, arXiv 2502.04688; its French
checkers in lightblue-tech/M-IFEval, also ported to lm-evaluation-harness as `m_ifeval`, which the
installable lm-eval 0.4.13 lacks): the same words, sentences, paragraphs, bullets and relations, so that
frcorpus reproduces the published scores. This is frcorpus's own code, written from those definitions.
Deviations, each named where it is made, and what they change on M-IFEval's 17 published answer files
(benchmarks/ifeval_fr_reproduction.py; 31 instruction verdicts of 5,865, at most 4 prompts of a model's 235):
- the response language and "in French" are read by frcorpus's `langid` (lid.176), not langdetect, which
  M-IFEval runs unseeded (a verdict can change between runs) and which names Chinese "zh-cn", never the
  benchmark's "zh": every Chinese answer failed (item 99, 13 models). Other way: 3 all-caps JSON answers
  of item 182 read as English, and a Swahili loop ("Kuwa kama kusaidia kama ...") read as English;
- a postscript marker must be a word of its own: M-IFEval finds "ps" inside "temps" or "corps" (2 answers
  without a postscript passed), and takes the dots of "p.-s." as any character (2 answers that write
  "\n" as text before "p.-s." now fail);
- accents are any letter that decomposes with a combining mark (M-IFEval lists the Latin-1 letters; no
  verdict changes);
- a bullet is a "*" or "-" followed by a space, as markdown writes a list item: M-IFEval counts a line
  that starts with an italic word ("*Ma tante*, ...") or a "---" rule (3 verdicts, each read: italic
  lines are not bullets);
- a code fence's language tag ("```json") is not text written in lower case (6 all-caps JSON answers
  in a ```json fence now follow "en MAJUSCULES");
- a word in capitals after an elision counts ("l'AUTOMNE"; nltk keeps it one token, which is not all
  capitals: 1 verdict).
These last three were found by the `verify_instructions` stage, which filters training data with these
checkers: each wrongly rejected an answer that follows its instruction. Everything else, including what
looks odd (keywords found inside longer words), is kept as defined: the published numbers were computed
that way.

A builder takes the instruction's kwargs (keyword-only: an unknown or missing one is a TypeError that
the loader reports with its file and line) and returns the check, a function of the response.
"""

from __future__ import annotations

import json
import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Callable

from frcorpus.stages.instructions.text import count_words, english_word_tokens, french_sentences, response_language

Check = Callable[[str], bool]

# "moins de" N: fewer than N; "au moins" N: N or more (M-IFEval's two relations, French wording)
RELATIONS: dict[str, Callable[[int, int], bool]] = {"moins de": operator.lt, "au moins": operator.ge}
CONSTRAINED_ANSWERS = ("Oui.", "Non.", "Peut-être.")
TWO_RESPONSES_SEPARATOR = "******"
PARAGRAPH_DIVIDER = re.compile(r"\s?\*\*\*\s?")  # "***" between paragraphs, a space either side taken with it
PLACEHOLDER = re.compile(r"\[.*?\]")  # [nom], on one line
# "* item", "- item": a marker, then a space, as markdown writes a list item (not "*italique* ..." or "---")
BULLET = re.compile(r"^[ \t]*[*-][ \t]+\S.*$", re.M)
# the language tag of a code fence ("```json"): markup, not text in capitals or lower case
FENCE_TAG = re.compile(r"^([ \t]*(?:```|~~~))[^\s`~]+", re.M)
ELISION = re.compile(r"^\w+['’]")  # "l'", "d'", "qu'" before a word: "l'AUTOMNE" is the word AUTOMNE
STAR_HIGHLIGHT = re.compile(r"\*[^\n*]*\*")
BOLD_HIGHLIGHT = re.compile(r"\*\*[^\n*]*\*\*")
TITLE = re.compile(r"##[^\n]+##")  # ##titre##
# the pronouns and possessives of "tu": one is enough
INFORMAL_ADDRESS = re.compile(r"\btu\b|\bte\b|\bt'\b|\btoi\b|\bton\b|\bta\b|\btes\b", re.I)
# the first word of a paragraph ends at the first of these
FIRST_WORD_END = frozenset(".,?!'\"")
# what M-IFEval strips around a JSON answer: markdown fences, with or without their language tag
JSON_FENCES = ("```json", "```Json", "```JSON", "```")
# postscript markers M-IFEval spells out: the dots may be followed by a space ("P. P. S")
SPELLED_POSTSCRIPTS = {"P.P.S": r"p\.\s?p\.\s?s", "P.S.": r"p\.\s?s\."}

FR_CHECKERS: dict[str, Callable[..., Check]] = {}


def checker(name: str):
    def register(builder: Callable[..., Check]) -> Callable[..., Check]:
        FR_CHECKERS["fr:" + name] = builder
        return builder

    return register


def comparison(name: str) -> Callable[[int, int], bool]:
    if name not in RELATIONS:
        raise ValueError(f"relation {name!r} is not one of {', '.join(map(repr, RELATIONS))}")
    return RELATIONS[name]


def has_accent(text: str) -> bool:
    """Any letter written with a diacritic (é, à, ç, ñ, ...): its decomposed form has a combining mark."""
    return any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", text))


def without_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


# ------------------------------------------------------------------------------ keywords


@checker("keywords:existence")
def keywords_existence(*, keywords: list[str]) -> Check:
    # found anywhere, case ignored, inside longer words too ("pain" in "copain"): IFEval's definition
    patterns = [re.compile(re.escape(k), re.I) for k in keywords]
    return lambda response: all(p.search(response) for p in patterns)


@checker("keywords:forbidden_words")
def forbidden_words(*, forbidden_words: list[str]) -> Check:
    patterns = [re.compile(r"\b" + re.escape(w) + r"\b", re.I) for w in forbidden_words]  # whole words only
    return lambda response: not any(p.search(response) for p in patterns)


@checker("keywords:frequency")
def keyword_frequency(*, keyword: str, frequency: int, relation: str) -> Check:
    # counted inside longer words too ("projet" in "projets"), case ignored: IFEval's definition
    pattern, compare = re.compile(re.escape(keyword.strip()), re.I), comparison(relation)
    return lambda response: compare(len(pattern.findall(response)), frequency)


@checker("keywords:letter_frequency")
def letter_frequency(*, letter: str, let_frequency: int, let_relation: str) -> Check:
    # the letter itself, either case; "e" does not count "é"
    target, compare = letter.strip().lower(), comparison(let_relation)
    return lambda response: compare(Counter(response.lower())[target], let_frequency)


# ------------------------------------------------------------------------------ language, case


@checker("language:response_language")
def response_language_is(*, language: str) -> Check:
    # a text with no letters has no language: followed, as M-IFEval counts langdetect's failure
    return lambda response: response_language(response) in (language, None)


def _in_french(text: str) -> bool:
    return response_language(text) in ("fr", None)


def without_fence_tags(text: str) -> str:
    return FENCE_TAG.sub(r"\1", text) if "```" in text or "~~~" in text else text


@checker("change_case:french_capital")
def french_capital() -> Check:
    # Deviation: a code fence's language tag does not count ("```json" around an answer in capitals)
    return lambda response: without_fence_tags(response).isupper() and _in_french(response)


@checker("change_case:french_lowercase")
def french_lowercase() -> Check:
    return lambda response: without_fence_tags(response).islower() and _in_french(response)


@checker("change_case:capital_word_frequency")
def capital_word_frequency(*, capital_frequency: int, capital_relation: str) -> Check:
    # words as nltk.word_tokenize cuts them (a hyphenated word is one), in capitals if str.isupper().
    # Deviation: without an elided article or pronoun before them ("l'AUTOMNE" is a word in capitals,
    # "L'ESPOIR" one, not two); M-IFEval counts the token whole, so "l'AUTOMNE" was not in capitals
    compare = comparison(capital_relation)

    def check(response: str) -> bool:
        words = (ELISION.sub("", token) for token in english_word_tokens(response))
        return compare(sum(word.isupper() for word in words), capital_frequency)

    return check


# ------------------------------------------------------------------------------ length


@checker("length_constraints:number_words")
def number_words(*, num_words: int, relation: str) -> Check:
    compare = comparison(relation)
    return lambda response: compare(count_words(response), num_words)


@checker("length_constraints:number_sentences")
def number_sentences(*, num_sentences: int, relation: str) -> Check:
    compare = comparison(relation)
    return lambda response: compare(len(french_sentences(response)), num_sentences)


@checker("length_constraints:number_paragraphs")
def number_paragraphs(*, num_paragraphs: int) -> Check:
    def check(response: str) -> bool:
        parts = PARAGRAPH_DIVIDER.split(response)
        blank = [i for i, part in enumerate(parts) if not part.strip()]
        if any(0 < i < len(parts) - 1 for i in blank):  # "***" twice in a row: an empty paragraph
            return False
        return len(parts) - len(blank) == num_paragraphs

    return check


@checker("length_constraints:nth_paragraph_first_word")
def nth_paragraph_first_word(*, num_paragraphs: int, nth_paragraph: int, first_word: str) -> Check:
    expected = first_word.lower()

    def check(response: str) -> bool:
        # paragraphs are split on a blank line; blank ones are not counted, but the nth is taken from
        # the split as it is (IFEval's definition)
        paragraphs = response.split("\n\n")
        counted = sum(1 for p in paragraphs if p.strip())
        if nth_paragraph > counted:
            return False
        paragraph = paragraphs[nth_paragraph - 1].strip()
        if not paragraph:
            return False
        return counted == num_paragraphs and paragraph_first_word(paragraph) == expected

    return check


def paragraph_first_word(paragraph: str) -> str:
    """The first word of a non-blank paragraph, lower-cased, without opening quotes or what follows it."""
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    end = next((i for i, c in enumerate(word) if c in FIRST_WORD_END), len(word))
    return word[:end].lower()


# ------------------------------------------------------------------------------ content


@checker("detectable_content:number_placeholders")
def number_placeholders(*, num_placeholders: int) -> Check:
    return lambda response: len(PLACEHOLDER.findall(response)) >= num_placeholders


@checker("detectable_content:postscript")
def postscript(*, postscript_marker: str) -> Check:
    # Deviation: the marker must stand as a word of its own, anywhere ("... essentiel. P-S. Merci",
    # "**PS :**"); M-IFEval finds it inside words too, so "PS" passed any answer with "temps" or
    # "corps", and took the dots of "p.-s." for any character.
    marker = postscript_marker.strip()
    spelled = SPELLED_POSTSCRIPTS.get(marker, re.escape(marker.lower()))
    pattern = re.compile(r"(?<!\w)" + spelled + r"(?!\w)")
    return lambda response: bool(pattern.search(response.lower()))


@checker("detectable_content:informal_address")
def informal_address() -> Check:
    return lambda response: bool(INFORMAL_ADDRESS.search(response))


@checker("detectable_content:no_digits")
def no_digits() -> Check:
    return lambda response: not re.search(r"\d", response)


# ------------------------------------------------------------------------------ format


@checker("detectable_format:number_bullet_lists")
def number_bullet_lists(*, num_bullets: int) -> Check:
    # Deviation: a bullet is a marker followed by a space; M-IFEval counts any line that starts with "*"
    # and one "*" that is not "**" (an italic first word: "*Ma tante*, ...") or with "-" (a "---" rule)
    return lambda response: len(BULLET.findall(response)) == num_bullets


@checker("detectable_format:constrained_response")
def constrained_response() -> Check:
    return lambda response: any(answer in response for answer in CONSTRAINED_ANSWERS)


@checker("detectable_format:number_highlighted_sections")
def number_highlighted_sections(*, num_highlights: int) -> Check:
    def check(response: str) -> bool:
        # *section* and **section**, not empty; a **section** also shows as two empty "**"
        single = sum(1 for h in STAR_HIGHLIGHT.findall(response) if h.strip("*").strip())
        double = sum(1 for h in BOLD_HIGHLIGHT.findall(response) if h[2:-2].strip())
        return single + double >= num_highlights

    return check


@checker("detectable_format:multiple_sections")
def multiple_sections(*, section_spliter: str, num_sections: int) -> Check:
    # "SECTION 1", "Chapitre 2": the word as given (case counts) and a number
    splitter = re.compile(r"\s?" + re.escape(section_spliter.strip()) + r"\s?\d+\s?")
    return lambda response: len(splitter.split(response)) - 1 >= num_sections


@checker("detectable_format:json_format")
def json_format() -> Check:
    def check(response: str) -> bool:
        text = response.strip()
        for fence in JSON_FENCES:
            text = text.removeprefix(fence)
        try:
            json.loads(text.removesuffix("```").strip())
        except ValueError:
            return False
        return True

    return check


@checker("detectable_format:title")
def title() -> Check:
    return lambda response: any(t.strip("#").strip() for t in TITLE.findall(response))


# ------------------------------------------------------------------------------ combination, start/end


@checker("combination:two_responses")
def two_responses() -> Check:
    def check(response: str) -> bool:
        parts = response.split(TWO_RESPONSES_SEPARATOR)
        answers = []
        for i, part in enumerate(parts):
            if part.strip():
                answers.append(part.strip())
            elif 0 < i < len(parts) - 1:  # an empty answer between two separators
                return False
        return len(answers) == 2 and answers[0] != answers[1]

    return check


@checker("combination:repeat_prompt")
def repeat_prompt(*, prompt_to_repeat: str) -> Check:
    expected = prompt_to_repeat.strip().lower()
    return lambda response: response.strip().lower().startswith(expected)


@checker("startend:end_checker")
def end_checker(*, end_phrase: str) -> Check:
    expected = end_phrase.strip().lower()
    return lambda response: response.strip().strip('"').lower().endswith(expected)


@checker("startend:quotation")
def quotation() -> Check:
    def check(response: str) -> bool:
        text = response.strip()
        return len(text) > 1 and any(text[0] == a and text[-1] == b for a, b in ('""', "''", "«»"))

    return check


@checker("punctuation:no_comma")
def no_comma() -> Check:
    return lambda response: "," not in response


# ------------------------------------------------------------------------------ French characters


@checker("special_character:ethel_or_cedilla")
def forbidden_char(*, forbidden_char: str) -> Check:
    # œ or ç, either case
    forbidden = {forbidden_char.lower(), forbidden_char.upper()}
    return lambda response: not any(c in response for c in forbidden)


@checker("special_character:no_accents")
def no_accents() -> Check:
    # Deviation: any diacritic (M-IFEval lists the Latin-1 accented letters; ÿ in capitals and the
    # letters of other alphabets aside, the same)
    return lambda response: not has_accent(response)


@checker("special_character:accents")
def accents(*, word_to_accentuate: dict[str, str]) -> Check:
    # every word whose unaccented form is a key must be written exactly as its value (so "a" must be
    # "à" everywhere when "a" is a key, verb or not: M-IFEval's definition)
    targets = dict(word_to_accentuate)

    def check(response: str) -> bool:
        for word in re.findall(r"\w+", response.lower()):
            expected = targets.get(without_accents(word))
            if expected is not None and word != expected:
                return False
        return True

    return check


# ------------------------------------------------------------------------------ language-neutral (bare ids)

# The constraints a prompt states in any language, without an id: the same kwargs as the `fr:` ones and,
# where the French definition holds in every language, the same builder. Where it is French only, the
# neutral one says what changes.
NEUTRAL_RELATIONS = {"less than": "moins de", "at least": "au moins", **{r: r for r in RELATIONS}}
# "<<title>>" is IFEval's English title, "##titre##" M-IFEval's French one
ANY_TITLE = re.compile(r"<<([^\n]+)>>|##([^\n]+)##")
# typographic quotation marks too: an answer that a prompt asked to wrap in quotes may use either
NEUTRAL_QUOTES = ('""', "''", "«»", "“”")


def neutral_relation(relation: str) -> str:
    """The French name of a relation given in English ("less than", "at least") or French."""
    if relation not in NEUTRAL_RELATIONS:
        raise ValueError(f"relation {relation!r} is not one of {', '.join(map(repr, NEUTRAL_RELATIONS))}")
    return NEUTRAL_RELATIONS[relation]


def neutral_number_words(*, num_words: int, relation: str) -> Check:
    return number_words(num_words=num_words, relation=neutral_relation(relation))


def neutral_number_sentences(*, num_sentences: int, relation: str) -> Check:
    # Punkt's French model with M-IFEval's abbreviations, which also lists the English ones (Mr, Dr,
    # e.g, i.e, etc, vs): sentences end where they end in English too
    return number_sentences(num_sentences=num_sentences, relation=neutral_relation(relation))


def neutral_capital() -> Check:
    return lambda response: without_fence_tags(response).isupper()  # any language (`fr:` also wants French)


def neutral_lowercase() -> Check:
    return lambda response: without_fence_tags(response).islower()


def neutral_title() -> Check:
    return lambda response: any((a or b).strip() for a, b in ANY_TITLE.findall(response))


def neutral_quotation() -> Check:
    def check(response: str) -> bool:
        text = response.strip()
        return len(text) > 1 and any(text[0] == a and text[-1] == b for a, b in NEUTRAL_QUOTES)

    return check


NEUTRAL_CHECKERS: dict[str, Callable[..., Check]] = {
    "length_constraints:number_words": neutral_number_words,
    "length_constraints:number_sentences": neutral_number_sentences,
    "length_constraints:number_paragraphs": number_paragraphs,
    "change_case:capital": neutral_capital,
    "change_case:lowercase": neutral_lowercase,
    "punctuation:no_comma": no_comma,
    "detectable_format:json_format": json_format,
    "detectable_format:title": neutral_title,
    "startend:end_checker": end_checker,
    "detectable_format:number_bullet_lists": number_bullet_lists,
    "detectable_format:multiple_sections": multiple_sections,
    "detectable_content:postscript": postscript,
    "detectable_content:number_placeholders": number_placeholders,
    "startend:quotation": neutral_quotation,
    "detectable_format:number_highlighted_sections": number_highlighted_sections,
    "combination:two_responses": two_responses,
}
NEUTRAL_IDS: tuple[str, ...] = tuple(NEUTRAL_CHECKERS)
