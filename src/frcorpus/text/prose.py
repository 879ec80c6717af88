"""The prose of a turn, as a language identifier should see it: code, formulas, links, numbers and
quotation marks set aside (`set_aside`), lines of symbols dropped (`without_symbols`), a head short
enough to judge quickly (`head`), one line with single spaces (`one_line`), and sentences
(`SENTENCE_END`).

These run on every turn of every record in `langid` and in translate's gates: the regexes are
compiled once here and each is written for speed (the measurements are beside them).
"""

from __future__ import annotations

import re
import sys

from frcorpus.text.code import FENCED_CODE

# Everything fastText should not judge, in one pass: fenced code, inline code, LaTeX (display,
# inline, environments), URLs, e-mail addresses, numbers (with their separators: dates, times, prices)
# and quotation marks: fastText takes « » for French evidence, so quoted Malay or English read as
# French (on lingua_sentences: 5 of 44 false French, none lost). Inline math as pandoc reads it: the
# opening $ before a non-space, the closing one after a non-space and not before a digit, so that
# prices (« 5$ et 10$ », « 5 $ ou 10 $ ») stay prose.
QUOTE_MARKS = '«»“”„‟"'
QUOTES = "|[" + QUOTE_MARKS + "]"
NOT_PROSE = re.compile(
    FENCED_CODE + r"|<(code|pre)>.*?(?:</(?:code|pre)>|\Z)"
    r"|`[^`\n]+`|(?m:^(?: {4}|\t)[^\n]*$)"  # inline code, markdown's indented code lines
    r"|\$\$.*?\$\$|\\\[.*?\\\]|\\\(.*?\\\)|\\begin\{([a-zA-Z*]+)\}.*?\\end\{\2\}|\$(?=\S)[^$\n]+(?<=\S)\$(?!\d)"
    r"|(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+\.[\w.]+"
    r"|\d+(?:[.,:/h-]\d+)*" + QUOTES,
    re.S,
)
# Cheap searches first: most turns have no code or links, and numbers alone need a simpler pattern.
# These three are written so that every match starts with a character of a known set (each
# alternative starts with a literal, or the pattern with a class): `re` then skips the other
# characters in C. The clearer `[`$\\@\t]|~~~|...|^ {4}`, `\d+(?:[.,:/h-]\d+)*|[«»...]` and
# `[.!?…]\s|\n` match the same, 2-4x slower (measured on lingua_sentences: 1.7/2.5/0.8 us a
# sentence against 0.5/1.1/0.4).
MAY_HAVE_NON_PROSE = re.compile(r"`|\$|\\|@|\t|~~~|://|www\.|<code>|<pre>|\n {4}")  # or 4 spaces at the start


