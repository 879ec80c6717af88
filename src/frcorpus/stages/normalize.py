"""`normalize`: Unicode NFC, whitespace, system prompts; code blocks untouched."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from frcorpus.batch import PY_WHITESPACE_CLASS, ChatLayout, unstable_class, with_rejects
from frcorpus.stages.base import StageConfig, Transformer
from frcorpus.text.code import split_code

TRAILING_SPACE = re.compile(r"[ \t]+\n")
MANY_BLANK_LINES = re.compile(r"\n{3,}")
SPACE_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


class Normalize(Transformer):
    """Tidy Unicode, whitespace and system prompts, leaving code blocks and French typography alone.

    Each turn is normalised to Unicode NFC (or NFKC, `unicode_form`); line ends become LF, and outside
    fenced code blocks trailing spaces go and at most one blank line is kept (`whitespace`); runs of
    spaces can be collapsed too (`collapse_spaces`). French typography (« », ’, non-breaking spaces) is
    kept as it is. Empty system prompts are removed; `system_prompt` says what happens to the others:
    `keep`, `drop`, or `merge_into_user` (prepended to the user turn that follows). A record whose
    assistant turns are all empty afterwards is rejected.
    """

    name: ClassVar[str] = "normalize"
    family: ClassVar[str] = "normalize"
    reasons: ClassVar[tuple[str, ...]] = ("empty_after_normalization",)

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

    def process_table(self, table: pa.Table) -> pa.Table | None:
        """`process` over Arrow columns: one regex pass finds the turns `_text` would change (a
        character that is not stable under the Unicode form, a carriage return, a code fence, spaces
        before a newline, blank lines, whitespace at either end); only those go through `_text`.
        The drop/merge system policies use the per-record path."""
        if self.config.system_prompt != "keep":
            return None
        turns = ChatLayout(table["messages"])
        old = turns.contents
        flagged = pc.match_substring_regex(old, self._changes_pattern())
        new = old
        if pc.any(flagged).as_py():
            fixed = [self._text(t) for t in old.filter(flagged).to_pylist()]
            new = pc.replace_with_mask(old, flagged, pa.array(fixed, pa.string()))
        changed = pc.not_equal(new, old).to_numpy(zero_copy_only=False)
        empty = pc.equal(new, "").to_numpy(zero_copy_only=False)
        removed = (turns.codes == 0) & empty
        records_changed = turns.per_row_any(changed | removed)
        for key, mask in (
            ("turns_changed", changed),
            ("system_removed_empty", removed),
            ("records_changed", records_changed),
        ):
            if mask.any():  # the per-record path only creates a counter when it counts something
                self.count(key, int(mask.sum()))
        no_answer = ~turns.per_row_any((turns.codes == 2) & ~empty)
        messages = turns.rebuild(keep_turns=~removed, contents=new)
        table = table.set_column(table.schema.get_field_index("messages"), "messages", messages)
        rows = np.flatnonzero(no_answer)
        reason = f"{self.name}.empty_after_normalization"
        return with_rejects(table, rows, self.id, [reason] * len(rows), [""] * len(rows))

    def _changes_pattern(self) -> str:
        cfg = self.config
        parts = []
        if cfg.unicode_form != "none":
            parts.append(unstable_class(cfg.unicode_form))
        if cfg.whitespace:
            ws = PY_WHITESPACE_CLASS
            parts += ["\r", " \n", "\t\n", "\n\n\n", "```", "~~~", f"^{ws}", f"{ws}$"]
        if cfg.collapse_spaces:
            parts += ["  ", "\t"]
        return "|".join(parts) or "$^"
