"""The chat formats a source may hold (`messages`, `sharegpt`, `alpaca`, `prompt_response`):
detecting a row's format, and converting a row to canonical messages or a `ReadIssue` that says
what is wrong with it.
"""

from __future__ import annotations

from typing import Any

from frcorpus.resources import role_aliases
from frcorpus.sources.config import FORMATS, SourceConfig


class ReadIssue(Exception):
    """A malformed record: `reason` becomes `read.<reason>`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


CHAT_FORMATS = ("messages", "sharegpt")
# the fields of each chat format: where the turns are (the first present), and a turn's role and text keys
CHAT_FIELDS = {"messages": ("messages", "conversations", "conversation"), "sharegpt": ("conversations", "conversation")}
TURN_KEYS = {"messages": ("role", "content"), "sharegpt": ("from", "value")}


def chat_fields(fmt: str, fields: dict[str, Any]) -> tuple[tuple[str, ...], str, str]:
    """(the fields that may hold the turns, a turn's role key, its content key) of a chat format, with the
    source's `fields:` mapping (`messages`, `role`, `content`) in place of the format's own names."""
    role, content = TURN_KEYS[fmt]
    turns = (fields["messages"],) if fields.get("messages") else CHAT_FIELDS[fmt]
    return turns, fields.get("role") or role, fields.get("content") or content


def detect_format(obj: dict, cfg: SourceConfig) -> tuple[str, dict[str, Any]]:
    """Guess the format of a row: returns (format, field names)."""
    fields = cfg.fields.model_dump()
    mapped = fields["messages"]
    if mapped and isinstance(obj.get(mapped), list):  # the source names its chat field
        turns = obj[mapped]
        first = turns[0] if turns and isinstance(turns[0], dict) else {}
        return ("sharegpt" if "from" in first else "messages"), fields
    if isinstance(obj.get("messages"), list):
        return "messages", fields
    for key in ("conversations", "conversation"):
        turns = obj.get(key)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict):
            return ("sharegpt" if "from" in turns[0] else "messages"), fields
    if "instruction" in obj and "output" in obj:
        return "alpaca", fields
    for prompt, response in ((fields["prompt"], fields["response"]), ("question", "answer"), ("prompt", "completion")):
        if prompt in obj and response in obj:
            return "prompt_response", {**fields, "prompt": prompt, "response": response}
    named = ", ".join(f for f in FORMATS if f != "auto")
    raise ReadIssue(
        "unknown_format",
        f"cannot detect the format from the fields {sorted(obj)[:8]}; set format: ({named}) and, for "
        "prompt_response, fields: {prompt: ..., response: ...}",
    )


def _text(value: Any, where: str) -> str:
    if value is None:
        raise ReadIssue("missing_content", f"{where}: content is missing")
    if isinstance(value, list):  # OpenAI content parts
        texts = []
        for part in value:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ReadIssue("unsupported_content", f"{where}: only text content parts are supported")
            texts.append(part["text"])
        value = "".join(texts)
    if not isinstance(value, str):
        raise ReadIssue("bad_content_type", f"{where}: content is a {type(value).__name__}, not a string")
    if not value.strip():
        raise ReadIssue("empty_content", f"{where}: content is empty")
    return value


def _chat(turns: Any, role_key: str, content_key: str, field_name: str) -> list[dict[str, str]]:
    if not isinstance(turns, list):
        raise ReadIssue("missing_field", f"'{field_name}' must be a list of turns")
    if not turns:
        raise ReadIssue("empty_conversation", f"'{field_name}' is empty")
    aliases = role_aliases()
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ReadIssue("bad_turn", f"turn {i} is a {type(turn).__name__}, not an object")
        role_raw = turn.get(role_key)
        role = aliases.get(str(role_raw).strip().lower()) if role_raw is not None else None
        if role is None:
            raise ReadIssue(
                "unknown_role",
                f"turn {i}: role {role_raw!r} is not known; add it to filters/role_aliases.yaml",
            )
        content = turn.get(content_key)
        if role == "system" and isinstance(content, str) and not content.strip():
            messages.append({"role": role, "content": content})  # harmless; `normalize` removes it
            continue
        messages.append({"role": role, "content": _text(content, f"turn {i} ({role})")})
    return messages


def check_turns(messages: list[dict[str, str]]) -> None:
    """Structure every chat format forbids breaking: system first, alternation, an answer."""
    for i, m in enumerate(messages):
        if m["role"] == "system" and i != 0:
            raise ReadIssue("misplaced_system", f"turn {i}: a system turn may only come first")
        if i and m["role"] == messages[i - 1]["role"]:
            raise ReadIssue("consecutive_roles", f"turns {i - 1} and {i} are both '{m['role']}'")
    first = messages[1] if messages[0]["role"] == "system" and len(messages) > 1 else messages[0]
    if first["role"] != "user":
        raise ReadIssue("starts_with_assistant", "the first turn after the system prompt is not a user turn")
    if not any(m["role"] == "assistant" for m in messages):
        raise ReadIssue("no_assistant_turn", "the conversation has no assistant turn")


def _chat_key(obj: dict, keys: tuple[str, ...]) -> str | None:
    """The field that holds the turns: the first of `keys` that is not null (a null field is an absent
    one, as in tables exported from `datasets`, which write null for another format's columns), else
    the first present (for its error)."""
    present = [k for k in keys if k in obj]
    return next((k for k in present if obj[k] is not None), present[0] if present else None)


def to_messages(obj: Any, fmt: str, fields: dict[str, Any]) -> list[dict[str, str]]:
    """Convert one raw row to canonical messages, or raise ReadIssue."""
    if not isinstance(obj, dict):
        raise ReadIssue("not_an_object", f"the row is a {type(obj).__name__}, not a JSON object")
    if fmt in CHAT_FORMATS:
        turn_fields, role_key, content_key = chat_fields(fmt, fields)
        key = _chat_key(obj, turn_fields)
        if key is None:
            raise ReadIssue("missing_field", f"no '{turn_fields[0]}' field")
        messages = _chat(obj[key], role_key, content_key, key)
    elif fmt == "alpaca":
        for name in ("instruction", "output"):
            if name not in obj:
                raise ReadIssue("missing_field", f"no '{name}' field")
        prompt = _text(obj["instruction"], "instruction")
        extra = obj.get("input")
        if isinstance(extra, str) and extra.strip():
            prompt = f"{prompt}\n\n{extra}"
        messages = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": _text(obj["output"], "output")},
        ]
        if isinstance(obj.get("system"), str) and obj["system"].strip():
            messages.insert(0, {"role": "system", "content": obj["system"]})
    else:  # prompt_response
        for name in (fields["prompt"], fields["response"]):
            if name not in obj:
                raise ReadIssue("missing_field", f"no '{name}' field")
        messages = [
            {"role": "user", "content": _text(obj[fields["prompt"]], fields["prompt"])},
            {"role": "assistant", "content": _text(obj[fields["response"]], fields["response"])},
        ]
        system_key = fields.get("system")
        if system_key and isinstance(obj.get(system_key), str) and obj[system_key].strip():
            messages.insert(0, {"role": "system", "content": obj[system_key]})
    check_turns(messages)
    return messages
