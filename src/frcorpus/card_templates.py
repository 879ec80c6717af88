"""The Jinja environment over the `cards/` templates, shared by the dataset card of a version and the
model card of a recipe's merged model, with the filters both use.

The templates are user-editable files, so they render in Jinja's sandbox: they cannot reach Python.
"""

from __future__ import annotations

import re

from frcorpus.resources import resource_dir


class CardError(Exception):
    """A card that cannot be written (missing files, a tokenizer not found, a template that fails)."""


def table_cell(value: object) -> str:
    """A Markdown table cell: a `|` would end it, a newline would end the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def revision_text(revision: str | None) -> str:
    """A commit or content hash as code, a tag or a sentence as text."""
    if not revision:
        return "-"
    return f"`{revision}`" if re.fullmatch(r"[0-9a-f]{7,64}", revision) else table_cell(revision)


def code_fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def card_environment():
    """Jinja over the cards/ templates, sandboxed, with the `cell` and `revision` filters. StrictUndefined:
    a name a template misspells is an error, not an empty cell."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(resource_dir("cards"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["cell"] = table_cell
    env.filters["revision"] = revision_text
    return env
