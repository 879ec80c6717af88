"""Code in an answer, set aside before a rule judges its prose: fenced blocks, HTML `<code>`/`<pre>`
blocks and inline code. "Lorem ipsum" in an HTML example or `{{ name }}` in a template is code, not a
placeholder left in the answer; a line of a program repeated is not a loop. Nothing of the code is
kept (what language identification reads keeps the prose values of JSON; this does not).
"""

from __future__ import annotations

import re

from frcorpus.text.code import FENCED_CODE

FENCED = re.compile(FENCED_CODE, re.S)
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
    return text
