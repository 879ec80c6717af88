"""Hostile or careless pipeline files: alias bombs, duplicate keys, and every problem reported in one pass."""

from __future__ import annotations

import importlib.util
import time

import pytest
import yaml
from typer.testing import CliRunner

from frcorpus.cli import app
from frcorpus.config import check_pipeline, load_pipeline, read_yaml
from frcorpus.yamlconf import ConfigError, line_map
from tests.test_config import problems_of

runner = CliRunner()

# nine levels of ten aliases each: 10**9 values once expanded, in nine short lines
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 10)}]\n" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)
BOMB_PROBLEM = (
    "p.yaml:5: alias *d: the aliases would repeat more than 100,000 values (anchor &d at line 4); write the "
    "values out, or use fewer aliases"
)


def test_alias_bomb_is_refused_fast(tmp_path):
    start = time.perf_counter()
    assert problems_of(tmp_path, BOMB) == [BOMB_PROBLEM]
    result = runner.invoke(app, ["validate", str(tmp_path / "p.yaml")], env={"COLUMNS": "300"})
    assert time.perf_counter() - start < 30  # a guard, not a benchmark: expanded, the bomb ran for hours
    assert result.exit_code == 2
    assert BOMB_PROBLEM.replace("p.yaml", str(tmp_path / "p.yaml")) in result.output


def test_alias_bomb_is_refused_in_recipes_too(tmp_path):
    from frcorpus.recipe.config import load_recipe

    assert problems_of(tmp_path, BOMB, load=load_recipe) == [BOMB_PROBLEM]


def test_aliases_may_repeat_up_to_100000_values(tmp_path):
    # the list and its 999 items are 1,000 values, repeated 100 times
    text = f"a: &a [{', '.join(['0'] * 999)}]\nb: [{', '.join(['*a'] * 100)}]\n"
    path = tmp_path / "p.yaml"
    path.write_text(text)
    _, raw, _ = read_yaml(path, "test", "a and b")
    assert len(raw["b"]) == 100
    path.write_text(text + "c: &c 0\nd: *c\n")
    with pytest.raises(ConfigError) as exc:
        read_yaml(path, "test", "a and b")
    assert exc.value.problems == [
        f"{path}:4: alias *c: the aliases would repeat more than 100,000 values (anchor &c at line 3); write the "
        "values out, or use fewer aliases"
    ]


def test_alias_inside_its_own_anchor_is_refused(tmp_path):
    assert problems_of(tmp_path, "name: x\nsources: &s\n  - {name: a, path: a.jsonl}\n  - *s\n") == [
        "p.yaml:4: alias *s is inside its own anchor &s (line 2), so its value would never end; write the values "
        "out instead"
    ]


def test_line_map_walks_an_aliased_node_once():
    node = yaml.compose(BOMB, Loader=yaml.SafeLoader)  # not bounded: the walk itself must not expand aliases
    lines = line_map(node)  # the number of paths below shows that nothing was expanded
    assert lines[("i",)] == 9 and lines[("i", 9)] == 8  # an alias's path: the line of its anchor
    assert ("i", 0, 0) not in lines and len(lines) == 1 + 9 * 2 + 10 + 8 * 10


def test_anchors_aliases_and_merge_keys_still_load(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"prompt": "a", "response": "b"}\n')
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: x\n"
        "sources:\n"
        "  - &src\n"
        f"    name: a\n    path: {tmp_path / 'a.jsonl'}\n"
        "  - <<: *src\n"
        "    name: b\n"
        "stages:\n"
        "  - &len {type: length, min_chars: &min 3}\n"
        "  - {<<: *len, min_chars: 4}\n"  # a key merged then overridden is no duplicate
        "  - <<: *len\n"
        "    <<: {max_chars: 500}\n"  # two merge keys are no duplicates either
        "  - {type: length, min_chars: *min}\n"
    )
    loaded, problems = check_pipeline(path)
    assert problems == []
    cfg = loaded.config
    assert [s.name for s in cfg.sources] == ["a", "b"] and cfg.sources[1].path == cfg.sources[0].path
    assert [(s.min_chars, s.max_chars) for s in cfg.stages] == [(3, None), (4, None), (3, 500), (3, None)]


def test_duplicate_keys_are_refused_at_any_depth_with_both_lines(tmp_path):
    text = (
        "name: x\n"  # 1
        "stages: []\n"  # 2
        "sources:\n"  # 3
        "  - {name: a, path: a.jsonl, name: b}\n"  # 4
        "stages:\n"  # 5
        "  - type: length\n"  # 6
        "    min_chars: 3\n"  # 7
        "    min_char: 4\n"  # 8
        "    min_chars: 5\n"  # 9
        "    min_chars: 6\n"  # 10
        "output: {dir: out}\n"  # 11
        "name: y\n"  # 12
    )
    assert problems_of(tmp_path, text) == [
        "p.yaml:4: sources[0].name: duplicate key (first at line 4); a YAML mapping keeps only the last value, so "
        "remove or merge one",
        "p.yaml:5: stages: duplicate key (first at line 2); a YAML mapping keeps only the last value, so remove or "
        "merge one",
        "p.yaml:8: stages[0].min_char: unknown option 'min_char'; did you mean 'min_chars'? (options: annotate_only, "
        "id, max_chars, max_chars_per_turn, max_turns, min_assistant_chars, min_chars, min_chars_per_turn, "
        "min_turns, preset, short_answers, task_not_done, type)",
        "p.yaml:9: stages[0].min_chars: duplicate key (first at line 7); a YAML mapping keeps only the last value, "
        "so remove or merge one",
        "p.yaml:10: stages[0].min_chars: duplicate key (first at line 7); a YAML mapping keeps only the last value, "
        "so remove or merge one",
        "p.yaml:12: name: duplicate key (first at line 1); a YAML mapping keeps only the last value, so remove or "
        "merge one",
    ]


