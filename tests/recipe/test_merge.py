"""The merge step: MergeKit's arithmetic on two tiny Qwen3 models, the folder it writes, and check_merge's messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from frcorpus.recipe.merge import check_merge, format_path, run_merge, substitute

SLERP = {
    "merge_method": "slerp",
    "base_model": "${base}",
    "models": [{"model": "${base}"}, {"model": "${sft}"}],
    "parameters": {"t": 0.7},
    "dtype": "float32",
}
LINEAR = {
    "merge_method": "linear",
    "models": [{"model": "${base}", "parameters": {"weight": 0.5}}, {"model": "${sft}", "parameters": {"weight": 0.5}}],
    "dtype": "float32",
}
CONTEXT = {
    "dataset": {
        "name": "frcorpus-demo",
        "version": "2026-05-01-ab12cd34",
        "fingerprint": "f" * 64,
        "source": "/data/frcorpus-demo",
    },
    "base_model": "Qwen/Qwen3-0.6B",
    "base_revision": "c1899de289a04d12100db370d81485cdf75e47ca",
    "recipe_name": "luth-tiny",
    "sft": {"epochs": 2, "learning_rate": 2e-5, "records": 120, "final_loss": 1.234},
}
# a template the base model does not have: the merged folder must keep this one
SFT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}{% endgeneration %}"
    "{% else %}{{ message['content'] }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for file in sorted(folder.glob("*.safetensors")):
        out.update({k: v.float() for k, v in load_file(file).items()})
    return out


def slerp_reference(t: float, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SLERP of two whole tensors seen as vectors, in float64 (the textbook formula, written independently)."""
    x, y = a.double().flatten(), b.double().flatten()
    dot = torch.clamp(torch.dot(x / x.norm(), y / y.norm()), -1, 1)
    if dot.abs() > 0.9995:  # nearly collinear: linear interpolation
        return ((1 - t) * x + t * y).reshape(a.shape)
    theta = torch.acos(dot)
    return ((torch.sin((1 - t) * theta) * x + torch.sin(t * theta) * y) / torch.sin(theta)).reshape(a.shape)


