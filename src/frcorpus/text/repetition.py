"""Loops: an answer that says the same thing again and again, found at any length.

A loop is what a model writes when its generation goes round in circles: a phrase repeated back to
back ("il danse et chante il danse et chante ..."), a sentence or a paragraph said again, a list item
copied, a heading counted through ("Chapitre 1", "Chapitre 2", ...), often until the token limit cuts
the last copy off. A loop of one sentence in a 60-word answer is as bad as in a 600-word one, so these
rules have no minimum length. What good answers repeat is left alone: a song's refrain (a block of
short lines in verse), the parallel items of a list or a comparison (they share a template, not whole
sentences), the steps of a calculation (only their numbers change), the lines of a dialogue, the
blanks of a letter template, tables and code (set aside before looking).

Three rules, each with its reason:

- `repeated_phrase`: a run of words immediately repeated, at least three times in all and at least
  six repeated words ("les mains, les pieds, les mains, les pieds, les mains, ..."; one word: ten), or
  a span of at least 12 words said twice back to back (a sentence or a paragraph written again). A
  refrain of short lines sung twice in a row is not a loop; three times in a row is.
- `doubled_phrase`: a phrase joined to itself by "et" / "ou" ("and" / "or"), the second copy closing
  the clause: "efficace et efficace.", "la concentration et la concentration,", "je suis ravi de vous
  faire part de cette expérience, et je suis ravi de vous faire part de cette expérience." A small model
  that runs out of things to say writes this; people and good models do not, save in fixed intensifiers
  ("encore et encore", "des heures et des heures", "more and more", "better and better"), which pass,
  as does verse (a poem may say a line and itself) and a phrase the next words tell apart ("la science
  et la science-fiction", "le heavy metal, et le heavy metal peut être ...").
- `repeated_sentences`: sentences or lines of at least four words that occur again later in the
  answer: one said three times or more, or copies (the same words, or for a sentence of eight words
  or more nearly the same: one word changed in 15) that make up a fifth of the answer's words or
  more, or one sentence five times with only its numbers changing. Lines of a refrain (in verse, a
  block of at least two short lines that repeats together, up to six times) do not count.

The thresholds were set on real data: the vigogne OASST answers (human, 1,913 turns) and the
M-IFEval answers of gpt-4o and Qwen2.5-7B, against the loops of Qwen2.5-0.5B's answers
(docs/stages.md, `heuristics`, gives the figures).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cache

import numpy as np

from frcorpus.text.code import split_code
from frcorpus.text.code_spans import without_code_spans

WORD = re.compile(r"\w+")
NOT_LETTERS = re.compile(r"[\W\d_]+")
DIGIT = re.compile(r"\d")
# a run of words repeated at least LOOP_COPIES times in all, with at least LOOP_WORDS repeated words
LOOP_COPIES = 3
LOOP_WORDS = 6
# one word said again and again needs more: songs write "fa la la la la la la la la" (8)
WORD_RUN = 10
# a span this long said twice back to back is a loop (a heading restated is shorter: 9-10 words)
LONG_SPAN_WORDS = 12
# sentences of fewer words ("Client : Oui.", "Merci !") may repeat freely; a sentence that is only part
# of a line needs more ("Consultée le 20/03/2023." ends every line of a list of references)
MIN_LINE_WORDS = 4
MIN_SENTENCE_WORDS = 6
# one sentence said this many times, or copies holding this share of the words (in an answer of at
# least MIN_SENTENCES sentences: "Voici X. Et voici Y." is a parallel pair), is a loop
SENTENCE_COPIES = 3
COPIED_SHARE = 0.2
MIN_SENTENCES = 3
# the same sentence with only its numbers changed, this many times: a model counting its way through a loop
COUNTER_COPIES = 5
# a sentence of at least NEAR_COPY_WORDS words is a copy of an earlier one when difflib's ratio of their
# words reaches NEAR_COPY (one word changed in 15 or more) and not only numbers changed; parallel list
# items score less ("checks if the left operand is less/greater than or equal to the right one": 0.92)
NEAR_COPY_WORDS = 8
NEAR_COPY = 0.93
# a refrain: a block of short lines (at most this many words each) sung at most REFRAIN_COPIES times,
# in verse: stanzas of such lines (two lines a stanza or more on average, VERSE_MIN_LINES in all)
VERSE_LINE_WORDS = 16
VERSE_MIN_LINES = 6
REFRAIN_COPIES = 6
# the longest period looked for, in words (a paragraph written again)
MAX_PERIOD = 400

TABLE_LINE = re.compile(r"^[ \t]*\|.*$", re.M)
URL = re.compile(r"(?:https?://|www\.)\S+")
# list markers, headings and quotes at the start of a line: "1. X" and "2. X" are the same item
LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+•]|\d+[.)])[ \t]")
LINE_MARKER = re.compile(r"^[ \t]*(?:[-*+>#•]+|\d+[.)]|\(?[a-z]\))[ \t]*", re.I)
PLACEHOLDER = re.compile(r"\[[^\]\n]{1,60}\]")
SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])")
JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
# a phrase of 1 to 12 words, a comma perhaps, "et"/"ou"/"and"/"or", the same phrase, then the end of the
# clause (punctuation or the line's end): on one line, as a word never continues either copy
DOUBLED_PHRASE = re.compile(
    r"(?<![\w'’-])((?:[\w'’-]+[ \t]+){0,11}[\w'’-]+)[ \t]*,?[ \t]+(?:et|ou|and|or)[ \t]+\1(?=[ \t]*(?:[.,;:!?)]|$))",
    re.I | re.M,
)
# phrases said twice on purpose: intensifiers ("encore et encore", "over and over"); "des heures et des
# heures"; English comparatives ("better and better") are matched by their ending below
INTENSIFIERS = frozenset(
    "encore toujours plus moins mille jamais bien beaucoup again over more less on round through by".split()
)
MEASURES = frozenset(
    "secondes minutes heures jours nuits semaines mois années ans siècles pages kilomètres mètres lieues litres "
    "seconds minutes hours days nights weeks months years centuries pages miles meters metres".split()
)
# words too common to make a doubled phrase a loop on their own ("elle s'approcha de lui et lui sourit")
FUNCTION_WORDS = frozenset(
    "elle elles nous vous leur leurs eux lui cela ceci celui celle ceux avec dans pour sans sous vers chez "
    "this that they them then than with from into what when your their there here".split()
)


@dataclass(frozen=True, slots=True)
class Loop:
    """Why a text loops: `code` is the reason (`repeated_phrase`, `repeated_sentences`), `detail` says
    what repeats and how often."""

    code: str
    detail: str


def loop_prose(text: str) -> str:
    """The text the loop rules read: prose lines without code (fenced or not), tables or links, then
    the strings of its fenced JSON blocks, one a line (their values are prose, and a model that loops
    repeats them)."""
    prose, strings = _prose_and_json(text)
    return "\n".join([prose, *strings])


def _prose_and_json(text: str) -> tuple[str, list[str]]:
    prose, strings = [], []
    for is_code, chunk in split_code(text):
        if not is_code:
            prose.append(chunk)
        elif (body := _json_body(chunk)) is not None:
            strings += _json_strings(body)
    # a title followed by its URL says the title twice; a table's rows share their cells
    return URL.sub(" ", TABLE_LINE.sub("", without_code_spans("\n".join(prose)))), strings


def _json_body(block: str) -> str | None:
    """The body of a fenced block labelled json, or that holds a JSON object or array."""
    first, _, body = block.partition("\n")
    label = first.strip().lstrip("`~").strip().lower()
    if label == "json" or (not label and body.lstrip()[:1] in ("{", "[")):
        return body.rsplit("\n", 1)[0] if body.rstrip().endswith(("```", "~~~")) else body
    return None


def _json_strings(body: str) -> list[str]:
    try:
        return [s for s in _strings_of(json.loads(body)) if s.strip()]
    except ValueError:  # not valid JSON (a model's, cut off): its quoted strings
        return [m.group(1) for m in JSON_STRING.finditer(body)]


def _strings_of(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings_of(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings_of(v)]
    return []


def find_loop(text: str) -> Loop | None:
    """The loop in a text (an assistant turn), or None: `repeated_phrase` first, then
    `repeated_sentences`, then `doubled_phrase`."""
    prose, strings = _prose_and_json(text)
    # whether the text is verse is only asked when a repeat might be a refrain: most answers never ask
    verse = cache(lambda: is_verse(prose))
    # every loop repeats MIN_LINE_WORDS words in a row (numbers aside): most answers repeat none
    words = ["0" if DIGIT.search(w) else w for w in WORD.findall(" ".join([prose, *strings]).lower())]
    if _repeats_a_run(words, MIN_LINE_WORDS):
        lines = [LINE_MARKER.sub("", line) for line in [*prose.split("\n"), *strings]]
        if loop := _phrase_loop(lines, verse) or _sentence_loop(lines, verse):
            return loop
    return _doubled_phrase("\n".join([prose, *strings]), verse)


def _doubled_phrase(text: str, verse: Callable[[], bool]) -> Loop | None:
    if " et " not in text and " ou " not in text and " and " not in text and " or " not in text:
        return None
    for match in DOUBLED_PHRASE.finditer(text):
        phrase = match.group(1)
        words = WORD.findall(phrase.lower())
        if not any(len(w) >= 4 and not w.isdigit() and w not in FUNCTION_WORDS for w in words):
            continue  # "lui et lui", "C ou C++", "' et '"
        if len(words) == 1 and (words[0] in INTENSIFIERS or (words[0].endswith("er") and " and " in match.group(0))):
            continue
        if len(words) == 2 and words[0] in ("des", "de") and words[1] in MEASURES:
            continue
        if verse():
            return None
        shown = " ".join(match.group(0).split())
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return Loop("doubled_phrase", f"{shown!r}: a phrase joined to itself")
    return None


def is_verse(text: str) -> bool:
    """Whether a text is verse (a song, a poem): stanzas of short lines, most of them not list items."""
    lines = [line for line in text.split("\n") if WORD.search(line)]
    stanzas = [block for block in re.split(r"\n[ \t]*\n", text) if WORD.search(block)]
    if len(lines) < VERSE_MIN_LINES or len(lines) < 2 * len(stanzas):
        return False
    short = sum(len(WORD.findall(line)) <= VERSE_LINE_WORDS for line in lines)
    listed = sum(bool(LIST_ITEM.match(line)) for line in lines)
    return short >= 2 * len(lines) / 3 and listed <= len(lines) / 3


def _phrase_loop(lines: list[str], verse: Callable[[], bool]) -> Loop | None:
    words: list[str] = []
    line_of: list[int] = []
    for n, line in enumerate(lines):
        found = WORD.findall(line.lower())
        words += found
        line_of += [n] * len(found)
    # a loop repeats LOOP_WORDS words in a row at least: without a repeated run of that many, none
    if not _repeats_a_run(words, LOOP_WORDS):
        return None
    for period, start, r in _tandem_runs(words):
        copies = 1 + r / period
        one_word = len(set(words[start : start + period])) == 1
        if copies >= LOOP_COPIES and one_word and r < WORD_RUN:
            continue  # "fa la la la la la la la"
        if (
            copies < LOOP_COPIES
            and verse()
            and _whole_verse_lines(line_of, start, start + period + r, _verse_lines(lines))
        ):
            continue  # a refrain sung twice
        phrase = " ".join(words[start : start + min(period, 12)]) + (" ..." if period > 12 else "")
        said = f"{copies:.0f}" if copies.is_integer() else f"{copies:.1f}"  # 3 times; 3.5 times when cut mid-copy
        unit = "word" if period == 1 else "words"
        return Loop("repeated_phrase", f"{phrase!r} said {said} times in a row ({period} {unit})")
    return None


def _repeats_a_run(words: list[str], n: int) -> bool:
    """Whether some n words in a row occur twice."""
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        run = tuple(words[i : i + n])
        if run in seen:
            return True
        seen.add(run)
    return False


def _tandem_runs(words: list[str]) -> list[tuple[int, int, int]]:
    """(period, start, repeated) of each run of words said again right after themselves, long enough to
    be a loop: words[start : start + period] repeats `repeated` more words (1 + repeated / period
    copies in all), with at least LOOP_COPIES copies and LOOP_WORDS repeated words, or a span of
    LONG_SPAN_WORDS said twice. All periods are compared at once: a sliding window of the word ids."""
    n = len(words)
    periods = min(MAX_PERIOD, n // 2)
    ids = {w: i for i, w in enumerate(dict.fromkeys(words))}
    # padded with distinct ids so that every position has `periods` words after it
    seq = np.fromiter((ids[w] for w in words), dtype=np.int64, count=n)
    seq = np.concatenate((seq, -1 - np.arange(periods)))
    window = np.lib.stride_tricks.sliding_window_view(seq, periods + 1)[:n]
    # same[p - 1, i]: words[i] == words[i + p]; a run of r such positions from i repeats r words
    same = (window[:, 1:] == window[:, :1]).T.astype(np.int8)
    edges = np.diff(same, axis=1, prepend=0, append=0)
    period_of, starts = np.nonzero(edges == 1)
    repeated = np.nonzero(edges == -1)[1] - starts
    period_of += 1
    found = ((repeated >= (LOOP_COPIES - 1) * period_of) & (repeated >= LOOP_WORDS)) | (
        (repeated >= period_of) & (period_of >= LONG_SPAN_WORDS)
    )
    return list(zip(period_of[found].tolist(), starts[found].tolist(), repeated[found].tolist(), strict=True))


def _verse_lines(lines: list[str]) -> set[int]:
    """The lines short enough to be lines of verse."""
    return {n for n, line in enumerate(lines) if 0 < len(WORD.findall(line)) <= VERSE_LINE_WORDS}


def _whole_verse_lines(line_of: list[int], start: int, end: int, verse: set[int]) -> bool:
    """Whether words [start, end) are whole lines of verse, two at least (a repeated block of a song)."""
    first, last = line_of[start], line_of[end - 1]
    whole = (start == 0 or line_of[start - 1] != first) and (end == len(line_of) or line_of[end] != last)
    return whole and last > first and set(line_of[start:end]) <= verse


def _sentence_loop(lines: list[str], verse: Callable[[], bool]) -> Loop | None:
    units: list[tuple[int, tuple[str, ...]]] = []  # (line, words) of each sentence
    counted: list[int] = []  # the units long enough to count as copies
    templates: list[int] = []  # those with blanks to fill in
    numbered: list[int] = []  # those with a number, counted or templates
    for n, line in enumerate(lines):
        if _mostly_symbols(line):  # a formula or a row of figures
            continue
        sentences = [(s, found) for s in SENTENCE_SPLIT.split(line) if (found := tuple(WORD.findall(s.lower())))]
        for sentence, words in sentences:
            if len(words) >= (MIN_LINE_WORDS if len(sentences) == 1 else MIN_SENTENCE_WORDS):
                # a template's blanks ("[Ville, code postal]") repeat in each copy of a letter
                (templates if PLACEHOLDER.search(sentence) else counted).append(len(units))
                if DIGIT.search(sentence):
                    numbered.append(len(units))
            units.append((n, words))
    if why := _counter_loop([units[i][1] for i in numbered]):
        return why
    if len(counted) < 2:
        return None
    root = _copies(units, counted)
    if not root:
        return None
    refrain = _refrain_lines(units, Counter(units[i][1] for i in counted)) if verse() else set()
    said_again: Counter = Counter()  # exact copies of each first sentence
    copied = 0  # words in copies, exact or near
    for i, first in root.items():
        exact = units[i][1] == units[first][1]
        if exact and units[i][0] in refrain:
            continue  # a line of a refrain, sung again
        said_again[first] += 1
        copied += len(units[i][1])
    total = sum(len(words) for _, words in units)
    if said_again and (most := said_again.most_common(1)[0])[1] + 1 >= SENTENCE_COPIES:
        return Loop("repeated_sentences", f"{_shown(units[most[0]][1])!r} said {most[1] + 1} times")
    if len(counted) >= MIN_SENTENCES and copied / total >= COPIED_SHARE:
        first = Counter(root.values()).most_common(1)[0][0]
        return Loop(
            "repeated_sentences",
            f"{copied / total:.0%} of the words repeat earlier sentences ({_shown(units[first][1])!r}, ...)",
        )
    return None


def _counter_loop(sentences: list[tuple[str, ...]]) -> Loop | None:
    """Among sentences with a number: the same sentence again and again with only a number changed
    ("Chapitre 3 : ...", "Chapitre 4 : ..."), as a model counts its way through a loop."""
    if len(sentences) < COUNTER_COPIES:
        return None
    counts = Counter(tuple("0" if DIGIT.search(w) else w for w in words) for words in sentences)
    if not counts:
        return None
    words, n = counts.most_common(1)[0]
    if n >= COUNTER_COPIES and "0" in words:
        return Loop("repeated_sentences", f"{_shown(words)!r} said {n} times, only its numbers changing")
    return None


def _numbers_differ(matcher: SequenceMatcher) -> bool:
    """Whether two nearly equal sentences differ only in their numbers: two steps of a calculation."""
    a, b = matcher.a, matcher.b
    changed = [w for tag, i, j, k, m in matcher.get_opcodes() if tag != "equal" for w in (*a[i:j], *b[k:m])]
    return all(DIGIT.search(w) for w in changed)


def _shown(words: tuple[str, ...]) -> str:
    return " ".join(words[:12]) + (" ..." if len(words) > 12 else "")


def _copies(units: list[tuple[int, tuple[str, ...]]], counted: list[int]) -> dict[int, int]:
    """{unit: the earlier unit it copies} among the counted units: the same words, or for a long sentence
    nearly the same words in the same order (`NEAR_COPY`), unless only numbers changed."""
    root: dict[int, int] = {}
    first_of: dict[tuple[str, ...], int] = {}
    by_bigram: dict[tuple[str, str], list[int]] = {}
    for i in counted:
        words = units[i][1]
        if words in first_of:
            root[i] = root.get(first_of[words], first_of[words])
            continue
        first_of[words] = i
        bigrams = set(zip(words, words[1:], strict=False))
        if len(words) >= NEAR_COPY_WORDS:
            shared = Counter(j for g in bigrams for j in by_bigram.get(g, ()))
            best, best_ratio = None, NEAR_COPY
            for j, n in shared.items():
                if n >= len(bigrams) / 2:
                    matcher = SequenceMatcher(None, units[j][1], words, autojunk=False)
                    if (ratio := matcher.ratio()) >= best_ratio and not _numbers_differ(matcher):
                        best, best_ratio = j, ratio
            if best is not None:
                root[i] = root.get(best, best)
        for g in bigrams:
            by_bigram.setdefault(g, []).append(i)
    return root


def _mostly_symbols(line: str) -> bool:
    """A line where letters are less than half of the characters (spaces aside): a formula, figures."""
    chars = len(line) - line.count(" ")
    return chars > 0 and len(NOT_LETTERS.sub("", line)) < chars / 2


def _refrain_lines(units: list[tuple[int, tuple[str, ...]]], counts: Counter) -> set[int]:
    """Lines of a refrain: a short line that repeats together with the line before or after it, itself
    short (a block of at least two lines of verse sung again)."""
    per_line: dict[int, list[tuple[str, ...]]] = {}
    for n, words in units:
        per_line.setdefault(n, []).append(words)
    numbers = sorted(per_line)
    # the non-blank lines in order, each as its words when it is one short line of verse
    verse = [
        per_line[n][0] if len(per_line[n]) == 1 and len(per_line[n][0]) <= VERSE_LINE_WORDS else None for n in numbers
    ]
    pairs = Counter(zip(verse, verse[1:], strict=False))
    refrain = set()
    for i, line in enumerate(verse):
        if line is None or counts[line] < 2 or counts[line] > REFRAIN_COPIES:
            continue
        before = verse[i - 1] if i else None
        after = verse[i + 1] if i + 1 < len(verse) else None
        if (after is not None and pairs[(line, after)] >= 2) or (before is not None and pairs[(before, line)] >= 2):
            refrain.add(numbers[i])
    return refrain
