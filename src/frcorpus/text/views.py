"""Views of a conversation: the turns a stage or a scorer looks at (first prompt, last answer, or all)."""

from __future__ import annotations

from typing import Literal

View = Literal["prompt", "response", "conversation"]


def view_turns(turns: list[tuple[str, str]], view: View) -> list[tuple[str, str]]:
    """The (role, content) turns a view looks at: first user turn, last assistant turn, or all."""
    if view == "conversation":
        return turns
    role = "user" if view == "prompt" else "assistant"
    chosen = [t for t in turns if t[0] == role]
    if not chosen:
        return []
    return [chosen[0] if view == "prompt" else chosen[-1]]


def view_text(messages: list[dict[str, str]], view: View) -> str:
    """The contents of the turns a view looks at, one per line (what the near-duplicate stages compare)."""
    turns = view_turns([(m["role"], m["content"]) for m in messages], view)
    return "\n".join(content for _, content in turns)
