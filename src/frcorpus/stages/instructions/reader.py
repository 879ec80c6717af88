"""The `fr:` instructions read as a careful reader reads them, where M-IFEval's literal definition
(`checkers.py`, which `ifeval_fr` must keep to reproduce the published scores) rejects a good answer.
The `verify_instructions` stage uses these with `reading: reader` (its default); the recipe never does.

Each was found by a hand-read audit of the stage's rejects on M-IFEval's published answers:
- `detectable_format:constrained_response`: the options in any case ("oui." to a prompt that also asks
  for lower case and lists 'Oui.', 'Non.', 'Peut-être.');
- `length_constraints:nth_paragraph_first_word`: a postscript ("P.-S. : ...", "PS :") in the last
  paragraphs is not a paragraph of the text (a prompt asks for five paragraphs and a postscript);
- `change_case:french_capital`, `change_case:french_lowercase`: the language is judged on the prose
  lower-cased, with underscores read as spaces (an all-capitals JSON answer,
  "L'ÉQUATION_N'A_PAS_DE_SOLUTION_RÉELLE", read as English);
- `detectable_format:constrained_response`: the answer is one of the options, alone (in any case, in quotes
  or bold, after the question when the prompt also asks to repeat it): "Votre réponse doit se limiter à
  l'une des options" answered "Oui." and a paragraph is an answer that ignores its format, which the
  benchmark's reading (an option anywhere in the text) lets through. Where the prompt asks for the option
  "dans votre réponse", the option opens the answer and a justification may follow;
- `combination:two_responses`: each of the two answers holds words ("******" then a list then
  "**********" is one answer between stray asterisks, which the benchmark counts as two);
- `length_constraints:number_words`: words as a reader counts them, an elided article or pronoun and
  its word one word ("l'environnement"), a hyphenated word one word ("éco-responsables"), where
  M-IFEval's `\\w+` counts two; as French counts differ on elisions, a length either count allows is
  followed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from frcorpus.stages.instructions.checkers import (
    CONSTRAINED_ANSWERS,
    TWO_RESPONSES_SEPARATOR,
    Check,
    comparison,
    neutral_relation,
    paragraph_first_word,
    without_fence_tags,
)
from frcorpus.stages.instructions.text import count_words, response_language

Reading = Literal["reader", "benchmark"]
READINGS: tuple[str, ...] = ("reader", "benchmark")

# a word as a reader counts it: letters or digits, joined through an apostrophe or a hyphen
# ("l'environnement", "aujourd'hui", "éco-responsables" are one word each)
READER_WORD = re.compile(r"\w+(?:['’‐‑-]\w+)*")
# a paragraph that opens with a postscript marker: "P.-S. :", "PS :", "P.S.", "p-s", "**P.S.**", "P.P.S"
WORDS = re.compile(r"[^\W\d_]{2,}")
POSTSCRIPT_PARAGRAPH = re.compile(r"^[\s*_#>]*(?:p\.?\s?-?\s?)+s(?:\.|\b)", re.I)


def count_reader_words(text: str) -> int:
    return len(READER_WORD.findall(text))


def is_postscript(paragraph: str) -> bool:
    return bool(POSTSCRIPT_PARAGRAPH.match(paragraph))


def prose_language(text: str) -> str | None:
    """The language of a response as a reader reads it: lower-cased (lid.176 reads French in capitals as
    English), underscores as spaces ("ÉTAPES_POUR_RÉSOUDRE"). JSON keys are kept: in a short answer they
    may be most of its French ('{"PHASES DU CYCLE DE L'EAU": "[\\"EVAPORATION\\", ...]"}')."""
    prose = without_fence_tags(text).replace("_", " ").lower()
    return response_language(prose)


def _in_french(text: str) -> bool:
    return prose_language(text) in ("fr", None)


# what may wrap an option that is the whole answer: spaces, quotes, emphasis
OPTION_WRAPPING = " \t\n\"'«»“”*_`"


# a prompt that asks for an option inside a longer answer ("Dans votre réponse, choisissez l'une des
# options"): the option opens the answer, a justification may follow; otherwise the option is the answer
OPTION_IN_ANSWER = re.compile(r"\b(?:dans (?:votre|ta) r[ée]ponse|in your (?:response|answer))\b", re.I)


def reader_constrained_response(*, prompt: str = "") -> Check:
    options = {answer.casefold().rstrip(".") for answer in CONSTRAINED_ANSWERS}
    opening = bool(OPTION_IN_ANSWER.search(prompt))

    def is_option(text: str) -> bool:
        return text.strip(OPTION_WRAPPING).casefold().rstrip(".") in options

    def check(response: str) -> bool:
        text = response.strip(OPTION_WRAPPING)
        if opening:
            first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0]
            return is_option(first)
        # a question asked to be repeated first ends at its question mark: the answer is what follows
        _, mark, after = text.rpartition("?")
        return is_option(text) or (bool(mark) and is_option(after))

    return check


def reader_two_responses() -> Check:
    def check(response: str) -> bool:
        parts = [part.strip() for part in response.split(TWO_RESPONSES_SEPARATOR)]
        answers = [part for part in parts if WORDS.search(part)]  # "****" left of a longer row is no answer
        return len(answers) == 2 and answers[0] != answers[1]

    return check


def reader_nth_paragraph_first_word(*, num_paragraphs: int, nth_paragraph: int, first_word: str) -> Check:
    expected = first_word.lower()

    def check(response: str) -> bool:
        paragraphs = [p.strip() for p in response.split("\n\n") if p.strip()]
        while paragraphs and is_postscript(paragraphs[-1]):  # a postscript closes the text, it is not a paragraph
            paragraphs.pop()
        if len(paragraphs) != num_paragraphs or nth_paragraph > len(paragraphs):
            return False
        return paragraph_first_word(paragraphs[nth_paragraph - 1]) == expected

    return check


def reader_french_capital() -> Check:
    return lambda response: without_fence_tags(response).isupper() and _in_french(response)


def reader_french_lowercase() -> Check:
    return lambda response: without_fence_tags(response).islower() and _in_french(response)


def reader_number_words(*, num_words: int, relation: str) -> Check:
    # French counts differ on "l'environnement" (one word or two): a length either count allows is followed,
    # so "au moins 488 mots" keeps M-IFEval's 515 for an answer a reader counts 486 words
    compare = comparison(relation)
    return lambda response: any(compare(count(response), num_words) for count in (count_reader_words, count_words))


def reader_neutral_number_words(*, num_words: int, relation: str) -> Check:
    return reader_number_words(num_words=num_words, relation=neutral_relation(relation))


# the ids whose reader's reading differs from the benchmark's, by id as a file or detect.py gives it
READER_CHECKERS: dict[str, Callable[..., Check]] = {
    "fr:detectable_format:constrained_response": reader_constrained_response,
    "fr:combination:two_responses": reader_two_responses,
    "combination:two_responses": reader_two_responses,
    "fr:length_constraints:nth_paragraph_first_word": reader_nth_paragraph_first_word,
    "fr:change_case:french_capital": reader_french_capital,
    "fr:change_case:french_lowercase": reader_french_lowercase,
    "fr:length_constraints:number_words": reader_number_words,
    "length_constraints:number_words": reader_neutral_number_words,
}