def _bmp_digits() -> str:
    """`\\d` for the Basic Multilingual Plane, as ranges for a character class: what Python's `re`
    matches as a digit, from the running Python's own Unicode tables."""
    ranges: list[list[int]] = []
    bmp = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))
    for cp in map(ord, re.findall(r"\d", bmp)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


# A number (with its separators: dates, times, prices), or a quotation mark. `[\d«»...]` matches the
# same, but `re` then calls Unicode's digit test on every character of every turn; a class of ranges
# is a table lookup (callgrind: 14,100 -> 10,300 instructions a lingua sentence, 27% of which have a
# number or a quote). Characters beyond the BMP (emoji, and a few rare digits) are let in by the
# class and kept out by the lookbehind unless they are digits.
NUMBER = re.compile(
    "["
    + _bmp_digits()
    + QUOTE_MARKS
    + "\U00010000-\U0010ffff]"
    + r"(?<![^\d\x00-\uffff])(?:(?<=\d)\d*(?:[.,:/h-]\d+)*)?"
)
# The same without the astral range: a string of one- or two-byte characters (most text) cannot hold
# an astral character, and the range makes `re` walk its charset per character (lingua_sentences:
# 2.4 -> 1.4 us a sentence)
NUMBER_BMP = re.compile("[" + _bmp_digits() + QUOTE_MARKS + r"](?:(?<=\d)\d*(?:[.,:/h-]\d+)*)?")
# CPython stores a str with an astral character at 4 bytes a character: its size says so in O(1)
# (sys.getsizeof: 76 + 4 * len for those, at most 74 + 2 * len for the others)
UCS4_SIZE = sys.getsizeof("\U0001f600") - 4
# What is not a letter (`str.isalpha`) nor a space, for the Basic Multilingual Plane: counting these
# in C is 2.5x faster than `sum(map(str.isalpha, text))` (OASST turns' lines: 4.7 -> 1.9 us a line).
# The BMP's letters as ranges, from the running Python's own Unicode tables (13 ms at import).
NOT_LETTER_BMP = re.compile(
    "[^"
    + "".join(
        f"\\u{m.start():04x}-\\u{m.end() - 1:04x}"
        for m in re.finditer(rb"\x01+", bytes(map(str.isalpha, map(chr, range(0x10000)))))
    )
    + " ]"
)
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n\s*")
LETTER = re.compile(r"[^\W\d_]")  # a text without letters ("???", "= +") has no language to find
MAY_SPLIT = re.compile(r"\n|\.\s|!\s|\?\s|…\s")  # a turn without any is one sentence
HEAD_CHARS = 1000


def set_aside(text: str) -> str:
    """The text without code, formulas, links, numbers or quotation marks (line breaks kept)."""
    if MAY_HAVE_NON_PROSE.search(text) or text.startswith("    "):
        return NOT_PROSE.sub(" ", text)
    return (NUMBER if sys.getsizeof(text) >= UCS4_SIZE + 4 * len(text) else NUMBER_BMP).sub(" ", text)


def head(text: str) -> str:
    """At most HEAD_CHARS characters, cut at a space: enough to tell the language of a turn or a
    conversation, and fastText's time grows with the length (sentences are judged in full)."""
    if len(text) <= HEAD_CHARS:
        return text
    cut = text.rfind(" ", 0, HEAD_CHARS)
    return text[: cut if cut > 0 else HEAD_CHARS]


def single_spaced(text: str) -> bool:
    """Whether `" ".join(text.split())` is `text` itself: its only whitespace is single spaces
    between words (every other whitespace character is unprintable). Checking is cheaper than the
    split and join (callgrind: 7,600 against 9,700 instructions a lingua sentence, both included)."""
    return text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "


def one_line(text: str) -> str:
    """One line, single spaces; text in capitals is lower-cased (fastText reads French in capitals
    as German or as nothing in particular)."""
    if not single_spaced(text):
        text = " ".join(text.split())
    return text.lower() if text.isupper() else text


def wordy(text: str) -> bool:
    """Whether letters make at least half of a text's visible characters: ASCII art, a table of
    symbols or a row of emoji are no prose, and have no language to judge."""
    if sys.getsizeof(text) >= UCS4_SIZE + 4 * len(text):  # astral letters, which NOT_LETTER_BMP cannot tell
        return 2 * sum(map(str.isalpha, text)) >= len(text) - text.count(" ")
    # letters >= the other visible characters, counted without the letters
    return len(text) - text.count(" ") >= 2 * len(NOT_LETTER_BMP.findall(text))


def is_prose(text: str) -> bool:
    """Whether a (non-empty) text is prose to judge: it starts with a letter (most do), or is wordy."""
    return text[0].isalpha() or wordy(text)


def without_symbols(text: str) -> str:
    """A text without its lines that are not wordy: the lines of ASCII art beside the prose that
    presents it (« Voici une rose en art ASCII : »)."""
    return "\n".join(line if wordy(line) else "" for line in text.split("\n"))


def capitals(text: str) -> bool:
    """Whether most of a text's words are in capitals (« ENTRETIEN DES GÉRANIUMS : - CHOISISsez UN LIEU
    ENSOLEILLÉ... »), which fastText reads as no language in particular; `one_line` lower-cases only
    texts all in capitals. (Words, not letters, are counted: one test a word instead of two a letter.)"""
    words = text.split()
    return 2 * sum(map(str.isupper, words)) > len(words)
