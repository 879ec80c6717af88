"""The recipes shipped in pipelines/recipes/ validate on this machine (the GPU ones included)."""

from __future__ import annotations

import pytest

from frcorpus.recipe.config import load_recipe, machine_problems

from ..conftest import REPO

RECIPES = REPO / "pipelines" / "recipes"


@pytest.fixture(autouse=True)
def benchmarks(shared_data, monkeypatch):
    monkeypatch.setenv("FRCORPUS_SHARED_DATA", str(shared_data))


@pytest.mark.parametrize(("name", "t"), [("luth-qwen3-0.6b", 0.7), ("luth-qwen3-1.7b", 0.5)])
def test_gpu_recipes_carry_luths_hyperparameters(name, t):
    loaded = load_recipe(RECIPES / f"{name}.yaml")
    sft = loaded.sft_values
    assert (sft["num_train_epochs"], sft["learning_rate"], str(sft["lr_scheduler_type"])) == (3, 2e-5, "cosine")
    assert (sft["warmup_steps"], sft["assistant_only_loss"], sft["packing"], sft["bf16"]) == (0.1, True, True, True)
    assert sft["optim"] == "adamw_bnb_8bit"
    merge = loaded.config.merge
    assert (merge["merge_method"], merge["parameters"]["t"]) == ("slerp", t)
    assert merge["base_model"] == "${base}" and [m["model"] for m in merge["models"]] == ["${base}", "${sft}"]
    assert [task.name for task in loaded.eval_config.tasks] == ["mmlu_fr", "mmlu_en", "mgsm_fr"]


def test_gpu_recipes_name_what_a_cpu_machine_lacks():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    loaded = load_recipe(RECIPES / "luth-qwen3-0.6b.yaml")
    found = machine_problems(loaded, ("sft",))
    assert found[0].startswith(f"{loaded.path}:{loaded.line_of('sft', 'bf16')}: sft.bf16: true needs a CUDA GPU")


def test_cpu_demo_runs_here():
    loaded = load_recipe(RECIPES / "cpu-demo.yaml")
    assert loaded.config.model == "smollm2"
    assert loaded.sft_values["use_cpu"] is True  # and bf16 is autocast on the CPU
    assert machine_problems(loaded) == []


def test_cpu_ablation_compares_two_pipelines_on_the_held_out_half():
    from frcorpus.config import load_pipeline, missing_dependencies
    from frcorpus.recipe.compare_config import is_compare_file, load_compare

    path = RECIPES / "cpu-ablation.yaml"
    assert is_compare_file(path)
    loaded = load_compare(path)
    arms = loaded.config.arms
    assert {arm: ref.pipeline for arm, ref in arms.items()} == {
        "raw": "pipelines/ablation/raw.yaml",
        "curated": "pipelines/ablation/curated.yaml",
    }
    assert [(t.name, t.prompts) for t in loaded.eval_config.resolved_tasks()] == [
        ("ifeval_fr", "second_half"),
        ("fr_answer_rate", "second_half"),
        ("fr_answer_ok", "second_half"),
        ("fr_ref_nll", "all"),
    ]
    assert loaded.sft_values["bf16"] is False and loaded.sft_values["packing"] is True
    assert machine_problems(loaded.arm_recipe("raw"), ("sft", "eval")) == []
    raw, curated = (load_pipeline(REPO / ref.pipeline) for ref in arms.values())
    assert [s.path for s in raw.config.sources] == [s.path for s in curated.config.sources]
    assert raw.config.stages == [] and [s.type for s in curated.config.stages][-1] == "relevance"
    assert missing_dependencies(curated) == []
