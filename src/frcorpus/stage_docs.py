"""The pipeline reference, generated from the code: what `frcorpus stages` prints and docs/stages.md.

Each stage describes itself: its class docstring says what it does (its first paragraph is the summary),
its pydantic `Config` gives the options (type, default, description; nested models such as `llm:` with
the defaults this stage gives them), `reasons` its rejection reasons and `annotations` the columns it
adds. The other blocks of the pipeline file (its top-level keys, `sources`, `executor`, `output`,
`card`) are described the same way from their models' fields, in `BLOCKS`. `stages_markdown` turns all
that into docs/stages.md (a test fails when the committed page is stale); `listing` and `sections`
into what the terminal shows, as rich `Text` so that no `[...]` in a description is taken for markup.
"""

from __future__ import annotations

import difflib
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from frcorpus.config import CardConfig, LocalExecutor, OutputConfig, PipelineConfig, RayExecutor, SlurmExecutor
from frcorpus.sources.config import SourceConfig
from frcorpus.stages.base import Stage

REGENERATE = "frcorpus stages --markdown > docs/stages.md"
# code spans are left as they are; outside them, what Markdown would take for HTML or emphasis
CODE_SPAN = re.compile(r"(`[^`]*`)")
MARKDOWN_SPECIAL = str.maketrans({"<": "&lt;", ">": "&gt;", "*": "\\*"})
# a line that starts a list item or is indented: such a paragraph keeps its lines in the terminal
KEEPS_ITS_LINES = re.compile(r"^(\s+|[-*] |\d+\. )")


@dataclass(frozen=True)
class Option:
    """One option of a stage or block: `path` is ("sampling", "max_tokens") for `sampling.max_tokens`."""

    path: tuple[str, ...]
    kind: str  # the type, or "mapping" for a nested model
    required: bool
    nested: bool  # a mapping whose own options follow it
    default: Any  # the default value (this stage's, for a nested option); unused when required or nested
    description: str
    section: str | None = None  # the section that documents this option's value (a top-level key's block)


@dataclass(frozen=True)
class ConfigBlock:
    """A block of the pipeline file that is not a stage: its summary (a sentence) and its models, one per
    `type:` for the executor (`label` is then `type: local`), else one with no label."""

    name: str
    summary: str
    models: tuple[tuple[str, type[BaseModel]], ...]


BLOCKS: dict[str, ConfigBlock] = {
    block.name: block
    for block in (
        ConfigBlock(
            "pipeline",
            "The top-level keys of a pipeline file: the dataset's name and version, and its blocks.",
            (("", PipelineConfig),),
        ),
        ConfigBlock(
            "sources",
            "Each entry of `sources:` is one dataset to read: where its files are, their format, licence and language.",
            (("", SourceConfig),),
        ),
        ConfigBlock(
            "executor",
            "`executor:` says where the work runs: on this machine (`local`, the default), as Slurm jobs "
            "(`slurm`) or on a Ray cluster (`ray`).",
            (("type: local", LocalExecutor), ("type: slurm", SlurmExecutor), ("type: ray", RayExecutor)),
        ),
        ConfigBlock(
            "output",
            "`output:` says where versions are written and how their Parquet files are compressed.",
            (("", OutputConfig),),
        ),
        ConfigBlock(
            "card", "`card:` says what the dataset card declares beyond what the run measures.", (("", CardConfig),)
        ),
    )
}


def stage_options(
    model: type[BaseModel], defaults: BaseModel | None = None, parent: tuple[str, ...] = ()
) -> list[Option]:
    """The options of a stage's `Config`, nested models' options after their own line, `type` left out.
    A nested model's options show the defaults this stage gives it (translate's `sampling.max_tokens`
    is not judge's)."""
    options = []
    for field, info in model.model_fields.items():
        if field != "type":
            options.extend(_field_options(field, info, defaults, parent))
    return options


def _field_options(field: str, info: FieldInfo, defaults: BaseModel | None, parent: tuple[str, ...]) -> list[Option]:
    """The option of one field, then its own options when it holds a nested model."""
    nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    required = info.is_required()
    if required or nested:
        default = None
    else:
        default = getattr(defaults, field) if defaults is not None else info.get_default(call_default_factory=True)
    kind = "mapping" if nested else type_name(info.annotation)
    options = [Option((*parent, field), kind, required, nested, default, info.description or "")]
    if nested:
        inner = None if required else info.get_default(call_default_factory=True)
        options.extend(stage_options(info.annotation, inner, (*parent, field)))
    return options


