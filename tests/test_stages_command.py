"""`frcorpus stages`: the short listing, the whole section of named stages and blocks, errors for unknown
names, and text printed as written (no rich markup taken from docstrings or descriptions)."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field
from typer.testing import CliRunner

from frcorpus import cli
from frcorpus.cli import app
from frcorpus.stage_docs import BLOCKS, summary
from frcorpus.stages import REGISTRY
from frcorpus.stages.base import Stage, StageConfig

runner = CliRunner()


@pytest.fixture
def width(monkeypatch):
    """The terminal's width for `frcorpus stages`' output."""

    def set_width(columns: int) -> None:
        monkeypatch.setattr(cli.out, "width", columns)

    return set_width


def lines_of(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines()]


def test_listing_is_one_row_per_stage_and_block_with_the_hints(width):
    width(200)
    result = runner.invoke(app, ["stages"])
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    for name, cls in REGISTRY.items():  # at 200 columns every summary fits on its row, whole
        assert any(line.split() and line.split()[0] == name and line.endswith(summary(cls)) for line in lines), name
    for name, block in BLOCKS.items():
        assert any(line.split() and line.split()[0] == name and line.endswith(block.summary) for line in lines), name
    assert lines.index("per-record stages") < lines.index("global stages") < lines.index("pipeline blocks")
    assert lines[-3:] == [
        "frcorpus stages NAME...     each named stage or block in full: options, defaults, reasons",
        "frcorpus stages --markdown  the whole reference (docs/stages.md)",
        "frcorpus stages --schema    the JSON Schema of the pipeline file, for editors",
    ]
    assert "annotate_only" not in result.stdout  # no option is listed


def test_listing_fits_80_columns(width):
    width(80)
    result = runner.invoke(app, ["stages"])
    lines = lines_of(result.stdout)
    assert max(len(line) for line in lines) <= 80
    assert {line.split()[0] for line in lines if line and not line.startswith(" ")} >= set(REGISTRY) | set(BLOCKS)
    assert len(lines) < 80  # was 454 lines, every option of every stage


def test_named_stage_prints_its_whole_section(width):
    width(120)
    result = runner.invoke(app, ["stages", "heuristics"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    lines = lines_of(text)
    assert lines[0] == "heuristics  (family heuristics, per-record)"
    assert lines[1] == summary(REGISTRY["heuristics"])
    assert "  min_answer_words  int, default 1" in lines
    assert "      fewer words in an assistant turn: answer_too_short" in lines
    # the description of `placeholders` holds square brackets that rich would take for markup
    assert "      [insert ...], {{...}}, runs of capital X, lorem ipsum, outside code" in lines
    assert "Rejection reasons: heuristics.empty_answer, heuristics.answer_too_short," in text
    assert "langid" not in {line.split()[0] for line in lines if line.strip()}  # only the stage asked for


def test_named_stages_nested_options_and_columns(width):
    width(120)
    result = runner.invoke(app, ["stages", "langid", "translate"])
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert lines[0].startswith("langid  (family langid, per-record)")
    assert any(line.startswith("translate  (family translate, per-record)") for line in lines)
    assert "    llm.backend  Literal['transformers', 'openai', 'vllm'], default 'transformers'" in lines
    assert "  sampling  mapping, defaults below" in lines
    assert "Columns it adds: lang, langid" in lines
    assert "Rejection reasons: langid.wrong_language(<lang>), langid.low_score, langid.mixed(<lang>)" in lines


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sources", "    fields.prompt  str, default 'prompt'"),
        ("executor", "Options of type: slurm"),
        ("output", "  compression  Literal['zstd', 'snappy', 'gzip', 'none'], default 'zstd'"),
        ("card", "  allow_license_conflict  bool, default False"),
        ("pipeline", "  sources  list of mappings, required; see `frcorpus stages sources`"),
    ],
)
def test_named_block_prints_its_options(width, name, expected):
    width(120)
    result = runner.invoke(app, ["stages", name])
    assert result.exit_code == 0, result.output
    assert lines_of(result.stdout)[0] == f"{name}  (a block of the pipeline file)"
    assert expected in lines_of(result.stdout)


def test_unknown_name_exits_2_naming_it_and_the_closest():
    result = runner.invoke(app, ["stages", "heuristic", "langid", "exectuor"])
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing printed before the error
    errors = result.stderr.splitlines()
    assert errors[0].startswith("unknown stage or block 'heuristic'; did you mean 'heuristics'? (stages: ")
    assert errors[0].endswith("blocks: pipeline, sources, executor, output, card)")
    assert errors[1].startswith("unknown stage or block 'exectuor'; did you mean 'executor'?")
    far = runner.invoke(app, ["stages", "zzz"])
    assert far.exit_code == 2
    assert far.stderr.startswith("unknown stage or block 'zzz' (stages: ")


def test_names_schema_and_markdown_are_one_or_another():
    assert runner.invoke(app, ["stages", "length", "--schema"]).exit_code == 2
    assert runner.invoke(app, ["stages", "length", "--markdown"]).exit_code == 2
    assert runner.invoke(app, ["stages", "--schema"]).exit_code == 0


def test_block_names_are_not_stage_names():
    assert not set(BLOCKS) & set(REGISTRY), "a block and a stage share a name: `frcorpus stages NAME` is ambiguous"


class MarkupConfig(StageConfig):
    type: Literal["markup_stage"] = "markup_stage"
    filler: str = Field("[bold]x[/bold]", description="fills [insert ...] with [bold]nothing[/] and [red]")


class MarkupStage(Stage):
    """Keep text in [square brackets] as written: [bold]not bold[/bold].

    A second paragraph with [insert name here] and [/] in it."""

    family = "test"
    Config = MarkupConfig
    reasons = ("odd[1]",)


def test_text_is_printed_as_written_not_as_markup(width, monkeypatch):
    width(200)
    monkeypatch.setitem(REGISTRY, "markup_stage", MarkupStage)
    listing = runner.invoke(app, ["stages"]).stdout
    assert "markup_stage         Keep text in [square brackets] as written: [bold]not bold[/bold]." in lines_of(listing)
    section = lines_of(runner.invoke(app, ["stages", "markup_stage"]).stdout)
    assert section[1] == "Keep text in [square brackets] as written: [bold]not bold[/bold]."
    assert section[3] == "A second paragraph with [insert name here] and [/] in it."
    assert "  filler  str, default '[bold]x[/bold]'" in section
    assert "      fills [insert ...] with [bold]nothing[/] and [red]" in section
    assert "Rejection reasons: markup_stage.odd[1]" in section
    markdown = runner.invoke(app, ["stages", "--markdown"]).stdout
    assert "| `filler` | `str` | `'[bold]x[/bold]'` | fills [insert ...] with [bold]nothing[/] and [red] |" in markdown
