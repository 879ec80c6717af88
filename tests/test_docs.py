"""The documentation generated from the code is current: docs/stages.md is what `frcorpus stages
--markdown` prints, every stage describes itself (its docstring, its rejection reasons, a summary of whole
sentences), every option of the pipeline's other blocks has a description, and the JSON Schemas in
docs/version-dir.md are those of the `Stats` and `Manifest` models."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.stage_docs import BLOCKS, REGENERATE, block_options, description, summary
from frcorpus.stages import REGISTRY
from tests.conftest import REPO

runner = CliRunner()


def test_stages_page_is_current():
    result = runner.invoke(app, ["stages", "--markdown"])
    assert result.exit_code == 0, result.output
    committed = (REPO / "docs" / "stages.md").read_text(encoding="utf-8")
    assert result.stdout == committed, f"docs/stages.md is stale: regenerate it with `{REGENERATE}` and commit it"


def test_every_stage_describes_itself():
    for name, cls in REGISTRY.items():
        assert description(cls), f"stage {name!r}: {cls.__qualname__} needs a docstring (what the stage does)"
        assert cls.reasons is not None, f"stage {name!r}: declare `reasons` (() when it rejects nothing)"


def test_every_summary_is_the_docstrings_first_sentences():
    for name, cls in REGISTRY.items():
        text = summary(cls)
        assert text.endswith((".", "?", "!")), f"stage {name!r}: its summary stops mid-sentence: {text!r}"
        assert " ".join(description(cls).split()).startswith(text), name
        assert "\n" not in text
    # a docstring whose first sentence runs over two lines gives it whole
    assert summary(Wrapped) == "Reject what is wrong, on two lines of the docstring."


class Wrapped:
    """Reject what is wrong,
    on two lines of the docstring.

    The rest."""


def test_every_block_option_is_described():
    for name, block in BLOCKS.items():
        assert block.summary.endswith("."), name
        for label, model in block.models:
            for option in block_options(model):
                assert option.description, f"{name} {label} {'.'.join(option.path)}: give the field a description"


def test_markdown_and_schema_are_one_or_the_other():
    assert runner.invoke(app, ["stages", "--markdown", "--schema"]).exit_code == 2


def test_version_dir_schemas_are_current():
    script = REPO / "scripts" / "version_dir_schemas.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