def block_options(model: type[BaseModel]) -> list[Option]:
    """The options of a block's model; a top-level key that holds another block (`sources`, `executor`...)
    or the stages is one line that points to that block's section."""
    if model is not PipelineConfig:
        return stage_options(model)
    options = []
    for field, info in PipelineConfig.model_fields.items():
        if field in BLOCKS or field == "stages":
            kind = "list of mappings" if typing.get_origin(info.annotation) is list else "mapping"
            options.append(Option((field,), kind, info.is_required(), False, None, info.description or "", field))
        else:
            options.extend(_field_options(field, info, None, ()))
    return options


def type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "")
    return text.removeprefix("<class '").removesuffix("'>")


def description(cls: type[Stage]) -> str:
    """The stage's own docstring (not inherited), dedented; "" when it has none."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def paragraphs(text: str) -> list[str]:
    """The paragraphs of a docstring (separated by blank lines)."""
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def summary(cls: type[Stage]) -> str:
    """The first paragraph of the stage's docstring, on one line: whole sentences, never cut."""
    first = paragraphs(description(cls))
    return " ".join(first[0].split()) if first else ""


def stage_kind(cls: type[Stage]) -> str:
    return "global" if cls.is_global else "per-record"


def closest(name: str, known: list[str]) -> list[str]:
    """The known names closest to a mistyped one (difflib), best first."""
    return difflib.get_close_matches(name, known, n=3, cutoff=0.6)


# --------------------------------------------------------------------------- the terminal


def listing(registry: dict[str, type[Stage]]) -> list[RenderableType]:
    """`frcorpus stages`: one row per stage (name, summary), per-record stages then global ones (each in
    the registry's order), one row per block of the pipeline file, and where to look next."""
    table = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column()
    groups = {"per-record stages": False, "global stages": True}
    for title, is_global in groups.items():
        table.add_row(Text(title, style="bold underline"), "")
        for name, cls in registry.items():
            if cls.is_global == is_global:
                table.add_row(Text(name, style="bold"), _literal(summary(cls)))
        table.add_row("", "")
    table.add_row(Text("pipeline blocks", style="bold underline"), "")
    for name, block in BLOCKS.items():
        table.add_row(Text(name, style="bold"), _literal(block.summary))
    hints = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
    hints.add_column(no_wrap=True)
    hints.add_column()
    hints.add_row("frcorpus stages NAME...", "each named stage or block in full: options, defaults, reasons")
    hints.add_row("frcorpus stages --markdown", "the whole reference (docs/stages.md)")
    hints.add_row("frcorpus stages --schema", "the JSON Schema of the pipeline file, for editors")
    return [table, Text(), hints]


def sections(names: list[str], registry: dict[str, type[Stage]]) -> list[RenderableType]:
    """`frcorpus stages NAME...`: the whole section of each named stage or block."""
    parts: list[RenderableType] = []
    for name in names:
        if parts:
            parts.append(Text())
        parts.extend(_stage_section(name, registry[name]) if name in registry else _block_section(BLOCKS[name]))
    return parts


def _stage_section(name: str, cls: type[Stage]) -> list[RenderableType]:
    head = Text.assemble((name, "bold"), f"  (family {cls.family}, {stage_kind(cls)})")
    parts: list[RenderableType] = [head, *(_paragraph(p) for p in paragraphs(description(cls)))]
    parts += [Text("Options", style="bold underline"), _options(stage_options(cls.Config))]
    if cls.reasons is not None:
        reasons = ", ".join(f"{name}.{reason}" for reason in cls.reasons)
        parts.append(Text())
        parts.append(Text.assemble(("Rejection reasons: ", "bold"), reasons or "none (it rejects nothing)"))
    if cls.annotations:
        parts.append(Text())
        parts.append(Text.assemble(("Columns it adds: ", "bold"), ", ".join(column for column, _ in cls.annotations)))
    return parts


def _block_section(block: ConfigBlock) -> list[RenderableType]:
    parts: list[RenderableType] = [
        Text.assemble((block.name, "bold"), "  (a block of the pipeline file)"),
        _paragraph(block.summary),
    ]
    for label, model in block.models:
        heading = Text(f"Options of {label}" if label else "Options", style="bold underline")
        parts += [heading, _options(block_options(model)), Text()]
    return parts[:-1]


def _options(options: list[Option]) -> RenderableType:
    """Each option on its line (name, type, default), its description wrapped and indented below it."""
    lines: list[RenderableType] = []
    for option in options:
        indent = 2 * len(option.path)
        head = Text.assemble(
            (".".join(option.path), "bold cyan"), "  ", option.kind, ", ", _default(option, "terminal")
        )
        lines.append(Padding(head, (0, 0, 0, indent), expand=False))
        if option.description:
            lines.append(Padding(_literal(option.description), (0, 0, 0, indent + 4), expand=False))
    return Group(*lines)


