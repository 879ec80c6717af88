"""Pipeline YAML validation: every error names file:line, the YAML path, the value and a fix."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.config import load_pipeline
from frcorpus.stages import REGISTRY
from frcorpus.yamlconf import ConfigError

runner = CliRunner()

BAD = """\
name: bad name
sources:
  - name: a
    path: x.jsonl
    format: alpacca
    licence: mit
stages:
  - type: normalise
  - type: length
    min_char: 3
    min_turns: 0
  - type: exact_dedup
    view: answer
  - unknown: 1
executor: {type: local, tasks: 0}
output: {dir: out, compresion: zstd}
"""


def problems_of(tmp_path, text: str, load=load_pipeline) -> list[str]:
    """The problems `load` (load_pipeline, or a recipe's loader) finds in `text`, with the file as p.yaml."""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load(path)
    return [p.replace(str(path), "p.yaml") for p in exc.value.problems]


def test_all_problems_reported_at_once_with_line_path_value_and_suggestion(tmp_path):
    problems = problems_of(tmp_path, BAD)
    assert problems == [
        "p.yaml:1: name: invalid value 'bad name': use letters, digits, '.', '_' and '-', starting with a letter "
        "or digit",
        "p.yaml:5: sources[0].format: invalid value 'alpacca'; expected 'auto', 'messages', 'sharegpt', 'alpaca' "
        "or 'prompt_response'; did you mean 'alpaca'?",
        "p.yaml:6: sources[0].licence: unknown option 'licence'; did you mean 'license'? (options: citation, "
        "description, fields, format, homepage, id_field, language, license, limit, name, path)",
        "p.yaml:8: stages[0]: unknown stage 'normalise'; did you mean 'normalize'? "
        f"(stages: {', '.join(sorted(REGISTRY))}; see `frcorpus stages`)",
        "p.yaml:10: stages[1].min_char: unknown option 'min_char'; did you mean 'min_chars'? (options: "
        "annotate_only, id, max_chars, max_chars_per_turn, max_turns, min_assistant_chars, min_chars, "
        "min_chars_per_turn, min_turns, preset, short_answers, task_not_done, type)",
        "p.yaml:11: stages[1].min_turns: invalid value 0: Input should be greater than or equal to 1",
        "p.yaml:13: stages[2].view: invalid value 'answer'; expected 'prompt', 'response' or 'conversation'",
        "p.yaml:14: stages[3]: missing 'type:'; every stage needs one (see `frcorpus stages`)",
        "p.yaml:15: executor.tasks: invalid value 0: Input should be greater than or equal to 1",
        "p.yaml:16: output.compresion: unknown option 'compresion'; did you mean 'compression'? (options: "
        "compression, dir, row_group_size)",
    ]


def test_invalid_yaml_names_the_line(tmp_path):
    assert problems_of(tmp_path, "name: x\nsources: [\n") == [
        "p.yaml:3: invalid YAML: expected the node content, but found '<stream end>'"
    ]


def test_cross_field_checks_and_unknown_executor(tmp_path):
    text = (
        "name: x\nsources:\n  - {name: a, path: a.jsonl}\n  - {name: a, path: b.jsonl}\n"
        "stages:\n  - type: length\n    min_chars: 10\n    max_chars: 5\nexecutor: {type: slurmm}\n"
    )
    assert problems_of(tmp_path, text) == [
        "p.yaml:3: sources: source name 'a' is used twice; source names must be unique",
        "p.yaml:6: stages[0]: min_chars (10) is greater than max_chars (5)",
        "p.yaml:9: executor: unknown type 'slurmm'; did you mean 'slurm'? (types: local, slurm, ray)",
    ]


def test_missing_sources_are_reported_together_before_any_work(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nsources:\n  - name: a\n    path: nope.jsonl\n  - name: b\n    path: none/*.jsonl\n")
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    out = result.output.replace(str(tmp_path), "T")
    assert "2 problem(s) in the pipeline:" in out
    assert "T/p.yaml:4: source 'a': path 'nope.jsonl' not found (looked for" in out
    assert "T/p.yaml:6: source 'b': the pattern 'none/*.jsonl' matches no data file" in out


def test_exit_code_2_for_config_errors_and_missing_file(tmp_path):
    assert runner.invoke(app, ["run", str(tmp_path / "absent.yaml")]).exit_code == 2
    (tmp_path / "p.yaml").write_text(BAD)
    result = runner.invoke(app, ["run", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2
    assert "10 problem(s) in the pipeline" in result.output


def test_stage_ids_default_to_type_and_are_numbered():
    from frcorpus.config import PipelineConfig

    cfg = PipelineConfig.model_validate(
        {
            "name": "x",
            "sources": [{"name": "a", "path": "a"}],
            "stages": [{"type": "exact_dedup"}, {"type": "normalize", "id": "norm"}, {"type": "exact_dedup"}],
        }
    )
    assert cfg.stage_ids() == ["exact_dedup", "norm", "exact_dedup_2"]


def test_stages_command_lists_options_and_schema_is_json():
    listing = runner.invoke(app, ["stages", "exact_dedup", "llm_judge"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    assert "exact_dedup  (family dedup, global)" in listing.output
    assert "  view  Literal['prompt', 'response', 'conversation'], default 'conversation'" in listing.output
    # nested options are listed with the defaults each stage gives them
    judge = listing.output[listing.output.index("llm_judge  (family quality") :]
    assert "  sampling  mapping, defaults below" in judge
    assert "    sampling.max_tokens  int, default 256\n        most tokens generated per request" in judge
    assert "    llm.base_url  str | None, default None\n        openai: the server" in judge
    schema = json.loads(runner.invoke(app, ["stages", "--schema"]).output)
    stage_refs = {ref["$ref"].rsplit("/", 1)[-1] for ref in schema["properties"]["stages"]["items"]["oneOf"]}
    assert len(stage_refs) == len(REGISTRY)
    assert (
        schema["$defs"][
            schema["properties"]["stages"]["items"]["discriminator"]["mapping"]["length"].rsplit("/", 1)[-1]
        ]["additionalProperties"]
        is False
    )


def test_registry_refuses_duplicate_names():
    from frcorpus.stages import REGISTRY, build_registry

    with pytest.raises(
        ValueError,
        match="duplicate stage name 'length': frcorpus.stages.heuristics.Length and frcorpus.stages.heuristics.Length",
    ):
        build_registry([REGISTRY["length"], REGISTRY["length"]])


def test_unreadable_file_stops_before_any_work(tmp_path):
    (tmp_path / "bad.json").write_text('[{"prompt": "a", "response": "b"},')
    path = tmp_path / "p.yaml"
    path.write_text(
        f"name: x\nsources:\n  - name: s\n    path: {tmp_path / 'bad.json'}\noutput: {{dir: {tmp_path / 'out'}}}\n"
    )
    result = runner.invoke(app, ["run", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"p.yaml:4: {tmp_path / 'bad.json'}: not a valid JSON array (unexpected end of data" in result.output
    assert not (tmp_path / "out").exists()


def test_missing_optional_dependency_names_the_install_hint(tmp_path, monkeypatch):
    from frcorpus.config import missing_dependencies
    from frcorpus.stages import REGISTRY

    monkeypatch.setattr(REGISTRY["length"], "requires", {"frcorpus_absent_module": "pip install 'frcorpus[absent]'"})
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nsources:\n  - {name: a, path: a.jsonl}\nstages:\n  - type: normalize\n  - type: length\n")
    assert [p.replace(str(path), "p.yaml") for p in missing_dependencies(load_pipeline(path))] == [
        "p.yaml:6: stages[1] (length): needs the 'frcorpus_absent_module' package; install it with: "
        "pip install 'frcorpus[absent]'"
    ]
