"""`frcorpus inspect` on a byte-level tokenizer built here: no merges, so that every ASCII character is one
token and every special token one more, and the expected counts can be worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frcorpus.cli import app
from tests.conftest import run_pipeline, write_jsonl, write_pipeline

pytest.importorskip("transformers", reason="frcorpus inspect needs frcorpus[llm]")

from frcorpus.version.inspect import InspectError, inspect_version, load_tokenizer

runner = CliRunner()
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
GEN_PROMPT = "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
# ChatML; the assistant's content, <|im_end|> and newline are trainable
MARKERS = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] + '<|im_end|>\\n' }}{% endgeneration %}"
    "{% else %}{{ m['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}" + GEN_PROMPT
)
PLAIN = MARKERS.replace("{% generation %}", "").replace("{% endgeneration %}", "")
DROPS_SYSTEM = (
    "{% for m in messages if m['role'] != 'system' %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}" + GEN_PROMPT
)
# Gemma's way: the system text opens the first user turn
MERGES_SYSTEM = (
    "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] + '\\n\\n' %}"
    "{% set msgs = messages[1:] %}{% else %}{% set sys = '' %}{% set msgs = messages %}{% endif %}"
    "{% for m in msgs %}{{ '<|im_start|>' + m['role'] + '\\n' }}{% if loop.first %}{{ sys }}{% endif %}"
    "{{ m['content'] + '<|im_end|>\\n' }}{% endfor %}" + GEN_PROMPT
)
REFUSES_SYSTEM = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" + (PLAIN)
)
DEFAULT_SYSTEM = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nTu es un assistant.<|im_end|>\\n' }}{% endif %}"
    + PLAIN
)

CONVERSATIONS = [
    # 19 (system) + 10 (user) + 18 (assistant: header 11, then Hello<|im_end|>\n 7) = 47 tokens
    {"id": "1", "messages": [["system", "Be brief."], ["user", "Hi"], ["assistant", "Hello"]]},
    # 10 + 18 = 28
    {"id": "2", "messages": [["user", "Hi"], ["assistant", "Hello"]]},
    # 68 + 43 = 111; the first 40 tokens are all user turn
    {"id": "3", "messages": [["user", "x" * 60], ["assistant", "y" * 30]]},
    # 17 (the <|im_end|> in the text is one token) + 15 = 32
    {"id": "4", "messages": [["user", "Say <|im_end|> now"], ["assistant", "OK"]]},
]


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inspect")
    rows = [{"id": c["id"], "messages": [{"role": r, "content": t} for r, t in c["messages"]]} for c in CONVERSATIONS]
    write_jsonl(root / "in" / "d.jsonl", rows)
    return run_pipeline(write_pipeline(root, [{"name": "s", "path": str(root / "in")}])).version_dir


@pytest.fixture(scope="module")
def make_tokenizer(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    base.decoder = decoders.ByteLevel()
    # the 256 bytes and the special tokens, no merge: one token per ASCII character
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + len(SPECIALS),
        special_tokens=SPECIALS,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    base.train_from_iterator(["Bonjour le monde."], trainer)

    def make(template: str | None) -> str:
        folder = tmp_path_factory.mktemp("tokenizer")
        tok = PreTrainedTokenizerFast(
            tokenizer_object=base, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=template
        )
        tok.save_pretrained(folder)
        return str(folder)

    return make


def test_lengths_truncation_and_trainable_share_with_generation_markers(version_dir, make_tokenizer):
    result = inspect_version(version_dir, make_tokenizer(MARKERS), max_length=40)
    assert result["records"] == {
        "in_version": 4,
        "sampled": False,
        "seed": 0,
        "inspected": 4,
        "rendered": 4,
        "failed": 0,
    }
    assert result["tokens"] == {"min": 28, "p50": 32, "p90": 111, "p99": 111, "max": 111, "mean": 54.5, "total": 218}
    assert result["truncated"] == {"count": 2, "share": 0.5}
    assert result["trainable"] == {
        "method": "generation_markers",
        "records": 4,
        "assistant_tokens": 7 + 7 + 32 + 4,
        "tokens": 218,
        "share": round(50 / 218, 4),
        # conversation 1's answer starts at token 40, conversation 3's at 68
        "assistant_tokens_within_max_length": 7 + 4,
        "tokens_within_max_length": 40 + 28 + 40 + 32,
        "share_within_max_length": round(11 / 140, 4),
        "none_within_max_length": {"count": 2, "examples": ["s:1", "s:3"]},
    }
    problems = result["problems"]
    assert problems["no_generation_markers"] is False
    assert problems["default_system_prompt"] is None
    assert problems["system_dropped"] == problems["system_merged"] == {"count": 0, "examples": []}
    assert problems["template_errors"] == {"count": 0, "by_message": {}, "examples": []}
    assert problems["special_tokens_in_content"] == {
        "count": 1,
        "examples": [{"id": "s:4", "tokens": ["<|im_end|>"]}],
        "by_token": {"<|im_end|>": 1},
    }
    assert result["warnings"] == [
        "1 conversation(s) contain the tokenizer's special tokens (<|im_end|>): they are tokenized as control "
        "tokens (clean the text, or render with sanitize_control_tokens=True)",
        "2 conversation(s) have no assistant token within the first 40 tokens",
    ]


def test_prefix_rendering_finds_the_same_tokens_as_the_markers(version_dir, make_tokenizer):
    with_markers = inspect_version(version_dir, make_tokenizer(MARKERS), max_length=40)
    without = inspect_version(version_dir, make_tokenizer(PLAIN), max_length=40)
    assert without["trainable"]["method"] == "prefix_rendering"
    assert {**without["trainable"], "method": None} == {**with_markers["trainable"], "method": None}
    assert without["tokens"] == with_markers["tokens"]
    assert without["problems"]["no_generation_markers"] is True
    assert without["problems"]["prefix_unstable"] == {"count": 0, "examples": []}
    assert without["warnings"][0] == (
        "the chat template has no {% generation %} markers: TRL's assistant_only_loss needs them "
        "(add them around assistant content, or train on whole conversations)"
    )


def test_a_template_that_drops_the_system_turn(version_dir, make_tokenizer):
    result = inspect_version(version_dir, make_tokenizer(DROPS_SYSTEM), max_length=40)
    assert result["problems"]["system_dropped"] == {"count": 1, "examples": ["s:1"]}
    assert result["problems"]["system_merged"]["count"] == 0
    assert result["tokens"]["min"] == 28 and result["tokens"]["total"] == 28 + 28 + 111 + 32
    assert result["truncated"] == {"count": 1, "share": 0.25}
    assert result["trainable"]["share"] == round(50 / 199, 4)
    assert "the template drops the system turn of 1 conversation(s)" in result["warnings"]


def test_a_template_that_merges_the_system_turn_into_the_first_user_turn(version_dir, make_tokenizer):
    result = inspect_version(version_dir, make_tokenizer(MERGES_SYSTEM), max_length=40)
    assert result["problems"]["system_merged"] == {"count": 1, "examples": ["s:1"]}
    assert result["problems"]["system_dropped"]["count"] == 0
    assert result["tokens"]["max"] == 111 and result["tokens"]["min"] == 28  # conversation 1: 21 + 18 = 39


def test_a_template_that_refuses_the_system_role(version_dir, make_tokenizer):
    result = inspect_version(version_dir, make_tokenizer(REFUSES_SYSTEM), max_length=40)
    assert result["records"]["rendered"] == 3 and result["records"]["failed"] == 1
    assert result["problems"]["template_errors"] == {
        "count": 1,
        "by_message": {"TemplateError: System role not supported": 1},
        "examples": [{"id": "s:1", "error": "TemplateError: System role not supported"}],
    }
    assert "the template refuses 1 conversation(s), e.g. TemplateError: System role not supported" in result["warnings"]


def test_a_default_system_prompt(version_dir, make_tokenizer):
    result = inspect_version(version_dir, make_tokenizer(DEFAULT_SYSTEM), max_length=40)
    assert result["problems"]["default_system_prompt"] == {"text": "Tu es un assistant.", "records": 3}
    assert result["problems"]["system_dropped"]["count"] == result["problems"]["system_merged"]["count"] == 0


def test_a_generation_prompt_that_is_not_how_assistant_turns_render(version_dir, make_tokenizer):
    """The prompt a model would be given (`<|im_start|>bot`) is not what it is trained on: no prefix holds."""
    template = PLAIN.replace("<|im_start|>assistant\\n' }}{% endif %}", "<|im_start|>bot\\n' }}{% endif %}")
    assert template != PLAIN
    result = inspect_version(version_dir, make_tokenizer(template), max_length=40)
    assert result["problems"]["prefix_unstable"] == {"count": 4, "examples": ["s:1", "s:2", "s:3"]}
    assert result["trainable"]["records"] == 0 and result["trainable"]["share"] is None
    assert result["tokens"]["total"] == 218  # lengths are still measured
    assert (
        "rendering the first turns is not a prefix of the whole rendering (no trainable share) in 4 conversation(s)"
        in result["warnings"]
    )


def test_limit_samples_and_progress_is_reported(version_dir, make_tokenizer):
    calls = []
    result = inspect_version(
        version_dir, make_tokenizer(MARKERS), 40, limit=2, seed=1, progress=lambda d, t: calls.append((d, t))
    )
    assert result["records"]["in_version"] == 4 and result["records"]["inspected"] == 2
    assert result["records"]["sampled"] is True and result["records"]["seed"] == 1
    assert calls == [(2, 2)]


def test_cli_tables_json_and_errors(version_dir, make_tokenizer, tmp_path):
    tok = make_tokenizer(DROPS_SYSTEM)
    result = runner.invoke(
        app, ["inspect", str(version_dir), "--tokenizer", tok, "--max-length", "40"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "│ longer than 40 (truncated)" in result.stdout and "1 of 4 (25.0%)" in result.stdout
    assert "│ system_dropped " in result.stdout and "s:1" in result.stdout
    assert "warning: the template drops the system turn of 1 conversation(s)" in result.stdout
    result = runner.invoke(app, ["inspect", str(version_dir), "--tokenizer", tok, "--max-length", "40", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert list(body) == [
        "format",
        "version_dir",
        "version",
        "tokenizer",
        "max_length",
        "records",
        "tokens",
        "truncated",
        "trainable",
        "template",
        "problems",
        "warnings",
    ]
    assert body["tokenizer"]["spec"] == tok and body["tokenizer"]["revision"].startswith("sha256:")
    assert body["template"] == {
        "generation_markers": False,
        "special_tokens": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    }
    assert list(body["problems"]) == [
        "no_generation_markers",
        "default_system_prompt",
        "system_dropped",
        "system_merged",
        "template_errors",
        "special_tokens_in_content",
        "prefix_unstable",
    ]
    missing = tmp_path / "nope"
    result = runner.invoke(app, ["inspect", str(version_dir), "--tokenizer", str(missing), "--max-length", "8"])
    assert result.exit_code == 2
    assert "no such folder; give a tokenizer folder" in result.output
    result = runner.invoke(app, ["inspect", str(version_dir.parent), "--tokenizer", tok, "--max-length", "8"])
    assert result.exit_code == 2 and "is not a version directory" in result.output
    with pytest.raises(InspectError, match=r"has no chat template; give the tokenizer of a chat model"):
        load_tokenizer(make_tokenizer(None))


def test_smollm2(version_dir):
    """SmolLM2's own template: no generation markers, a default system prompt; lengths as transformers
    tokenizes the rendering."""
    from frcorpus.llm.base import BackendError
    from frcorpus.llm.models import smollm2_path

    try:
        smollm2_path()
    except BackendError as e:
        pytest.skip(str(e))
    result = inspect_version(version_dir, "smollm2", max_length=64)
    tok, info = load_tokenizer("smollm2")
    assert info["revision"].startswith("sha256:")
    convs = [[{"role": r, "content": t} for r, t in c["messages"]] for c in CONVERSATIONS]
    lengths = sorted(len(tok.apply_chat_template(c)["input_ids"]) for c in convs)
    assert (result["tokens"]["min"], result["tokens"]["max"], result["tokens"]["total"]) == (
        lengths[0],
        lengths[-1],
        sum(lengths),
    )
    assert result["trainable"]["method"] == "prefix_rendering"
    # conversation 2's trainable tokens are exactly its answer, <|im_end|> and the newline
    answer = len(tok("Hello<|im_end|>\n", add_special_tokens=False)["input_ids"])
    assert result["trainable"]["assistant_tokens"] > answer
    problems = result["problems"]
    assert problems["default_system_prompt"] == {
        "text": "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
        "records": 3,
    }
    assert problems["special_tokens_in_content"]["by_token"] == {"<|im_end|>": 1}
    assert problems["system_dropped"]["count"] == problems["system_merged"]["count"] == 0
