"""The stage reference, generated from the stage classes: what `frcorpus stages` prints.

Each stage describes itself: its class docstring says what it does, its pydantic `Config` gives the
options (type, default, description; nested models such as `llm:` with the defaults this stage gives
them), `reasons` its rejection reasons and `annotations` the columns it adds. `stages_markdown` turns
that into docs/stages.md (a test fails when the committed page is stale); `option_lines` into the
terminal listing.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from frcorpus.stages.base import Stage

REGENERATE = "frcorpus stages --markdown > docs/stages.md"
# code spans are left as they are; outside them, what Markdown would take for HTML or emphasis
CODE_SPAN = re.compile(r"(`[^`]*`)")
MARKDOWN_SPECIAL = str.maketrans({"<": "&lt;", ">": "&gt;", "*": "\\*"})


@dataclass(frozen=True)
class Option:
    """One option of a stage: `path` is ("sampling", "max_tokens") for `sampling.max_tokens`."""

    path: tuple[str, ...]
    kind: str  # the type, or "mapping" for a nested model
    required: bool
    nested: bool
    default: Any  # the default value (this stage's, for a nested option); unused when required or nested
    description: str


def stage_options(
    model: type[BaseModel], defaults: BaseModel | None = None, parent: tuple[str, ...] = ()
) -> list[Option]:
    """The options of a stage's `Config`, nested models' options after their own line, `type` left out.
    A nested model's options show the defaults this stage gives it (translate's `sampling.max_tokens`
    is not judge's)."""
    options = []
    for field, info in model.model_fields.items():
        if field == "type":
            continue
        nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        required = info.is_required()
        if required or nested:
            default = None
        else:
            default = getattr(defaults, field) if defaults is not None else info.get_default(call_default_factory=True)
        kind = "mapping" if nested else type_name(info.annotation)
        options.append(Option((*parent, field), kind, required, nested, default, info.description or ""))
        if nested:
            inner = None if required else info.get_default(call_default_factory=True)
            options.extend(stage_options(info.annotation, inner, (*parent, field)))
    return options


def type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "")
    return text.removeprefix("<class '").removesuffix("'>")


def description(cls: type[Stage]) -> str:
    """The stage's own docstring (not inherited), dedented; "" when it has none."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def summary(cls: type[Stage]) -> str:
    """The first line of the stage's docstring."""
    return description(cls).partition("\n")[0]


def stage_kind(cls: type[Stage]) -> str:
    return "global" if cls.is_global else "per-record"


def option_lines(cls: type[Stage], indent: str = "    ") -> list[str]:
    """The terminal listing of a stage's options: `name: type (default ...) description`, nested
    options indented below their mapping."""
    lines = []
    for option in stage_options(cls.Config):
        if option.required:
            default = "required"
        elif option.nested:
            default = "defaults below"
        else:
            default = f"default {option.default!r}"
        pad = indent * len(option.path)
        lines.append(f"{pad}{option.path[-1]}: {option.kind} ({default}) {option.description}")
    return lines


def stages_markdown(registry: dict[str, type[Stage]]) -> str:
    """docs/stages.md: an index of the stages, then per stage its description, options, rejection
    reasons and added columns."""
    parts = [
        "# Stages",
        f"<!-- Generated from the stage classes by `{REGENERATE}`; do not edit it here: edit the stage's "
        "docstring, its Config's field descriptions or its `reasons`, then regenerate. -->",
        "Every stage a pipeline's `stages:` list can name (its `type:`), in the order of the registry. A "
        "per-record stage works on each record independently of the others, in the parallel passes over "
        "shards of the data; a global stage sees every record (a small signature of each) at once, at a "
        "barrier between two passes. Every stage takes an "
        "`id` (its key in `stats.json` and in the `stage` column of `rejects/`), and filters take "
        "`annotate_only` (count what would be rejected, reject nothing). A rejected record's `reason` is "
        "`<stage type>.<reason>`; `<...>` in a reason stands for a value. `frcorpus stages` prints the same "
        "options in the terminal, and `frcorpus stages --schema` the JSON Schema of the pipeline file.",
        _table(
            ["stage", "family", "kind", "what it does"],
            [
                [f"[`{name}`](#{name})", cls.family, stage_kind(cls), _text(summary(cls))]
                for name, cls in registry.items()
            ],
        ),
    ]
    for name, cls in registry.items():
        parts.append(f"## {name}")
        parts.append(f"Family `{cls.family}`, {stage_kind(cls)}.")
        if description(cls):
            parts.append(description(cls))
        parts.append(
            _table(
                ["option", "type", "default", "description"],
                [_option_row(option) for option in stage_options(cls.Config)],
            )
        )
        if cls.reasons is not None:
            reasons = ", ".join(f"`{name}.{reason}`" for reason in cls.reasons)
            parts.append(f"Rejection reasons: {reasons}." if reasons else "Rejects nothing.")
        if cls.annotations:
            parts.append("Columns it adds: " + ", ".join(f"`{column}`" for column, _ in cls.annotations) + ".")
    return "\n\n".join(parts) + "\n"


def _option_row(option: Option) -> list[str]:
    if option.required:
        default = "required"
    elif option.nested:
        default = "below"
    else:
        default = _code(repr(option.default))
    type_cell = option.kind if option.nested else _code(option.kind)
    return [_code(".".join(option.path)), type_cell, default, _text(option.description)]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def _text(text: str) -> str:
    """Free text for a table cell: one line, pipes escaped, and outside code spans no HTML or emphasis."""
    pieces = CODE_SPAN.split(" ".join(text.split()))
    return "".join(p if p.startswith("`") else p.translate(MARKDOWN_SPECIAL) for p in pieces).replace("|", "\\|")
