"""Code in an answer, set aside before a rule judges its prose: fenced blocks, HTML `<code>`/`<pre>`
blocks, inline code and code written without a fence (`text.code.is_code_line`: commands, program
lines, JSON, CSS, terminal output). "Lorem ipsum" in an HTML example or `{{ name }}` in a template is
code, not a placeholder left in the answer; a line of a program repeated is not a loop. Nothing of the
code is kept (`text.code.without_code`, what language identification reads, keeps JSON's prose
values; this does not).
"""

from __future__ import annotations

import re

from frcorpus.text.code import FENCED, is_code_line

HTML_CODE = re.compile(r"<(code|pre)\b[^>]*>.*?(?:</\1>|\Z)", re.S | re.I)
INLINE_CODE = re.compile(r"`[^`\n]+`")


def without_code_spans(text: str) -> str:
    """The text with its code replaced by spaces or empty lines (the lines of the prose keep their
    order)."""
    if "```" in text or "~~~" in text:
        text = FENCED.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    if "<" in text:
        text = HTML_CODE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    if "`" in text:
        text = INLINE_CODE.sub(" ", text)
    return "\n".join("" if is_code_line(line) else line for line in text.split("\n"))
