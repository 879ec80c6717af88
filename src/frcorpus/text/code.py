"""Fenced code blocks (``` or ~~~) in markdown text: code keeps its exact bytes through every stage."""

from __future__ import annotations

import re

# A fenced code block anywhere in a text, through its closing fence or the end (for stages that only
# need to set code aside; CODE_FENCE below keeps the exact fence lines for splitting a text).
FENCED_CODE = r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)"
# A fenced code block (``` or ~~~), through its closing fence or the end of the text.
CODE_FENCE = re.compile(r"(^|\n)([ \t]*(```|~~~)[^\n]*\n.*?(?:\n[ \t]*\3[ \t]*(?=\n|$)|$))", re.S)


def split_code(text: str) -> list[tuple[bool, str]]:
    """Split text into (is_code, chunk) pieces so that fenced code keeps its exact bytes."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in CODE_FENCE.finditer(text):
        start = m.start(2)
        if start > pos:
            parts.append((False, text[pos:start]))
        parts.append((True, m.group(2)))
        pos = m.end(2)
    if pos < len(text):
        parts.append((False, text[pos:]))
    return parts