def test_duplicate_keys_fail_validate_and_recipes(tmp_path):
    from frcorpus.recipe.config import load_recipe

    (tmp_path / "a.jsonl").write_text('{"prompt": "a", "response": "b"}\n')
    path = tmp_path / "p.yaml"
    path.write_text(f"name: x\nsources:\n  - {{name: a, path: {tmp_path / 'a.jsonl'}}}\nstages: []\nstages: []\n")
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert (
        f"1 problem(s) in the pipeline:\n  {path}:5: stages: duplicate key (first at line 4); a YAML mapping keeps "
        "only the last value, so remove or merge one\n"
    ) in result.output
    assert problems_of(tmp_path, "name: r\nname: r\n", load=load_recipe) == [
        "p.yaml:2: name: duplicate key (first at line 1); a YAML mapping keeps only the last value, so remove or "
        "merge one"
    ]


@pytest.fixture
def without_ftfy(monkeypatch):
    """fix_text's optional dependency is not installed."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ftfy" else find_spec(name, *a))


FTFY_MISSING = "stages[{i}] (fix_text): needs the 'ftfy' package; install it with: pip install ftfy"


@pytest.mark.parametrize("command", ["validate", "run"])
def test_schema_source_and_dependency_problems_in_one_pass(tmp_path, without_ftfy, command):
    (tmp_path / "a.jsonl").write_text('{"prompt": "a", "response": "b"}\n')
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: x\n"
        "sources:\n"
        f"  - name: a\n    path: {tmp_path / 'a.jsonl'}\n"
        f"  - name: b\n    path: {tmp_path / 'nope.jsonl'}\n"  # 6
        "stages:\n"
        "  - type: normalize\n"
        "  - type: length\n"
        "    min_char: 3\n"  # 10
        "  - type: fix_text\n"  # 11
        f"output: {{dir: {tmp_path / 'out'}}}\n"
    )
    result = runner.invoke(app, [command, str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert result.output.replace(str(tmp_path), "T") == (
        "3 problem(s) in the pipeline:\n"
        "  T/p.yaml:6: source 'b': path 'T/nope.jsonl' not found (looked for T/nope.jsonl); give a file, folder, "
        "glob or Hub id org/name@revision\n"
        "  T/p.yaml:10: stages[1].min_char: unknown option 'min_char'; did you mean 'min_chars'? (options: "
        "annotate_only, id, max_chars, max_chars_per_turn, max_turns, min_assistant_chars, min_chars, "
        "min_chars_per_turn, min_turns, preset, short_answers, task_not_done, type)\n"
        f"  T/p.yaml:11: {FTFY_MISSING.format(i=2)}\n"
    )
    assert not (tmp_path / "out").exists()


def test_only_entries_that_validate_on_their_own_are_checked(tmp_path, without_ftfy):
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: bad name\n"
        "sources:\n"
        "  - {name: a, path: nope.jsonl, format: alpacca}\n"  # 3: its path is not checked
        "  - {name: b, path: none.jsonl}\n"  # 4
        "stages:\n"
        "  - {type: fix_text, min_chars: 3}\n"  # 6: its dependencies are not checked
        "  - {type: fix_text}\n"  # 7
        "executor: {type: local, tasks: 0}\n"
    )
    loaded, problems = check_pipeline(path, cwd=tmp_path)
    assert loaded is None
    assert [p.replace(str(tmp_path), "T") for p in problems] == [
        "T/p.yaml:1: name: invalid value 'bad name': use letters, digits, '.', '_' and '-', starting with a letter "
        "or digit",
        "T/p.yaml:3: sources[0].format: invalid value 'alpacca'; expected 'auto', 'messages', 'sharegpt', 'alpaca' "
        "or 'prompt_response'; did you mean 'alpaca'?",
        "T/p.yaml:4: source 'b': path 'none.jsonl' not found (looked for T/none.jsonl); give a file, folder, glob "
        "or Hub id org/name@revision",
        "T/p.yaml:6: stages[0].min_chars: unknown option 'min_chars' (options: controls, id, invisible, mojibake, "
        "type, typography, unicode_form, whitespace)",
        f"T/p.yaml:7: {FTFY_MISSING.format(i=1)}",
        "T/p.yaml:8: executor.tasks: invalid value 0: Input should be greater than or equal to 1",
    ]


def test_a_document_nested_too_deeply_is_a_configuration_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: x\nsources: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_pipeline(path)
    assert e.value.problems == [f"{path}:1: invalid YAML: the document is nested too deeply"]
