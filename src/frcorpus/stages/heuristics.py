"""Rule-based filters on the shape of a conversation. `length` comes first; the French-aware
quality heuristics of the language issue join it in this module."""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar, Literal

import yaml
from pydantic import Field, model_validator

from frcorpus.resources import resource_dir
from frcorpus.stages.base import Filter, FilterConfig, Reject

LIMIT_KEYS = (
    "min_chars_per_turn",
    "max_chars_per_turn",
    "min_assistant_chars",
    "min_chars",
    "max_chars",
    "min_turns",
    "max_turns",
)


@cache
def length_presets() -> dict[str, dict[str, int]]:
    return yaml.safe_load((resource_dir("filters") / "length_thresholds.yaml").read_text(encoding="utf-8"))


class Length(Filter):
    """Characters per turn and per conversation, and the number of user/assistant turns.

    System turns count towards `max_chars` but not towards the per-turn limits or the turn count.
    """

    name: ClassVar[str] = "length"
    family: ClassVar[str] = "heuristics"

    class Config(FilterConfig):
        type: Literal["length"]
        preset: str | None = Field(None, description="a preset from filters/length_thresholds.yaml (fr_chat, en_chat)")
        min_chars_per_turn: int | None = Field(None, ge=0)
        max_chars_per_turn: int | None = Field(None, ge=1)
        min_assistant_chars: int | None = Field(None, ge=0, description="minimum characters of every assistant turn")
        min_chars: int | None = Field(None, ge=0, description="minimum characters of the conversation")
        max_chars: int | None = Field(None, ge=1)
        min_turns: int | None = Field(None, ge=1, description="user + assistant turns")
        max_turns: int | None = Field(None, ge=1)

        @model_validator(mode="after")
        def _check(self):
            if self.preset is not None and self.preset not in length_presets():
                raise ValueError(
                    f"unknown preset {self.preset!r}; choose one of {sorted(length_presets())} "
                    "or add it to filters/length_thresholds.yaml"
                )
            for low, high in (
                ("min_chars_per_turn", "max_chars_per_turn"),
                ("min_chars", "max_chars"),
                ("min_turns", "max_turns"),
            ):
                lo, hi = getattr(self, low), getattr(self, high)
                if lo is not None and hi is not None and lo > hi:
                    raise ValueError(f"{low} ({lo}) is greater than {high} ({hi})")
            return self

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        limits = dict(length_presets()[config.preset]) if config.preset else {}
        limits.update({k: getattr(config, k) for k in LIMIT_KEYS if getattr(config, k) is not None})
        self.limits: dict[str, int | None] = {k: limits.get(k) for k in LIMIT_KEYS}

    def keep(self, record: dict[str, Any]) -> bool | Reject:
        lim = self.limits
        total = 0
        turns = 0
        for i, m in enumerate(record["messages"]):
            n = len(m["content"])
            total += n
            if m["role"] == "system":
                continue
            turns += 1
            if lim["min_chars_per_turn"] is not None and n < lim["min_chars_per_turn"]:
                return Reject("turn_too_short", f"turn {i} ({m['role']}): {n} < {lim['min_chars_per_turn']} chars")
            if lim["max_chars_per_turn"] is not None and n > lim["max_chars_per_turn"]:
                return Reject("turn_too_long", f"turn {i} ({m['role']}): {n} > {lim['max_chars_per_turn']} chars")
            if m["role"] == "assistant" and lim["min_assistant_chars"] is not None and n < lim["min_assistant_chars"]:
                return Reject("answer_too_short", f"turn {i}: {n} < {lim['min_assistant_chars']} chars")
        if lim["min_chars"] is not None and total < lim["min_chars"]:
            return Reject("too_short", f"{total} < {lim['min_chars']} chars")
        if lim["max_chars"] is not None and total > lim["max_chars"]:
            return Reject("too_long", f"{total} > {lim['max_chars']} chars")
        if lim["min_turns"] is not None and turns < lim["min_turns"]:
            return Reject("too_few_turns", f"{turns} < {lim['min_turns']} turns")
        if lim["max_turns"] is not None and turns > lim["max_turns"]:
            return Reject("too_many_turns", f"{turns} > {lim['max_turns']} turns")
        return True
