"""`frcorpus recipe luth`: the whole chain on a tiny random model, resumable between steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from frcorpus.cli import app

from .test_evaluate import write_benchmarks
from .test_sft import SFT, corpus  # noqa: F401 - the corpus fixture

runner = CliRunner()


def write_recipe(tmp_path: Path, model: Path, dataset: Path, bench: Path, t: float = 0.5) -> Path:
    data = {
        "name": "tiny-luth",
        "model": str(model),
        "dataset": str(dataset),
        "output_dir": str(tmp_path / "run"),
        "sft": {**SFT, "max_steps": 6},
        "merge": {
            "merge_method": "slerp",
            "base_model": "${base}",
            "models": [{"model": "${base}"}, {"model": "${sft}"}],
            "parameters": {"t": t},
            "dtype": "float32",
        },
        "eval": {
            "tasks": ["mmlu_fr", "mmlu_en", {"name": "mgsm_fr", "limit": 2}],
            "limit": 4,
            "max_gen_toks": 8,
            "data_dir": str(bench),
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.slow  # about 40 s on 2 busy cores: the recipe run three times on the tiny model
def test_luth_runs_sft_merge_eval_then_resumes(tmp_path, tiny_model, corpus):  # noqa: F811
    bench = write_benchmarks(tmp_path / "shared")
    recipe = write_recipe(tmp_path, tiny_model, corpus, bench)
    result = runner.invoke(app, ["recipe", "luth", str(recipe)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    state = json.loads((run / "state.json").read_text())
    assert list(state["steps"]) == ["sft", "merge", "eval"]
    assert (run / "recipe.yaml").read_text() == recipe.read_text()
    # the merged model card names the dataset version, the base, the method and t
    card = (run / "merged" / "README.md").read_text()
    assert "# tiny-luth-merged" in card and corpus.name in card and "`t` = 0.5" in card
    results = json.loads((run / "eval" / "results.json").read_text())
    assert list(results["models"]) == ["base", "sft", "merged"]
    table = (run / "eval" / "results.md").read_text()
    assert "| mmlu_fr |" in table and "| mgsm_fr |" in table
    assert "| mmlu_fr |" in result.output  # the table is printed at the end

    # a second run finds every step done with the same inputs
    again = runner.invoke(app, ["recipe", "luth", str(recipe)])
    assert again.exit_code == 0, again.output
    assert json.loads((run / "state.json").read_text()) == state
    assert again.output.count("skipped") == 3

    # another t: the merge and the eval are redone, the SFT is kept
    recipe = write_recipe(tmp_path, tiny_model, corpus, bench, t=0.9)
    third = runner.invoke(app, ["recipe", "luth", str(recipe)])
    assert third.exit_code == 0, third.output
    new = json.loads((run / "state.json").read_text())
    assert new["steps"]["sft"] == state["steps"]["sft"]
    assert new["steps"]["merge"]["key"] != state["steps"]["merge"]["key"]
    assert new["steps"]["eval"]["key"] != state["steps"]["eval"]["key"]
    assert "`t` = 0.9" in (run / "merged" / "README.md").read_text()


def test_merge_before_sft_says_what_to_run(tmp_path, tiny_model, corpus):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model, corpus, write_benchmarks(tmp_path / "shared"))
    result = runner.invoke(app, ["recipe", "merge", str(recipe)])
    assert result.exit_code == 2
    assert (
        f"recipe merge: {tmp_path / 'run' / 'sft'} has no trained model; run `frcorpus recipe sft {recipe}` first"
        in " ".join(result.output.split())
    )


def test_config_problems_exit_2_before_any_work(tmp_path, tiny_model, corpus):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model, corpus, tmp_path / "nowhere")
    text = recipe.read_text().replace("learning_rate:", "learning_rte:")
    recipe.write_text(text)
    result = runner.invoke(app, ["recipe", "luth", str(recipe)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "sft.learning_rte: unknown SFTConfig key 'learning_rte'; did you mean 'learning_rate'?" in output
    assert not (tmp_path / "run").exists()
