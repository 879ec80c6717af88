"""Nothing a user hands frcorpus executes or reaches outside where it is meant to: prompt and card
templates render in Jinja's sandbox, and `frcorpus://` paths stay in the bundled samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from frcorpus.card_templates import card_environment
from frcorpus.cli import app
from frcorpus.llm.prompts import PromptError, load_prompt
from frcorpus.stages.quality.judge import SAMPLE_VARIABLES
from tests.conftest import chat, write_jsonl, write_pipeline

runner = CliRunner()
LLM = {"backend": "transformers", "model": "scripted"}


def hostile_template(marker: Path) -> str:
    # the payload of the report: reaches `os` through a Jinja global's function globals
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"


def write_prompt(tmp_path: Path, user: str, kind: str = "verdict") -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(
        f"description: hostile\nkind: {kind}\nsystem: |\n  Tu juges.\nuser: |\n  Juge ceci :\n  {user}\n",
        encoding="utf-8",
    )
    return path


def test_validate_refuses_a_prompt_that_reaches_python_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    prompt = write_prompt(tmp_path, hostile_template(marker))
    src = write_jsonl(tmp_path / "in.jsonl", [chat("Bonjour ?", "Bonjour !")])
    pipeline = write_pipeline(
        tmp_path, [{"name": "s", "path": str(src)}], [{"type": "llm_judge", "llm": LLM, "prompt": str(prompt)}]
    )
    for command in (["validate", str(pipeline)], ["run", str(pipeline), "--quiet"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        # the pipeline's line, then the prompt file's own line (line 7: the template's second line)
        assert f"{pipeline}:" in text and f"prompt file {prompt}:7: `user`: refused by the template sandbox" in text
        assert "a prompt may only use its variables, filters and tests" in text
    assert not marker.exists()
    assert not (tmp_path / "out").exists()  # nothing ran


def test_a_misspelt_prompt_variable_is_a_configuration_error_with_its_line(tmp_path):
    prompt = write_prompt(tmp_path, "{{ answr }}")
    with pytest.raises(PromptError) as e:
        load_prompt("judge", str(prompt), required=("user",), sample=SAMPLE_VARIABLES)
    assert str(e.value) == (
        f"prompt file {prompt}:7: `user`: 'answr' is undefined; use only the variables this kind of prompt gets"
    )


def test_translate_prompts_are_checked_part_by_part(tmp_path):
    from frcorpus.stages.translate.stage import Translate

    path = tmp_path / "t.yaml"
    # `text` is a variable of `user` only: the system prompt is rendered without it
    path.write_text("system: 'Traduis {{ text }}'\nuser: '{{ text }}'\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"prompt file {path}:1: `system`: 'text' is undefined"):
        Translate.Config(type="translate", llm=LLM, prompt=str(path))


def test_a_template_branch_only_records_reach_is_refused_at_render_time(tmp_path):
    marker = tmp_path / "pwned"
    # passes the check (the sample's answer is not 'x'), reaches the sandbox on a real record
    prompt = write_prompt(tmp_path, "{% if answer == 'x' %}" + hostile_template(marker) + "{% endif %}")
    template = load_prompt("judge", str(prompt), required=("user",), sample=SAMPLE_VARIABLES)
    with pytest.raises(PromptError, match=rf"^{prompt}:7: `user`: refused by the template sandbox"):
        template.render("user", **{**SAMPLE_VARIABLES["user"], "answer": "x"})
    assert not marker.exists()


def test_card_templates_render_in_the_sandbox(tmp_path):
    from jinja2.exceptions import SecurityError

    marker = tmp_path / "pwned"
    env = card_environment()
    with pytest.raises(SecurityError):
        env.from_string(hostile_template(marker)).render()
    assert not marker.exists()
    assert env.from_string("{{ x | cell }}").render(x="a|b") == "a\\|b"  # the card's own filters still work


@pytest.mark.parametrize(
    "path",
    [
        "frcorpus://samples/../../../../etc/passwd",
        "frcorpus://samples/../__init__.py",
        "frcorpus://../../pyproject.toml",
        "frcorpus:///etc/passwd",
    ],
)
def test_bundled_paths_stay_in_the_samples(tmp_path, path):
    pipeline = write_pipeline(tmp_path, [{"name": "s", "path": path}])
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 2
    assert (
        f"source 's': {path!r} points outside the bundled samples (frcorpus://samples/...); give the path of your "
        "own files without the scheme" in " ".join(result.output.split())
    )


def test_bundled_samples_still_read(tmp_path):
    pipeline = write_pipeline(tmp_path, [{"name": "s", "path": "frcorpus://samples/conversations_fr.jsonl"}])
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 0, result.output


def test_prompt_files_are_read_with_the_bounded_yaml_reader(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    bomb.write_text("\n".join(levels) + "\nuser: '{{ answer }}'\nkind: verdict\n", encoding="utf-8")
    with pytest.raises(PromptError, match=rf"^prompt file {bomb}:\d+: alias \*\w: the aliases would repeat more than"):
        load_prompt("judge", str(bomb), required=("user",), sample=SAMPLE_VARIABLES)
    twice = tmp_path / "twice.yaml"
    twice.write_text("kind: verdict\nuser: '{{ answer }}'\nuser: '{{ prompt }}'\n", encoding="utf-8")
    with pytest.raises(PromptError) as e:
        load_prompt("judge", str(twice), required=("user",), sample=SAMPLE_VARIABLES)
    assert str(e.value) == (
        f"prompt file {twice}:3: user: duplicate key (first at line 2); a YAML mapping keeps only the last value, "
        "so remove or merge one"
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{% include '/etc/passwd' %}", "a prompt cannot include, import or extend another template"),
        ("{{ 'a' * 10**10 }}", "refused by the template sandbox (repeating would make 10,000,000,000 items"),
        ("{{ 2**1000**1000 }}", "refused by the template sandbox (a power with exponent 1000 is too large"),
        ("{{ range(10**9) | list }}", "OverflowError: Range too big."),
        ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
    ],
)
def test_a_template_that_fails_or_would_exhaust_the_machine_is_a_configuration_error(tmp_path, template, problem):
    prompt = write_prompt(tmp_path, template)
    with pytest.raises(PromptError) as e:
        load_prompt("judge", str(prompt), required=("user",), sample=SAMPLE_VARIABLES)
    assert str(e.value).startswith(f"prompt file {prompt}:7: `user`: {problem}")


def test_small_arithmetic_still_renders(tmp_path):
    prompt = write_prompt(tmp_path, "{{ [1] * 3 }} {{ 2 ** 8 }} {{ '-' * 20 }}")
    template = load_prompt("judge", str(prompt), required=("user",), sample=SAMPLE_VARIABLES)
    assert template.render("user", **SAMPLE_VARIABLES["user"]).endswith("[1, 1, 1] 256 --------------------")
