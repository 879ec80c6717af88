"""What a translation must give back untouched: code, formulas, links, placeholders and markup.

`mask` replaces each such segment by a short numbered token before the text goes to the model,
`restore` puts the segments back into the translation and lists what the model lost, repeated or
made up, and `structure_problems` compares the markdown skeleton (headings, list items, quotes,
tables, rules, paragraph breaks) of the source and of the translation.

What is masked, in this order of precedence where two kinds start at the same place:
- blocks: fenced code (``` and ~~~, through the closing fence or the end of the text) and markdown's
  indented code (4 spaces or a tab after a blank line, outside lists), with their indentation;
- text that already looks like a token (so that it cannot be taken for one on the way back);
- `<code>`, `<pre>`, `<script>` and `<style>` elements, HTML comments, inline code;
- LaTeX: environments, $$..$$, \\[..\\], \\(..\\), and $..$ by pandoc's rule (no space inside the
  dollars, no digit after the closing one: "costs $5 and $10" and "8000 $ / 2" stay prose);
- template variables ${x}, {{x}}, {% x %}, link destinations, URLs, e-mail addresses, {name},
  printf conversions (%s, %5.2f, %(name)d), <PLACEHOLDER>, [insert ...], HTML tags.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# The token is ⟦n⟧ (U+27E6 / U+27E7, mathematical white square brackets), numbered from 1 in the
# order of the text. Why this shape:
# - it does not occur in prose, markdown, HTML, LaTeX or code (none in the shared data), so a
#   token is never content, and the model has no syntax to "fix" or words to translate in it;
# - LLMs tend to copy verbatim a bracketed number they cannot read as anything else (as they copy
#   XLIFF's <x1/>), whereas [[1]] and {1} read as wiki links or format fields that models rewrite,
#   and <x1/> gets mixed up with the real HTML of the text (a judgement, not measured here);
# - it is short (a few tokens), and its usual damage is easy to undo: spaces put inside (also the
#   French narrow no-break space) and the look-alike 〚〛 (U+301A / U+301B) of CJK fonts.
# Text that already contains these brackets has them masked as segments of their own, so the only
# brackets the model sees are the tokens.
OPEN, CLOSE = "⟦", "⟧"
TOKEN = re.compile(r"[⟦〚][^\S\n]*(\d{1,6})[^\S\n]*[⟧〛]")
SHORT = 40  # characters of a segment quoted in a problem

FENCE_OPEN = re.compile(r"[ \t]*(`{3,}(?![^\n]*`)|~{3,})")  # the info string of a ``` fence has no backtick
INDENTED = re.compile(r"(?: {4}|\t)[ \t]*\S")
LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•]|\d{1,9}[.)])[ \t]+\S")

HTML_TAGS = (
    "a|abbr|address|article|aside|audio|b|bdi|bdo|blockquote|body|br|button|canvas|caption|center|cite|col|"
    "colgroup|dd|del|details|dfn|dialog|div|dl|dt|em|embed|fieldset|figcaption|figure|font|footer|form|h[1-6]|"
    "head|header|hr|html|i|iframe|img|input|ins|kbd|label|legend|li|link|main|mark|meta|nav|noscript|ol|"
    "optgroup|option|p|picture|q|s|samp|section|select|small|source|span|strike|strong|sub|summary|sup|svg|"
    "table|tbody|td|textarea|tfoot|th|thead|time|title|tr|tt|u|ul|var|video|wbr"
)
INLINE = re.compile(
    "|".join(
        [
            r"(?P<lookalike>[⟦〚][^⟦⟧〚〛\n]{0,20}[⟧〛]|[⟦⟧〚〛])",
            r"(?P<element><(?P<el>code|pre|script|style)\b[^>]*>.*?</(?P=el)\s*>)",
            r"(?P<comment><!--.*?-->)",
            r"(?P<code>(?<!`)(?P<ticks>`+)(?!`)[^\n]*?(?<!`)(?P=ticks)(?!`))",
            r"(?P<env>\\begin\{(?P<envname>[a-zA-Z*]+)\}.*?\\end\{(?P=envname)\})",
            r"(?P<display>\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\))",
            r"(?P<template>\$\{[^{}\n]{1,100}\}|\{\{[^\n]{1,100}?\}\}|\{%[^\n]{1,100}?%\}|\{#[^\n]{1,100}?#\})",
            r"(?P<math>(?<![\\$])\$(?![\s$])(?:[^$\n\\]|\\.)+?(?<![\s\\])\$(?!\d))",
            r"(?P<dest>(?<=\]\()[^\s()<>]+(?:\([^\s()]*\))?(?=\)))",
            r"(?P<url>(?:https?|ftp)://[^\s<>\"`«»]+|www\.[^\s<>\"`«»]+)",
            r"(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)",
            r"(?P<field>\{(?:[A-Za-z_][\w.]*(?:\[[^\]\n]{0,20}\])*|\d+)?(?:![rsa])?(?::[^{}\n]{0,20})?\})",
            r"(?P<printf>(?<!%)%(?:\(\w+\))?[-+#0]*(?:\d+|\*)?(?:\.\d+)?(?:hh|h|ll|l)?[sdifFeEgGxXoucr](?![A-Za-z0-9]))",
            r"(?P<placeholder>(?<!<)<[A-Z][A-Z0-9_]*(?:[_-][A-Z0-9_]+)*>(?!>)"
            r"|\[[ \t]*(?i:insert|placeholder|todo|tbd|fill in)\b[^\]\n]{0,60}\])",
            rf"(?P<tag></?(?i:{HTML_TAGS})\b(?:\s[^<>]*)?/?>"
            r"|<[a-zA-Z][\w-]*(?:\s+[\w:-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s<>\"']+))+\s*/?>)",
        ]
    ),
    re.S,
)
URL_TAIL = ".,;:!?'*"  # punctuation after a URL belongs to the sentence
BRACKETS = {")": "(", "]": "[", "}": "{"}


@dataclass
class Masked:
    """The text with its segments replaced by ⟦1⟧, ⟦2⟧...; segments[i - 1] is what ⟦i⟧ stands for."""

    text: str
    segments: list[str] = field(default_factory=list)


@dataclass
class Restored:
    """The translation with its segments back; `problems` is empty when every token came back once.
    `repaired` counts tokens taken back despite small damage (spaces inside, look-alike brackets)."""

    text: str
    problems: list[str] = field(default_factory=list)
    repaired: int = 0


def token(i: int) -> str:
    return f"{OPEN}{i}{CLOSE}"


def mask(text: str) -> Masked:
    """Replace code, formulas, links, placeholders and markup by numbered tokens."""
    segments: list[str] = []
    out: list[str] = []
    pos = 0
    for start, end in _spans(text):
        out.append(text[pos:start])
        segments.append(text[start:end])
        out.append(token(len(segments)))
        pos = end
    out.append(text[pos:])
    return Masked("".join(out), segments)


def restore(translated: str, masked: Masked) -> Restored:
    """Put the segments back. Every token must come back exactly once: a missing, repeated or unknown
    token is a problem (repeated ones are all restored, unknown ones left as they are)."""
    segments = masked.segments
    counts: Counter[int] = Counter()
    unknown: dict[str, None] = {}
    repaired = 0

    def put(m: re.Match) -> str:
        nonlocal repaired
        i = int(m.group(1))
        if not 1 <= i <= len(segments):
            unknown[m.group(0)] = None
            return m.group(0)
        counts[i] += 1
        if m.group(0) != token(i):
            repaired += 1
        return segments[i - 1]

    text = TOKEN.sub(put, translated) if (OPEN in translated or "〚" in translated) else translated
    problems = []
    for i, segment in enumerate(segments, 1):
        if counts[i] != 1:
            what = "missing" if counts[i] == 0 else f"appears {counts[i]} times"
            problems.append(f"segment {i} ({short(segment)}) {what}")
    problems.extend(f"token {t} matches no segment" for t in unknown)
    return Restored(text, problems, repaired)


def round_trip(text: str) -> str:
    """mask then restore, with no translation in between: the text itself, always."""
    masked = mask(text)
    return restore(masked.text, masked).text


def short(text: str, limit: int = SHORT) -> str:
    """One line, single spaces, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every segment, in order, not overlapping: code blocks first, then the
    inline kinds in the gaps between them."""
    spans = []
    pos = 0
    for start, end in _blocks(text):
        spans.extend(_inline(text, pos, start))
        spans.append((start, end))
        pos = end
    spans.extend(_inline(text, pos, len(text)))
    return spans


def _inline(text: str, pos: int, endpos: int) -> list[tuple[int, int]]:
    spans = []
    while m := INLINE.search(text, pos, endpos):
        start, end = m.span()
        if m.lastgroup == "url":
            end = _url_end(text, start, end)
        spans.append((start, end))
        pos = end
    return spans


def _url_end(text: str, start: int, end: int) -> int:
    """Leave out the punctuation after a URL and a closing bracket it did not open ("(see https://x.org)")."""
    while end > start:
        last = text[end - 1]
        if last in URL_TAIL:
            end -= 1
        elif last in BRACKETS and text.count(BRACKETS[last], start, end) < text.count(last, start, end):
            end -= 1
        else:
            break
    return end


def _blocks(text: str) -> list[tuple[int, int]]:
    """Fenced and indented code blocks, from the start of their first line (indentation included) to
    the end of their last line (its line break excluded)."""
    if "```" not in text and "~~~" not in text and "    " not in text and "\t" not in text:
        return []
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    spans = []
    after_blank, in_list = True, False  # the start of the text counts as after a blank line
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := FENCE_OPEN.match(line):
            fence = m.group(1)
            closing = re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t\r]*$")
            j = next((k for k in range(i + 1, len(lines)) if closing.match(lines[k])), None)
            end = len(text) if j is None else starts[j] + len(lines[j])
            spans.append((starts[i], end))
            i = len(lines) if j is None else j + 1
            after_blank = False
            continue
        blank = not line.strip()
        if after_blank and not in_list and INDENTED.match(line):
            last = i
            j = i + 1
            while j < len(lines) and (INDENTED.match(lines[j]) or not lines[j].strip()):
                if lines[j].strip():
                    last = j
                j += 1
            spans.append((starts[i], starts[last] + len(lines[last])))
            i = last + 1
            after_blank = False
            continue
        if not blank:
            if LIST_ITEM.match(line):
                in_list = True
            elif after_blank and not line[0].isspace():
                in_list = False  # a paragraph at the margin after a blank line ends the list
        after_blank = blank
        i += 1
    return spans


# ---- markdown structure --------------------------------------------------------------------------

HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]|$)")
SETEXT = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
BULLET = re.compile(r"([ \t]*)[-*+•][ \t]+\S")
NUMBERED = re.compile(r"([ \t]*)\d{1,9}[.)][ \t]+\S")
QUOTE = re.compile(r" {0,3}>[ \t]?")
TABLE_DELIMITER = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$")
PIPE = re.compile(r"(?<!\\)\|")
INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"  # a line of a byte-order mark or zero-width spaces is blank
MERGES = ("text", "bullet", "numbered")  # a text line right after these continues them (a lazy continuation)


def markdown_structure(text: str) -> tuple[str, ...]:
    """The kinds of the markdown blocks, in order, code and formulas masked: `h1`..`h6`, `bullet`,
    `numbered` (`bullet:2` when nested one level), `quote` (`quote>bullet`...), `table:<cells>` (a row),
    `hr`, `text` (a paragraph, however many lines) and `break` (blank lines between two blocks)."""
    return tuple(kind for kind, _ in _elements(text))


def structure_problems(source: str, output: str, *, premasked: bool = False) -> list[str]:
    """The first difference between the markdown structure of a source and of its translation, in
    words (an empty list when they are the same). `premasked`: both texts are `mask(...).text` already."""
    a, b = _elements(source, premasked), _elements(output, premasked)
    for (kind_a, line_a), (kind_b, line_b) in zip(a, b, strict=False):
        if kind_a != kind_b:
            return [f"source line {line_a} is {describe(kind_a)}, output line {line_b} is {describe(kind_b)}"]
    if len(a) != len(b):
        longer = a if len(a) > len(b) else b
        rest = [e for e in longer[min(len(a), len(b)) :] if e[0] != "break"]
        kind, line = rest[0]
        more = f" and {len(rest) - 1} more block{'s' * (len(rest) > 2)}" if len(rest) > 1 else ""
        if longer is a:
            return [f"the output ends early: it lacks {describe(kind)} (source line {line}){more}"]
        return [f"the output goes on after the source's last block: {describe(kind)} at line {line}{more}"]
    return []


def describe(kind: str) -> str:
    """`bullet:2` -> 'a bullet item at depth 2'."""
    if kind.startswith("quote"):
        inner = kind.partition(">")[2]
        return "a blockquote" + (f" holding {describe(inner)}" if inner else "")
    name, _, n = kind.partition(":")
    if name in ("bullet", "numbered"):
        return f"a {name} item" + (f" at depth {n}" if n else "")
    if name == "table":
        return f"a table row of {n} cells"
    if re.fullmatch(r"h[1-6]", name):
        return f"a level-{name[1]} heading"
    return {"hr": "a horizontal rule", "break": "a blank line", "text": "a paragraph"}[name]


def _elements(text: str, premasked: bool = False) -> list[tuple[str, int]]:
    """(kind, line number from 1) of each block of the text, code and formulas masked."""
    lines = (text if premasked else mask(text).text).replace("\r", "").split("\n")
    elements: list[tuple[str, int]] = []
    indents: list[int] = []  # the indentation of the open list levels
    previous = ""  # the kind of the previous line ("" after a blank line)
    for n, line in enumerate(lines, 1):
        if not line.strip().strip(INVISIBLE):
            previous = ""
            continue
        kind = _kind(line, lines[n] if n < len(lines) else "", previous)
        if kind.startswith(("bullet", "numbered")):
            indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
            while indents and indents[-1] > indent:
                indents.pop()
            if not indents or indents[-1] < indent:
                indents.append(indent)
            if len(indents) > 1:
                kind += f":{len(indents)}"
        elif kind == "text" and not line[0].isspace() and not previous:
            indents = []  # a paragraph at the margin after a blank line ends the list
        if kind in ("setext1", "setext2") and previous == "text":
            elements[-1] = ("h1" if kind == "setext1" else "h2", elements[-1][1])
            previous = "heading"
            continue
        base = kind.partition(":")[0]
        if kind == "text" and previous in MERGES or kind == "quote>text" and previous == "quote>text":
            continue  # the same paragraph, list item or quote goes on
        if elements and not previous:
            elements.append(("break", n - 1))
        elements.append((kind, n))
        previous = base if base in MERGES else kind
    return elements


def _kind(line: str, following: str, previous: str) -> str:
    if m := HEADING.match(line):
        return f"h{len(m.group(1))}"
    if previous == "text" and SETEXT.match(line):
        return "setext1" if line.strip()[0] == "=" else "setext2"
    if RULE.match(line):
        return "hr"
    if m := QUOTE.match(line):
        inner = line[m.end() :]
        return "quote>" + _kind(inner, "", "") if inner.strip() else "quote"
    if BULLET.match(line):
        return "bullet"
    if NUMBERED.match(line):
        return "numbered"
    if "|" in line and (
        TABLE_DELIMITER.match(line)
        or line.lstrip().startswith("|")
        or TABLE_DELIMITER.match(following)
        or previous.startswith("table")
    ):
        cells = len(PIPE.split(line.strip().removeprefix("|").removesuffix("|")))
        return f"table:{cells}"
    return "text"
