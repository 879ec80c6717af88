"""A translation cut short, read from the text: the source is complete and the output is not.

`cut_short(source, output)` takes both as masked text (`masking.mask`, code and formulas as tokens)
and says why the output looks truncated, or None:
1. it ends mid-sentence (a letter, a digit, a comma, a colon...) where the source ends a sentence (.!?…);
2. it ends with a statement (. or :) where the source ends with a question (unless the statement is an
   order: "calculate ...?" is "calculez ... ." in French); with a comma, an operator
   or an opening bracket where the source does not; or its last line leaves a bracket open that the
   source's closes;
3. it ends with an article or a possessive ("des", "la", "ses"), which no French clause ends with,
   where the source's last word is not one that leaves its own sentence open ("between", "the", "is");
4. its sentences match the beginning of the source's and not the whole: the sentences (and lines) are
   aligned by their lengths (Gale and Church's method: French runs about 1.14 times the characters of
   the English it translates, sentence by sentence, with a spread that narrows as sentences grow), with
   numbers and questions as anchors, one sentence may be split in two or two merged; the output is cut
   short when aligning it to the first sentences of the source, the rest left out, costs less (by
   TRUNCATION_PRIOR) than aligning it to all of them.

A list cut short and a code block cut in the middle are the other gates' cases (`structure_changed`,
`segments_changed`). Measured on the real English/French pairs of the shared data and on them cut at
60-95% of their length (benchmarks/translation_gates.py has the figures and the command).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from frcorpus.stages.translate.masking import TOKEN
from frcorpus.stages.translate.register import verb_forms
from frcorpus.text.prose import set_aside

SENTENCE_MARKS = ".!?…"
OPEN_ENDS = ",;=+-*/<>([{«“"  # what a text ends with only when it goes on: "Princeton, UW,", "2x + 3y ="
BLANK_END = re.compile(r"_{3,}\W*$")
BRACKETS = ("()", "[]", "{}")  # not quotation marks: French opens « at each paragraph of a quotation
CLOSERS = "\"'»”’)]*_~` \t"  # what may close a sentence after its mark: quotes, brackets, emphasis
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
# French words that never end a clause: articles, contracted articles and possessive determiners
FRENCH_OPEN = frozenset(
    "le la les l' des du au aux ce cet cette ces mon ma mes ton ta tes sa ses notre nos votre vos leurs".split()
)
# English words that leave a sentence open: a source that ends with one is a fragment to be completed
# (MMLU's "The speed of sound in air depends on", "Its holding current will be"), and its translation
# may end as openly ("dépend de", "est de")
ENGLISH_OPEN = frozenset(
    """a an the and or but nor because that which who whom whose what when where while whether than then
    of to in on at by for with without from into onto upon about between among through during before after
    since until against toward towards over under per via like as if so such this these those my your his
    her its our their is are was were be been being am will would shall should can could may might must
    do does did has have had not no very more less most least also either neither both each every all
    include includes including called named known""".split()
)
# a sentence ends at .!?… followed by a capital, a digit or an opening quote, or at a line end; not after
# an initial or an abbreviation ("U. S. Supreme Court", "Dr. Jang", "45 m. p. h. in")
SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"'»”’)\]]*[ \t]+(?=[\"'«“(\[¿¡]?[^\W_a-zà-ÿ])|[ \t]*\n\s*")
ABBREVIATION = re.compile(
    r"(?:\b[^\W\d_]|\b(?:Dr|Mr|Mrs|Ms|Mme|Mlle|St|Ste|Prof|Jr|Sr|No|Fig|Inc|Ltd|Co|vs|cf|etc|env|av|apr|J\.-C))\.$"
)

# a number with its thousands separators and decimals ("80,000", "80 000", "2.5", "2,5")
NUMBER = re.compile(r"\d+(?:[,.\u00a0\u202f ]\d{3})*(?:[.,]\d+)?")

# the log of French characters over English ones, sentence by sentence, on the pairs whose texts have
# as many sentences (35,600 sentences): mean 0.135 (1.14 times); standard deviation 0.28 for sentences
# of 10-20 characters, 0.19 at 20-40, 0.16 at 40-80, 0.12 at 80-160, 0.11 at 160-320
LOG_RATIO_MEAN = 0.135


def log_ratio_spread(chars: int) -> float:
    """The standard deviation of the log length ratio for a source of `chars` characters (fits the
    figures above within 0.02 from 20 characters)."""
    return 0.08 + 0.6 / math.sqrt(max(chars, 1))


MERGE_COST = 2.0  # one sentence split in two, or two merged: a translator's choice, not rare
DROP_COST = 6.0  # a sentence with nothing in front of it in the other text
# what the alignment to the start of the source must save to call the output cut short. On the 14,802 real
# pairs and 1,312 of them cut (at a sentence end or a word, 200 of each set, benchmarks/translation_gates.py),
# the alignment alone rejects / the truncation rules miss: 2.0: 9 / 93, 2.5: 9 / 99, 3.0: 8 / 102, 4.0:
# 7 / 117 (and 0 when the prior was 0 rejected 96 clean pairs in an earlier version)
TRUNCATION_PRIOR = 2.0
QUESTION_COST = 3.0  # a question translated as a statement (or the reverse)
# a number in one and not the other: numbers anchor sentences (MGSM's problems), though a translator may
# write "3" as "trois" (7% of MMLU-FR's questions with a number lose one so)
NUMBER_COST = 1.0
# the spread of a whole text's log length ratio around the mean (0.07 on MMLU-FR's long questions, 0.1 on
# the human translations of 200 characters and more), and the most a text's own shift is allowed
TEXT_SPREAD = 0.1
MAX_SHIFT = 0.5
ALIGN_MAX_SENTENCES = 200  # longer texts are not aligned (the cost grows with the product of the counts)
MOVES = ((1, 1, 0), (2, 1, 1), (1, 2, 1), (2, 2, 1), (3, 1, 2), (1, 3, 2))  # sources, outputs, merges


def cut_short(source: str, output: str) -> str | None:
    """Why `output` (masked) looks like a truncated translation of `source` (masked), or None."""
    source_end, source_line = _ending(source)
    output_end, output_line = _ending(output)
    if not source_end or not output_end or "token" in (source_end, output_end):
        return None
    if source_end in SENTENCE_MARKS and output_end not in SENTENCE_MARKS:
        return f"ends mid-sentence ({_tail(output_line)!r}) where the source ends with {source_end!r}"
    if source_end == "?" and output_end in ".:" and not _orders(output_line):
        return f"ends with {output_end!r} ({_tail(output_line)!r}) where the source asks a question"
    source_words, output_words = WORD.findall(source_line), WORD.findall(output_line)
    source_open = (
        source_end in OPEN_ENDS or source_end == ":" or (source_words and _plain(source_words[-1]) in ENGLISH_OPEN)
    )
    if output_end in OPEN_ENDS and not source_open:
        return f"ends with {output_end!r} ({_tail(output_line)!r}) where the source ends with {source_end!r}"
    if unclosed := _unclosed(_lines(source)[-1], _lines(output)[-1]):
        return f"{unclosed!r} left open ({_tail(output_line)!r})"
    if (
        source_end not in SENTENCE_MARKS
        and output_words
        and output_line.endswith(output_words[-1])
        and _plain(output_words[-1]) in FRENCH_OPEN
        and not source_open
    ):
        return f"ends with {output_words[-1]!r} ({_tail(output_line)!r})"
    dropped = dropped_sentences(sentences(source), sentences(output))
    if dropped:
        return f"its sentences match the source's without its last {dropped} (it stops at {_tail(output_line)!r})"
    return None


@dataclass(frozen=True)
class Sentence:
    """What the alignment weighs of a sentence: its prose characters (code, numbers and quotation marks
    set aside), its numbers (digits only: "80,000" and "80 000" alike) and whether it asks."""

    chars: int
    numbers: tuple[str, ...]
    asks: bool


def sentences(masked_text: str) -> list[Sentence]:
    """The sentences of a masked text that have a letter, tokens set aside."""
    text = TOKEN.sub(" ", masked_text)
    found, start = [], 0
    for m in SENTENCE_BREAK.finditer(text):
        if m.group(0).strip(" \t") == "" and ABBREVIATION.search(text[start : m.start()]):
            continue  # "Dr. Jang": no break
        found.append(text[start : m.start()])
        start = m.end()
    found.append(text[start:])
    out = []
    for piece in found:
        prose = " ".join(set_aside(piece.replace("$", " ")).split())  # a dollar left by `mask` is money
        if WORD.search(prose):
            numbers = tuple(sorted(re.sub(r"\D", "", n) for n in NUMBER.findall(piece)))
            out.append(Sentence(len(prose), numbers, piece.rstrip(CLOSERS + "\n").endswith("?")))
    return out


def dropped_sentences(source: list[Sentence], output: list[Sentence]) -> int:
    """How many of the source's last sentences the output leaves out, by length alignment (0: none).

    A translator who writes tersely (or at length) throughout shifts every sentence's ratio the same
    way: each hypothesis (the whole source, or its first k sentences) is scored with the shift that
    its own total ratio implies, which costs TEXT_SPREAD's z-score once, so that a consistently short
    translation is not taken for a cut one."""
    n, m = len(source), len(output)
    if n < 2 or not m or n > ALIGN_MAX_SENTENCES or m > ALIGN_MAX_SENTENCES:
        return 0
    cost = _align(source, output, LOG_RATIO_MEAN)
    _, k = min((cost[k][m], k) for k in range(1, n))
    output_chars = _chars(output)
    full_shift = _shift(output_chars, _chars(source))
    cut_shift = _shift(output_chars, _chars(source[:k]))
    full = _align(source, output, LOG_RATIO_MEAN + full_shift)[n][m] + _shift_cost(full_shift)
    cut = _align(source[:k], output, LOG_RATIO_MEAN + cut_shift)[k][m] + _shift_cost(cut_shift)
    return n - k if cut + TRUNCATION_PRIOR < full else 0


def _chars(sentences: list[Sentence]) -> int:
    return sum(s.chars for s in sentences) + len(sentences) - 1


def _shift(output_chars: int, source_chars: int) -> float:
    """How far this text's log length ratio is from the mean, within [-MAX_SHIFT, MAX_SHIFT]."""
    shift = math.log(output_chars / source_chars) - LOG_RATIO_MEAN
    return max(-MAX_SHIFT, min(MAX_SHIFT, shift))


