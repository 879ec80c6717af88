"""Deduplication. `exact_dedup`: hash of a normalised view of the conversation; the first record
in the global order (sources in YAML order, then files, then rows) is kept and every later copy is
rejected with `dup_of=<kept id>`."""

from __future__ import annotations

import unicodedata
from typing import Any, ClassVar, Literal

import xxhash
from pydantic import Field

from frcorpus.stages.base import GlobalStage, Reject, SignatureItem, StageConfig

View = Literal["prompt", "response", "conversation"]


def view_turns(messages: list[dict[str, str]], view: View) -> list[dict[str, str]]:
    """The turns a view looks at: first user turn, last assistant turn, or all turns."""
    if view == "conversation":
        return messages
    role = "user" if view == "prompt" else "assistant"
    turns = [m for m in messages if m["role"] == role]
    if not turns:
        return []
    return [turns[0] if view == "prompt" else turns[-1]]


def normalise_for_hash(text: str, lowercase: bool) -> str:
    # str.split() splits on the same Unicode whitespace as \s+, several times faster than re.sub
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return text.lower() if lowercase else text


class ExactDedup(GlobalStage):
    name: ClassVar[str] = "exact_dedup"
    family: ClassVar[str] = "dedup"

    class Config(StageConfig):
        type: Literal["exact_dedup"]
        view: View = Field("conversation", description="prompt | response | conversation")
        lowercase: bool = Field(False, description="ignore case when comparing")

    def signature(self, record: dict[str, Any]) -> str:
        # One string per record, then one normalisation pass and one hash: per-turn calls cost twice as
        # much. The separators are whitespace-delimited tokens, so that splitting on whitespace keeps them
        # apart from the text around them.
        view = " \x00 ".join(
            f"{m['role']} \x01 {m['content']}" for m in view_turns(record["messages"], self.config.view)
        )
        return xxhash.xxh3_128_hexdigest(
            normalise_for_hash(view, self.config.lowercase).encode("utf-8", "surrogatepass")
        )

    def decide(self, items: list[SignatureItem]) -> dict[int, Reject]:
        first: dict[str, str] = {}
        rejects: dict[int, Reject] = {}
        for i, item in enumerate(items):
            kept_id = first.setdefault(item.sig, item.id)
            if kept_id != item.id:
                rejects[i] = Reject("duplicate", f"dup_of={kept_id}")
        self.count("distinct", len(first))
        return rejects
