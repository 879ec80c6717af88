from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from frcorpus.recipe.config import load_recipe, machine_problems
from frcorpus.yamlconf import ConfigError

SFT = {"use_cpu": True, "bf16": False, "max_steps": 2, "learning_rate": "2e-5"}


def write(tmp_path: Path, **overrides) -> Path:
    recipe = {
        "name": "t",
        "model": "smollm2",
        "dataset": str(tmp_path / "data"),
        "output_dir": str(tmp_path / "out"),
        "sft": dict(SFT),
    }
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    return err.value.problems


def test_sft_values_are_coerced_to_trl_types(tmp_path):
    loaded = load_recipe(write(tmp_path))
    # PyYAML reads 2e-5 as a string; TRL would keep it and fail in the optimizer
    assert loaded.sft_values["learning_rate"] == 2e-5
    assert loaded.config.dataset.path == str(tmp_path / "data")
    assert loaded.output_dir == tmp_path / "out"


def test_unknown_sft_keys_are_errors_with_their_line(tmp_path):
    path = write(tmp_path, sft={**SFT, "learning_rte": 1e-5, "warmup_ratio": 0.1, "max_seq_length": 512})
    found = problems(path)
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "learning_rte" in text)
    assert (
        f"{path}:{line}: sft.learning_rte: unknown SFTConfig key 'learning_rte'; did you mean 'learning_rate'?" in found
    )
    assert any(
        p.endswith(
            "sft.warmup_ratio: unknown SFTConfig key 'warmup_ratio' (transformers 5 removed it: a warmup_steps "
            "below 1 is a fraction of the steps (warmup_steps: 0.1))"
        )
        for p in found
    )
    assert any(
        p.endswith("sft.max_seq_length: unknown SFTConfig key 'max_seq_length' (TRL renamed it max_length)")
        for p in found
    )
    assert len(found) == 3


def test_sft_values_are_type_checked_and_choices_named(tmp_path):
    path = write(tmp_path, sft={**SFT, "num_train_epochs": "three", "lr_scheduler_type": "cosin"})
    found = problems(path)
    assert any(
        p.endswith(
            "sft.num_train_epochs: invalid value 'three': expected float (Input should be a valid number, "
            "unable to parse string as a number)"
        )
        for p in found
    )
    assert any(
        "sft.lr_scheduler_type: invalid value 'cosin'; did you mean 'cosine'? (choices: linear, cosine," in p
        for p in found
    )


def test_trl_own_checks_run_too(tmp_path):
    # both precisions at once: transformers' __post_init__ refuses it, and the message is passed on
    found = problems(write(tmp_path, sft={**SFT, "bf16": True, "fp16": True}))
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'recipe.yaml'}:")
    assert "fp16" in found[0] and "bf16" in found[0]


def test_output_dir_belongs_to_frcorpus(tmp_path):
    found = problems(write(tmp_path, sft={**SFT, "output_dir": "x"}))
    assert found[0].endswith(
        "sft.output_dir: frcorpus sets it to <output_dir>/sft; set the recipe's top-level output_dir instead"
    )


def test_dataset_reference_checks(tmp_path):
    found = problems(write(tmp_path, dataset={"path": "a", "hub": "org/name"}))
    assert found == [
        f"{tmp_path / 'recipe.yaml'}:3: dataset: give exactly one of path (a version directory), hub (org/name) "
        "and pipeline (a pipeline file)"
    ]
    found = problems(write(tmp_path, dataset={"path": "a", "revision": "v1"}))
    assert found[0].endswith("dataset: revision goes with hub; a local version directory is already one version")


def test_missing_and_unknown_top_level_options(tmp_path):
    path = write(tmp_path, epochs=3)
    text = path.read_text().replace("model: smollm2\n", "")
    path.write_text(text)
    found = problems(path)
    assert f"{path}:1: model: required option is missing" in found
    assert any(p.endswith("epochs: unknown option 'epochs'") for p in found)


def test_chat_template_file_must_exist(tmp_path):
    found = problems(write(tmp_path, chat_template="nope.jinja"))
    assert found[0].endswith(
        "chat_template: nope.jinja: no such file; give 'auto', 'chatml' or a .jinja file with generation markers"
    )


def test_dataset_override(tmp_path):
    loaded = load_recipe(write(tmp_path), dataset="elsewhere/v1")
    assert loaded.config.dataset.path == "elsewhere/v1"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_gpu_options_are_a_machine_problem_not_a_config_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = write(tmp_path, sft={"bf16": True, "optim": "adamw_bnb_8bit"})
    loaded = load_recipe(path)  # valid: a GPU recipe is checked on any machine
    found = machine_problems(loaded, ("sft",))
    assert found[0] == (
        f"{path}:6: sft.bf16: true needs a CUDA GPU and this machine has none; run on a GPU machine, or set "
        "bf16: false and use_cpu: true for a CPU run"
    )
    if importlib.util.find_spec("bitsandbytes") is None:
        assert found[1] == (
            f"{path}:7: sft.optim: adamw_bnb_8bit needs bitsandbytes; install it with: pip install bitsandbytes "
            "(a CUDA machine), or use optim: adamw_torch"
        )


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: t\nsft: [\n", encoding="utf-8")
    found = problems(path)
    assert found[0].startswith(f"{path}:3: invalid YAML:")


def test_bfloat16_on_a_cpu_without_bfloat16_instructions_is_a_warning(tmp_path, monkeypatch):
    import frcorpus.recipe.config as recipe_config

    path = write(tmp_path, sft={**SFT, "bf16": True}, eval={"tasks": ["mmlu_fr"], "dtype": "bfloat16"})
    loaded = load_recipe(path)
    monkeypatch.setattr(recipe_config, "_cuda_available", lambda: False)
    monkeypatch.setattr(recipe_config, "cpu_has_bf16", lambda: False)
    lines = path.read_text().splitlines()
    bf16 = next(i for i, text in enumerate(lines, 1) if "bf16" in text)
    dtype = next(i for i, text in enumerate(lines, 1) if "dtype" in text)
    assert recipe_config.machine_warnings(loaded) == [
        f"{path}:{bf16}: sft.bf16: this CPU has no bfloat16 instructions (AVX512-BF16, AMX): training would be "
        "about 15x slower than in float32; set bf16: false",
        f"{path}:{dtype}: eval.dtype: bfloat16 on this CPU without bfloat16 instructions: generation about 2x "
        "slower than in float32; set dtype: float32",
    ]
    assert recipe_config.machine_warnings(loaded, ("sft",)) == recipe_config.machine_warnings(loaded)[:1]
    monkeypatch.setattr(recipe_config, "cpu_has_bf16", lambda: True)
    assert recipe_config.machine_warnings(loaded) == []
    monkeypatch.setattr(recipe_config, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(recipe_config, "_cuda_available", lambda: True)
    assert recipe_config.machine_warnings(loaded) == []