def _shift_cost(shift: float) -> float:
    return (shift / TEXT_SPREAD) ** 2 / 2


def _align(source: list[Sentence], output: list[Sentence], mean: float) -> list[list[float]]:
    """cost[i][j]: the cheapest alignment of the first i source sentences with the first j output ones,
    for a mean log length ratio `mean`."""
    n, m = len(source), len(output)
    inf = math.inf
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            best = cost[i][j]
            for di, dj, merges in MOVES:
                if i >= di and j >= dj and cost[i - di][j - dj] < inf:
                    pair = _pair_cost(source[i - di : i], output[j - dj : j], mean)
                    best = min(best, cost[i - di][j - dj] + pair + merges * MERGE_COST)
            if i:
                best = min(best, cost[i - 1][j] + DROP_COST)
            if j:
                best = min(best, cost[i][j - 1] + DROP_COST)
            cost[i][j] = best
    return cost


def _pair_cost(source: list[Sentence], output: list[Sentence], mean: float) -> float:
    """How unlikely it is that these output sentences translate these source sentences: the squared
    z-score of their length ratio, more when one ends with a question and the other does not, and
    more for each number that one has and the other has not."""
    source_chars = _chars(source)
    z = (math.log(_chars(output) / source_chars) - mean) / log_ratio_spread(source_chars)
    numbers = Counter(n for s in source for n in s.numbers)
    numbers.subtract(n for s in output for n in s.numbers)
    unmatched = sum(map(abs, numbers.values()))
    return z * z / 2 + QUESTION_COST * (source[-1].asks != output[-1].asks) + NUMBER_COST * unmatched