@pytest.fixture(scope="module")
def sft_model(tiny_model_b, tmp_path_factory) -> Path:
    """tiny_model_b with a chat template of its own (as SFT with assistant-only loss would leave it)."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("sft") / "sft-model"
    shutil.copytree(tiny_model_b, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = SFT_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["pad_token_id"] = config["eos_token_id"]  # as TRL may leave it when the tokenizer pads with eos
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def slerp_out(tiny_model, sft_model, tmp_path_factory) -> Path:
    return run_merge(SLERP, tiny_model, sft_model, tmp_path_factory.mktemp("m") / "merged", context=CONTEXT)


# ----------------------------------------------------------------------------------- arithmetic


def test_linear_half_half_is_the_mean(tiny_model, tiny_model_b, tmp_path):
    out = run_merge(LINEAR, tiny_model, tiny_model_b, tmp_path / "linear", context=CONTEXT)
    a, b, merged = weights(tiny_model), weights(tiny_model_b), weights(out)
    assert set(merged) == set(a) == set(b)
    differing = 0
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, (a[name] + b[name]) / 2, rtol=1e-6, atol=1e-7, msg=name)
        differing += not torch.equal(a[name], b[name])
    assert differing > 5  # the two models differ, so the mean is not one of them


@pytest.mark.parametrize("t", [0.0, 1.0])
def test_slerp_ends_are_the_models(tiny_model, tiny_model_b, tmp_path, t):
    out = run_merge({**SLERP, "parameters": {"t": t}}, tiny_model, tiny_model_b, tmp_path / "m", context=CONTEXT)
    expected = weights(tiny_model if t == 0 else tiny_model_b)
    merged = weights(out)
    assert set(merged) == set(expected)
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_slerp_07_follows_the_arc_towards_the_sft_model(tiny_model, sft_model, slerp_out):
    a, b, merged = weights(tiny_model), weights(sft_model), weights(slerp_out)
    differing = [n for n in merged if not torch.equal(a[n], b[n])]
    assert len(differing) > 5
    for name in differing:
        torch.testing.assert_close(merged[name].double(), slerp_reference(0.7, a[name], b[name]), rtol=1e-5, atol=1e-6)
        # t is the share of the fine-tuned model: the result is nearer to it than to the base
        assert (merged[name] - b[name]).norm() < (merged[name] - a[name]).norm(), name


# ----------------------------------------------------------------------------------- the merged folder


def test_merged_model_loads_and_generates(slerp_out):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(slerp_out)
    model = AutoModelForCausalLM.from_pretrained(slerp_out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Bonjour"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 4


def test_tokenizer_and_chat_template_come_from_the_sft_model(tiny_model, sft_model, slerp_out):
    from transformers import AutoTokenizer

    merged = AutoTokenizer.from_pretrained(slerp_out)
    assert merged.chat_template == SFT_TEMPLATE
    assert AutoTokenizer.from_pretrained(tiny_model).chat_template != SFT_TEMPLATE  # base_model's would differ
    assert (slerp_out / "tokenizer.json").read_bytes() == (sft_model / "tokenizer.json").read_bytes()
    assert (slerp_out / "generation_config.json").is_file()
    # config.json is written from base_model's; its token ids follow the tokenizer that was kept
    merged_config = json.loads((slerp_out / "config.json").read_text(encoding="utf-8"))
    base_config = json.loads((tiny_model / "config.json").read_text(encoding="utf-8"))
    assert merged_config["pad_token_id"] == merged_config["eos_token_id"] != base_config["pad_token_id"]
    assert merged_config["num_hidden_layers"] == base_config["num_hidden_layers"]


def test_model_card(slerp_out):
    from huggingface_hub import ModelCard

    text = (slerp_out / "README.md").read_text(encoding="utf-8")
    card = ModelCard(text).data.to_dict()
    assert card["base_model"] == "Qwen/Qwen3-0.6B"
    assert card["library_name"] == "transformers"
    assert card["tags"] == ["frcorpus", "merge", "mergekit"]
    assert card["language"] == ["fr"]
    assert "datasets" not in card  # a local dataset is not a Hub id
    assert "frcorpus-demo 2026-05-01-ab12cd34" in text
    assert (
        "[Qwen/Qwen3-0.6B](https://huggingface.co/Qwen/Qwen3-0.6B), revision `c1899de289a04d12100db370d81485cdf75e47ca`"
        in text
    )
    assert "(MergeKit `merge_method: slerp`), `t` = 0.7" in text
    assert "70 % of the way along the arc from the base model's tensor" in text
    assert "learning_rate: 2e-05" in text and "final_loss: 1.234" in text
    assert "model: ${sft}" in text  # the configuration as the recipe has it, no local path
    assert "[MergeKit](https://github.com/arcee-ai/mergekit)" in text


def test_card_datasets_from_a_hub_source(tiny_model, tiny_model_b, tmp_path):
    context = {**CONTEXT, "base_model": "smollm2", "dataset": {**CONTEXT["dataset"], "source": "org/fr-sft@abc1234"}}
    out = run_merge(LINEAR, tiny_model, tiny_model_b, tmp_path / "m", context=context)
    from huggingface_hub import ModelCard

    card = ModelCard((out / "README.md").read_text(encoding="utf-8")).data.to_dict()
    assert card["datasets"] == ["org/fr-sft"]
    assert "base_model" not in card  # "smollm2" is frcorpus's name for a local model, not a Hub id


def test_config_and_summary_have_real_paths(tiny_model, sft_model, slerp_out):
    config = yaml.safe_load((slerp_out / "mergekit_config.yml").read_text(encoding="utf-8"))
    assert config["base_model"] == str(tiny_model)
    assert [m["model"] for m in config["models"]] == [str(tiny_model), str(sft_model)]
    assert config["parameters"] == {"t": 0.7}
    summary = json.loads((slerp_out / "frcorpus_merge.json").read_text(encoding="utf-8"))
    assert summary["method"] == "slerp" and summary["parameters"] == {"t": 0.7}
    assert summary["base"] == {"id": "Qwen/Qwen3-0.6B", "revision": CONTEXT["base_revision"], "path": str(tiny_model)}
    assert summary["sft"]["path"] == str(sft_model) and summary["sft"]["epochs"] == 2
    assert summary["dataset"]["version"] == "2026-05-01-ab12cd34"
    assert [m["role"] for m in summary["models"]] == ["base", "sft"]
    assert summary["config"] == SLERP and summary["mergekit"] == "0.1.5" and summary["seconds"] > 0
    assert not slerp_out.with_name("merged.partial").exists()


def test_refuses_a_non_empty_output(tiny_model, tiny_model_b, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(FileExistsError, match="already exists and is not empty"):
        run_merge(LINEAR, tiny_model, tiny_model_b, tmp_path / "out", context=CONTEXT)


def test_invalid_config_fails_before_writing(tiny_model, tiny_model_b, tmp_path):
    with pytest.raises(ValueError) as e:
        run_merge({**SLERP, "parameters": {"t": "high"}}, tiny_model, tiny_model_b, tmp_path / "m", context=CONTEXT)
    assert str(e.value) == (
        "invalid merge configuration:\n  parameters.t: parameter 't' of slerp must be a number; got 'high'"
    )
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


# ----------------------------------------------------------------------------------- substitution and checks


def test_substitute():
    raw = {"base_model": "${base}", "models": [{"model": "${sft}+adapters/x"}], "parameters": {"t": [0, 0.5]}}
    out = substitute(raw, "/m/base", "/m/sft")
    assert out == {"base_model": "/m/base", "models": [{"model": "/m/sft+adapters/x"}], "parameters": {"t": [0, 0.5]}}
    assert raw["base_model"] == "${base}"  # a copy
    out["parameters"]["t"].append(1)
    assert raw["parameters"]["t"] == [0, 0.5]


def test_format_path():
    assert format_path(("models", 1, "model")) == "models[1].model"
    assert format_path(("parameters", "t", 0, "value")) == "parameters.t[0].value"


def with_(**changes) -> dict:
    out = {k: v for k, v in SLERP.items() if k not in changes}
    out.update({k: v for k, v in changes.items() if v is not None})
    return out


def test_valid_configs_have_no_problems(tmp_path):
    assert check_merge(SLERP) == []
    assert check_merge(LINEAR) == []
    assert check_merge(with_(parameters={"t": [{"filter": "self_attn", "value": [0, 0.5]}, {"value": 0.7}]})) == []
    assert check_merge(with_(models=[{"model": "${base}"}, {"model": "org/some-model"}])) == []  # a Hub id


def test_unknown_top_level_key_with_suggestion():
    raw = {("merge_mehtod" if k == "merge_method" else k): v for k, v in SLERP.items()}
    assert check_merge(raw) == [
        (("merge_mehtod",), "unknown key 'merge_mehtod' in the merge section; did you mean 'merge_method'?")
    ]


def test_unknown_nested_keys():
    raw = with_(models=[{"model": "${base}"}, {"model": "${sft}", "parameter": {"t": 1}, "weight": 0.5}])
    assert check_merge(raw) == [
        (("models", 1, "parameter"), "unknown key 'parameter' in a models entry; did you mean 'parameters'?"),
        (("models", 1, "weight"), "unknown key 'weight' in a models entry; expected one of: model, parameters"),
    ]
    raw = with_(parameters={"t": [{"filtre": "mlp", "value": 0.5}]})
    assert check_merge(raw) == [
        (("parameters", "t", 0, "filtre"), "unknown key 'filtre' in a conditional parameter; did you mean 'filter'?")
    ]


def test_unknown_merge_method_lists_the_valid_ones():
    [(path, message)] = check_merge(with_(merge_method="slurp"))
    assert path == ("merge_method",)
    assert message.startswith("unknown merge method 'slurp' (did you mean 'slerp'?); MergeKit 0.1.5 has: ")
    listed = message.split(" has: ")[1].split(", ")
    assert {"linear", "slerp", "ties", "task_arithmetic"} <= set(listed) and listed == sorted(listed)


def test_bad_parameter_type_and_name():
    assert check_merge(with_(parameters={"t": "high"})) == [
        (("parameters", "t"), "parameter 't' of slerp must be a number; got 'high'")
    ]
    assert check_merge(with_(parameters={"t": [0, "x", 1]})) == [
        (("parameters", "t", 1), "parameter 't' of slerp must be a number; got 'x'")
    ]
    assert check_merge(with_(parameters={"tt": 0.5})) == [
        (("parameters", "tt"), "unknown parameter 'tt' for merge method 'slerp'; did you mean 't'?"),
        (("parameters",), "merge method 'slerp' needs the parameter 't' (a number) under parameters"),
    ]
    assert check_merge({**LINEAR, "parameters": {"normalise": "yes please"}}) == [
        (
            ("parameters", "normalise"),
            "unknown parameter 'normalise' for merge method 'linear'; did you mean 'normalize'?",
        )
    ]


def test_missing_and_misplaced_parameters():
    assert check_merge(with_(parameters=None)) == [
        ((), "merge method 'slerp' needs the parameter 't' (a number) under parameters")
    ]
    raw = {**LINEAR, "models": [LINEAR["models"][0], {"model": "${sft}"}]}
    assert check_merge(raw) == [
        (
            ("models", 1),
            "merge method 'linear' needs the parameter 'weight' (a number) for each model: set it under this model's "
            "parameters or under the top-level parameters",
        )
    ]
    raw = with_(models=[{"model": "${base}"}, {"model": "${sft}", "parameters": {"t": 0.5}}])
    assert check_merge(raw) == [
        (
            ("models", 1, "parameters", "t"),
            "'t' is one value for all models in slerp: set it under the top-level parameters "
            "(MergeKit ignores it here)",
        )
    ]


def test_missing_model_folder(tmp_path):
    raw = with_(models=[{"model": "${base}"}, {"model": str(tmp_path / "nope")}])
    assert check_merge(raw) == [
        (
            ("models", 1, "model"),
            f"model folder {tmp_path / 'nope'} does not exist (and '{tmp_path / 'nope'}' is not a Hub id org/name)",
        )
    ]
    (tmp_path / "empty").mkdir()
    empty = str(tmp_path / "empty")
    assert check_merge(with_(base_model=empty, models=[{"model": empty}, {"model": "${sft}"}])) == [
        (("base_model",), f"model folder {empty} has no config.json"),
        (("models", 0, "model"), f"model folder {empty} has no config.json"),
    ]


def test_models_the_method_cannot_take():
    assert check_merge(with_(base_model=None)) == [
        (
            ("models",),
            "merge method 'slerp' cannot take these models: Merge method requires a base input; set base_model",
        )
    ]
    assert check_merge(with_(models=[{"model": "${base}"}, {"model": "${sft}"}, {"model": "org/third"}])) == [
        (("models",), "merge method 'slerp' cannot take these models: Merge method requires exactly 2 inputs; got 3")
    ]
    assert check_merge(with_(models=[{"model": "${base}"}, {"model": "${base}"}])) == [
        (
            ("models", 1, "model"),
            "the same model as models[0]; MergeKit takes each model once (to merge a model with itself, merge a copy "
            "of its folder)",
        )
    ]


def test_placeholders_dtypes_and_mergekit_errors():
    assert check_merge(with_(models=[{"model": "${base}"}, {"model": "${sfft}"}])) == [
        (
            ("models", 1, "model"),
            "unknown placeholder '${sfft}' (did you mean '${sft}'?); frcorpus replaces only ${base} and ${sft}",
        )
    ]
    assert check_merge(with_(dtype="bf16")) == [
        (
            ("dtype",),
            "unknown dtype 'bf16' (did you mean 'bfloat16'?); MergeKit takes: bfloat16, float16, float32, float64",
        )
    ]
    # MergeKit's own model: types, and the validators that raise RuntimeError
    assert check_merge(with_(dtype=16)) == [(("dtype",), "Input should be a valid string; got 16")]
    assert check_merge(with_(models=None)) == [((), "Exactly one of 'models', 'slices', or 'modules' must be present")]
    assert check_merge(with_(models=[{"model": "${base}"}, {"model": "a@b@c"}])) == [
        (("models", 1, "model"), "Invalid model path - multiple @: a@b@c")
    ]
    assert check_merge([1]) == [((), "the merge section must be a mapping (a MergeKit YAML), not list")]


def test_a_card_failure_is_an_error_and_leaves_nothing(tiny_model, tiny_model_b, tmp_path, monkeypatch):
    from frcorpus.card_templates import CardError

    monkeypatch.setattr("frcorpus.recipe.merge.TEMPLATE", "no_such_card.md.j2")
    with pytest.raises(CardError, match=r"model card .*no_such_card\.md\.j2 failed to render: TemplateNotFound"):
        run_merge(LINEAR, tiny_model, tiny_model_b, tmp_path / "m", context=CONTEXT)
    assert list(tmp_path.iterdir()) == []
