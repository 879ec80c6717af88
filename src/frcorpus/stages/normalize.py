"""`normalize`: Unicode NFC, whitespace, system prompts; code blocks untouched."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, ClassVar, Literal

from pydantic import Field

from frcorpus.stages.base import StageConfig, Transformer

# A fenced code block (``` or ~~~), through its closing fence or the end of the text.
CODE_FENCE = re.compile(r"(^|\n)([ \t]*(```|~~~)[^\n]*\n.*?(?:\n[ \t]*\3[ \t]*(?=\n|$)|$))", re.S)
TRAILING_SPACE = re.compile(r"[ \t]+\n")
MANY_BLANK_LINES = re.compile(r"\n{3,}")
SPACE_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


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


class Normalize(Transformer):
    name: ClassVar[str] = "normalize"
    family: ClassVar[str] = "normalize"

    class Config(StageConfig):
        type: Literal["normalize"]
        unicode_form: Literal["NFC", "NFKC", "none"] = Field(
            "NFC", description="NFKC also folds compatibility characters (ligatures, full-width forms)"
        )
        whitespace: bool = Field(
            True,
            description="CRLF to LF, strip trailing spaces per line and around turns, at most one blank line",
        )
        collapse_spaces: bool = Field(
            False, description="collapse runs of spaces/tabs inside lines (outside code blocks)"
        )
        system_prompt: Literal["keep", "drop", "merge_into_user"] = Field(
            "keep", description="what to do with non-empty system turns; empty ones are always removed"
        )

    def _text(self, text: str) -> str:
        cfg = self.config
        if cfg.unicode_form != "none" and not text.isascii():
            text = unicodedata.normalize(cfg.unicode_form, text)
        if cfg.whitespace:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not (cfg.whitespace or cfg.collapse_spaces):
            return text
        if "```" in text or "~~~" in text:
            pieces = [chunk if is_code else self._prose(chunk) for is_code, chunk in split_code(text)]
            text = "".join(pieces)
        else:
            text = self._prose(text)
        return text.strip() if cfg.whitespace else text

    def _prose(self, text: str) -> str:
        # substring tests first: most turns are clean, and `in` costs far less than a regex pass
        if self.config.whitespace:
            if " \n" in text or "\t\n" in text:
                text = TRAILING_SPACE.sub("\n", text)
            if "\n\n\n" in text:
                text = MANY_BLANK_LINES.sub("\n\n", text)
        if self.config.collapse_spaces and ("  " in text or "\t" in text):
            text = SPACE_RUNS.sub(" ", text)
        return text

    def process(self, records: list[dict[str, Any]]) -> None:
        policy = self.config.system_prompt
        for record in records:
            messages = []
            changed = False
            for m in record["messages"]:
                content = self._text(m["content"])
                if content != m["content"]:
                    changed = True
                    self.count("turns_changed")
                if m["role"] == "system" and (not content or policy == "drop"):
                    self.count("system_removed_empty" if not content else "system_dropped")
                    changed = True
                    continue
                messages.append({"role": m["role"], "content": content})
            if policy == "merge_into_user" and messages and messages[0]["role"] == "system":
                system = messages.pop(0)["content"]
                if messages and messages[0]["role"] == "user":
                    messages[0] = {"role": "user", "content": f"{system}\n\n{messages[0]['content']}"}
                    self.count("system_merged")
                    changed = True
                else:
                    messages.insert(0, {"role": "system", "content": system})
            if changed:
                self.count("records_changed")
            if not any(m["content"] for m in messages if m["role"] == "assistant"):
                self.reject(record, "empty_after_normalization")
            record["messages"] = messages