def _ending(masked_text: str) -> tuple[str, str]:
    """(the last character of the text, its closing quotes, emphasis and spaces (no-break ones too) left
    out, or "token" when it ends with a masked segment or a blank to fill ("est _____", which MMLU-FR
    leaves without the English full stop); its last line)."""
    lines = _lines(masked_text)
    if not lines:
        return "", ""
    if BLANK_END.search(lines[-1]):
        return "token", lines[-1]
    last = lines[-1]
    while last and (last[-1] in CLOSERS or last[-1].isspace()):
        last = last[:-1]
    if not last:
        return "", ""
    tokens = list(TOKEN.finditer(last))
    if tokens and tokens[-1].end() == len(last):
        return "token", last
    return last[-1], last


def _orders(line: str) -> bool:
    """The line's last sentence gives an order: "calculate ...?" is rightly "calculez ... ." in French."""
    last = SENTENCE_BREAK.split(line)[-1]
    found = verb_forms(last)
    return bool(found.tu or found.vous)


def _unclosed(source: str, output: str) -> str:
    """A bracket that the output's last line leaves open where the source's closes all of its own
    ("Un voyage en France (4"), or "" (the last lines only: a typo elsewhere is no truncation)."""
    for opening, closing in BRACKETS:
        balanced = source.count(opening) == source.count(closing)
        if balanced and output.count(opening) > output.count(closing) and output.rfind(opening) > output.rfind(closing):
            return opening
    return ""


def _lines(masked_text: str) -> list[str]:
    return [line for line in masked_text.split("\n") if WORD.search(TOKEN.sub(" ", line)) or TOKEN.search(line)]


def _plain(word: str) -> str:
    return word.lower().replace("’", "'")


def _tail(line: str, chars: int = 40) -> str:
    return line if len(line) <= chars else "…" + line[-chars:].lstrip()