def _paragraph(text: str) -> RenderableType:
    """A docstring paragraph: its lines joined so that the terminal wraps it, unless it is a list."""
    lines = text.splitlines()
    if any(KEEPS_ITS_LINES.match(line) for line in lines):
        return _literal(text + "\n")
    return _literal(" ".join(text.split()) + "\n")


def _literal(text: str) -> Text:
    """Text for the terminal, printed as written (no markup), its code spans in colour."""
    return Text.assemble(
        *((piece, "green") if CODE_SPAN.fullmatch(piece) else piece for piece in CODE_SPAN.split(text))
    )


def _default(option: Option, where: str) -> str:
    """The default cell of an option (`where`: "terminal" or "markdown")."""
    if option.section is not None:
        see = _see(option.section, where)
        return f"required; {see}" if option.required else see
    if option.required:
        return "required"
    if option.nested:
        return "defaults below" if where == "terminal" else "below"
    return f"default {option.default!r}" if where == "terminal" else _code(repr(option.default))


def _see(section: str, where: str) -> str:
    """Where a top-level key's block is documented: `stages` is the stage list, the others a block's section."""
    if where == "terminal":
        return "see `frcorpus stages`" if section == "stages" else f"see `frcorpus stages {section}`"
    return "see [the stages](#stages)" if section == "stages" else f"see [{section}](#{section})"


# --------------------------------------------------------------------------- docs/stages.md


def stages_markdown(registry: dict[str, type[Stage]]) -> str:
    """docs/stages.md: an index of the stages, then per stage its description, options, rejection
    reasons and added columns; then the other blocks of the pipeline file, with their options."""
    parts = [
        "# Stages",
        f"<!-- Generated from the code by `{REGENERATE}`; do not edit it here: edit the stage's docstring, "
        "its Config's field descriptions or its `reasons` (a block's field descriptions in its model), then "
        "regenerate. -->",
        "Every stage a pipeline's `stages:` list can name (its `type:`), in the order of the registry. A "
        "per-record stage works on each record independently of the others, in the parallel passes over "
        "shards of the data; a global stage sees every record (a small signature of each) at once, at a "
        "barrier between two passes. Every stage takes an "
        "`id` (its key in `stats.json` and in the `stage` column of `rejects/`), and filters take "
        "`annotate_only` (count what would be rejected, reject nothing). A rejected record's `reason` is "
        "`<stage type>.<reason>`; `<...>` in a reason stands for a value. The other blocks of the pipeline "
        "file come after the stages. `frcorpus stages` lists the same in the terminal, `frcorpus stages NAME` "
        "prints one stage's or block's section, and `frcorpus stages --schema` the JSON Schema of the "
        "pipeline file.",
        _table(
            ["stage", "family", "kind", "what it does"],
            [
                [f"[`{name}`](#{name})", cls.family, stage_kind(cls), _text(summary(cls))]
                for name, cls in registry.items()
            ],
        ),
        _table(
            ["block of the pipeline file", "what it holds"],
            [[f"[`{name}`](#{name})", _text(block.summary)] for name, block in BLOCKS.items()],
        ),
    ]
    for name, cls in registry.items():
        parts.append(f"## {name}")
        parts.append(f"Family `{cls.family}`, {stage_kind(cls)}.")
        if description(cls):
            parts.append(description(cls))
        parts.append(_options_table(stage_options(cls.Config)))
        if cls.reasons is not None:
            reasons = ", ".join(f"`{name}.{reason}`" for reason in cls.reasons)
            parts.append(f"Rejection reasons: {reasons}." if reasons else "Rejects nothing.")
        if cls.annotations:
            parts.append("Columns it adds: " + ", ".join(f"`{column}`" for column, _ in cls.annotations) + ".")
    parts.append("# The other blocks of the pipeline file")
    for name, block in BLOCKS.items():
        parts += [f"## {name}", block.summary]
        for label, model in block.models:
            if label:
                parts.append(f"### `{label}`")
            parts.append(_options_table(block_options(model)))
    return "\n\n".join(parts) + "\n"


def _options_table(options: list[Option]) -> str:
    return _table(["option", "type", "default", "description"], [_option_row(option) for option in options])


def _option_row(option: Option) -> list[str]:
    type_cell = option.kind if option.nested or option.section else _code(option.kind)
    return [_code(".".join(option.path)), type_cell, _default(option, "markdown"), _text(option.description)]


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
